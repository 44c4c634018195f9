"""Data loading: a local folder in the upstream layout (GUARDS_DATA_DIR) or Hugging Face datasets."""

from __future__ import annotations

from pathlib import Path
from typing import Any


class DataUnavailable(RuntimeError):
    """The data for a task is neither in the local folder nor reachable online."""


def require_file(data_dir: Path, relative: str) -> Path:
    """`data_dir/relative`, or a clear error naming what is missing and how to provide it."""
    path = data_dir / relative
    if not path.exists():
        raise DataUnavailable(
            f"{path} not found: set GUARDS_DATA_DIR (or --guards-data-dir) to a folder in the upstream layout"
        )
    return path


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
    return [dict(row) for row in ds]
