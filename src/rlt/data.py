"""Load datasets and read their rows, one loader for every command.

Sources (:func:`read_records`): a ``.json`` file (a list of objects, or an object holding lists: the
only one, else the one named by ``split``), a ``.jsonl`` file, a ``.parquet`` file, a folder saved by
``datasets`` (``save_to_disk``), a folder of such files (a file's split is the leading run of letters
and digits of its name: ``test.jsonl``, ``train-00000-of-00002.parquet``), or a Hugging Face dataset
name (a local path wins over a hub name). ``split`` picks among several splits; by default the only
split, else ``train``. Every row is named as the user finds it (:class:`RowRef`): a JSONL file's by its
line, a JSON or Parquet file's by its row, each file of a folder by its own name.

Saved folders and hub names go through ``datasets``. Files are read here, because ``datasets``' JSON
builder converts a whole file to Arrow at once: a bad line fails the file with a message that names
neither the line nor the field, rows of different shapes (``explanation`` in one, ``explanations`` in
another) are merged into one schema, and a folder's splits are found only under the names train,
test and validation (the toy world's held-out file would be ignored).

:func:`load_rows` is the one loop that reads rows into what a command needs (examples, problems with
reference answers, explanations to score): it counts and names bad rows (``on_error``: stop at the
first, or skip and count them) and stops after ``limit`` good rows. The row formats of
:func:`normalize_record`, tried in this order; the first that applies decides:

0) **Countdown**: ``target`` and ``nums`` (TinyZero's files): a stated question and a solution found by
   exact search (:mod:`rlt.countdown`); a row no expression solves is a bad row;

a) **custom**: a question field (``question``, else ``prompt``, else ``problem``) and ``solution``.
   This also covers MATH-style rows (``problem``, ``solution``, ``answer``: the worked solution is
   kept verbatim, ``answer`` is ignored), AIME24 rows (``question`` == ``problem``) and Sky-T1 /
   Qwen2.5-Math evaluation outputs (``question``, ``solution``, ``code``, ...);
b) **conversation**: ``conversations`` (``from``/``value``) or ``messages`` (``role``/``content``)
   with a user turn and an assistant turn holding the thought and solution sections (Bespoke-Stratos);
c) **GSM8K**: a question field and ``answer`` ending in a ``#### <final answer>`` line.

A field whose value is null counts as absent, so columns that ``datasets`` fills with nulls when it
merges differently shaped rows do not change the format a row is read in. A question or solution
that is empty (or only white space) is a bad row in every format.
"""

from __future__ import annotations

import json
import logging
import os
import re
import uuid
from collections.abc import Callable, Iterable, Iterator
from dataclasses import asdict, dataclass, field, replace
from itertools import chain
from pathlib import Path
from typing import Any, Generic, Literal, TypeVar

import pyarrow as pa
import pyarrow.parquet as pq

from rlt import countdown
from rlt.errors import UserError
from rlt.formats import SOLUTION, STRATOS, THOUGHT, TagStyle
from rlt.sources import is_local_path

logger = logging.getLogger(__name__)

QUESTION_KEYS = ("question", "prompt", "problem")
CONVERSATION_KEYS = ("conversations", "messages")
_USER_ROLES = ("user", "human")
_ASSISTANT_ROLES = ("assistant", "gpt")
_CALCULATOR = re.compile(r"<<[^<>]*>>")  # GSM8K's calculator annotations, e.g. <<16-3-4=9>>
_FINAL_ANSWER_LINE = re.compile(r"####\s*\S.*")
_SKIPPED_SHOWN = 5


@dataclass(frozen=True)
class Example:
    """One normalised row. ``reasoning_trace`` feeds only the teacher's SFT warm-up."""

    question: str
    solution: str
    reasoning_trace: str | None = None

    def to_dict(self) -> dict[str, str | None]:
        return asdict(self)


@dataclass(frozen=True)
class RowRef:
    """Where a row is, as the user finds it: a line of a JSONL file, else a row (both from 1).

    ``index`` is the row's place among all rows of the source (from 0), the same however they are
    read, so that a resumed run finds its results again.
    """

    source: str
    row: int | None = None
    line: int | None = None
    index: int = 0

    def __str__(self) -> str:
        return f"{self.source} line {self.line}" if self.line is not None else f"{self.source} row {self.row}"


