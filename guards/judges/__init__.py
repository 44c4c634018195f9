"""Safety judges behind one interface; `get_judge(name)` builds one by name (see `guards.judges.registry`).

- "patterns": refusal patterns only (a floor);
- "offline": the shipped classifier (MiniLM embeddings on ONNX Runtime int8, shipped in the wheel, + features);
  the default when no judge model is configured; no torch needed;
- "offline-features": the features-only classifier (numpy only);
- "strongreject-rubric", "dna-rubric": LLM rubric judges through litellm (need `model`);
- "longformer": the paper's Do-Not-Answer action classifier (transformers; `model` may name a folder).
Others: a `persona_guard.judges` entry point, or `module:Class`. Measured agreement with people: `agreement()`
(from `weights/agreement.json`).
"""

from __future__ import annotations

import json
from importlib import resources
from typing import Any

from guards.judges.base import Judge, Verdict
from guards.judges.identity import strip_identity
from guards.judges.registry import BUILTIN, LLM_JUDGES, JudgeError, check, get_judge, judge_names

__all__ = ["DEFAULT_JUDGE", "JUDGES", "LLM_JUDGES", "Judge", "JudgeError", "Verdict", "agreement", "check", "get_judge",
           "judge_names", "strip_identity"]

JUDGES = tuple(BUILTIN)
DEFAULT_JUDGE = "offline"


def agreement() -> dict[str, Any]:
    """Measured agreement of the offline judges with people (hold-out balanced accuracy and more)."""
    path = resources.files("guards.judges").joinpath("weights", "agreement.json")
    try:
        data: dict[str, Any] = json.loads(path.read_text(encoding="utf-8"))
    except FileNotFoundError:
        return {}
    return data
