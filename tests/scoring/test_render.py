"""Task-prompt rendering: every position x wrapper x zero/few-shot x chat/base."""

import pytest

from gpo.scoring.render import Position, PromptFormat, render, render_zero_shot
from gpo.tasks import Example

I, Q = "Think step by step.", "Is 7 prime?"
DEMO = Example("Is 4 prime?", "No")

ZERO = {
    # (position, include_qa): expected with instruction, expected with empty instruction
    ("before_Q", True): (f"{I}\nQ: {Q}\nA: ", f"Q: {Q}\nA: "),
    ("Q_begin", True): (f"Q: {I} {Q}\nA: ", f"Q: {Q}\nA: "),
    ("Q_end", True): (f"Q: {Q} {I}\nA: ", f"Q: {Q}\nA: "),
    ("A_begin", True): (f"Q: {Q}\nA: {I} ", f"Q: {Q}\nA:"),
    ("before_Q", False): (f"{I}\n{Q}", Q),
    ("Q_begin", False): (f"{I}\n{Q}", Q),
    ("Q_end", False): (f"{Q}\n{I}", Q),
    ("A_begin", False): (f"{Q}\n{I} ", Q),
}


@pytest.mark.parametrize("pos,qa", list(ZERO))
def test_zero_shot_text(pos, qa):
    with_i, without = ZERO[(pos, qa)]
    assert render_zero_shot(I, Q, pos, qa) == with_i
    assert render_zero_shot("", Q, pos, qa) == without


FEW_BASE = {
    ("Q_begin", False): f"{I}\nIs 4 prime?\nNo\n\n{I}\n{Q}",
    ("Q_end", False): f"Is 4 prime?\n{I}\nNo\n\n{Q}\n{I}",
    ("A_begin", True): f"Q: Is 4 prime?\nA: {I} No\n\nQ: {Q}\nA: {I} ",
    ("Q_end", True): f"Q: Is 4 prime? {I}\nA: No\n\nQ: {Q} {I}\nA: ",
    ("before_Q", True): f"{I}\nQ: Is 4 prime?\nA: No\n\n{I}\nQ: {Q}\nA: ",
    ("Q_begin", True): f"Q: {I} Is 4 prime?\nA: No\n\nQ: {I} {Q}\nA: ",
    ("before_Q", False): f"{I}\nIs 4 prime?\nNo\n\n{I}\n{Q}",
    ("A_begin", False): f"Is 4 prime?\n{I}\nNo\n\n{Q}\n{I} ",
}


@pytest.mark.parametrize("pos,qa", list(FEW_BASE))
def test_few_shot_base_model_text(pos, qa):
    req = render(I, Example(Q, "Yes"), PromptFormat(Position.parse(pos), qa, few_shot=1, chat=False), [DEMO])
    assert req.prompt == FEW_BASE[(pos, qa)]


@pytest.mark.parametrize("pos,qa", list(ZERO))
def test_chat_zero_and_few_shot(pos, qa):
    zero = render(I, Example(Q, "Yes"), PromptFormat(Position.parse(pos), qa, chat=True))
    assert zero.message_dicts() == [{"role": "user", "content": ZERO[(pos, qa)][0].rstrip()}]
    few = render(I, Example(Q, "Yes"), PromptFormat(Position.parse(pos), qa, few_shot=2, chat=True), [DEMO, DEMO])
    roles = [m["role"] for m in few.message_dicts()]
    assert roles == ["user", "assistant", "user", "assistant", "user"]
    assert few.message_dicts()[1]["content"] == "No"
    assert I in few.message_dicts()[-1]["content"]  # the final query keeps the instruction (original bug)
    assert I in few.message_dicts()[0]["content"]


def test_few_shot_answers_of_every_type_render():
    # GSM8K ints and WebNLG reference lists crashed the original's few-shot path
    num = Example("2+2?", "4")
    gen = Example("triples", "first ref", references=("first ref", "second ref"))
    req = render(I, Example("3+3?", "6"), PromptFormat(Position.Q_END, False, few_shot=2, chat=False), [num, gen])
    assert "2+2?\n" + I + "\n4" in req.prompt and "first ref" in req.prompt and "second ref" not in req.prompt


def test_unknown_position_is_a_clear_error():
    with pytest.raises(ValueError, match="unknown instruction position 'Q_middle'"):
        Position.parse("Q_middle")
