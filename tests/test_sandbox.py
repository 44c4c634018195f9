"""The sandbox contains hostile code at every isolation level that works here, and still judges honest code."""

from __future__ import annotations

import contextlib
import json
import os
import shutil
import signal
import socket
import subprocess
import sys
import time
import uuid
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import pytest

from guards import sandbox
from guards.sandbox import levels

TIMEOUT = 1.5
STARTED = 4.0  # wall seconds a sandbox may take to start on a loaded 2-core runner (the timeout counts after it)
HONEST = "def add(a, b):\n    return a + b\n"
TESTS = ["assert add(1, 2) == 3", "assert add(-1, 1) == 0"]
ROOT = os.geteuid() == 0


def _level_param(level: str) -> object:
    why = sandbox.probe_levels()[level]
    return pytest.param(level, id=level, marks=pytest.mark.skipif(why is not None, reason=f"{level}: {why}"))


@pytest.fixture(params=[_level_param(level) for level in sandbox.LEVELS])
def level(request: pytest.FixtureRequest) -> str:
    return str(request.param)


def _run(code: str, level: str, tests: list[str] | None = None, timeout: float = TIMEOUT) -> sandbox.SandboxResult:
    with pytest.warns(RuntimeWarning) if level == "process" else _nothing():
        return sandbox.run_tests(code, TESTS if tests is None else tests, timeout, level=level)


class _nothing:
    def __enter__(self) -> None:
        return None

    def __exit__(self, *args: object) -> None:
        return None


def _processes_with(marker: str, wait_s: float = 1.0) -> list[int]:
    """Pids whose command line contains `marker` (polled briefly: teardown is asynchronous at worst)."""
    end = time.monotonic() + wait_s
    while True:
        found = []
        for name in os.listdir("/proc"):
            if name.isdigit() and int(name) != os.getpid():
                try:
                    if marker.encode() in Path(f"/proc/{name}/cmdline").read_bytes():
                        found.append(int(name))
                except OSError:
                    continue
        if not found or time.monotonic() > end:
            return found
        time.sleep(0.05)


def _still_works(level: str) -> None:
    """After an attack: an honest solution still passes and a wrong one still fails."""
    assert _run(HONEST, level).passed
    wrong = _run("def add(a, b):\n    return a - b\n", level)
    assert not wrong.passed and wrong.status == "failed"


def _skip_process(level: str, what: str) -> None:
    if level == "process":
        pytest.skip(f"the process level does not isolate {what} (documented; it warns on every use)")


# ------------------------------------------------------------------ honest code


def test_honest_passes_wrong_fails_and_each_assert_is_reported(level: str) -> None:
    ok = _run(HONEST + "print('hello')\n", level)
    assert (ok.passed, ok.status, ok.tests, ok.level) == (True, "passed", ("passed", "passed"), level)
    assert "hello" in ok.output
    wrong = _run("def add(a, b):\n    return a * b\n", level, tests=[*TESTS, "assert add(2, 2) == 4"])
    assert (wrong.passed, wrong.status, wrong.tests) == (False, "failed", ("failed", "failed", "passed"))
    broken = _run("def add(a, b) return a\n", level)
    assert broken.status == "error" and "SyntaxError" in broken.output and broken.tests == ("not run", "not run")


def test_setup_runs_after_the_code_and_before_the_asserts(level: str) -> None:
    code = "class Box:\n    def __init__(self, v):\n        self.v = v\n"
    with pytest.warns(RuntimeWarning) if level == "process" else _nothing():
        result = sandbox.run_tests(code, ["assert box.v == 3"], TIMEOUT, setup="box = Box(3)", level=level)
    assert result.passed


# ------------------------------------------------------------------ hostile code


def test_infinite_loop_is_stopped_at_the_timeout(level: str) -> None:
    start = time.monotonic()
    result = _run(HONEST, level, tests=["assert add(1, 2) == 3", "while True: pass", "assert True"])
    assert (result.status, result.passed) == ("timeout", False)
    assert result.tests == ("passed", "timeout", "not run")  # asserts run until the loop are still reported
    assert time.monotonic() - start < TIMEOUT + STARTED
    _still_works(level)


