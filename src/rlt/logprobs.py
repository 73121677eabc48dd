"""Per-token log-probabilities on chosen spans of padded batches, in fp32, without full logits.

The reward needs log π(token) only on a few spans (explanation, solution) of long sequences. We run
the model's backbone once per micro-batch, keep the hidden states at the positions that predict the
span tokens, and project only those through the LM head, a chunk of positions at a time. The
``[batch × length × vocab]`` logits never exist, and the log-softmax runs in fp32 whatever the
model's dtype (bf16 log-softmax is off by up to 0.07 nats per token on a 7B model).

TRL's ``selective_log_softmax`` does the log-softmax/gather on GPUs (with its fused Triton kernel); on
a CPU the log-sum-exp is streamed over vocabulary blocks instead (:func:`_streamed_log_probs`). We do
not use TRL's ``add_fused_lm_head``: it patches ``model.forward``, binds one temperature per model, and
off-Triton projects every position rather than only the spans we need.
"""

from __future__ import annotations

import copy
from collections.abc import Iterator, Sequence
from contextlib import contextmanager

import torch
import torch.nn.functional as F
from torch.distributed.fsdp import FSDPModule
from torch.distributed.tensor import DTensor
from transformers import DynamicCache, PreTrainedModel
from trl.trainer.utils import maybe_gather_lm_head_ctx, selective_log_softmax

from rlt.formats import Span

# Vocabulary columns per block of the streamed CPU head (2048 fastest among 2048-8192 on 2 cores).
VOCAB_BLOCK = 2048
_LOGIT_SCALING_ATTRIBUTES = ("logit_scale", "output_multiplier", "lm_head_multiplier", "logits_scaling")


def check_supported_head(model: PreTrainedModel) -> None:
    """Refuse models whose logits are not ``lm_head(h)`` (optionally soft-capped).

    Some architectures rescale logits after the head; computing them from hidden states would then
    be silently wrong, so we say so at construction instead.
    """
    text_config = model.config.get_text_config()
    for attribute in _LOGIT_SCALING_ATTRIBUTES:
        if getattr(text_config, attribute, None) not in (None, 1, 1.0):
            raise ValueError(
                f"{type(model).__name__} rescales its logits ({attribute}={getattr(text_config, attribute)}); "
                "rlt computes span log-probs from hidden states and supports only unscaled heads "
                "(optionally with final_logit_softcapping)."
            )
    if model.get_output_embeddings() is None or model.get_decoder() is None:
        raise ValueError(f"{type(model).__name__} exposes no decoder/LM head; rlt needs a causal LM.")


def model_device(model: torch.nn.Module) -> torch.device:
    return next(model.parameters()).device


def is_sharded(model: torch.nn.Module) -> bool:
    """Whether the model's weights are split over processes (FSDP2, or DeepSpeed ZeRO-3): then each of its
    forward passes gathers weights from every process, which must all run as many passes."""
    return isinstance(model, FSDPModule) or hasattr(next(model.parameters()), "ds_id")


@contextmanager
def whole_root(model: torch.nn.Module) -> Iterator[None]:
    """The weights FSDP2 keeps in the root module (embeddings, final norm, LM head), gathered while in use.

    rlt calls the decoder and the head, not the model's own forward, so the root's pre-forward hook, which
    gathers them, never runs; each decoder layer, sharded on its own, still gathers its weights in its hook.
    ZeRO-3 gathers per submodule and needs nothing here.
    """
    if not isinstance(model, FSDPModule):
        yield
        return
    model.unshard()
    try:
        yield
    finally:
        model.reshard()


def micro_batches(lengths: Sequence[int], max_tokens: int) -> Iterator[list[int]]:
    """Indices grouped so that ``len(group) × longest`` stays within ``max_tokens``.

    Sequences are taken longest first so that neighbours have similar lengths (little padding).
    A sequence longer than ``max_tokens`` forms a batch of its own.
    """
    order = sorted(range(len(lengths)), key=lambda i: -lengths[i])
    batch: list[int] = []
    for index in order:
        longest = lengths[batch[0]] if batch else lengths[index]
        if batch and (len(batch) + 1) * longest > max_tokens:
            yield batch
            batch = []
        batch.append(index)
    if batch:
        yield batch


def _pad_right(sequences: Sequence[Sequence[int]], device: torch.device) -> tuple[torch.Tensor, torch.Tensor]:
    longest = max(len(s) for s in sequences)
    input_ids = torch.zeros(len(sequences), longest, dtype=torch.long)
    attention_mask = torch.zeros(len(sequences), longest, dtype=torch.long)
    for row, sequence in enumerate(sequences):
        input_ids[row, : len(sequence)] = torch.tensor(sequence, dtype=torch.long)
        attention_mask[row, : len(sequence)] = 1
    return input_ids.to(device), attention_mask.to(device)


