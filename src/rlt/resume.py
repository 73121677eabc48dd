"""Results saved as they are computed, so that a killed run restarted with the same arguments continues.

A partial file is JSON Lines: a header ``{"fingerprint": …}`` (a hash of every setting the results
depend on), then one entry per line, appended and flushed as results come. A run killed while
appending leaves at most a truncated last line; :meth:`PartialFile.load` drops it and rewrites the
file cleanly, so later appends always start on a fresh line. Results made with other settings are
refused rather than silently mixed in (:func:`settings_fingerprint` says which settings count). Used by
``rlt score``, ``rlt distill`` and ``rlt evaluate``.
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Callable, Hashable, Iterable
from dataclasses import asdict, is_dataclass
from pathlib import Path
from typing import Any

from rlt.data import append_jsonl, write_jsonl
from rlt.errors import UserError

# Settings that change how fast results come, never what they are: a killed run restarted with other values
# of these resumes. Any other difference (models, data, dtype, sampling, reward, format) refuses the resume.
# ``limit`` and ``on_error`` only choose which rows are asked for; a row keeps its key under any of them.
SPEED_ONLY = frozenset({"batch_size", "score_batch_size", "max_batch_tokens", "logit_chunk_size", "device",
                        "limit", "on_error"})


def fingerprint(payload: dict[str, Any]) -> str:
    """A short hash of ``payload`` (JSON-serialisable): equal settings give equal fingerprints."""
    return hashlib.sha256(json.dumps(payload, sort_keys=True).encode()).hexdigest()[:16]


def settings_fingerprint(sources: dict[str, str | None], **settings: Any) -> str:
    """The fingerprint of a resumable run, by the one rule every command uses.

    ``sources`` are the models and datasets, named by :func:`source_id`; ``settings`` are dataclasses or
    dicts, less the :data:`SPEED_ONLY` fields, with numbers compared as numbers (YAML's ``temperature: 0``
    is the flag's ``0.0``).
    """
    payload = {name: _comparable(asdict(value) if is_dataclass(value) else value) for name, value in settings.items()}
    payload["sources"] = {name: source if source is None else source_id(source) for name, source in sources.items()}
    return fingerprint(payload)


def _comparable(value: Any) -> Any:
    if isinstance(value, dict):
        return {k: _comparable(v) for k, v in value.items() if k not in SPEED_ONLY}
    if isinstance(value, (list, tuple)):
        return [_comparable(v) for v in value]
    if isinstance(value, (int, float)) and not isinstance(value, bool):
        return float(value)
    return value


def source_id(name_or_path: str) -> str:
    """How a fingerprint names a model or dataset: a local path made absolute (so that one folder named
    two ways is one source), a hub name as given."""
    path = Path(name_or_path).expanduser()
    return str(path.resolve()) if path.exists() else name_or_path


class PartialFile:
    """Entries of one run, keyed by ``key(entry)``; see the module docstring for the file's layout.

    Call :meth:`load` before :meth:`append`: it writes the header of a new file.
    """

    def __init__(self, path: str | Path, fingerprint: str, key: Callable[[dict], Hashable], what: str = "results"):
        self.path = Path(path)
        self.fingerprint = fingerprint
        self.key = key
        self.what = what  # named in the refusal message

    def load(self) -> dict[Hashable, dict]:
        """The entries saved so far (a later entry replaces an earlier one with the same key).

        Raises :class:`~rlt.errors.UserError` if the file was made with another fingerprint: the user
        decides whether to delete it, since it may hold hours of work.
        """
        text = self.path.read_text(encoding="utf-8") if self.path.exists() else ""
        # Split on "\n" only: str.splitlines also breaks at U+0085, U+2028, …, which JSON leaves unescaped
        # inside strings (a teacher may write them), and would cut such an entry in two.
        lines = [line for line in text.split("\n") if line]
        if lines and json.loads(lines[0]).get("fingerprint") != self.fingerprint:
            raise UserError(f"{self.path} holds {self.what} made with other models, data or settings; "
                             "delete it to start again.")
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

    def remove(self) -> None:
        """Delete the file, once its entries are in the run's final outputs."""
        self.path.unlink(missing_ok=True)


__all__ = ["SPEED_ONLY", "PartialFile", "settings_fingerprint", "source_id"]
