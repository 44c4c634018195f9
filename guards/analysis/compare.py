"""Two runs of the same matrix, paired on their shared items: whose gap to the baseline moved, with evidence.

The change of one identity's gap on one task is, per item, (a - b) - (c - e) with a, b the identity and
baseline in the new run and c, e in the old one. Its mean is the mean of (a + e)/2 minus the mean of
(b + c)/2, times 2. So the gate's own paired test (`stats.decide_family`, Tango's score test on paired
outcomes with Holm over the family) answers "did the gap move by more than `margin`": each side is
given as a two-column matrix (new run, old run), epochs averaged within item first. Fractional
discordance makes the test conservative, never anti-conservative. `guards compare` (base vs head) and
`guards drift` (history vs latest) both use `compare_runs`.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import asdict, dataclass
from typing import Any

import numpy as np

from guards.core.outcomes import BASELINE, Outcomes


@dataclass(frozen=True)
class Change:
    """How one identity's gap on one task moved between two runs (pp; negative = worse for the identity)."""

    identity: str
    task: str
    axis: str
    n: int  # shared items with a value for both sides in both runs
    before: float | None  # the old gap on the shared items
    after: float | None  # the new gap on the shared items
    change: float  # after - before
    ci: tuple[float, float]
    ci_level: float
    p_adjusted: float
    margin: float
    verdict: str  # "worse" | "better" (moved beyond the margin) | "stable" (within it) | "inconclusive"


def _item_means(outcomes: Outcomes, identity: str, task: str, items: Sequence[str],
                index: Mapping[tuple[str, str, str, int], Any]) -> np.ndarray:
    """Per item (in `items` order), the mean over epochs; NaN where no epoch has a value."""
    out = np.full(len(items), np.nan)
    for row, item in enumerate(items):
        values = [c.value for e in range(outcomes.epochs)
                  if (c := index.get((identity, task, item, e))) is not None and c.value is not None]
        if values:
            out[row] = float(np.mean(values))
    return out


def shared_items(old: Outcomes, new: Outcomes, task: str) -> list[str]:
    """Items of `task` asked in both runs, in the new run's order."""
    before = set(old.items.get(task, []))
    return [i for i in new.items.get(task, []) if i in before]


def _gap(ident: np.ndarray, base: np.ndarray) -> float | None:
    keep = np.isfinite(ident) & np.isfinite(base)
    return float(100 * (ident[keep] - base[keep]).mean()) if keep.any() else None


def compare_runs(old: Outcomes, new: Outcomes, *, axes: Mapping[str, str], margins: Mapping[tuple[str, str], float],
                 alpha: float = 0.05, method: str = "holm", identities: Sequence[str] | None = None) -> list[Change]:
    """Paired change of every identity x task gap between two runs, decided with the gate's machinery.

    `axes`: task -> axis; `margins[(identity, task)]`: the change (pp) that counts (0: any change with
    evidence). Two-sided: a gap may grow or shrink. Holm (or `method`) over the whole family at `alpha`.
    """
    from guards import stats

    old_index, new_index = old.index(), new.index()
    people = list(identities) if identities is not None else sorted(
        {c.identity for c in new.cells} & {c.identity for c in old.cells} - {BASELINE})
    comparisons, gaps = [], {}
    for task in (t for t in new.items if t in old.items and t in axes):
        items = shared_items(old, new, task)
        b_new = _item_means(new, BASELINE, task, items, new_index)
        b_old = _item_means(old, BASELINE, task, items, old_index)
        for person in people:
            a = _item_means(new, person, task, items, new_index)
            c = _item_means(old, person, task, items, old_index)
            both = np.isfinite(a) & np.isfinite(b_new) & np.isfinite(c) & np.isfinite(b_old)
            a, b, cc, e = (np.where(both, x, np.nan) for x in (a, b_new, c, b_old))
            key = (person, task)
            gaps[key] = (_gap(cc, e), _gap(a, b))
            comparisons.append(stats.Comparison(key=key, identity=np.column_stack([a, e]),
                                                baseline=np.column_stack([b, cc]),
                                                threshold=margins.get(key, 0.0) / 2))
    if not comparisons:
        return []
    decisions = stats.decide_family(comparisons, alpha=alpha, method=method, direction="both")
    out = []
    for d in decisions:
        person, task = d.key
        before, after = gaps[d.key]
        change = 2 * d.delta
        if d.n == 0:
            verdict = "inconclusive"
        elif d.verdict == "fail":
            verdict = "worse" if change < 0 else "better"
        else:
            verdict = "stable" if d.verdict == "pass" else "inconclusive"
        out.append(Change(person, task, axes[task], d.n, before, after, change, (2 * d.ci[0], 2 * d.ci[1]),
                          d.ci_level, d.p_adjusted, 2 * d.threshold, verdict))
    return out


def summarize(base: Mapping[str, Any], head: Mapping[str, Any], changes: Sequence[Change]) -> dict[str, Any]:
    """The comparison as data: verdicts and PB before and after, every change, and what got worse."""
    bpb, hpb = base.get("pb") or {}, head.get("pb") or {}
    keep = ("paper", "corrected", "ci", "ci_level", "threshold", "verdict")
    return {
        "verdict": {"before": base.get("verdict"), "after": head.get("verdict")},
        "pb": {"before": {k: bpb.get(k) for k in keep}, "after": {k: hpb.get(k) for k in keep}},
        "record": {"before": _rec(base), "after": _rec(head)},
        "changes": [asdict(c) for c in changes],
        "worse": sorted({c.identity for c in changes if c.verdict == "worse"}),
        "better": sorted({c.identity for c in changes if c.verdict == "better"}),
    }


def _rec(report: Mapping[str, Any]) -> dict[str, Any]:
    rec = report.get("record", {})
    keys = ("model", "model_versions", "system_prompt_sha256", "config_sha256", "profile", "time")
    return {k: rec.get(k) for k in keys}

