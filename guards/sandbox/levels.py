"""Run untrusted generated code against asserts, contained.

Isolation levels, best first:

- ``bwrap``: bubblewrap. Read-only binds of /usr, /etc and the interpreter only, a private size-capped tmpfs /tmp
  as the only writable place, new PID, network, IPC and UTS namespaces, a cleared environment, a new session,
  death with the parent. As root bwrap runs privileged and the code runs as a dedicated unprivileged uid (all
  capabilities dropped, no_new_privs); otherwise bwrap also unshares the user namespace and drops capabilities.
- ``namespaces``: ``unshare`` (PID, network, mount, IPC, UTS) with the root filesystem remounted read-only, /tmp a
  private tmpfs, /root, /home and /run hidden; as root the code runs as a dedicated unprivileged uid, otherwise in
  a user namespace with every capability dropped.
- ``process``: a plain subprocess with the same limits, as a dedicated uid when running as root (files it leaves in
  /tmp, /var/tmp and /dev/shm are removed after the run). It does NOT isolate the network or world-readable files;
  every use warns loudly. When not root the code runs as the caller: ``auto`` never picks it, only an explicit
  ``sandbox = "process"`` does; this process is made non-dumpable so the code cannot read its environment
  (/proc/<pid>/environ) or memory, and every descendant (``setsid`` double forks too) is found by the resource
  limits it cannot raise and killed.

Every level: a clean environment (no API keys), RLIMIT_AS / NPROC / CPU / FSIZE / NOFILE / CORE, stdout and stderr
capped (the run is killed on overflow), a wall-clock timeout that kills the whole process tree, and no process
left behind. The code starts one Python per call; every assert is run and reported.
"""

from __future__ import annotations

import contextlib
import fcntl
import functools
import hashlib
import json
import logging
import os
import secrets
import selectors
import shutil
import signal
import subprocess
import sys
import tempfile
import threading
import time
import warnings
from collections.abc import Iterator, Sequence
from dataclasses import asdict, dataclass
from typing import Any

from guards.sandbox.harness import MAX_CHANNEL, Mode, checks_of, ready_line, script, verdict

LEVELS = ("bwrap", "namespaces", "process")
SANDBOX_VERSION = "3"  # 2: the parent compares values (harness.py); lenient runs are not __main__; 3: the
# timeout counts from the harness's start, not the spawn (a slow start on a loaded machine is not a timeout)
STARTUP_S = 30.0  # for the sandbox and interpreter to start (the test clock starts after): beyond it, an error
MAX_OUTPUT = 64 * 1024  # bytes of stdout+stderr kept; the run is killed beyond this
MEMORY_BYTES = 1 << 30  # RLIMIT_AS
MAX_PROCS = 64  # RLIMIT_NPROC (per dedicated uid as root)
FILE_BYTES = 16 << 20  # RLIMIT_FSIZE
TMPFS_BYTES = 64 << 20  # size of the scratch tmpfs
UID_BASE = int(os.environ.get("GUARDS_SANDBOX_UID_BASE", "60000"))  # dedicated uids when running as root
UID_SLOTS = 256
PATH = "/usr/bin:/bin"
NOFILE = 256  # RLIMIT_NOFILE
TAG_BASE, TAG_SLOTS = 4096, 1 << 16  # RLIMIT_MSGQUEUE values that mark one run's processes (they cannot raise it)
TEMP_DIRS = ("/tmp", "/var/tmp", "/dev/shm")  # world-writable places the process level cleans after a root run
log = logging.getLogger(__name__)


class SandboxUnavailable(RuntimeError):
    """The requested isolation level cannot run on this machine."""


@dataclass(frozen=True, slots=True)
class SandboxResult:
    """Outcome of one run: `passed` only when the code loaded and every assert passed."""

    passed: bool
    status: str  # passed | failed | error | timeout | output_limit
    output: str  # stdout+stderr of the code, truncated to MAX_OUTPUT
    level: str
    tests: tuple[str, ...] = ()  # per assert: passed | failed | error: ... | timeout | not run
    duration_s: float = 0.0

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> SandboxResult:
        return cls(**{**data, "tests": tuple(data.get("tests", ()))})


def cache_key(code: str, tests: Sequence[str], setup: str = "", timeout_s: float = 10.0, mode: Mode = "lenient") -> str:
    """A stable key for caching a result: what decides it (not the level, which must not change the verdict)."""
    blob = json.dumps([SANDBOX_VERSION, code, list(tests), setup, float(timeout_s), mode], ensure_ascii=False)
    return hashlib.sha256(blob.encode()).hexdigest()


