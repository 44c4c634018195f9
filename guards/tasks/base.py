"""What every task provides: its axis, data files, per-profile sizes, loading items and scoring one response."""

from __future__ import annotations

from collections.abc import Mapping
from pathlib import Path
from typing import Any, Protocol

from guards.core.items import Axis, Item, Score


class Task(Protocol):
    """A benchmark. Utility tasks score responses themselves; safety tasks are scored by a judge.

    Everything the rest of the tool needs to know about a task is declared here, so a new task is one file plus
    one registration (``@register`` or the ``persona_guard.tasks`` entry-point group)::

        @register
        class Glossary:
            name = "glossary"
            axis = "utility"
            single_turn = False
            version = "1"
            sizes = {"smoke": 2, "pr": 200, "nightly": 500, "paper": 500}
            data_files = {"": "glossary/test.jsonl"}
            ...
    """

    name: str
    axis: Axis
    single_turn: bool  # the identity line goes at the top of the user turn (MBPP), not in a system message
    version: str  # bump when scoring changes, so cached scores are not reused
    sizes: Mapping[str, int]  # profile name -> items asked
    variants: Mapping[str, str]  # profile name -> the data variant that profile reads (the paper's splits)
    data_files: Mapping[str, str]  # variant ("" = default) -> path under GUARDS_DATA_DIR that the run reads
    options: tuple[str, ...]  # Settings fields the scorer depends on (passed as keywords, part of the score key)
    blocking: bool  # scoring is CPU work (a sandbox): run it in a thread pool as wide as the machine

    def load(self, data_dir: Path | None, variant: str | None = None) -> list[Item]:
        """All items of the task, from `data_dir` (upstream layout) or Hugging Face when None."""
        ...

    def score(self, item: Item, response: str, **options: Any) -> Score:
        """Score one response (utility tasks). May block (MBPP runs a sandbox)."""
        ...


class TaskDefaults:
    """Defaults for the optional parts of the protocol; shipped tasks inherit them."""

    single_turn = False
    version = "1"
    variants: Mapping[str, str] = {}
    options: tuple[str, ...] = ()
    blocking = False

    def score(self, item: Item, response: str, **options: Any) -> Score:
        raise NotImplementedError("safety tasks are scored by a judge (guards.judges), not by the task")
