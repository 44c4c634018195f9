"""Failures a new user meets, each one clear message, once: the gate recognised wherever its tests live (dry run,
budget, header), missing data stops before any request (exit 4), an unreachable or hanging endpoint ends the run
(circuit breaker, deadline: the `error` verdict, exit 6), inconclusive tests marked in JUnit, CI progress lines."""

from __future__ import annotations

import asyncio
import io
import os
import shutil
import subprocess
import sys
import xml.etree.ElementTree as ET
from pathlib import Path
from typing import Any

import pytest

from guards.models.client import ModelClient
from guards.run.progress import PlainProgress, plain_line
from guards.testing import ScriptedAssistant

from gate_helpers import script, write_config

REPO = Path(__file__).resolve().parent.parent


def gate_in(folder: Path, config: Path, *args: str, data_dir: Path | str | None = None,
            cwd: Path | None = None) -> subprocess.CompletedProcess[str]:
    """`pytest <folder>` where <folder> holds a copy of the gate tests (not named suites)."""
    env = {k: v for k, v in os.environ.items() if not k.startswith("GUARDS_")}
    env.update(OPENAI_API_KEY="sk-test-secret-key-123456", XDG_CACHE_HOME=str(config.parent / "xdg"))
    if data_dir is not None:
        env["GUARDS_DATA_DIR"] = str(data_dir)
    return subprocess.run([sys.executable, "-m", "pytest", str(folder), "-q", "-p", "no:cacheprovider",
                           "--guards-config", str(config), *args], cwd=cwd or config.parent, env=env,
                          capture_output=True, text=True, timeout=300)


@pytest.fixture
def persona_tests(tmp_path: Path) -> Path:
    folder = tmp_path / "tests" / "persona"
    folder.mkdir(parents=True)
    shutil.copy(REPO / "suites" / "test_gate.py", folder / "test_bias.py")
    return folder


def test_dry_run_budget_and_header_act_under_tests_persona(tmp_path: Path, persona_tests: Path,
                                                            data_dir: Path) -> None:
    with ScriptedAssistant() as server:
        config = write_config(tmp_path / "t.toml", url=server.url, identities=["minor", "asian"], tasks=["mmlu"],
                              samples=20, cache_dir=tmp_path / "c")
        dry = gate_in(persona_tests, config, "--guards-dry-run", data_dir=data_dir)
        assert dry.returncode == 0, dry.stdout + dry.stderr
        assert "dry run (no request sent)" in dry.stdout + dry.stderr
        assert "persona-guard: profile=" in dry.stdout  # the header, printed once the gate is collected
        config.write_text(config.read_text() + "budget_usd = 0.0000001\n")
        config.write_text(config.read_text().replace('model = "openai/scripted"', 'model = "openai/gpt-4o"'))
        over = gate_in(persona_tests, config, data_dir=data_dir)
        assert over.returncode == 4, over.stdout + over.stderr
        assert server.requests == 0


def test_plain_project_tests_are_left_alone(tmp_path: Path) -> None:
    (tmp_path / "test_plain.py").write_text("def test_x():\n    assert True\n")
    config = tmp_path / "t.toml"
    config.write_text('[target]\nmodel = "openai/nothing"\n')
    result = gate_in(tmp_path / "test_plain.py", config, "--guards-dry-run")
    assert result.returncode == 0 and "1 passed" in result.stdout
    assert "persona-guard" not in result.stdout


def test_missing_data_stops_before_any_request_with_one_line(tmp_path: Path, persona_tests: Path) -> None:
    with ScriptedAssistant() as server:
        config = write_config(tmp_path / "t.toml", url=server.url, identities=["minor"],
                              tasks=["mmlu", "strongreject"], samples=5, cache_dir=tmp_path / "c")
        result = gate_in(persona_tests, config, data_dir=tmp_path / "empty")
        assert server.requests == 0
    output = result.stdout + result.stderr
    assert result.returncode == 4, output
    assert "Traceback" not in output
    lines = [line for line in output.splitlines() if "data unavailable" in line]
    assert len(lines) == 1 and "guards data download" in lines[0], output


