"""Batched text generation: teacher explanations for ``rlt distill``, student answers for ``rlt evaluate``.

Prompts are already-templated *text* (:meth:`rlt.formats.SequenceBuilder.teacher_prompt` and
``student_prompt``); they are tokenised without special tokens so that the ids are exactly those the
builder gives them, and so those the SFT records train on.

Two backends:

* **transformers** (:func:`generate`): any causal LM on CPU or GPU. Prompts are sorted by length and
  left-padded in batches; results come back in input order, and ``on_batch`` sees each batch as soon
  as it is done so callers can write results incrementally and resume.
* **vLLM** (:func:`generate_vllm`): much faster on GPUs, installed with ``pip install 'rlt[vllm]'``.

Sampling uses the temperature and top-p given here and nothing else: the checkpoint's own
``generation_config.json`` (Qwen's sets top-k 20 and a repetition penalty) is ignored, because the
RLT reward scores explanations with log-probs at the sampling temperature, and a hidden top-k or
penalty would make the sampled distribution differ from the one the reward assumes.
"""

from __future__ import annotations

import logging
import math
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass, field, replace
from typing import Any, Literal

import torch
from transformers import GenerationConfig, PreTrainedModel, PreTrainedTokenizerBase

from rlt.progress import progress_bar

logger = logging.getLogger(__name__)

VLLM_INSTALL_HINT = "pip install 'rlt[vllm]'"


@dataclass
class SamplingConfig:
    """How completions are sampled (named so as not to clash with transformers' ``GenerationConfig``)."""

    max_new_tokens: int = field(default=1024, metadata={"help": "Most tokens generated per completion."})
    temperature: float = field(
        default=0.7, metadata={"help": "Sampling temperature; 0 means greedy decoding (argmax)."}
    )
    top_p: float = field(default=1.0, metadata={"help": "Nucleus sampling: keep the smallest set of tokens "
                                                        "whose probability reaches top_p (1 keeps all)."})
    num_samples: int = field(default=1, metadata={"help": "Completions per prompt."})
    batch_size: int = field(
        default=32,
        metadata={"help": "Prompts per forward batch (transformers backend); each brings num_samples rows."},
    )
    seed: int = field(default=0, metadata={"help": "Random seed of the sampling."})
    backend: Literal["transformers", "vllm"] = field(
        default="transformers",
        metadata={"help": "Generation engine: 'transformers' (CPU or GPU) or 'vllm' (GPU, pip install 'rlt[vllm]')."},
    )

    def __post_init__(self) -> None:
        if not (math.isfinite(self.temperature) and self.temperature >= 0):
            raise ValueError(f"temperature must be a finite number >= 0 (0 = greedy), got {self.temperature}")
        if not 0 < self.top_p <= 1:
            raise ValueError(f"top_p must be in (0, 1], got {self.top_p}")
        for name in ("max_new_tokens", "num_samples", "batch_size"):
            value = getattr(self, name)
            if isinstance(value, bool) or not isinstance(value, int) or value <= 0:
                raise ValueError(f"{name} must be a positive integer, got {value!r}")
        if self.backend not in ("transformers", "vllm"):
            raise ValueError(f"backend must be 'transformers' or 'vllm', got {self.backend!r}")

    @property
    def greedy(self) -> bool:
        return self.temperature == 0


def one_sample_if_greedy(sampling: SamplingConfig, what: str) -> SamplingConfig:
    """Greedy decoding gives ``num_samples`` equal completions: ask for one (logged with ``what`` it is)."""
    if not (sampling.greedy and sampling.num_samples > 1):
        return sampling
    logger.info("greedy decoding: 1 %s instead of %d (they would be equal)", what, sampling.num_samples)
    return replace(sampling, num_samples=1)


@dataclass
class Generation:
    """One completion of one prompt.

    ``token_ids`` and ``text`` hold what was generated, less the trailing end-of-sequence/padding
    tokens (a stop id that is not an EOS, e.g. a closing tag, is kept). ``finished`` says whether the
    completion ended on a stop token rather than by running into ``max_new_tokens``.
    """

    prompt_index: int
    sample_index: int
    text: str
    token_ids: list[int]
    finished: bool


# transformers backend -----------------------------------------------------------------------------


def _ids(value: int | Iterable[int] | None) -> set[int]:
    if value is None:
        return set()
    if isinstance(value, int):
        return {value}
    return {int(v) for v in value}


