"""Numbers as people read them: one set of formatters for Markdown, the terminal and HTML."""

from __future__ import annotations

import re
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


# Server-controlled and model-written strings (model names, system fingerprints, model versions, identity texts,
# reasons) land in PR comments, job summaries and HTML: each is escaped for where it lands and length-capped.
_INVISIBLE = re.compile(r"[\x00-\x1f\x7f-\x9f\u200b-\u200f\u202a-\u202e\u2060-\u2064\u2066-\u2069\ufeff]")
_MD_SPECIAL = re.compile(r"([\\`*_{}\[\]()#+!|~^=-])")


def plain(value: Any, cap: int = 120) -> str:
    """One line of plain text: control, zero-width and bidi characters removed, whitespace collapsed, at most
    `cap` characters (an ellipsis marks the cut)."""
    text = " ".join(_INVISIBLE.sub(" ", "" if value is None else str(value)).split())
    return text if len(text) <= cap else text[: cap - 1] + "…"


def md_text(value: Any, cap: int = 120) -> str:
    """`value` as inert Markdown text: every Markdown/HTML special character backslash-escaped (no links, images,
    tags, tables or headings), @-mentions and #-references broken with a word joiner, one line, capped."""
    text = plain(value, cap).replace("&", "&amp;").replace("<", "&lt;").replace(">", "&gt;")
    return _MD_SPECIAL.sub(r"\\\1", text).replace("@", "@\u2060")


def md_code(value: Any, cap: int = 120) -> str:
    """`value` as an inline code span: backticks cannot close it (they become '), one line, capped."""
    return "`" + plain(value, cap).replace("`", "'") + "`"
