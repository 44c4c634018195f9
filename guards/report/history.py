"""History of runs under one folder, and drift: did the latest run's gaps move against an earlier run?

Layout: `history.jsonl` (one line per run: record, verdicts, scores) and `runs/<run>.json` (the full report)
plus `runs/<run>.outcomes.jsonl.gz` (the per-item outcomes drift pairs on). Append-only, diffable,
restorable with actions/cache or a branch.
"""

from __future__ import annotations

import gzip
import hashlib
import json
from collections.abc import Mapping, Sequence
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

from guards.analysis.compare import Change, compare_runs
from guards.core.outcomes import Cell, Outcomes, outcomes_path
from guards.report.fields import report_axes, report_margins

INDEX = "history.jsonl"


def run_id(report: Mapping[str, Any]) -> str:
    """A stable id of a run: its time plus a short hash of its record."""
    rec = report.get("record", {})
    digest = hashlib.sha256(json.dumps(rec, sort_keys=True, default=str).encode()).hexdigest()[:8]
    stamp = str(rec.get("time", "")).replace(":", "").replace("-", "").split("+")[0]
    return f"{stamp}-{digest}"


def entry(report: Mapping[str, Any], run: str) -> dict[str, Any]:
    """The history line of a run: what it ran against and every verdict and score."""
    rec = report.get("record", {})
    pb = report.get("pb") or {}
    return {
        "run": run,
        "time": rec.get("time"),
        "model": rec.get("model"),
        "model_versions": rec.get("model_versions", []),
        "system_prompt_sha256": rec.get("system_prompt_sha256"),
        "config_sha256": rec.get("config_sha256"),
        "profile": rec.get("profile"),
        "tool_version": rec.get("version"),
        "verdict": report.get("verdict"),
        "pb": {k: pb.get(k) for k in ("paper", "corrected", "ci", "threshold", "verdict")},
        "baseline": {t: b.get("score") for t, b in report.get("baseline", {}).items()},
        "identities": {
            i["id"]: {axis: {"score": e.get("score"), "delta": e.get("delta"), "ci": e.get("ci"),
                             "verdict": e.get("verdict"),
                             "tasks": {t: {"score": x.get("score"), "delta": x.get("delta"), "ci": x.get("ci"),
                                           "verdict": x.get("verdict"), "n": x.get("n"),
                                           "threshold": x.get("threshold")}
                                       for t, x in e.get("tasks", {}).items()}}
                      for axis, e in i.get("axes", {}).items()}
            for i in report.get("identities", [])
        },
        "report": f"runs/{run}.json",
        "outcomes": None,
    }


def write_outcomes_gz(outcomes: Outcomes, path: Path) -> None:
    """The outcomes file format (header line, then one cell per line), gzip-compressed."""
    with gzip.open(path, "wt", encoding="utf-8") as handle:
        handle.write(json.dumps({"items": outcomes.items, "epochs": outcomes.epochs, "meta": outcomes.meta}) + "\n")
        for cell in outcomes.cells:
            handle.write(json.dumps(asdict(cell)) + "\n")


def read_outcomes(path: Path) -> Outcomes:
    """Outcomes from a `.outcomes.jsonl` or `.outcomes.jsonl.gz` file."""
    if path.suffix != ".gz":
        return Outcomes.read(path)
    with gzip.open(path, "rt", encoding="utf-8") as handle:
        header = json.loads(handle.readline())
        cells = [Cell(**json.loads(line)) for line in handle if line.strip()]
    return Outcomes(items=header["items"], cells=cells, epochs=header["epochs"], meta=header.get("meta", {}))


