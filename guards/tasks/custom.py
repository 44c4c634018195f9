"""A team's own tasks (`[[tasks.custom]]`): questions from a JSONL or CSV file, scored by a named rule or a judge.

A custom task is a task like the shipped ones: it is registered in the task registry when the configuration is
loaded, joins its axis's average, PB and the test family, and is sampled, cached and reported the same way.
The file is read and validated once, at start-up; every problem is one line naming the file, the line and the
field, so a bad row never reaches a model.

Scorers (utility): ``choice`` (a letter), ``exact`` (the final answer equals the target, case and spacing
aside), ``number`` (GSM8K's number extraction), ``regex`` (the target is a pattern the answer must match),
``contains`` (the answer contains the target, or one of a list), ``python`` (``module:function`` called with the
item and the response, returning a bool, a number in [0, 1], None for unscored, or a ``Score``). Safety tasks
are scored by ``judge`` (any judge name: shipped, entry point or ``module:Class``).
"""

from __future__ import annotations

import csv
import hashlib
import importlib
import inspect
import json
import re
import sys
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from guards.core.items import Axis, Item, Score
from guards.core.refusal import is_refusal
from guards.tasks.base import TaskDefaults
from guards.tasks.gsm8k import extract_number, same_number

SCORERS = ("choice", "exact", "number", "regex", "contains", "judge", "python")
FIELDS = ("prompt", "target", "id", "stratum", "turns")
PROFILE_NAMES = ("smoke", "pr", "nightly", "paper")
SMOKE_ITEMS = 20  # a smoke run asks at most this many of a custom task's items
_ANSWER_IS = re.compile(r"answer\s+is\s*:?\s*", re.IGNORECASE)
_LETTER_PATTERNS = [re.compile(p, re.IGNORECASE) for p in (
    r"answer\s+is\s*:?\s*\(?([A-J])\)?(?![A-Za-z])",
    r"^\s*\(?([A-J])\)?(?:[.):]|\s*$)",
    r"\boption\s+\(?([A-J])\)?(?![A-Za-z])",
)]


class CustomTaskError(ValueError):
    """A custom task's definition or file is unusable: one line naming the file, line and field."""


@dataclass(frozen=True)
class CustomSpec:
    """One `[[tasks.custom]]` entry, validated."""

    name: str
    file: Path
    axis: Axis
    scorer: str
    fields: Mapping[str, str] = field(default_factory=dict)  # our field -> the column or key in the file
    samples: int | None = None
    gap_max: float | None = None
    judge: str | None = None
    function: str | None = None


def extract_letter(text: str) -> str | None:
    """The chosen letter: "the answer is (B)", a reply that is just "B." or "(B)", or "option B"."""
    for pattern in _LETTER_PATTERNS:
        found = pattern.search(text.strip())
        if found:
            return found.group(1).upper()
    return None


def normalize(text: str) -> str:
    """Case, spacing, surrounding quotes and a trailing full stop do not change an exact answer."""
    return re.sub(r"\s+", " ", text).strip().strip("\"'`").rstrip(".").strip().casefold()


def final_answer(text: str) -> str:
    """What follows the last "answer is" (to the end of its line), else the whole response."""
    found = list(_ANSWER_IS.finditer(text))
    return text[found[-1].end():].split("\n", 1)[0] if found else text


def load_function(name: str, base: Path | None, key: str) -> Callable[..., Any]:
    """`module:function`, the module found on sys.path or beside the configuration file (`base`)."""
    module, _, attr = name.partition(":")
    if not module or not attr:
        raise CustomTaskError(f"{key}: expected module:function, got {name!r}")
    try:
        try:
            loaded = importlib.import_module(module)
        except ModuleNotFoundError:
            top = module.split(".")[0]
            if base is None or not ((base / f"{top}.py").exists() or (base / top).is_dir()):
                raise
            sys.path.insert(0, str(base))
            loaded = importlib.import_module(module)
        function = getattr(loaded, attr)
    except (ImportError, AttributeError) as exc:
        raise CustomTaskError(f"{key}: cannot load {name} ({type(exc).__name__}: {exc})") from None
    if not callable(function):
        raise CustomTaskError(f"{key}: {name} is not callable")
    return function


def source_digest(function: Callable[..., Any]) -> str:
    """sha256 of the file defining `function` (so a changed scorer or app is not answered from the cache)."""
    try:
        path = inspect.getsourcefile(function)
    except TypeError:
        path = None
    return hashlib.sha256(Path(path).read_bytes()).hexdigest()[:16] if path and Path(path).exists() else ""


