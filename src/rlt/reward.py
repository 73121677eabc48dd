"""The RLT reward (Cetin, Zhao, Tang 2025), exactly as ``shared/spec/rlt-method.md`` states it.

For a question q, reference solution s and explanation tokens t (teacher π_T, frozen student π_S,
log-probs from logits divided by the temperature)::

    ℓ_k  = log π_S(s_k | q, t, s_<k)                          solution tokens, student chat
    δ_k  = log π_T(t_k | q, s, t_<k) − log π_S(t_k | q, t_<k)  explanation tokens, sampled-token log-ratio
    r_SS = a_mean·mean(ℓ) + a_min·min(ℓ)                      defaults a = (1, 0.01)
    r_KL = b_mean·mean(δ) + b_max·max(δ)                      defaults b = (3, 0.03)
    r    = r_SS − r_KL + m,   m = −1 if the explanation's end tag is missing, else 0

A reduction over an empty span (empty explanation or solution) is 0, so every reward is finite.

Sequences longer than ``max_length`` tokens are cut inside the explanation: its last tokens are
dropped, in the teacher and the student sequence alike, until both fit; the row is reported as
``truncated``. A row whose question and solution alone do not fit is an error.

``RLTReward`` is usable on its own (``score_texts`` / ``score_completions``) and as a TRL GRPO
reward function: a plain callable ``(prompts, completions, completion_ids, question, solution, …)``
that reports every term through TRL's ``log_metric``.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import asdict, dataclass, field, replace
from typing import Any, Literal

import torch
from transformers import PreTrainedModel, PreTrainedTokenizerBase

from rlt.errors import UserError
from rlt.formats import FormatConfig, SequenceBuilder, Span, StudentSequence, TeacherSequence
from rlt.logprobs import (
    SharedPrefix,
    check_supported_head,
    full_kl,
    is_sharded,
    micro_batches,
    model_device,
    span_hidden_states,
    token_log_probs,
)
from rlt.modeling import context_length

# A shared prefix costs two extra forward calls per group; below this length batching the rows
# whole is faster (benchmarks/grpo_step.py: toy prompts of ~40 tokens, 8 completions each).
MIN_SHARED_PREFIX_TOKENS = 64

# τ_T of explanations rlt did not sample (the paper's sampling temperature)
PAPER_TEACHER_TEMPERATURE = 0.7


@dataclass
class RewardConfig:
    """Coefficients, temperatures and limits of the RLT reward. Defaults are the paper's."""

    solution_mean_coef: float = field(default=1.0, metadata={"help": "a_mean: weight of mean ℓ over solution tokens."})
    solution_min_coef: float = field(default=0.01, metadata={"help": "a_min: weight of min ℓ over solution tokens."})
    solution_max_coef: float = field(default=0.0, metadata={"help": "Weight of max ℓ (0 in the paper)."})
    kl_mean_coef: float = field(default=3.0, metadata={"help": "b_mean: weight of mean δ over explanation tokens."})
    kl_max_coef: float = field(default=0.03, metadata={"help": "b_max: weight of max δ over explanation tokens."})
    kl_min_coef: float = field(default=0.0, metadata={"help": "Weight of min δ (0 in the paper)."})
    missing_tag_penalty: float = field(
        default=-1.0, metadata={"help": "m: added when the explanation's end tag is missing."}
    )
    student_temperature: float = field(default=0.7, metadata={"help": "τ_S: student logits are divided by it."})
    teacher_temperature: float | None = field(
        default=None, metadata={"help": "τ_T: teacher logits are divided by it. Default: the teacher's sampling "
                                        "temperature where rlt samples the explanations (teacher-rl, distill), "
                                        f"else the paper's {PAPER_TEACHER_TEMPERATURE} (score)."}
    )
    kl_estimator: Literal["log_ratio", "full"] = field(
        default="log_ratio",
        metadata={"help": "'log_ratio': δ at the sampled token (the paper's); 'full': KL(π_T‖π_S) per position."},
    )
    max_length: int | None = field(
        default=None,
        metadata={"help": "Longest scored sequence; longer explanations are cut. Default: the models' context."},
    )
    max_batch_tokens: int = field(
        default=16384, metadata={"help": "Padded tokens per forward pass (micro-batch size × longest sequence)."}
    )
    logit_chunk_size: int = field(
        default=256, metadata={"help": "Positions projected through the LM head at once (bounds logit memory)."}
    )

    def __post_init__(self) -> None:
        for name in ("student_temperature", "teacher_temperature"):
            if getattr(self, name) is not None and getattr(self, name) <= 0:
                raise ValueError(f"{name} must be > 0, got {getattr(self, name)}")
        if self.kl_estimator not in ("log_ratio", "full"):
            raise ValueError(f"kl_estimator must be 'log_ratio' or 'full', got {self.kl_estimator!r}")
        for name in ("max_batch_tokens", "logit_chunk_size"):
            if getattr(self, name) < 1:
                raise ValueError(f"{name} must be ≥ 1, got {getattr(self, name)}")
        if self.max_length is not None and self.max_length < 2:
            raise ValueError(f"max_length must be ≥ 2, got {self.max_length}")

    def at_teacher_temperature(self, sampling_temperature: float | None = None) -> RewardConfig:
        """This config with τ_T decided, the one place it is: the temperature the teacher samples the
        explanations at (``sampling_temperature``; greedy decoding, 0, has none), else the τ_T set, else the
        paper's. A τ_T set to another value than the sampling temperature is refused rather than overwritten:
        the reward's teacher log-probs are the sampling policy's."""
        if sampling_temperature:
            if self.teacher_temperature not in (None, sampling_temperature):
                raise UserError(f"teacher_temperature={self.teacher_temperature} but the teacher samples at "
                                f"temperature={sampling_temperature}: the reward's teacher log-probs are at the "
                                "sampling temperature; set --temperature alone")
            return replace(self, teacher_temperature=sampling_temperature)
        return replace(self, teacher_temperature=self.teacher_temperature or PAPER_TEACHER_TEMPERATURE)


