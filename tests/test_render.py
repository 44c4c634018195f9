"""Reports people read, rendered from a run of the real gate against the loopback planted-bias assistant."""

from __future__ import annotations

import json
import re
from pathlib import Path
from typing import Any

import pytest
from hypothesis import given
from hypothesis import strategies as st
from reports_helpers import IDENTITIES, PLANTED, SAMPLES, TASKS

from guards.cli.reports import cmd_report
from guards.core.outcomes import Cell, Outcomes, outcomes_path
from guards.models.cache import Cache
from guards.report.fields import axis_rows, shown_verdict
from guards.report.html import responses_from_cache
from guards.report.markdown import MARKER, markdown_summary, pr_comment
from guards.testing import COMPLY, ScriptedAssistant

from gate_helpers import run_gate, script, write_config

FAILURES = {("minor", "utility"), ("gay", "safety")}


@pytest.fixture(scope="module")
def gate_run(tmp_path_factory: pytest.TempPathFactory, data_dir: Path) -> Path:
    """`pytest suites/` with --guards-report: the report, its outcomes and the response cache under one folder."""
    tmp = tmp_path_factory.mktemp("gate")
    config = tmp / "thresholds.toml"
    with ScriptedAssistant() as server:
        write_config(config, url=server.url, identities=IDENTITIES, tasks=TASKS, samples=SAMPLES,
                     cache_dir=tmp / "cache")
        server.set_script(script(config, data_dir, biases=PLANTED))
        result = run_gate(config, data_dir, tmp, f"--guards-report={tmp / 'report.json'}")
    assert result.returncode == 1, result.output
    return tmp / "report.json"


@pytest.fixture(scope="module")
def report(gate_run: Path) -> dict[str, Any]:
    return dict(json.loads(gate_run.read_text()))


def failure_rows(markdown: str) -> set[tuple[str, str]]:
    section = markdown.split("### Failures", 1)[1].split("###", 1)[0]
    rows = re.findall(r"^\| `([a-z0-9-]+)` \| [^|]+ \| (utility|safety) \|.*fail \|$", section, flags=re.M)
    return set(rows)


def test_markdown_lists_the_planted_identities_as_failures_first(report: dict[str, Any]) -> None:
    md = markdown_summary(report)
    first = md.splitlines()[0]
    assert first.startswith("## ") and "FAIL" in first  # the verdict comes first
    assert failure_rows(md) == FAILURES
    assert md.index("### Failures") < md.index("### Every identity and axis")
    table = md.split("### Every identity and axis", 1)[1]
    order = re.findall(r"^\| `([a-z0-9-]+)` \| [^|]+ \| (utility|safety) \|", table, flags=re.M)
    assert set(order[:2]) == FAILURES  # failures on top of the full table too
    assert len(set(order)) == len(IDENTITIES) * 2
    assert "Personalization Bias" in md and "pb_max" in md
    assert "### Baseline" in md and "mmlu" in md and "Smallest gap this run can detect" in md


def test_pr_comment_carries_the_marker_and_the_change_against_base(report: dict[str, Any]) -> None:
    comment = pr_comment(report)
    assert comment.startswith(MARKER + "\n")
    assert failure_rows(comment) == FAILURES
    base = json.loads(json.dumps(report))
    base["verdict"] = "pass"
    for ident in base["identities"]:
        for axis in ident["axes"].values():
            axis["verdict"] = "pass"
    with_base = pr_comment(report, base)
    assert "Compared with the base branch" in with_base
    assert "`minor` | utility | pass → fail" in with_base


def test_html_is_self_contained_and_redacts_harmful_responses(gate_run: Path, data_dir: Path) -> None:
    out = gate_run.parent / "report.html"
    cmd_report([str(gate_run), "--html", str(out), "--cache-dir", str(gate_run.parent / "cache"),
                "--data-dir", str(data_dir)])
    page = out.read_text()
    assert "http://" not in page and "https://" not in page
    refs = re.findall(r"""(?:src|href)\s*=\s*["']?([^"'\s>]+)""", page, flags=re.I)
    assert refs and all(r.startswith("data:image/png;base64,") for r in refs), refs
    assert not re.search(r"@import|url\(", page)
    assert "<script" not in page
    assert "Therefore, the answer is" in page  # utility responses are shown where the minor diverged
    assert COMPLY[:40] not in page  # responses to harmful prompts are not
    assert "redacted" in page
    cmd_report([str(gate_run), "--html", str(out), "--cache-dir", str(gate_run.parent / "cache"),
                "--include-harmful"])
    assert COMPLY[:40] in out.read_text()  # opting in shows them (gay complied where the baseline refused)


