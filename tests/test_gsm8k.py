"""GSM8K: loading the real test split, the paper's prompt, and final-number extraction on real-looking answers."""

from __future__ import annotations

from pathlib import Path

import pytest
from hypothesis import given
from hypothesis import strategies as st

from guards.core.items import Item
from guards.tasks import get_task
from guards.tasks.gsm8k import PROMPT, extract_number, gold_number

TASK = get_task("gsm8k")


def _item(target: str) -> Item:
    return Item(task="gsm8k", id="0", prompt="", target=target)


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("1,234", 1234), ("$1,234.50", 1234.5), ("-3", -3), ("42.", 42), ("42 dollars", 42), ("50%", 50),
        ("It costs €7.25 in total.", 7.25), ("**18**", 18), ("\\boxed{72}", 72), ("the total is 1,000,000.", 1e6),
        ("She owes -$5 now.", -5), ("0.5 cups", 0.5), ("Therefore, the answer is 12 km.", 12),
    ],
)
def test_number_formats(text: str, expected: float) -> None:
    assert extract_number(text) == pytest.approx(expected)


def test_realistic_answers() -> None:
    janet = ("Janet's ducks lay 16 eggs per day. She eats 3 and bakes with 4, so 16 - 3 - 4 = 9 eggs remain.\n"
             "She sells them for $2 each, so 9 * 2 = $18.\nTherefore, the answer is $18.")
    assert extract_number(janet) == 18
    # the anchor wins over numbers written after it
    assert extract_number("Total: 3 + 4 = 7. Therefore, the answer is 7. (That took 2 steps.)") == 7
    # an echoed instruction without a number does not hide the real final sentence
    assert extract_number("Therefore, the answer is ... (as asked)\nSo 5 + 5 = 10.\nTherefore, the answer is 10") == 10
    # no anchor: the last number
    assert extract_number("First 20 - 5 = 15, then 15 * 2 = 30 apples") == 30
    # a hyphen between numbers is not a minus sign
    assert extract_number("Ages 5-12 pay half; the answer is 8") == 8
    assert extract_number("I cannot tell without more information.") is None


@given(st.integers(min_value=-10**9, max_value=10**9), st.sampled_from(["", "$", "€", "£"]),
       st.sampled_from(["", ".", " dollars", " apples.", "%"]), st.booleans())
def test_formatted_integers_round_trip(value: int, currency: str, suffix: str, commas: bool) -> None:
    digits = f"{abs(value):,}" if commas else str(abs(value))
    text = f"Therefore, the answer is {'-' if value < 0 else ''}{currency}{digits}{suffix}"
    assert extract_number(text) == value


@given(st.decimals(min_value=-10**6, max_value=10**6, places=2, allow_nan=False, allow_infinity=False))
def test_decimals_as_last_number(value: object) -> None:
    text = f"We add it all up and get {value:,.2f} in the end."
    assert extract_number(text) == pytest.approx(float(str(value)))


def test_score_compares_numbers_and_records_refusals() -> None:
    assert TASK.score(_item("18"), "So she makes 18.00 dollars. Therefore, the answer is 18.00").value == 1.0
    assert TASK.score(_item("18"), "Therefore, the answer is 17.").value == 0.0
    assert TASK.score(_item("-3"), "The temperature drops to -3 degrees.").value == 1.0
    refusal = TASK.score(_item("18"), "I'm sorry, but I can't help with that request.")
    assert (refusal.value, refusal.refused) == (0.0, True)
    silent = TASK.score(_item("18"), "Let me think about eggs.")
    assert (silent.value, silent.refused) == (0.0, False)


def test_gold_number() -> None:
    assert gold_number("9 * 2 = 18\n#### 1,018") == "1018"


def test_loads_the_test_split(data_dir: Path) -> None:
    items = TASK.load(data_dir)
    assert len(items) == 1319 and len({i.id for i in items}) == 1319
    first = items[0]
    assert (first.id, first.target, first.stratum) == ("0", "18", "")
    assert first.prompt == PROMPT.format(question=first.prompt.split("Question is ", 1)[1])
    assert first.prompt.startswith("Answer the given question and show your work first.\nYou must output only")
    assert all(i.target and i.target.lstrip("-").replace(".", "", 1).isdigit() for i in items)  # numeric golds
