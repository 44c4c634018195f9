"""Numbers as people read them: one set of formatters for Markdown, the terminal and HTML."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any


def num(x: Any, digits: int = 1, suffix: str = "") -> str:
    return "n/a" if x is None else f"{x:.{digits}f}{suffix}"


def signed(x: Any, digits: int = 1) -> str:
    return "n/a" if x is None else f"{x:+.{digits}f}"


def interval(ci: Sequence[Any] | None, level: Any = None, digits: int = 1) -> str:
    if not ci or ci[0] is None or ci[1] is None:
        return "n/a"
    text = f"[{ci[0]:+.{digits}f}, {ci[1]:+.{digits}f}]"
    return f"{text} ({level_text(level)})" if level is not None else text


def level_text(level: float) -> str:
    """A confidence level in percent with enough digits not to read as 100% (99.98%, not 100.0%)."""
    for decimals in (1, 2, 3, 4):
        text = f"{100 * level:.{decimals}f}"
        if float(text) < 100 or level >= 1:
            return f"{text}%"
    return f"{100 * level:.4f}%"


def pvalue(p: Any) -> str:
    if p is None:
        return "n/a"
    return "<0.0001" if p < 1e-4 else f"{p:.4f}" if p < 0.01 else f"{p:.3f}"
