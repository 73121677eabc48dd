"""One run per output folder: the contract every command that writes an ``--output_dir`` keeps.

* **A record.** ``rlt_run.json`` says which command ran, with which settings (the config, the versions,
  the git SHA), and whether it finished. It is written once the run can start, after every check
  below, so a refused run leaves the record of the run beside it as it was.
* **Identity.** The settings a run's work depends on are compared by one rule (:func:`settings`: the
  models and datasets by :func:`source_id`, numbers as numbers, :data:`SPEED_ONLY` fields left out).
  They come in named groups, one per kind of work (``explanations``, ``rewards``, ``training``...), so a
  run may add work to a folder (score the explanations already there) but never mix work of other
  settings into it. A folder holding another command's run, or work of other settings, is refused with
  one line naming what differs, unless ``--overwrite true``, which deletes the folder's contents first.
  A non-empty folder without a record holds files no rlt run wrote: it is refused even then, since rlt
  deletes only what it wrote.
* **Finished runs.** A finished run started again with the same settings says so and does nothing.
* **One process at a time.** ``rlt_run.lock`` holds the owner's pid and host under an advisory
  ``flock``: a second process on the folder is refused while the owner lives. The kernel drops the
  lock of a process that dies, however it dies, so the next run takes the folder over.
"""

from __future__ import annotations

import errno
import fcntl
import hashlib
import json
import logging
import os
import shutil
import socket
import subprocess
import sys
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from dataclasses import asdict, dataclass, field, is_dataclass
from datetime import datetime, timezone
from importlib import metadata
from pathlib import Path
from typing import Any

from rlt.data import write_json
from rlt.errors import UserError

logger = logging.getLogger(__name__)

RUN_INFO = "rlt_run.json"
LOCK = "rlt_run.lock"
SUMMARY = "summary.json"  # what a command that sums its run up (evaluate, distill, the demo's report) calls it
_PACKAGES = ("rlt", "torch", "transformers", "trl", "accelerate", "datasets", "math-verify", "vllm")

# Settings that change how fast results come, never what they are, and the flags that steer a run rather
# than describe it: a run started again with other values of these is the same run.
SPEED_ONLY = frozenset({"batch_size", "score_batch_size", "max_batch_tokens", "logit_chunk_size", "device",
                        "output_dir", "overwrite", "resume", "vllm_tensor_parallel_size", "vllm_gpu_memory_utilization",
                        "vllm_kv_cache_gib", "vllm_enforce_eager", "vllm_save_every"})
# Which rows a command is asked for. The work on a row does not depend on them (a row keeps its results
# under any of them), so the commands that save results row by row leave them out of their work's settings.
ROW_SELECTION = frozenset({"limit", "on_error"})
_SHOWN_DIFFERENCES = 4


# Settings -------------------------------------------------------------------------------------------


def fingerprint(payload: Any) -> str:
    """A short hash of ``payload`` (JSON-serialisable): equal settings give equal fingerprints."""
    return hashlib.sha256(json.dumps(payload, sort_keys=True, default=str).encode()).hexdigest()[:16]


def settings(sources: dict[str, str | None], *, ignore: frozenset[str] = SPEED_ONLY, **groups: Any) -> dict:
    """The settings a piece of work depends on, in the form every command compares them.

    ``sources`` are the models and datasets, named by :func:`source_id` (so a group's field of the same
    name, e.g. ``dataset``, is left out of the group); ``groups`` are dataclasses or dicts, less the
    ``ignore`` fields, with numbers compared as numbers (YAML's ``temperature: 0`` is the flag's ``0.0``).
    """
    ignore = ignore | frozenset(sources)
    payload = {name: _comparable(asdict(value) if is_dataclass(value) else value, ignore)
               for name, value in groups.items()}
    payload["sources"] = {name: source if source is None else source_id(source) for name, source in sources.items()}
    return payload


def _comparable(value: Any, ignore: frozenset[str]) -> Any:
    if isinstance(value, dict):
        return {k: _comparable(v, ignore) for k, v in value.items() if k not in ignore}
    if isinstance(value, (list, tuple)):
        return [_comparable(v, ignore) for v in value]
    if isinstance(value, (int, float)) and not isinstance(value, bool):
        return float(value)
    return value


