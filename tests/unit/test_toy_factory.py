"""rlt.toy: offline tokenizers and Qwen2 models that save and reload exactly like hub checkpoints."""

from __future__ import annotations

import json
import os
import string
from pathlib import Path

os.environ.setdefault("HF_HUB_OFFLINE", "1")

import pytest
import torch
from conftest import SHARED_DATA, shared_data
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from transformers import AutoTokenizer, Qwen2Config

from rlt.formats import R1, STRATOS, FormatConfig
from rlt.modeling import load_causal_lm, load_tokenizer
from rlt.toy import (
    FORMAT_TAGS,
    MODEL_SIZES,
    SPECIAL_TOKENS,
    ModelSize,
    build_bpe_tokenizer,
    build_causal_lm,
    build_char_tokenizer,
    save_model_and_tokenizer,
)

HYPOTHESIS = settings(max_examples=60, deadline=None, suppress_health_check=[HealthCheck.too_slow])
ASCII_CHARS = string.digits + string.ascii_letters + string.punctuation + " \n"
EXTRA_CHARS = "é×→∑"


def _corpus() -> list[str]:
    """GSM8K questions where the shared data is there, else a synthetic corpus: the tokenizer tests check
    properties that hold on either (they run, and mean the same, without the data)."""
    path = SHARED_DATA / "gsm8k" / "train.jsonl"
    if path.exists():
        with path.open(encoding="utf-8") as f:
            return [json.loads(line)["question"] for line in f][:4000]
    words = "apples Tom has 12 more than half of the total how many costs".split()
    return [" ".join(words[(i * k) % len(words)] for k in range(3, 15)) + ("?" if i % 2 else ".")
            for i in range(3000)]


@pytest.fixture(scope="module")
def char_tok():
    return build_char_tokenizer(EXTRA_CHARS)


@pytest.fixture(scope="module")
def bpe_tok():
    return build_bpe_tokenizer(_corpus(), vocab_size=8000)


def _reload_next_to_qwen2(tokenizer, folder: Path):
    """Save the tokenizer beside a qwen2 config.json (as in a model folder) and load it back."""
    tokenizer.save_pretrained(folder)
    Qwen2Config(vocab_size=len(tokenizer), hidden_size=32, intermediate_size=64, num_hidden_layers=1,
                num_attention_heads=2, num_key_value_heads=1).save_pretrained(folder)
    return AutoTokenizer.from_pretrained(folder)


@pytest.fixture(scope="module")
def char_reloaded(char_tok, tmp_path_factory):
    return _reload_next_to_qwen2(char_tok, tmp_path_factory.mktemp("char"))


@pytest.fixture(scope="module")
def bpe_reloaded(bpe_tok, tmp_path_factory):
    return _reload_next_to_qwen2(bpe_tok, tmp_path_factory.mktemp("bpe"))


def _token_spans(tokenizer, ids: list[int]) -> list[tuple[int, int]]:
    """Character span of each token in the decoded text (decoding prefixes)."""
    spans, start = [], 0
    for n in range(1, len(ids) + 1):
        end = len(tokenizer.decode(ids[:n], clean_up_tokenization_spaces=False))
        spans.append((start, end))
        start = end
    return spans


# Text made of the char tokenizer's vocabulary: its characters, the tags and the chat tokens.
vocab_text = st.lists(
    st.one_of(st.text(alphabet=ASCII_CHARS + EXTRA_CHARS, max_size=12),
              st.sampled_from(FORMAT_TAGS + SPECIAL_TOKENS)),
    max_size=10,
).map("".join)
# Any text (all of Unicode), tags, chat tokens and the separators they sit next to.
any_text = st.lists(
    st.one_of(st.text(max_size=16), st.sampled_from(FORMAT_TAGS + SPECIAL_TOKENS + (".", "\n\n", " ", "?"))),
    max_size=10,
).map("".join)


# Char tokenizer ----------------------------------------------------------------------------------


def test_char_tokenizer_tokens(char_tok):
    for token in FORMAT_TAGS + SPECIAL_TOKENS:
        assert len(char_tok.encode(token, add_special_tokens=False)) == 1, token
    for char in ASCII_CHARS + EXTRA_CHARS:
        assert len(char_tok.encode(char, add_special_tokens=False)) == 1, repr(char)
    assert len(set(char_tok.convert_tokens_to_ids(list(FORMAT_TAGS + SPECIAL_TOKENS)))) == 15
    assert char_tok.eos_token == "<|im_end|>" and char_tok.pad_token == "<|endoftext|>"
    assert char_tok.pad_token_id != char_tok.eos_token_id
    assert 256 < len(char_tok) < 300
    # Nothing is unknown: other characters fall back to their UTF-8 bytes.
    assert char_tok.decode(char_tok.encode("日本 ☃")) == "日本 ☃"
    # No BOS/EOS is added by default; tags are not special (kept by skip_special_tokens).
    assert char_tok.encode("ab") == char_tok.encode("ab", add_special_tokens=False)
    text = "x<|begin_of_thought|>y</solution><|im_end|>"
    kept = char_tok.decode(char_tok.encode(text), skip_special_tokens=True)
    assert kept == "x<|begin_of_thought|>y</solution>"


