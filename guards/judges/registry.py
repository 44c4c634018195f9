"""Which judges exist: the shipped ones, those other packages declare in the ``persona_guard.judges`` entry-point
group, and any ``module:Class`` name. Built lazily by name and checked against the Judge protocol.

A judge class is built with the keyword arguments its signature accepts among ``model`` and ``api_base`` (the
``[judge]`` table's judge model and its server), so ``class MyJudge: def __init__(self): ...`` works as well as an
LLM judge that needs a model.
"""

from __future__ import annotations

import importlib
import inspect
from collections.abc import Mapping
from importlib.metadata import entry_points
from typing import Any

from guards.judges.base import Judge

# name -> (module:attr, fixed keyword arguments)
BUILTIN: dict[str, tuple[str, Mapping[str, Any]]] = {
    "patterns": ("guards.judges.patterns:PatternJudge", {}),
    "offline": ("guards.judges.offline:OfflineJudge", {"mode": "auto"}),
    "offline-features": ("guards.judges.offline:OfflineJudge", {"mode": "features"}),
    "strongreject-rubric": ("guards.judges.rubric:StrongRejectJudge", {}),
    "dna-rubric": ("guards.judges.rubric:DnaRubricJudge", {}),
    "longformer": ("guards.judges.longformer:LongformerJudge", {}),
}
LLM_JUDGES = ("strongreject-rubric", "dna-rubric")


class JudgeError(ValueError):
    """A judge name that resolves to nothing, or to an object that is not a judge."""


def _declared() -> dict[str, str]:
    return {ep.name: ep.value for ep in entry_points(group="persona_guard.judges")}


def judge_names() -> tuple[str, ...]:
    """Shipped judges first, then those installed packages declare (``module:Class`` names work too)."""
    return (*BUILTIN, *sorted(set(_declared()) - set(BUILTIN)))


def resolve(name: str) -> tuple[Any, Mapping[str, Any]]:
    """The class (or factory) behind a judge name and its fixed keyword arguments."""
    target, fixed = BUILTIN.get(name) or (_declared().get(name) or (name if ":" in name else ""), {})
    if not target:
        raise JudgeError(f"unknown judge {name!r}; choose one of {', '.join(judge_names())} or give module:Class")
    module, _, attr = target.partition(":")
    try:
        return getattr(importlib.import_module(module), attr), fixed
    except (ImportError, AttributeError) as exc:
        raise JudgeError(f"judge {name!r}: cannot load {target} ({type(exc).__name__}: {exc})") from None


def check(judge: Any, name: str) -> Judge:
    """`judge` if it implements the protocol (name, version, async judge(prompts, responses)), else JudgeError."""
    missing = [a for a in ("name", "version") if not isinstance(getattr(judge, a, None), str)]
    method = getattr(judge, "judge", None)
    if method is None or not inspect.iscoroutinefunction(method):
        missing.append("async judge(prompts, responses)")
    if missing:
        raise JudgeError(f"judge {name!r} does not implement the judge protocol: missing {', '.join(missing)}")
    return judge


def get_judge(name: str, *, model: str | None = None, api_base: str | None = None) -> Judge:
    """The judge called `name`, built with the options its constructor accepts; LLM judges need `model`."""
    factory, fixed = resolve(name)
    wanted = {"model": model, "api_base": api_base}
    try:
        params = inspect.signature(factory).parameters
    except (TypeError, ValueError):
        params = {}  # type: ignore[assignment]
    kwargs = {**fixed, **{k: v for k, v in wanted.items() if k in params}}
    needs = params.get("model")
    if needs is not None and needs.default is inspect.Parameter.empty and model is None:
        raise JudgeError(f"judge {name!r} needs a judge model ([judge] model / --model), e.g. 'openai/gpt-4o-mini'")
    return check(factory(**kwargs), name)