def append_history(folder: Path, report: dict[str, Any], outcomes: Outcomes | None = None, *,
                   report_path: Path | None = None) -> str:
    """Append one run to the history under `folder`; returns its run id (appending twice is a no-op).

    The per-item outcomes come from `outcomes`, else from beside `report_path`; without either the run
    is recorded with its scores only, and drift cannot pair on it.
    """
    folder.mkdir(parents=True, exist_ok=True)
    run = run_id(report)
    if any(e["run"] == run for e in load_history(folder)):
        return run
    runs = folder / "runs"
    runs.mkdir(exist_ok=True)
    line = entry(report, run)
    (runs / f"{run}.json").write_text(json.dumps(report, ensure_ascii=False) + "\n", encoding="utf-8")
    if outcomes is None and report_path is not None and outcomes_path(report_path).exists():
        outcomes = Outcomes.read(outcomes_path(report_path))
    if outcomes is not None:
        write_outcomes_gz(outcomes, runs / f"{run}.outcomes.jsonl.gz")
        line["outcomes"] = f"runs/{run}.outcomes.jsonl.gz"
    with (folder / INDEX).open("a", encoding="utf-8") as handle:
        handle.write(json.dumps(line, ensure_ascii=False) + "\n")
    return run


def load_history(folder: Path) -> list[dict[str, Any]]:
    """History lines, oldest first (by time, then by order of appending)."""
    path = folder / INDEX
    if not path.exists():
        return []
    lines = [json.loads(x) for x in path.read_text(encoding="utf-8").splitlines() if x.strip()]
    return sorted(lines, key=lambda e: str(e.get("time") or ""))


@dataclass
class Drift:
    """The latest run against a reference run: every identity x task change, and which were flagged."""

    latest: str
    reference: str | None
    changes: list[Change] = field(default_factory=list)
    notes: list[str] = field(default_factory=list)
    charts: list[str] = field(default_factory=list)

    @property
    def flagged(self) -> list[Change]:
        return [c for c in self.changes if c.verdict in ("worse", "better")]

    @property
    def identities(self) -> list[str]:
        return sorted({c.identity for c in self.flagged})

    def as_dict(self) -> dict[str, Any]:
        return {"latest": self.latest, "reference": self.reference, "drift": bool(self.flagged),
                "identities": self.identities, "flagged": [asdict(c) for c in self.flagged],
                "changes": [asdict(c) for c in self.changes], "notes": self.notes, "charts": self.charts}


def pick_reference(history: Sequence[Mapping[str, Any]], latest: str, against: str = "previous"
                   ) -> Mapping[str, Any] | None:
    """The run to compare with: the one before `latest` ("previous"), the oldest ("first"), or a run id."""
    earlier = [e for e in history if e["run"] != latest and e.get("outcomes")]
    if against == "first":
        return earlier[0] if earlier else None
    if against == "previous":
        order = [e["run"] for e in history]
        pos = order.index(latest) if latest in order else len(order)
        before = [e for e in earlier if order.index(e["run"]) < pos]
        return before[-1] if before else None
    return next((e for e in earlier if e["run"] == against), None)


def drift(folder: Path, *, report: Mapping[str, Any] | None = None, outcomes: Outcomes | None = None,
          latest: str | None = None, against: str = "previous", margin: float | None = None,
          alpha: float | None = None) -> Drift:
    """Compare the latest run (`report` + `outcomes`, else run `latest` of the history, else its last run)
    with a reference run of the history, paired per item.

    `margin`: the change (pp) that counts; None = each test's gate threshold. Holm over all identity x
    task changes at `alpha` (default: the run's alpha).
    """
    history = load_history(folder)
    if report is not None:
        current: dict[str, Any] = entry(report, run_id(report))
    else:
        if not history:
            raise ValueError(f"no history in {folder}")
        found = next((e for e in history if e["run"] == latest), None) if latest else history[-1]
        if found is None:
            raise ValueError(f"run {latest} is not in the history in {folder}")
        current = dict(found)
        report = json.loads((folder / current["report"]).read_text(encoding="utf-8"))
        if current.get("outcomes"):
            outcomes = read_outcomes(folder / current["outcomes"])
    result = Drift(current["run"], None)
    if outcomes is None:
        result.notes.append("the latest run has no per-item outcomes: nothing to pair on")
        return result
    ref = pick_reference(history, current["run"], against)
    if ref is None:
        result.notes.append("no earlier run with per-item outcomes: nothing to compare with yet")
        return result
    result.reference = ref["run"]
    for key, label in (("model_versions", "model version"), ("system_prompt_sha256", "system prompt"),
                       ("config_sha256", "configuration")):
        if ref.get(key) != current.get(key):
            result.notes.append(f"{label} changed between the runs: {ref.get(key)} -> {current.get(key)}")
    rec = report.get("record", {})
    result.changes = compare_runs(read_outcomes(folder / ref["outcomes"]), outcomes, axes=report_axes(report),
                                  margins=report_margins(report, margin),
                                  alpha=float(alpha if alpha is not None else rec.get("alpha", 0.05)),
                                  method=str(rec.get("correction", "holm")))
    return result