@HYPOTHESIS
@given(text=vocab_text)
def test_char_round_trip_and_reload(char_tok, char_reloaded, text):
    ids = char_tok.encode(text, add_special_tokens=False)
    assert char_tok.decode(ids) == text
    if not any(c in text for c in "<|>"):
        assert len(ids) == len(text)
    assert char_reloaded.encode(text, add_special_tokens=False) == ids
    assert char_reloaded.decode(ids) == text


# Chat template -------------------------------------------------------------------------------------


@pytest.mark.parametrize("which", ["char", "bpe"])
def test_chat_template(which, char_tok, bpe_tok):
    tok = char_tok if which == "char" else bpe_tok
    answer = "5.<|end_of_solution|>\n\n <b>ok</b>\n"
    messages = [
        {"role": "system", "content": "Be brief."},
        {"role": "user", "content": "What is 2+3?"},
        {"role": "assistant", "content": answer},
    ]
    rendered = tok.apply_chat_template(messages, tokenize=False)
    assert rendered == ("<|im_start|>system\nBe brief.<|im_end|>\n<|im_start|>user\nWhat is 2+3?<|im_end|>\n"
                        f"<|im_start|>assistant\n{answer}<|im_end|>\n")
    # No system message: nothing is injected.
    assert tok.apply_chat_template(messages[1:2], tokenize=False, add_generation_prompt=True) == (
        "<|im_start|>user\nWhat is 2+3?<|im_end|>\n<|im_start|>assistant\n")

    out = tok.apply_chat_template(messages, tokenize=True, return_dict=True,
                                  return_assistant_tokens_mask=True)
    ids, mask = out["input_ids"], out["assistant_masks"]
    assert ids == tok.encode(rendered, add_special_tokens=False)
    on = [i for i, m in enumerate(mask) if m]
    assert on == list(range(on[0], on[-1] + 1))  # one contiguous span
    assert tok.decode(ids[on[0]: on[-1] + 1]) == answer + "<|im_end|>"
    assert ids[on[-1]] == tok.eos_token_id
    assert tok.decode(ids[: on[0]]).endswith("<|im_start|>assistant\n")

    # continue_final_message: the rendering stops right after the final message's content.
    fmt = FormatConfig()
    teacher = tok.apply_chat_template(fmt.teacher_messages("Q?", "42."), tokenize=False,
                                      continue_final_message=True)
    assert teacher.endswith("<|im_start|>assistant\n<|begin_of_solution|>42.<|end_of_solution|>\n\n"
                            "<|begin_of_explanation|>")
    assert teacher.startswith("<|im_start|>system\n" + fmt.teacher_system_prompt + "<|im_end|>\n")


# BPE tokenizer -----------------------------------------------------------------------------------


def test_bpe_tags_are_text_and_merge_with_neighbours(bpe_tok):
    shared_data("gsm8k/train.jsonl")  # the synthetic corpus makes a vocabulary of ~760 tokens, not 8000
    assert len(bpe_tok) == 8000
    for token in SPECIAL_TOKENS:
        assert len(bpe_tok.encode(token, add_special_tokens=False)) == 1
    for tag in FORMAT_TAGS:
        assert len(bpe_tok.encode(tag, add_special_tokens=False)) > 1, tag
    straddling = set()
    for style in (STRATOS, R1):
        fmt = FormatConfig(tag_format=style.name)
        text = fmt.teacher_answer("The total is 12.", "So he has 12 apples.") + "\n\n" + fmt.student_answer(
            "First, add them.", "12.")
        ids = bpe_tok.encode(text, add_special_tokens=False)
        assert bpe_tok.decode(ids) == text
        tag_bounds = set()
        for tag in FORMAT_TAGS:
            start = text.find(tag)
            while start >= 0:
                tag_bounds |= {start, start + len(tag)}
                start = text.find(tag, start + 1)
        for (start, end), token_id in zip(_token_spans(bpe_tok, ids), ids, strict=True):
            if any(start < b < end for b in tag_bounds):
                straddling.add((style.name, bpe_tok.decode([token_id])))
    styles = {name for name, _ in straddling}
    assert styles == {"stratos", "r1"}, straddling
    # The merges the reward code has to cope with, as in Qwen's vocabulary.
    assert {".<|", "|>\n\n"} <= {piece for _, piece in straddling}, straddling


def test_bpe_is_deterministic(bpe_tok):
    again = build_bpe_tokenizer(_corpus(), vocab_size=8000)
    assert again.backend_tokenizer.to_str() == bpe_tok.backend_tokenizer.to_str()


