"""Options that several commands share, one dataclass each, as TRL's scripts share ``ScriptArguments``.

* :class:`DataArguments`: the input set of every command that reads one (``--dataset``, ``--split``,
  ``--limit``, ``--on_error``);
* :class:`InferenceArguments`: how the commands that only run models (``score``, ``distill``,
  ``evaluate``) load them (``--dtype``, ``--device``). The trainers take TRL's options instead;
* :func:`overwrite_option`: ``--overwrite``, of every command that writes an ``--output_dir``.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any, Literal, TypeVar

from rlt.data import RowRef, Rows, field_contains, read_input
from rlt.errors import UserError
from rlt.modeling import DType

T = TypeVar("T")


def overwrite_option() -> Any:
    """The ``--overwrite`` field (:mod:`rlt.run_folder`: what a folder holding another run gets)."""
    return field(default=False, metadata={
        "help": "If output_dir holds another run (other settings, or finished), delete its contents and start again."})


def positive(config: object, *names: str) -> None:
    """Refuse a count below 1 (a batch size of 0 would fail far from the flag that caused it)."""
    for name in names:
        value = getattr(config, name)
        if value is not None and value < 1:
            raise UserError(f"{name} must be at least 1, got {value}")


@dataclass
class DataArguments:
    dataset: str = field(metadata={"help": "Input rows: a JSONL/JSON/Parquet file or folder, a saved datasets "
                                           "folder, or a Hugging Face dataset name (any format rlt reads)."})
    split: str | None = field(default=None, metadata={"help": "Split of a folder or hub dataset (default: the only "
                                                              "one, else train)."})
    subset: str | None = field(default=None, metadata={"help": "Configuration of a hub dataset (its `name`)."})
    where: str | None = field(default=None, metadata={
        "help": "Keep only the rows whose FIELD contains TEXT, given as FIELD=TEXT (e.g. url=2024)."})
    limit: int | None = field(default=None, metadata={"help": "Use only the first N rows."})
    on_error: Literal["raise", "skip"] = field(default="raise", metadata={
        "help": "A row rlt cannot read: 'raise' stops with an error naming it, 'skip' leaves it out and counts it."})

    def __post_init__(self) -> None:
        if self.limit is not None and self.limit < 1:
            raise UserError(f"limit must be a positive number of rows, got {self.limit}")
        if self.where is not None:
            try:
                field_contains(self.where)
            except ValueError as error:
                raise UserError(str(error)) from None

    def read(self, reader: Callable[[dict, RowRef], T]) -> Rows[T]:
        """The rows of ``--dataset`` read by ``reader`` (:func:`rlt.data.read_input`)."""
        return read_input(self.dataset, reader, self.split, subset=self.subset, where=self.where, limit=self.limit,
                          on_error=self.on_error)


@dataclass
class InferenceArguments:
    dtype: DType = field(default="auto", metadata={"help": "Model dtype: auto (bf16 on GPU, fp32 on CPU), float32, "
                                                           "bfloat16 or float16."})
    device: str | None = field(default=None, metadata={"help": "Device, e.g. cpu or cuda:0. Default: cuda if any."})


__all__ = ["DataArguments", "InferenceArguments", "overwrite_option", "positive"]