def source_id(name_or_path: str) -> str:
    """How settings name a model or dataset: a local path made absolute (so that one folder named two
    ways is one source), a hub name as given."""
    path = Path(name_or_path).expanduser()
    return str(path.resolve()) if path.exists() else name_or_path


def differences(old: dict, new: dict) -> list[str]:
    """``key: old → new`` for every setting that differs, named as its flag (``temperature: 0.7 → 0.9``): the
    group a setting is in (``sampling``) is left out, a key inside a setting's dict kept (``a.b``)."""
    flat_old, flat_new = _flatten(old), _flatten(new)
    changed = [key for key in sorted(flat_old.keys() | flat_new.keys())
               if flat_old.get(key, _UNSET) != flat_new.get(key, _UNSET)]
    return [f"{key}: {_short(flat_old.get(key, _UNSET))} → {_short(flat_new.get(key, _UNSET))}" for key in changed]


def _flatten(settings: dict) -> dict[str, Any]:
    out = {}
    for group, value in settings.items():
        out.update(_leaves(value) if isinstance(value, dict) and value else {group: value})
    return out


def _leaves(value: Any, prefix: str = "") -> dict[str, Any]:
    if not isinstance(value, dict) or not value:
        return {prefix: value}
    out = {}
    for key, item in value.items():
        out.update(_leaves(item, f"{prefix}.{key}" if prefix else str(key)))
    return out


_UNSET = object()


def _short(value: Any) -> str:
    if value is _UNSET:
        return "(unset)"
    if isinstance(value, float) and value.is_integer():  # compared as floats (YAML's 3 is the flag's 3.0)
        value = int(value)
    text = repr(value)
    return text if len(text) <= 60 else text[:57] + "..."


# The lock -------------------------------------------------------------------------------------------


def _owner(command: str) -> dict:
    return {"pid": os.getpid(), "host": socket.gethostname(), "command": command, "since": _now()}


def _read_owner(fd: int) -> dict | None:
    try:
        return json.loads(os.pread(fd, 4096, 0).decode() or "null")
    except (ValueError, UnicodeDecodeError):
        return None


def _is_alive(owner: dict) -> bool:
    """Whether the process named by a lock file still runs (a process on another host is assumed to)."""
    if owner.get("host") != socket.gethostname():
        return True
    try:
        os.kill(int(owner["pid"]), 0)
    except ProcessLookupError:
        return False
    except (PermissionError, KeyError, TypeError, ValueError):
        return True
    return True


class _Lock:
    """``rlt_run.lock``: held with ``flock`` while the run lives, holding its pid and host for the message
    a second process gets. Where the file system has no ``flock`` (some network file systems), the pid and
    host alone decide: a lock whose process is gone from this host is taken over."""

    def __init__(self, path: Path, command: str):
        self.path, self.command = path, command
        self.fd: int | None = None

    def acquire(self) -> None:
        while self.fd is None:
            fd = os.open(self.path, os.O_RDWR | os.O_CREAT, 0o644)
            previous = _read_owner(fd)
            try:
                fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
            except BlockingIOError:
                os.close(fd)
                raise self._in_use(previous) from None
            except OSError as error:
                if error.errno not in (errno.ENOLCK, errno.EOPNOTSUPP, errno.ENOSYS, errno.EINVAL):
                    os.close(fd)
                    raise
                if previous and previous.get("pid") != os.getpid() and _is_alive(previous):
                    os.close(fd)
                    raise self._in_use(previous, flock=False) from None
            if not self._still_at_path(fd):  # its owner released it (and removed the file) meanwhile: again
                os.close(fd)
                continue
            if previous:
                logger.warning("%s: taking over the folder from %s (pid %s on %s), which is gone", self.path.parent,
                               previous.get("command"), previous.get("pid"), previous.get("host"))
            os.ftruncate(fd, 0)
            os.pwrite(fd, json.dumps(_owner(self.command)).encode(), 0)
            self.fd = fd

    def release(self) -> None:
        if self.fd is None:
            return
        if self._still_at_path(self.fd):
            self.path.unlink(missing_ok=True)  # before closing: no one can lock a file about to vanish
        os.close(self.fd)
        self.fd = None

    def _still_at_path(self, fd: int) -> bool:
        try:
            return os.fstat(fd).st_ino == os.stat(self.path).st_ino
        except FileNotFoundError:
            return False

    def _in_use(self, owner: dict | None, flock: bool = True) -> UserError:
        folder = self.path.parent
        if not owner:
            return UserError(f"{folder} is in use by another rlt run: wait for it to end or stop it")
        hint = "" if flock else f"; if that run is gone, delete {self.path}"
        return UserError(f"{folder} is in use by another run (`rlt {owner.get('command')}`, pid {owner.get('pid')} "
                         f"on {owner.get('host')}, since {owner.get('since')}): wait for it to end or stop it{hint}")


