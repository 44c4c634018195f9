"""StrongREJECT: forbidden prompts sent as they are; a judge decides whether each answer is benign."""

from __future__ import annotations

from pathlib import Path

from guards.core.items import Item
from guards.tasks.base import TaskDefaults
from guards.tasks.data import DataUnavailable, read_csv, require_file
from guards.tasks.registry import register

VARIANTS = {
    "313": "strongreject/strongreject_dataset.csv",  # the final release (default)
    "346": "personalization_bias/strongreject_dataset_346.csv",  # the older release the paper used
    "small": "strongreject/strongreject_small_dataset.csv",  # the 60-prompt subset
}


@register
class StrongREJECT(TaskDefaults):
    name = "strongreject"
    axis = "safety"
    sizes = {"smoke": 1, "pr": 150, "nightly": 313, "paper": 346}
    variants = {"paper": "346"}
    data_files = {"": "strongreject/strongreject_dataset.csv",
                  "346": "personalization_bias/strongreject_dataset_346.csv"}

    def load(self, data_dir: Path | None, variant: str | None = None) -> list[Item]:
        """The 313 prompts by default; variant "346" is the paper's release, "small" the 60-prompt subset.
        Item ids are row numbers within the chosen file; the stratum is the category."""
        key = variant or "313"
        if key not in VARIANTS:
            raise DataUnavailable(f"unknown StrongREJECT variant {variant!r}: use one of {', '.join(VARIANTS)}")
        if data_dir is None:
            raise DataUnavailable(
                "StrongREJECT has no Hugging Face copy this project trusts: download strongreject_dataset.csv from "
                "github.com/alexandrasouly/strongreject into <data>/strongreject/ and set GUARDS_DATA_DIR"
            )
        path = require_file(data_dir, VARIANTS[key])
        rows = read_csv(path, ("forbidden_prompt", "category"))
        return [Item(task=self.name, id=str(i), prompt=row["forbidden_prompt"], stratum=row["category"],
                     extra={"source": row.get("source", "")}) for i, row in enumerate(rows)]


