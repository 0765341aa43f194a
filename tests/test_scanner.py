"""Scanner: terminal bytes -> clean lines, the same for every chunking."""

from __future__ import annotations

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from claudewrap.parse.scanner import Scanner, clean_lines

# What Claude Code's renderer writes for a /cost block (bold labels, spaces
# drawn as cursor-forward, erase-line, CRLF), an OSC title, cursor hide/show,
# a redraw (erase + cursor up) and a spinner line overwritten with CR.
TUI = (
    "\x1b]0;✳ Claude Code\x07\x1b[?25l\x1b[?2004h"
    "\x1b[2K\x1b[1A\x1b[2K\x1b[G\x1b[38;2;215;119;87m✻\x1b[39m Thinking…\r"
    "\x1b[38;2;215;119;87m✶\x1b[39m Thinking… \x1b[2m(3s · esc to interrupt)\x1b[22m\r\n"
    "\x1b[2K\x1b[1mTotal cost:\x1b[22m\x1b[9C$0.55\x1b[K\r\n"
    "\x1b[1mTotal duration (API):\x1b[22m\x1b[2C6m 20s\r\n"
    "\x1b[1mUsage by model:\x1b[22m\r\n"
    "\x1b[3C\x1b[2mclaude-sonnet-4-6:\x1b[22m\x1b[2C1.2k input, 5.3k output, "
    "940.0k cache read, 50.0k cache write ($0.55)\r\n"
    "\x1b[38;5;246m  ⎿  \x1b[39mDone\x1b]8;;https://example.com\x1b\\link\x1b]8;;\x1b\\\r\n"
    "\x1b[?25h\x1b[?2004l"
).encode()
TUI_LINES = [
    "✻ Thinking…",
    "✶ Thinking… (3s · esc to interrupt)",
    "Total cost:         $0.55",
    "Total duration (API):  6m 20s",
    "Usage by model:",
    "   claude-sonnet-4-6:  1.2k input, 5.3k output, 940.0k cache read, 50.0k cache write ($0.55)",
    "  ⎿  Donelink",
]


def chunked(data: bytes, cuts: list[int], max_line: int = 16384) -> list[str]:
    """Lines of ``data`` fed in pieces cut at ``cuts``, then flushed."""
    scanner = Scanner(max_line)
    lines: list[str] = []
    prev = 0
    for cut in sorted(set(cuts)):
        lines += scanner.feed(data[prev:cut])
        prev = cut
    lines += scanner.feed(data[prev:])
    return lines + scanner.flush()


def test_tui_output_becomes_the_lines_a_person_sees() -> None:
    assert clean_lines(TUI) == TUI_LINES


def test_tui_output_split_at_every_point_gives_the_same_lines() -> None:
    for cut in range(len(TUI) + 1):
        assert chunked(TUI, [cut]) == TUI_LINES, cut


def test_tui_output_fed_byte_by_byte_gives_the_same_lines() -> None:
    assert chunked(TUI, list(range(len(TUI)))) == TUI_LINES


def test_cursor_forward_becomes_that_many_spaces() -> None:
    assert clean_lines(b"\x1b[1mTotal cost:\x1b[22m\x1b[9C$0.55\r\n") == ["Total cost:         $0.55"]
    assert clean_lines(b"a\x1b[Cb\x1b[1Cc\x1b[0Cd\x1b[03Ce") == ["a b c d   e"]


def test_cursor_forward_is_capped() -> None:
    assert clean_lines(b"a\x1b[99999Cb") == ["a" + " " * 256 + "b"]
    assert clean_lines(b"a\x1b[300Cb") == ["a" + " " * 256 + "b"]


def test_sgr_in_every_form_is_removed() -> None:
    data = b"\x1b[0m\x1b[1;31ma\x1b[38;5;208mb\x1b[38;2;1;2;3mc\x1b[4:3md\x1b[mE\x1b[39;49m"
    assert clean_lines(data) == ["abcdE"]


@pytest.mark.parametrize("seq", [
    b"\x1b[?25l", b"\x1b[?1049h", b"\x1b[?2004h", b"\x1b[>4;2m", b"\x1b[=1u", b"\x1b[2 q",
    b"\x1b[K", b"\x1b[2K", b"\x1b[1P", b"\x1b[3@", b"\x1b[5X", b"\x1b[2S", b"\x1b[1;24r",
    b"\x1b[5D",
])
def test_csi_that_does_not_change_line_is_removed_without_a_break(seq: bytes) -> None:
    assert clean_lines(b"abc" + seq + b"def\n") == ["abcdef"]


