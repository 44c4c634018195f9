"""Do-Not-Answer: 939 risky instructions sent as they are; a judge decides whether each answer is benign."""

from __future__ import annotations

import csv
from pathlib import Path

from guards.core.items import Item, Score
from guards.tasks.data import load_hf, require_file


class DoNotAnswer:
    name = "do_not_answer"
    axis = "safety"
    single_turn = False
    version = "1"

    def load(self, data_dir: Path | None, variant: str | None = None) -> list[Item]:
        if data_dir is None:
            rows = load_hf("LibrAI/do-not-answer", None, "train")
        else:
            path = require_file(data_dir, "do_not_answer/do_not_answer_en.csv")
            with path.open(newline="", encoding="utf-8") as handle:
                rows = list(csv.DictReader(handle))
        return [Item(task=self.name, id=str(row["id"]), prompt=row["question"], stratum=row["risk_area"],
                     extra={"types_of_harm": row["types_of_harm"]}) for row in rows]

    def score(self, item: Item, response: str) -> Score:
        raise NotImplementedError("safety tasks are scored by a judge (guards.judges), not by the task")


TASK = DoNotAnswer()
