"""The JSON report: a reproducibility record plus the verdicts, validated against its schema."""

from __future__ import annotations

import datetime as dt
import hashlib
import json
from collections.abc import Mapping
from importlib import resources
from pathlib import Path
from typing import Any

from guards.analysis.verdicts import analyze
from guards.config.settings import Settings
from guards.core import __version__
from guards.core.outcomes import Outcomes, outcomes_path
from guards.core.schemas import first_error, where
from guards.tasks import get_task


class ReportError(ValueError):
    """A report that does not match its schema, or cannot be read."""


def validate_report(report: Mapping[str, Any]) -> None:
    err = first_error(report, "report")
    if err is not None:
        raise ReportError(f"report does not match its schema at {where(err)}: {err.message}")


def sha256_path(path: Path) -> str:
    """sha256 of a file, or of a folder's files (names and contents, sorted)."""
    digest = hashlib.sha256()
    files = sorted(p for p in path.rglob("*") if p.is_file()) if path.is_dir() else [path]
    for file in files:
        digest.update(file.name.encode())
        digest.update(file.read_bytes())
    return digest.hexdigest()


def data_hashes(settings: Settings) -> dict[str, str]:
    """sha256 of every data file the run read: files under the data folder by their relative path, a custom
    task's own file (an absolute path) wherever it is; online data is not hashed."""
    root = settings.data_path
    out = {}
    for task in settings.tasks:
        files = get_task(task).data_files
        name = files.get(settings.variants.get(task) or "", files[""])
        path = Path(name) if Path(name).is_absolute() else root / name if root is not None else None
        if path is not None and path.exists():
            out[name] = sha256_path(path)
    return out


def judge_record(outcomes: Outcomes) -> dict[str, Any]:
    """Name, version (as the run recorded them) and measured agreement with people of each safety task's judge."""
    judges = outcomes.meta.get("judges")
    if not isinstance(judges, dict):
        return {}
    return {task: {**j, "agreement": _agreement(str(j.get("name", "")))} for task, j in judges.items()}


def _agreement(name: str) -> Any:
    """The judge's hold-out agreement measured by benchmarks/judges.py, when recorded."""
    path = resources.files("guards").joinpath("judges/weights/agreement.json")
    if not path.is_file():
        return None
    return json.loads(path.read_text()).get("judges", {}).get(name)


def record(settings: Settings, outcomes: Outcomes) -> dict[str, Any]:
    """Everything needed to reproduce the run. No secret: keys are never part of settings."""
    prompt = settings.system_prompt
    meta = outcomes.meta
    return {
        "tool": "persona-guard",
        "version": __version__,
        "model": settings.model,
        "transport": settings.transport,
        "model_versions": list(meta.get("model_versions", [])),  # type: ignore[call-overload]
        "system_prompt_sha256": hashlib.sha256(prompt.encode()).hexdigest() if prompt is not None else None,
        "template": settings.template,
        "baseline_mode": settings.baseline,
        "config_sha256": settings.config_sha256,
        "data_sha256": data_hashes(settings),
        "seed": settings.seed,
        "profile": settings.profile,
        "params": dict(settings.params),
        "epochs": settings.epochs,
        "tasks": {t: {"samples": len(outcomes.items.get(t, [])), "variant": settings.variants.get(t)}
                  for t in settings.tasks},
        "judges": judge_record(outcomes),
        "sandbox": meta.get("sandbox"),
        "alpha": settings.thresholds.alpha,
        "correction": settings.thresholds.correction,
        "direction": settings.thresholds.direction,
        "requests": meta.get("requests", {}),
        "time": dt.datetime.now(dt.UTC).isoformat(timespec="seconds"),
    }


def build_report(settings: Settings, outcomes: Outcomes) -> dict[str, Any]:
    """The report (shaped as `guards.report.types.Report`), validated against the shipped schema."""
    report = {"schema_version": 1, "record": record(settings, outcomes), **analyze(settings, outcomes)}
    validate_report(report)
    return report


def write_report(report: Mapping[str, Any], path: Path, outcomes: Outcomes | None = None) -> None:
    """The JSON report, and the per-item outcomes beside it (what compare, drift and merge read)."""
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(json.dumps(report, indent=2, ensure_ascii=False) + "\n", encoding="utf-8")
    if outcomes is not None:
        outcomes.write(outcomes_path(path))


def load_report(path: Path) -> dict[str, Any]:
    """The report at `path`; ReportError with one line naming the file for anything that is not one."""
    try:
        report = json.loads(path.read_text(encoding="utf-8"))
    except UnicodeDecodeError as exc:
        raise ReportError(f"cannot read report {path}: not UTF-8 text ({exc.reason} at byte {exc.start})") from None
    except OSError as exc:
        raise ReportError(f"cannot read report {path}: {exc.strerror or exc}") from None
    except (json.JSONDecodeError, RecursionError) as exc:
        raise ReportError(f"cannot read report {path}: not valid JSON: {str(exc)[:200]}") from None
    if not isinstance(report, dict):
        raise ReportError(f"cannot read report {path}: not a JSON object")
    try:
        validate_report(report)
    except ReportError as exc:
        raise ReportError(f"{path}: {exc}") from None
    return dict(report)