def test_fork_bomb_is_contained_and_leaves_nothing(level: str) -> None:
    marker = f"guards-bomb-{uuid.uuid4().hex}"
    bomb = "import os\\nwhile True:\\n    try:\\n        os.fork()\\n    except OSError:\\n        pass\\n"
    code = f"import os, sys\nos.execv(sys.executable, [sys.executable, '-c', '{bomb}', '{marker}'])\n"
    start = time.monotonic()
    result = _run(code, level)
    assert not result.passed and time.monotonic() - start < TIMEOUT + STARTED
    assert _processes_with(marker) == []
    _still_works(level)


def test_memory_bomb_is_stopped(level: str) -> None:
    code = HONEST + (
        "import mmap\nHUGE = MAPS = 0\n"
        "try:\n    blob = bytearray(8 * 2**30)\nexcept MemoryError:\n    HUGE = 1\n"
        "hog = []\ntry:\n    while True:\n        hog.append(mmap.mmap(-1, 100 * 2**20))\n        MAPS += 1\n"
        "except (MemoryError, OSError):\n    pass\n"
    )
    bounded = f"assert 0 < MAPS * 100 * 2**20 <= {levels.MEMORY_BYTES}"
    result = _run(code, level, tests=[*TESTS, "assert HUGE == 1", bounded])
    assert result.passed, (result.tests, result.output)
    _still_works(level)


def test_no_write_outside_scratch(level: str, tmp_path: Path) -> None:
    name = f"guards-escape-{uuid.uuid4().hex}"
    targets = [tmp_path / name, Path.home() / name]
    if level != "process":  # world-writable directories: only the namespace levels hide them
        targets += [Path("/tmp") / name, Path("/var/tmp") / name]
    code = HONEST + "import os\n" + "".join(
        f"try:\n    open({str(t)!r}, 'w').write('x')\nexcept OSError:\n    pass\n" for t in targets
    ) + "open('scratch.txt', 'w').write('ok')\nSCRATCH = open('scratch.txt').read()\n"
    result = _run(code, level, tests=[*TESTS, "assert SCRATCH == 'ok'"])
    assert result.passed  # the scratch directory is writable
    assert [t for t in targets if t.exists()] == []


def test_cannot_delete_the_callers_files(level: str, tmp_path: Path) -> None:
    victim = tmp_path / "victim.txt"
    victim.write_text("keep me")
    code = HONEST + (
        "import os, shutil\n"
        f"for attempt in (lambda: os.remove({str(victim)!r}), lambda: shutil.rmtree({str(tmp_path)!r}),\n"
        f"                lambda: open({str(victim)!r}, 'w').close()):\n"
        "    try:\n        attempt()\n    except OSError:\n        pass\n"
    )
    _run(code, level)
    assert victim.read_text() == "keep me"


def test_no_secret_from_the_environment_or_proc(level: str, monkeypatch: pytest.MonkeyPatch) -> None:
    secret = "sk-test-secret"
    monkeypatch.setenv("OPENAI_API_KEY", secret)
    holder = subprocess.Popen(["sleep", "30"], env={**os.environ, "OPENAI_API_KEY": secret})
    try:
        end = time.monotonic() + 5
        while not Path(f"/proc/{holder.pid}/environ").read_bytes() and time.monotonic() < end:
            time.sleep(0.01)  # until sleep has exec'd
        assert secret.encode() in Path(f"/proc/{holder.pid}/environ").read_bytes()  # the secret is there to find
        code = HONEST + (
            "import os\n"
            f"FOUND = [k for k, v in os.environ.items() if {secret!r} in v]\n"
            "SCANNED = 0\n"
            "for pid in os.listdir('/proc'):\n"
            "    try:\n"
            f"        if {secret!r}.encode() in open('/proc/' + pid + '/environ', 'rb').read():\n"
            "            FOUND.append(pid)\n"
            "        SCANNED += 1\n"
            "    except OSError:\n"
            "        pass\n"
            "print('FOUND', FOUND, 'SCANNED', SCANNED)\n"
        )
        result = _run(code, level, tests=[*TESTS, "assert FOUND == []", "assert SCANNED >= 1"])
        assert result.passed, result.output
        assert secret not in result.output
    finally:
        holder.kill()
        holder.wait()