class SharedPrefix:
    """The KV cache of token ids that several sequences start with, computed once, on first use.

    In GRPO every completion of a prompt shares the teacher prompt (system prompt, question and
    solution), and its student chat shares the student prompt: with G completions per prompt,
    running the prefix once saves up to a factor G of the work on it.
    """

    def __init__(self, model: PreTrainedModel, ids: Sequence[int]):
        self.model, self.ids = model, tuple(ids)
        self._cache: DynamicCache | None = None

    def __len__(self) -> int:
        return len(self.ids)

    def cache_for(self, batch_size: int) -> DynamicCache:
        """A fresh cache holding the prefix ``batch_size`` times (the forward pass extends it in place)."""
        if self._cache is None:
            self._cache = DynamicCache(config=self.model.config)  # filled in place by the forward pass
            input_ids = torch.tensor([self.ids], device=model_device(self.model))
            with whole_root(self.model):
                self.model.get_decoder()(input_ids=input_ids, cache=self._cache, use_cache=True)
        cache = copy.deepcopy(self._cache)
        cache.batch_repeat_interleave(batch_size)
        return cache


def span_hidden_states(
    model: PreTrainedModel,
    sequences: Sequence[Sequence[int]],
    spans: Sequence[Sequence[Span]],
    prefix: SharedPrefix | None = None,
) -> tuple[torch.Tensor, torch.Tensor, list[list[int]]]:
    """Hidden states that predict each span token, for one micro-batch.

    Returns ``hidden [N, H]`` (the final hidden state at position ``k-1`` for every span token ``k``),
    ``labels [N]`` (the span tokens) and, per sequence and span, how many of the N rows it owns, in
    order. With a ``prefix`` that every sequence starts with, only the rest is run, on its cache;
    spans must then start after the prefix's end + 1. Without, spans must start at position ≥ 1.
    """
    device = model_device(model)
    skip = len(prefix) if prefix is not None else 0
    if prefix is not None and any(tuple(s[:skip]) != prefix.ids for s in sequences):
        raise ValueError("every sequence must start with the shared prefix")
    input_ids, attention_mask = _pad_right([s[skip:] for s in sequences], device)
    width = input_ids.shape[1]
    flat_positions, counts = [], []
    for row, row_spans in enumerate(spans):
        counts.append([len(span) for span in row_spans])
        for span in row_spans:
            if len(span) and span.start < skip + 1:
                raise ValueError(f"span {span} starts before position {skip + 1}: its first log-prob is unknown")
            flat_positions.extend(row * width + k - 1 - skip for k in range(span.start, span.end))
    positions = torch.tensor(flat_positions, dtype=torch.long, device=device)
    past = None
    if prefix is not None:
        past = prefix.cache_for(len(sequences))
        attention_mask = torch.cat([attention_mask.new_ones(len(sequences), skip), attention_mask], dim=1)
    with whole_root(model):
        hidden = model.get_decoder()(
            input_ids=input_ids, attention_mask=attention_mask, cache=past, use_cache=past is not None
        ).last_hidden_state  # [B, T, H]
    selected = hidden.reshape(-1, hidden.shape[-1]).index_select(0, positions)  # [N, H]
    labels = input_ids.reshape(-1).index_select(0, positions + 1)  # [N]
    return selected, labels, counts


@contextmanager
def _gathered_head(model: PreTrainedModel) -> Iterator[tuple[torch.Tensor, torch.Tensor | None]]:
    """The LM head's weight and bias, whole: gathered under ZeRO-3 and FSDP2."""
    head = model.get_output_embeddings()
    with whole_root(model), maybe_gather_lm_head_ctx(head.weight, head.bias):
        weight, bias = head.weight, head.bias
        if isinstance(weight, DTensor):
            weight = weight.full_tensor()
            bias = bias.full_tensor() if isinstance(bias, DTensor) else bias
        yield weight, bias


def _chunks(total: int, size: int) -> Iterator[slice]:
    for start in range(0, total, size):
        yield slice(start, min(start + size, total))