@pytest.mark.parametrize("seq", [
    b"\x1b[H", b"\x1b[3;7H", b"\x1b[3;7f", b"\x1b[A", b"\x1b[2A", b"\x1b[B", b"\x1b[E",
    b"\x1b[F", b"\x1b[G", b"\x1b[12d", b"\x1b[J", b"\x1b[2J", b"\x1bD", b"\x1bE", b"\x1bM",
    b"\x1b8", b"\x1bc",
])
def test_cursor_moves_to_another_position_end_the_line(seq: bytes) -> None:
    assert clean_lines(b"abc" + seq + b"def") == ["abc", "def"]


@pytest.mark.parametrize("seq", [
    b"\x1b]0;title\x07", b"\x1b]2;title\x1b\\", b"\x1b]8;id=1;https://x.y/?a=b\x1b\\",
    "\x1b]0;✳ Claude\x07".encode(), b"\x1bPq#0;2;0;0;0#1!14~\x1b\\", b"\x1bXsos\x1b\\",
    b"\x1b^pm\x1b\\", b"\x1b_Gf=100;AAAA\x1b\\", b"\x1b]52;c;aGVsbG8=\x07",
])
def test_string_sequences_are_removed_with_their_content(seq: bytes) -> None:
    assert clean_lines(b"abc" + seq + b"def\n") == ["abcdef"]


@pytest.mark.parametrize("seq", [
    b"\x1b(B", b"\x1b)0", b"\x1b*A", b"\x1b+B", b"\x1b7", b"\x1b=", b"\x1b>", b"\x1bH",
    b"\x1b#8", b"\x1b%G", b"\x1b\\",
])
def test_two_and_three_byte_escapes_are_removed(seq: bytes) -> None:
    assert clean_lines(b"abc" + seq + b"def") == ["abcdef"]


def test_line_ends_lf_cr_crlf_vt_ff() -> None:
    assert clean_lines(b"a\nb\rc\r\nd\x0be\x0cf") == ["a", "b", "c", "d", "e", "f"]


def test_cr_redraw_gives_each_state_as_a_line() -> None:
    assert clean_lines(b"progress 10%\rprogress 20%\rprogress 100%\r\n") == [
        "progress 10%", "progress 20%", "progress 100%",
    ]


def test_empty_lines_are_omitted_and_trailing_whitespace_stripped() -> None:
    data = b"\r\n\r\n  a  \r\n\x1b[2K   \r\n\x1b[5C\x1b[1A\tb\t\r\n"
    assert clean_lines(data) == ["  a", " b"]


def test_tab_becomes_a_space() -> None:
    assert clean_lines(b"a\tb\t\tc") == ["a b  c"]


def test_other_controls_are_dropped() -> None:
    data = b"a\x07b\x08c\x00d\x7fe\x01f\x1ag\x1ch\x1fi" + "\u0085j\u009bk".encode()
    assert clean_lines(data) == ["abcdefghijk"]


def test_c1_control_split_between_chunks_is_dropped() -> None:
    data = "a\u0085b".encode()
    for cut in range(len(data) + 1):
        assert chunked(data, [cut]) == ["ab"]


def test_utf8_split_inside_a_character() -> None:
    data = "⎿ claude-opus-4-8: 1.2k input · ✻\n".encode()
    for cut in range(len(data) + 1):
        assert chunked(data, [cut]) == ["⎿ claude-opus-4-8: 1.2k input · ✻"]


def test_invalid_utf8_becomes_replacement_characters() -> None:
    assert clean_lines(b"a\xffb\xe2\x82c\xc0\xafd\n") == ["a\ufffdb\ufffdc\ufffd\ufffdd"]


def test_incomplete_utf8_at_end_of_stream_is_replaced() -> None:
    scanner = Scanner()
    assert scanner.feed(b"ok \xe2\x8e") == []
    assert scanner.flush() == ["ok \ufffd"]


def test_line_reaching_max_line_is_cut() -> None:
    assert clean_lines(b"x" * 40000 + b"\n") == ["x" * 16384, "x" * 16384, "x" * 7232]
    scanner = Scanner(max_line=10)
    assert scanner.feed(b"0123456789abc") == ["0123456789"]
    assert scanner.feed(b"def\n") == ["abcdef"]