def test_no_network_to_a_local_listener(level: str) -> None:
    _skip_process(level, "the network")
    with socket.create_server(("127.0.0.1", 0)) as listener:
        port = listener.getsockname()[1]
        code = HONEST + (
            "import socket\nCONNECTED = False\n"
            f"try:\n    socket.create_connection(('127.0.0.1', {port}), timeout=1).sendall(b'leak')\n"
            "    CONNECTED = True\nexcept OSError:\n    pass\n"
        )
        result = _run(code, level, tests=[*TESTS, "assert not CONNECTED"])
        listener.settimeout(0.3)
        with pytest.raises(TimeoutError):
            listener.accept()
    assert result.passed


def test_cannot_kill_the_parent_or_other_processes(level: str) -> None:
    if level == "process" and not ROOT:
        pytest.skip("the process level runs as the caller's uid when not root: it cannot protect the parent")
    bystander = subprocess.Popen(["sleep", "30"])
    try:
        code = HONEST + (
            "import os, signal\n"
            f"targets = [os.getppid(), {os.getpid()}] + [int(p) for p in os.listdir('/proc') if p.isdigit()]\n"
            "for attempt in [lambda p=p: os.kill(p, signal.SIGKILL) for p in targets if p != os.getpid()] + [\n"
            "        lambda: os.killpg(os.getpgid(os.getppid()), signal.SIGKILL)]:\n"
            "    try:\n        attempt()\n    except (OSError, ProcessLookupError):\n        pass\n"
            "try:\n    os.kill(-1, signal.SIGKILL)\nexcept OSError:\n    pass\n"
        )
        result = _run(code, level)
        assert bystander.poll() is None  # a process of the caller's uid survives
        assert result.status in {"passed", "error"}  # we are alive to read it
    finally:
        bystander.kill()
        bystander.wait()
    _still_works(level)


def test_printing_a_gigabyte_is_cut_off(level: str) -> None:
    start = time.monotonic()
    result = _run(HONEST + "import sys\nchunk = 'x' * 2**20\nfor _ in range(1024):\n    sys.stdout.write(chunk)\n",
                  level)
    assert result.status == "output_limit" and not result.passed
    assert len(result.output) <= levels.MAX_OUTPUT + 100
    assert time.monotonic() - start < TIMEOUT + STARTED


def test_writing_a_gigabyte_file_is_refused(level: str) -> None:
    code = HONEST + (
        "chunk = b'x' * 2**20\nWRITTEN = 0\ntry:\n    with open('big.bin', 'wb') as f:\n"
        "        for _ in range(1024):\n            f.write(chunk)\n            f.flush()\n            WRITTEN += 1\n"
        "except OSError:\n    pass\n"
    )
    result = _run(code, level, tests=[*TESTS, f"assert 0 < WRITTEN * 2**20 <= {levels.FILE_BYTES}"])
    assert result.passed, result.output


def test_no_daemon_survives(level: str) -> None:
    marker = f"guards-daemon-{uuid.uuid4().hex}"
    code = HONEST + (
        "import os, sys\n"
        "if os.fork() == 0:\n"
        "    os.setsid()\n"
        "    if os.fork() == 0:\n"
        f"        os.execv(sys.executable, [sys.executable, '-c', 'import time; time.sleep(60)', '{marker}'])\n"
        "    os._exit(0)\n"
        "import time\ntime.sleep(0.3)\n"
    )
    result = _run(code, level)
    assert result.passed  # the honest part still counts
    assert _processes_with(marker) == []


# ------------------------------------------------------------------ levels, concurrency, pure parts


