"""Randomly initialised Qwen2 causal LMs of a few sizes, and hub-style save/load.

A toy model is a real ``Qwen2ForCausalLM``: saved with ``save_pretrained`` it is loaded back by
:func:`rlt.modeling.load_causal_lm` and :func:`~rlt.modeling.load_tokenizer` exactly like a hub
checkpoint, so every code path that serves real models is exercised offline.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import torch
from transformers import (
    PreTrainedModel,
    PreTrainedTokenizerBase,
    Qwen2Config,
    Qwen2ForCausalLM,
)


@dataclass(frozen=True)
class ModelSize:
    """The shape of a Qwen2 decoder. ``vocab_size=None`` means: the tokenizer's vocabulary size."""

    hidden_size: int
    num_layers: int
    num_heads: int
    num_kv_heads: int
    intermediate_size: int
    max_position_embeddings: int
    vocab_size: int | None = None
    tie_word_embeddings: bool = True
    rope_theta: float = 1_000_000.0
    rms_norm_eps: float = 1e-6

    def __post_init__(self) -> None:
        if self.hidden_size % self.num_heads:
            raise ValueError(f"hidden_size {self.hidden_size} not a multiple of num_heads {self.num_heads}")
        if self.num_heads % self.num_kv_heads:
            raise ValueError(f"num_heads {self.num_heads} not a multiple of num_kv_heads {self.num_kv_heads}")

    @property
    def head_dim(self) -> int:
        return self.hidden_size // self.num_heads

    def resolved_vocab_size(self, tokenizer_size: int) -> int:
        """The embedding rows: the tokenizer's size, or the preset's if that is larger (Qwen pads)."""
        return max(tokenizer_size, self.vocab_size or 0)

    def num_parameters(self, vocab_size: int) -> int:
        """Exact parameter count of ``Qwen2ForCausalLM`` with this shape and ``vocab_size`` rows."""
        h, kv = self.hidden_size, self.num_kv_heads * self.head_dim
        attention = (h * h + h) + 2 * (h * kv + kv) + h * h  # q, k, v with biases; o without
        mlp = 3 * h * self.intermediate_size
        layer = attention + mlp + 2 * h  # two RMSNorms
        embeddings = vocab_size * h * (1 if self.tie_word_embeddings else 2)
        return self.num_layers * layer + embeddings + h  # + final norm


MODEL_SIZES: dict[str, ModelSize] = {
    # ~0.25M parameters with the ~270-token char tokenizer: CPU unit tests in milliseconds.
    "tiny": ModelSize(hidden_size=64, num_layers=4, num_heads=4, num_kv_heads=2, intermediate_size=256,
                      max_position_embeddings=4096, rope_theta=10_000.0),
    # ~20M parameters with an 8000-token BPE (17.3M without embeddings): CPU smoke runs that learn.
    "small": ModelSize(hidden_size=384, num_layers=8, num_heads=6, num_kv_heads=2, intermediate_size=1536,
                       max_position_embeddings=4096),
    # The real Qwen2.5-0.5B shape (494M parameters), random weights: GPU throughput benchmarks.
    "qwen2.5-0.5b": ModelSize(hidden_size=896, num_layers=24, num_heads=14, num_kv_heads=2,
                              intermediate_size=4864, max_position_embeddings=32768, vocab_size=151936),
}


def _resolve_size(size: str | ModelSize) -> ModelSize:
    if isinstance(size, ModelSize):
        return size
    if size not in MODEL_SIZES:
        raise ValueError(f"Unknown model size {size!r}: use one of {sorted(MODEL_SIZES)} or a ModelSize")
    return MODEL_SIZES[size]


def qwen2_config(tokenizer: PreTrainedTokenizerBase, size: str | ModelSize = "tiny") -> Qwen2Config:
    """The ``Qwen2Config`` of a toy model for ``tokenizer`` (special-token ids taken from it)."""
    shape = _resolve_size(size)
    pad_id = tokenizer.pad_token_id
    eos_id = tokenizer.eos_token_id
    bos_id = tokenizer.bos_token_id if tokenizer.bos_token_id is not None else pad_id  # Qwen: <|endoftext|>
    return Qwen2Config(
        vocab_size=shape.resolved_vocab_size(len(tokenizer)),
        hidden_size=shape.hidden_size,
        intermediate_size=shape.intermediate_size,
        num_hidden_layers=shape.num_layers,
        num_attention_heads=shape.num_heads,
        num_key_value_heads=shape.num_kv_heads,
        max_position_embeddings=shape.max_position_embeddings,
        rms_norm_eps=shape.rms_norm_eps,
        rope_parameters={"rope_type": "default", "rope_theta": shape.rope_theta},
        tie_word_embeddings=shape.tie_word_embeddings,
        pad_token_id=pad_id,
        bos_token_id=bos_id,
        eos_token_id=eos_id,
    )


def build_causal_lm(
    tokenizer: PreTrainedTokenizerBase,
    size: str | ModelSize = "tiny",
    seed: int = 0,
    dtype: torch.dtype = torch.float32,
) -> PreTrainedModel:
    """A randomly initialised ``Qwen2ForCausalLM`` for ``tokenizer`` (on CPU, in eval mode).

    The weights depend only on ``size``, the vocabulary size and ``seed`` (initialised in float32, then
    cast to ``dtype``); the global RNG state is left untouched.
    """
    config = qwen2_config(tokenizer, size)
    config._attn_implementation = "sdpa"
    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(seed)
        model = Qwen2ForCausalLM(config)
    model.to(dtype=dtype)
    generation_config = model.generation_config
    generation_config.pad_token_id = config.pad_token_id
    generation_config.bos_token_id = config.bos_token_id
    generation_config.eos_token_id = config.eos_token_id
    return model.eval()


def save_model_and_tokenizer(
    model: PreTrainedModel, tokenizer: PreTrainedTokenizerBase, folder: str | Path
) -> Path:
    """``save_pretrained`` both into ``folder`` (created if needed): a hub-style model folder."""
    folder = Path(folder)
    folder.mkdir(parents=True, exist_ok=True)
    model.save_pretrained(folder)
    tokenizer.save_pretrained(folder)
    return folder


__all__ = [
    "MODEL_SIZES",
    "ModelSize",
    "build_causal_lm",
    "qwen2_config",
    "save_model_and_tokenizer",
]
