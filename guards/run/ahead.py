"""Judging while requests are still in flight: safety answers are judged as they arrive, not after the last one.

`JudgeAhead.feed` is called for each answer (from the event loop); answers to safety tasks gather per task and
one judging call at a time runs in the background on everything gathered so far (so a slow judge gets bigger,
better-batched calls, and a fast one keeps up). The judging function writes verdicts to the judgments cache
(`runner.judge_safety`), so scoring afterwards finds them there and judges only what is left. A failure while
judging ahead is dropped here: the same answers are judged again when scoring, where errors are handled as
always. GUARDS_JUDGE_AHEAD=0 turns it off (benchmarks compare with and without).
"""

from __future__ import annotations

import asyncio
import contextlib
import os
from collections.abc import Awaitable, Callable, Sequence
from typing import Any

from guards.core.items import Item

JudgeFn = Callable[[str, list[tuple[Item, str]]], Awaitable[Any]]
MIN_CHUNK = 32  # fewer answers than this wait for more (one judging call has a fixed cost)


def enabled() -> bool:
    return os.environ.get("GUARDS_JUDGE_AHEAD", "1").strip() not in ("0", "false", "no", "off")


class JudgeAhead:
    """Judges safety answers in the background as they arrive; `finish()` waits for the call in progress."""

    def __init__(self, judge: JudgeFn, safety_tasks: set[str], items: Sequence[Item]) -> None:
        self.judge, self.safety_tasks, self.items = judge, safety_tasks, items
        self.pending: dict[str, list[tuple[Item, str]]] = {}
        self.running: asyncio.Task[None] | None = None
        self.judged = 0
        self.failed = 0

    def feed(self, index: int, result: Any) -> None:
        """One answer arrived (request `index`); answers that are errors or provider blocks are not judged."""
        item = self.items[index]
        if item.task not in self.safety_tasks or result.error is not None or result.blocked:
            return
        self.pending.setdefault(item.task, []).append((item, result.text))
        self._kick(final=False)

    def _kick(self, final: bool) -> None:
        if self.running is not None and not self.running.done():
            return
        ready = {t: rows for t, rows in self.pending.items() if rows and (final or len(rows) >= MIN_CHUNK)}
        if not ready:
            return
        for task in ready:
            self.pending[task] = []
        self.running = asyncio.get_running_loop().create_task(self._judge(ready, final))

    async def _judge(self, ready: dict[str, list[tuple[Item, str]]], final: bool) -> None:
        for task, rows in ready.items():
            try:
                await self.judge(task, rows)
                self.judged += len(rows)
            except Exception:  # judged again, with its errors, when scoring
                self.failed += len(rows)
        self.running = None
        self._kick(final)

    async def finish(self) -> None:
        """Wait for the judging call in progress; what is still pending is left to scoring."""
        while self.running is not None and not self.running.done():
            with contextlib.suppress(Exception):
                await asyncio.shield(self.running)