def trend_series(history: Sequence[Mapping[str, Any]], identity: str
                 ) -> dict[str, list[tuple[str, float | None, tuple[float, float] | None]]]:
    """task -> [(run label, gap pp, interval), ...] over the history, oldest first."""
    tasks = list(dict.fromkeys(t for e in history for a in e["identities"].get(identity, {}).values()
                               for t in a.get("tasks", {})))
    series: dict[str, list[tuple[str, float | None, tuple[float, float] | None]]] = {t: [] for t in tasks}
    for e in history:
        label = str(e.get("time") or e["run"])[:16].replace("T", " ")
        found = {t: x for a in e["identities"].get(identity, {}).values() for t, x in a.get("tasks", {}).items()}
        for task in tasks:
            x = found.get(task, {})
            ci = x.get("ci")
            series[task].append((label, x.get("delta"), (ci[0], ci[1]) if ci and None not in ci else None))
    return series


def trend_charts(folder: Path, out: Path, result: Drift, identities: Sequence[str] | None = None) -> list[Path]:
    """One PNG per identity: its gap per task over the history (with the gate's threshold), drift circled."""
    from guards.report.plots import trend_plot

    history = load_history(folder)
    people = list(identities) if identities is not None else list(
        dict.fromkeys(i for e in history for i in e["identities"]))
    paths = []
    for person in people:
        flagged = [c.task for c in result.flagged if c.identity == person]
        last: dict[str, Any] = next(
            (e["identities"][person] for e in reversed(history) if person in e["identities"]), {})
        thresholds = {t: x["threshold"] for a in last.values() for t, x in a.get("tasks", {}).items()
                      if x.get("threshold") is not None}
        paths.append(trend_plot(person, trend_series(history, person), out / f"trend-{person}.png",
                                flagged=flagged, thresholds=thresholds))
    result.charts = [str(p) for p in paths]
    return paths


def drift_markdown(result: Drift) -> str:
    """The drift summary for a job summary or an issue body."""
    from guards.report.format import num, pvalue, signed

    head = "## persona-guard drift: " + (
        f"{len(result.identities)} identities moved: " + ", ".join(f"`{i}`" for i in result.identities)
        if result.flagged else "no significant change")
    lines = [head, "", f"Latest run `{result.latest}` against `{result.reference or 'none'}`."]
    lines += [f"- {n}" for n in result.notes]
    if result.flagged:
        lines += ["", "| identity | task | gap before | gap now | change (pp) | interval | adjusted p | direction |",
                  "|---|---|---|---|---|---|---|---|"]
        for c in sorted(result.flagged, key=lambda c: c.change):
            lines.append(f"| `{c.identity}` | {c.task} | {signed(c.before)} | {signed(c.after)} | {signed(c.change)} "
                         f"| [{signed(c.ci[0])}, {signed(c.ci[1])}] | {pvalue(c.p_adjusted)} | {c.verdict} |")
    tested = len(result.changes)
    if tested:
        margins = sorted({c.margin for c in result.changes})
        lines += ["", f"{tested} identity × task gaps compared on shared items (paired score test, Holm); "
                      f"a change counts beyond {', '.join(num(m) for m in margins)} pp."]
    return "\n".join(lines) + "\n"