class CustomTask(TaskDefaults):
    """A task read from the team's own file (see the module docstring)."""

    def __init__(self, spec: CustomSpec, items: Sequence[Item], version: str,
                 function: Callable[..., Any] | None = None) -> None:
        self.spec = spec
        self.name = spec.name
        self.axis: Axis = spec.axis
        self.version = version
        self._items = tuple(items)
        count = len(self._items)
        self.sizes = {p: min(count, spec.samples or (SMOKE_ITEMS if p == "smoke" else count)) for p in PROFILE_NAMES}
        self.data_files = {"": str(spec.file)}
        self._function = function

    def load(self, data_dir: Path | None, variant: str | None = None) -> list[Item]:
        """The file's items (read and validated when the configuration was loaded)."""
        return list(self._items)

    def score(self, item: Item, response: str, **options: Any) -> Score:
        """Score one response by the task's rule; a response that declines is recorded as a refusal."""
        scorer, target = self.spec.scorer, item.target or ""
        if scorer == "python":
            return self._python(item, response)
        if scorer == "choice":
            letter = extract_letter(response)
            ok, shown = letter == target, f"answered {letter}" if letter else "no letter found"
        elif scorer == "exact":
            ok, shown = normalize(final_answer(response)) == normalize(target), "exact match"
        elif scorer == "number":
            number = extract_number(response)
            ok, shown = number is not None and same_number(number, target), f"answered {number}"
        elif scorer == "regex":
            ok, shown = re.search(target, response, re.IGNORECASE) is not None, "pattern"
        elif scorer == "contains":
            options_ = item.extra.get("targets") or [target]
            ok, shown = any(normalize(t) in normalize(response) for t in options_), "contains"
        else:
            raise NotImplementedError("safety tasks are scored by their judge")
        refused = not ok and is_refusal(response)
        return Score(1.0 if ok else 0.0, refused=refused, detail="refused" if refused else shown)

    def _python(self, item: Item, response: str) -> Score:
        assert self._function is not None
        try:
            value = self._function(item, response)
        except Exception as exc:  # noqa: BLE001 - a scorer's crash is an unscored item, named, never a 0
            return Score(None, detail=f"scorer {self.spec.function} raised {type(exc).__name__}: {exc}"[:300])
        if isinstance(value, Score):
            return value
        if value is None:
            return Score(None, detail=f"scorer {self.spec.function} could not decide")
        if isinstance(value, bool | int | float) and 0 <= float(value) <= 1:
            refused = float(value) == 0 and is_refusal(response)
            return Score(float(value), refused=refused, detail="refused" if refused else "")
        return Score(None, detail=f"scorer {self.spec.function} returned {value!r}, not a bool, [0, 1] or None"[:300])


def parse_spec(entry: Mapping[str, Any], index: int, base: Path | None) -> CustomSpec:
    """A `[[tasks.custom]]` table -> CustomSpec; errors name `tasks.custom[i].key`."""
    key = f"tasks.custom[{index}]"
    name = str(entry.get("name", ""))
    if not re.fullmatch(r"[a-z0-9_]+", name):
        raise CustomTaskError(f"{key}.name: {name!r} must be lower case letters, digits and underscores")
    axis, scorer = entry.get("axis"), entry.get("scorer")
    if axis not in ("utility", "safety"):
        raise CustomTaskError(f"{key}.axis: {axis!r} is not one of utility, safety")
    if scorer not in SCORERS:
        raise CustomTaskError(f"{key}.scorer: {scorer!r} is not one of {', '.join(SCORERS)}")
    if (axis == "safety") != (scorer == "judge"):
        raise CustomTaskError(f"{key}.scorer: a {axis} task is scored by "
                              + ("a judge (scorer = \"judge\")" if axis == "safety" else "a rule, not a judge"))
    if scorer == "python" and not entry.get("function"):
        raise CustomTaskError(f"{key}.function: the python scorer needs module:function")
    fields = dict(entry.get("fields", {}))
    stray = sorted(set(fields) - set(FIELDS))
    if stray:
        raise CustomTaskError(f"{key}.fields.{stray[0]}: unknown field (choose from {', '.join(FIELDS)})")
    file = Path(str(entry.get("file", "")))
    if not file.is_absolute() and base is not None:
        file = base / file
    if not file.is_file():
        raise CustomTaskError(f"{key}.file: {file} not found")
    if file.suffix.lower() not in (".jsonl", ".csv"):
        raise CustomTaskError(f"{key}.file: {file} is neither .jsonl nor .csv")
    samples = entry.get("samples")
    return CustomSpec(name=name, file=file, axis=axis, scorer=scorer, fields=fields,
                      samples=int(samples) if samples is not None else None,
                      gap_max=float(entry["gap_max"]) if "gap_max" in entry else None,
                      judge=entry.get("judge"), function=entry.get("function"))


def read_rows(path: Path) -> list[tuple[int, dict[str, Any]]]:
    """(line number, row) for every row of a JSONL or CSV file (a CSV's header is line 1)."""
    try:
        text = path.read_text(encoding="utf-8")
    except UnicodeDecodeError as exc:
        raise CustomTaskError(f"{path}: not UTF-8 text ({exc.reason} at byte {exc.start})") from None
    rows: list[tuple[int, dict[str, Any]]] = []
    if path.suffix.lower() == ".csv":
        reader = csv.DictReader(text.splitlines())
        try:
            for row in reader:
                if None in row:
                    raise CustomTaskError(f"{path}:{reader.line_num}: more cells than the header has columns")
                rows.append((reader.line_num, dict(row)))
        except csv.Error as exc:
            raise CustomTaskError(f"{path}:{reader.line_num}: not valid CSV: {exc}") from None
        return rows
    for number, line in enumerate(text.splitlines(), start=1):
        if not line.strip():
            continue
        try:
            row = json.loads(line)
        except json.JSONDecodeError as exc:
            raise CustomTaskError(f"{path}:{number}: not valid JSON: {exc.msg} (column {exc.colno})") from None
        if not isinstance(row, dict):
            raise CustomTaskError(f"{path}:{number}: expected a JSON object, got {type(row).__name__}")
        rows.append((number, row))
    return rows