class TooLongError(UserError):
    """A row whose question and solution alone do not fit ``max_length``; ``index`` is its position in
    the call (callers that know the row's place in a file name that instead)."""

    def __init__(self, index: int, tokens: int, max_length: int):
        self.index = index
        self.problem = (f"the question and solution alone take {tokens} tokens, more than max_length={max_length}; "
                        "raise max_length or shorten the row")
        super().__init__(f"row {index}: {self.problem}")


@dataclass(frozen=True)
class RewardTerms:
    """One completion's reward and every term it is made of."""

    reward: float
    r_ss: float
    r_kl: float
    missing_tag_penalty: float
    solution_log_prob_mean: float
    solution_log_prob_min: float
    solution_log_prob_max: float
    kl_mean: float
    kl_min: float
    kl_max: float
    explanation_tokens: int
    solution_tokens: int
    found_end_tag: bool
    truncated: bool

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)


def _mean_min_max(values: torch.Tensor) -> tuple[float, float, float]:
    """Reductions of a span's values; an empty span reduces to 0 (never ±inf)."""
    if values.numel() == 0:
        return 0.0, 0.0, 0.0
    return values.mean().item(), values.min().item(), values.max().item()


def combine_terms(
    solution_log_probs: torch.Tensor,
    explanation_kl: torch.Tensor,
    *,
    found_end_tag: bool,
    truncated: bool,
    config: RewardConfig,
) -> RewardTerms:
    """The reward from per-token ℓ (solution) and δ (explanation): pure arithmetic, no model."""
    sol_mean, sol_min, sol_max = _mean_min_max(solution_log_probs)
    kl_mean, kl_min, kl_max = _mean_min_max(explanation_kl)
    r_ss = (config.solution_mean_coef * sol_mean + config.solution_min_coef * sol_min
            + config.solution_max_coef * sol_max)
    r_kl = config.kl_mean_coef * kl_mean + config.kl_min_coef * kl_min + config.kl_max_coef * kl_max
    penalty = 0.0 if found_end_tag else config.missing_tag_penalty
    return RewardTerms(
        reward=r_ss - r_kl + penalty,
        r_ss=r_ss,
        r_kl=r_kl,
        missing_tag_penalty=penalty,
        solution_log_prob_mean=sol_mean,
        solution_log_prob_min=sol_min,
        solution_log_prob_max=sol_max,
        kl_mean=kl_mean,
        kl_min=kl_min,
        kl_max=kl_max,
        explanation_tokens=int(explanation_kl.numel()),
        solution_tokens=int(solution_log_probs.numel()),
        found_end_tag=found_end_tag,
        truncated=truncated,
    )


