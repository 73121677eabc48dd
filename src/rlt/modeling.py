"""Loading models and tokenizers, the same way for a hub name and a local folder.

The toy world saves its tiny models with ``save_pretrained``, so they go through exactly this code
path too: nothing here knows whether a model is toy or real.
"""

from __future__ import annotations

import importlib.util
from typing import Literal

import torch
from transformers import AutoModelForCausalLM, AutoTokenizer, PreTrainedModel, PreTrainedTokenizerBase

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
    """What the training recipes hand TRL to load the trained model: the attention kernel, unless set.

    The dtype stays TRL's (fp32 weights, bf16 autocast with ``--bf16``): pure bf16 weights would round
    away updates as small as the paper's learning rate of 1e-6.
    """
    return {"attn_implementation": default_attention(default_device()), **(given or {})}


def load_tokenizer(name_or_path: str) -> PreTrainedTokenizerBase:
    tokenizer = AutoTokenizer.from_pretrained(name_or_path)
    if tokenizer.pad_token is None:
        tokenizer.pad_token = tokenizer.eos_token
    return tokenizer


def load_causal_lm(
    name_or_path: str,
    dtype: DType = "auto",
    device: torch.device | str | None = None,
    frozen: bool = False,
) -> PreTrainedModel:
    """A causal LM on ``device``; ``frozen`` puts it in eval mode with gradients off (a judge model)."""
    device = torch.device(device) if device is not None else default_device()
    model = AutoModelForCausalLM.from_pretrained(
        name_or_path, dtype=resolve_dtype(dtype, device), attn_implementation=default_attention(device)
    ).to(device)
    if frozen:
        model.eval().requires_grad_(False)
    return model
