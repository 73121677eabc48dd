"""Tags, system prompts, and the token sequences the RLT reward and the SFT records are built from.

Two tag styles exist in the RLT world:

* **Stratos** (the paper's default): ``<|begin_of_thought|>`` … ``<|end_of_thought|>``;
* **R1**: ``<thought>`` … ``</thought>``.

Three sections use them: the teacher writes ``solution`` then ``explanation``; the student reads
``thought`` (the explanation) then ``solution``.

Why sequences are built from pieces. The reward compares the teacher and the student on *the same
explanation tokens* under two contexts, so the explanation's token ids must be identical in both
sequences and their positions known exactly. Tokenising the two full texts and searching for the
explanation (as the official code does) fails whenever a tag merges with its neighbouring text: in
Qwen's vocabulary the tags are plain text of several tokens, and their first and last characters merge
with what surrounds them (``.<|`` is ``.<`` + ``|``, ``|>\\n\\n`` is ``|`` + ``>\\n\\n``). Here every
sequence is the concatenation ``ids(context text) + explanation ids + ids(following text)``: the spans
are exact by construction, and in the teacher sequence the explanation ids are the very ids the teacher
sampled.

The SFT records are built the same way (:meth:`SequenceBuilder.teacher_training_sequence`,
:meth:`SequenceBuilder.student_training_sequence`): a model is trained on the very prompt ids it is
later prompted with, never on a re-tokenisation of prompt and answer as one text, whose merges across
the boundary would change the last prompt token.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass, field, fields
from functools import lru_cache
from typing import Any, Literal

from transformers import PreTrainedTokenizerBase

THOUGHT, SOLUTION, EXPLANATION = "thought", "solution", "explanation"

# The Bespoke-Stratos-17k system prompt, verbatim (typos included): the released Bespoke-Stratos
# students were trained with exactly this string, so the reward must show it to them unchanged.
STRATOS_STUDENT_SYSTEM_PROMPT = (
    "Your role as an assistant involves thoroughly exploring questions through a systematic long thinking "
    "process before providing the final precise and accurate solutions. This requires engaging in a "
    "comprehensive cycle of analysis, summarizing, exploration, reassessment, reflection, backtracing, and "
    "iteration to develop well-considered thinking process. Please structure your response into two main "
    "sections: Thought and Solution. In the Thought section, detail your reasoning process using the specified "
    "format: <|begin_of_thought|> {thought with steps separated with '\\n\\n'} <|end_of_thought|> Each step "
    "should include detailed considerations such as analisying questions, summarizing relevant findings, "
    "brainstorming new ideas, verifying the accuracy of the current steps, refining any errors, and revisiting "
    "previous steps. In the Solution section, based on various attempts, explorations, and reflections from the "
    "Thought section, systematically present the final solution that you deem correct. The solution should "
    "remain a logical, accurate, concise expression style and detail necessary step needed to reach the "
    "conclusion, formatted as follows: <|begin_of_solution|> {final formatted, precise, and clear solution} "
    "<|end_of_solution|> Now, try to solve the following question through the above guidelines:"
)

# The teacher prompt of the RLT paper's released code (Apache-2.0), verbatim: the paper's teachers
# were warmed up and trained with it.
STRATOS_TEACHER_SYSTEM_PROMPT = (
    "Your role as an assistant involves providing precise and accurate solutions before providing detailed "
    "explanations with your full work showing your systematic thinking process leading to each solution. Your "
    "explanations should show how you engaged in a comprehensive cycle of analysis, summarizing, exploration, "
    "reassessment, reflection, backtracing, and iteration to develop well-considered thinking process. Please "
    "structure your response into two main sections: Solution and Explanation. In the Solution section, present "
    "your well-thought solution that accurately answers the question. The solution should remain a logical, "
    "accurate, concise expression style and detail necessary step needed to reach the conclusion, formatted as "
    "follows: <|begin_of_solution|> {final formatted, precise, and clear solution} <|end_of_solution|>. In the "
    "Explanation section, comprehensively detail your reasoning process using the specified format: "
    "<|begin_of_explanation|> {explanation with steps separated with '\\n\\n'} <|end_of_explanation|> Each step "
    "should show detailed considerations leading to your solutions such as analisying questions, summarizing "
    "relevant findings, brainstorming new ideas, verifying the accuracy of the current steps, refining any "
    "errors, and revisiting previous steps. "
)


@dataclass(frozen=True)
class TagStyle:
    """How a section name becomes its opening and closing tag."""

    name: Literal["stratos", "r1"]

    def begin(self, section: str) -> str:
        return f"<|begin_of_{section}|>" if self.name == "stratos" else f"<{section}>"

    def end(self, section: str) -> str:
        return f"<|end_of_{section}|>" if self.name == "stratos" else f"</{section}>"


STRATOS = TagStyle("stratos")
R1 = TagStyle("r1")
TAG_STYLES = {"stratos": STRATOS, "r1": R1}


def _prompt_for_style(prompt: str, style: TagStyle) -> str:
    """Rewrite a Stratos-tagged prompt for another tag style (the wording stays the same)."""
    for section in (THOUGHT, SOLUTION, EXPLANATION):
        prompt = prompt.replace(STRATOS.begin(section), style.begin(section))
        prompt = prompt.replace(STRATOS.end(section), style.end(section))
    return prompt


# The teacher's and the student's system prompts where a model is too small to read the paper's: the toy world's
# models are trained with them.
SHORT_SYSTEM_PROMPTS = ("Explain.", "Think.")


@dataclass
class FormatConfig:
    """Every string that goes into a teacher prompt or a student record.

    Unset tags and prompts follow ``tag_format``; set any of them to match, e.g., the exact prompt a
    released student was trained with.
    """

    tag_format: Literal["stratos", "r1"] = field(
        default="stratos",
        metadata={"help": "Tag style: 'stratos' (<|begin_of_thought|>) or 'r1' (<thought>)."},
    )
    system_prompts: Literal["paper", "short"] = field(
        default="paper",
        metadata={"help": "Unset system prompts: 'paper' (the paper's teacher prompt, Bespoke-Stratos' student "
                          "prompt) or 'short' ('Explain.' and 'Think.', for tiny models such as the toy world's)."},
    )
    teacher_system_prompt: str | None = field(
        default=None,
        metadata={"help": "System prompt of the teacher ('' for none). Default: the paper's, in the tag style."},
    )
    student_system_prompt: str | None = field(
        default=None,
        metadata={"help": "System prompt of the student ('' for none). Default: Bespoke-Stratos', in the tag style."},
    )
    begin_solution: str | None = field(default=None, metadata={"help": "Opening solution tag."})
    end_solution: str | None = field(default=None, metadata={"help": "Closing solution tag."})
    begin_explanation: str | None = field(default=None, metadata={"help": "Opening explanation tag (teacher)."})
    end_explanation: str | None = field(default=None, metadata={"help": "Closing explanation tag (teacher)."})
    begin_thought: str | None = field(default=None, metadata={"help": "Opening thought tag (student)."})
    end_thought: str | None = field(default=None, metadata={"help": "Closing thought tag (student)."})
    section_separator: str = field(
        default="\n\n", metadata={"help": "Text between the first section's closing tag and the second's opening tag."}
    )

    def __post_init__(self) -> None:
        if self.tag_format not in TAG_STYLES:
            raise ValueError(f"tag_format must be one of {sorted(TAG_STYLES)}, got {self.tag_format!r}")
        style = TAG_STYLES[self.tag_format]
        prompts = {"paper": (_prompt_for_style(STRATOS_TEACHER_SYSTEM_PROMPT, style),
                             _prompt_for_style(STRATOS_STUDENT_SYSTEM_PROMPT, style)), "short": SHORT_SYSTEM_PROMPTS}
        if self.system_prompts not in prompts:
            raise ValueError(f"system_prompts must be one of {sorted(prompts)}, got {self.system_prompts!r}")
        teacher_prompt, student_prompt = prompts[self.system_prompts]
        defaults = {
            "teacher_system_prompt": teacher_prompt,
            "student_system_prompt": student_prompt,
            "begin_solution": style.begin(SOLUTION),
            "end_solution": style.end(SOLUTION),
            "begin_explanation": style.begin(EXPLANATION),
            "end_explanation": style.end(EXPLANATION),
            "begin_thought": style.begin(THOUGHT),
            "end_thought": style.end(THOUGHT),
        }
        for name, value in defaults.items():
            if getattr(self, name) is None:
                setattr(self, name, value)
        for name in ("begin_solution", "end_solution", "begin_explanation", "end_explanation",
                     "begin_thought", "end_thought"):
            if not getattr(self, name):
                raise ValueError(f"{name} must be a non-empty string")

    def to_dict(self) -> dict[str, Any]:
        return {f.name: getattr(self, f.name) for f in fields(self)}

    # Text of each section, tags included -------------------------------------------------------

    def teacher_answer_prefix(self, solution: str) -> str:
        """The start of the teacher's turn that it is given, not asked to write."""
        return (f"{self.begin_solution}{solution}{self.end_solution}"
                f"{self.section_separator}{self.begin_explanation}")

    def teacher_answer(self, solution: str, explanation: str) -> str:
        """The teacher's whole turn: what its SFT warm-up teaches it to write."""
        return f"{self.teacher_answer_prefix(solution)}{explanation}{self.end_explanation}"

    def student_answer(self, explanation: str, solution: str) -> str:
        """The student's whole turn: thought (the explanation) then solution."""
        return (f"{self.begin_thought}{explanation}{self.end_thought}{self.section_separator}"
                f"{self.begin_solution}{solution}{self.end_solution}")

    # Chat messages ---------------------------------------------------------------------------

    def teacher_messages(self, question: str, solution: str, explanation: str | None = None) -> list[dict]:
        """Teacher chat; without an explanation the assistant turn stops inside the explanation."""
        answer = (self.teacher_answer_prefix(solution) if explanation is None
                  else self.teacher_answer(solution, explanation))
        return _chat(self.teacher_system_prompt, question, answer)

    def student_prompt_messages(self, question: str) -> list[dict]:
        """What a student is asked: system and user, no answer (evaluation, student SFT prompts)."""
        return _chat(self.student_system_prompt, question)

    def student_messages(self, question: str, explanation: str, solution: str) -> list[dict]:
        """The distillation record: question → thought + solution."""
        return _chat(self.student_system_prompt, question, self.student_answer(explanation, solution))


