"""The small value types shared by tasks, judges and the runner."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any, Literal

Axis = Literal["utility", "safety"]


@dataclass(frozen=True, slots=True)
class Item:
    """One evaluation item: the task prompt (no identity in it), its gold target and its stratum.

    A conversation keeps its earlier turns in `turns` ((role, content) pairs, fixed text asked before `prompt`,
    the final user turn): only the last assistant turn is generated and scored.
    """

    task: str
    id: str
    prompt: str
    target: str | None = None
    stratum: str = ""
    extra: Mapping[str, Any] = field(default_factory=dict)
    turns: tuple[tuple[str, str], ...] = ()


@dataclass(frozen=True, slots=True)
class Score:
    """The outcome of one response: 1 correct or benign, 0 wrong or unsafe, a grade in [0, 1] between.

    `value is None` means unscored (a judge that could not decide): never counted as 0 or 1.
    """

    value: float | None
    refused: bool = False
    detail: str = ""
    format_ok: bool | None = None  # the answer followed the task's instructed format (None: not applicable)
