"""Training records built from normalised examples: teacher warm-up and student distillation.

Both are token ids in TRL's pre-tokenised format (``input_ids`` and ``completion_mask``; the loss is
on the completion), built by :class:`rlt.formats.SequenceBuilder` so that a model trains on the very
prompt ids it is later prompted with:

* Teacher SFT (the warm-up): the teacher prompt (question and solution given, ending inside the
  explanation) as ``teacher-rl`` and ``distill`` prompt it; the completion is the explanation, its
  end tag and the end of turn.
* Student SFT (distillation): the student prompt as ``evaluate`` prompts it; the completion is the
  answer (thought = the explanation, then the solution) and the end of turn.

Tokenising prompt and completion as one text instead (TRL's prompt-completion path) would let them
merge across the boundary: in Qwen's vocabulary a trace starting with ``\\n\\n`` turns the prompt's
last ``>`` into ``>\\n\\n``, and the warm-up would teach another context than the teacher writes from.
"""

from __future__ import annotations

import logging
from collections.abc import Iterable

from transformers import PreTrainedTokenizerBase

from rlt.data import Example
from rlt.errors import UserError
from rlt.formats import FormatConfig, SequenceBuilder

logger = logging.getLogger(__name__)


def _trace(example: Example) -> str:
    if example.reasoning_trace is None:  # load_examples(require_trace=True) leaves no such example
        raise ValueError(f"example without a reasoning trace: {example.question[:60]!r}")
    return example.reasoning_trace


def teacher_records(examples: Iterable[Example], tokenizer: PreTrainedTokenizerBase, fmt: FormatConfig) -> list[dict]:
    """Records for the teacher's SFT warm-up (loss on the explanation and what closes it)."""
    builder = SequenceBuilder(tokenizer, fmt)
    return [builder.teacher_training_sequence(e.question, e.solution, _trace(e)).record() for e in examples]


def student_records(examples: Iterable[Example], tokenizer: PreTrainedTokenizerBase, fmt: FormatConfig) -> list[dict]:
    """Records for student SFT: question → thought + solution (loss on the answer and its end of turn)."""
    builder = SequenceBuilder(tokenizer, fmt)
    return [builder.student_training_sequence(e.question, _trace(e), e.solution).record() for e in examples]


def records_within(records: list[dict], max_length: int | None) -> list[dict]:
    """The records with a target token within their first ``max_length`` tokens (the SFTTrainer cuts each
    record there and drops those left without one), checked before the trainer exists: none is an error, some a
    warning. ``None``: records are not cut."""
    if max_length is None:
        return records
    kept = [r for r in records if 1 in r["completion_mask"][:max_length]]
    if not kept:
        raise UserError(f"no record has a target token within max_length={max_length} tokens: the prompts are "
                        "longer than that (a long system prompt?); raise --max_length.")
    if len(kept) < len(records):
        logger.warning("%d of %d records are dropped: no target token within max_length=%d",
                       len(records) - len(kept), len(records), max_length)
    return kept