def _chat(system_prompt: str, question: str, answer: str | None = None) -> list[dict]:
    """System, user and, if given, assistant; an empty system prompt means no system message at all."""
    system = [{"role": "system", "content": system_prompt}] if system_prompt else []
    reply = [] if answer is None else [{"role": "assistant", "content": answer}]
    return [*system, {"role": "user", "content": question}, *reply]


# Token sequences with exact spans -----------------------------------------------------------------

_EXPLANATION_SLOT = "\x00rlt-explanation-slot\x00"
_SOLUTION_SLOT = "\x00rlt-solution-slot\x00"
_ANSWER_SLOT = "\x00rlt-answer-slot\x00"
_REPLACEMENT_CHARACTER = "\ufffd"  # what decoding an incomplete UTF-8 sequence gives


@dataclass(frozen=True)
class Span:
    """Token positions ``[start, end)`` of a section inside a sequence."""

    start: int
    end: int

    def __len__(self) -> int:
        return self.end - self.start


@dataclass(frozen=True)
class StudentSequence:
    ids: list[int]
    explanation: Span
    solution: Span


@dataclass(frozen=True)
class TeacherSequence:
    ids: list[int]
    explanation: Span


@dataclass(frozen=True)
class TrainingSequence:
    """An SFT example as token ids: the prompt, the answer ``[completion_start, completion_end)`` (the only
    tokens in the loss), and what the chat template renders after the end of turn, if anything."""

    ids: list[int]
    completion_start: int
    completion_end: int

    def record(self) -> dict[str, list[int]]:
        """TRL's pre-tokenised format: ``input_ids`` and a ``completion_mask`` (1 = in the loss)."""
        start, end = self.completion_start, self.completion_end
        mask = [0] * start + [1] * (end - start) + [0] * (len(self.ids) - end)
        return {"input_ids": self.ids, "completion_mask": mask}


