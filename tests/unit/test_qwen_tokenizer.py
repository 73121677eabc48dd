"""The Qwen2.5 tokenizer fixture is Qwen2.5's tokenizer: tiktoken's ids on the same ranks, the published
Qwen2 tokenisations, Qwen2.5-7B-Instruct's special tokens and chat template, and a save/load round trip."""

from __future__ import annotations

import json
import unicodedata
from functools import cache
from pathlib import Path

import pytest
import tiktoken
from conftest import shared_data
from fixtures.qwen2_5 import ADDED_TOKENS, FIRST_ADDED_ID, mergeable_ranks, tokenizer_config
from hypothesis import given, settings
from hypothesis import strategies as st

from rlt.formats import FormatConfig
from rlt.toy.tokenizer import QWEN2_SPLIT_REGEX

REFERENCE = Path(__file__).resolve().parents[1] / "data" / "qwen2_reference_tokenisations.json"

HAND_MADE = [
    r"Let $f(x) = \frac{x^2+1}{\sqrt{x}}$; then $\int_0^{\infty} e^{-x^2}\,dx = \frac{\sqrt{\pi}}{2}$.",
    r"\begin{align*} a &= b \\ \boxed{\left( 3, \frac{\pi}{2} \right)} \end{align*}",
    "Ελληνικά, русский, العربية, עברית, हिन्दी, 日本語のテキスト, 한국어, ไทย, Tiếng Việt, ქართული",
    "emoji 🤗🚀 👩🏽‍🔬 🏳️‍🌈 ✅ flags 🇯🇵🇫🇷, symbols ≤ ≥ ≈ ∑ ∞ → ½ — “quotes”",
    "   leading spaces\t\ttabs\n\n\n\nnewlines \r\n crlf     trailing   ",
    "digits 1234567890 3.14159 -0.5e-10 1,000,000 007",
    "<|im_start|>user\nhi<|im_end|>\n<|endoftext|><tool_call>{}</tool_call><|fim_prefix|><|file_sep|>",
    "tags <|begin_of_thought|>\n\nthink.<|end_of_thought|>\n\n<|begin_of_solution|>42<|end_of_solution|>",
    "decomposed e\u0301 and composed é, ϓ \u03d2\u0301, ſ\u0307, Å vs A\u030a",
    "code: def f(x):\n    return x ** 2  # comment\n\tif x: print('it''s')",
]


def _real_texts(limit: int = 40) -> list[str]:
    """Questions, solutions and traces from MATH-500, GSM8K and Sky-T1 in ../shared/data (RLT_SHARED_DATA); the
    test is skipped, naming it, where one is missing."""
    texts = []
    sources = (("math500/test.jsonl", ("problem", "solution")), ("gsm8k/test.jsonl", ("question", "answer")),
               ("reasoning_traces_sky_t1", ("question", "code")))
    for relative, fields in sources:
        path = shared_data(relative)
        files = sorted(path.rglob("*.jsonl")) if path.is_dir() else [path]
        if not files:
            pytest.skip(f"no .jsonl files under {path}")
        for file in files:
            for line in file.read_text(encoding="utf-8").splitlines()[:limit]:
                row = json.loads(line)
                texts += [row[f][0] if isinstance(row[f], list) else row[f] for f in fields]
    return texts


@cache
def _tiktoken() -> tiktoken.Encoding:
    special = {content: FIRST_ADDED_ID + i for i, (content, _) in enumerate(ADDED_TOKENS)}
    return tiktoken.Encoding("qwen2.5", pat_str=QWEN2_SPLIT_REGEX, mergeable_ranks=mergeable_ranks(),
                             special_tokens=special)


def _tiktoken_ids(text: str) -> list[int]:
    """tiktoken has no normaliser; Qwen2's tokenizer applies NFC first."""
    return _tiktoken().encode(unicodedata.normalize("NFC", text), allowed_special="all")