def test_auto_uses_the_best_level_and_a_named_missing_level_refuses(monkeypatch: pytest.MonkeyPatch) -> None:
    available = sandbox.available_levels()
    assert available and available[-1] == "process"
    assert sandbox.detect_level("auto") == available[0]
    assert sandbox.run_tests(HONEST, TESTS, TIMEOUT).level == available[0]
    monkeypatch.setitem(levels._PROBES, "bwrap", "bwrap not found (Debian: apt-get install bubblewrap)")
    with pytest.raises(sandbox.SandboxUnavailable, match="bubblewrap"):
        sandbox.run_tests(HONEST, TESTS, TIMEOUT, level="bwrap")
    with pytest.raises(ValueError, match="unknown sandbox level"):
        sandbox.detect_level("docker")


def test_parallel_runs_keep_their_own_results() -> None:
    jobs = [(HONEST if i % 2 else "def add(a, b):\n    return 0\n", i % 2 == 1) for i in range(8)]
    with ThreadPoolExecutor(max_workers=4) as pool:
        results = list(pool.map(lambda job: sandbox.run_tests(job[0], TESTS, TIMEOUT), jobs))
    assert [r.passed for r in results] == [expected for _, expected in jobs]


def test_cache_key_depends_on_what_decides_the_result() -> None:
    key = sandbox.cache_key(HONEST, TESTS, "", 10.0)
    assert key == sandbox.cache_key(HONEST, list(TESTS), "", 10)
    others = {sandbox.cache_key(HONEST + " ", TESTS, "", 10.0), sandbox.cache_key(HONEST, TESTS[:1], "", 10.0),
              sandbox.cache_key(HONEST, TESTS, "x = 1", 10.0), sandbox.cache_key(HONEST, TESTS, "", 5.0)}
    assert key not in others and len(others) == 4


def test_result_round_trips_through_a_dict() -> None:
    result = sandbox.SandboxResult(True, "passed", "out", "bwrap", ("passed",), 0.1)
    assert sandbox.SandboxResult.from_dict(result.to_dict()) == result


def test_verdict_reads_the_harness_records() -> None:
    checks = [sandbox.parse_test("assert add(1, 2) == 3"), sandbox.parse_test("assert add(0, 0) == 0")]
    n = "abc"

    def rec(**r: object) -> bytes:
        return n.encode() + b" " + json.dumps(r).encode() + b"\n"

    good = rec(i=0, j=0, v="3") + rec(i=1, j=0, v="1") + rec(end=2)
    assert sandbox.verdict(good, checks, n)[:2] == ("failed", ("passed", "failed"))
    assert sandbox.verdict(rec(load="[code] NameError: x"), checks, n) == (
        "error", ("not run", "not run"), "[code] NameError: x")
    assert sandbox.verdict(rec(ready=1) + rec(i=0, j=0, v="3"), checks, n, exit_code=None, timed_out=True)[:2] == (
        "timeout", ("passed", "timeout"))
    # no ready record: the sandbox never started, so nothing was timed -- an error, never a model's timeout
    assert sandbox.verdict(b"", checks, n, exit_code=None, timed_out=True)[:2] == ("error", ("not run", "not run"))
    assert sandbox.verdict(rec(ready=1) + good, checks, n) == sandbox.verdict(good, checks, n)
    assert sandbox.verdict(b"garbage\n", checks, n)[0] == "error"  # died without finishing
    assert sandbox.verdict(good, checks, n, overflow=True)[0] == "output_limit"


