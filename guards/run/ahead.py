"""Scoring while requests are still in flight: answers are judged and scored as they arrive, not after the last one.

`ScoreAhead.feed` is called for each answer (from the event loop); answers gather per task, and each lane (a
task's axis: safety answers go to the judge, utility answers to their scorer, e.g. the MBPP sandbox) runs one
scoring call at a time in the background on everything its tasks gathered so far (so a slow scorer gets bigger,
better-batched calls, and a fast one keeps up; the judge and the sandbox work side by side). The scoring function
writes to the cache (`runner.score_task`), so scoring afterwards finds those scores there and scores only what is
left. A failure while scoring ahead is dropped here: the same answers are scored again afterwards, where errors are
handled as always. GUARDS_SCORE_AHEAD=0 turns it off (benchmarks compare with and without).
"""

from __future__ import annotations

import asyncio
import contextlib
import os
from collections.abc import Awaitable, Callable, Mapping, Sequence
from typing import Any

from guards.core.items import Item

ScoreFn = Callable[[str, list[tuple[Item, str]]], Awaitable[Any]]
MIN_CHUNK = 32  # fewer answers than this wait for more (one scoring call has a fixed cost)


def enabled() -> bool:
    return os.environ.get("GUARDS_SCORE_AHEAD", "1").strip() not in ("0", "false", "no", "off")


class ScoreAhead:
    """Scores answers in the background as they arrive, one call per lane at a time; `finish()` waits for the
    calls in progress."""

    def __init__(self, score: ScoreFn, lanes: Mapping[str, str], items: Sequence[Item]) -> None:
        self.score, self.lanes, self.items = score, dict(lanes), items  # lanes: task -> lane name
        self.pending: dict[str, list[tuple[Item, str]]] = {}
        self.running: dict[str, asyncio.Task[None]] = {}
        self.scored = 0
        self.failed = 0

    def feed(self, index: int, result: Any) -> None:
        """One answer arrived (request `index`); answers that are errors or provider blocks are not scored."""
        item = self.items[index]
        if item.task not in self.lanes or result.error is not None or result.blocked:
            return
        self.pending.setdefault(item.task, []).append((item, result.text))
        self._kick(self.lanes[item.task], final=False)

    def _kick(self, lane: str, final: bool) -> None:
        running = self.running.get(lane)
        if running is not None and not running.done():
            return
        ready = {t: rows for t, rows in self.pending.items()
                 if self.lanes[t] == lane and rows and (final or len(rows) >= MIN_CHUNK)}
        if not ready:
            return
        for task in ready:
            self.pending[task] = []
        self.running[lane] = asyncio.get_running_loop().create_task(self._score(lane, ready, final))

    async def _score(self, lane: str, ready: dict[str, list[tuple[Item, str]]], final: bool) -> None:
        for task, rows in ready.items():
            try:
                await self.score(task, rows)
                self.scored += len(rows)
            except Exception:  # scored again, with its errors, afterwards
                self.failed += len(rows)
        del self.running[lane]
        self._kick(lane, final)

    async def finish(self) -> None:
        """Wait for the scoring calls in progress; what is still pending is left to scoring afterwards."""
        while running := [t for t in self.running.values() if not t.done()]:
            for task in running:
                with contextlib.suppress(Exception):
                    await asyncio.shield(task)
