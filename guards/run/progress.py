"""Progress on stderr: requests answered of the total, and the adaptive concurrency that paces them.

On a terminal: rich progress bars. Elsewhere (CI logs, pipes): a rich bar prints nothing until it ends, so a
plain line every few seconds instead -- done/total, rate, errors and the concurrency -- and one at the end.
"""

from __future__ import annotations

import contextlib
import re
import sys
import time
from collections.abc import Callable, Iterator
from typing import TextIO

Progress = Callable[[int, int, str], None]  # (done, total, flow: the concurrency now and errors so far, in words)

PLAIN_EVERY_S = 5.0


def plain_line(title: str, name: str, done: int, total: int, elapsed_s: float, flow: str) -> str:
    """One CI log line: `persona-guard asking 120/400 (30%) 12.0/s, 3 errors, concurrency 32 [10 s]`."""
    share = f" ({100 * done / total:.0f}%)" if total else ""
    rate = done / elapsed_s if elapsed_s > 0 else 0.0
    errors = re.search(r"(\d+) errors?", flow)
    parts = [f"{rate:.1f}/s", f"{errors.group(1) if errors else 0} errors"]
    rest = re.sub(r",?\s*\d+ errors?", "", flow).strip(" ,")
    if rest:
        parts.append(rest)
    return f"{title} {name} {done}/{total}{share} {', '.join(parts)} [{elapsed_s:.0f} s]"


class PlainProgress:
    """The non-terminal progress: a line at most every `every_s` seconds per bar, and the final count."""

    def __init__(self, title: str, stream: TextIO, every_s: float = PLAIN_EVERY_S,
                 clock: Callable[[], float] = time.monotonic) -> None:
        self.title, self.stream, self.every_s, self.clock = title, stream, every_s, clock
        self.last: dict[str, tuple[int, int, str]] = {}
        self._started: dict[str, float] = {}
        self._printed: dict[str, float] = {}

    def factory(self, name: str) -> Progress:
        self._started[name] = self.clock()
        self._printed[name] = self._started[name]

        def update(done: int, total: int, flow: str = "") -> None:
            self.last[name] = (done, total, flow)
            now = self.clock()
            if now - self._printed[name] >= self.every_s:
                self._printed[name] = now
                self._write(name, now)

        return update

    def _write(self, name: str, now: float) -> None:
        done, total, flow = self.last[name]
        print(plain_line(self.title, name, done, total, now - self._started[name], flow), file=self.stream,
              flush=True)

    def close(self) -> None:
        now = self.clock()
        for name in self.last:
            self._write(name, now)


@contextlib.contextmanager
def progress_bars(title: str, enabled: bool = True, *, plain: bool | None = None
                  ) -> Iterator[Callable[[str], Progress] | None]:
    """A factory of progress callbacks: `factory(name)` gives one bar's callback. `plain` (default: stdout is not
    a terminal) prints plain lines every few seconds instead of rich bars."""
    if not enabled:
        yield None
        return
    if plain if plain is not None else not sys.stdout.isatty():
        lines = PlainProgress(title, sys.stderr)
        try:
            yield lines.factory
        finally:
            lines.close()
        return
    from rich.console import Console
    from rich.progress import BarColumn, MofNCompleteColumn, TextColumn, TimeElapsedColumn
    from rich.progress import Progress as Bars

    bar = Bars(TextColumn(f"[bold]{title}[/] {{task.description}}"), BarColumn(), MofNCompleteColumn(),
                   TimeElapsedColumn(), TextColumn("{task.fields[flow]}", style="dim"), console=Console(stderr=True))
    with bar:
        def factory(name: str) -> Progress:
            task = bar.add_task(name, total=None, flow="")

            def update(done: int, total: int, flow: str = "") -> None:
                bar.update(task, completed=done, total=total, flow=flow)

            return update

        yield factory