def test_the_test_clock_starts_when_the_harness_is_ready_not_at_spawn() -> None:
    """A start slower than the timeout (a loaded machine) is not charged to the code: the clock starts at the
    harness's ready record. Code that runs past the timeout after it is still stopped."""
    from guards.sandbox.harness import ready_line

    def child(before: float, after: float) -> tuple[bool, float]:
        read, write = os.pipe()
        code = (f"import os, time; time.sleep({before}); os.write({write}, {ready_line('n')!r}); "
                f"time.sleep({after})")
        proc = subprocess.Popen([sys.executable, "-c", code], stdin=subprocess.PIPE, stdout=subprocess.PIPE,
                                stderr=subprocess.STDOUT, pass_fds=(write,), start_new_session=True)
        os.close(write)
        start = time.monotonic()
        try:
            _, records, _, timed_out, _ = levels._communicate(proc, b"", read, 0.5, ready_line("n"))
        finally:
            os.close(read)
        assert records.startswith(ready_line("n"))
        return timed_out, time.monotonic() - start

    assert child(1.0, 0.1) == (False, pytest.approx(1.1, abs=0.9))  # started late, finished in time
    timed_out, took = child(0.0, 5.0)
    assert timed_out and took < 2.0


# ------------------------------------------------------------------ the parent decides (issue 15)


def _records(nonce: str, *recs: dict[str, object]) -> bytes:
    return b"".join(nonce.encode() + b" " + json.dumps(r).encode() + b"\n" for r in recs)


def test_parse_test_splits_call_and_literal_and_names_other_shapes() -> None:
    assert sandbox.parse_test("assert f(1) == (1, 2)") == sandbox.Check("literal", ("f(1)",), (1, 2))
    assert sandbox.parse_test("assert [1] == f(x)").exprs == ("f(x)",)
    assert sandbox.parse_test("assert pos_nos([-1,-2,1,2]) == 1,2").expected == 1  # the message is not the value
    assert sandbox.parse_test("assert f(1) == g(1)").kind == "compare"
    assert sandbox.parse_test("assert f(1) < 3").kind == "truth"
    assert sandbox.parse_test("while True: pass").kind == "statement"
    assert sandbox.parse_test("assert f(").kind == "invalid"
    assert not sandbox.parse_test("assert f(1) < 3").strong and sandbox.parse_test("assert f() == 1").strong


def test_every_mbpp_test_split_assert_has_the_literal_shape(data_dir: Path) -> None:
    rows = [json.loads(line) for line in (data_dir / "mbpp" / "mbpp.jsonl").open(encoding="utf-8")]
    shapes = {sandbox.parse_test(t).kind for r in rows if 11 <= r["task_id"] <= 510 for t in r["test_list"]}
    assert shapes == {"literal"}


def test_the_parent_compares_values_the_child_never_saw() -> None:
    checks = [sandbox.parse_test("assert f() == (1, 2)")]
    ok = _records("n", {"i": 0, "j": 0, "v": "(1, 2)"}, {"end": 1})
    assert sandbox.verdict(ok, checks, "n")[0] == "passed"
    as_list = _records("n", {"i": 0, "j": 0, "v": "[1, 2]"}, {"end": 1})
    assert sandbox.verdict(as_list, checks, "n")[0] == "failed"  # a tuple never equals a list
    claim = _records("n", {"i": 0, "j": 0, "v": "<object>"}, {"end": 1})
    assert sandbox.verdict(claim, checks, "n")[0] == "failed"  # not a literal
    old_style = b'{"test": 0, "result": "passed"}\n{"done": true}\n'
    assert sandbox.verdict(old_style, checks, "n")[0] == "error"  # records without the run's nonce do not count
    twice = _records("n", {"i": 0, "j": 0, "v": "(1, 2)"}, {"i": 0, "j": 0, "v": "(1, 2)"}, {"end": 1})
    assert sandbox.verdict(twice, checks, "n")[0] == "error"  # a forged second record poisons the run
    assert sandbox.verdict(ok, checks, "n", exit_code=1)[0] == "error"
    assert sandbox.verdict(ok, checks, "n", exit_code=None)[0] == "error"
    assert sandbox.verdict(_records("n", {"i": 0, "j": 0, "v": "(1, 2)"}), checks, "n")[0] == "error"  # no end