class DataError(UserError):
    """A source or row rlt cannot use; the message names the source, the row (or line) and the field."""

    def __init__(self, source: str, problem: str, *, row: int | None = None, line: int | None = None,
                 field: str | None = None):
        where = f" row {row}" if row is not None else f" line {line}" if line is not None else ""
        super().__init__(f"{source}{where}: {problem}")
        self.source, self.problem, self.row, self.line, self.field = source, problem, row, line, field

    @classmethod
    def at(cls, ref: RowRef, problem: str, field: str | None = None) -> DataError:
        return cls(ref.source, problem, row=ref.row, line=ref.line, field=field)

    @property
    def where(self) -> str:
        return f"line {self.line}" if self.line is not None else f"row {self.row}"


T = TypeVar("T")


@dataclass
class Rows(Generic[T]):
    """What :func:`load_rows` read: the items, the row each came from, and the bad rows it skipped."""

    items: list[T] = field(default_factory=list)
    refs: list[RowRef] = field(default_factory=list)
    skipped: list[DataError] = field(default_factory=list)

    def __len__(self) -> int:
        return len(self.items)

    def summary(self) -> str:
        """One line for the log, e.g. ``loaded 498 rows, skipped 2 (row 4: …, line 9: …)``."""
        text = f"loaded {len(self.items)} rows"
        if not self.skipped:
            return text
        shown = [f"{error.where}: {error.problem}" for error in self.skipped[:_SKIPPED_SHOWN]]
        if len(self.skipped) > _SKIPPED_SHOWN:
            shown.append(f"… {len(self.skipped) - _SKIPPED_SHOWN} more")
        return f"{text}, skipped {len(self.skipped)} ({', '.join(shown)})"


# Reading -------------------------------------------------------------------------------------------


def read_records(source: str | Path, split: str | None = None, subset: str | None = None
                 ) -> Iterator[tuple[RowRef, dict]]:
    """Raw rows with where each is (:class:`RowRef`), every field kept.

    The source is resolved (and a missing file or split reported) at the call, not at the first row.
    ``split`` is ignored for a single file unless it is a JSON object holding several lists; ``subset`` is
    a hub dataset's configuration (``gpqa_diamond`` of ``Idavidrein/gpqa``).
    """
    return _numbered(_open(source, split, subset))


def _open(source: str | Path, split: str | None, subset: str | None = None) -> Iterator[tuple[RowRef, Any]]:
    """The source's rows, each with its :class:`RowRef` (its ``index`` not yet set)."""
    path = Path(source).expanduser()
    if path.is_file():
        return _read_file(path, split)
    if path.is_dir():
        return _open_folder(path, split)
    if is_local_path(str(source)) or path.suffix in _READERS:
        raise DataError(str(source), "no such file or folder")
    return _open_hub(str(source), split, subset)


def _numbered(records: Iterable[tuple[RowRef, Any]]) -> Iterator[tuple[RowRef, dict]]:
    for index, (ref, record) in enumerate(records):
        if not isinstance(record, dict):
            raise DataError.at(ref, f"expected an object, got {_type_name(record)}")
        yield replace(ref, index=index), record


def _decode(data: bytes, label: str, line: int | None = None) -> str:
    """UTF-8 text (a byte-order mark dropped), or a :class:`DataError` naming the line of the first bad byte."""
    try:
        return data.decode("utf-8-sig")
    except UnicodeDecodeError as error:
        where = line if line is not None else data[:error.start].count(b"\n") + 1
        raise DataError(label, f"not UTF-8 text (byte 0x{data[error.start]:02x}); save the file as UTF-8",
                        line=where) from None