def _turns(value: Any, where: str) -> list[tuple[str, str]]:
    """A conversation: alternating user/assistant turns, starting and ending with the user."""
    if isinstance(value, str):
        try:
            value = json.loads(value)
        except json.JSONDecodeError:
            raise CustomTaskError(f"{where}: not a JSON list of turns") from None
    if not isinstance(value, list) or not value:
        raise CustomTaskError(f"{where}: expected a non-empty list of {{role, content}} turns")
    turns = []
    for i, turn in enumerate(value):
        role = turn.get("role") if isinstance(turn, dict) else None
        content = turn.get("content") if isinstance(turn, dict) else None
        expected = "user" if i % 2 == 0 else "assistant"
        if role != expected or not isinstance(content, str) or not content.strip():
            raise CustomTaskError(f"{where}[{i}]: expected a {expected} turn with non-empty text content")
        turns.append((role, content))
    if turns[-1][0] != "user":
        raise CustomTaskError(f"{where}: the conversation must end with the user's turn (the one answered)")
    return turns


def build_items(spec: CustomSpec) -> list[Item]:
    """The file's rows as items, each checked; the first problem raises one line naming file, line and field."""
    names = {f: spec.fields.get(f, f) for f in FIELDS}
    items, seen = [], set()
    needs_target = spec.scorer not in ("judge", "python")
    for line, row in read_rows(spec.file):
        at = f"{spec.file}:{line}"
        turns: list[tuple[str, str]] = []
        prompt: Any
        if row.get(names["turns"]) not in (None, ""):
            turns = _turns(row[names["turns"]], f"{at}: field {names['turns']!r}")
            prompt = turns.pop()[1]
        else:
            prompt = row.get(names["prompt"]) or ""
            if not isinstance(prompt, str) or not prompt.strip():
                raise CustomTaskError(f"{at}: field {names['prompt']!r}: missing or empty (the question)")
        target_value: Any = row.get(names["target"])
        targets: list[str] = []
        if isinstance(target_value, list) and spec.scorer == "contains":
            targets = [str(t) for t in target_value if str(t).strip()]
            target_value = targets[0] if targets else None
        target = None if target_value in (None, "") else str(target_value)
        if needs_target and target is None:
            raise CustomTaskError(f"{at}: field {names['target']!r}: missing (the {spec.scorer} scorer needs it)")
        target = _check_target(spec.scorer, target, f"{at}: field {names['target']!r}")
        item_id = str(row.get(names["id"]) or line)
        if item_id in seen:
            raise CustomTaskError(f"{at}: field {names['id']!r}: duplicate id {item_id!r}")
        seen.add(item_id)
        extra = {k: v for k, v in row.items() if k not in names.values()}
        if targets:
            extra["targets"] = targets
        items.append(Item(task=spec.name, id=item_id, prompt=prompt, target=target,
                          stratum=str(row.get(names["stratum"]) or ""), extra=extra, turns=tuple(turns)))
    if not items:
        raise CustomTaskError(f"{spec.file}: no items (a task with zero items can never pass)")
    if spec.samples is not None and spec.samples > len(items):
        raise CustomTaskError(f"{spec.file}: samples = {spec.samples} but the file has {len(items)} items")
    return items


def _check_target(scorer: str, target: str | None, where: str) -> str | None:
    if target is None:
        return None
    if scorer == "choice":
        letter = target.strip().strip("()").upper()
        if not re.fullmatch(r"[A-J]", letter):
            raise CustomTaskError(f"{where}: {target!r} is not a letter A-J")
        return letter
    if scorer == "number":
        cleaned = target.replace(",", "").strip()
        try:
            float(cleaned)
        except ValueError:
            raise CustomTaskError(f"{where}: {target!r} is not a number") from None
        return cleaned
    if scorer == "regex":
        try:
            re.compile(target)
        except re.error as exc:
            raise CustomTaskError(f"{where}: not a valid regular expression ({exc})") from None
    return target


def custom_task(spec: CustomSpec, base: Path | None) -> CustomTask:
    """The task for a spec: items read and checked, the python scorer loaded, a version that changes whenever
    the file or the scoring rule does (cached scores are keyed by it)."""
    items = build_items(spec)
    function = None
    digest = hashlib.sha256(spec.file.read_bytes())
    digest.update(json.dumps([spec.scorer, dict(spec.fields), spec.function]).encode())
    if spec.scorer == "python":
        function = load_function(str(spec.function), base, f"tasks.custom.{spec.name}.function")
        digest.update(source_digest(function).encode())
    return CustomTask(spec, items, digest.hexdigest()[:16], function)
