"""Tiny tokenizers built offline, saved and reloaded exactly like a hub tokenizer.

Both tokenizers are **byte-level BPE tokenizers with Qwen2's exact pipeline** (NFC normaliser, Qwen2's
split regex, byte-level pre-tokenizer and decoder, no ``unk`` token). This is deliberate: a folder
whose ``config.json`` says ``model_type: qwen2`` is reloaded by ``AutoTokenizer`` through
``Qwen2Tokenizer`` (transformers 5 ignores the saved ``tokenizer_class`` for Qwen2), and that class
rebuilds the normaliser, pre-tokenizer, decoder and BPE model from the saved vocabulary and merges.
A tokenizer with any other pipeline (e.g. a WordLevel character tokenizer) silently changes on
reload: spaces and newlines vanish. Ours already *is* what ``Qwen2Tokenizer`` rebuilds, so the ids
are identical before and after a save/reload, with or without a ``config.json`` next to it.

* :func:`build_char_tokenizer`: one token per byte, so every ASCII character (digits, letters,
  punctuation, space, newline, ...) is exactly one token, plus one token for each extra character;
  the format tags of both styles and the chat tokens are single added tokens. No character is ever
  unknown: any other character is encoded as its UTF-8 bytes (an ``<unk>`` token cannot survive a
  Qwen2 reload, which has no unknown token and would drop the character silently).
* :func:`build_bpe_tokenizer`: a byte-level BPE trained locally where the format tags are ordinary
  text, so they merge with their neighbours (``.<|``, ``|>`` + newlines), as in Qwen's vocabulary.
"""

from __future__ import annotations

import json
from collections.abc import Iterable

from tokenizers import AddedToken, Regex, Tokenizer, decoders, models, normalizers, pre_tokenizers, trainers
from transformers import PreTrainedTokenizerFast

from rlt.formats import EXPLANATION, SOLUTION, TAG_STYLES, THOUGHT, FormatConfig

ENDOFTEXT, IM_START, IM_END = "<|endoftext|>", "<|im_start|>", "<|im_end|>"
SPECIAL_TOKENS: tuple[str, ...] = (ENDOFTEXT, IM_START, IM_END)

# The opening and closing tags of every section in both tag styles (Stratos and R1), 12 strings.
FORMAT_TAGS: tuple[str, ...] = tuple(
    tag
    for style in TAG_STYLES.values()
    for section in (THOUGHT, SOLUTION, EXPLANATION)
    for tag in (style.begin(section), style.end(section))
)

DEFAULT_MODEL_MAX_LENGTH = 4096

# Qwen2's pre-tokenisation regex (the one ``Qwen2Tokenizer`` installs on load): contractions, letter
# runs with one leading non-letter, single digits, punctuation runs with trailing newlines, spaces.
QWEN2_SPLIT_REGEX = (
    r"""(?i:'s|'t|'re|'ve|'m|'ll|'d)|[^\r\n\p{L}\p{N}]?\p{L}+|\p{N}| ?[^\s\p{L}\p{N}]+[\r\n]*"""
    r"""|\s*[\r\n]+|\s+(?!\S)|\s+"""
)

# ChatML as in Qwen2.5 (without its default system prompt), with the assistant's content and its
# closing <|im_end|> inside {% generation %}, so that TRL's assistant_only_loss works on toy models for
# whoever trains on the distilled messages (TRL's format) with TRL directly (rlt's own records mask by token ids).
# Content is emitted verbatim (no strip), which `continue_final_message=True` relies on.
CHATML_TEMPLATE = (
    "{%- for message in messages %}"
    "{%- if message['role'] == 'assistant' %}"
    "{{- '<|im_start|>assistant\\n' }}"
    "{%- generation %}"
    "{{- message['content'] + '<|im_end|>' }}"
    "{%- endgeneration %}"
    "{{- '\\n' }}"
    "{%- else %}"
    "{{- '<|im_start|>' + message['role'] + '\\n' + message['content'] + '<|im_end|>\\n' }}"
    "{%- endif %}"
    "{%- endfor %}"
    "{%- if add_generation_prompt %}"
    "{{- '<|im_start|>assistant\\n' }}"
    "{%- endif %}"
)


def _bytes_to_unicode() -> dict[int, str]:
    """GPT-2's byte → printable character map (the alphabet of byte-level BPE)."""
    printable = [*range(ord("!"), ord("~") + 1), *range(ord("¡"), ord("¬") + 1),
                 *range(ord("®"), ord("ÿ") + 1)]
    chars = list(printable)
    shift = 0
    for byte in range(256):
        if byte not in printable:
            printable.append(byte)
            chars.append(256 + shift)
            shift += 1
    return {byte: chr(char) for byte, char in zip(printable, chars, strict=True)}


BYTE_TO_UNICODE: dict[int, str] = _bytes_to_unicode()


def _byte_symbols(text: str) -> list[str]:
    return [BYTE_TO_UNICODE[b] for b in text.encode("utf-8")]


def _qwen2_backend(vocab: dict[str, int], merges: list[tuple[str, str]]) -> Tokenizer:
    """A backend identical to the one ``Qwen2Tokenizer`` builds from ``vocab`` and ``merges``."""
    backend = Tokenizer(
        models.BPE(
            vocab=vocab, merges=merges, dropout=None, unk_token=None, continuing_subword_prefix="",
            end_of_word_suffix="", fuse_unk=False, byte_fallback=False,
        )
    )
    _set_qwen2_pipeline(backend)
    return backend