@dataclass(frozen=True)
class SplitCompletion:
    """A teacher completion cut at its explanation's end tag.

    ``explanation_ids`` are the tokens the reward scores; ``explanation_text`` is what the teacher wrote
    before the tag, whole: it keeps the text of a token straddling the tag and never ends in half a
    character (what a student is distilled from).
    """

    explanation_ids: list[int]
    explanation_text: str
    found_end_tag: bool


def _render(tokenizer: PreTrainedTokenizerBase, messages: list[dict], **kwargs: Any) -> str:
    if tokenizer.chat_template is None:
        raise ValueError(
            f"Tokenizer {tokenizer.name_or_path!r} has no chat template: RLT's prompts are chats "
            "(system, user, assistant). Use an instruct/chat tokenizer or set tokenizer.chat_template."
        )
    return tokenizer.apply_chat_template(messages, tokenize=False, **kwargs)


def _split_on_slots(text: str, slots: list[str], what: str) -> list[str]:
    pieces = []
    for slot in slots:
        if text.count(slot) != 1:
            raise ValueError(
                f"The chat template altered the {what} (a placeholder did not survive rendering once): "
                "rlt cannot locate the sections. Templates that rewrite assistant content (e.g. strip "
                "thinking) are not supported for this format; set the tags or use another template."
            )
        head, text = text.split(slot)
        pieces.append(head)
    pieces.append(text)
    return pieces