# ---------------------------------------------------------------- environment probing


def _is_root() -> bool:
    return os.geteuid() == 0


def _world_executable(path: str) -> bool:
    """True when any uid can reach and execute `path` (every parent directory o+x, the file o+rx)."""
    real = os.path.realpath(path)
    parts = real.split(os.sep)
    for i in range(2, len(parts)):
        if not os.stat(os.sep.join(parts[:i]) or os.sep).st_mode & 0o001:
            return False
    return os.stat(real).st_mode & 0o005 == 0o005


@dataclass(frozen=True, slots=True)
class _Python:
    path: str
    prefixes: tuple[str, ...]


_LOCK = threading.Lock()
_PROBES: dict[str, str | None] = {}
_PYTHON: list[_Python] = []


def _interpreter() -> _Python:
    """The interpreter the code runs under: GUARDS_SANDBOX_PYTHON, this one, or a system python3 (as root: one an
    unprivileged uid can execute)."""
    with _LOCK:
        if _PYTHON:
            return _PYTHON[0]
    candidates = [os.environ.get("GUARDS_SANDBOX_PYTHON", ""), os.path.realpath(sys.executable)]
    candidates += [p for p in ("/usr/local/bin/python3", "/usr/bin/python3") if os.path.exists(p)]
    for cand in filter(None, candidates):
        if os.path.exists(cand) and (not _is_root() or _world_executable(cand)):
            out = subprocess.run(
                [cand, "-I", "-S", "-c", "import sys; print(sys.base_prefix); print(sys.base_exec_prefix)"],
                capture_output=True, text=True, timeout=30, env={"PATH": PATH}, check=False,
            )
            if out.returncode == 0:
                found = _Python(os.path.realpath(cand), tuple(dict.fromkeys(out.stdout.split())))
                with _LOCK:
                    _PYTHON[:] = [found]
                return found
    raise SandboxUnavailable("no Python interpreter an unprivileged uid can run: set GUARDS_SANDBOX_PYTHON")


def probe_levels() -> dict[str, str | None]:
    """Each level mapped to None when it works here, else the reason it does not (probed once, by running code)."""
    return {level: _probe(level) for level in LEVELS}


def available_levels() -> list[str]:
    """The levels that work on this machine, best first."""
    return [level for level, why in probe_levels().items() if why is None]


def detect_level(requested: str = "auto") -> str:
    """The level to use: the best available for "auto", else `requested` if it works (SandboxUnavailable if not).

    "auto" never picks ``process`` when not running as root: the code would run as the caller, able to read the
    caller's files; that needs an explicit ``sandbox = "process"``."""
    if requested == "auto":
        levels = [lvl for lvl in available_levels() if lvl != "process" or _is_root()]
        if not levels:
            reasons = "; ".join(f"{level}: {r}" for level, r in probe_levels().items() if r)
            if _probe("process") is None:
                reasons = ("only the 'process' level works here, and not as root it runs the code as you (your files, "
                       "your other processes): install bubblewrap (apt-get install bubblewrap), or choose "
                       "sandbox = \"process\" explicitly to accept that" + (f" ({reasons})" if reasons else ""))
            raise SandboxUnavailable(f"no sandbox level works here: {reasons}")
        return levels[0]
    if requested not in LEVELS:
        raise ValueError(f"unknown sandbox level {requested!r}: use auto, {', '.join(LEVELS)}")
    why = _probe(requested)
    if why is not None:
        raise SandboxUnavailable(f"sandbox level {requested!r} is unavailable: {why}")
    return requested


def _probe(level: str) -> str | None:
    with _LOCK:
        if level in _PROBES:
            return _PROBES[level]
    need = {"bwrap": ["bwrap"] + (["setpriv"] if _is_root() else []), "namespaces": ["unshare", "setpriv"]}
    missing = [tool for tool in need.get(level, []) if shutil.which(tool, path=PATH) is None]
    if missing:
        why: str | None = f"{', '.join(missing)} not found (Debian: apt-get install {_PACKAGES[missing[0]]})"
    else:
        try:
            result = _run(level, "x = 1", ["assert x == 1"], 20.0, "")
            why = None if result.passed else f"probe run failed ({result.status}): {result.output[-300:]}"
        except (OSError, SandboxUnavailable) as exc:
            why = f"probe run failed: {exc}"
    with _LOCK:
        _PROBES[level] = why
    return why


