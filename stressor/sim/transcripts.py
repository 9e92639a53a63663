"""What is said on a simulated call: a script fixed by (prompt, tier, agent version), laid out over the call.

The caller's lines follow the scenario prompt (its sentences, in the first person); the agent's lines are
picked by the tier's style and by what the agent's version changes for that prompt (``stressor.sim.agents``),
and each agent turn has the tier's time to first audio. Nothing here depends on the seed, so two runs of the
same scenario against the same agent say the same words; only the timings follow each call's length.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from typing import Literal

from stressor.sim.agents import prompt_change
from stressor.sim.draws import stable_fraction
from stressor.sim.tiers import TIERS, with_ack

Role = Literal["assistant", "user"]

USER_GAP_MS = 400  # the caller's pause before speaking
TAIL_MS = 500  # from the last word to the hang-up
MS_PER_WORD = 350
MIN_LINE_MS = 600
MAX_CALLER_SENTENCES = 4
MAX_SENTENCE_CHARS = 300

_SENTENCE_END = re.compile(r"(?<=[.!?])\s+")
_PRONOUNS = {
    "you are": "I'm",
    "you're": "I'm",
    "you have": "I have",
    "you've": "I've",
    "you want": "I want",
    "yourself": "myself",
    "yours": "mine",
    "your": "my",
    "you": "me",
}
_SUBJECT_BEFORE = re.compile(r"(^|[:;,]|\band|\bbut|\bso)\s*$", re.IGNORECASE)
_PRONOUN = re.compile(r"\b(" + "|".join(re.escape(word) for word in _PRONOUNS) + r")\b", re.IGNORECASE)

# Agent lines per style and per place in the call, three wordings each (the baseline picks one, a reworded
# version another).
_QUICK = {
    "greeting": (
        "Hi, thanks for calling. How can I help?",
        "Hello! What can I do for you today?",
        "Hi there, how can I help you?",
    ),
    "ask": (
        "Sure, I can help with that. What's the name on the account?",
        "Got it. Can I get your name first?",
        "Okay. Who am I speaking with?",
    ),
    "work": (
        "Thanks. Checking that now.",
        "Okay, one second.",
        "Got it, looking into it.",
    ),
    "resolve": (
        "All set: I've taken care of that for you.",
        "Done. That's sorted out now.",
        "Okay, that's handled. You're all set.",
    ),
    "closing": (
        "Anything else? No? Have a good day!",
        "Great. Thanks for calling, bye!",
        "Glad I could help. Take care!",
    ),
}
_THOROUGH = {
    "greeting": (
        "Good day, and thank you for calling. My name is Alex; how may I help you today?",
        "Thank you for calling. I'm the virtual assistant, and I'm happy to help. What brings you in today?",
        "Hello, and thanks for reaching out. How can I assist you this time?",
    ),
    "ask": (
        "I understand, and I can certainly help with that. May I have the name on the account to get started?",
        "Thank you for explaining. Before I look into it, could you confirm your full name for me?",
        "That makes sense. To find your details, could I have the name the account is under?",
    ),
    "work": (
        "Thank you. Let me pull that up and check every detail for you.",
        "I appreciate it. Give me a moment while I review your account.",
        "Understood. I'm checking that now so I can give you an exact answer.",
    ),
    "resolve": (
        "I've taken care of that for you, and you'll get a confirmation shortly. Does that cover what you needed?",
        "Everything is in place now; I've noted the details on your account. Is that what you were looking for?",
        "That's resolved: I've made the change and recorded it. Is there anything you'd like me to go over again?",
    ),
    "closing": (
        "It was a pleasure to help. Thank you for calling, and have a wonderful day.",
        "You're very welcome. If anything else comes up, we're here. Goodbye!",
        "Thank you for your patience today. Take care, and goodbye.",
    ),
}
_CONFUSED = {
    "misread": (
        "I'm sorry, I can only help with questions about your account balance.",
        "It sounds like you'd like to update your address. Is that right?",
        "I'm afraid I didn't catch that. Could you ask about something else?",
    ),
    "deflect": (
        "I understand. Unfortunately, that's not something I can help with today.",
        "I'm sorry, I don't have a way to do that. You could try our website.",
        "Let me see... I'm not able to find anything about that, I'm afraid.",
    ),
    "closing": (
        "Thank you for calling. Goodbye.",
        "Sorry I couldn't do more. Goodbye!",
        "Have a good day.",
    ),
}
_ACKS = ("Mm-hm. ", "Sure, one moment. ", "Okay, let me check. ")
_CALLER = {
    "name": "Jordan Lee.",
    "thanks": "Great, thank you so much.",
    "bye": "No, that's everything. Bye!",
    "pushback": "No, that's not what I asked about.",
    "give_up": "Okay... I'll call back another time.",
    "opening": "Hi, I have a question about my account.",
}


@dataclass(frozen=True, slots=True)
class Line:
    """One turn of the script; ``ttfa_ms`` is the agent's time to first audio (None for the caller)."""

    role: Role
    content: str
    ttfa_ms: int | None = None


