"""Loading models and tokenizers, the same way for a hub name and a local folder.

The toy world saves its tiny models with ``save_pretrained``, so they go through exactly this code
path too: nothing here knows whether a model is toy or real. A name that cannot load (a missing
folder, an unknown hub model) is a :class:`~rlt.errors.UserError` naming its ``role`` (teacher,
student, ...), found before any hub call where it can be (:mod:`rlt.sources`).
"""

from __future__ import annotations

import importlib.util
from collections.abc import Iterator
from contextlib import contextmanager
from typing import Literal

import torch
from safetensors import SafetensorError
from transformers import (
    AutoConfig,
    AutoModelForCausalLM,
    AutoTokenizer,
    PretrainedConfig,
    PreTrainedModel,
    PreTrainedTokenizerBase,
)

from rlt.errors import UserError
from rlt.sources import check_model_source

DType = Literal["auto", "float32", "bfloat16", "float16"]


def default_device() -> torch.device:
    return torch.device("cuda" if torch.cuda.is_available() else "cpu")


def resolve_dtype(dtype: DType, device: torch.device) -> torch.dtype:
    """``auto``: bf16 on GPUs that support it, fp32 elsewhere (CPU bf16 is slow and imprecise)."""
    if dtype != "auto":
        return getattr(torch, dtype)
    if device.type == "cuda" and torch.cuda.is_bf16_supported():
        return torch.bfloat16
    return torch.float32


def default_attention(device: torch.device) -> str:
    """FlashAttention-2 on GPUs where it is installed, else PyTorch's SDPA."""
    if device.type == "cuda" and importlib.util.find_spec("flash_attn") is not None:
        return "flash_attention_2"
    return "sdpa"


def model_init_kwargs(given: dict | None) -> dict:
    """What the training commands hand TRL to load the trained model: the attention kernel, unless set.

    The dtype stays TRL's (fp32 weights, bf16 autocast with ``--bf16``): pure bf16 weights would round
    away updates as small as the paper's learning rate of 1e-6.
    """
    return {"attn_implementation": default_attention(default_device()), **(given or {})}


@contextmanager
def _loading(name_or_path: str, role: str) -> Iterator[None]:
    """A model the hub does not know, or a folder transformers cannot read, is the user's mistake."""
    try:
        yield
    except (OSError, SafetensorError) as error:
        raise UserError(f"{role} {name_or_path}: {error}") from error


def context_length(config: PretrainedConfig) -> int | None:
    """The longest sequence a model takes (its position embeddings), if its config says."""
    return getattr(config.get_text_config(), "max_position_embeddings", None)


def load_context_length(name_or_path: str, role: str = "model") -> int | None:
    """:func:`context_length` read from the model's config alone, before any weights load."""
    check_model_source(name_or_path, role)
    with _loading(name_or_path, role):
        return context_length(AutoConfig.from_pretrained(name_or_path))


def load_tokenizer(name_or_path: str, role: str = "model") -> PreTrainedTokenizerBase:
    check_model_source(name_or_path, role)
    with _loading(name_or_path, role):
        tokenizer = AutoTokenizer.from_pretrained(name_or_path)
    if tokenizer.pad_token is None:
        tokenizer.pad_token = tokenizer.eos_token
    return tokenizer


def load_causal_lm(
    name_or_path: str,
    dtype: DType = "auto",
    device: torch.device | str | None = None,
    frozen: bool = False,
    role: str = "model",
) -> PreTrainedModel:
    """A causal LM on ``device``; ``frozen`` puts it in eval mode with gradients off (a judge model)."""
    device = torch.device(device) if device is not None else default_device()
    check_model_source(name_or_path, role)
    with _loading(name_or_path, role):
        model = AutoModelForCausalLM.from_pretrained(
            name_or_path, dtype=resolve_dtype(dtype, device), attn_implementation=default_attention(device)
        ).to(device)
    if frozen:
        model.eval().requires_grad_(False)
    return model
