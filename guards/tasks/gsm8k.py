"""GSM8K: grade-school maths word problems; the paper's prompt and its final-number extraction."""

from __future__ import annotations

import math
import re
from pathlib import Path
from typing import Any

from guards.core.items import Item, Score
from guards.core.refusal import declines, is_refusal
from guards.tasks.base import TaskDefaults
from guards.tasks.data import load_hf, read_jsonl, require_file
from guards.tasks.registry import register

PROMPT = (
    "Answer the given question and show your work first.\n"
    "You must output only the answer in your final sentence like ‘‘Therefore, the answer is ...’’.\n"
    "Question is {question}"
)
# A number: optional sign (not a hyphen inside a word or range), optional currency sign, digits with optional
# thousands separators and decimals (or a bare decimal like .5).
_NUMBER = re.compile(
    r"(?<![\w.])(?P<sign>[-−])?(?:[$€£¥₹]\s?)?(?P<sign2>[-−])?"
    r"(?P<num>\d{1,3}(?:,\d{3})+(?:\.\d+)?|\d+(?:\.\d+)?|\.\d+)(?![\d,]*\d)"
)
_THEREFORE = re.compile(r"therefore,?\s+the\s+(?:final\s+)?answer\s+is", re.IGNORECASE)


def _parse(match: re.Match[str]) -> float:
    value = float(match.group("num").replace(",", ""))
    return -value if match.group("sign") or match.group("sign2") else value


def extract_number(text: str) -> float | None:
    """The predicted answer: the first number after the last "Therefore, the answer is" (on that line), else the
    last number in the text. Thousands separators, currency signs, units and trailing periods are handled."""
    for anchor in reversed(list(_THEREFORE.finditer(text))):
        rest = text[anchor.end():].split("\n", 1)[0]
        found = _NUMBER.search(rest)
        if found:
            return _parse(found)
    numbers = list(_NUMBER.finditer(text))
    return _parse(numbers[-1]) if numbers else None


def gold_number(answer: str) -> str:
    """The gold answer string: the text after "####", commas removed."""
    return answer.rsplit("####", 1)[-1].strip().replace(",", "")


def same_number(predicted: float, gold: str) -> bool:
    """Numeric equality with a tolerance for float formatting."""
    try:
        target = float(gold)
    except ValueError:
        return False
    return math.isclose(predicted, target, rel_tol=1e-9, abs_tol=1e-6)


@register
class GSM8K(TaskDefaults):
    name = "gsm8k"
    axis = "utility"
    version = "2"  # 2: a refusal is checked before the number (outside the paper profile)
    options = ("profile",)
    sizes = {"smoke": 1, "pr": 150, "nightly": 1319, "paper": 1319}
    data_files = {"": "gsm8k/test.jsonl"}

    def load(self, data_dir: Path | None, variant: str | None = None) -> list[Item]:
        """The test split (1,319 problems); `variant` is unused."""
        if data_dir is None:
            rows = load_hf("openai/gsm8k", "main", "test")
        else:
            path = require_file(data_dir, "gsm8k/test.jsonl")
            rows = read_jsonl(path, ("question", "answer"), {"question": str, "answer": str})
        return [Item(task=self.name, id=str(i), prompt=PROMPT.format(question=row["question"]),
                     target=gold_number(row["answer"])) for i, row in enumerate(rows)]

    def score(self, item: Item, response: str, *, profile: str = "", **options: Any) -> Score:
        """1.0 for the gold number. Outside the paper profile a refusal is checked first: "I can't help; ask your
        teacher about the 3 apples" is a refusal, not the answer 3."""
        strict = profile == "paper"
        if not strict and declines(response):
            return Score(0.0, refused=True, detail="refused", format_ok=False)
        number = extract_number(response)
        followed = any(_NUMBER.search(response[m.end():].split("\n", 1)[0]) for m in _THEREFORE.finditer(response))
        if number is None:
            refused = is_refusal(response)
            return Score(0.0, refused=refused, detail="refused" if refused else "no number found", format_ok=False)
        shown = f"{number:g}" if abs(number) < 1e15 else str(number)
        return Score(1.0 if item.target is not None and same_number(number, item.target) else 0.0,
                     detail=f"answered {shown}", format_ok=followed)

