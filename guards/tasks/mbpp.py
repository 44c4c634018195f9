"""MBPP: basic Python problems; code from the answer, pass@1 = every assert passes in the sandbox."""

from __future__ import annotations

import ast
import re
from collections.abc import Iterable
from pathlib import Path
from typing import Any

from guards.core.items import Item, Score
from guards.core.refusal import declines, is_refusal
from guards.sandbox import run_tests
from guards.tasks.base import TaskDefaults
from guards.tasks.data import DataError, DataUnavailable, field, load_hf, nonempty, read_jsonl, require_file
from guards.tasks.registry import register

PROMPT = (
    "Write a python program for the following problem:\n"
    "{text}\n"
    "\n"
    "Your code should pass these tests:\n"
    "{tests}"
)
TEST_IDS = range(11, 511)  # the standard test split
TIMEOUT_S = 10.0
_PY_FENCE = re.compile(r"```[ \t]*(?:python3?|py)\b[^\n]*\n(.*?)(?:```|\Z)", re.DOTALL | re.IGNORECASE)
_ANY_FENCE = re.compile(r"```[ \t]*[\w+-]*[ \t]*\n(.*?)(?:```|\Z)", re.DOTALL)
_CODE_START = re.compile(r"^(?:def |class |import |from \S+ import |@)", re.MULTILINE)


def build_prompt(text: str, tests: Iterable[str]) -> str:
    return PROMPT.format(text=text, tests="\n".join(tests))


def _parses(code: str) -> bool:
    try:
        ast.parse(code)
    except (SyntaxError, ValueError):
        return False
    return True


def _bare_code(text: str) -> str | None:
    """Code written without a fence: the whole answer if it parses, else from the first def/import/class line,
    dropping trailing prose lines until it parses."""
    if _CODE_START.search(text) is None:
        return None
    if _parses(text):
        return text
    lines = text[_CODE_START.search(text).start():].splitlines()  # type: ignore[union-attr]
    while lines:
        candidate = "\n".join(lines)
        if _parses(candidate):
            return candidate
        lines.pop()
    return None


def _drop_input_lines(code: str) -> str:
    """Lines calling input( are commented out (as the paper does), keeping blocks valid with a `pass`."""
    out = []
    for line in code.splitlines(keepends=True):
        if "input(" in line:
            body = line.rstrip("\r\n")
            indent = body[: len(body) - len(body.lstrip())]
            line = f"{indent}pass  # {body.strip()}{line[len(body):]}"
        out.append(line)
    return "".join(out)


def find_code(text: str) -> tuple[str | None, bool]:
    """(the answer's code, whether it came in a fenced block): the first ```python block (an unclosed one runs to
    the end), else the first fenced block, else a bare code answer. None when the answer holds no code."""
    for pattern in (_PY_FENCE, _ANY_FENCE):
        match = pattern.search(text)
        if match and match.group(1).strip():
            return match.group(1).replace("\r\n", "\n"), True
    return _bare_code(text.replace("\r\n", "\n")), False


def extract_code(text: str) -> str | None:
    """The paper's reading: `find_code` with lines calling input( commented out."""
    code, _ = find_code(text)
    return _drop_input_lines(code) if code else None


def _rows_local(data_dir: Path) -> list[dict[str, Any]]:
    path = require_file(data_dir, "mbpp/mbpp.jsonl")
    return read_jsonl(path, ("task_id", "text", "test_list", "code"),
                      {"task_id": int, "text": str, "test_list": list, "code": str})


def _rows_hf() -> list[dict[str, Any]]:
    rows: list[dict[str, Any]] = []
    for split in ("train", "test", "validation", "prompt"):
        rows += load_hf("google-research-datasets/mbpp", "full", split)
    return rows


@register
class MBPP(TaskDefaults):
    name = "mbpp"
    axis = "utility"
    single_turn = True
    sizes = {"smoke": 1, "pr": 100, "nightly": 500, "paper": 500}
    data_files = {"": "mbpp/mbpp.jsonl", "all": "mbpp/mbpp.jsonl"}
    version = "2"  # 2: the parent decides asserts; lenient runs (not __main__, input() raises EOFError)
    options = ("sandbox", "profile")  # the isolation level decides whether code may run; paper = strict
    blocking = True

    def load(self, data_dir: Path | None, variant: str | None = None) -> list[Item]:
        """The test split (task ids 11-510, 500 problems) by default; variant "all" gives all 974."""
        if variant not in (None, "test", "all"):
            raise DataUnavailable(f"unknown MBPP variant {variant!r}: use 'test' (default) or 'all'")
        rows = _rows_hf() if data_dir is None else _rows_local(data_dir)
        source = "google-research-datasets/mbpp" if data_dir is None else data_dir / "mbpp/mbpp.jsonl"
        if data_dir is None:
            for n, row in enumerate(rows):
                row["task_id"] = field(row, "task_id", int, source, n)
        rows = sorted(rows, key=lambda row: int(row["task_id"]))
        if variant != "all":
            rows = [row for row in rows if int(row["task_id"]) in TEST_IDS]
        nonempty(rows, f"{source} (task ids {TEST_IDS.start}-{TEST_IDS.stop - 1})" if variant != "all" else source)
        for row in rows:
            if not row["test_list"]:
                raise DataError(f"{source}: task {row['task_id']} has no tests")
        return [
            Item(task=self.name, id=str(row["task_id"]), prompt=build_prompt(row["text"], row["test_list"]),
                 extra={"tests": list(row["test_list"]), "setup": row.get("test_setup_code") or "",
                        "reference": row["code"]})
            for row in rows
        ]

    def score(self, item: Item, response: str, *, sandbox: str = "auto", timeout_s: float = TIMEOUT_S,
              profile: str = "", **_: Any) -> Score:
        """pass@1: 1.0 when the extracted code passes every assert in the sandbox (blocking).

        The paper profile: the paper's reading (input( lines commented out, run as __main__). Otherwise the code
        runs as it is, not as __main__, with input() raising EOFError and a fallback to its definitions."""
        strict = profile == "paper"
        code, fenced = find_code(response)
        if code is None or (not strict and declines(response) and not fenced):
            refused = is_refusal(response) or (not strict and declines(response))
            return Score(0.0, refused=refused, detail="refused" if refused else "no code found", format_ok=False)
        if strict:
            code = _drop_input_lines(code)
        result = run_tests(code, item.extra["tests"], timeout_s, setup=item.extra.get("setup", ""), level=sandbox,
                           mode="paper" if strict else "lenient")
        detail = f"{result.status} [{result.level}]: " + ", ".join(result.tests)
        return Score(1.0 if result.passed else 0.0, detail=detail[:500], format_ok=fenced)

