"""The gate end to end: `pytest suites/` through litellm (or the direct transport) over HTTP against a scripted
loopback assistant."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from guards.testing import Bias, Faults, ScriptedAssistant

from gate_helpers import run_gate, script, write_config

IDENTITIES = ["minor", "gay", "man", "woman", "christian", "asian"]
TASKS = ["mmlu", "do_not_answer"]
PLANTED = {"a minor": Bias(accuracy=0.3), "gay": Bias(comply=0.7)}  # baseline: accuracy 0.7, comply 0.2


@pytest.fixture
def config(tmp_path: Path) -> Path:
    return tmp_path / "thresholds.toml"


def _setup(config: Path, tmp_path: Path, data_dir: Path, url: str, **kwargs: object) -> Path:
    return write_config(config, url=url, identities=IDENTITIES, tasks=TASKS, samples=80,
                        cache_dir=tmp_path / "cache", **kwargs)  # type: ignore[arg-type]


@pytest.mark.parametrize("transport", ["litellm", "direct"])
def test_planted_bias_fails_exactly_the_planted_pairs(config: Path, tmp_path: Path, data_dir: Path,
                                                      transport: str) -> None:
    with ScriptedAssistant() as server:
        _setup(config, tmp_path, data_dir, server.url)
        server.set_script(script(config, data_dir, biases=PLANTED))
        report = tmp_path / "report.json"
        result = run_gate(config, data_dir, tmp_path, f"--guards-report={report}", f"--guards-transport={transport}")
    assert result.returncode == 1, result.output
    assert result.failed() == {"test_utility[minor]", "test_safety[gay]", "test_pb"}, result.output
    data = json.loads(report.read_text())
    minor = next(i for i in data["identities"] if i["id"] == "minor")
    assert minor["axes"]["utility"]["delta"] == pytest.approx(-40, abs=12)
    assert data["record"]["transport"] == transport and data["record"]["requests"]["errors"] == 0
    assert (tmp_path / "report.outcomes.jsonl").exists()
    assert "sk-test-secret" not in report.read_text() + result.output


def test_no_bias_passes_and_faults_do_not_change_verdicts(config: Path, tmp_path: Path, data_dir: Path) -> None:
    """Only sampling noise: the gate passes; with 429s, 500s and truncated bodies the verdicts are the same."""
    faults = Faults(rate_429=0.08, rate_500=0.08, rate_truncated=0.05, seed=3)
    with ScriptedAssistant(faults=faults) as server:
        _setup(config, tmp_path, data_dir, server.url, max_retries=8)
        server.set_script(script(config, data_dir, biases=PLANTED))
        planted = run_gate(config, data_dir, tmp_path)
        assert sum(server.faults_sent.values()) > 20
        server.set_script(script(config, data_dir, seed=11, noise=0.3))
        clean = run_gate(config, data_dir, tmp_path, "--guards-cache=refresh")
    assert planted.failed() == {"test_utility[minor]", "test_safety[gay]", "test_pb"}, planted.output
    assert clean.returncode == 0, clean.output
    assert not clean.failed()


def test_rerun_against_a_stopped_server_passes_from_the_cache(config: Path, tmp_path: Path, data_dir: Path) -> None:
    with ScriptedAssistant() as server:
        _setup(config, tmp_path, data_dir, server.url)
        server.set_script(script(config, data_dir, biases=PLANTED))
        first = run_gate(config, data_dir, tmp_path)
        asked = server.requests
    assert asked > 0
    second = run_gate(config, data_dir, tmp_path, "--guards-max-retries=0")  # server is gone now
    assert second.outcomes == first.outcomes, second.output
    assert second.returncode == first.returncode == 1


def test_unreachable_model_is_an_error_never_a_pass(config: Path, tmp_path: Path, data_dir: Path) -> None:
    with ScriptedAssistant() as server:
        url = server.url
    write_config(config, url=url, identities=["minor"], tasks=["mmlu"], samples=5, cache_dir=tmp_path / "c",
                 max_retries=1)
    result = run_gate(config, data_dir, tmp_path)
    assert result.returncode != 0
    assert result.outcomes["test_utility[minor]"] == "error", result.output
    assert "passed" not in set(result.outcomes.values()) - {"skipped"}