def _read_json(path: Path, split: str | None) -> Iterator[tuple[RowRef, Any]]:
    try:
        data = json.loads(_decode(path.read_bytes(), str(path)))
    except json.JSONDecodeError as error:
        raise DataError(str(path), f"not valid JSON ({error.msg})", line=error.lineno) from None
    if isinstance(data, dict):
        lists = {key: value for key, value in data.items() if isinstance(value, list)}
        if len(lists) > 1:
            data = lists[_pick_split(list(lists), split, str(path))]
        elif lists:
            data = next(iter(lists.values()))
    if not isinstance(data, list):
        raise DataError(str(path), f"expected a list of objects or an object holding one, "
                                   f"got {_type_name(data)}")
    return ((RowRef(str(path), row=row), record) for row, record in enumerate(data, 1))


def _read_jsonl(path: Path, split: str | None) -> Iterator[tuple[RowRef, Any]]:
    with path.open("rb") as f:
        for number, raw in enumerate(f, 1):
            line = _decode(raw, str(path), number)
            if not line.strip():
                continue
            try:
                yield RowRef(str(path), line=number), json.loads(line)
            except json.JSONDecodeError as error:
                raise DataError(str(path), f"not valid JSON ({error.msg}, column {error.colno})",
                                line=number) from None


def _read_parquet(path: Path, split: str | None) -> Iterator[tuple[RowRef, Any]]:
    try:
        parquet = pq.ParquetFile(path)
        batches = parquet.iter_batches()
        row = 0
        for batch in batches:
            for record in batch.to_pylist():
                row += 1
                yield RowRef(str(path), row=row), record
    except pa.ArrowException as error:
        raise DataError(str(path), f"not a valid Parquet file ({error})") from None


_READERS = {".json": _read_json, ".jsonl": _read_jsonl, ".parquet": _read_parquet}


def _read_file(path: Path, split: str | None) -> Iterator[tuple[RowRef, Any]]:
    reader = _READERS.get(path.suffix)
    if reader is None:
        raise DataError(str(path), f"unsupported file type {path.suffix!r} "
                                   f"(supported: {', '.join(_READERS)})")
    return reader(path, split)


def _open_folder(path: Path, split: str | None) -> Iterator[tuple[RowRef, Any]]:
    if (path / "state.json").is_file() or (path / "dataset_dict.json").is_file():
        return _open_saved_dataset(path, split)
    by_split: dict[str, list[Path]] = {}
    for file in sorted(path.iterdir()):
        name = re.match(r"[A-Za-z0-9]+", file.name)
        if file.is_file() and file.suffix in _READERS and name:
            by_split.setdefault(name.group(), []).append(file)
    if not by_split:
        raise DataError(str(path), f"no data files ({', '.join(_READERS)}) and no saved dataset here")
    files = by_split[_pick_split(sorted(by_split), split, str(path))]
    return chain.from_iterable(_read_file(file, split) for file in files)


def _rows_of(label: str, dataset: Iterable[dict]) -> Iterator[tuple[RowRef, Any]]:
    return ((RowRef(label, row=row), record) for row, record in enumerate(dataset, 1))


def _open_saved_dataset(path: Path, split: str | None) -> Iterator[tuple[RowRef, Any]]:
    import datasets  # slow to import; only saved folders and hub names need it

    data = datasets.load_from_disk(str(path))
    if isinstance(data, datasets.DatasetDict):
        split = _pick_split(list(data), split, str(path))
        return _rows_of(f"{path} [{split}]", data[split])
    return _rows_of(str(path), data)


def _open_hub(name: str, split: str | None, subset: str | None) -> Iterator[tuple[RowRef, Any]]:
    """A hub dataset's split; ``subset`` names one configuration or several (``AIME2025-I,AIME2025-II``),
    read one after the other."""
    import datasets  # slow to import; only saved folders and hub names need it

    subsets = [s.strip() for s in subset.split(",")] if subset else [None]
    parts = []
    for config in subsets:
        try:
            chosen = split or _pick_split(datasets.get_dataset_split_names(name, config), split, name)
            label = f"{name}{f' ({config})' if config else ''} [{chosen}]"
            logger.info("loading %s with datasets.load_dataset", label)
            parts.append(_rows_of(label, datasets.load_dataset(name, config, split=chosen)))
        except (ConnectionError, FileNotFoundError, ValueError) as error:  # offline, unknown, or no such subset
            if isinstance(error, DataError):
                raise
            raise DataError(name, f"cannot be loaded from the hub ({error}); a local copy can stand in for it "
                                  "(a file or folder as --dataset)") from None
    return chain.from_iterable(parts)