def _logits(
    model: PreTrainedModel, hidden: torch.Tensor, weight: torch.Tensor, bias: torch.Tensor | None, vocab: int
) -> torch.Tensor:
    """Head projection of ``hidden [n, H]`` → fp32 logits ``[n, vocab]`` (soft-capped where the model does)."""
    logits = F.linear(hidden.to(weight.device), weight[:vocab], None if bias is None else bias[:vocab]).float()
    softcap = getattr(model.config.get_text_config(), "final_logit_softcapping", None)
    if softcap:
        logits = torch.tanh(logits / softcap) * softcap
    return logits


def token_log_probs(
    model: PreTrainedModel,
    hidden: torch.Tensor,
    labels: torch.Tensor,
    temperature: float,
    chunk_size: int = 256,
) -> torch.Tensor:
    """``log softmax(head(hidden) / temperature)[labels]`` in fp32, ``chunk_size`` rows at a time. → [N]"""
    softcap = getattr(model.config.get_text_config(), "final_logit_softcapping", None)
    with _gathered_head(model) as (weight, bias):
        out = torch.empty(labels.shape[0], dtype=torch.float32, device=weight.device)
        streamed = weight.device.type == "cpu" and weight.dtype == torch.float32 and not softcap
        for rows in _chunks(labels.shape[0], chunk_size):
            chunk_labels = labels[rows].to(weight.device)
            if streamed:
                out[rows] = _streamed_log_probs(hidden[rows].to(weight.device), chunk_labels, weight, bias,
                                                temperature)
            else:
                logits = _logits(model, hidden[rows], weight, bias, weight.shape[0]).div_(temperature)  # in place
                # One "sequence" of rows: off its fused GPU kernel, TRL loops over the leading dimension.
                out[rows] = selective_log_softmax(logits[None], chunk_labels[None])[0]
    return out


def _streamed_log_probs(hidden: torch.Tensor, labels: torch.Tensor, weight: torch.Tensor, bias: torch.Tensor | None,
                        temperature: float) -> torch.Tensor:
    """``log softmax(head(hidden) / temperature)[labels]`` without the chunk's ``[n, V]`` logits. → [n]

    Written here because no library does it on a CPU (Liger's fused linear cross-entropy is Triton only): the
    log-sum-exp is accumulated over blocks of the vocabulary whose logits stay in cache, rescaled as the
    running maximum grows (the online softmax of flash attention), and the label's logit is one dot product.
    On 2 CPU cores with Qwen2.5's vocabulary this head costs 0.6x the whole-chunk projection and
    log-softmax (benchmarks/reward.py measures the reward).
    """
    scaled = hidden / temperature  # [n, H]: the projection of scaled states is the scaled logits
    peak = torch.full((len(hidden),), -torch.inf, device=hidden.device)
    total = torch.zeros(len(hidden), device=hidden.device)
    for block in _chunks(weight.shape[0], VOCAB_BLOCK):
        logits = F.linear(scaled, weight[block], None if bias is None else bias[block] / temperature)  # [n, b]
        new_peak = torch.maximum(peak, logits.amax(-1))
        total = total * torch.exp(peak - new_peak) + logits.sub_(new_peak[:, None]).exp_().sum(-1)
        peak = new_peak
    selected = (scaled * weight[labels]).sum(-1) + (0.0 if bias is None else bias[labels] / temperature)
    return selected - peak - total.log()


def full_kl(
    teacher: PreTrainedModel,
    teacher_hidden: torch.Tensor,
    teacher_temperature: float,
    student: PreTrainedModel,
    student_hidden: torch.Tensor,
    student_temperature: float,
    chunk_size: int = 256,
) -> torch.Tensor:
    """Per-position KL(π_T ‖ π_S) over the vocabulary, in fp32, chunked. → [N]

    Both hidden tensors hold the same positions in the same order (the explanation tokens). Models
    whose embedding matrices are padded to different sizes are compared on their common vocabulary.
    """
    with _gathered_head(teacher) as (t_weight, t_bias), _gathered_head(student) as (s_weight, s_bias):
        vocab = min(t_weight.shape[0], s_weight.shape[0])
        out = torch.empty(teacher_hidden.shape[0], dtype=torch.float32, device=t_weight.device)
        for rows in _chunks(teacher_hidden.shape[0], chunk_size):
            teacher_logps = torch.log_softmax(
                _logits(teacher, teacher_hidden[rows], t_weight, t_bias, vocab) / teacher_temperature, dim=-1)
            student_logps = torch.log_softmax(
                _logits(student, student_hidden[rows], s_weight, s_bias, vocab) / student_temperature, dim=-1)
            student_logps = student_logps.to(teacher_logps.device)
            out[rows] = (teacher_logps.exp() * (teacher_logps - student_logps)).sum(-1)
    return out
