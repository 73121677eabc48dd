"""The RLT reward against a plain float64 reference computed from full logits, term by term."""

from __future__ import annotations

import copy
import math

import pytest
import torch
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from rlt.formats import SequenceBuilder
from rlt.reward import RewardConfig, RLTReward, combine_terms

TEXT = st.text(alphabet=st.sampled_from(list("ab 12.|<>_\n=+x")), max_size=30)
SLOW_FIXTURES = settings(max_examples=12, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
TOLERANCE = 1e-5


@pytest.fixture(scope="module")
def reference_models(teacher, student):
    return copy.deepcopy(teacher).double(), copy.deepcopy(student).double()


def _full_log_probs(model, ids: list[int], temperature: float) -> torch.Tensor:
    """log softmax(logits / τ) of every next token of one unpadded sequence, float64. → [T-1, V]"""
    logits = model(torch.tensor([ids])).logits[0].double()
    return torch.log_softmax(logits[:-1] / temperature, dim=-1)


def reference_reward(builder, models, question, solution, explanation_ids, found_end_tag, config):
    """The spec's formula, written out plainly: full logits, float64, one sequence at a time."""
    teacher, student = models
    student_seq = builder.student_sequence(question, explanation_ids, solution)
    teacher_seq = builder.teacher_sequence(builder.teacher_prompt_ids(question, solution), explanation_ids)
    s_logps = _full_log_probs(student, student_seq.ids, config.student_temperature)
    t_logps = _full_log_probs(teacher, teacher_seq.ids, config.at_teacher_temperature().teacher_temperature)
    ell = [s_logps[k - 1, student_seq.ids[k]].item() for k in range(*_bounds(student_seq.solution))]
    delta = [
        t_logps[kt - 1, teacher_seq.ids[kt]].item() - s_logps[ks - 1, student_seq.ids[ks]].item()
        for kt, ks in zip(range(*_bounds(teacher_seq.explanation)), range(*_bounds(student_seq.explanation)))
    ]

    def reduce(values, mean_coef, min_coef, max_coef):
        if not values:
            return 0.0
        return mean_coef * sum(values) / len(values) + min_coef * min(values) + max_coef * max(values)

    r_ss = reduce(ell, config.solution_mean_coef, config.solution_min_coef, config.solution_max_coef)
    r_kl = reduce(delta, config.kl_mean_coef, config.kl_min_coef, config.kl_max_coef)
    penalty = 0.0 if found_end_tag else config.missing_tag_penalty
    return {"r_ss": r_ss, "r_kl": r_kl, "reward": r_ss - r_kl + penalty}


def _bounds(span):
    return span.start, span.end


def _assert_close(terms, expected):
    for name, value in expected.items():
        assert math.isclose(getattr(terms, name), value, abs_tol=TOLERANCE), (name, getattr(terms, name), value)


@SLOW_FIXTURES
@given(questions=st.lists(TEXT, min_size=1, max_size=4), solution=TEXT.filter(bool), explanation=TEXT)
def test_reward_matches_float64_reference(bpe_tokenizer, teacher, student, reference_models,
                                          questions, solution, explanation):
    config = RewardConfig(solution_max_coef=0.1, kl_min_coef=0.2, max_batch_tokens=300)
    reward = RLTReward(teacher, student, bpe_tokenizer, config)
    explanations = [explanation + q[:3] for q in questions]  # distinct lengths: padding inside batches
    terms = reward.score_texts(questions, [solution] * len(questions), explanations)
    builder = SequenceBuilder(bpe_tokenizer)
    for q, e, t in zip(questions, explanations, terms):
        _assert_close(t, reference_reward(builder, reference_models, q, solution, builder.encode(e), True, config))


@SLOW_FIXTURES
@given(explanation=TEXT, finished=st.booleans(), tail=st.sampled_from(["", "\n\n", " ok"]))
def test_completion_reward_matches_reference(bpe_tokenizer, teacher, student, reference_models,
                                             explanation, finished, tail):
    builder = SequenceBuilder(bpe_tokenizer)
    text = explanation + (builder.fmt.end_explanation if finished else "") + tail
    completion = builder.encode(text) + [bpe_tokenizer.eos_token_id]
    config = RewardConfig()
    [terms] = RLTReward(teacher, student, bpe_tokenizer, config).score_completions(["Q: 3+4?"], ["7"], [completion])
    split = builder.split_completion(completion)
    assert terms.found_end_tag == finished == split.found_end_tag
    expected = reference_reward(builder, reference_models, "Q: 3+4?", "7", split.explanation_ids, finished, config)
    _assert_close(terms, expected)
    assert terms.missing_tag_penalty == (0.0 if finished else -1.0)


def test_completions_of_one_prompt_share_its_prefix_and_match_reference(bpe_tokenizer, teacher, student,
                                                                        reference_models, monkeypatch):
    """GRPO's case: many completions of one prompt. The prompt runs once; every reward stays exact."""
    from rlt import logprobs

    prefill_calls = []
    original = logprobs.SharedPrefix.cache_for
    monkeypatch.setattr(logprobs.SharedPrefix, "cache_for",
                        lambda self, n: prefill_calls.append(self._cache is None) or original(self, n))
    builder = SequenceBuilder(bpe_tokenizer)
    explanations = ["", "1", "12+30=42.", "Add the tens: 10+30=40, then 2: 42.", "so\n\n42" * 3]
    config = RewardConfig(max_batch_tokens=40)  # several micro-batches reuse one prefix cache
    completions = [builder.encode(e + builder.fmt.end_explanation) for e in explanations]
    terms = RLTReward(teacher, student, bpe_tokenizer, config).score_completions(
        ["What is 12+30?"] * 5, ["42"] * 5, completions)
    for completion, t in zip(completions, terms):
        split = builder.split_completion(completion)
        _assert_close(t, reference_reward(builder, reference_models, "What is 12+30?", "42",
                                          split.explanation_ids, True, config))
    assert prefill_calls.count(True) == 2 and len(prefill_calls) > 2  # one prefill per model, reused


def test_batched_equals_one_at_a_time(bpe_tokenizer, teacher, student):
    questions = ["What is 12+30?", "2+2?", "A much longer question about apples and pears, 7*8?"]
    solutions = ["42", "4", "56"]
    explanations = ["12+30=42.", "", "Seven eights are fifty-six.\n\nSo 56."]
    reward = RLTReward(teacher, student, bpe_tokenizer, RewardConfig(max_batch_tokens=10_000))
    together = reward.score_texts(questions, solutions, explanations)
    alone = [reward.score_texts([q], [s], [e])[0] for q, s, e in zip(questions, solutions, explanations)]
    for a, b in zip(together, alone):
        assert a.reward == pytest.approx(b.reward, abs=1e-5)


def test_full_kl_estimator_matches_reference(bpe_tokenizer, teacher, student, reference_models):
    config = RewardConfig(kl_estimator="full", teacher_temperature=1.0, student_temperature=0.5)
    [terms] = RLTReward(teacher, student, bpe_tokenizer, config).score_texts(["Q?"], ["12"], ["a reason."])
    builder = SequenceBuilder(bpe_tokenizer)
    expl = builder.encode("a reason.")
    s_seq = builder.student_sequence("Q?", expl, "12")
    t_seq = builder.teacher_sequence(builder.teacher_prompt_ids("Q?", "12"), expl)
    t_logps = _full_log_probs(reference_models[0], t_seq.ids, 1.0)
    s_logps = _full_log_probs(reference_models[1], s_seq.ids, 0.5)
    kls = [
        (t_logps[kt - 1].exp() * (t_logps[kt - 1] - s_logps[ks - 1])).sum().item()
        for kt, ks in zip(range(*_bounds(t_seq.explanation)), range(*_bounds(s_seq.explanation)))
    ]
    assert min(kls) >= 0
    assert terms.kl_mean == pytest.approx(sum(kls) / len(kls), abs=TOLERANCE)
    assert terms.kl_max == pytest.approx(max(kls), abs=TOLERANCE)


def test_bf16_models_get_fp32_log_softmax(bpe_tokenizer, teacher, student):
    """With bf16 weights, our log-probs equal a float64 log-softmax of the same bf16 logits."""
    t16, s16 = copy.deepcopy(teacher).bfloat16(), copy.deepcopy(student).bfloat16()
    config = RewardConfig()
    [terms] = RLTReward(t16, s16, bpe_tokenizer, config).score_texts(["Q?"], ["12"], ["a reason."])
    builder = SequenceBuilder(bpe_tokenizer)
    expl = builder.encode("a reason.")
    s_seq = builder.student_sequence("Q?", expl, "12")
    with torch.no_grad():
        s_logps = _full_log_probs(s16, s_seq.ids, config.student_temperature)
    ell = [s_logps[k - 1, s_seq.ids[k]].item() for k in range(*_bounds(s_seq.solution))]
    assert terms.solution_log_prob_mean == pytest.approx(sum(ell) / len(ell), abs=1e-4)


def test_given_teacher_log_probs_replace_the_teacher_pass(bpe_tokenizer, teacher, student, monkeypatch):
    """What TRL computed already (the policy's log-probs at its temperature) is used as is."""
    builder = SequenceBuilder(bpe_tokenizer)
    config = RewardConfig(teacher_temperature=0.9)
    completions = [builder.encode(e + builder.fmt.end_explanation) + [bpe_tokenizer.eos_token_id]
                   for e in ("12+30=42.", "forty two")]
    reward = RLTReward(teacher, student, bpe_tokenizer, config)
    expected = reward.score_completions(["Q?", "Q?"], ["42", "42"], completions)
    prompt = list(builder.teacher_prompt_ids("Q?", "42"))
    given = []
    for ids in completions:  # the policy's log-probs of every completion token, right-padded like TRL's
        logps = torch.log_softmax(teacher(torch.tensor([prompt + ids])).logits[0, len(prompt) - 1:-1] / 0.9, -1)
        row = logps.gather(-1, torch.tensor(ids)[:, None]).squeeze(-1).detach()
        given.append(torch.cat([row, torch.zeros(3)]))
    from rlt import reward as reward_module

    calls = []
    original = reward_module.span_hidden_states
    monkeypatch.setattr(reward_module, "span_hidden_states",
                        lambda model, *a: calls.append(model) or original(model, *a))
    reused = reward.score_completions(["Q?", "Q?"], ["42", "42"], completions, teacher_log_probs=given)
    assert teacher not in calls and student in calls
    for a, b in zip(expected, reused):
        assert a.reward == pytest.approx(b.reward, abs=1e-5)


# Edge cases ------------------------------------------------------------------------------------

def test_empty_explanation_and_empty_solution_are_finite(bpe_tokenizer, teacher, student):
    reward = RLTReward(teacher, student, bpe_tokenizer)
    empty_expl, empty_sol = reward.score_texts(["Q?", "Q?"], ["12", ""], ["", "because."])
    assert empty_expl.explanation_tokens == 0 and empty_expl.r_kl == 0.0 and math.isfinite(empty_expl.reward)
    assert empty_sol.solution_tokens == 0 and empty_sol.r_ss == 0.0 and math.isfinite(empty_sol.reward)


def test_empty_completion_is_finite_and_penalised(bpe_tokenizer, teacher, student):
    reward = RLTReward(teacher, student, bpe_tokenizer)
    [terms] = reward.score_completions(["Q?"], ["12"], [[bpe_tokenizer.eos_token_id]])
    assert not terms.found_end_tag and terms.missing_tag_penalty == -1.0 and math.isfinite(terms.reward)


def test_over_long_explanations_are_cut_to_fit(bpe_tokenizer, teacher, student):
    long_explanation = "step by step, " * 400
    reward = RLTReward(teacher, student, bpe_tokenizer, RewardConfig(max_length=900))
    [terms] = reward.score_texts(["Q?"], ["12"], [long_explanation])
    assert terms.truncated and math.isfinite(terms.reward)
    builder = reward.builder
    prompt = len(builder.teacher_prompt_ids("Q?", "12"))
    student_context = len(builder.student_sequence("Q?", [], "12").ids)
    assert terms.explanation_tokens == 900 - max(prompt, student_context)


def test_rows_that_cannot_fit_name_the_row(bpe_tokenizer, teacher, student):
    reward = RLTReward(teacher, student, bpe_tokenizer, RewardConfig(max_length=600))
    with pytest.raises(ValueError, match="row 1: the question and solution alone"):
        # 700 words: over 600 tokens whatever corpus the BPE learned (GSM8K's, or conftest's synthetic one)
        reward.score_texts(["ok", "long " * 700], ["1", "2"], ["", ""])


def test_different_tokenizers_are_refused(bpe_tokenizer, char_tokenizer, teacher, student):
    with pytest.raises(ValueError, match="share one vocabulary"):
        RLTReward(teacher, student, bpe_tokenizer, student_tokenizer=char_tokenizer)


def test_model_smaller_than_tokenizer_is_refused(bpe_tokenizer, char_tokenizer, teacher):
    from rlt.toy import build_causal_lm

    small = build_causal_lm(char_tokenizer, "tiny", seed=0)
    with pytest.raises(ValueError, match="do not belong together"):
        RLTReward(teacher, small, bpe_tokenizer)


def test_config_validation():
    with pytest.raises(ValueError, match="student_temperature"):
        RewardConfig(student_temperature=0)
    with pytest.raises(ValueError, match="kl_estimator"):
        RewardConfig(kl_estimator="k3")


def test_combine_terms_is_the_spec_formula():
    config = RewardConfig()
    terms = combine_terms(torch.tensor([-1.0, -3.0]), torch.tensor([0.5, 1.5, -0.5]),
                          found_end_tag=False, truncated=False, config=config)
    r_ss = 1.0 * -2.0 + 0.01 * -3.0
    r_kl = 3.0 * 0.5 + 0.03 * 1.5
    assert terms.r_ss == pytest.approx(r_ss) and terms.r_kl == pytest.approx(r_kl)
    assert terms.reward == pytest.approx(r_ss - r_kl - 1.0)


def test_trl_interface_logs_every_term(bpe_tokenizer, teacher, student):
    builder = SequenceBuilder(bpe_tokenizer)
    reward = RLTReward(teacher, student, bpe_tokenizer)
    completion = builder.encode("4 apples." + builder.fmt.end_explanation)
    metrics, extras = {}, {}
    rewards = reward(
        prompts=["p", "p"], completions=["c", "c"], completion_ids=[completion, completion[:3]],
        question=["Q?", "Q?"], solution=["4", "4"], trainer_state=None,
        log_metric=lambda name, value: metrics.setdefault(name, value),
        log_extra=lambda name, values: extras.setdefault(name, values),
    )
    assert len(rewards) == 2 and all(math.isfinite(r) for r in rewards)
    for name in ("reward", "r_ss", "r_kl", "missing_tag_penalty", "solution_log_prob_min", "kl_max", "truncated"):
        assert f"rlt/{name}" in metrics
    assert metrics["rlt/found_end_tag"] == 0.5
    assert len(extras["rlt/r_ss"]) == 2
    assert not isinstance(reward, torch.nn.Module)
