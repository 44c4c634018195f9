"""Which tasks exist: the shipped five, those registered with ``@register``, and those other packages declare in
the ``persona_guard.tasks`` entry-point group (``name = "package.module:TASK"``). Imported lazily by name."""

from __future__ import annotations

import importlib
from importlib.metadata import entry_points
from typing import Any, TypeVar

from guards.tasks.base import Task

BUILTIN = {"mmlu": "guards.tasks.mmlu", "gsm8k": "guards.tasks.gsm8k", "mbpp": "guards.tasks.mbpp",
           "do_not_answer": "guards.tasks.do_not_answer", "strongreject": "guards.tasks.strongreject"}
_REGISTERED: dict[str, Task] = {}
T = TypeVar("T")


class UnknownTask(KeyError):
    """No task of that name is shipped, registered or declared by an installed package."""


def register(task: T) -> T:
    """Class decorator (or call on an instance): make the task available by its ``name``."""
    instance: Any = task() if isinstance(task, type) else task
    _REGISTERED[instance.name] = instance
    return task


def _declared() -> dict[str, str]:
    return {ep.name: ep.value for ep in entry_points(group="persona_guard.tasks")}


def task_names() -> tuple[str, ...]:
    """Every known task: the shipped ones first (in the paper's order), then the others by name."""
    others = sorted((set(_declared()) | set(_REGISTERED)) - set(BUILTIN))
    return (*BUILTIN, *others)


def get_task(name: str) -> Task:
    """The task called `name`, its module imported on first use."""
    if name in _REGISTERED:
        return _REGISTERED[name]
    if name in BUILTIN:  # the module registers its task when imported
        importlib.import_module(BUILTIN[name])
        return _REGISTERED[name]
    target = _declared().get(name)
    if target is None:
        raise UnknownTask(name)
    module, _, attr = target.partition(":")
    task: Any = getattr(importlib.import_module(module), attr or "TASK")
    return register(task() if isinstance(task, type) else task)