def test_vocabulary_and_special_tokens_are_qwen2_5s(qwen_tokenizer):
    assert len(mergeable_ranks()) == 151643 and len(qwen_tokenizer) == 151665
    assert type(qwen_tokenizer).__name__ == "Qwen2Tokenizer"
    assert (qwen_tokenizer.eos_token, qwen_tokenizer.eos_token_id) == ("<|im_end|>", 151645)
    assert (qwen_tokenizer.pad_token, qwen_tokenizer.pad_token_id) == ("<|endoftext|>", 151643)
    assert qwen_tokenizer.bos_token is None and qwen_tokenizer.unk_token is None
    decoder = qwen_tokenizer.added_tokens_decoder
    assert [(decoder[FIRST_ADDED_ID + i].content, decoder[FIRST_ADDED_ID + i].special)
            for i in range(len(ADDED_TOKENS))] == list(ADDED_TOKENS)
    assert qwen_tokenizer("<|im_start|>hello<|im_end|>")["input_ids"] == [151644, 14990, 151645]


def test_ids_are_the_published_qwen2_tokenisations(qwen_tokenizer):
    cases = json.loads(REFERENCE.read_text(encoding="utf-8"))["cases"]
    assert len(cases) == 50
    for case in cases:
        assert qwen_tokenizer.encode(case["text"], add_special_tokens=False) == case["ids"], case["text"]


def test_ids_are_tiktokens_on_hand_made_texts(qwen_tokenizer):
    for text in HAND_MADE:
        assert qwen_tokenizer.encode(text, add_special_tokens=False) == _tiktoken_ids(text), text[:80]


def test_ids_are_tiktokens_on_real_texts(qwen_tokenizer):
    """Over 100,000 characters of real questions, solutions and reasoning traces (skipped without the shared data)."""
    corpus = _real_texts()
    for text in corpus:
        assert qwen_tokenizer.encode(text, add_special_tokens=False) == _tiktoken_ids(text), text[:80]
    assert sum(len(t) for t in corpus) > 100_000


@settings(max_examples=300, deadline=None)
@given(st.text(max_size=60) | st.lists(st.sampled_from([*HAND_MADE[4:7], "<|im_end|>", " ", "\n", "1"])).map("".join))
def test_ids_are_tiktokens_on_any_text(qwen_tokenizer, text):
    ids = qwen_tokenizer.encode(text, add_special_tokens=False)
    assert ids == _tiktoken_ids(text)
    assert qwen_tokenizer.decode(ids) == unicodedata.normalize("NFC", text)


def test_chat_template_is_qwen2_5s(qwen_tokenizer):
    chat = [{"role": "user", "content": "hello"}]
    assert qwen_tokenizer.apply_chat_template(chat, tokenize=False, add_generation_prompt=True) == (
        "<|im_start|>system\nYou are Qwen, created by Alibaba Cloud. You are a helpful assistant.<|im_end|>\n"
        "<|im_start|>user\nhello<|im_end|>\n<|im_start|>assistant\n")
    assert "{% generation %}" not in qwen_tokenizer.chat_template
    assert qwen_tokenizer.chat_template == tokenizer_config()["chat_template"]


def test_the_tags_are_plain_text_that_merges_with_its_neighbours(qwen_tokenizer):
    """What README and formats.py say of Qwen's vocabulary."""
    fmt = FormatConfig()
    pieces = qwen_tokenizer.convert_ids_to_tokens
    assert pieces(qwen_tokenizer.encode(fmt.begin_explanation)) == ["<", "|", "begin", "_of", "_ex", "planation",
                                                                    "|", ">"]
    assert pieces(qwen_tokenizer.encode("|>\n\n")) == ["|", ">ĊĊ"]
    assert pieces(qwen_tokenizer.encode("5.<|end")) == ["5", ".<", "|", "end"]


def test_save_and_load_give_the_same_tokenizer(qwen_tokenizer, tmp_path):
    from transformers import AutoTokenizer

    qwen_tokenizer.save_pretrained(tmp_path)
    again = AutoTokenizer.from_pretrained(tmp_path)
    assert again.get_vocab() == qwen_tokenizer.get_vocab() and again.chat_template == qwen_tokenizer.chat_template
    assert again.all_special_tokens == qwen_tokenizer.all_special_tokens
    assert (again.eos_token_id, again.pad_token_id) == (qwen_tokenizer.eos_token_id, qwen_tokenizer.pad_token_id)
    for text in HAND_MADE:
        assert again.encode(text) == qwen_tokenizer.encode(text)
