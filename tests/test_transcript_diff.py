"""Transcripts side by side: the similarity score and the compact diff, the agent's lines first."""

from __future__ import annotations

from stressor.report.transcripts import Turn, similarity, transcript_diff, turns_of

BASE = (
    Turn("agent", "Hi, thanks for calling. How can I help?"),
    Turn("caller", "I want to move my appointment to Thursday."),
    Turn("agent", "Sure. What's the name on the booking?"),
    Turn("caller", "Jordan Lee."),
    Turn("agent", "Done: Thursday at 3pm."),
    Turn("caller", "Thanks, bye!"),
)


def reworded(turns: tuple[Turn, ...], index: int, text: str) -> tuple[Turn, ...]:
    return tuple(Turn(t.role, text) if i == index else t for i, t in enumerate(turns))


def test_turns_of_a_calls_log_line_name_the_roles_as_a_reader_knows_them() -> None:
    line = [
        {"role": "assistant", "content": "Hello  there,\n how can I help?", "start_ms": 500},
        {"role": "user", "content": "Hi."},
        {"role": "system", "content": "(transferred)"},
        {"role": "assistant", "content": ""},  # said nothing: left out
        "garbage",
    ]
    assert turns_of(line) == (
        Turn("agent", "Hello there, how can I help?"),
        Turn("caller", "Hi."),
        Turn("system", "(transferred)"),
    )
    assert turns_of(None) is None and turns_of({"turns": []}) is None
    assert turns_of([]) == ()


def test_similarity_is_one_for_the_same_words_and_falls_with_what_changed() -> None:
    assert similarity(BASE, BASE) == 1.0
    one_line = reworded(BASE, 4, "I'm sorry, did you want to cancel it?")
    most = tuple(Turn(t.role, "Sorry, I can't help with that.") if t.role == "agent" else t for t in BASE)
    assert 0 < similarity(BASE, most) < similarity(BASE, one_line) < 1
    # the same words said by the other side are not the same conversation
    swapped = tuple(Turn("caller" if t.role == "agent" else "agent", t.text) for t in BASE)
    assert similarity(BASE, swapped) < 1
    assert similarity(BASE, ()) == 0.0 and similarity((), ()) == 1.0


def test_the_diff_shows_the_agents_changed_turns_first_with_context_and_role_labels() -> None:
    new = reworded(reworded(BASE, 1, "I need to move my appointment to Friday."), 4, "Done: Friday at 3pm.")
    diff = transcript_diff(BASE, new)
    assert diff.lines == (
        "@@ agent turns 2-3 @@",
        "  agent: Sure. What's the name on the booking?",
        "- agent: Done: Thursday at 3pm.",
        "+ agent: Done: Friday at 3pm.",
        "@@ caller turns 1-2 @@",
        "- caller: I want to move my appointment to Thursday.",
        "+ caller: I need to move my appointment to Friday.",
        "  caller: Jordan Lee.",
    )
    assert diff.omitted == 0


def test_a_side_whose_turns_are_all_the_same_is_one_line() -> None:
    new = reworded(BASE, 0, "Hello! What can I do for you today?")
    assert transcript_diff(BASE, new).lines == (
        "@@ agent turns 1-2 @@",
        "- agent: Hi, thanks for calling. How can I help?",
        "+ agent: Hello! What can I do for you today?",
        "  agent: Sure. What's the name on the booking?",
        "@@ caller: the same 3 turns @@",
    )


def test_turns_added_at_the_end_are_shown_as_added() -> None:
    new = (*BASE, Turn("agent", "Anything else?"))
    assert transcript_diff(BASE, new).lines == (
        "@@ agent turn 3 @@",
        "  agent: Done: Thursday at 3pm.",
        "+ agent: Anything else?",
        "@@ caller: the same 3 turns @@",
    )


def test_the_diff_is_capped_and_says_how_much_it_left_out_and_cuts_long_lines() -> None:
    base = tuple(Turn("agent", f"line {i} " + "word " * 30) for i in range(30))
    new = tuple(Turn("agent", f"other {i}") for i in range(30))
    diff = transcript_diff(base, new, max_lines=10, width=40)
    assert len(diff.lines) == 10 and diff.omitted == 61 - 10  # a header, 30 removed, 30 added
    assert diff.lines[1].startswith("- agent: line 0 ") and diff.lines[1].endswith("…")
    assert all(len(line) <= 40 for line in diff.lines)
