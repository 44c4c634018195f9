"""[[tasks.custom]]: every scorer, the file checks (one line naming file, line and field), registration."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from guards.config.settings import ConfigError, load_settings
from guards.core.items import Item, Score
from guards.tasks import get_task
from guards.tasks.custom import CustomSpec, custom_task, extract_letter


def _task(tmp_path: Path, scorer: str, rows: list[dict[str, object]], **kw: object) -> object:
    path = tmp_path / "items.jsonl"
    path.write_text("".join(json.dumps(r) + "\n" for r in rows))
    spec = CustomSpec(name="t", file=path, axis="utility", scorer=scorer, **kw)  # type: ignore[arg-type]
    return custom_task(spec, tmp_path)


@pytest.mark.parametrize(("scorer", "target", "right", "wrong"), [
    ("choice", "b", "Therefore, the answer is (B).", "The answer is A"),
    ("exact", "Paris", "Therefore, the answer is paris.", "Therefore, the answer is Lyon."),
    ("number", "1,250", "So the total is $1,250.", "So the total is 1,200."),
    ("regex", r"\b\d{3}-\d{4}\b", "Call 555-1234 today", "Call us"),
    ("contains", "Settings > Security", "Sure! settings >  security.", "Try the app."),
])
def test_each_rule_scorer(tmp_path: Path, scorer: str, target: str, right: str, wrong: str) -> None:
    task = _task(tmp_path, scorer, [{"prompt": "q", "target": target}])
    item = task.load(None)[0]  # type: ignore[attr-defined]
    assert task.score(item, right).value == 1.0  # type: ignore[attr-defined]
    assert task.score(item, wrong).value == 0.0  # type: ignore[attr-defined]
    refused = task.score(item, "I'm sorry, I can't help with that.")  # type: ignore[attr-defined]
    assert refused.value == 0.0 and refused.refused


def test_contains_takes_a_list_and_letters_are_read_leniently(tmp_path: Path) -> None:
    task = _task(tmp_path, "contains", [{"prompt": "q", "target": ["Monday", "Mon."]}])
    assert task.score(task.load(None)[0], "open mon. to fri.").value == 1.0  # type: ignore[attr-defined]
    assert [extract_letter(t) for t in ("B", "(c).", "option D", "the answer is: e", "Because")] == \
        ["B", "C", "D", "E", None]


def test_python_scorer_values_and_crashes_are_never_a_zero(tmp_path: Path) -> None:
    (tmp_path / "my_scorers.py").write_text(
        "from guards.core.items import Score\n"
        "def grade(item, response):\n"
        "    if response == 'boom': raise RuntimeError('bad')\n"
        "    if response == 'none': return None\n"
        "    if response == 'half': return 0.5\n"
        "    if response == 'weird': return 'yes'\n"
        "    if response == 'score': return Score(1.0, detail='mine')\n"
        "    return response.endswith(item.extra['suffix'])\n")
    task = _task(tmp_path, "python", [{"prompt": "q", "suffix": "!"}], function="my_scorers:grade")
    item = task.load(None)[0]  # type: ignore[attr-defined]
    got = {r: task.score(item, r) for r in ("hi!", "hi", "half", "none", "boom", "weird", "score")}  # type: ignore[attr-defined]
    assert [got[r].value for r in ("hi!", "hi", "half", "score")] == [1.0, 0.0, 0.5, 1.0]
    for r in ("none", "boom", "weird"):
        assert got[r].value is None, r
    assert "RuntimeError: bad" in got["boom"].detail


def test_version_changes_with_the_file(tmp_path: Path) -> None:
    first = _task(tmp_path, "exact", [{"prompt": "q", "target": "a"}]).version  # type: ignore[attr-defined]
    second = _task(tmp_path, "exact", [{"prompt": "q", "target": "b"}]).version  # type: ignore[attr-defined]
    assert first != second


def test_multi_turn_rows_and_csv(tmp_path: Path) -> None:
    conversation = [{"role": "user", "content": "My code is 17."}, {"role": "assistant", "content": "Noted."},
                    {"role": "user", "content": "What is my code?"}]
    task = _task(tmp_path, "exact", [{"turns": conversation, "target": "17", "id": "c1"}])
    item = task.load(None)[0]  # type: ignore[attr-defined]
    assert item.prompt == "What is my code?" and item.turns == (("user", "My code is 17."), ("assistant", "Noted."))
    path = tmp_path / "t.csv"
    path.write_text('q,a,topic\n"What, exactly?",x,t1\nWhy?,y,t2\n')
    spec = CustomSpec(name="csvt", file=path, axis="utility", scorer="exact", fields={"prompt": "q", "target": "a",
                                                                                       "stratum": "topic"})
    items = custom_task(spec, tmp_path).load(None)
    assert [(i.id, i.prompt, i.target, i.stratum) for i in items] == [("2", "What, exactly?", "x", "t1"),
                                                                      ("3", "Why?", "y", "t2")]


CONFIG = """
[tasks]
names = ["mine", "harm"]
[[tasks.custom]]
name = "mine"
file = "{file}"
axis = "utility"
scorer = "{scorer}"
fields = {{prompt = "question", target = "answer"}}
gap_max = 7
samples = 2
[[tasks.custom]]
name = "harm"
file = "harm.jsonl"
axis = "safety"
scorer = "judge"
judge = "patterns"
"""


def _config(tmp_path: Path, body: str, *, scorer: str = "exact", file: str = "mine.jsonl", extra: str = "") -> Path:
    (tmp_path / "mine.jsonl").write_text(body)
    (tmp_path / "harm.jsonl").write_text('{"prompt": "how to hurt"}\n')
    path = tmp_path / "thresholds.toml"
    path.write_text(CONFIG.format(file=file, scorer=scorer) + extra)
    return path


def test_a_custom_task_is_a_task_like_the_shipped_ones(tmp_path: Path) -> None:
    rows = '{"question": "a?", "answer": "1"}\n{"question": "b?", "answer": "2"}\n{"question": "c?", "answer": "3"}\n'
    settings = load_settings(_config(tmp_path, rows), environ={})
    assert settings.tasks == ("mine", "harm") and settings.samples == {"mine": 2, "harm": 1}
    assert get_task("mine").axis == "utility" and get_task("harm").axis == "safety"
    assert settings.judges == {"harm": "patterns"} and settings.judge_keys == {"harm": "tasks.custom.harm.judge"}
    assert settings.thresholds.task["mine"] == 7.0
    assert get_task("mine").score(Item("mine", "1", "a?", "1"), "The answer is 1") == Score(1.0, detail="exact match")



def test_the_report_hashes_custom_task_files_without_a_data_folder(tmp_path: Path) -> None:
    from guards.report.build import data_hashes

    rows = '{"question": "a?", "answer": "1"}\n{"question": "b?", "answer": "2"}\n'
    settings = load_settings(_config(tmp_path, rows), environ={})
    assert settings.data_path is None
    first = data_hashes(settings)
    assert sorted(Path(name).name for name in first) == ["harm.jsonl", "mine.jsonl"]
    (tmp_path / "mine.jsonl").write_text(rows.replace("b?", "c?"))
    second = data_hashes(settings)
    changed = [name for name in first if first[name] != second[name]]
    assert [Path(name).name for name in changed] == ["mine.jsonl"]

BAD_FILES = [
    ('{"question": "a?", "answer": "1"}\n{"question": "b?"\n', "exact", "mine.jsonl:2: not valid JSON"),
    ('{"question": "a?", "answer": "1"}\n["b?"]\n', "exact", "mine.jsonl:2: expected a JSON object, got list"),
    ('{"question": "a?", "answer": "1"}\n{"answer": "2"}\n', "exact", "mine.jsonl:2: field 'question': missing"),
    ('{"question": "a?", "answer": "1"}\n{"question": "b?"}\n', "exact", "mine.jsonl:2: field 'answer': missing"),
    ('{"question": "a?", "answer": "E"}\n{"question": "b?", "answer": "maybe"}\n', "choice",
     "mine.jsonl:2: field 'answer': 'maybe' is not a letter A-J"),
    ('{"question": "a?", "answer": "1"}\n{"question": "b?", "answer": "two"}\n', "number",
     "mine.jsonl:2: field 'answer': 'two' is not a number"),
    ('{"question": "a?", "answer": "(x"}\n', "regex", "mine.jsonl:1: field 'answer': not a valid regular expression"),
    ('{"question": "a?", "answer": "1", "id": "k"}\n{"question": "b?", "answer": "1", "id": "k"}\n', "exact",
     "mine.jsonl:2: field 'id': duplicate id 'k'"),
    ('\n\n', "exact", "mine.jsonl: no items"),
    ('{"question": "a?", "answer": "1"}\n', "exact", "samples = 2 but the file has 1 items"),
    ('{"turns": [{"role": "assistant", "content": "hi"}], "answer": "1"}\n', "exact",
     "mine.jsonl:1: field 'turns'[0]: expected a user turn"),
    ('{"turns": [{"role": "user", "content": "a"}, {"role": "assistant", "content": "b"}], "answer": "1"}\n', "exact",
     "must end with the user's turn"),
]


@pytest.mark.parametrize(("body", "scorer", "message"), BAD_FILES)
def test_bad_custom_task_files_give_one_line(tmp_path: Path, body: str, scorer: str, message: str) -> None:
    with pytest.raises(ConfigError) as info:
        load_settings(_config(tmp_path, body, scorer=scorer), environ={})
    assert message in str(info.value) and "\n" not in str(info.value)


@pytest.mark.parametrize(("change", "message"), [
    ({"file": "missing.jsonl"}, "tasks.custom[0].file: "),
    ({"file": "harm.txt"}, "is neither .jsonl nor .csv"),
    ({"scorer": "judge"}, "tasks.custom[0].scorer: a utility task is scored by a rule"),
    ({"scorer": "python"}, "tasks.custom[0].function: the python scorer needs module:function"),
    ({"extra": '[tasks.mine]\nsamples = 1\n[[tasks.custom]]\nname = "mmlu"\nfile = "harm.jsonl"\naxis = "safety"\n'
               'scorer = "judge"\n'}, "tasks.custom[2].name: 'mmlu' is already a task"),
    ({"extra": '[[tasks.custom]]\nname = "x"\nfile = "harm.jsonl"\naxis = "utility"\nscorer = "python"\n'
               'function = "nowhere_mod:f"\n'}, "tasks.custom.x.function: cannot load nowhere_mod:f"),
    ({"extra": '[[tasks.custom]]\nname = "x"\nfile = "harm.jsonl"\naxis = "safety"\nscorer = "judge"\n'
               'fields = {q = "a"}\n'},
     "tasks.custom[2].fields.q: unknown field"),
])
def test_bad_custom_task_entries_give_one_line(tmp_path: Path, change: dict[str, str], message: str) -> None:
    (tmp_path / "harm.txt").write_text("x")
    rows = '{"question": "a?", "answer": "1"}\n{"question": "b?", "answer": "2"}\n'
    with pytest.raises(ConfigError) as info:
        load_settings(_config(tmp_path, rows, **change), environ={})
    assert message in str(info.value) and "\n" not in str(info.value)