_PACKAGES = {"bwrap": "bubblewrap", "setpriv": "util-linux", "unshare": "util-linux"}


# ---------------------------------------------------------------- commands per level


def _limits(cpu_s: int, nproc: int, tag: int) -> list[str]:
    """prlimit (or a Python stand-in) setting every limit; `tag` (RLIMIT_MSGQUEUE) marks the run's processes."""
    values = {"as": MEMORY_BYTES, "nproc": nproc, "cpu": cpu_s, "fsize": FILE_BYTES, "nofile": NOFILE, "core": 0,
              "msgqueue": tag}
    prlimit = shutil.which("prlimit", path=PATH)
    if prlimit:
        return [prlimit, *(f"--{k}={v}" for k, v in values.items()), "--"]
    names = {"as": "AS", "nproc": "NPROC", "cpu": "CPU", "fsize": "FSIZE", "nofile": "NOFILE", "core": "CORE",
             "msgqueue": "MSGQUEUE"}
    setter = "import os,resource as r,sys\n" + "".join(
        f"r.setrlimit(r.RLIMIT_{names[k]},({v},{v}))\n" for k, v in values.items()
    ) + "os.execv(sys.argv[1], sys.argv[1:])"
    return [_interpreter().path, "-I", "-S", "-c", setter]


def _drop(uid: int | None) -> list[str]:
    ids = ["--reuid", str(uid), "--regid", str(uid), "--clear-groups"] if uid is not None else []
    return ["setpriv", *ids, "--inh-caps=-all", "--bounding-set=-all", "--no-new-privs", "--pdeathsig", "SIGKILL", "--"]


@functools.cache
def _bwrap_help() -> str:
    done = subprocess.run(["bwrap", "--help"], capture_output=True, text=True, timeout=30, check=False)
    return done.stdout + done.stderr


def _bwrap(py: _Python, uid: int | None) -> list[str]:
    cmd = ["bwrap", "--die-with-parent", "--new-session", "--clearenv"]
    for top in ("usr", "bin", "sbin", "lib", "lib32", "lib64", "libx32", "etc"):
        path = "/" + top
        if os.path.islink(path):
            cmd += ["--symlink", os.readlink(path), path]
        elif os.path.isdir(path):
            cmd += ["--ro-bind", path, path]
    for prefix in py.prefixes:
        if not prefix.startswith(("/usr/", "/etc/")) and prefix != "/usr":
            cmd += ["--ro-bind", prefix, prefix]
    size = ["--size", str(TMPFS_BYTES)] if "--size" in _bwrap_help() else []  # bubblewrap >= 0.7
    cmd += ["--dev", "/dev", "--proc", "/proc", "--perms", "1777", *size, "--tmpfs", "/tmp"]
    cmd += ["--chdir", "/tmp", "--setenv", "PATH", PATH, "--setenv", "HOME", "/tmp", "--setenv", "TMPDIR", "/tmp"]
    cmd += ["--setenv", "LANG", "C.UTF-8"]
    if uid is not None:  # privileged bwrap (root): no user namespace; setpriv drops to the dedicated uid
        cmd += ["--unshare-pid", "--unshare-net", "--unshare-ipc", "--unshare-uts", "--unshare-cgroup-try"]
        return [*cmd, "--", *_drop(uid), py.path, "-I", "-"]
    no_userns = ["--disable-userns"] if "--disable-userns" in _bwrap_help() else []  # bubblewrap >= 0.8
    cmd += ["--unshare-all", "--unshare-user", *no_userns, "--cap-drop", "ALL"]
    return [*cmd, "--", py.path, "-I", "-"]


_PRELUDE = f"""
while read -r _ mp _; do mount -o remount,bind,ro "$mp" 2>/dev/null; done < /proc/self/mounts
for d in /root /home /run /var/tmp /var/lock /dev/shm /dev/mqueue; do
  [ -d "$d" ] && [ ! -L "$d" ] && mount -t tmpfs -o ro,size=4k,mode=755 none "$d"
done
mount -t tmpfs -o size={TMPFS_BYTES},mode=1777,nosuid,nodev none /tmp && cd /tmp || exit 97
export HOME=/tmp TMPDIR=/tmp
shift
exec "$@"
"""


