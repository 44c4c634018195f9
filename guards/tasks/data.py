"""Data loading: a local folder in the upstream layout (GUARDS_DATA_DIR) or Hugging Face datasets.

Every problem with the data is one exception naming the file (and the line, for a bad row), never a traceback
and never a quietly empty task: zero items can never pass a gate.
"""

from __future__ import annotations

import csv
import json
from collections.abc import Iterable, Mapping, Sequence
from pathlib import Path
from typing import Any


class DataUnavailable(RuntimeError):
    """The data for a task is neither in the local folder nor reachable online (or cannot be used: see DataError).
    The message is one line, meant to be shown as it is."""


class DataError(DataUnavailable):
    """The data is there but unusable: wrong columns, a bad or truncated row, no items, fewer items than asked.
    The message names the file, and the line for a bad row."""


def require_file(data_dir: Path, relative: str) -> Path:
    """`data_dir/relative`, or a clear error naming what is missing and how to provide it."""
    path = data_dir / relative
    if not path.exists():
        raise DataUnavailable(
            f"{path} not found: set GUARDS_DATA_DIR (or --guards-data-dir) to a folder in the upstream layout"
        )
    return path


def read_jsonl(path: Path, required: Sequence[str], types: Mapping[str, type] | None = None) -> list[dict[str, Any]]:
    """Rows of a JSON-lines file, each an object with every `required` key (of the type in `types`, converted);
    DataError naming the line if not."""
    rows = []
    try:
        with path.open(encoding="utf-8") as handle:
            for line_no, line in enumerate(handle, 1):
                if not line.strip():
                    continue
                try:
                    row = json.loads(line)
                except ValueError as exc:
                    cut = "" if line.endswith("\n") else " (the file looks truncated)"
                    raise DataError(f"{path}:{line_no}: not valid JSON{cut}: {exc}") from None
                if not isinstance(row, dict):
                    raise DataError(f"{path}:{line_no}: expected a JSON object, got {type(row).__name__}")
                missing = [k for k in required if k not in row]
                if missing:
                    raise DataError(f"{path}:{line_no}: missing key(s) {', '.join(missing)}")
                for key, kind in (types or {}).items():
                    row[key] = field(row, key, kind, path, line_no)
                rows.append(row)
    except UnicodeDecodeError as exc:
        raise DataError(f"{path}: not UTF-8 text ({exc.reason} at byte {exc.start})") from None
    except OSError as exc:
        raise DataUnavailable(f"{path}: cannot read: {exc.strerror or exc}") from None
    return nonempty(rows, path)


def read_csv(path: Path, required: Sequence[str], types: Mapping[str, type] | None = None) -> list[dict[str, Any]]:
    """Rows of a CSV file with a header holding every `required` column; DataError naming the file or line."""
    rows = []
    try:
        with path.open(newline="", encoding="utf-8") as handle:
            reader = csv.DictReader(handle)
            header = reader.fieldnames or []
            missing = [c for c in required if c not in header]
            if missing:
                found = ", ".join(header) if header else "no header"
                raise DataError(f"{path}: missing column(s) {', '.join(missing)} (found: {found})")
            for row in reader:
                if any(row.get(c) is None for c in required):
                    raise DataError(f"{path}:{reader.line_num}: the row has fewer fields than the header "
                                    "(a truncated file?)")
                converted: dict[str, Any] = dict(row)
                for key, kind in (types or {}).items():
                    converted[key] = field(row, key, kind, path, reader.line_num)
                rows.append(converted)
    except UnicodeDecodeError as exc:
        raise DataError(f"{path}: not UTF-8 text ({exc.reason} at byte {exc.start})") from None
    except csv.Error as exc:
        raise DataError(f"{path}: not valid CSV: {exc}") from None
    except OSError as exc:
        raise DataUnavailable(f"{path}: cannot read: {exc.strerror or exc}") from None
    return nonempty(rows, path)


def field(row: dict[str, Any], key: str, kind: type, path: Path | str, line: int | str) -> Any:
    """`row[key]` converted to `kind` (int, str), or DataError naming the file, line and key."""
    value = row.get(key)
    try:
        if kind is int:
            if isinstance(value, bool):
                raise ValueError(value)
            return int(value)  # type: ignore[arg-type]
        if kind is str:
            if not isinstance(value, str):
                raise TypeError(value)
            return value
        if kind is list:
            if not isinstance(value, list) or not all(isinstance(v, str) for v in value):
                raise TypeError(value)
            return value
    except (TypeError, ValueError):
        pass
    raise DataError(f"{path}:{line}: {key} is not {'a list of strings' if kind is list else kind.__name__}: "
                    f"{str(value)[:60]!r}")


def nonempty(rows: list[Any], source: Path | str) -> list[Any]:
    """`rows`, or DataError when there are none: an empty task must stop the run, not pass it."""
    if not rows:
        raise DataError(f"{source}: no items (an empty or header-only file)")
    return rows


def enough(task: str, items: Iterable[Any], asked: int, source: Path | str | None) -> list[Any]:
    """The items, or DataError when the task has fewer than `asked` (or none): a smaller sample than the one
    configured would silently weaken the gate."""
    got = list(items)
    where = f"{source}" if source else f"task {task}"
    if not got:
        raise DataError(f"{where}: task {task} loaded no items")
    if len(got) < asked:
        raise DataError(f"{where}: task {task} has {len(got)} items, fewer than the {asked} asked "
                        f"(lower [tasks.{task}] samples or use a profile that asks fewer)")
    return got


def load_hf(name: str, config: str | None = None, split: str = "test") -> list[dict[str, Any]]:
    """Rows of a Hugging Face dataset split (needs the `datasets` extra and network)."""
    try:
        import datasets  # noqa: PLC0415  (heavy, optional)
    except ImportError as exc:  # pragma: no cover - depends on the extra
        raise DataUnavailable(
            f"no local data and the `datasets` extra is not installed (pip install 'persona-guard[hf]') for {name}"
        ) from exc
    try:
        ds = datasets.load_dataset(name, config, split=split)
    except Exception as exc:  # noqa: BLE001 - network/hub errors vary
        raise DataUnavailable(f"could not load {name} from Hugging Face: {exc}") from exc
    return nonempty([dict(row) for row in ds], f"Hugging Face {name} ({split})")
