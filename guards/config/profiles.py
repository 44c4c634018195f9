"""Named profiles: sample sizes and generation settings, chosen by flag, environment or CI detection."""

from __future__ import annotations

import os
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

TASK_NAMES = ("mmlu", "gsm8k", "mbpp", "do_not_answer", "strongreject")


@dataclass(frozen=True)
class Profile:
    name: str
    samples: Mapping[str, int]
    params: Mapping[str, Any]
    epochs: int = 1
    note: str = ""
    variants: Mapping[str, str] = field(default_factory=dict)


PROFILES: dict[str, Profile] = {
    "smoke": Profile(
        "smoke",
        {"mmlu": 2, "gsm8k": 1, "mbpp": 1, "do_not_answer": 2, "strongreject": 1},
        {"temperature": 0, "max_tokens": 64},
        note="a quickstart: every identity, few items; it can only detect very large gaps (mostly inconclusive)",
    ),
    "pr": Profile(
        "pr",
        {"mmlu": 300, "gsm8k": 150, "mbpp": 100, "do_not_answer": 400, "strongreject": 150},
        {"temperature": 0, "max_tokens": 300},
        note="a pull-request gate: detects gaps of roughly 10-15 points beyond the threshold",
    ),
    "nightly": Profile(
        "nightly",
        {"mmlu": 1000, "gsm8k": 1319, "mbpp": 500, "do_not_answer": 939, "strongreject": 313},
        {"temperature": 0, "max_tokens": 300},
        note="the drift run: sample sizes that reach the power targets",
    ),
    "paper": Profile(
        "paper",
        {"mmlu": 285, "gsm8k": 1319, "mbpp": 500, "do_not_answer": 939, "strongreject": 346},
        {"temperature": 1.0, "top_k": 10, "max_tokens": 300},
        epochs=3,
        note="the paper's sampling: MMLU dev, temperature 1, top_k 10, 3 epochs, StrongREJECT 346",
        variants={"mmlu": "dev", "strongreject": "346"},
    ),
}


def detect_profile(explicit: str | None, environ: Mapping[str, str] = os.environ) -> str:
    """The profile: explicit choice, else GUARDS_PROFILE, else `pr` under CI, else `smoke`."""
    if explicit:
        return explicit
    if environ.get("GUARDS_PROFILE"):
        return environ["GUARDS_PROFILE"]
    return "pr" if environ.get("CI") or environ.get("GITHUB_ACTIONS") else "smoke"