def test_plot_has_one_point_per_identity(report: dict[str, Any], tmp_path: Path) -> None:
    from guards.report.plots import identity_plot

    figure = identity_plot(report, tmp_path / "identities")
    assert [p.id for p in figure.points] == [i["id"] for i in report["identities"]]
    assert len({p.id for p in figure.points}) == len(IDENTITIES)
    minor = next(p for p in figure.points if p.id == "minor")
    assert minor.failed and minor.utility is not None and figure.baseline[0] is not None
    assert minor.utility < figure.baseline[0] - 20  # the planted utility gap shows in the picture
    assert (tmp_path / "identities.png").read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    assert (tmp_path / "identities.svg").read_text().lstrip().startswith("<?xml")


def test_report_command_writes_every_output(gate_run: Path, tmp_path: Path) -> None:
    code = cmd_report([str(gate_run), "--markdown", str(tmp_path / "s.md"), "--comment", str(tmp_path / "c.md"),
                       "--base", str(gate_run), "--plots", str(tmp_path), "--html", str(tmp_path / "r.html")])
    assert code == 0
    assert failure_rows((tmp_path / "s.md").read_text()) == FAILURES
    comment = (tmp_path / "c.md").read_text()
    assert comment.startswith(MARKER) and "No identity's gap grew with evidence" in comment  # base == head
    assert (tmp_path / "identities.png").exists() and (tmp_path / "r.html").exists()
    assert Outcomes.read(outcomes_path(gate_run)).items.keys() == set(TASKS)


VERDICTS = st.sampled_from(["pass", "fail", "inconclusive", "error"])


@st.composite
def reports(draw: st.DrawFn) -> dict[str, Any]:
    n = draw(st.integers(1, 8))
    identities = []
    for k in range(n):
        axes = {}
        for axis in draw(st.sets(st.sampled_from(["utility", "safety"]), min_size=1)):
            delta = draw(st.floats(-60, 60))
            axes[axis] = {"score": 50 + delta / 2, "baseline": 50.0, "delta": delta, "ci": [delta - 5, delta + 5],
                          "ci_level": 0.99, "p_adjusted": draw(st.floats(0, 1)), "verdict": draw(VERDICTS),
                          "tasks": {}}
        identities.append({"id": f"id-{k}", "text": f"person {k}", "category": "C", "axes": axes})
    return {"verdict": "fail", "record": {"profile": "pr", "model": "m"}, "baseline": {}, "pb": None,
            "identities": identities}


@given(reports())
def test_failures_and_errors_always_come_first(report: dict[str, Any]) -> None:
    ranks = [{"error": 0, "fail": 1}.get(shown_verdict(e), 2) for _, _, e in axis_rows(report)]
    assert [r < 2 for r in ranks] == sorted((r < 2 for r in ranks), reverse=True)
    md = markdown_summary(report)
    bad = {(i["id"], a) for i in report["identities"] for a, e in i["axes"].items() if e["verdict"] in ("fail",
                                                                                                         "error")}
    assert ("### Failures" in md) == bool(bad)


def test_html_reads_answers_by_request_key_and_only_the_text_that_was_scored(tmp_path: Path) -> None:
    import hashlib

    def short(text: str) -> str:
        return hashlib.sha256(text.encode()).hexdigest()[:16]

    cache = Cache(tmp_path / "cache.sqlite")
    cache.put_many("responses", {"k1": {"text": "kept"}, "k2": {"text": "refreshed since"}, "k3": {"text": 7}})
    cache.close()
    cells = [Cell("minor", "mmlu", str(i), 0, 1.0, response_key=short(t), request_key=k)
             for i, (k, t) in enumerate([("k1", "kept"), ("k2", "scored"), ("k3", "7"), ("absent", "x")])]
    assert responses_from_cache(tmp_path / "cache.sqlite", cells) == {short("kept"): "kept"}
    (tmp_path / "junk.sqlite").write_bytes(b"not a database" * 100)
    assert responses_from_cache(tmp_path / "junk.sqlite", cells) == {}
    assert responses_from_cache(tmp_path / "missing.sqlite", cells) == {}
    assert not (tmp_path / "missing.sqlite").exists()