@dataclass
class _Row:
    """One completion, ready to score: its two sequences and what the reward needs to know."""

    student: StudentSequence
    teacher: TeacherSequence
    found_end_tag: bool
    truncated: bool
    teacher_log_probs: torch.Tensor | None = None


def check_same_tokenizer(teacher: PreTrainedTokenizerBase, student: PreTrainedTokenizerBase) -> None:
    """Refuse a teacher and a student that do not share one vocabulary: the RLT reward compares the same
    explanation token ids under both models. Cheap, so commands call it before loading any weights."""
    if teacher.get_vocab() != student.get_vocab() or teacher.all_special_tokens != student.all_special_tokens:
        raise UserError(
            f"The teacher's tokenizer ({teacher.name_or_path!r}) and the student's ({student.name_or_path!r}) "
            "differ. The RLT reward compares the same explanation token ids under both models, so both must "
            "share one vocabulary."
        )


def scored_length(config: RewardConfig, *context_lengths: int | None) -> int | None:
    """The longest sequence the reward scores: ``config.max_length``, else the shortest of the models'
    contexts (None: no limit known)."""
    known = [n for n in context_lengths if n]
    return config.max_length or (min(known) if known else None)


def fixed_tokens(builder: SequenceBuilder, question: str, solution: str) -> int:
    """The tokens of a row's longer sequence (teacher or student) besides its explanation: what must fit
    the scored length for any of its explanations to be scored."""
    student = builder.student_sequence(question, [], solution)
    teacher = builder.teacher_sequence(builder.teacher_prompt_ids(question, solution), [])
    return max(len(student.ids), len(teacher.ids))


