"""Tiny tokenizers and Qwen2 models built offline, saved and loaded exactly like hub checkpoints."""

from rlt.toy.models import (
    MODEL_SIZES,
    ModelSize,
    build_causal_lm,
    qwen2_config,
    save_model_and_tokenizer,
)
from rlt.toy.tokenizer import (
    CHATML_TEMPLATE,
    FORMAT_TAGS,
    SPECIAL_TOKENS,
    build_bpe_tokenizer,
    build_char_tokenizer,
)

__all__ = [
    "CHATML_TEMPLATE",
    "FORMAT_TAGS",
    "MODEL_SIZES",
    "SPECIAL_TOKENS",
    "ModelSize",
    "build_bpe_tokenizer",
    "build_causal_lm",
    "build_char_tokenizer",
    "qwen2_config",
    "save_model_and_tokenizer",
]