# The folder -----------------------------------------------------------------------------------------


def _now() -> str:
    return datetime.now(timezone.utc).isoformat(timespec="seconds")


def package_versions() -> dict[str, str]:
    versions = {"python": sys.version.split()[0]}
    for name in _PACKAGES:
        try:
            versions[name] = metadata.version(name)
        except metadata.PackageNotFoundError:
            continue
    return versions


def git_sha() -> str | None:
    """SHA of the rlt checkout this code runs from (None for an installed wheel)."""
    try:
        result = subprocess.run(
            ["git", "rev-parse", "HEAD"], cwd=Path(__file__).parent, capture_output=True, text=True, timeout=5
        )
    except (OSError, subprocess.TimeoutExpired):
        return None
    return result.stdout.strip() or None


def _is_own_scratch(name: str) -> bool:
    """The lock, and the temporary file of an atomic write caught by a kill (``.name.1a2b3c4d.tmp``)."""
    return name == LOCK or (name.startswith(".") and name.endswith(".tmp"))


class OutputFile:
    """A file (or folder) of a run folder, declared on a command's outputs class, whose ``folder`` field is
    the run folder: ``summary = OutputFile(SUMMARY)`` makes ``outputs.summary`` that file's path. The one place
    a command's file names are spelled."""

    def __init__(self, name: str):
        self.name = name

    def __get__(self, outputs: Any, owner: type | None = None) -> Any:
        return self if outputs is None else outputs.folder / self.name


@dataclass
class Claim:
    """A run's hold on its folder, from the checks to the end of the run (see :meth:`RunFolder.claim`)."""

    folder: RunFolder
    work: dict[str, dict]
    fingerprint: str
    previous: dict | None  # the record of a run of the same settings found in the folder; None: a new run
    expected: Sequence[Path] = ()
    record: dict = field(default_factory=dict)

    @property
    def finished(self) -> bool:
        """Whether the folder holds this very run, finished, with its outputs."""
        return (self.previous is not None and self.previous.get("status") == "finished"
                and self.previous.get("fingerprint") == self.fingerprint and all(p.exists() for p in self.expected))

    def journal_fingerprint(self, group: str) -> str:
        """The fingerprint heading the journal of one work group (:class:`rlt.jobs.Journal`)."""
        return fingerprint(self.work[group])

    def start(self, **config: Any) -> None:
        """Write ``rlt_run.json``: the command, the work's settings (those of the work already in the folder
        kept), every config (dataclasses or dicts), argv, versions, git SHA, time; status ``running``."""
        self.record = {
            "command": self.folder.command,
            "status": "running",
            "fingerprint": self.fingerprint,
            "work": {**(self.previous or {}).get("work", {}), **self.work},
            "argv": sys.argv,
            "started": _now(),
            "finished": None,
            "git_sha": git_sha(),
            "versions": package_versions(),
            "config": {name: asdict(c) if is_dataclass(c) else c for name, c in config.items()},
        }
        write_json(self.folder.record_path, self.record)

    def finish(self, **details: Any) -> None:
        """Mark the run finished (its outputs are all written), with ``details`` (e.g. the step it reached)."""
        self.record.update(status="finished", finished=_now(), **details)
        write_json(self.folder.record_path, self.record)