TRICKS = {
    "the issue's __main__ rewrite": "import __main__\n"
                                    "__main__._P['tests'][:] = ['pass'] * len(__main__._P['tests'])\n",
    "rewrite the harness's tests": "import __main__\n__main__._P['checks'][:] = [[]] * len(__main__._P['checks'])\n"
                                   "__main__._P['tests'] = ['pass'] * 2\n",
    "replace exec": "import builtins\nbuiltins.exec = lambda *a, **k: None\nbuiltins.eval = lambda *a, **k: 3\n",
    "fake records then exit": (
        "import os, json\n"
        "for fd in range(0, 64):\n"
        "    for rec in ({'test': 0, 'result': 'passed'}, {'test': 1, 'result': 'passed'}, {'done': True},\n"
        "                {'i': 0, 'j': 0, 'v': '3'}, {'i': 1, 'j': 0, 'v': '0'}, {'end': 2}):\n"
        "        try:\n            os.write(fd, (json.dumps(rec) + '\\n').encode())\n"
        "        except OSError:\n            pass\n"
        "os._exit(0)\n"),
    "always-equal object": "class Yes:\n    def __eq__(self, other):\n        return True\n"
                           "    __hash__ = object.__hash__\n"
                           "def add(a, b):\n    return Yes()\n",
    "int subclass": "class Three(int):\n    def __eq__(self, other):\n        return True\n"
                    "    __hash__ = int.__hash__\n"
                    "def add(a, b):\n    return Three(7)\n",
    "nonce from memory, forged records": (
        "import __main__, os, json\n"
        "n = __main__._P['nonce']\n"
        "for fd in range(3, 64):\n"
        "    try:\n"
        "        for i in range(2):\n"
        "            os.write(fd, (n + ' ' + json.dumps({'i': i, 'j': 0, 'v': '42'}) + '\\n').encode())\n"
        "        os.write(fd, (n + ' ' + json.dumps({'end': 2}) + '\\n').encode())\n"
        "    except OSError:\n        pass\n"
        "os._exit(0)\n"),
    "exit early": "import sys\ndef add(a, b):\n    sys.exit(0)\n",
    "patch the serialiser": "import __main__\n__main__._harness = lambda P: None\ndef add(a, b):\n    return None\n",
}


@pytest.mark.parametrize("trick", list(TRICKS), ids=list(TRICKS))
def test_tricks_score_zero(level: str, trick: str) -> None:
    result = _run(TRICKS[trick], level)
    assert not result.passed and "passed" not in result.tests, (result.status, result.tests, result.output)


def test_a_correct_function_with_an_input_demo_passes_in_lenient_mode(level: str) -> None:
    demo = HONEST + "n = int(input())\nprint(add(n, 1))\n"
    assert _run(demo, level).passed  # falls back to the definitions
    main = HONEST + "if __name__ == '__main__':\n    print(add(int(input()), 1))\n"
    assert _run(main, level).passed  # not run as __main__
    with pytest.warns(RuntimeWarning) if level == "process" else _nothing():
        paper = sandbox.run_tests(demo, TESTS, TIMEOUT, level=level, mode="paper")
    assert paper.status == "error"  # the paper's scoring runs the whole answer as __main__


