"""Verdicts: the four values a test can take, their order, and the waiver rule (written once, here)."""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from typing import Any, Literal

Verdict = Literal["pass", "fail", "inconclusive", "error"]
Shown = Literal["pass", "fail", "inconclusive", "error", "waived"]
VERDICTS: tuple[Verdict, ...] = ("pass", "fail", "inconclusive", "error")
ORDER: dict[str, int] = {"error": 0, "fail": 1, "inconclusive": 2, "waived": 2, "pass": 3}  # worst first


def shown(entry: Mapping[str, Any]) -> Shown:
    """The verdict as the build treats it: an active waiver turns a `fail` into `waived` (an xfail)."""
    verdict = str(entry.get("verdict", "error"))
    if verdict == "fail" and (entry.get("waiver") or {}).get("active"):
        return "waived"
    return verdict if verdict in VERDICTS else "error"


def worst(verdicts: Iterable[str]) -> Verdict:
    """error > fail > inconclusive > pass; `waived` counts as a pass; nothing at all is an error (no evidence)."""
    seen = ["pass" if v == "waived" else v for v in verdicts]
    if not seen:
        return "error"
    for level in ("error", "fail", "inconclusive"):
        if level in seen:
            return level
    return "pass"