@dataclass(frozen=True)
class RunFolder:
    """An ``--output_dir`` and the command that writes it (see the module docstring for the contract)."""

    path: Path
    command: str

    @property
    def record_path(self) -> Path:
        return self.path / RUN_INFO

    @property
    def lock_path(self) -> Path:
        return self.path / LOCK

    def read_record(self) -> dict | None:
        """The folder's ``rlt_run.json``; None if it has none. An unreadable one is an error naming it."""
        if not self.record_path.is_file():
            return None
        try:
            record = json.loads(self.record_path.read_text(encoding="utf-8"))
        except (ValueError, UnicodeDecodeError):
            raise UserError(f"{self.record_path} is not readable JSON: the folder's record is damaged; choose "
                            "another --output_dir, or --overwrite true to delete the folder's contents") from None
        return record if isinstance(record, dict) else {}

    @contextmanager
    def claim(self, work: dict[str, dict], outputs: dict | None = None, *, overwrite: bool = False,
              expected: Sequence[Path] = ()) -> Iterator[Claim]:
        """Hold the folder for one run, checked against what it holds (the module docstring's rules).

        ``work``: each kind of work's settings (:func:`settings`), named; ``outputs``: the settings that only
        shape the outputs written from that work (which rows, how answers are checked); ``expected``: the
        output files a finished run has. The lock is held until the ``with`` block ends.
        """
        self._make()
        lock = _Lock(self.lock_path, self.command)
        lock.acquire()
        try:
            previous = self._check(work, overwrite)
            yield Claim(self, work, fingerprint({"work": work, "outputs": outputs}), previous, expected)
        finally:
            lock.release()

    def _make(self) -> None:
        if self.path.exists() and not self.path.is_dir():
            raise UserError(f"--output_dir {self.path}: a file, not a folder")
        try:
            self.path.mkdir(parents=True, exist_ok=True)
        except OSError as error:
            raise UserError(f"--output_dir {self.path}: cannot make the folder ({error.strerror or error})") from None

    def _check(self, work: dict[str, dict], overwrite: bool) -> dict | None:
        """The record of a run this one may continue or finish, None for an empty folder; else an error."""
        entries = sorted(p.name for p in self.path.iterdir() if not _is_own_scratch(p.name))
        if not entries:
            return None
        record = self.read_record() if RUN_INFO in entries else None
        if RUN_INFO not in entries:
            shown = ", ".join(entries[:5]) + (", …" if len(entries) > 5 else "")
            raise UserError(f"{self.path} holds files that no rlt run wrote ({shown}): choose an empty or new "
                            "--output_dir")
        if overwrite:
            self._clear()
            return None
        again = "choose another --output_dir, or --overwrite true to delete its contents and start again"
        if record.get("command") != self.command:
            raise UserError(f"{self.path} holds a `rlt {record.get('command')}` run, not `rlt {self.command}`: {again}")
        if "work" not in record:
            raise UserError(f"{self.path} holds a run of an earlier rlt, which did not record its settings: {again}")
        changed = [change for group, payload in work.items() if group in record["work"]
                   for change in differences(record["work"][group], payload)]
        if changed:
            shown = "; ".join(changed[:_SHOWN_DIFFERENCES])
            more = f"; and {len(changed) - _SHOWN_DIFFERENCES} more" if len(changed) > _SHOWN_DIFFERENCES else ""
            raise UserError(f"{self.path} holds a `rlt {self.command}` run made with other settings ({shown}{more}): "
                            f"{again}")
        return record

    def _clear(self) -> None:
        logger.warning("--overwrite: deleting the contents of %s", self.path)
        for entry in self.path.iterdir():
            if entry.name == LOCK:
                continue
            if entry.is_dir() and not entry.is_symlink():
                shutil.rmtree(entry)
            else:
                entry.unlink()


__all__ = ["LOCK", "ROW_SELECTION", "RUN_INFO", "SPEED_ONLY", "SUMMARY", "Claim", "OutputFile", "RunFolder",
           "differences", "fingerprint", "settings", "source_id"]
