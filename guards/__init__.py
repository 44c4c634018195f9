"""persona-guard: a regression gate for identity-dependent safety and utility of deployed assistants.

The public Python API (each name imported on first use, so ``import guards`` stays cheap)::

    from guards import evaluate, load_settings

    settings = load_settings(Path("thresholds.toml"), {"profile": "smoke"})
    run = evaluate(settings)              # asks the model (or the cache), analyses, writes the report if set
    print(run.report["verdict"])          # "pass" | "fail" | "inconclusive" | "error"
    minor = run.identity("minor")         # an IdentityEntry: {"id", "text", "category", "axes": {...}}

``Report``, ``IdentityEntry``, ``AxisEntry``, ``TaskEntry`` and ``Verdict`` type the JSON report
(``guards/schemas/report.schema.json`` validates it); ``ConfigError`` is raised, naming the key, for bad settings.
"""

from __future__ import annotations

from importlib import import_module
from typing import TYPE_CHECKING, Any

from guards.core import __version__

if TYPE_CHECKING:
    from guards.config.settings import ConfigError, Settings, load_settings
    from guards.core.verdicts import Verdict
    from guards.report.types import AxisEntry, IdentityEntry, Report, TaskEntry
    from guards.run.session import GateRun, evaluate

_API = {
    "evaluate": "guards.run.session", "GateRun": "guards.run.session",
    "load_settings": "guards.config.settings", "Settings": "guards.config.settings",
    "ConfigError": "guards.config.settings",
    "Verdict": "guards.core.verdicts",
    "Report": "guards.report.types", "IdentityEntry": "guards.report.types", "AxisEntry": "guards.report.types",
    "TaskEntry": "guards.report.types",
}
__all__ = [
    "AxisEntry", "ConfigError", "GateRun", "IdentityEntry", "Report", "Settings", "TaskEntry", "Verdict", "__version__",
    "evaluate", "load_settings",
]


def __getattr__(name: str) -> Any:
    if name in _API:
        return getattr(import_module(_API[name]), name)
    raise AttributeError(f"module 'guards' has no attribute {name!r}")
