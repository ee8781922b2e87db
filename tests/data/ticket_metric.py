"""A user's metric for the tickets example: full marks for the right category as the
first word of the reply, half for the right category anywhere in it."""


def first_word_category(output: str, example) -> float:
    words = output.lower().replace(".", " ").replace(":", " ").split()
    if words and words[0] == example.target:
        return 1.0
    return 0.5 if example.target in words else 0.0


def broken(output: str, example) -> float:
    raise ZeroDivisionError("division by zero")


def category_with_feedback(output: str, example):
    """The category as the first word, with feedback the optimizer reads where it is wrong."""
    score = first_word_category(output, example)
    if score == 1.0:
        return score
    return score, f"the category is {example.target!r}; the reply began {output.strip()[:30]!r}"
