"""The README's program example: a two-step pipeline over tests/data/tickets.csv. The
first prompt picks the sentence of a ticket that states the problem; the second names
the problem's category from that sentence alone. gpo optimizes both prompts
(``gpo optimize --program tests/data/ticket_program.py:run --prompts tests/data/ticket_prompts.yaml``)."""


def run(example, prompts, lm):
    sentence = lm(f"{prompts['extract']}\n\nTicket: {example.input}", max_tokens=48).strip()
    category = lm(f"{prompts['classify']}\n\nProblem: {sentence}", max_tokens=8).strip()
    return category, {"extract": sentence}  # the output, and the trace the optimizer reads