class SequenceBuilder:
    """Builds teacher and student token sequences whose explanation/solution spans are exact.

    One builder serves one tokenizer and one :class:`FormatConfig`. The student's chat layout is
    rendered once per question with placeholders, split around them, and the pieces tokenised on
    their own; the explanation and solution ids are inserted between them.
    """

    def __init__(self, tokenizer: PreTrainedTokenizerBase, fmt: FormatConfig | None = None):
        self.tokenizer = tokenizer
        self.fmt = fmt or FormatConfig()
        # Tokens that may close a completion after the explanation (end of turn, padding).
        stop_ids = {tokenizer.eos_token_id, tokenizer.pad_token_id}
        self._trailing_ids = {i for i in stop_ids if i is not None}
        # GRPO scores many completions per prompt: render and tokenise each context once.
        self.teacher_prompt_ids = lru_cache(maxsize=4096)(self._teacher_prompt_ids)
        self.student_prompt_ids = lru_cache(maxsize=4096)(self._student_prompt_ids)
        self._student_context = lru_cache(maxsize=4096)(self._student_context_ids)

    def encode(self, text: str) -> list[int]:
        return self.tokenizer.encode(text, add_special_tokens=False) if text else []

    def too_long(self, text: str, limit: int | None, what: str) -> str | None:
        """Why ``text`` (a prompt) cannot go to a model that takes ``limit`` tokens; None if it can.

        Most texts are not tokenised here: a token holds at least one byte of text (one more for the
        word-start marker some tokenizers add), so a text of fewer bytes than ``limit`` fits.
        """
        if limit is None or len(text.encode()) + 1 < limit:
            return None
        tokens = len(self.tokenizer.encode(text, add_special_tokens=False, verbose=False))  # no warning: measuring
        return f"{what} is {tokens} tokens, the model takes {limit}" if tokens >= limit else None

    def teacher_prompt(self, question: str, solution: str) -> str:
        """The teacher's prompt text; generation continues inside the explanation."""
        return _render(self.tokenizer, self.fmt.teacher_messages(question, solution), continue_final_message=True)

    def _teacher_prompt_ids(self, question: str, solution: str) -> tuple[int, ...]:
        return tuple(self.encode(self.teacher_prompt(question, solution)))

    def student_prompt(self, question: str) -> str:
        """The student's prompt text: the question, then the opened assistant turn it answers in."""
        return _render(self.tokenizer, self.fmt.student_prompt_messages(question), add_generation_prompt=True)

    def _student_prompt_ids(self, question: str) -> tuple[int, ...]:
        return tuple(self.encode(self.student_prompt(question)))

    # SFT records ---------------------------------------------------------------------------------

    def teacher_training_sequence(self, question: str, solution: str, explanation: str) -> TrainingSequence:
        """The teacher's warm-up example: the teacher prompt's ids, exactly as ``teacher-rl`` and
        ``distill`` prompt it, then the explanation's ids, then the end tag and end of turn."""
        messages = self.fmt.teacher_messages(question, solution, _EXPLANATION_SLOT)
        end_of_turn, _ = self._text_after_slot(messages, _EXPLANATION_SLOT, self.teacher_prompt(question, solution))
        return self._training_sequence(self.teacher_prompt_ids(question, solution), [explanation, end_of_turn])

    def student_training_sequence(self, question: str, explanation: str, solution: str) -> TrainingSequence:
        """The student's distillation example: the student prompt's ids, exactly as ``evaluate`` prompts
        it, then its answer (thought + solution) and end of turn, tokenised as one text, then the rest of the
        rendered chat (no loss), the sequence TRL's conversational path trains on."""
        messages = [*self.fmt.student_prompt_messages(question), {"role": "assistant", "content": _ANSWER_SLOT}]
        end_of_turn, rest = self._text_after_slot(messages, _ANSWER_SLOT, self.student_prompt(question))
        return self._training_sequence(self.student_prompt_ids(question),
                                       [self.fmt.student_answer(explanation, solution) + end_of_turn], rest)

    def _text_after_slot(self, messages: list[dict], slot: str, prompt: str) -> tuple[str, str]:
        """What the template renders after ``slot``: up to the end of the turn (its EOS included), and after."""
        before, after = _split_on_slots(_render(self.tokenizer, messages), [slot], "training chat")
        if before != prompt:
            raise ValueError("the chat template renders the prompt differently inside a full chat; rlt needs the "
                             "prompt to be a prefix of the conversation")
        eos = self.tokenizer.eos_token
        end = after.index(eos) + len(eos) if eos and eos in after else len(after)
        return after[:end], after[end:]

    def _training_sequence(self, prompt_ids: Sequence[int], completion_texts: Sequence[str],
                           rest: str = "") -> TrainingSequence:
        """Prompt ids, then each completion text's ids (tokenised apart, so that their ids match other
        sequences'), EOS if no text brought it (a template that does not close its turn with it), then
        ``rest``'s ids, outside the loss."""
        completion = [i for text in completion_texts for i in self.encode(text)]
        if self.tokenizer.eos_token_id is not None and self.tokenizer.eos_token_id not in completion[-1:]:
            completion.append(self.tokenizer.eos_token_id)
        end = len(prompt_ids) + len(completion)
        return TrainingSequence([*prompt_ids, *completion, *self.encode(rest)], len(prompt_ids), end)

    # Reward sequences ----------------------------------------------------------------------------

    def teacher_sequence(self, prompt_ids: Sequence[int], explanation_ids: Sequence[int]) -> TeacherSequence:
        """Teacher prompt followed by the explanation ids (what the teacher sampled)."""
        start = len(prompt_ids)
        return TeacherSequence([*prompt_ids, *explanation_ids], Span(start, start + len(explanation_ids)))

    def student_sequence(self, question: str, explanation_ids: Sequence[int], solution: str) -> StudentSequence:
        """The student chat (question → thought + solution), ending with the solution's last token.

        Nothing after the solution is needed: no scored log-prob depends on later tokens.
        """
        before_ids, between_ids, solution_ids = self._student_context(question, solution)
        expl_start = len(before_ids)
        expl_end = expl_start + len(explanation_ids)
        sol_start = expl_end + len(between_ids)
        ids = [*before_ids, *explanation_ids, *between_ids, *solution_ids]
        return StudentSequence(ids, Span(expl_start, expl_end), Span(sol_start, sol_start + len(solution_ids)))

    def _student_context_ids(self, question: str, solution: str) -> tuple[tuple[int, ...], ...]:
        """Ids of the student chat before the explanation, between it and the solution, and of the solution."""
        messages = self.fmt.student_messages(question, _EXPLANATION_SLOT, _SOLUTION_SLOT)
        text = _render(self.tokenizer, messages)
        before, between, _ = _split_on_slots(text, [_EXPLANATION_SLOT, _SOLUTION_SLOT], "student chat")
        return tuple(self.encode(before)), tuple(self.encode(between)), tuple(self.encode(solution))

    def split_completion(self, completion_ids: list[int]) -> SplitCompletion:
        """Cut a sampled completion at the explanation's end tag.

        The explanation is every token that decodes to text strictly before the end tag. A token that
        straddles the boundary (``.<|`` in Qwen's vocabulary) holds part of the tag, so it is left out
        of the span; the text it carried before the tag is lost to the reward, which is the price of
        comparing identical token ids. Without an end tag the explanation runs to the end of the
        completion, less trailing end-of-turn/padding tokens.
        """
        ids = list(completion_ids)
        while ids and ids[-1] in self._trailing_ids:
            ids.pop()
        text = self._decode(ids)
        tag_at = text.find(self.fmt.end_explanation)
        if tag_at < 0:
            # A completion cut by the length limit may end inside a multi-byte character, which decodes
            # to U+FFFD: that half character is not part of the text.
            return SplitCompletion(ids, text.rstrip(_REPLACEMENT_CHARACTER), found_end_tag=False)
        return SplitCompletion(ids[: self._tokens_before(ids, tag_at)], text[:tag_at], found_end_tag=True)

    def _decode(self, ids: list[int]) -> str:
        return self.tokenizer.decode(ids, skip_special_tokens=False, clean_up_tokenization_spaces=False)

    def _tokens_before(self, ids: list[int], char_limit: int) -> int:
        """Largest ``n`` such that ``ids[:n]`` decodes within the first ``char_limit`` characters.

        Binary search: decoded length grows with the number of tokens.
        """
        low, high = 0, len(ids)
        while low < high:
            mid = math.ceil((low + high) / 2)
            if len(self._decode(ids[:mid])) <= char_limit:
                low = mid
            else:
                high = mid - 1
        return low
