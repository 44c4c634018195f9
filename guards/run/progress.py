"""Progress on stderr: requests answered of the total, and the adaptive concurrency that paces them."""

from __future__ import annotations

import contextlib
from collections.abc import Callable, Iterator

Progress = Callable[[int, int, str], None]  # (done, total, flow: the concurrency now, in words)


@contextlib.contextmanager
def progress_bars(title: str, enabled: bool = True) -> Iterator[Callable[[str], Progress] | None]:
    """A factory of rich progress bars under one live display: `factory(name)` gives one bar's callback."""
    if not enabled:
        yield None
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
