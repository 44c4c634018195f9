"""Scoring while requests are in flight (guards.run.ahead): answers are judged and scored as they arrive."""

from __future__ import annotations

import asyncio
from dataclasses import dataclass

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from guards.core.items import Item
from guards.run.ahead import MIN_CHUNK, ScoreAhead, enabled


@dataclass
class _Answer:
    text: str
    error: str | None = None
    blocked: bool = False


def _items(tasks: list[str]) -> list[Item]:
    return [Item(id=str(i), task=t, prompt=f"p{i}") for i, t in enumerate(tasks)]


def _run(tasks: list[str], answers: list[_Answer], delay: float = 0.0, fail: bool = False
         ) -> tuple[list[tuple[str, list[str]]], ScoreAhead, list[int]]:
    calls: list[tuple[str, list[str]]] = []
    fed_before_call: list[int] = []
    fed = 0

    async def judge(task: str, rows: list[tuple[Item, str]]) -> None:
        fed_before_call.append(fed)
        await asyncio.sleep(delay)
        if fail:
            raise RuntimeError("judge down")
        calls.append((task, [item.id for item, _ in rows]))

    async def main() -> ScoreAhead:
        nonlocal fed
        ahead = ScoreAhead(judge, {"do_not_answer": "safety"}, _items(tasks))
        for i, a in enumerate(answers):
            ahead.feed(i, a)
            fed += 1
            await asyncio.sleep(0)
        await ahead.finish()
        return ahead

    ahead = asyncio.run(main())
    return calls, ahead, fed_before_call


def test_safety_answers_are_judged_before_the_last_answer_arrives() -> None:
    n = 4 * MIN_CHUNK
    calls, ahead, fed_before = _run(["do_not_answer"] * n, [_Answer(f"a{i}") for i in range(n)])
    assert calls and fed_before[0] < n  # the first call started while answers were still coming
    assert ahead.scored == sum(len(ids) for _, ids in calls)


@settings(max_examples=60, deadline=None)
@given(st.lists(st.tuples(st.sampled_from(["mmlu", "do_not_answer"]), st.sampled_from(["ok", "error", "blocked"])),
                max_size=200), st.sampled_from([0.0, 0.001]))
def test_each_judgeable_answer_is_judged_at_most_once(rows: list[tuple[str, str]], delay: float) -> None:
    answers = [_Answer("x", error="boom" if kind == "error" else None, blocked=kind == "blocked") for _, kind in rows]
    calls, ahead, _ = _run([t for t, _ in rows], answers, delay)
    judged = [i for _, ids in calls for i in ids]
    assert len(judged) == len(set(judged))
    ok = {str(i) for i, (t, kind) in enumerate(rows) if t == "do_not_answer" and kind == "ok"}
    assert set(judged) <= ok  # never utility answers, errors or provider blocks
    assert len(ok) - len(judged) < MIN_CHUNK  # what is left (less than a chunk) is judged when scoring
    assert ahead.pending.get("do_not_answer", []) == [] or len(ok) - len(judged) == len(ahead.pending["do_not_answer"])


def test_a_failing_judge_ahead_leaves_the_answers_to_scoring() -> None:
    n = 2 * MIN_CHUNK
    calls, ahead, _ = _run(["do_not_answer"] * n, [_Answer("a")] * n, fail=True)
    assert calls == [] and ahead.scored == 0 and ahead.failed > 0


def test_switch(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("GUARDS_SCORE_AHEAD", "0")
    assert not enabled()
    monkeypatch.delenv("GUARDS_SCORE_AHEAD")
    assert enabled()


def test_lanes_score_side_by_side_and_each_task_once() -> None:
    """A slow judge does not hold back the sandbox: each lane has its own call in flight."""
    n = 3 * MIN_CHUNK
    tasks = ["do_not_answer", "mbpp"] * n
    active: set[str] = set()
    overlapped: list[bool] = []
    seen: dict[str, list[str]] = {"do_not_answer": [], "mbpp": []}

    async def score(task: str, rows: list[tuple[Item, str]]) -> None:
        lane = "safety" if task == "do_not_answer" else "utility"
        assert lane not in active  # one call per lane at a time
        active.add(lane)
        overlapped.append(len(active) == 2)
        await asyncio.sleep(0.01)
        seen[task] += [item.id for item, _ in rows]
        active.discard(lane)

    async def main() -> ScoreAhead:
        ahead = ScoreAhead(score, {"do_not_answer": "safety", "mbpp": "utility"}, _items(tasks))
        for i in range(len(tasks)):
            ahead.feed(i, _Answer("x"))
            await asyncio.sleep(0.001)
        await ahead.finish()
        return ahead

    ahead = asyncio.run(main())
    assert any(overlapped)
    for task, ids in seen.items():
        assert len(ids) == len(set(ids)) and {i for i, t in enumerate(tasks) if t == task} >= {int(x) for x in ids}
        assert len(ids) > n - MIN_CHUNK  # most answers were scored before the last one arrived
    assert ahead.scored == sum(len(ids) for ids in seen.values())


@settings(max_examples=40, deadline=None)
@given(st.lists(st.tuples(st.sampled_from(["1", "2", "3"]), st.sampled_from(["a", "b", "c", "d"])), max_size=60))
def test_a_recurring_answer_is_scored_once(rows: list[tuple[str, str]]) -> None:
    """Identities often give the same code or refusal: each distinct (item, answer) runs the scorer once, and
    every row still gets its own score."""
    from guards.core.items import Score
    from guards.models.cache import Cache
    from guards.run.runner import score_utility

    calls: list[tuple[str, str]] = []

    class Counting:
        name, version, options, blocking = "counting", "1", (), True

        def score(self, item: Item, text: str) -> Score:
            calls.append((item.id, text))
            return Score(float(len(text) + int(item.id)))

    pairs = [(Item(id=i, task="counting", prompt="p"), text) for i, text in rows]
    scores = score_utility(None, Cache(None), Counting(), pairs)  # type: ignore[arg-type]
    assert sorted(calls) == sorted(set(rows))
    assert [s.value for s in scores] == [float(len(t) + int(i)) for i, t in rows]