class RLTReward:
    """The RLT reward of a teacher's explanations, judged by a frozen student.

    Args:
        teacher: the teacher (in GRPO, the live policy). Only read, under ``torch.no_grad``.
        student: the frozen student.
        tokenizer: the teacher's tokenizer.
        config: coefficients and limits (:class:`RewardConfig`).
        format_config: tags and prompts (:class:`~rlt.formats.FormatConfig`).
        student_tokenizer: the student's tokenizer, if loaded separately; it must be the same
            vocabulary, since the reward compares the same token ids under both models.
    """

    __name__ = "rlt_reward"  # TRL names reward functions by __name__

    def __init__(
        self,
        teacher: PreTrainedModel,
        student: PreTrainedModel,
        tokenizer: PreTrainedTokenizerBase,
        config: RewardConfig | None = None,
        format_config: FormatConfig | None = None,
        student_tokenizer: PreTrainedTokenizerBase | None = None,
    ):
        if student_tokenizer is not None:
            check_same_tokenizer(tokenizer, student_tokenizer)
        for role, model in (("teacher", teacher), ("student", student)):
            check_supported_head(model)
            rows = model.get_output_embeddings().weight.shape[0]
            if rows and rows < len(tokenizer):  # rows == 0: a ZeRO-3 shard, its size unknown here
                raise ValueError(
                    f"The {role} has {rows} output rows but the tokenizer has {len(tokenizer)} tokens: "
                    "they do not belong together."
                )
        self.teacher, self.student = teacher, student
        self.config = (config or RewardConfig()).at_teacher_temperature()
        self.builder = SequenceBuilder(tokenizer, format_config)
        self.max_length = scored_length(self.config, context_length(teacher.config), context_length(student.config))
        # Sharded over processes (FSDP2, ZeRO-3), the models take part in collectives at every pass: every
        # process then runs the same number of passes, without shared prefixes (see _keep_step).
        self.lockstep = (torch.distributed.is_initialized() and torch.distributed.get_world_size() > 1
                         and (is_sharded(teacher) or is_sharded(student)))

    # Public API ------------------------------------------------------------------------------

    def score_texts(
        self, questions: Sequence[str], solutions: Sequence[str], explanations: Sequence[str]
    ) -> list[RewardTerms]:
        """Score explanation strings (the text between the explanation tags, tags excluded)."""
        _check_lengths(questions=questions, solutions=solutions, explanations=explanations)
        encode = self.builder.encode
        return self._score([
            self._row(i, q, s, encode(e), found_end_tag=True)
            for i, (q, s, e) in enumerate(zip(questions, solutions, explanations))
        ])

    def score_completions(
        self,
        questions: Sequence[str],
        solutions: Sequence[str],
        completion_ids: Sequence[Sequence[int]],
        teacher_log_probs: Sequence[torch.Tensor] | None = None,
    ) -> list[RewardTerms]:
        """Score sampled completions (token ids after the teacher prompt, end tag and EOS included).

        ``teacher_log_probs``, when given, are the teacher's log-probs of each completion token at
        ``teacher_temperature`` (e.g. computed by the trainer already): the teacher forward is skipped.
        """
        _check_lengths(questions=questions, solutions=solutions, completion_ids=completion_ids)
        rows = []
        for i, (question, solution, ids) in enumerate(zip(questions, solutions, completion_ids)):
            split = self.builder.split_completion(list(ids))
            row = self._row(i, question, solution, split.explanation_ids, split.found_end_tag)
            if teacher_log_probs is not None:
                row.teacher_log_probs = teacher_log_probs[i][: len(row.teacher.explanation)].float()
            rows.append(row)
        return self._score(rows)

    def __call__(
        self,
        prompts: list,
        completions: list,
        completion_ids: list[list[int]],
        question: list[str],
        solution: list[str],
        log_metric: Callable[[str, float], None] | None = None,
        log_extra: Callable[[str, list], None] | None = None,
        teacher_log_probs: Sequence[torch.Tensor] | None = None,
        **_: Any,
    ) -> list[float]:
        """TRL reward-function interface; the dataset must carry ``question`` and ``solution`` columns.

        ``teacher_log_probs`` (the policy's, per completion token, at the sampling temperature) are
        passed by :class:`rlt.grpo.RLTGRPOTrainer` when TRL has computed them already.
        """
        terms = self.score_completions(question, solution, completion_ids, teacher_log_probs)
        if log_metric is not None:
            for name, value in summarize(terms).items():
                log_metric(f"rlt/{name}", value)
            log_metric("rlt/teacher_log_probs_reused", float(teacher_log_probs is not None))
        if log_extra is not None:
            for name in ("r_ss", "r_kl", "missing_tag_penalty"):
                log_extra(f"rlt/{name}", [getattr(t, name) for t in terms])
        return [t.reward for t in terms]

    # Internals -------------------------------------------------------------------------------

    def _row(self, index: int, question: str, solution: str, explanation_ids: list[int], found_end_tag: bool) -> _Row:
        prompt_ids = self.builder.teacher_prompt_ids(question, solution)
        student = self.builder.student_sequence(question, explanation_ids, solution)
        teacher = self.builder.teacher_sequence(prompt_ids, explanation_ids)
        longest = max(len(student.ids), len(teacher.ids))
        if self.max_length is None or longest <= self.max_length:
            return _Row(student, teacher, found_end_tag, truncated=False)
        keep = len(explanation_ids) - (longest - self.max_length)
        if keep < 0:
            raise TooLongError(index, longest - len(explanation_ids), self.max_length)
        return _Row(
            self.builder.student_sequence(question, explanation_ids[:keep], solution),
            self.builder.teacher_sequence(prompt_ids, explanation_ids[:keep]),
            found_end_tag,
            truncated=True,
        )

    @torch.no_grad()
    def _score(self, rows: list[_Row]) -> list[RewardTerms]:
        results: list[RewardTerms | None] = [None] * len(rows)
        plan = self._plan(rows)
        stand_ins = self._stand_ins(rows, len(plan)) if self.lockstep else []
        for indices, prefixes in plan:
            for index, terms in zip(indices, self._score_micro_batch([rows[i] for i in indices], prefixes)):
                results[index] = terms
        for stand_in in stand_ins:
            self._score_micro_batch([stand_in], None)
        return results

    def _plan(self, rows: list[_Row]) -> list[tuple[list[int], _Prefixes | None]]:
        """The micro-batches (row indices) and the prefix each runs on."""
        groups = [(list(range(len(rows))), None)] if self.lockstep else self._prefix_groups(rows)
        plan = []
        for group, prefixes in groups:
            skip = len(prefixes.student) if prefixes else 0
            lengths = [max(len(rows[i].student.ids), len(rows[i].teacher.ids)) - skip for i in group]
            plan += [([group[i] for i in batch], prefixes)
                     for batch in micro_batches(lengths, self.config.max_batch_tokens)]
        return plan

    def _stand_ins(self, rows: list[_Row], passes: int) -> list[_Row]:
        """With sharded models, each micro-batch is a series of collectives (every process gathers weights
        from the others), so every process must run as many: the processes agree on the most any has, and
        those with fewer run one-token stand-ins, whose results are dropped. (Shared prefixes, whose number
        depends on the rows, are off.)"""
        most = torch.tensor([passes], device=model_device(self.student))
        torch.distributed.all_reduce(most, op=torch.distributed.ReduceOp.MAX)
        stand_ins = []
        for _ in range(int(most.item()) - passes):
            stand_in = self._row(0, "?", "?", self.builder.encode("?"), found_end_tag=True)
            if rows and all(r.teacher_log_probs is not None for r in rows):  # the teacher's were given: no pass
                stand_in.teacher_log_probs = torch.zeros(len(stand_in.teacher.explanation))
            stand_ins.append(stand_in)
        return stand_ins

    def _prefix_groups(self, rows: list[_Row]) -> list[tuple[list[int], _Prefixes | None]]:
        """Rows grouped by the contexts they share (one prompt's completions), each group with its prefixes.

        A prefix stops one token before the explanation, so that the hidden state predicting the
        explanation's first token comes out of the per-row pass. Rows alone in their group, and
        groups whose prefix is short, are batched together without a prefix.
        """
        groups: dict[tuple, list[int]] = {}
        for index, row in enumerate(rows):
            key = (tuple(row.teacher.ids[: row.teacher.explanation.start - 1]),
                   tuple(row.student.ids[: row.student.explanation.start - 1]))
            groups.setdefault(key, []).append(index)

        def worth_sharing(key: tuple, members: list[int]) -> bool:
            return len(members) > 1 and min(len(key[0]), len(key[1])) >= MIN_SHARED_PREFIX_TOKENS

        singles = [i for key, members in groups.items() if not worth_sharing(key, members) for i in members]
        shared = [
            (members, _Prefixes(SharedPrefix(self.teacher, teacher_prefix), SharedPrefix(self.student, student_prefix)))
            for (teacher_prefix, student_prefix), members in groups.items()
            if worth_sharing((teacher_prefix, student_prefix), members)
        ]
        return ([(singles, None)] if singles else []) + shared

    def _score_micro_batch(self, rows: list[_Row], prefixes: _Prefixes | None) -> list[RewardTerms]:
        cfg = self.config
        hidden, labels, counts = span_hidden_states(
            self.student, [r.student.ids for r in rows], [[r.student.explanation, r.student.solution] for r in rows],
            prefixes.student if prefixes else None,
        )
        student_logps = _split(token_log_probs(self.student, hidden, labels, cfg.student_temperature,
                                               cfg.logit_chunk_size), counts)
        teacher_prefix = prefixes.teacher if prefixes else None
        if cfg.kl_estimator == "full":
            kls = self._full_kl(rows, hidden, counts, teacher_prefix)
        else:
            teacher_logps = self._teacher_log_probs(rows, teacher_prefix)
            kls = [t - s_expl for t, (s_expl, _) in zip(teacher_logps, student_logps)]
        return [
            combine_terms(solution_logps, kl, found_end_tag=row.found_end_tag, truncated=row.truncated, config=cfg)
            for row, (_, solution_logps), kl in zip(rows, student_logps, kls)
        ]

    def _teacher_span_hidden(self, rows: list[_Row], prefix: SharedPrefix | None):
        return span_hidden_states(self.teacher, [r.teacher.ids for r in rows], [[r.teacher.explanation] for r in rows],
                                  prefix)

    def _teacher_log_probs(self, rows: list[_Row], prefix: SharedPrefix | None) -> list[torch.Tensor]:
        """Teacher log-probs of each explanation: given ones where present, else one forward pass."""
        missing = [r for r in rows if r.teacher_log_probs is None]
        if missing:
            hidden, labels, counts = self._teacher_span_hidden(missing, prefix)
            computed = _split(token_log_probs(self.teacher, hidden, labels, self.config.teacher_temperature,
                                              self.config.logit_chunk_size), counts)
            for row, (logps,) in zip(missing, computed):
                row.teacher_log_probs = logps
        return [r.teacher_log_probs.cpu() for r in rows]

    def _full_kl(self, rows: list[_Row], student_hidden: torch.Tensor, counts: list[list[int]],
                 prefix: SharedPrefix | None) -> list[torch.Tensor]:
        teacher_hidden, _, _ = self._teacher_span_hidden(rows, prefix)
        explanation_rows = torch.cat([
            torch.arange(offset, offset + n_expl) for offset, (n_expl, _) in zip(_offsets(counts), counts)
        ]).to(student_hidden.device)
        kl = full_kl(self.teacher, teacher_hidden, self.config.teacher_temperature,
                     self.student, student_hidden.index_select(0, explanation_rows), self.config.student_temperature,
                     self.config.logit_chunk_size)
        return [part for (part,) in _split(kl, [[n_expl] for n_expl, _ in counts])]


