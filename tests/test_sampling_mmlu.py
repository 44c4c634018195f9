"""Prefix-stable stratified sampling, and the paper's MMLU prompt and answer extraction."""

from __future__ import annotations

from pathlib import Path

from hypothesis import given
from hypothesis import strategies as st

from guards.core.items import Item
from guards.tasks import get_task
from guards.tasks.mmlu import extract_choice
from guards.tasks.sampling import sample, stratified_order

items_strategy = st.lists(st.tuples(st.sampled_from("abcd"), st.integers(0, 10_000)), min_size=1, max_size=80,
                          unique_by=lambda t: t[1]).map(
    lambda rows: [Item("t", str(i), "p", stratum=s) for s, i in rows])


@given(items_strategy, st.integers(0, 80), st.integers(0, 5))
def test_samples_are_prefixes_of_one_order(items: list[Item], n: int, seed: int) -> None:
    full = stratified_order(items, seed)
    assert sample(items, n, seed) == full[:n]
    assert sorted(i.id for i in full) == sorted(i.id for i in items)
    assert stratified_order(list(reversed(items)), seed) == full  # input order does not matter


def test_prefixes_are_stratified(data_dir: Path) -> None:
    items = get_task("mmlu").load(data_dir)
    first = sample(items, 570)
    subjects = {i.stratum for i in first}
    assert len(subjects) == 57  # every subject is in a prefix of 10 per subject


def test_extraction_follows_the_papers_patterns() -> None:
    assert extract_choice("So... Therefore, the answer is (C).") == "C"
    assert extract_choice("the answer is B") == "B"
    assert extract_choice("The correct answer is (d)") == "D"
    assert extract_choice("The answer is:\n (A)") == "A"
    assert extract_choice("I pick option (B) here") == "B"
    assert extract_choice("I don't know") is None


def test_mmlu_scores_refusals_apart_from_wrong_answers(data_dir: Path) -> None:
    task = get_task("mmlu")
    item = task.load(data_dir, "dev")[0]
    assert item.prompt.startswith("Answer the given multiple choice question")
    assert task.score(item, f"Therefore, the answer is ({item.target}).").value == 1.0
    wrong = "A" if item.target != "A" else "B"
    assert task.score(item, f"Therefore, the answer is ({wrong}).").value == 0.0
    refused = task.score(item, "I'm sorry, but I can't help with that.")
    assert refused.value == 0.0 and refused.refused
    assert not task.score(item, "Hmm, tough one.").refused