def _finish(
    tokenizer: PreTrainedTokenizerBase,
    prompt_index: int,
    sample_index: int,
    ids: Sequence[int],
    stop_ids: set[int],
    trailing_ids: set[int],
    finished: bool | None = None,
) -> Generation:
    """Cut ``ids`` after the first stop token, drop trailing EOS/padding, decode.

    ``finished`` is inferred from the presence of a stop token unless the engine reports it (vLLM).
    """
    ids = [int(i) for i in ids]
    stop_at = next((k for k, token in enumerate(ids) if token in stop_ids), None)
    if stop_at is not None:
        ids = ids[: stop_at + 1]
    if finished is None:
        finished = stop_at is not None
    while ids and ids[-1] in trailing_ids:
        ids.pop()
    text = tokenizer.decode(ids, skip_special_tokens=False, clean_up_tokenization_spaces=False)
    return Generation(prompt_index, sample_index, text, ids, finished)


def _left_pad(rows: Sequence[Sequence[int]], pad_id: int, device: torch.device) -> tuple[torch.Tensor, torch.Tensor]:
    width = max(len(r) for r in rows)
    input_ids = torch.full((len(rows), width), pad_id, dtype=torch.long)
    attention_mask = torch.zeros((len(rows), width), dtype=torch.long)
    for i, row in enumerate(rows):
        input_ids[i, width - len(row):] = torch.tensor(row, dtype=torch.long)
        attention_mask[i, width - len(row):] = 1
    return input_ids.to(device), attention_mask.to(device)


def _hf_generation_config(config: SamplingConfig, stop_ids: set[int], pad_id: int) -> GenerationConfig:
    """Greedy or plain temperature/top-p sampling, nothing else (top_k=0 turns off the default top-k 50)."""
    kwargs: dict[str, Any] = dict(
        max_new_tokens=config.max_new_tokens,
        eos_token_id=sorted(stop_ids) or None,
        pad_token_id=pad_id,
        use_cache=True,
        num_return_sequences=1 if config.greedy else config.num_samples,
    )
    if config.greedy:
        kwargs.update(do_sample=False)
    else:
        kwargs.update(do_sample=True, temperature=config.temperature, top_p=config.top_p, top_k=0)
    return GenerationConfig(**kwargs)


def _rng_devices(device: torch.device) -> list[int]:
    return list(range(torch.cuda.device_count())) if device.type == "cuda" else []