def _pick_split(names: list[str], split: str | None, label: str) -> str:
    if split is None:
        if len(names) == 1:
            return names[0]
        if "train" in names:
            return "train"
        raise DataError(label, f"several splits ({', '.join(names)}) and none is 'train': choose one")
    if split not in names:
        raise DataError(label, f"no split {split!r} (splits: {', '.join(names)})")
    return split


def load_rows(source: str | Path, read: Callable[[dict, RowRef], T], split: str | None = None, *,
              on_error: Literal["raise", "skip"] = "raise", limit: int | None = None, subset: str | None = None,
              keep: Callable[[dict], bool] | None = None) -> Rows[T]:
    """``read`` applied to every row of ``source``: the one loop behind every command's data.

    ``read(record, ref)`` returns the row's item or raises :class:`DataError` (build it with
    :meth:`DataError.at`). ``on_error="skip"`` leaves such rows out and records them in
    :attr:`Rows.skipped`; errors in the source itself (invalid JSON, a missing split) always raise.
    ``keep(record)`` false leaves a row out unread (not a bad row: one not asked for). Reading stops once
    ``limit`` items are read.
    """
    if on_error not in ("raise", "skip"):
        raise ValueError(f"on_error must be 'raise' or 'skip', got {on_error!r}")
    if limit is not None and limit < 1:
        raise ValueError(f"limit must be a positive number of rows or None, got {limit}")
    rows: Rows[T] = Rows()
    for ref, record in read_records(source, split, subset):
        if keep is not None and not keep(record):
            continue
        try:
            rows.items.append(read(record, ref))
            rows.refs.append(ref)
        except DataError as error:
            if on_error == "raise":
                raise
            rows.skipped.append(error)
        if limit is not None and len(rows.items) >= limit:
            break
    return rows


# Normalising ---------------------------------------------------------------------------------------


def field_contains(where: str) -> Callable[[dict], bool]:
    """``FIELD=TEXT``: whether a row's FIELD contains TEXT (``url=2024`` keeps AIME 2024's rows)."""
    if "=" not in where:
        raise ValueError(f"where must be FIELD=TEXT (e.g. url=2024), got {where!r}")
    name, text = where.split("=", 1)
    return lambda record: text in str(record.get(name, ""))


def read_input(source: str, read: Callable[[dict, RowRef], T], split: str | None = None, *,
               subset: str | None = None, where: str | None = None, limit: int | None = None,
               on_error: Literal["raise", "skip"] = "raise") -> Rows[T]:
    """A command's input rows: :func:`load_rows`, those matching ``where`` (``FIELD=TEXT``) alone, logged with
    what was skipped. None at all is an error, since every command would fail later and less clearly."""
    rows = load_rows(source, read, split, on_error=on_error, limit=limit, subset=subset,
                     keep=field_contains(where) if where is not None else None)
    logger.info("%s: %s", source, rows.summary())
    if not rows.items:
        raise DataError(source, "no usable rows")
    return rows


@dataclass(frozen=True)
class _Row:
    """A record with where it came from, so that every check can name the source and row."""

    record: dict
    at: RowRef

    def error(self, problem: str, field: str | None = None) -> DataError:
        return DataError.at(self.at, problem, field)

    def has(self, key: str) -> bool:
        return self.record.get(key) is not None

    def first_key(self, keys: tuple[str, ...]) -> str | None:
        return next((key for key in keys if self.has(key)), None)

    def text(self, key: str, *, allow_blank: bool = False) -> str:
        value = self.record.get(key)
        if not isinstance(value, str):
            raise self.error(f"field {key!r} is {_type_name(value)}, expected a string", key)
        if not allow_blank and not value.strip():
            raise self.error(f"field {key!r} is empty", key)
        return value

    def fields(self) -> str:
        return ", ".join(sorted(map(str, self.record)))


