"""Named profiles: sample sizes and generation settings, chosen by flag, environment or CI detection."""

from __future__ import annotations

import os
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from guards.tasks import Task, get_task, task_names


@dataclass(frozen=True)
class Profile:
    """Generation settings and epochs of a named profile. How many items each task asks under it is the task's
    own declaration (``Task.sizes``, ``Task.variants`` in ``guards/tasks/<task>.py``); these properties read it."""

    name: str
    params: Mapping[str, Any]
    epochs: int = 1
    note: str = ""

    @property
    def samples(self) -> dict[str, int]:
        """task -> items under this profile, for every known task."""
        return {t: task.sizes[self.name] for t, task in _tasks() if self.name in task.sizes}

    @property
    def variants(self) -> dict[str, str]:
        """task -> data variant under this profile (the paper's MMLU dev and StrongREJECT 346)."""
        return {t: task.variants[self.name] for t, task in _tasks() if self.name in task.variants}


def _tasks() -> list[tuple[str, Task]]:
    return [(name, get_task(name)) for name in task_names()]


PROFILES: dict[str, Profile] = {
    "smoke": Profile(
        "smoke",
        {"temperature": 0, "max_tokens": 64},
        note="a quickstart: every identity, few items; it can only detect very large gaps (mostly inconclusive)",
    ),
    "pr": Profile(
        "pr",
        {"temperature": 0, "max_tokens": 300},
        note="a pull-request gate: detects gaps of roughly 10-15 points beyond the threshold",
    ),
    "nightly": Profile(
        "nightly",
        {"temperature": 0, "max_tokens": 300},
        note="the drift run: sample sizes that reach the power targets",
    ),
    "paper": Profile(
        "paper",
        {"temperature": 1.0, "top_k": 10, "max_tokens": 300},
        epochs=3,
        note="the paper's sampling: MMLU dev, temperature 1, top_k 10, 3 epochs, StrongREJECT 346",
    ),
}


def detect_profile(explicit: str | None, environ: Mapping[str, str] = os.environ) -> str:
    """The profile: explicit choice, else GUARDS_PROFILE, else `pr` under CI, else `smoke`."""
    if explicit:
        return explicit
    if environ.get("GUARDS_PROFILE"):
        return environ["GUARDS_PROFILE"]
    return "pr" if environ.get("CI") or environ.get("GITHUB_ACTIONS") else "smoke"
