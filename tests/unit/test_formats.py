"""Formats: tags, prompts, and sequences whose spans are exact by construction."""

from __future__ import annotations

import pytest
from hypothesis import HealthCheck, assume, given, settings
from hypothesis import strategies as st

from rlt.formats import R1, STRATOS, FormatConfig, SequenceBuilder

# Text rich in the characters tags are made of, so that tags merge with their neighbours.
TEXT = st.text(alphabet=st.sampled_from(list("ab 12.|<>_\n=+x")) | st.characters(codec="utf-8"), max_size=40)
FIXTURES = settings(max_examples=60, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])


def test_tag_styles():
    assert (STRATOS.begin("thought"), STRATOS.end("thought")) == ("<|begin_of_thought|>", "<|end_of_thought|>")
    assert (R1.begin("solution"), R1.end("solution")) == ("<solution>", "</solution>")


def test_format_defaults_follow_the_tag_style():
    r1 = FormatConfig(tag_format="r1")
    assert r1.begin_explanation == "<explanation>" and r1.end_thought == "</thought>"
    assert "<thought>" in r1.student_system_prompt and "<|begin_of_thought|>" not in r1.student_system_prompt
    stratos = FormatConfig()
    assert "<|begin_of_explanation|>" in stratos.teacher_system_prompt


def test_format_overrides_and_validation():
    fmt = FormatConfig(student_system_prompt="Think.", end_thought="[/T]")
    assert fmt.student_system_prompt == "Think." and fmt.end_thought == "[/T]"
    assert fmt.student_answer("e", "s") == "<|begin_of_thought|>e[/T]\n\n<|begin_of_solution|>s<|end_of_solution|>"
    with pytest.raises(ValueError, match="tag_format"):
        FormatConfig(tag_format="xml")
    with pytest.raises(ValueError, match="end_solution"):
        FormatConfig(end_solution="")


def test_teacher_prompt_ends_inside_the_explanation(bpe_tokenizer):
    builder = SequenceBuilder(bpe_tokenizer)
    prompt = builder.teacher_prompt("What is 2+2?", "4")
    assert prompt.endswith("<|begin_of_solution|>4<|end_of_solution|>\n\n<|begin_of_explanation|>")
    assert "What is 2+2?" in prompt and builder.fmt.teacher_system_prompt in prompt


@FIXTURES
@given(question=TEXT, solution=TEXT, explanation=TEXT)
def test_spans_hold_identical_ids_in_both_sequences(bpe_tokenizer, question, solution, explanation):
    builder = SequenceBuilder(bpe_tokenizer)
    for text in (question, solution, explanation):  # the tokenizer's NFC normaliser may rewrite characters
        assume(bpe_tokenizer.decode(builder.encode(text)) == text)
    explanation_ids = builder.encode(explanation)
    student = builder.student_sequence(question, explanation_ids, solution)
    teacher = builder.teacher_sequence(builder.teacher_prompt_ids(question, solution), explanation_ids)

    s, t = student.explanation, teacher.explanation
    assert student.ids[s.start:s.end] == explanation_ids == teacher.ids[t.start:t.end]
    assert teacher.ids[:t.start] == builder.encode(builder.teacher_prompt(question, solution))
    assert student.ids[student.solution.start:student.solution.end] == builder.encode(solution)
    assert student.solution.end == len(student.ids)
    # The ids spell exactly the student chat, up to the end of the solution.
    full_chat = bpe_tokenizer.apply_chat_template(
        builder.fmt.student_messages(question, explanation, solution), tokenize=False, continue_final_message=True
    )
    decoded = bpe_tokenizer.decode(student.ids, skip_special_tokens=False)
    assert full_chat.startswith(decoded) and full_chat[len(decoded):] == builder.fmt.end_solution
    assert bpe_tokenizer.decode(student.ids[:s.start]).endswith(builder.fmt.begin_thought)


def test_tags_do_merge_with_text_in_the_test_tokenizer(bpe_tokenizer):
    """The property the span tests rely on: whole-text tokenisation does not respect tag boundaries."""
    builder = SequenceBuilder(bpe_tokenizer)
    text = "so 4.<|end_of_explanation|>\n\n"
    whole = builder.encode(text)
    pieces = builder.encode("so 4.") + builder.encode("<|end_of_explanation|>\n\n")
    assert whole != pieces


@FIXTURES
@given(explanation=TEXT, tail=st.sampled_from(["", "\n", " done", "<|im_end|>"]))
def test_split_completion_cuts_at_the_end_tag(bpe_tokenizer, explanation, tail):
    builder = SequenceBuilder(bpe_tokenizer)
    assume(bpe_tokenizer.decode(builder.encode(explanation)) == explanation)  # NFC may rewrite characters
    end_tag = builder.fmt.end_explanation
    completion = builder.encode(explanation + end_tag + tail)
    split = builder.split_completion(completion)
    assert split.found_end_tag
    assert completion[:len(split.explanation_ids)] == split.explanation_ids
    kept = bpe_tokenizer.decode(split.explanation_ids)
    assert explanation.startswith(kept)
    # At most the one token that straddles the tag is lost.
    straddler = bpe_tokenizer.decode(completion[:len(split.explanation_ids) + 1])
    assert end_tag[:1] in straddler[len(kept):] or kept == explanation


def test_split_completion_without_end_tag_keeps_everything_but_eos(bpe_tokenizer):
    builder = SequenceBuilder(bpe_tokenizer)
    body = builder.encode("an unfinished thought")
    split = builder.split_completion(body + [bpe_tokenizer.eos_token_id, bpe_tokenizer.pad_token_id])
    assert not split.found_end_tag and split.explanation_ids == body


def test_split_completion_with_single_token_tags(char_tokenizer):
    builder = SequenceBuilder(char_tokenizer)
    end_id = char_tokenizer.convert_tokens_to_ids(builder.fmt.end_explanation)
    ids = builder.encode("1+2=3") + [end_id, char_tokenizer.eos_token_id]
    split = builder.split_completion(ids)
    assert split.found_end_tag and split.explanation_ids == builder.encode("1+2=3")


def test_template_that_drops_content_is_refused(bpe_tokenizer):
    builder = SequenceBuilder(bpe_tokenizer)
    original = bpe_tokenizer.chat_template
    try:
        bpe_tokenizer.chat_template = "{% for m in messages %}{{ m['role'] }}{% endfor %}"
        with pytest.raises(ValueError, match="chat template altered"):
            builder._student_context_ids("q", "s")
    finally:
        bpe_tokenizer.chat_template = original


def test_an_empty_system_prompt_means_no_system_message():
    fmt = FormatConfig(student_system_prompt="", teacher_system_prompt="")
    assert [m["role"] for m in fmt.student_messages("q", "e", "s")] == ["user", "assistant"]
    assert [m["role"] for m in fmt.teacher_messages("q", "s")] == ["user", "assistant"]