def normalize_record(record: dict, at: RowRef, tags: TagStyle = STRATOS) -> Example:
    """Read one row in the first format that applies (see the module docstring for the order)."""
    r = _Row(record, at)
    if countdown.is_countdown_row(record):
        return _from_countdown(r)
    question_key = r.first_key(QUESTION_KEYS)
    if question_key and r.has("solution"):
        return Example(r.text(question_key), r.text("solution"), _record_trace(r, tags))
    conversation_key = r.first_key(CONVERSATION_KEYS)
    if conversation_key:
        return _from_conversation(r, conversation_key, tags)
    if question_key and r.has("answer"):
        return _from_gsm8k(r, question_key, tags)
    if question_key:
        raise r.error(f"no 'answer' or 'solution' field (fields: {r.fields()})", "solution")
    raise r.error(f"no question field ({', '.join(QUESTION_KEYS)}) and no conversation field "
                  f"({', '.join(CONVERSATION_KEYS)}) (fields: {r.fields()})", "question")


class _MissingTag(LookupError):
    pass


def _between(text: str, begin: str, end: str, start: int = 0) -> tuple[str, int]:
    """The text between the first ``begin`` at or after ``start`` and the next ``end``, verbatim, and
    the position after ``end``."""
    opened = text.find(begin, start)
    if opened < 0:
        raise _MissingTag(begin)
    opened += len(begin)
    closed = text.find(end, opened)
    if closed < 0:
        raise _MissingTag(end)
    return text[opened:closed], closed + len(end)


def _record_trace(r: _Row, tags: TagStyle) -> str | None:
    """``reasoning_trace`` if given; else the thought section of ``code[0]``, where Sky-T1 /
    Qwen2.5-Math evaluation outputs keep the model's trace. Those traces are often truncated: one
    without both thought tags gives no trace rather than an error."""
    if r.has("reasoning_trace"):
        return r.text("reasoning_trace", allow_blank=True)
    code = r.record.get("code")
    if not (isinstance(code, list) and code and isinstance(code[0], str)):
        return None
    try:
        return _between(code[0], tags.begin(THOUGHT), tags.end(THOUGHT))[0]
    except _MissingTag:
        return None


def _from_conversation(r: _Row, key: str, tags: TagStyle) -> Example:
    turns = r.record[key]
    if not isinstance(turns, list):
        raise r.error(f"field {key!r} is {_type_name(turns)}, expected a list of turns", key)
    question = _turn(r, key, turns, _USER_ROLES)
    answer = _turn(r, key, turns, _ASSISTANT_ROLES)
    try:
        thought, after = _between(answer, tags.begin(THOUGHT), tags.end(THOUGHT))
        solution, _ = _between(answer, tags.begin(SOLUTION), tags.end(SOLUTION), after)
    except _MissingTag as missing:
        raise r.error(f"{key}: the assistant turn has no {missing.args[0]!r} tag", key) from None
    if not question.strip():
        raise r.error(f"{key}: the user turn is empty", key)
    if not solution.strip():
        raise r.error(f"{key}: the solution section is empty", key)
    return Example(question, solution, thought)


def _turn(r: _Row, key: str, turns: list, roles: tuple[str, ...]) -> str:
    """The content of the first turn whose role is one of ``roles``."""
    for index, turn in enumerate(turns):
        if not isinstance(turn, dict):
            raise r.error(f"{key}[{index}] is {_type_name(turn)}, expected an object", key)
        role = turn.get("from") if turn.get("from") is not None else turn.get("role")
        if role in roles:
            content = turn.get("value") if turn.get("value") is not None else turn.get("content")
            if not isinstance(content, str):
                raise r.error(f"{key}[{index}] content is {_type_name(content)}, expected a string", key)
            return content
    raise r.error(f"{key}: no {roles[0]} turn", key)


def _from_gsm8k(r: _Row, question_key: str, tags: TagStyle) -> Example:
    """Keep the worked answer and its ``#### n`` line (what the student should produce); drop the
    calculator annotations, which no model is asked to write."""
    answer = r.text("answer")
    if not _FINAL_ANSWER_LINE.fullmatch(answer.rstrip().rsplit("\n", 1)[-1]):
        raise r.error("field 'answer' does not end with a '#### <final answer>' line (GSM8K format); "
                      "name the field 'solution' to use it verbatim", "answer")
    return Example(r.text(question_key), _CALCULATOR.sub("", answer), _record_trace(r, tags))