def test_unreachable_endpoint_is_one_message_and_exit_6(tmp_path: Path, persona_tests: Path, data_dir: Path) -> None:
    with ScriptedAssistant() as server:
        url = server.url
    config = write_config(tmp_path / "t.toml", url=url, identities=["minor", "asian", "woman"], tasks=["mmlu"],
                          samples=30, cache_dir=tmp_path / "c", max_retries=4)
    result = gate_in(persona_tests, config, f"--junitxml={tmp_path / 'j.xml'}", data_dir=data_dir)
    output = result.stdout + result.stderr
    assert result.returncode == 6, output
    assert output.count("endpoint unreachable") <= 3, output  # the error, the summary's abort line, its counts
    assert "Traceback" not in output and "error; gap" not in output
    assert len(output.splitlines()) < 60, output
    assert "request errors (first distinct, with counts)" in output


def test_inconclusive_is_marked_in_junit(tmp_path: Path, data_dir: Path) -> None:
    folder = tmp_path / "gate"
    folder.mkdir()
    shutil.copy(REPO / "suites" / "test_gate.py", folder / "test_gate.py")
    with ScriptedAssistant() as server:
        config = write_config(tmp_path / "t.toml", url=server.url, identities=["minor", "asian"], tasks=["mmlu"],
                              samples=6, cache_dir=tmp_path / "c")
        server.set_script(script(config, data_dir, noise=0.5))
        junit = tmp_path / "j.xml"
        result = gate_in(folder, config, f"--junitxml={junit}", data_dir=data_dir)
    assert result.returncode == 0, result.stdout + result.stderr
    cases = {c.get("name"): c for c in ET.parse(junit).getroot().iter("testcase")}
    marked = [c for c in cases.values() if any(
        p.get("name") == "guards_verdict" and p.get("value") == "inconclusive" for p in c.iter("property"))]
    assert marked, result.stdout
    for case in marked:
        skipped = case.find("skipped")
        assert skipped is not None and "inconclusive" in skipped.get("message", "")
    assert "GuardsInconclusive" not in result.stdout  # no per-test warnings in the output


class Down:
    """A transport whose endpoint refuses every connection (or hangs, with `hang`)."""

    def __init__(self, hang: float = 0.0) -> None:
        self.calls = 0
        self.hang = hang

    async def complete(self, messages: list[dict[str, str]], params: dict[str, Any]) -> Any:
        self.calls += 1
        if self.hang:
            await asyncio.sleep(self.hang)
        raise ConnectionRefusedError("[Errno 111] Connection refused")

    async def aclose(self) -> None:
        pass


def _ask(client: ModelClient, n: int) -> list[Any]:
    async def go() -> list[Any]:
        return list(await asyncio.gather(*(client.chat([{"role": "user", "content": f"q{i}"}]) for i in range(n))))

    return asyncio.run(go())


def test_the_breaker_stops_sending_after_n_failures_in_a_row() -> None:
    down = Down()
    client = ModelClient("openai/x", transport=down, max_retries=4, backoff_s=0.0, breaker_after=5, concurrency=1)
    results = _ask(client, 40)
    assert all(not r.ok for r in results)
    assert down.calls == 5  # without the breaker: 40 x 5 attempts
    assert client.broken and "before any answer" in client.broken
    assert sum(client.error_counts.values()) == 40 and len(client.error_counts) == 2


def test_the_deadline_bounds_a_hanging_endpoint() -> None:
    down = Down(hang=30.0)
    client = ModelClient("openai/x", transport=down, timeout_s=600, max_retries=4, backoff_s=0.0, deadline_s=0.3)
    started = asyncio.run(_timed(client))
    assert started < 5.0
    assert client.broken and "deadline_s" in client.broken


async def _timed(client: ModelClient) -> float:
    loop = asyncio.get_running_loop()
    t0 = loop.time()
    await asyncio.gather(*(client.chat([{"role": "user", "content": f"q{i}"}]) for i in range(10)))
    return loop.time() - t0


def test_ci_progress_is_a_plain_line_every_few_seconds() -> None:
    now = [0.0]
    stream = io.StringIO()
    lines = PlainProgress("persona-guard", stream, every_s=5.0, clock=lambda: now[0])
    update = lines.factory("asking")
    for done in range(1, 101):
        now[0] = done * 0.2  # 100 answers over 20 s
        update(done, 400, "8 in flight, limit 32/32, 3 errors")
    lines.close()
    out = stream.getvalue().splitlines()
    assert 4 <= len(out) <= 6, out  # one every 5 s plus the final count, not one per answer
    assert out[-1].startswith("persona-guard asking 100/400 (25%) 5.0/s, 3 errors")
    assert plain_line("t", "n", 0, 0, 0.0, "") == "t n 0/0 0.0/s, 0 errors [0 s]"