@HYPOTHESIS
@given(text=any_text)
def test_bpe_reload_identity(bpe_tok, bpe_reloaded, text):
    ids = bpe_tok.encode(text, add_special_tokens=False)
    assert bpe_reloaded.encode(text, add_special_tokens=False) == ids
    assert bpe_reloaded.decode(ids) == bpe_tok.decode(ids)
    if text.isascii():
        assert bpe_tok.decode(ids) == text


@HYPOTHESIS
@given(text=any_text)
def test_char_reload_identity_any_text(char_tok, char_reloaded, text):
    ids = char_tok.encode(text, add_special_tokens=False)
    assert char_reloaded.encode(text, add_special_tokens=False) == ids
    assert char_reloaded.decode(ids) == char_tok.decode(ids)


def test_reload_without_model_config(bpe_tok, tmp_path):
    bpe_tok.save_pretrained(tmp_path)
    reloaded = AutoTokenizer.from_pretrained(tmp_path)
    text = "Sum: 3.<|end_of_explanation|>\n\n<solution>x</solution> é"
    assert reloaded.encode(text) == bpe_tok.encode(text)
    assert reloaded.chat_template == bpe_tok.chat_template
    assert (reloaded.eos_token, reloaded.pad_token) == ("<|im_end|>", "<|endoftext|>")


# Models ------------------------------------------------------------------------------------------


def _state(model):
    return {k: v.clone() for k, v in model.state_dict().items()}


def test_seeded_weights(char_tok):
    rng_before = torch.get_rng_state()
    a, b, c = (_state(build_causal_lm(char_tok, "tiny", seed=s)) for s in (0, 0, 1))
    assert torch.equal(torch.get_rng_state(), rng_before)  # the global RNG is untouched
    assert a.keys() == b.keys() == c.keys()
    assert all(torch.equal(a[k], b[k]) for k in a)
    assert any(not torch.equal(a[k], c[k]) for k in a)


def test_model_config_and_dtype(char_tok):
    model = build_causal_lm(char_tok, "tiny", dtype=torch.bfloat16)
    assert type(model).__name__ == "Qwen2ForCausalLM"
    assert all(p.dtype == torch.bfloat16 for p in model.parameters())
    cfg = model.config
    assert cfg.vocab_size == len(char_tok)
    assert (cfg.pad_token_id, cfg.eos_token_id) == (char_tok.pad_token_id, char_tok.eos_token_id)
    assert cfg._attn_implementation == "sdpa"
    assert model.generation_config.eos_token_id == char_tok.eos_token_id
    custom = ModelSize(hidden_size=32, num_layers=1, num_heads=2, num_kv_heads=1, intermediate_size=64,
                       max_position_embeddings=128, vocab_size=1000, tie_word_embeddings=False)
    assert build_causal_lm(char_tok, custom).config.vocab_size == 1000  # a preset may fix a larger vocab


def test_parameter_counts(char_tok):
    tiny = build_causal_lm(char_tok, "tiny")
    n_tiny = sum(p.numel() for p in tiny.parameters())
    assert n_tiny == MODEL_SIZES["tiny"].num_parameters(len(char_tok))
    assert 150_000 < n_tiny < 350_000

    class _Vocab8000:  # the "small" preset sized for an 8000-token BPE
        pad_token_id, eos_token_id, bos_token_id = 0, 1, None

        def __len__(self):
            return 8000

    small = build_causal_lm(_Vocab8000(), "small")
    n_small = sum(p.numel() for p in small.parameters())
    assert n_small == MODEL_SIZES["small"].num_parameters(8000)
    assert 15e6 < n_small < 25e6
    # The real Qwen2.5-0.5B count (tied 151936-row embedding), computed, not built.
    assert MODEL_SIZES["qwen2.5-0.5b"].num_parameters(151936) == 494_032_768


def test_save_load_identical(char_tok, tmp_path):
    model = build_causal_lm(char_tok, "tiny", seed=3)
    folder = save_model_and_tokenizer(model, char_tok, tmp_path / "toy")
    assert (folder / "config.json").exists() and (folder / "tokenizer.json").exists()
    loaded, tok = load_causal_lm(str(folder), "float32", "cpu"), load_tokenizer(str(folder))
    texts = ["<|im_start|>user\n2+2?<|im_end|>\n", "x<|begin_of_thought|>ab\n\nc"]
    assert [tok.encode(t) for t in texts] == [char_tok.encode(t) for t in texts]
    batch = char_tok(texts, padding=True, return_tensors="pt")
    with torch.no_grad():
        expected = model(**batch).logits
        got = loaded(**batch).logits
    assert torch.equal(expected, got)
    assert tok.apply_chat_template([{"role": "user", "content": "hi"}], tokenize=False) == (
        "<|im_start|>user\nhi<|im_end|>\n")
    bf16 = load_causal_lm(str(folder), "bfloat16", "cpu")
    assert next(bf16.parameters()).dtype == torch.bfloat16
