"""Resumable work: results saved as they are made, so that no kill, crash or rerun costs what was done.

``rlt score``, ``rlt distill`` and ``rlt evaluate`` each do the same thing: a list of units of work
(a question to explain k times, an explanation to score, a problem to answer), done in batches by a
model, each batch's results appended to a :class:`Journal` as soon as they exist. :class:`Job` is
that loop's bookkeeping: which units the journal already holds, which are pending, and the results
of all of them once the pending ones are done.

A journal is JSON Lines: a header ``{"fingerprint": …}`` (the settings its results depend on, from
:meth:`rlt.run_folder.Claim.journal_fingerprint`), then one entry per line, appended and flushed as
results come. A run killed while appending leaves at most a truncated last line; :meth:`Journal.load`
drops it and rewrites the file cleanly, so later appends start on a fresh line. A journal stays when
its run finishes: the outputs are written from it, so a later run with more rows (a larger ``--limit``)
or other output settings (``evaluate --match``, ``score --keep_best``) only does the work that is new.
An entry's key carries a digest of the row it answers, so an entry for a row since edited is not reused.
"""

from __future__ import annotations

import hashlib
import json
import logging
from collections.abc import Callable, Hashable, Iterable, Sequence
from pathlib import Path
from typing import Any, Generic, TypeVar

from rlt.data import append_jsonl, write_jsonl
from rlt.errors import UserError

logger = logging.getLogger(__name__)

U = TypeVar("U")


def digest(*values: Any) -> str:
    """A short hash of JSON-serialisable values: what an entry's key says about the row it belongs to."""
    return hashlib.sha256(json.dumps(values, ensure_ascii=False).encode()).hexdigest()[:16]


class Journal:
    """The entries of one kind of work, keyed by ``key(entry)``; see the module docstring for the file."""

    def __init__(self, path: str | Path, fingerprint: str, key: Callable[[dict], Hashable], what: str = "results"):
        self.path = Path(path)
        self.fingerprint = fingerprint
        self.key = key
        self.what = what  # named in messages

    def load(self) -> dict[Hashable, dict]:
        """The entries saved so far (a later entry replaces an earlier one with the same key); writes the
        header of a new journal.

        A journal of other settings is an error (the folder's record is checked first, so this only
        happens to a journal copied or edited by hand): the user decides, since it may hold hours of work.
        """
        text = self.path.read_text(encoding="utf-8", errors="replace") if self.path.exists() else ""
        # Split on "\n" only: str.splitlines also breaks at U+0085, U+2028, …, which JSON leaves unescaped
        # inside strings (a teacher may write them), and would cut such an entry in two.
        lines = [line for line in text.split("\n") if line]
        if lines and _header(lines[0]) != self.fingerprint:
            raise UserError(f"{self.path} holds {self.what} made with other models, data or settings than this "
                            "run's: delete it, or use --overwrite true, to start again")
        entries = {}
        for line in lines[1:]:
            try:
                entry = json.loads(line)
            except json.JSONDecodeError:  # the line being written when the run was killed
                continue
            entries[self.key(entry)] = entry
        write_jsonl(self.path, [{"fingerprint": self.fingerprint}, *entries.values()])
        return entries

    def append(self, entries: Iterable[dict]) -> None:
        append_jsonl(self.path, entries)


def _header(line: str) -> str | None:
    try:
        header = json.loads(line)
    except json.JSONDecodeError:
        return None
    return header.get("fingerprint") if isinstance(header, dict) else None


class Job(Generic[U]):
    """Units of work whose results go to ``journal``; a unit is done when the journal holds every entry
    ``keys(unit)`` names (a question explained k times has k)."""

    def __init__(self, journal: Journal, keys: Callable[[U], Sequence[Hashable]]):
        self.journal = journal
        self.keys = keys

    def run(self, units: Sequence[U], work: Callable[[Sequence[U]], None]) -> dict[Hashable, dict]:
        """Do ``work`` on the units the journal lacks (it appends their entries as it goes), then return
        the journal's entries: every unit's, whichever run made them."""
        done = self.journal.load()
        pending = [unit for unit in units if any(key not in done for key in self.keys(unit))]
        logger.info("%s: %d of %d already in %s, %d to do", self.journal.what, len(units) - len(pending),
                    len(units), self.journal.path.name, len(pending))
        if pending:
            work(pending)
            done = self.journal.load()
        return done


__all__ = ["Job", "Journal", "digest"]
