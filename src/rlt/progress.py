"""One progress bar style for every long loop (rich; quiet when stderr is not a terminal)."""

from __future__ import annotations

import sys
from collections.abc import Callable, Iterator, Sequence
from contextlib import contextmanager
from typing import TypeVar

from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn, TimeRemainingColumn

T = TypeVar("T")


@contextmanager
def progress_bar(description: str, total: int) -> Iterator[Progress]:
    """Yields a rich ``Progress`` with one task (id 0); call ``bar.advance(0, n)`` and ``bar.update(0, ...)``."""
    columns = (TextColumn("[bold]{task.description}"), BarColumn(), MofNCompleteColumn(),
               TimeElapsedColumn(), TimeRemainingColumn(), TextColumn("{task.fields[status]}"))
    with Progress(*columns, disable=not sys.stderr.isatty(), transient=False) as bar:
        bar.add_task(description, total=total, status="")
        yield bar


def in_batches(items: Sequence[T], size: int, description: str) -> Iterator[tuple[Sequence[T], Callable[[str], None]]]:
    """``items`` in batches of ``size``, on a progress bar that advances as each batch is done; each batch
    comes with a function that sets the bar's status text."""
    with progress_bar(description, total=len(items)) as bar:
        for start in range(0, len(items), size):
            batch = items[start:start + size]
            yield batch, lambda text: bar.update(0, status=text)
            bar.advance(0, len(batch))