def _set_qwen2_pipeline(backend: Tokenizer) -> None:
    backend.normalizer = normalizers.NFC()
    backend.pre_tokenizer = pre_tokenizers.Sequence(
        [
            pre_tokenizers.Split(Regex(QWEN2_SPLIT_REGEX), behavior="isolated", invert=False),
            pre_tokenizers.ByteLevel(add_prefix_space=False, use_regex=False),
        ]
    )
    backend.decoder = decoders.ByteLevel()


def _wrap(backend: Tokenizer, tags_as_tokens: bool, model_max_length: int) -> PreTrainedTokenizerFast:
    backend.add_special_tokens([AddedToken(t, special=True, normalized=False) for t in SPECIAL_TOKENS])
    if tags_as_tokens:
        backend.add_tokens([AddedToken(t, special=False, normalized=False) for t in (*FORMAT_TAGS, *ROLE_HEADERS)])
    tokenizer = PreTrainedTokenizerFast(
        tokenizer_object=backend,
        eos_token=IM_END,
        pad_token=ENDOFTEXT,
        model_max_length=model_max_length,
        clean_up_tokenization_spaces=False,
        chat_template=CHATML_TEMPLATE,
    )
    return tokenizer


# ChatML role headers as single tokens in the character tokenizer, as any BPE vocabulary has them:
# they are in every training sequence, and a character each would make toy SFT a third slower.
ROLE_HEADERS = ("system\n", "user\n", "assistant\n")


def build_char_tokenizer(
    extra_chars: str = "", *, model_max_length: int = DEFAULT_MODEL_MAX_LENGTH
) -> PreTrainedTokenizerFast:
    """A character-level tokenizer: one id per ASCII character, per extra character and per tag.

    Ids ``0..255`` are the bytes (``id == ord(c)`` for ASCII), then one id per non-ASCII character of
    ``extra_chars``, then ``<|endoftext|>`` (padding), ``<|im_start|>``, ``<|im_end|>`` (end of turn) and
    the twelve format tags of both styles (:data:`FORMAT_TAGS`) and the ChatML role headers
    (:data:`ROLE_HEADERS`), each a single added token. Decoding
    gives back the exact (NFC-normalised) text.
    """
    vocab = {symbol: byte for byte, symbol in sorted(BYTE_TO_UNICODE.items())}
    merges: list[tuple[str, str]] = []
    for char in dict.fromkeys(extra_chars):  # unique, in order
        symbols = _byte_symbols(char)
        prefix = symbols[0]
        for symbol in symbols[1:]:  # chain the bytes of a multi-byte character into one token
            merged = prefix + symbol
            if merged not in vocab:
                vocab[merged] = len(vocab)
                merges.append((prefix, symbol))
            prefix = merged
    return _wrap(_qwen2_backend(vocab, merges), tags_as_tokens=True, model_max_length=model_max_length)


def _tagged_samples(texts: list[str]) -> list[str]:
    """Texts in the RLT formats (both tag styles), built from the corpus so tags meet real punctuation."""
    samples: list[str] = []
    formats = [FormatConfig(tag_format=name) for name in sorted(TAG_STYLES)]
    for fmt in formats:
        samples += [fmt.teacher_system_prompt, fmt.student_system_prompt]
    for i, text in enumerate(texts):
        fmt = formats[i % len(formats)]
        other = texts[(i + 1) % len(texts)]
        samples.append(fmt.teacher_answer(solution=other, explanation=text))
        samples.append(fmt.student_answer(explanation=text, solution=other))
    return samples


def build_bpe_tokenizer(
    corpus: Iterable[str], vocab_size: int = 8000, *, model_max_length: int = DEFAULT_MODEL_MAX_LENGTH
) -> PreTrainedTokenizerFast:
    """A byte-level BPE (Qwen2's pipeline) trained on ``corpus`` plus the same texts in the RLT formats.

    ``<|endoftext|>``, ``<|im_start|>`` and ``<|im_end|>`` are special tokens; the format tags are
    ordinary text, so tokens such as ``.<|`` or ``|>`` + ``\\n\\n`` exist and tags are several tokens.
    ``len(tokenizer) <= vocab_size`` (equal unless the corpus is too small to learn that many merges).
    The result depends only on the corpus and ``vocab_size``.
    """
    texts = [text for text in corpus if text]
    if not texts:
        raise ValueError("build_bpe_tokenizer needs a non-empty corpus")
    backend = Tokenizer(models.BPE(unk_token=None, fuse_unk=False, byte_fallback=False))
    _set_qwen2_pipeline(backend)
    trainer = trainers.BpeTrainer(
        vocab_size=vocab_size - len(SPECIAL_TOKENS),
        min_frequency=2,
        show_progress=False,
        initial_alphabet=pre_tokenizers.ByteLevel.alphabet(),
        special_tokens=[],
    )
    backend.train_from_iterator(texts + _tagged_samples(texts), trainer=trainer)
    # Re-create the model from its vocabulary and merges so that every BPE option is exactly the one
    # Qwen2Tokenizer uses when it rebuilds this tokenizer from a saved folder.


    state = json.loads(backend.to_str())["model"]
    vocab = state["vocab"]
    merges = [tuple(m.split(" ")) if isinstance(m, str) else tuple(m) for m in state["merges"]]
    return _wrap(_qwen2_backend(vocab, merges), tags_as_tokens=False, model_max_length=model_max_length)


__all__ = [
    "BYTE_TO_UNICODE",
    "CHATML_TEMPLATE",
    "DEFAULT_MODEL_MAX_LENGTH",
    "ENDOFTEXT",
    "FORMAT_TAGS",
    "IM_END",
    "IM_START",
    "QWEN2_SPLIT_REGEX",
    "SPECIAL_TOKENS",
    "build_bpe_tokenizer",
    "build_char_tokenizer",
]