def generate(
    model: PreTrainedModel,
    tokenizer: PreTrainedTokenizerBase,
    prompts: Sequence[str],
    config: SamplingConfig,
    stop_token_ids: Sequence[int] = (),
    on_batch: Callable[[list[Generation]], None] | None = None,
) -> list[Generation]:
    """Generate ``config.num_samples`` completions per prompt with a transformers model.

    Generation stops at the tokenizer's EOS, the model's own EOS ids (``generation_config``, as vLLM
    does) and ``stop_token_ids``. Results are ordered by ``(prompt_index, sample_index)``.
    Prompts are batched by length (longest first: memory errors show up at once and the ETA is
    pessimistic rather than optimistic); ``on_batch`` receives each batch's generations, in the same
    order, as soon as the batch is done. Sampling is reproducible for a fixed seed and batch size
    (the global RNG is left untouched); with greedy decoding, ``num_samples`` copies of one
    completion are returned. Padding is built here, so the tokenizer (``padding_side`` included) is
    never modified; the model's training mode and ``generation_config`` are restored on return.
    """
    if config.backend != "transformers":
        raise ValueError(f"generate() is the transformers backend; backend={config.backend!r} "
                         "generates from a model path: call generate_vllm().")
    if not prompts:
        return []
    encoded = tokenizer(list(prompts), add_special_tokens=False)["input_ids"]
    for index, ids in enumerate(encoded):
        if not ids:
            raise ValueError(f"Prompt {index} is empty: there is nothing to continue from.")

    device = model.device
    eos_ids = _ids(tokenizer.eos_token_id) | _ids(getattr(model.generation_config, "eos_token_id", None))
    stop_ids = eos_ids | _ids(stop_token_ids)
    trailing_ids = eos_ids | _ids(tokenizer.pad_token_id)
    pad_id = min(_ids(tokenizer.pad_token_id) or eos_ids or {0})  # any id: padding is masked out
    hf_config = _hf_generation_config(config, stop_ids, pad_id)
    rows_per_prompt = 1 if config.greedy else config.num_samples

    order = sorted(range(len(encoded)), key=lambda i: (-len(encoded[i]), i))
    batches = [order[start:start + config.batch_size] for start in range(0, len(order), config.batch_size)]
    results: list[Generation | None] = [None] * (len(prompts) * config.num_samples)

    was_training = model.training
    model_generation_config = model.generation_config
    # The checkpoint's generation defaults (top-k, repetition penalty, …) would fill every field not
    # set in hf_config: hide them for the duration of the call.
    model.generation_config = GenerationConfig()
    model.eval()
    generated_tokens = 0
    try:
        with (torch.random.fork_rng(devices=_rng_devices(device)), torch.inference_mode(),
              progress_bar("Generating", total=len(prompts)) as bar):
            torch.manual_seed(config.seed)
            for batch in batches:
                input_ids, attention_mask = _left_pad([encoded[i] for i in batch], pad_id, device)
                output = model.generate(input_ids=input_ids, attention_mask=attention_mask,
                                        generation_config=hf_config)
                completions = output[:, input_ids.shape[1]:].tolist()
                done: list[Generation] = []
                for row, completion in enumerate(completions):
                    prompt_index = batch[row // rows_per_prompt]
                    first = row % rows_per_prompt
                    copies = range(config.num_samples) if config.greedy else (first,)
                    for sample_index in copies:
                        generation = _finish(tokenizer, prompt_index, sample_index, completion, stop_ids,
                                             trailing_ids)
                        results[prompt_index * config.num_samples + sample_index] = generation
                        done.append(generation)
                        generated_tokens += len(generation.token_ids)
                done.sort(key=lambda g: (g.prompt_index, g.sample_index))
                if on_batch is not None:
                    on_batch(done)
                bar.advance(0, len(batch))
                bar.update(0, status=f"{generated_tokens:,} tokens")
    finally:
        model.generation_config = model_generation_config
        model.train(was_training)
    assert all(r is not None for r in results)
    return results  # type: ignore[return-value]


# vLLM backend ---------------------------------------------------------------------------------------


def generate_vllm(
    model_name_or_path: str,
    prompts: Sequence[str],
    config: SamplingConfig,
    stop_token_ids: Sequence[int] = (),
    **llm_kwargs: Any,
) -> list[Generation]:
    """Generate with vLLM (``llm_kwargs`` go to ``vllm.LLM``, e.g. ``tensor_parallel_size``, ``dtype``).

    Each prompt gets its own seed (``seed + prompt_index * num_samples``; vLLM offsets it per sample),
    so a prompt's completions do not depend on which other prompts are in the call, and no two prompts
    share random draws. vLLM also stops at the EOS ids of the model's ``generation_config``. vLLM refuses
    ``n > 1`` with greedy decoding, so greedy completions are generated once and copied, as in :func:`generate`.
    """
    try:
        import vllm
    except ImportError as error:
        raise ImportError(f"The vLLM backend needs vLLM, which is not installed: {VLLM_INSTALL_HINT}") from error
    if not prompts:
        return []
    llm = vllm.LLM(model=model_name_or_path, seed=config.seed, **llm_kwargs)
    tokenizer = llm.get_tokenizer()
    params = [
        vllm.SamplingParams(
            n=1 if config.greedy else config.num_samples,
            temperature=config.temperature,
            top_p=config.top_p,
            max_tokens=config.max_new_tokens,
            stop_token_ids=list(stop_token_ids),
            seed=config.seed + index * config.num_samples,
            skip_special_tokens=False,
        )
        for index in range(len(prompts))
    ]
    inputs = [{"prompt_token_ids": tokenizer.encode(p, add_special_tokens=False)} for p in prompts]
    outputs = llm.generate(inputs, params)
    eos_ids = _ids(tokenizer.eos_token_id)
    trailing_ids = eos_ids | _ids(tokenizer.pad_token_id)
    results = []
    for prompt_index, output in enumerate(outputs):
        for completion in sorted(output.outputs, key=lambda c: c.index):
            sample_indices = range(config.num_samples) if config.greedy else (completion.index,)
            # vLLM already stopped at the right place: no cut, only the trailing EOS/padding goes.
            results.extend(_finish(tokenizer, prompt_index, sample_index, completion.token_ids, set(), trailing_ids,
                                   finished=completion.finish_reason == "stop") for sample_index in sample_indices)
    return results


__all__ = ["VLLM_INSTALL_HINT", "Generation", "SamplingConfig", "generate", "generate_vllm", "one_sample_if_greedy"]
