"""Batched generation: padding correctness against a plain loop, seeding, ordering, stopping, chat prompts."""

from __future__ import annotations

import copy
import sys

import pytest
import torch

from rlt.formats import FormatConfig, SequenceBuilder
from rlt.generation import Generation, SamplingConfig, VLLMConfig, VLLMEngine, generate

# Different lengths, so that a batch holds left padding.
PROMPTS = [
    "<|im_start|>user\nWhat is 12 plus 30?<|im_end|>\n<|im_start|>assistant\n",
    "The answer is",
    "<|im_start|>user\nNatalia sold clips to 48 of her friends in April, and then she sold half as many.<|im_end|>\n",
]


def reference_greedy(model, tokenizer, prompt: str, max_new_tokens: int, stop_ids: set[int]) -> tuple[list[int], bool]:
    """Argmax one token at a time over the full, unpadded sequence (no cache)."""
    ids = tokenizer.encode(prompt, add_special_tokens=False)
    new: list[int] = []
    with torch.no_grad():
        for _ in range(max_new_tokens):
            logits = model(torch.tensor([ids + new])).logits[0, -1]
            new.append(int(logits.argmax()))
            if new[-1] in stop_ids:
                return new, True
    return new, False


def greedy(max_new_tokens: int = 8, **kwargs) -> SamplingConfig:
    return SamplingConfig(max_new_tokens=max_new_tokens, temperature=0.0, **kwargs)


def test_greedy_batched_equals_the_plain_loop(teacher, bpe_tokenizer):
    generations = generate(teacher, bpe_tokenizer, PROMPTS, greedy(batch_size=3))
    assert [(g.prompt_index, g.sample_index) for g in generations] == [(0, 0), (1, 0), (2, 0)]
    for generation, prompt in zip(generations, PROMPTS):
        expected, finished = reference_greedy(teacher, bpe_tokenizer, prompt, 8, {bpe_tokenizer.eos_token_id})
        if finished:
            expected = expected[:-1]
        assert generation.token_ids == expected
        assert generation.finished is finished
        assert generation.text == bpe_tokenizer.decode(expected, skip_special_tokens=False)
    # Batching does not change greedy results.
    assert generate(teacher, bpe_tokenizer, PROMPTS, greedy(batch_size=1)) == generations


def test_max_new_tokens_is_respected_and_not_finished(teacher, bpe_tokenizer):
    for generation, prompt in zip(generate(teacher, bpe_tokenizer, PROMPTS, greedy(5)), PROMPTS):
        _, hit_eos = reference_greedy(teacher, bpe_tokenizer, prompt, 5, {bpe_tokenizer.eos_token_id})
        assert not hit_eos  # the premise of this test
        assert len(generation.token_ids) == 5 and generation.finished is False


def test_stop_token_ids_stop_and_are_kept(teacher, bpe_tokenizer):
    full = generate(teacher, bpe_tokenizer, PROMPTS, greedy(10))
    stop = full[0].token_ids[3]
    cut = full[0].token_ids.index(stop) + 1
    stopped = generate(teacher, bpe_tokenizer, PROMPTS, greedy(10), stop_token_ids=[stop])
    assert stopped[0].token_ids == full[0].token_ids[:cut] and stopped[0].finished
    assert stopped[0].text == bpe_tokenizer.decode(full[0].token_ids[:cut], skip_special_tokens=False)
    for before, after in zip(full[1:], stopped[1:]):  # other rows stop at their own first `stop`, if any
        ids = before.token_ids
        expected = ids[: ids.index(stop) + 1] if stop in ids else ids
        assert after.token_ids == expected and after.finished is (stop in before.token_ids)


def test_eos_stops_and_is_stripped(teacher, bpe_tokenizer):
    full = generate(teacher, bpe_tokenizer, PROMPTS, greedy(10))
    # A token that the greedy path emits after some other tokens, made the EOS.
    found = next(((r, t) for r, g in enumerate(full) for t in g.token_ids if g.token_ids.index(t) > 0), None)
    if found is None:  # conftest's synthetic BPE, where ../shared/data is missing, gives a random model such paths
        pytest.skip("every greedy path repeats one token: none to make the EOS (the BPE is learned from GSM8K "
                    "where ../shared/data is there)")
    row, eos = found
    tokenizer = copy.deepcopy(bpe_tokenizer)
    tokenizer.eos_token = tokenizer.convert_ids_to_tokens(eos)
    assert tokenizer.eos_token_id == eos
    stopped = generate(teacher, tokenizer, PROMPTS, greedy(10))
    for before, after in zip(full, stopped):
        if eos in before.token_ids:
            expected = before.token_ids[: before.token_ids.index(eos)]
            assert after.finished and after.token_ids == expected
            assert after.text == bpe_tokenizer.decode(expected, skip_special_tokens=False)
        else:  # shorter rows of the batch were padded: nothing of it shows
            assert not after.finished and after.token_ids == before.token_ids
    assert stopped[row].finished and stopped[row].token_ids


def test_sampling_is_reproducible_and_leaves_the_global_rng_alone(teacher, bpe_tokenizer):
    config = SamplingConfig(max_new_tokens=12, temperature=1.0, top_p=0.95, seed=3, batch_size=2)
    state = torch.get_rng_state()
    first = generate(teacher, bpe_tokenizer, PROMPTS, config)
    assert torch.equal(torch.get_rng_state(), state)
    assert generate(teacher, bpe_tokenizer, PROMPTS, config) == first
    other = generate(teacher, bpe_tokenizer, PROMPTS, SamplingConfig(**{**vars(config), "seed": 4}))
    assert [g.token_ids for g in other] != [g.token_ids for g in first]