@dataclass(frozen=True)
class _Prefixes:
    teacher: SharedPrefix
    student: SharedPrefix


def _offsets(counts: list[list[int]]) -> list[int]:
    offsets, total = [], 0
    for row_counts in counts:
        offsets.append(total)
        total += sum(row_counts)
    return offsets


def _split(values: torch.Tensor, counts: list[list[int]]) -> list[tuple[torch.Tensor, ...]]:
    """Cut a flat ``[N]`` tensor back into per-row, per-span pieces (on CPU)."""
    pieces = iter(values.cpu().split([n for row in counts for n in row]))
    return [tuple(next(pieces) for _ in row) for row in counts]


def _check_lengths(**columns: Sequence) -> None:
    sizes = {name: len(values) for name, values in columns.items()}
    if len(set(sizes.values())) > 1:
        raise ValueError(f"columns differ in length: {sizes}")


def summarize(terms: Sequence[RewardTerms]) -> dict[str, float]:
    """Batch means of every term (booleans as rates), for logging."""
    if not terms:
        return {}
    rows = [t.to_dict() for t in terms]
    return {name: sum(float(r[name]) for r in rows) / len(rows) for name in rows[0]}


__all__ = ["RLTReward", "RewardConfig", "RewardTerms", "Span", "check_same_tokenizer", "combine_terms", "summarize"]
