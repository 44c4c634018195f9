"""MBPP: the test split, the paper's prompt, code extraction, and pass@1 of real problems in the sandbox."""

from __future__ import annotations

import json
import random
import re
from pathlib import Path
from typing import Any

import pytest

from guards import sandbox
from guards.core.items import Item
from guards.tasks import get_task
from guards.tasks.mbpp import build_prompt, extract_code

TASK = get_task("mbpp")

ADD = Item(task="mbpp", id="0", prompt="", extra={"tests": ["assert add(1, 2) == 3", "assert add(0, 0) == 0"],
                                                  "setup": ""})


@pytest.fixture(scope="module")
def reference(data_dir: Path) -> dict[str, dict[str, Any]]:
    with (data_dir / "mbpp" / "mbpp.jsonl").open(encoding="utf-8") as handle:
        return {str(row["task_id"]): row for row in map(json.loads, handle)}


def test_loads_the_test_split_with_the_papers_prompt(data_dir: Path) -> None:
    items = TASK.load(data_dir)
    assert [int(i.id) for i in items] == list(range(11, 511))
    assert len(TASK.load(data_dir, "all")) == 974
    first = items[0]
    assert first.prompt == (
        "Write a python program for the following problem:\n"
        "Write a python function to remove first and last occurrence of a given character from the string.\n\n"
        "Your code should pass these tests:\n"
        'assert remove_Occ("hello","l") == "heo"\n'
        'assert remove_Occ("abcda","a") == "bcd"\n'
        'assert remove_Occ("PHP","P") == "H"'
    )
    assert first.extra["tests"][0] == 'assert remove_Occ("hello","l") == "heo"' and first.extra["setup"] == ""
    assert TASK.single_turn and TASK.axis == "utility"


def _sabotaged(code: str, test: str) -> str:
    """The reference code with the function under test made to return a value equal to nothing."""
    name = re.search(r"(\w+)\(", test.removeprefix("assert").replace("set(", "").replace("math.isclose(", ""))
    assert name is not None
    return f"{code}\n_real = {name.group(1)}\ndef {name.group(1)}(*args, **kwargs):\n    _real(*args, **kwargs)\n" \
           "    return object()\n"


def test_reference_solutions_pass_and_broken_ones_fail(data_dir: Path, reference: dict[str, dict[str, Any]]) -> None:
    items = {i.id: i for i in TASK.load(data_dir)}
    sample = [*sorted(random.Random(3).sample(sorted(items), 18)), "367", "58"]  # 367 needs its setup code
    for task_id in sample:
        item, row = items[task_id], reference[task_id]
        score = TASK.score(item, f"Here is my solution:\n```python\n{row['code']}\n```\nIt passes the tests.")
        assert score.value == 1.0, (task_id, score.detail)
        wrong = TASK.score(item, f"```python\n{_sabotaged(row['code'], row['test_list'][0])}\n```")
        assert wrong.value == 0.0 and wrong.detail.startswith("failed"), (task_id, wrong.detail)
        gutted = TASK.score(item, "```python\nimport sys\n```")
        assert gutted.value == 0.0, (task_id, gutted.detail)


def test_score_records_refusals_and_missing_code() -> None:
    refused = TASK.score(ADD, "I'm sorry, but I can't help with writing that program.")
    assert (refused.value, refused.refused) == (0.0, True)
    silent = TASK.score(ADD, "You could add the numbers together.")
    assert (silent.value, silent.refused, silent.detail) == (0.0, False, "no code found")


def test_score_runs_in_the_named_sandbox_level() -> None:
    level = sandbox.available_levels()[0]
    score = TASK.score(ADD, "```python\ndef add(a, b):\n    return a + b\n```", sandbox=level)
    assert score.value == 1.0 and f"[{level}]" in score.detail


def test_extract_code_prefers_the_first_python_block() -> None:
    text = "Plan:\n```text\nstep 1\n```\n```python\ndef f():\n    return 1\n```\n```python\ndef f():\n    return 2\n```"
    assert extract_code(text) == "def f():\n    return 1\n"
    assert extract_code("```py\nx = 1\n```") == "x = 1\n"
    assert extract_code("```\ndef g():\n    pass\n```") == "def g():\n    pass\n"  # any fence when no python one


def test_extract_code_handles_truncated_and_bare_answers() -> None:
    truncated = "```python\ndef f(x):\n    return x * 2"  # cut off by max_tokens: no closing fence
    assert extract_code(truncated) == "def f(x):\n    return x * 2"
    bare = "def f(x):\n    return x + 1\n"
    assert extract_code(bare) == bare
    prose_then_code = "Sure. Here it is:\n\ndef f(x):\n    return x + 1\n\nThis adds one to x."
    assert extract_code(prose_then_code) == "def f(x):\n    return x + 1\n"
    assert extract_code("Just add the two numbers.") is None


def test_input_lines_are_commented_out_keeping_blocks_valid() -> None:
    answer = "```python\ndef f(a, b):\n    return a + b\nif True:\n    n = int(input())\nprint(f(1, 2))\n```"
    code = extract_code(answer)
    assert code is not None and "pass  # n = int(input())" in code
    result = sandbox.run_tests(code, ["assert f(1, 2) == 3"], 5.0)
    assert result.passed  # would block or fail on EOF with input() left in


def test_build_prompt_one_test_per_line() -> None:
    assert build_prompt("Add.", ["assert a", "assert b"]).endswith("tests:\nassert a\nassert b")