@dataclass(frozen=True, slots=True)
class Turn:
    """One turn laid out on the call: API milliseconds from the call's start."""

    line: Line
    start_ms: int
    end_ms: int


def caller_sentences(prompt: str) -> tuple[str, ...]:
    """What the caller says about its goal: the prompt's sentences in the first person ("You booked..." ->
    "I booked..."), at most ``MAX_CALLER_SENTENCES``; a generic opening for an empty prompt."""
    sentences = [part.strip() for part in _SENTENCE_END.split(prompt.strip()) if part.strip()]
    if not sentences:
        return (_CALLER["opening"],)
    return tuple(_first_person(sentence[:MAX_SENTENCE_CHARS]) for sentence in sentences[:MAX_CALLER_SENTENCES])


def _first_person(sentence: str) -> str:
    def swap(match: re.Match[str]) -> str:
        word = _PRONOUNS[match.group(0).lower()]
        if word == "me" and _SUBJECT_BEFORE.search(match.string[: match.start()]):
            word = "I"  # "You booked..." and "...and you need": the subject
        return word[0].upper() + word[1:] if match.group(0)[0].isupper() else word

    spoken = _PRONOUN.sub(swap, sentence)
    if not re.match(r"(i|i'm|i've|my)\b", spoken, re.IGNORECASE):
        # an instruction to the caller ("Ask for a refund") said as what it wants
        spoken = "I'd like to " + spoken[0].lower() + spoken[1:]
    return spoken


def script(prompt: str, product: str, version: int) -> tuple[Line, ...]:
    """Every line of a call of scenario ``prompt`` to an agent on ``product`` at behaviour ``version``."""
    change = prompt_change(prompt, version)
    # unchanged scenarios say exactly what version 1 says; changed ones pick their wording with the version
    voice = (product, version if change != "unchanged" else 1, prompt)
    tier = TIERS[product]
    style = _THOROUGH if product.startswith("storm") else _QUICK
    said = caller_sentences(prompt)
    caller = [Line("user", sentence) for sentence in said]
    agent_count = 0

    def agent(pool: dict[str, tuple[str, ...]], place: str) -> Line:
        nonlocal agent_count
        choices = pool[place]
        index = _index(len(choices), product, prompt, place)
        if change != "unchanged":  # never version 1's wording: a changed scenario always reads differently
            index = (index + 1 + _index(len(choices) - 1, *voice, place)) % len(choices)
        pick = choices[index]
        if agent_count and with_ack(product):
            pick = _ACKS[_index(len(_ACKS), *voice, "ack", agent_count)] + pick
        jitter = 0.8 + 0.4 * stable_fraction(*voice, "ttfa", agent_count)
        agent_count += 1
        return Line("assistant", pick, round(tier.ttfa_ms * jitter))

    lines = [agent(style, "greeting"), caller[0]]
    if change == "regressed":
        lines += [
            agent(_CONFUSED, "misread"),
            Line("user", _CALLER["pushback"] + " " + said[0]),
            agent(_CONFUSED, "deflect"),
            Line("user", _CALLER["give_up"]),
            agent(_CONFUSED, "closing"),
        ]
        return tuple(lines)
    lines += [agent(style, "ask"), Line("user", _CALLER["name"])]
    for line in caller[1:]:
        lines += [agent(style, "work"), line]
    lines += [
        agent(style, "resolve"),
        Line("user", _CALLER["thanks"]),
        agent(style, "closing"),
        Line("user", _CALLER["bye"]),
    ]
    return tuple(lines)


def _index(count: int, *key: object) -> int:
    return int(stable_fraction(*key) * count)


def _natural_ms(line: Line) -> int:
    return max(MIN_LINE_MS, len(line.content.split()) * MS_PER_WORD)


def _pause_ms(line: Line) -> int:
    return line.ttfa_ms if line.ttfa_ms is not None else USER_GAP_MS


def lay_out(lines: tuple[Line, ...], total_ms: int) -> list[Turn]:
    """The lines spread over a call of ``total_ms``: each turn after its pause (the agent's time to first audio,
    the caller's short gap), speech stretched to fill the call, ``TAIL_MS`` before the hang-up. A call too short
    for the pauses is laid out shrunk as a whole. Every turn has ``0 <= start_ms < end_ms <= total_ms``."""
    if not lines or total_ms < 2 * len(lines):
        return []
    pauses = [_pause_ms(line) for line in lines]
    speech = [_natural_ms(line) for line in lines]
    budget = total_ms - sum(pauses) - TAIL_MS
    if budget >= MIN_LINE_MS // 3 * len(lines):
        stretch = budget / sum(speech)
        speech = [length * stretch for length in speech]
        squeeze = 1.0
    else:
        squeeze = total_ms / (sum(pauses) + sum(speech) + TAIL_MS)
    turns: list[Turn] = []
    at = 0.0
    for line, pause, length in zip(lines, pauses, speech, strict=True):
        start = at + pause * squeeze
        at = start + length * squeeze
        start_ms = min(round(start), total_ms - 1)
        turns.append(Turn(line, start_ms, max(start_ms + 1, min(round(at), total_ms))))
    return turns