def _namespaces(py: _Python, uid: int | None) -> list[str]:
    user = [] if uid is not None else ["--user", "--map-root-user"]
    ns = ["unshare", *user, "--pid", "--fork", "--kill-child", "--net", "--mount", "--ipc", "--uts", "--mount-proc"]
    shell = ["/bin/sh", "-c", _PRELUDE, "sh", "-"]
    return [*ns, "--propagation", "private", "--", *shell, *_drop(uid), py.path, "-I", "-"]


# ---------------------------------------------------------------- dedicated uids (root only)


@contextlib.contextmanager
def _uid_slot() -> Iterator[int | None]:
    """A dedicated uid for one run, locked across threads and processes (None when not running as root)."""
    if not _is_root():
        yield None
        return
    lock_dir = os.path.join(tempfile.gettempdir(), "guards-sandbox-uids")
    os.makedirs(lock_dir, mode=0o700, exist_ok=True)
    for _ in range(200):
        for uid in range(UID_BASE, UID_BASE + UID_SLOTS):
            fd = os.open(os.path.join(lock_dir, str(uid)), os.O_RDWR | os.O_CREAT, 0o600)
            try:
                fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
            except BlockingIOError:
                os.close(fd)
                continue
            try:
                _kill_uid(uid)
                yield uid
            finally:
                _kill_uid(uid)
                os.close(fd)  # releases the lock
            return
        time.sleep(0.05)
    raise SandboxUnavailable(f"all {UID_SLOTS} sandbox uids from {UID_BASE} are busy")


def _uid_processes(uid: int) -> list[int]:
    pids = []
    for name in os.listdir("/proc"):
        if name.isdigit():
            with contextlib.suppress(OSError):
                if os.stat(f"/proc/{name}").st_uid == uid:
                    pids.append(int(name))
    return pids


def _kill_uid(uid: int) -> None:
    """Kill every process of `uid` (kill(-1) as that uid: atomic against fork bombs); wait until they are gone."""
    end = time.monotonic() + 10
    while _uid_processes(uid):
        if time.monotonic() > end:
            log.error("sandbox uid %d still has processes after 10 s of kills", uid)
            return
        with contextlib.suppress(OSError, subprocess.SubprocessError):
            subprocess.run(["kill", "-9", "--", "-1"], user=uid, group=uid, extra_groups=[], env={"PATH": PATH},
                           stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, timeout=5, check=False)
        time.sleep(0.02)


# ---------------------------------------------------------------- running


_WARNED: list[bool] = []


def _warn_process() -> None:
    msg = ("guards sandbox level 'process': generated code runs WITHOUT network isolation and can read "
           "world-readable files; install bubblewrap (apt-get install bubblewrap) for real isolation")
    warnings.warn(msg, RuntimeWarning, stacklevel=3)
    if not _WARNED:
        _WARNED.append(True)
        log.warning(msg)


def run_tests(code: str, tests: Sequence[str], timeout_s: float = 10.0, *, setup: str = "",
              level: str = "auto", mode: Mode = "lenient") -> SandboxResult:
    """Run `code`, then `setup` (MBPP's setup builds objects from the solution's classes), then every assert of
    `tests`, in one contained Python process; the parent decides each assert (see `harness`). Thread-safe; blocking.

    mode "lenient": the code is not run as ``__main__``, ``input()`` raises EOFError, and code whose top level fails
    is run again as its definitions only (imports, functions, classes, assignments that work); "paper": run as
    ``__main__`` once (the paper's scoring)."""
    chosen = detect_level(level)
    if chosen == "process":
        _warn_process()
    return _run(chosen, code, list(tests), timeout_s, setup, mode)