def test_num_samples_order_and_diversity(teacher, bpe_tokenizer):
    config = SamplingConfig(max_new_tokens=6, temperature=1.0, num_samples=3, batch_size=2)
    generations = generate(teacher, bpe_tokenizer, PROMPTS, config)
    assert [(g.prompt_index, g.sample_index) for g in generations] == [(p, s) for p in range(3) for s in range(3)]
    assert len({tuple(g.token_ids) for g in generations[:3]}) > 1
    # Greedy: num_samples copies of the one greedy completion.
    copies = generate(teacher, bpe_tokenizer, PROMPTS[:2], greedy(6, num_samples=2))
    assert [(g.prompt_index, g.sample_index) for g in copies] == [(0, 0), (0, 1), (1, 0), (1, 1)]
    assert copies[0].token_ids == copies[1].token_ids and copies[2].token_ids == copies[3].token_ids
    assert copies[0].token_ids is not copies[1].token_ids


def test_on_batch_sees_every_batch_in_order(teacher, bpe_tokenizer):
    prompts = [*PROMPTS, "Hi", "What is 2 plus 2?"]
    batches: list[list[Generation]] = []
    generations = generate(teacher, bpe_tokenizer, prompts, greedy(4, batch_size=2, num_samples=2),
                           on_batch=batches.append)
    assert [len(b) for b in batches] == [4, 4, 2]
    for batch in batches:
        keys = [(g.prompt_index, g.sample_index) for g in batch]
        assert keys == sorted(keys)
    flat = sorted((g for b in batches for g in b), key=lambda g: (g.prompt_index, g.sample_index))
    assert flat == generations
    lengths = [len(bpe_tokenizer.encode(p, add_special_tokens=False)) for p in prompts]
    assert lengths.index(max(lengths)) in {g.prompt_index for g in batches[0]}  # longest first


def test_tokenizer_and_model_state_restored(teacher, bpe_tokenizer):
    side, model_config = bpe_tokenizer.padding_side, teacher.generation_config
    bpe_tokenizer.padding_side = "right"
    teacher.train()
    try:
        generate(teacher, bpe_tokenizer, PROMPTS, greedy(2))
        assert bpe_tokenizer.padding_side == "right"
        assert teacher.training
        assert teacher.generation_config is model_config
    finally:
        bpe_tokenizer.padding_side = side
        teacher.eval()


def test_edge_cases(teacher, bpe_tokenizer, monkeypatch):
    monkeypatch.setattr("rlt.generation.vllm_installed", lambda: True)  # wherever the tests run
    assert generate(teacher, bpe_tokenizer, [], greedy()) == []
    with pytest.raises(ValueError, match="Prompt 1 is empty"):
        generate(teacher, bpe_tokenizer, ["a", ""], greedy())
    with pytest.raises(ValueError, match="VLLMEngine"):
        generate(teacher, bpe_tokenizer, PROMPTS, SamplingConfig(backend="vllm"))


@pytest.mark.parametrize("kwargs", [
    {"temperature": -0.1}, {"temperature": float("nan")}, {"top_p": 0.0}, {"top_p": 1.5},
    {"max_new_tokens": 0}, {"num_samples": -1}, {"batch_size": 0}, {"batch_size": 2.5}, {"backend": "sglang"},
])
def test_sampling_config_validation(kwargs):
    with pytest.raises(ValueError):
        SamplingConfig(**kwargs)


def test_sampling_config_parses_from_the_command_line(monkeypatch):
    from rlt.commands.parsing import parse_command

    monkeypatch.setattr("rlt.generation.vllm_installed", lambda: True)  # wherever the tests run
    (config,) = parse_command(["--temperature", "0", "--num_samples", "4", "--backend", "vllm"],
                              [SamplingConfig], "test", "test")
    assert (config.temperature, config.num_samples, config.backend, config.top_p) == (0.0, 4, "vllm", 1.0)
    assert config.greedy


def test_student_prompts_open_the_assistant_turn(bpe_tokenizer):
    fmt = FormatConfig()
    with_system = SequenceBuilder(bpe_tokenizer, fmt).student_prompt("What is 2 plus 3?")
    without = SequenceBuilder(bpe_tokenizer, FormatConfig(student_system_prompt="")).student_prompt("What is 2 plus 3?")
    assert with_system == f"<|im_start|>system\n{fmt.student_system_prompt}<|im_end|>\n" + without
    assert without == "<|im_start|>user\nWhat is 2 plus 3?<|im_end|>\n<|im_start|>assistant\n"


def test_vllm_missing_gives_the_install_hint(monkeypatch):
    monkeypatch.setitem(sys.modules, "vllm", None)
    with pytest.raises(ImportError, match=r"pip install 'rlt\[vllm\]'"):
        VLLMEngine("some/model")


def test_vllm_settings_become_the_engine_arguments(monkeypatch):
    config = VLLMConfig(vllm_tensor_parallel_size=2, vllm_kv_cache_gib=0.5, vllm_enforce_eager=True,
                        vllm_max_model_length=2048)
    assert config.engine_kwargs() == {"tensor_parallel_size": 2, "gpu_memory_utilization": 0.9,
                                      "max_model_len": 2048, "enforce_eager": True, "kv_cache_memory_bytes": 2**29}
    monkeypatch.setattr("torch.cuda.is_available", lambda: False)
    assert VLLMConfig().engine_kwargs()["kv_cache_memory_bytes"] == 2**30  # a CPU machine: 1 GiB, logged
    with pytest.raises(ValueError, match="vllm_save_every must be at least 1"):
        VLLMConfig(vllm_save_every=0)

