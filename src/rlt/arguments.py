"""Options that several commands share, one dataclass each, as TRL's scripts share ``ScriptArguments``.

* :class:`DataArguments`: the input set of every command that reads one (``--dataset``, ``--split``,
  ``--limit``, ``--on_error``);
* :class:`InferenceArguments`: how the commands that only run models (``score``, ``distill``,
  ``evaluate``) load them (``--dtype``, ``--device``). The trainers take TRL's options instead.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass, field
from typing import Literal

from rlt.data import DataError, Example, load_examples
from rlt.errors import UserError
from rlt.formats import TAG_STYLES, FormatConfig
from rlt.modeling import DType

logger = logging.getLogger(__name__)


@dataclass
class DataArguments:
    dataset: str = field(metadata={"help": "Input rows: a JSONL/JSON/Parquet file or folder, a saved datasets "
                                           "folder, or a Hugging Face dataset name (any format rlt reads)."})
    split: str | None = field(default=None, metadata={"help": "Split of a folder or hub dataset (default: the only "
                                                              "one, else train)."})
    limit: int | None = field(default=None, metadata={"help": "Use only the first N rows."})
    on_error: Literal["raise", "skip"] = field(default="raise", metadata={
        "help": "A row rlt cannot read: 'raise' stops with an error naming it, 'skip' leaves it out and counts it."})

    def __post_init__(self) -> None:
        if self.limit is not None and self.limit < 1:
            raise UserError(f"limit must be a positive number of rows, got {self.limit}")

    def examples(self, fmt: FormatConfig, require_trace: bool = False) -> list[Example]:
        """The normalised examples (logged with what was skipped); none at all is an error."""
        loaded = load_examples(self.dataset, self.split, on_error=self.on_error, limit=self.limit,
                               tags=TAG_STYLES[fmt.tag_format], require_trace=require_trace)
        logger.info("%s: %s", self.dataset, loaded.summary())
        if not loaded.examples:
            raise DataError(self.dataset, "no usable rows")
        return loaded.examples


@dataclass
class InferenceArguments:
    dtype: DType = field(default="auto", metadata={"help": "Model dtype: auto (bf16 on GPU, fp32 on CPU), float32, "
                                                           "bfloat16 or float16."})
    device: str | None = field(default=None, metadata={"help": "Device, e.g. cpu or cuda:0. Default: cuda if any."})


__all__ = ["DataArguments", "InferenceArguments"]
