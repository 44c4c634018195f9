"""Tasks: the Task protocol, the registry (``@register`` + ``persona_guard.tasks`` entry points), data loading,
sampling and the shipped tasks (MMLU, GSM8K, MBPP, Do-Not-Answer, StrongREJECT)."""

from __future__ import annotations

from guards.tasks.base import Task, TaskDefaults
from guards.tasks.registry import UnknownTask, get_task, register, task_names

__all__ = ["Task", "TaskDefaults", "UnknownTask", "get_task", "register", "task_names"]
