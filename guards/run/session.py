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
    report: dict[str, Any] = field(default_factory=dict)
    outcomes: Outcomes | None = None

    def identity(self, identity_id: str) -> dict[str, Any] | None:
        return next((i for i in self.report.get("identities", []) if i["id"] == identity_id), None)


def evaluate(settings: Settings, *, show_progress: bool = True, shard: tuple[int, int] | None = None) -> GateRun:
    """Fill the matrix (from the cache where possible), analyse it, write the report if configured."""
    from guards.run.runner import collect

    with progress_bars("persona-guard", show_progress) as bars:
        outcomes = asyncio.run(collect(settings, progress=bars("asking") if bars else None, shard=shard))
    report = build_report(settings, outcomes)
    if settings.report:
        write_report(report, Path(settings.report), outcomes)
    return GateRun(settings, report, outcomes)


def from_report(settings: Settings, path: Path) -> GateRun:
    """Gate on a finished report without asking any model."""
    outcomes = Outcomes.read(outcomes_path(path)) if outcomes_path(path).exists() else None
    return GateRun(settings, load_report(path), outcomes)
