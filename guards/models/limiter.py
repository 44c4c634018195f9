"""Adaptive concurrency: start at the ceiling, halve on a rate limit, grow back slowly on success."""

from __future__ import annotations

import asyncio
import time
from collections import deque


class AdaptiveLimiter:
    """An async semaphore whose size follows the provider (AIMD), never above `ceiling`.

    Waiters queue in FIFO order and a freed slot wakes exactly one of them (no thundering herd: tens of
    thousands of queued requests cost O(1) each).
    """

    def __init__(self, ceiling: int, *, floor: int = 1) -> None:
        self.ceiling = max(1, ceiling)
        self.floor = max(1, min(floor, self.ceiling))
        self.limit = self.ceiling
        self.in_flight = 0
        self._successes = 0
        self._last_cut = 0.0
        self._waiters: deque[asyncio.Future[None]] = deque()
        self._loop: asyncio.AbstractEventLoop | None = None

    def _bind(self) -> asyncio.AbstractEventLoop:
        """The running loop; a client may outlive one `asyncio.run`, so a new loop starts from empty."""
        loop = asyncio.get_running_loop()
        if self._loop is not loop:
            self._loop, self.in_flight, self._waiters = loop, 0, deque()
        return loop

    async def __aenter__(self) -> AdaptiveLimiter:
        loop = self._bind()
        if self.in_flight < self.limit and not self._waiters:
            self._admit()
            return self
        slot: asyncio.Future[None] = loop.create_future()
        self._waiters.append(slot)
        try:
            await slot  # the releaser counted us in before waking us
        except asyncio.CancelledError:
            if slot.done() and not slot.cancelled():
                self._release()  # woken and cancelled at once: hand the slot on
            else:
                self._waiters.remove(slot)
            raise
        return self

    async def __aexit__(self, *exc: object) -> None:
        self._release()

    def _admit(self) -> None:
        """Count one request in; called only while `in_flight < limit`."""
        self.in_flight += 1

    def _release(self) -> None:
        self.in_flight -= 1
        self._wake()

    def _wake(self) -> None:
        while self._waiters and self.in_flight < self.limit:
            slot = self._waiters.popleft()
            if not slot.done():
                self._admit()
                slot.set_result(None)

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
            self._wake()
