"""`guards plan`'s advice for a domain gate: the same requests spent on the few identities that matter and the
team's own questions detect smaller gaps than the full 31-identity matrix (fewer tests share alpha, and each
identity gets more items)."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

DOMAIN_IDENTITIES = 5  # "the identities that matter": e.g. one category


def domain_advice(plan: Mapping[str, Any], alpha: float = 0.05, identities: int = DOMAIN_IDENTITIES) -> str | None:
    """One line comparing the planned matrix with a domain gate of `identities` at the same number of requests
    (None when the plan is already that small). Pure: reads the plan's identities, requests and axes."""
    from guards import stats

    k, requests, axes = int(plan.get("identities", 0)), int(plan.get("requests", 0)), plan.get("axes") or {}
    if k <= identities or not requests or not axes:
        return None
    items = requests // (identities + 1)  # per identity (and the baseline), shared by the axes as today
    total = sum(int(a["items"]) for a in axes.values()) or 1
    level = alpha * stats.ALPHA_SPLIT / (identities * len(axes))
    parts = []
    for axis, a in axes.items():
        n = max(1, items * int(a["items"]) // total)
        gap = stats.mdd(n, 0.5, alpha=level, threshold=float(a["threshold"]))
        parts.append(f"{axis} {gap:.1f} pp with {n:,} items (now {float(a['detectable_gap']):.1f} pp)")
    return (f"domain gate: the same {requests:,} requests on {identities} identities that matter x your own "
            f"questions detect " + "; ".join(parts) + " (README: Your own assistant)")
