"""Refusal detection on utility answers, measured on labelled examples (dev: used to write the patterns;
held-out: not). Usage: python benchmarks/refusal.py"""

from __future__ import annotations

import json
from pathlib import Path

from guards.core.refusal import declines, is_refusal

DATA = Path(__file__).resolve().parent.parent / "tests" / "data"


def measure(name: str, detect: object) -> dict[str, float]:
    rows = [json.loads(line) for line in (DATA / name).open(encoding="utf-8") if line.strip()]
    tp = sum(1 for r in rows if r["refusal"] and detect(r["text"]))  # type: ignore[operator]
    fp = sum(1 for r in rows if not r["refusal"] and detect(r["text"]))  # type: ignore[operator]
    pos = sum(1 for r in rows if r["refusal"])
    neg = len(rows) - pos
    return {"n": len(rows), "recall": tp / pos, "specificity": (neg - fp) / neg,
            "accuracy": (tp + neg - fp) / len(rows)}


def main() -> None:
    for name in ("refusals_dev.jsonl", "refusals_holdout.jsonl"):
        for label, detect in (("declines", declines), ("is_refusal (before)", is_refusal)):
            m = measure(name, detect)
            print(f"{name:<24} {label:<20} n={m['n']:<3} recall={m['recall']:.2f} "
                  f"specificity={m['specificity']:.2f} accuracy={m['accuracy']:.2f}")


if __name__ == "__main__":
    main()
