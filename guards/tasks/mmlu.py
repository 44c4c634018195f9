"""MMLU: the paper's zero-shot chain-of-thought prompt and its answer extraction."""

from __future__ import annotations

import re
from pathlib import Path
from typing import Any

from guards.core.items import Item, Score
from guards.core.refusal import declines, is_refusal
from guards.tasks.base import TaskDefaults
from guards.tasks.data import DataError, field, nonempty, read_csv, require_file
from guards.tasks.extract import last_choice
from guards.tasks.registry import register

LETTERS = "ABCD"
PROMPT = (
    "Answer the given multiple choice question and show your work first.\n"
    "The answer can only be an option like (A), (B), (C), (D).\n"
    "You need to output the answer in your final sentence like ‘‘Therefore, the answer is ...’’\n"
    "Question is  {question}\n"
    "(A) {A} (B) {B} (C) {C} (D) {D}"
)
_PATTERNS = [
    re.compile(p, re.IGNORECASE)
    for p in (
        r"the\s*answer\s*is\s*\(([A-D])\)",
        r"the\s*answer[,.\s]*is\s*([A-D])",
        r"the\s*correct\s*answer\s*is\s*\(([A-D])\)",
        r"the\s*answer\s*is:\s*\n*\s*\(([A-D])\)",
        r"ption\s\(([A-D])\)",
    )
]


def extract_choice(text: str) -> str | None:
    """The paper's extraction: the first pattern that matches wins; otherwise no answer."""
    for pattern in _PATTERNS:
        match = pattern.search(text)
        if match:
            return match.group(1).upper()
    return None


def grade_choice(text: str, *, strict: bool = False) -> tuple[str | None, bool]:
    """(the chosen letter or None, whether the instructed format was followed).

    strict (the paper profile): the paper's five patterns only. Otherwise the paper's "the answer is" patterns
    first, then the last committed choice (`guards.tasks.extract`), then the paper's "option (X)" pattern."""
    if strict:
        choice = extract_choice(text)
        return choice, choice is not None
    for pattern in _PATTERNS[:4]:
        match = pattern.search(text)
        if match:
            return match.group(1).upper(), True
    lenient = last_choice(text)
    if lenient is not None:
        return lenient, False
    match = _PATTERNS[4].search(text)
    return (match.group(1).upper(), True) if match else (None, False)


def build_prompt(question: str, choices: list[str]) -> str:
    return PROMPT.format(question=question, **dict(zip(LETTERS, choices, strict=True)))


@register
class MMLU(TaskDefaults):
    name = "mmlu"
    axis = "utility"
    version = "2"  # 2: refusals first, lenient fallback outside the paper profile
    options = ("profile",)  # the paper profile keeps the paper's strict extraction
    sizes = {"smoke": 2, "pr": 300, "nightly": 1000, "paper": 285}
    variants = {"paper": "dev"}
    data_files = {"": "mmlu/test", "dev": "mmlu/dev"}

    def load(self, data_dir: Path | None, variant: str | None = None) -> list[Item]:
        """The test split (14,042 questions) by default; variant "dev" is the paper's 285."""
        split = variant or "test"
        if data_dir is None:
            return self._load_hf(split)
        folder = require_file(data_dir, f"mmlu/{split}")
        items = []
        columns = ("question", "choice0", "choice1", "choice2", "choice3", "answer")
        for path in sorted(folder.glob(f"*_{split}.csv")):
            subject = path.name.removesuffix(f"_{split}.csv")
            for row_no, row in enumerate(read_csv(path, columns, {"answer": int})):
                if not 0 <= row["answer"] <= 3:
                    raise DataError(f"{path}:{row_no + 2}: answer must be 0-3, got {row['answer']}")
                items.append(self._item(subject, row_no, row["question"],
                                        [row[f"choice{i}"] for i in range(4)], row["answer"]))
        return nonempty(items, f"{folder}/*_{split}.csv")

    def _load_hf(self, split: str) -> list[Item]:
        from guards.tasks.data import load_hf

        counters: dict[str, int] = {}
        items = []
        for row in load_hf("cais/mmlu", "all", split):
            subject = row["subject"]
            counters[subject] = counters.get(subject, -1) + 1
            items.append(self._item(subject, counters[subject], row["question"], list(row["choices"]),
                                    field(row, "answer", int, "cais/mmlu", counters[subject])))
        return items

    def _item(self, subject: str, row_no: int, question: str, choices: list[str], answer: int) -> Item:
        return Item(task=self.name, id=f"{subject}/{row_no}", prompt=build_prompt(question, choices),
                    target=LETTERS[answer], stratum=subject)

    def score(self, item: Item, response: str, *, profile: str = "", **options: Any) -> Score:
        """1.0 for the gold letter. A refusal is checked first (outside the paper profile); the paper profile keeps
        the paper's strict extraction."""
        strict = profile == "paper"
        if not strict and declines(response):
            return Score(0.0, refused=True, detail="refused", format_ok=False)
        choice, followed = grade_choice(response, strict=strict)
        if choice is None:
            refused = is_refusal(response)
            return Score(0.0, refused=refused, detail="refused" if refused else "no answer found", format_ok=False)
        return Score(1.0 if choice == item.target else 0.0, detail=f"answered {choice}", format_ok=followed)

