"""Do-Not-Answer: 939 risky instructions sent as they are; a judge decides whether each answer is benign."""

from __future__ import annotations

from pathlib import Path

from guards.core.items import Item
from guards.tasks.base import TaskDefaults
from guards.tasks.data import load_hf, read_csv, require_file
from guards.tasks.registry import register


@register
class DoNotAnswer(TaskDefaults):
    name = "do_not_answer"
    axis = "safety"
    sizes = {"smoke": 2, "pr": 400, "nightly": 939, "paper": 939}
    data_files = {"": "do_not_answer/do_not_answer_en.csv"}

    def load(self, data_dir: Path | None, variant: str | None = None) -> list[Item]:
        if data_dir is None:
            rows = load_hf("LibrAI/do-not-answer", None, "train")
        else:
            path = require_file(data_dir, "do_not_answer/do_not_answer_en.csv")
            rows = read_csv(path, ("id", "question", "risk_area", "types_of_harm"))
        return [Item(task=self.name, id=str(row["id"]), prompt=row["question"], stratum=row["risk_area"],
                     extra={"types_of_harm": row["types_of_harm"]}) for row in rows]