def _from_countdown(r: _Row) -> Example:
    """A stated question and a solution found by exact search (:mod:`rlt.countdown`)."""
    try:
        question, solution = countdown.example_fields(r.record)
    except ValueError as error:
        raise r.error(str(error), "nums") from None
    return Example(question, solution)


def _type_name(value: object) -> str:
    return "null" if value is None else type(value).__name__


# Loading and writing -------------------------------------------------------------------------------


def load_examples(source: str | Path, split: str | None = None, *,
                  on_error: Literal["raise", "skip"] = "raise", limit: int | None = None,
                  tags: TagStyle = STRATOS, require_trace: bool = False, subset: str | None = None) -> Rows[Example]:
    """Normalised examples of a source (:func:`load_rows` with :func:`normalize_record`).

    ``require_trace``: a row without a reasoning trace is a bad row (SFT needs an explanation to learn from).
    """
    return load_rows(source, example_reader(tags, require_trace), split, on_error=on_error, limit=limit,
                     subset=subset)


def checked(read: Callable[[dict, RowRef], T], rule: Callable[[T], str | None]) -> Callable[[dict, RowRef], T]:
    """``read`` with one more row rule: ``rule(item)`` says what is wrong with a row (None: nothing), e.g.
    a prompt too long for the model, so that such a row is named (or skipped) like any other bad row."""
    def read_checked(record: dict, at: RowRef) -> T:
        item = read(record, at)
        problem = rule(item)
        if problem:
            raise DataError.at(at, problem)
        return item

    return read_checked


def example_reader(tags: TagStyle = STRATOS, require_trace: bool = False) -> Callable[[dict, RowRef], Example]:
    """The :func:`load_rows` reader of examples."""
    def read(record: dict, at: RowRef) -> Example:
        example = normalize_record(record, at, tags)
        if require_trace and example.reasoning_trace is None:
            raise DataError.at(at, "no reasoning trace (an explanation to learn from)", "reasoning_trace")
        return example

    return read


def _json_line(row: dict) -> str:
    return json.dumps(row, ensure_ascii=False) + "\n"


def write_jsonl(path: str | Path, rows: Iterable[dict]) -> None:
    """Write rows as JSON Lines, atomically (see :func:`write_json`)."""
    _write_atomically(path, lambda f: f.writelines(_json_line(row) for row in rows))


def write_json(path: str | Path, data: Any) -> None:
    """Write ``data`` as indented JSON, atomically: readers see the old file or the whole new one, never a
    partial one (a temporary file in the same folder is synced to disk, then renamed over the target)."""
    _write_atomically(path, lambda f: f.write(json.dumps(data, indent=2, ensure_ascii=False, default=str) + "\n"))


def _write_atomically(path: str | Path, write: Callable[[Any], object]) -> None:
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    temporary = path.with_name(f".{path.name}.{uuid.uuid4().hex[:8]}.tmp")
    try:
        with temporary.open("w", encoding="utf-8") as f:
            write(f)
            f.flush()
            os.fsync(f.fileno())
        os.replace(temporary, path)
    finally:
        temporary.unlink(missing_ok=True)


def append_jsonl(path: str | Path, rows: Iterable[dict]) -> None:
    """Append rows as JSON Lines, flushing each line so that an interrupted run keeps what it wrote."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    with path.open("a", encoding="utf-8") as f:
        for row in rows:
            f.write(_json_line(row))
            f.flush()


def read_json(path: str | Path) -> Any:
    return json.loads(Path(path).read_text(encoding="utf-8"))


def read_jsonl(path: str | Path) -> list[dict]:
    """The rows of a JSON Lines file rlt wrote (split on "\\n" alone, as :class:`rlt.jobs.Journal` explains)."""
    return [json.loads(line) for line in Path(path).read_text(encoding="utf-8").split("\n") if line.strip()]