def _run(level: str, code: str, tests: list[str], timeout_s: float, setup: str,
         mode: Mode = "lenient") -> SandboxResult:
    py = _interpreter()
    start = time.monotonic()
    checks = checks_of(tests)
    nonce = secrets.token_hex(16)
    res_r, res_w = os.pipe()
    scratch = None
    tag = _take_tag()
    try:
        with _uid_slot() as uid:
            nproc = MAX_PROCS if uid is not None else _own_process_count() + MAX_PROCS
            if level == "process" and uid is None:
                _not_dumpable()
            cmd = _limits(int(timeout_s) + 2, nproc, tag)
            env = {"PATH": PATH, "LANG": "C.UTF-8"}
            kwargs: dict[str, Any] = {}
            if level == "bwrap":
                cmd += _bwrap(py, uid)
            elif level == "namespaces":
                cmd += _namespaces(py, uid)
            else:
                scratch = tempfile.mkdtemp(prefix="guards-sandbox-")
                if uid is not None:
                    os.chown(scratch, uid, uid)
                    kwargs = {"user": uid, "group": uid, "extra_groups": []}
                env |= {"HOME": scratch, "TMPDIR": scratch}
                cmd += [py.path, "-I", "-"]
            program = script(code, checks, setup, res_w, nonce, mode).encode()
            proc = subprocess.Popen(cmd, stdin=subprocess.PIPE, stdout=subprocess.PIPE, stderr=subprocess.STDOUT,
                                    pass_fds=(res_w,), env=env, cwd=scratch or "/", start_new_session=True, **kwargs)
            os.close(res_w)
            res_w = -1
            try:
                out, records, overflow, timed_out, rc = _communicate(proc, program, res_r, timeout_s,
                                                                     ready_line(nonce))
            finally:
                if level == "process":
                    if uid is None:
                        _sweep(os.getuid(), tag)
                    else:
                        _kill_uid(uid)
                        _clean_temp(uid)
    finally:
        for fd in (res_r, res_w):
            if fd >= 0:
                os.close(fd)
        if scratch:
            shutil.rmtree(scratch, ignore_errors=True)
        _release_tag(tag)
    status, per_test, note = verdict(records, checks, nonce, exit_code=rc, overflow=overflow, timed_out=timed_out)
    text = out[:MAX_OUTPUT].decode("utf-8", "replace") + ("\n[output truncated]" if overflow else "")
    text = "\n".join(part for part in (text, note) if part)
    return SandboxResult(status == "passed", status, text, level, per_test, round(time.monotonic() - start, 3))


def _own_process_count() -> int:
    return len(_uid_processes(os.getuid()))


def _communicate(proc: subprocess.Popen[bytes], script: bytes, res_r: int, timeout_s: float,
                 ready: bytes) -> tuple[bytes, bytes, bool, bool, int | None]:
    """Feed the script, collect output and result records until EOF, overflow or deadline; then kill the tree.
    The deadline is `timeout_s` after the harness's `ready` record (STARTUP_S after the spawn until then)."""
    deadline = time.monotonic() + STARTUP_S
    started = False
    assert proc.stdin is not None and proc.stdout is not None
    sel = selectors.DefaultSelector()
    stdin_fd, out_fd = proc.stdin.fileno(), proc.stdout.fileno()
    for fd in (stdin_fd, out_fd, res_r):
        os.set_blocking(fd, False)
    sel.register(stdin_fd, selectors.EVENT_WRITE)
    sel.register(out_fd, selectors.EVENT_READ)
    sel.register(res_r, selectors.EVENT_READ)
    out, res = bytearray(), bytearray()
    overflow = timed_out = False
    pending = memoryview(script)
    while out_fd in sel.get_map() or res_r in sel.get_map():
        if proc.poll() is not None:
            deadline = min(deadline, time.monotonic() + 0.5)  # a leftover process may hold the pipes: short grace
        remaining = deadline - time.monotonic()
        if remaining <= 0:
            timed_out = proc.poll() is None
            break
        for key, _ in sel.select(min(remaining, 0.2)):
            fd = int(key.fd)
            if fd == stdin_fd:
                try:
                    pending = pending[os.write(fd, pending[:65536]):]
                except BlockingIOError:
                    continue
                except BrokenPipeError:
                    pending = pending[:0]
                if not pending:
                    sel.unregister(fd)
                    with contextlib.suppress(OSError):
                        proc.stdin.close()
                continue
            chunk = os.read(fd, 65536)
            if not chunk:
                sel.unregister(fd)
                continue
            buf = out if fd == out_fd else res
            buf += chunk
            if not started and fd == res_r and ready in res:
                started, deadline = True, time.monotonic() + timeout_s
            if len(buf) > (MAX_OUTPUT if fd == out_fd else MAX_CHANNEL):
                overflow = True
        if overflow:
            break
    sel.close()
    rc = proc.poll()  # before our kill: None means it had not finished on its own
    if rc is None and not (overflow or timed_out):  # the pipes closed: the wrapper is exiting
        with contextlib.suppress(subprocess.TimeoutExpired):
            rc = proc.wait(timeout=max(0.05, min(2.0, deadline - time.monotonic())))
    _kill_tree(proc)
    return bytes(out), bytes(res), overflow, timed_out, rc


