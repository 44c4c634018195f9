"""Adaptive concurrency: start at the ceiling, halve on a rate limit, grow back slowly on success."""

from __future__ import annotations

import asyncio
import time


class AdaptiveLimiter:
    """An async semaphore whose size follows the provider (AIMD), never above `ceiling`."""

    def __init__(self, ceiling: int, *, floor: int = 1) -> None:
        self.ceiling = max(1, ceiling)
        self.floor = max(1, min(floor, self.ceiling))
        self.limit = self.ceiling
        self.in_flight = 0
        self._successes = 0
        self._last_cut = 0.0
        self._cond: asyncio.Condition | None = None
        self._loop: asyncio.AbstractEventLoop | None = None

    def _condition(self) -> asyncio.Condition:
        """The condition of the running event loop (a client may outlive one `asyncio.run`)."""
        loop = asyncio.get_running_loop()
        if self._cond is None or self._loop is not loop:
            self._cond, self._loop, self.in_flight = asyncio.Condition(), loop, 0
        return self._cond

    async def __aenter__(self) -> AdaptiveLimiter:
        cond = self._condition()
        async with cond:
            await cond.wait_for(lambda: self.in_flight < self.limit)
            self.in_flight += 1
        return self

    async def __aexit__(self, *exc: object) -> None:
        cond = self._condition()
        async with cond:
            self.in_flight -= 1
            cond.notify_all()

    def describe(self) -> str:
        """The concurrency now, for the progress bar: "12 in flight, limit 16/32 (slowed by 429s)"."""
        slowed = " (slowed by 429s)" if self.limit < self.ceiling else ""
        return f"{self.in_flight} in flight, limit {self.limit}/{self.ceiling}{slowed}"

    def rate_limited(self) -> None:
        """Halve the limit (at most once a second, so one burst of 429s is one cut)."""
        now = time.monotonic()
        if now - self._last_cut >= 1.0:
            self.limit = max(self.floor, self.limit // 2)
            self._last_cut = now
            self._successes = 0

    def succeeded(self) -> None:
        """Add one slot after `limit` successes in a row (additive increase)."""
        if self.limit >= self.ceiling:
            return
        self._successes += 1
        if self._successes >= self.limit:
            self.limit += 1
            self._successes = 0
