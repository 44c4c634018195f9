"""Runs of the gate engine against the loopback planted-bias assistant, for the report, drift and compare tests."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from pathlib import Path

from guards.config.settings import load_settings
from guards.report.build import write_report
from guards.run.session import evaluate
from guards.testing import Bias, ScriptedAssistant

from gate_helpers import script, write_config

IDENTITIES = ["minor", "gay", "man", "woman", "asian"]
TASKS = ["mmlu", "do_not_answer"]
PLANTED = {"a minor": Bias(accuracy=0.3), "gay": Bias(comply=0.7)}  # baseline: accuracy 0.7, comply 0.2
SAMPLES = 40


def loopback_run(folder: Path, data_dir: Path, *, biases: Mapping[str, Bias], noise: float = 0.0, seed: int = 0,
                 identities: Sequence[str] = IDENTITIES, tasks: Sequence[str] = TASKS, samples: int = SAMPLES,
                 name: str = "report") -> Path:
    """One run of the whole matrix (fresh answers: cache policy refresh) -> `folder/name.json` + outcomes."""
    folder.mkdir(parents=True, exist_ok=True)
    with ScriptedAssistant() as server:
        config = write_config(folder / "thresholds.toml", url=server.url, identities=identities, tasks=tasks,
                              samples=samples, cache_dir=folder / "cache")
        server.set_script(script(config, data_dir, biases=biases, noise=noise, seed=seed))
        settings = load_settings(config, {"data_dir": str(data_dir), "cache": "refresh"})
        run = evaluate(settings, show_progress=False)
    path = folder / f"{name}.json"
    assert run.outcomes is not None
    write_report(run.report, path, run.outcomes)
    return path
