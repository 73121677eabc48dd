"""Training records built from normalised examples: teacher warm-up and student distillation.

* Teacher SFT (the warm-up): ``prompt`` = the teacher prompt text (question and solution given,
  ending inside the explanation) and ``completion`` = the rest of the rendered chat (explanation,
  end tag, end of turn). TRL's prompt-completion format puts the loss on the explanation only.
* Student SFT (distillation): ``messages`` = question → thought (the explanation) + solution, the
  chat the reward's student reads. TRL's ``assistant_only_loss`` puts the loss on the answer.
"""

from __future__ import annotations

from collections.abc import Iterable

from transformers import PreTrainedTokenizerBase

from rlt.data import DataError, Example
from rlt.formats import FormatConfig, SequenceBuilder


def _trace(example: Example, index: int, source: str) -> str:
    if example.reasoning_trace is None:
        raise DataError(source, "no reasoning trace (an explanation to learn from)", row=index + 1,
                        field="reasoning_trace")
    return example.reasoning_trace


def teacher_records(
    examples: Iterable[Example], tokenizer: PreTrainedTokenizerBase, fmt: FormatConfig, source: str = "dataset"
) -> list[dict]:
    """Prompt-completion records for the teacher's SFT warm-up (loss on the explanation only)."""
    builder = SequenceBuilder(tokenizer, fmt)
    records = []
    for index, example in enumerate(examples):
        prompt = builder.teacher_prompt(example.question, example.solution)
        full = tokenizer.apply_chat_template(
            fmt.teacher_messages(example.question, example.solution, _trace(example, index, source)), tokenize=False
        )
        if not full.startswith(prompt):
            raise ValueError("the chat template renders the teacher prompt differently inside a full chat; "
                             "rlt needs the prompt to be a prefix of the conversation")
        records.append({"prompt": prompt, "completion": _end_at_eos(full[len(prompt):], tokenizer.eos_token)})
    return records


def _end_at_eos(completion: str, eos: str | None) -> str:
    """Cut what the template renders after the end-of-turn token (a newline): TRL appends EOS
    to a completion that does not end with it, which would teach ``<|im_end|>\n<|im_end|>``."""
    if eos and eos in completion:
        return completion[: completion.rindex(eos) + len(eos)]
    return completion


def student_records(examples: Iterable[Example], fmt: FormatConfig, source: str = "dataset") -> list[dict]:
    """Chat records for student SFT: question → thought + solution."""
    return [
        {"messages": fmt.student_messages(e.question, _trace(e, i, source), e.solution)}
        for i, e in enumerate(examples)
    ]
