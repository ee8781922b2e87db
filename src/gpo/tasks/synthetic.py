"""Procedurally generated tasks with exact answers.

No download, and fresh examples can never be in a model's training data. Each
generator takes a ``random.Random`` and returns one Example in the BBH answer
format, so the same matchers and second-round instructions apply.
"""

from __future__ import annotations

import random
from typing import Callable

from gpo.errors import suggest
from gpo.tasks.catalog import task_profile
from gpo.tasks.task import Example, Task, TaskError

_WORDS = (
    "apple river stone cloud garden yellow pencil window marble violin tiger harbor lantern "
    "meadow copper rocket saddle thunder orchard puzzle velvet anchor blossom candle desert "
    "ember falcon glacier hammer island jacket kettle ladder magnet needle oyster pepper quiver "
    "ribbon salmon tunnel umbrella valley walnut zephyr basket cactus dolphin engine feather "
    "ginger helmet igloo jungle kitten lemon mirror nectar olive parrot quartz raven spider "
    "tomato unicorn vessel wizard yogurt zebra bridge castle dragon forest"
).split()
_OBJECTS = {
    "fruit": "apple banana orange peach plum grape strawberry nectarine raspberry blackberry".split(),
    "instrument": "piano flute trumpet violin drum clarinet trombone accordion".split(),
    "animal": "cat dog rabbit goat cow pig duck chicken donkey snake".split(),
}
_NUMBER_WORDS = "zero one two three four five six seven eight nine ten".split()
_BRACKETS = {"(": ")", "[": "]", "{": "}", "<": ">"}


def boolean_expressions(rng: random.Random) -> Example:
    def expr(depth: int) -> str:
        if depth == 0 or rng.random() < 0.3:
            return ("not " if rng.random() < 0.3 else "") + rng.choice(["True", "False"])
        left, right = expr(depth - 1), expr(depth - 1)
        text = f"{left} {rng.choice(['and', 'or'])} {right}"
        return f"( {text} )" if rng.random() < 0.5 else text

    text = expr(2)
    return Example(input=f"{text} is", target=str(eval(text.replace("( ", "(").replace(" )", ")"))))


def multistep_arithmetic(rng: random.Random) -> Example:
    def term() -> str:
        a, b = rng.randint(-9, 9), rng.randint(-9, 9)
        return f"({a} {rng.choice('+-*')} {b})"

    text = f"({term()} {rng.choice('+-*')} {term()})"
    return Example(input=f"{text} =", target=str(eval(text)))


def _plural(noun: str) -> str:
    return noun[:-1] + "ies" if noun.endswith("y") and noun[-2] not in "aeiou" else noun + "s"


def object_counting(rng: random.Random) -> Example:
    kind = rng.choice(list(_OBJECTS))
    parts, total = [], 0
    for name in rng.sample(_OBJECTS[kind], rng.randint(2, 5)):
        count = rng.randint(1, 3)
        total += count
        parts.append(f"{_NUMBER_WORDS[count]} {_plural(name)}" if count > 1 else f"a {name}")
    others = rng.sample([k for k in _OBJECTS if k != kind], 1)[0]
    parts.insert(rng.randint(0, len(parts)), f"a {rng.choice(_OBJECTS[others])}")
    listing = ", ".join(parts[:-1]) + f", and {parts[-1]}"
    plural = {"fruit": "fruits", "instrument": "musical instruments", "animal": "animals"}[kind]
    return Example(input=f"I have {listing}. How many {plural} do I have?", target=str(total))


def word_sorting(rng: random.Random) -> Example:
    words = rng.sample(_WORDS, rng.randint(3, 8))
    return Example(
        input=f"Sort the following words alphabetically: List: {' '.join(words)}",
        target=" ".join(sorted(words)),
    )


def navigate(rng: random.Random) -> Example:
    moves, x, y = [], 0, 0
    for _ in range(rng.randint(2, 6)):
        direction = rng.choice(["forward", "backward", "left", "right"])
        steps = rng.randint(1, 6)
        moves.append(f"Take {steps} step{'s' if steps > 1 else ''} {direction}.")
        dx, dy = {"forward": (0, 1), "backward": (0, -1), "left": (-1, 0), "right": (1, 0)}[direction]
        x, y = x + dx * steps, y + dy * steps
    if rng.random() < 0.5:  # make about half of them return to the start
        if y:
            moves.append(f"Take {abs(y)} step{'s' if abs(y) > 1 else ''} {'backward' if y > 0 else 'forward'}.")
        if x:
            moves.append(f"Take {abs(x)} step{'s' if abs(x) > 1 else ''} {'left' if x > 0 else 'right'}.")
        x = y = 0
    question = (
        "If you follow these instructions, do you return to the starting point? Always face forward. "
        + " ".join(moves) + "\nOptions:\n- Yes\n- No"
    )
    return Example(input=question, target="Yes" if x == y == 0 else "No")


def dyck_languages(rng: random.Random) -> Example:
    opened, tokens = [], []
    for _ in range(rng.randint(2, 8)):
        if opened and rng.random() < 0.4:
            tokens.append(_BRACKETS[opened.pop()])
        else:
            b = rng.choice(list(_BRACKETS))
            opened.append(b)
            tokens.append(b)
    if not opened:
        b = rng.choice(list(_BRACKETS))
        opened.append(b)
        tokens.append(b)
    closing = " ".join(_BRACKETS[b] for b in reversed(opened))
    return Example(
        input="Complete the rest of the sequence, making sure that the parentheses are closed properly. "
        f"Input: {' '.join(tokens)}",
        target=closing,
    )


GENERATORS: dict[str, Callable[[random.Random], Example]] = {
    "boolean_expressions": boolean_expressions,
    "multistep_arithmetic_two": multistep_arithmetic,
    "object_counting": object_counting,
    "word_sorting": word_sorting,
    "navigate": navigate,
    "dyck_languages": dyck_languages,
}
DEFAULT_SIZES = {"train": 24, "eval": 24, "test": 48, "format": 5, "few_shot": 5}


def synthetic_task(name: str, seed: int = 0, sizes: dict[str, int] | None = None) -> Task:
    """A fresh task; the same name, seed and sizes always give the same examples.

    Inputs are unique across splits, so train, eval and test never overlap.
    """
    if name not in GENERATORS:
        raise TaskError(f"unknown synthetic task {name!r}{suggest(name, GENERATORS)}; "
                        f"synthetic tasks are {', '.join(GENERATORS)}")
    sizes = {**DEFAULT_SIZES, **(sizes or {})}
    rng = random.Random(f"{name}:{seed}")
    seen: set[str] = set()
    splits: dict[str, list[Example]] = {}
    for split, size in sizes.items():
        examples: list[Example] = []
        attempts = 0
        while len(examples) < size:
            attempts += 1
            if attempts > 100 * size + 1000:
                raise TaskError(f"synthetic task {name}: cannot make {size} distinct examples for {split}")
            example = GENERATORS[name](rng)
            if example.input not in seen:
                seen.add(example.input)
                examples.append(example)
        splits[split] = examples
    return Task(name=name, dataset="synthetic", splits=splits, **task_profile("bbh", name))