def test_auto_never_picks_process_when_not_root(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(levels, "_is_root", lambda: False)
    monkeypatch.setattr(levels, "_PROBES", {"bwrap": "missing", "namespaces": "missing", "process": None})
    with pytest.raises(sandbox.SandboxUnavailable, match="explicitly"):
        sandbox.detect_level("auto")
    assert sandbox.detect_level("process") == "process"
    monkeypatch.setattr(levels, "_is_root", lambda: True)
    assert sandbox.detect_level("auto") == "process"


def test_the_sweep_kills_tagged_descendants_even_after_setsid() -> None:
    tag = levels._take_tag()
    try:
        marker = f"guards-tagged-{uuid.uuid4().hex}"
        limits = levels._limits(30, 4096, tag)
        daemon = ("import os, sys, time\nif os.fork() == 0:\n    os.setsid()\n    if os.fork() == 0:\n"
                  "        os.execv(sys.executable,\n"
                  f"                 [sys.executable, '-c', 'import time; time.sleep(60)', '{marker}'])\n"
                  "    os._exit(0)\n")
        subprocess.run([*limits, sys.executable, "-c", daemon], check=True, timeout=30)
        assert _processes_with(marker, wait_s=0) != []  # the double-forked daemon is alive, in its own session
        bystander = subprocess.Popen(["sleep", "30"])
        levels._sweep(os.getuid(), tag)
        assert _processes_with(marker) == []
        assert bystander.poll() is None  # untagged processes of the same uid are left alone
        bystander.kill()
        bystander.wait()
    finally:
        levels._release_tag(tag)


@pytest.mark.skipif(not ROOT, reason="the dedicated uid exists only as root")
def test_root_process_level_cleans_the_temp_folders() -> None:
    name = f"guards-left-{uuid.uuid4().hex}"
    code = HONEST + "".join(
        f"try:\n    open({f'{d}/{name}'!r}, 'w').write('x')\nexcept OSError:\n    pass\n" for d in levels.TEMP_DIRS)
    assert _run(code, "process").passed
    assert [d for d in levels.TEMP_DIRS if Path(d, name).exists()] == []


_AS_CALLER = r"""
import json, os, sys, warnings
from guards import sandbox

secret, marker = sys.argv[1], sys.argv[2]
code = '''def add(a, b):
    return a + b
import os, sys
FOUND = [k for k, v in os.environ.items() if SECRET in v]
SCANNED = 0
for pid in os.listdir('/proc'):
    try:
        if SECRET.encode() in open('/proc/' + pid + '/environ', 'rb').read():
            FOUND.append(pid)
        SCANNED += 1
    except OSError:
        pass
if os.fork() == 0:
    os.setsid()
    if os.fork() == 0:
        os.execv(sys.executable, [sys.executable, '-c', 'import time; time.sleep(60)', MARKER])
    os._exit(0)
import time
time.sleep(0.3)
'''.replace("SECRET", repr(secret)).replace("MARKER", repr(marker))
tests = ["assert add(1, 2) == 3", "assert FOUND == []", "assert SCANNED >= 1"]
with warnings.catch_warnings():
    warnings.simplefilter("ignore")
    result = sandbox.run_tests(code, tests, 5.0, level="process")
print(json.dumps({"passed": result.passed, "status": result.status, "tests": list(result.tests),
                  "output": result.output}))
"""


def test_non_root_process_level_hides_the_callers_environment_and_kills_setsid_daemons() -> None:
    """The issue's non-root `process` findings, with the caller a plain user (as root: uid 65534 via setpriv):
    the code cannot read the caller's API key from /proc/<ppid>/environ, and a setsid double fork is killed."""
    secret, marker = "sk-test-secret-caller", f"guards-nonroot-{uuid.uuid4().hex}"
    cmd = [sys.executable, "-c", _AS_CALLER, secret, marker]
    if ROOT:
        setpriv = shutil.which("setpriv")
        if setpriv is None:
            pytest.skip("setpriv (util-linux) is needed to run the caller as a plain user")
        cmd = [setpriv, "--reuid=65534", "--regid=65534", "--clear-groups", *cmd]
    repo = str(Path(__file__).resolve().parent.parent)
    env = {"PATH": os.environ.get("PATH", "/usr/bin:/bin"), "OPENAI_API_KEY": secret, "HOME": "/tmp",
           "PYTHONPATH": os.pathsep.join([repo, os.environ.get("PYTHONPATH", "")])}
    try:
        done = subprocess.run(cmd, capture_output=True, text=True, timeout=60, env=env, cwd="/tmp")
        assert done.returncode == 0, done.stderr[-2000:]
        result = json.loads(done.stdout.strip().splitlines()[-1])
        assert secret not in result["output"]
        assert result["passed"] and result["tests"] == ["passed"] * 3, result
        assert _processes_with(marker) == []  # the setsid double fork did not survive the run
    finally:
        for pid in _processes_with(marker, wait_s=0):
            with contextlib.suppress(OSError):
                os.kill(pid, signal.SIGKILL)
