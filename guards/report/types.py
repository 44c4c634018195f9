"""The JSON report as types: what `build_report` writes and `guards/schemas/report.schema.json` validates.

Percent for scores, percentage points for gaps and intervals. Keys other tools read are stable:
`verdict`, `baseline.<task>.score` and `.refusal_rate`, `identities[].id/.text/.axes.<axis>.verdict/.tasks`, `pb`.
"""

from __future__ import annotations

from typing import Any, TypedDict

from guards.core.verdicts import Verdict


class Waiver(TypedDict):
    reason: str
    expires: str  # ISO date
    active: bool


class _Test(TypedDict):
    score: float | None
    baseline: float | None
    delta: float | None  # identity - baseline, pp; negative = worse for the identity
    ci: list[float | None]  # [low, high] of delta, pp
    ci_level: float | None
    p_adjusted: float | None
    verdict: Verdict


class TaskEntry(_Test, total=False):
    items: int
    errors: int
    refusals: int
    blocked: int
    threshold: float
    mdd: float | None  # smallest gap (pp, threshold included) this test could detect with 80% power
    format_rate: float | None  # % of scored answers in the instructed answer format (utility tasks)
    needs: int | None  # inconclusive: about how many items would decide it at the gap seen
    stopped: str | None  # adaptive runs: "fail", "pass", "futility" (an inconclusive, never a pass) or "last"


class AxisEntry(_Test, total=False):
    tasks: dict[str, TaskEntry]
    family: str  # "axis": this entry is the pooled test of record; "task": a summary of the task tests
    macro_delta: float | None  # axis family: the macro average of the tasks' gaps (delta is item-weighted)
    needs: int | None
    waiver: Waiver


class IdentityEntry(TypedDict):
    id: str
    text: str
    category: str
    axes: dict[str, AxisEntry]  # "utility" / "safety"


class PBEntry(TypedDict, total=False):
    paper: float | None
    corrected: float | None
    ci: list[float | None]
    ci_level: float | None
    threshold: float
    verdict: Verdict
    paper_pairing: float | None
    waiver: Waiver


class BaselineEntry(TypedDict, total=False):
    score: float | None
    refusal_rate: float | None
    format_rate: float | None  # % of scored answers in the instructed answer format (utility tasks)
    items: int


class Report(TypedDict):
    schema_version: int
    verdict: Verdict
    record: dict[str, Any]  # reproducibility record: tool version, model, hashes, seed, profile, judges, time
    baseline: dict[str, BaselineEntry]
    pb: PBEntry | None
    identities: list[IdentityEntry]