def test_partial_line_is_held_until_its_end_or_flush() -> None:
    scanner = Scanner()
    assert scanner.feed(b"Total cost:") == []
    assert scanner.feed(b"\x1b[9C$0.5") == []
    assert scanner.feed(b"5\r\nnext") == ["Total cost:         $0.55"]
    assert scanner.flush() == ["next"]
    assert scanner.flush() == []


def test_unfinished_escape_at_end_of_stream_is_dropped() -> None:
    scanner = Scanner()
    assert scanner.feed(b"done\x1b[38;2;1") == []
    assert scanner.flush() == ["done"]


def test_unterminated_osc_is_abandoned_after_4096_characters() -> None:
    scanner = Scanner()
    lines = scanner.feed(b"a\x1b]0;")
    for _ in range(100):  # 400 KB of title that never ends
        lines += scanner.feed(b"t" * 4000)
        assert len(scanner._tail) <= 4100  # memory stays bounded
    lines += scanner.feed(b"\x07\nnext\n") + scanner.flush()
    # The body ("0;" and 4094 t) is dropped; the rest is text, cut at max_line.
    assert "".join(lines[:-1]) == "a" + "t" * (400000 - 4094)
    assert [len(line) for line in lines[:-1]] == [16384] * 24 + [400000 - 4094 + 1 - 16384 * 24]
    assert lines[-1] == "next"


def test_csi_with_too_many_parameters_is_abandoned() -> None:
    assert clean_lines(b"a\x1b[" + b"1" * 200 + b"mb") == ["a" + "1" * 72 + "mb"]


def test_clean_lines_is_feed_then_flush() -> None:
    scanner = Scanner()
    assert clean_lines(TUI + b"tail") == scanner.feed(TUI + b"tail") + scanner.flush()


def test_max_line_must_be_positive() -> None:
    with pytest.raises(ValueError):
        Scanner(max_line=0)


# -- properties --

TOKENS = st.sampled_from([
    b"\x1b", b"[", b"]", b"\\", b"\x07", b"1", b"2", b";", b":", b"?", b"C", b"H", b"m", b"A",
    b"K", b"P", b"_", b"(", b"B", b"8", b"E", b" ", b"x", b"\t", b"\r", b"\n", b"\x0b", b"\x00",
    b"\x7f", b"\xc2", b"\x85", b"\x9b", b"\xe2", b"\x8e", b"\xbf", b"\x80", b"\xa8", b"\xff",
    b"\x1b[", b"\x1b]0;", b"\x1b[3C", b"\x1b[1A", b"\x1b[0m", b"\x1b\\",
])
STREAMS = st.lists(TOKENS, max_size=80).map(b"".join) | st.binary(max_size=200)


@settings(max_examples=3000, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(STREAMS, st.lists(st.integers(0, 400), max_size=10), st.integers(1, 16))
def test_any_chunking_gives_the_same_lines(data: bytes, cuts: list[int], max_line: int) -> None:
    whole = Scanner(max_line)
    expected = whole.feed(data) + whole.flush()
    assert chunked(data, [min(c, len(data)) for c in cuts], max_line) == expected


@settings(max_examples=1000, deadline=None)
@given(st.binary(max_size=2000), st.lists(st.integers(0, 2000), max_size=20))
def test_random_bytes_never_raise_and_lines_are_clean(data: bytes, cuts: list[int]) -> None:
    lines = chunked(data, [min(c, len(data)) for c in cuts])
    for line in lines:
        assert line and line == line.rstrip()
        assert not any(ch in line for ch in "\x1b\x07\x00\r\n\t\x7f")


@settings(max_examples=300, deadline=None)
@given(st.lists(st.integers(0, len(TUI)), max_size=30))
def test_realistic_stream_in_random_chunks_gives_the_same_lines(cuts: list[int]) -> None:
    assert chunked(TUI * 3, cuts) == TUI_LINES * 3


def test_column_jumps_separate_words_and_column_one_starts_over() -> None:
    # What Claude Code 2.1.197 draws for a /cost row: words placed with CHA.
    raw = (b"\x1b[3G\x1b[1mTotal cost:\x1b[22m\x1b[27G$0.0298\r\n"
           b"\x1b[1Gclaude-haiku-4-5:\x1b[24G12 input,\x1b[34G5 output\r\n"
           b"old text\x1b[Gnew text\n")
    assert clean_lines(raw) == [" Total cost: $0.0298", "claude-haiku-4-5: 12 input, 5 output",
                                "old text", "new text"]
