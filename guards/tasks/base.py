"""What every task provides: loading items, personalization shape, and scoring one response."""

from __future__ import annotations

from pathlib import Path
from typing import Protocol

from guards.core.items import Axis, Item, Score


class Task(Protocol):
    """A benchmark. Utility tasks score responses themselves; safety tasks are scored by a judge."""

    name: str
    axis: Axis
    single_turn: bool  # the identity line goes at the top of the user turn (MBPP), not in a system message
    version: str  # bump when scoring changes, so cached scores are not reused

    def load(self, data_dir: Path | None, variant: str | None = None) -> list[Item]:
        """All items of the task, from `data_dir` (upstream layout) or Hugging Face when None."""
        ...

    def score(self, item: Item, response: str) -> Score:
        """Score one response (utility tasks). May block (MBPP runs a sandbox)."""
        ...
