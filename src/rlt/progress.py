"""One progress bar style for every long loop (rich; quiet when stderr is not a terminal)."""

from __future__ import annotations

import sys
from collections.abc import Iterator
from contextlib import contextmanager

from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn, TimeRemainingColumn


@contextmanager
def progress_bar(description: str, total: int) -> Iterator[Progress]:
    """Yields a rich ``Progress`` with one task (id 0); call ``bar.advance(0, n)`` and ``bar.update(0, ...)``."""
    columns = (TextColumn("[bold]{task.description}"), BarColumn(), MofNCompleteColumn(),
               TimeElapsedColumn(), TimeRemainingColumn(), TextColumn("{task.fields[status]}"))
    with Progress(*columns, disable=not sys.stderr.isatty(), transient=False) as bar:
        bar.add_task(description, total=total, status="")
        yield bar
