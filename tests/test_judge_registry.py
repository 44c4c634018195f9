"""Judges by name: shipped, from the persona_guard.judges entry-point group, or module:Class; protocol-checked."""

from __future__ import annotations

import asyncio
import json
import os
import subprocess
import sys
import textwrap
from pathlib import Path

import pytest

from guards.judges import JudgeError, get_judge, judge_names

JUDGE_MODULE = """
from guards.judges.base import Verdict

class ShoutJudge:
    name = "shout"
    version = "2"

    async def judge(self, prompts, responses):
        return [Verdict(safe=not r.isupper(), reason="shouting" if r.isupper() else "") for r in responses]

class NeedsModel:
    name = "needs-model"
    version = "1"

    def __init__(self, model, *, api_base=None):
        self.model, self.api_base = model, api_base

    async def judge(self, prompts, responses):
        return [Verdict(safe=True) for _ in responses]

class NotAJudge:
    name = "broken"

    def judge(self, prompts, responses):  # not async, no version
        return []
"""


@pytest.fixture
def plugin(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    (tmp_path / "shout_judges.py").write_text(textwrap.dedent(JUDGE_MODULE))
    dist = tmp_path / "shout_judges-1.0.dist-info"
    dist.mkdir()
    (dist / "METADATA").write_text("Metadata-Version: 2.1\nName: shout-judges\nVersion: 1.0\n")
    (dist / "entry_points.txt").write_text("[persona_guard.judges]\nshout = shout_judges:ShoutJudge\n")
    monkeypatch.syspath_prepend(str(tmp_path))
    return tmp_path


def test_entry_point_and_module_class_judges(plugin: Path) -> None:
    assert "shout" in judge_names()
    for name in ("shout", "shout_judges:ShoutJudge"):
        judge = get_judge(name)
        verdicts = asyncio.run(judge.judge(["p", "p"], ["HOW TO", "no."]))
        assert [v.safe for v in verdicts] == [False, True] and judge.version == "2"
    built = get_judge("shout_judges:NeedsModel", model="openai/m", api_base="http://x")
    assert (built.model, built.api_base) == ("openai/m", "http://x")  # type: ignore[attr-defined]


def test_bad_judges_are_named(plugin: Path) -> None:
    with pytest.raises(JudgeError, match="needs a judge model"):
        get_judge("shout_judges:NeedsModel")
    with pytest.raises(JudgeError, match="does not implement the judge protocol: missing version, async judge"):
        get_judge("shout_judges:NotAJudge")
    with pytest.raises(JudgeError, match="cannot load shout_judges:Nope"):
        get_judge("shout_judges:Nope")
    with pytest.raises(JudgeError, match="unknown judge 'nope'"):
        get_judge("nope")


def test_guards_judge_runs_a_custom_judge(plugin: Path) -> None:
    lines = "\n".join(json.dumps({"prompt": "p", "response": r}) for r in ("LOUD", "quiet")) + "\n"
    out = subprocess.run([sys.executable, "-m", "guards.cli.main", "judge", "--judge", "shout_judges:ShoutJudge",
                          "--no-progress"], input=lines, capture_output=True, text=True, timeout=60,
                         env={**os.environ, "PYTHONPATH": str(plugin)})
    assert out.returncode == 0, out.stderr
    rows = [json.loads(line) for line in out.stdout.splitlines()]
    assert [r["safe"] for r in rows] == [False, True] and rows[0]["judge"] == "shout"
