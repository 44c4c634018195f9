"""One gate run: settings in, report out. Shared by the pytest plugin and the `guards` command."""

from __future__ import annotations

import asyncio
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from guards.config.settings import Settings
from guards.core.outcomes import Outcomes, outcomes_path
from guards.report.build import build_report, load_report, write_report
from guards.run.progress import progress_bars


@dataclass
class GateRun:
    """The evaluated matrix of one session: its report (verdicts) and per-item outcomes."""

    settings: Settings
    report: dict[str, Any] = field(default_factory=dict)  # a Report (guards.report.types) once evaluated
    outcomes: Outcomes | None = None

    def identity(self, identity_id: str) -> dict[str, Any] | None:
        return next((i for i in self.report.get("identities", []) if i["id"] == identity_id), None)

    @property
    def aborted(self) -> str | None:
        """Why the run stopped asking before the end (circuit breaker, deadline), if it did."""
        return self.report.get("record", {}).get("aborted")

    @property
    def partial(self) -> dict[str, Any] | None:
        """The shards a merged report lacks (a partial merge), if any."""
        return self.report.get("record", {}).get("partial")


def finalize(report: dict[str, Any], outcomes: Outcomes) -> dict[str, Any]:
    """Copy what the run recorded about its own failures into the report, and let none of it gate green.

    An aborted run (breaker, deadline) is the `error` verdict whatever the error rate; a partial merge (shards
    missing) is `error` unless it already found a failure (a fail on part of the data is still a fail).
    """
    record = report.setdefault("record", {})
    meta = outcomes.meta
    record["aborted"] = meta.get("aborted")
    record["request_errors"] = list(meta.get("request_errors") or [])  # type: ignore[call-overload]
    if meta.get("partial"):
        record["partial"] = meta["partial"]
    if record["aborted"] or (meta.get("partial") and report.get("verdict") != "fail"):
        report["verdict"] = "error"
    return report


def evaluate(settings: Settings, *, show_progress: bool = True, shard: tuple[int, int] | None = None,
             report_path: Path | None = None) -> GateRun:
    """Fill the matrix (from the cache where possible), analyse it, write the report if configured.

    A shard (0-based index, count) records itself as `shard: [i, n]` (1-based) and is partial: its own report
    never gates; `guards merge` joins the whole set."""
    from guards.run.runner import collect

    with progress_bars("persona-guard", show_progress) as bars:
        outcomes = asyncio.run(collect(settings, progress=bars("asking") if bars else None, shard=shard))
    if shard is not None:
        index, count = shard[0] + 1, shard[1]
        outcomes.meta["shard"] = [index, count]
        outcomes.meta["partial"] = {"shard": f"{index}/{count}",
                                    "missing": [f"{i}/{count}" for i in range(1, count + 1) if i != index],
                                    "of": count}
    report = finalize(build_report(settings, outcomes), outcomes)
    target = report_path or (Path(settings.report) if settings.report else None)
    if target is not None:
        write_report(report, target, outcomes)
    return GateRun(settings, report, outcomes)


def from_report(settings: Settings, path: Path) -> GateRun:
    """Gate on a finished report without asking any model."""
    outcomes = Outcomes.read(outcomes_path(path)) if outcomes_path(path).exists() else None
    return GateRun(settings, load_report(path), outcomes)
