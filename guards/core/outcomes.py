"""Per-item outcomes: what each identity's answer to each item scored. The input of every analysis."""

from __future__ import annotations

import json
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

BASELINE = "baseline"


class OutcomesError(ValueError):
    """An outcomes file that cannot be read (corrupt, truncated, not UTF-8): one line naming the file and line."""


@dataclass(frozen=True, slots=True)
class Cell:
    """One (identity, task, item, epoch) answer. `value` None = no usable outcome (error or unscored)."""

    identity: str
    task: str
    item: str
    epoch: int
    value: float | None
    refused: bool = False
    blocked: bool = False
    error: str | None = None
    response_key: str = ""  # a short hash of the answer text (pairs check that a text is the one scored)
    request_key: str = ""  # the response cache's key of the answer (the HTML report reads texts by it)
    tokens_in: int = 0
    tokens_out: int = 0
    format_ok: bool | None = None  # the answer followed the instructed format (utility tasks)


@dataclass(repr=False)
class Outcomes:
    """All cells of a run plus the item order of each task (the prefix-stable sample)."""

    items: dict[str, list[str]]
    cells: list[Cell] = field(default_factory=list)
    epochs: int = 1
    meta: dict[str, object] = field(default_factory=dict)
    _groups: tuple[int, dict[tuple[str, str], list[Cell]]] | None = field(default=None, init=False, repr=False,
                                                                          compare=False)

    def __repr__(self) -> str:
        """Short: CPython 3.11's asyncio.run formats the finished task's result (tens of thousands of cells)."""
        sizes = ", ".join(f"{t}: {len(ids)}" for t, ids in self.items.items())
        return f"Outcomes({len(self.cells)} cells; items {{{sizes}}}; epochs {self.epochs})"

    def index(self) -> dict[tuple[str, str, str, int], Cell]:
        return {(c.identity, c.task, c.item, c.epoch): c for c in self.cells}

    def groups(self) -> dict[tuple[str, str], list[Cell]]:
        """Cells by (identity, task), computed once per set of cells."""
        cached = self._groups
        if cached is None or cached[0] != len(self.cells):
            grouped: dict[tuple[str, str], list[Cell]] = {}
            for cell in self.cells:
                grouped.setdefault((cell.identity, cell.task), []).append(cell)
            cached = (len(self.cells), grouped)
            self._groups = cached
        return cached[1]

    def matrix(self, identity: str, task: str, index: Mapping[tuple[str, str, str, int], Cell] | None = None
               ) -> np.ndarray:
        """Outcomes of one identity on one task: shape (n_items, epochs), NaN where missing."""
        index = index if index is not None else self.index()
        ids = self.items[task]
        out = np.full((len(ids), self.epochs), np.nan)
        for row, item in enumerate(ids):
            for epoch in range(self.epochs):
                cell = index.get((identity, task, item, epoch))
                if cell is not None and cell.value is not None:
                    out[row, epoch] = cell.value
        return out

    def counts(self, identity: str, task: str) -> dict[str, int]:
        mine = self.groups().get((identity, task), [])
        return {
            "items": len(self.items[task]),
            "answers": len(mine),
            "errors": sum(c.error is not None for c in mine),
            "unscored": sum(c.error is None and c.value is None for c in mine),
            "refusals": sum(c.refused for c in mine),
            "blocked": sum(c.blocked for c in mine),
            "format_checked": sum(c.format_ok is not None for c in mine),
            "format_followed": sum(c.format_ok is True for c in mine),
        }

    def write(self, path: Path) -> None:
        """JSON lines: a header with the item order, then one line per cell."""
        path.parent.mkdir(parents=True, exist_ok=True)
        with path.open("w", encoding="utf-8") as handle:
            handle.write(json.dumps({"items": self.items, "epochs": self.epochs, "meta": self.meta}) + "\n")
            for cell in self.cells:
                handle.write(json.dumps(asdict(cell)) + "\n")

    @classmethod
    def read(cls, path: Path) -> Outcomes:
        """The outcomes written by `write`; OutcomesError naming the file and line for anything else."""
        try:
            with path.open(encoding="utf-8") as handle:
                lines = handle.read().split("\n")
        except UnicodeDecodeError as exc:
            raise OutcomesError(f"{path}: not UTF-8 text ({exc.reason} at byte {exc.start})") from None
        except OSError as exc:
            raise OutcomesError(f"{path}: cannot read: {exc.strerror or exc}") from None
        header = _line(path, 1, lines[0] if lines else "")
        items, epochs = header.get("items"), header.get("epochs")
        if not isinstance(items, dict) or not all(isinstance(v, list) for v in items.values()) \
                or type(epochs) is not int or epochs < 1:
            raise OutcomesError(f"{path}:1: not an outcomes header (items, epochs)")
        cells = []
        for no, line in enumerate(lines[1:], 2):
            if not line.strip():
                continue
            data = _line(path, no, line)
            try:
                cell = Cell(**data)
            except TypeError as exc:
                raise OutcomesError(f"{path}:{no}: not a cell: {exc}") from None
            if not all(isinstance(x, str) for x in (cell.identity, cell.task, cell.response_key, cell.request_key)) \
                    or type(cell.epoch) is not int or not (cell.value is None or isinstance(cell.value, int | float)):
                raise OutcomesError(f"{path}:{no}: a cell with fields of the wrong type")
            cells.append(cell)
        meta = header.get("meta", {})
        return cls(items=items, cells=cells, epochs=epochs, meta=meta if isinstance(meta, dict) else {})

    @classmethod
    def merge(cls, parts: Sequence[Outcomes]) -> Outcomes:
        """Join shards of one run: each carries the full item order and the cells of its slice."""
        if not parts:
            raise ValueError("nothing to merge")
        for part in parts[1:]:
            if part.items != parts[0].items or part.epochs != parts[0].epochs:
                raise ValueError("shards come from different runs (item order or epochs differ)")
        cells: dict[tuple[str, str, str, int], Cell] = {}
        for part in parts:
            cells.update(part.index())
        meta = {k: v for k, v in parts[0].meta.items() if k != "shard"}
        return cls(items=dict(parts[0].items), cells=list(cells.values()), epochs=parts[0].epochs, meta=meta)


def _line(path: Path, no: int, line: str) -> dict[str, Any]:
    try:
        data = json.loads(line)
    except ValueError as exc:
        raise OutcomesError(f"{path}:{no}: not valid JSON (a truncated file?): {exc}") from None
    if not isinstance(data, dict):
        raise OutcomesError(f"{path}:{no}: expected a JSON object")
    return data


def outcomes_path(report_path: Path) -> Path:
    """Where the per-item outcomes of a report live: beside it."""
    return report_path.with_name(report_path.stem + ".outcomes.jsonl")


def iter_identities(outcomes: Outcomes) -> Iterable[str]:
    return dict.fromkeys(c.identity for c in outcomes.cells).keys()