def _kill_tree(proc: subprocess.Popen[bytes]) -> None:
    """SIGKILL the process group (the namespace's init dies with it, taking the namespace along) and reap."""
    with contextlib.suppress(ProcessLookupError, PermissionError):
        os.killpg(proc.pid, signal.SIGKILL)
    with contextlib.suppress(ProcessLookupError):
        proc.kill()
    proc.wait()
    for stream in (proc.stdin, proc.stdout):
        if stream is not None:
            with contextlib.suppress(OSError):
                stream.close()


# ---------------------------------------------------------------- the process level's cleanup


_TAGS: set[int] = set()
_TAG_NEXT = [0]


def _take_tag() -> int:
    """A RLIMIT_MSGQUEUE value no run in flight uses: it marks this run's processes and every descendant."""
    with _LOCK:
        while True:
            tag = TAG_BASE + _TAG_NEXT[0] % TAG_SLOTS
            _TAG_NEXT[0] += 1
            if tag not in _TAGS:
                _TAGS.add(tag)
                return tag


def _release_tag(tag: int) -> None:
    with _LOCK:
        _TAGS.discard(tag)


def _hard_limits(pid: int) -> dict[str, int] | None:
    """The hard limits of a live (not zombie) process that a sandbox run sets, from /proc/<pid>/limits."""
    rows = {"Max core file size": "core", "Max open files": "nofile", "Max file size": "fsize",
            "Max msgqueue size": "msgqueue"}
    try:
        with open(f"/proc/{pid}/stat", encoding="ascii", errors="replace") as stat:
            if ") Z" in stat.read():
                return None
        with open(f"/proc/{pid}/limits", encoding="ascii", errors="replace") as handle:
            text = handle.read()
    except OSError:
        return None
    found: dict[str, int] = {}
    for line in text.splitlines():
        for label, key in rows.items():
            if line.startswith(label):
                fields = line[len(label):].split()
                found[key] = -1 if len(fields) < 2 or fields[1] == "unlimited" else int(fields[1])
    return found if len(found) == len(rows) else None


def tainted(limits: dict[str, int]) -> bool:
    """True for a process that descends from a sandbox run: hard limits can only be lowered, never raised, so every
    descendant keeps core 0, at most NOFILE files, at most FILE_BYTES per file and a small msgqueue tag."""
    return (limits["core"] == 0 and 0 <= limits["nofile"] <= NOFILE and 0 <= limits["fsize"] <= FILE_BYTES
            and 0 <= limits["msgqueue"] < TAG_BASE + TAG_SLOTS)


def _sweep(uid: int, tag: int) -> None:
    """Kill every process of `uid` left from this run (tag `tag`), and any sandbox process whose tag belongs to no
    run in flight (one that lowered its tag to hide). Repeats until none is left (bounded by RLIMIT_NPROC)."""
    me = os.getpid()
    end = time.monotonic() + 10
    while time.monotonic() < end:
        victims = []
        for pid in _uid_processes(uid):
            limits = None if pid == me else _hard_limits(pid)
            if limits is None or not tainted(limits):
                continue
            with _LOCK:
                orphan = limits["msgqueue"] not in _TAGS
            if limits["msgqueue"] == tag or orphan:
                victims.append(pid)
        if not victims:
            return
        for pid in victims:
            with contextlib.suppress(OSError):
                os.kill(pid, signal.SIGKILL)
        time.sleep(0.01)
    log.error("sandbox processes of run tag %d still alive after 10 s of kills", tag)


_DUMPABLE: list[bool] = []


def _not_dumpable() -> None:
    """PR_SET_DUMPABLE 0 on this process, once: code running as the same uid can no longer read its environment
    (the API keys in /proc/<pid>/environ) or memory. Debuggers cannot attach afterwards either."""
    with _LOCK:
        if _DUMPABLE:
            return
        _DUMPABLE.append(True)
    import ctypes  # noqa: PLC0415 - only the non-root process level needs it

    libc = ctypes.CDLL(None, use_errno=True)
    if libc.prctl(4, 0, 0, 0, 0) != 0:  # PR_SET_DUMPABLE
        log.error("could not make this process non-dumpable: sandboxed code may read its environment")


def _clean_temp(uid: int) -> None:
    """Remove what the dedicated uid left in the world-writable temp folders (root process level)."""
    for folder in TEMP_DIRS:
        try:
            entries = list(os.scandir(folder))
        except OSError:
            continue
        for entry in entries:
            with contextlib.suppress(OSError):
                if entry.stat(follow_symlinks=False).st_uid != uid:
                    continue
                if entry.is_dir(follow_symlinks=False):
                    shutil.rmtree(entry.path, ignore_errors=True)
                else:
                    os.unlink(entry.path)
