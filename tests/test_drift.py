"""History, drift and base-vs-head comparison: paired on per-item outcomes with the gate's own test."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from reports_helpers import IDENTITIES, PLANTED, loopback_run

from guards.analysis.compare import compare_runs
from guards.cli.reports import cmd_compare, cmd_drift
from guards.core.outcomes import BASELINE, Cell, Outcomes, outcomes_path
from guards.report.build import load_report
from guards.report.fields import report_axes, report_margins
from guards.report.history import append_history, drift, load_history, read_outcomes
from guards.testing import Bias

NEW_BIAS = {**PLANTED, "a woman": Bias(comply=0.8)}  # a newly planted bias: safety 80% -> 20% for women


@pytest.fixture(scope="module")
def runs(tmp_path_factory: pytest.TempPathFactory, data_dir: Path) -> dict[str, Path]:
    """Three runs of the same matrix: `first`, `changed` (one new bias), `rerun` (no change, fresh sampling)."""
    tmp = tmp_path_factory.mktemp("runs")
    return {
        "first": loopback_run(tmp / "first", data_dir, biases=PLANTED, noise=0.1, seed=1),
        "changed": loopback_run(tmp / "changed", data_dir, biases=NEW_BIAS, noise=0.1, seed=1),
        "rerun": loopback_run(tmp / "rerun", data_dir, biases=PLANTED, noise=0.1, seed=2),
    }


def test_drift_flags_exactly_the_newly_biased_identity(runs: dict[str, Path], tmp_path: Path) -> None:
    history = tmp_path / "history"
    assert cmd_drift(["--history", str(history), "--report", str(runs["first"]), "--append"]) == 0
    code = cmd_drift(["--history", str(history), "--report", str(runs["changed"]), "--append", "--fail-on-drift",
                      "--plots", str(tmp_path / "trends"), "--json", str(tmp_path / "drift.json"),
                      "--markdown", str(tmp_path / "drift.md")])
    assert code == 1
    result = json.loads((tmp_path / "drift.json").read_text())
    assert result["drift"] is True and result["identities"] == ["woman"]
    [flag] = result["flagged"]
    assert flag["task"] == "do_not_answer" and flag["verdict"] == "worse" and flag["change"] < -30
    assert "`woman`" in (tmp_path / "drift.md").read_text()
    assert sorted(p.name for p in (tmp_path / "trends").glob("*.png")) == sorted(f"trend-{i}.png" for i in IDENTITIES)
    assert len(load_history(history)) == 2


def test_two_runs_without_change_flag_nothing(runs: dict[str, Path], tmp_path: Path) -> None:
    history = tmp_path / "history"
    append_history(history, load_report(runs["first"]), report_path=runs["first"])
    result = drift(history, report=load_report(runs["rerun"]), outcomes=read_outcomes(
        outcomes_path(runs["rerun"])))
    assert result.reference is not None and len(result.changes) == len(IDENTITIES) * 2
    assert result.flagged == []
    assert any(c.before != c.after for c in result.changes)  # fresh sampling: the gaps did move by noise
    # the same run twice: every change is exactly zero, nothing flagged
    first = read_outcomes(outcomes_path(runs["first"]))
    report = load_report(runs["first"])
    same = compare_runs(first, first, axes=report_axes(report), margins=report_margins(report, 0.0))
    assert len(same) == len(IDENTITIES) * 2 and all(c.change == 0 and c.verdict != "worse" for c in same)


def test_history_records_the_run_and_is_idempotent(runs: dict[str, Path], tmp_path: Path) -> None:
    report = load_report(runs["first"])
    first = append_history(tmp_path, report, report_path=runs["first"])
    assert append_history(tmp_path, report, report_path=runs["first"]) == first
    [line] = load_history(tmp_path)
    assert line["model"] == report["record"]["model"] and line["config_sha256"] == report["record"]["config_sha256"]
    assert line["identities"]["minor"]["utility"]["verdict"] == "fail"
    assert read_outcomes(tmp_path / line["outcomes"]).cells  # the per-item outcomes drift pairs on
    bare = append_history(tmp_path / "bare", report)  # as the pytest plugin calls it, without outcomes
    assert "no per-item outcomes" in drift(tmp_path / "bare", latest=bare).notes[0]


def test_compare_says_what_a_change_made_worse(runs: dict[str, Path], tmp_path: Path) -> None:
    out = tmp_path / "compare.json"
    base, head = str(runs["first"]), str(runs["changed"])
    assert cmd_compare([base, head, "--json", str(out)]) == 0  # reports, does not gate by default
    summary = json.loads(out.read_text())
    assert summary["worse"] == ["woman"] and summary["better"] == []
    assert summary["pb"]["before"]["corrected"] is not None and summary["pb"]["after"]["corrected"] is not None
    assert cmd_compare([base, head, "--fail-on-regression"]) == 1
    config = tmp_path / "thresholds.toml"
    config.write_text("[thresholds]\nfail_on_regression = true\n")
    assert cmd_compare([base, head, "--config", str(config)]) == 1
    assert cmd_compare([head, base, "--config", str(config)]) == 0  # undoing the bias is "better", not worse
    assert cmd_compare([base, str(runs["rerun"]), "--config", str(config)]) == 0


def outcomes(values: dict[str, np.ndarray], task: str = "mmlu") -> Outcomes:
    n = len(next(iter(values.values())))
    items = [f"q{i}" for i in range(n)]
    cells = [Cell(who, task, items[i], 0, float(v[i])) for who, v in values.items() for i in range(n)]
    return Outcomes(items={task: items}, cells=cells)


@settings(max_examples=40, deadline=None)
@given(st.integers(5, 60), st.integers(0, 2**32 - 1), st.floats(0.05, 0.95))
def test_change_is_the_difference_of_paired_gaps_and_a_run_never_drifts_from_itself(
        n: int, seed: int, rate: float) -> None:
    rng = np.random.default_rng(seed)
    old = outcomes({w: (rng.random(n) < rate).astype(float) for w in (BASELINE, "x", "y")})
    new = outcomes({w: (rng.random(n) < rate).astype(float) for w in (BASELINE, "x", "y")})
    margins = {("x", "mmlu"): 5.0, ("y", "mmlu"): 5.0}
    for c in compare_runs(old, new, axes={"mmlu": "utility"}, margins=margins):
        assert c.before is not None and c.after is not None
        assert c.change == pytest.approx(c.after - c.before, abs=1e-9)
        assert c.ci[0] <= c.change <= c.ci[1]
    same = compare_runs(old, old, axes={"mmlu": "utility"}, margins=margins)
    assert all(c.change == 0 and c.verdict in ("stable", "inconclusive") for c in same)


def test_only_shared_items_are_paired() -> None:
    ones, zeros = np.ones(10), np.zeros(10)
    old = outcomes({BASELINE: ones, "x": ones})
    new = outcomes({BASELINE: np.ones(20), "x": np.concatenate([ones, zeros])})  # 10 extra items, all wrong
    [change] = compare_runs(old, new, axes={"mmlu": "utility"}, margins={("x", "mmlu"): 0.0})
    assert change.n == 10 and change.change == 0.0  # the new items have no counterpart: not a drift
