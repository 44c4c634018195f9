"""Readers of a finished report (the JSON dict): verdicts as the build treats them, rows, counts, axes."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from guards.core.verdicts import ORDER, shown

ICON = {"fail": "❌", "error": "⛔", "inconclusive": "⚠️", "pass": "✅", "waived": "🟡"}

AXES = ("utility", "safety")


def shown_verdict(entry: Mapping[str, Any]) -> str:
    """The verdict as the build treats it: an active waiver turns a fail into `waived`."""
    return shown(entry)


def rank(verdict: str) -> int:
    return ORDER.get(verdict, 9)


def axis_rows(report: Mapping[str, Any]) -> list[tuple[Mapping[str, Any], str, Mapping[str, Any]]]:
    """(identity, axis, axis entry) for every tested pair, failures and errors first, then by gap."""
    rows = [(ident, axis, ident["axes"][axis]) for ident in report.get("identities", [])
            for axis in AXES if axis in ident.get("axes", {})]
    return sorted(rows, key=lambda r: (rank(shown_verdict(r[2])), r[2].get("delta") or 0.0))


def verdict_counts(report: Mapping[str, Any]) -> dict[str, int]:
    counts: dict[str, int] = {}
    for _, _, entry in axis_rows(report):
        v = shown_verdict(entry)
        counts[v] = counts.get(v, 0) + 1
    return counts


def baseline_axis(report: Mapping[str, Any], axis: str) -> float | None:
    """The baseline's macro score on one axis (as the identities' axis entries state it)."""
    for ident in report.get("identities", []):
        entry = ident.get("axes", {}).get(axis)
        if entry is not None and entry.get("baseline") is not None:
            return float(entry["baseline"])
    return None


def task_axes(report: Mapping[str, Any]) -> dict[str, str]:
    """task -> axis, read from the identities' entries."""
    out: dict[str, str] = {}
    for ident in report.get("identities", []):
        for axis, entry in ident.get("axes", {}).items():
            for task in entry.get("tasks", {}):
                out[task] = axis
    return out


def mdd_range(report: Mapping[str, Any]) -> tuple[float, float] | None:
    mdds = [t["mdd"] for ident in report.get("identities", []) for a in ident.get("axes", {}).values()
            for t in a.get("tasks", {}).values() if t.get("mdd") is not None]
    return (min(mdds), max(mdds)) if mdds else None


def report_axes(report: Mapping[str, Any]) -> dict[str, str]:
    """task -> axis, read from the identities' entries."""
    return task_axes(report)


def report_margins(report: Mapping[str, Any], margin: float | None) -> dict[tuple[str, str], float]:
    """`margin` for every identity x task; None: each test's own gate threshold from the report."""
    out = {}
    for ident in report.get("identities", []):
        for entry in ident.get("axes", {}).values():
            for task, t in entry.get("tasks", {}).items():
                out[(ident["id"], task)] = float(margin if margin is not None else t.get("threshold") or 0.0)
    return out
