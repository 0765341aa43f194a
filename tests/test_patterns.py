"""Patterns: terminal bytes -> Scanner -> Matcher -> UsageEvent, for every known format."""

from __future__ import annotations

import json
import re
from itertools import pairwise
from pathlib import Path
from typing import Any

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from claudewrap.parse.patterns import (
    Matcher,
    PatternError,
    UserPattern,
    default_config_path,
    load_user_patterns,
    normalise_model,
    parse_cost,
    parse_count,
)
from claudewrap.parse.scanner import Scanner
from claudewrap.store.records import UsageEvent


def events(data: bytes, cuts: list[int] | None = None,
           user: list[UserPattern] | None = None) -> list[UsageEvent]:
    """What the pipeline finds in ``data`` fed in pieces cut at ``cuts``."""
    scanner = Scanner()
    matcher = Matcher(user or [])
    found: list[UsageEvent] = []
    prev = 0
    for cut in sorted(set(cuts or [])):
        found += matcher.feed(scanner.feed(data[prev:cut]))
        prev = cut
    found += matcher.feed(scanner.feed(data[prev:]))
    found += matcher.feed(scanner.flush())
    return found + matcher.flush()


def keys(found: list[UsageEvent]) -> list[tuple[Any, ...]]:
    return [e.values_key() for e in found]


def bold(label: str) -> str:
    return f"\x1b[1m{label}\x1b[22m"


def tui(*lines: str) -> bytes:
    """Lines as the TUI writes them: erase-line before, CRLF after."""
    return "".join(f"\x1b[2K{line}\x1b[K\r\n" for line in lines).encode()


# /cost in 2.1.197: Total cost, right-aligned model names, per-model cost.
COST_2_1_197 = tui(
    f"{bold('Total cost:')}\x1b[12C$0.55",
    f"{bold('Total duration (API):')}\x1b[2C6m 20s",
    f"{bold('Total duration (wall):')} 6h 33m 10s",
    f"{bold('Total code changes:')}\x1b[4C0 lines added, 0 lines removed",
    bold("Usage by model:"),
    "\x1b[3C\x1b[2mclaude-sonnet-4-6:\x1b[22m\x1b[2C1.2k input, 5.3k output, "
    "940.0k cache read, 50.0k cache write ($0.55)",
)
SONNET_2_1_197 = UsageEvent(
    kind="total", model="claude-sonnet-4-6", input_tokens=1200, output_tokens=5300,
    cache_read_tokens=940000, cache_write_tokens=50000, cost_usd=0.55, approximate=True,
    pattern="cost-block",
)

# /cost in 2.1.330: a Settings dialog (with a border), Estimated cost, names left-aligned.
COST_2_1_330 = tui(
    "\x1b[38;5;246m╭──────────────────────────────────────────╮\x1b[39m",
    "│ Settings   Status   Config   \x1b[7mUsage\x1b[27m │",
    f"│ {bold('Session')}\x1b[30C│",
    f"│ {bold('Estimated cost:')}\x1b[9C$0.0298\x1b[5C│",
    f"│ {bold('Total duration (API):')}\x1b[3C0s │",
    f"│ {bold('Total duration (wall):')}\x1b[2C8s │",
    f"│ {bold('Total code changes:')}\x1b[5C0 lines added, 0 lines removed │",
    f"│ {bold('Usage by model:')} │",
    f"│ {bold('claude-opus-5-5[1m]:')}\x1b[8C1.2k input, 567 output, 8.9k cache read, "
    "2.3k cache write ($0.0298) │",
    f"│ {bold('Prompt cache (main):')}\x1b[4C1 request · 71% of input tokens from cache · "
    "no misses · warm (5m TTL, last activity 1s ago) │",
    "│ \x1b[2m←/→ to switch · Esc to close\x1b[22m │",
    "\x1b[38;5;246m╰──────────────────────────────────────────╯\x1b[39m",
)
OPUS_2_1_330 = UsageEvent(
    kind="total", model="claude-opus-5-5", input_tokens=1200, output_tokens=567,
    cache_read_tokens=8900, cache_write_tokens=2300, cost_usd=0.0298, approximate=True,
    pattern="cost-block",
)

# /cost in 0.2.x: inline under ⎿, "Token usage by model", m suffixes, no per-model cost.
COST_0_2 = tui(
    "\x1b[1m>\x1b[22m /cost",
    "  \x1b[2m⎿\x1b[22m  Total cost: $0.55",
    "     Total duration (API): 6m 19.7s",
    "     Total duration (wall): 6h 33m 10.2s",
    "     Total code changes: 0 lines added, 0 lines removed",
    "     Token usage by model:",
    "         claude-3-5-haiku:  236.1k input, 11.6k output, 0 cache read, 0 cache write",
    "        claude-3-7-sonnet:  1.4k input, 169.9k output, 31.5m cache read, 2.0m cache write",
)

# The 2025 form: a cost and durations, no model rows.
COST_2025 = tui(
    "Total cost:            $0.55",
    "Total duration (API):  6m 19.7s",
    "Total duration (wall): 6h 33m 10.2s",
    "Total code changes:    0 lines added, 0 lines removed",
)
AFTER = tui("\x1b[38;2;215;119;87m>\x1b[39m what next?")

RESULT: dict[str, Any] = {
    "type": "result", "subtype": "success", "is_error": False, "duration_ms": 1519,
    "duration_api_ms": 1402, "num_turns": 1, "result": "Hello! {braces} and \"quotes\"",
    "session_id": "0d6b5c2e-7f64-4d1c-9a57-3c1f2e8b9a10", "total_cost_usd": 0.0421,
    "usage": {"input_tokens": 3, "cache_creation_input_tokens": 5104,
              "cache_read_input_tokens": 12780, "output_tokens": 12,
              "server_tool_use": {"web_search_requests": 0}, "service_tier": "standard"},
    "modelUsage": {
        "claude-opus-4-8[1m]": {"inputTokens": 3, "outputTokens": 12,
                                "cacheReadInputTokens": 12780,
                                "cacheCreationInputTokens": 5104, "webSearchRequests": 0,
                                "costUSD": 0.0401, "contextWindow": 1000000},
        "claude-haiku-4-5-20251001": {"inputTokens": 350, "outputTokens": 20,
                                      "cacheReadInputTokens": 0,
                                      "cacheCreationInputTokens": 0, "costUSD": 0.002},
    },
    "permission_denials": [], "uuid": "3f1c",
}
RESULT_EVENTS = [
    UsageEvent(kind="total", model="claude-opus-4-8", input_tokens=3, output_tokens=12,
               cache_read_tokens=12780, cache_write_tokens=5104, cost_usd=0.0401,
               pattern="p-json", claude_session=RESULT["session_id"]),
    UsageEvent(kind="total", model="claude-haiku-4-5-20251001", input_tokens=350,
               output_tokens=20, cost_usd=0.002, pattern="p-json",
               claude_session=RESULT["session_id"]),
]


def json_out(obj: Any, indent: int | None = None) -> bytes:
    """JSON as `claude -p` prints it through a pty (LF -> CRLF)."""
    return (json.dumps(obj, indent=indent) + "\n").replace("\n", "\r\n").encode()


# -- /cost blocks --

def test_cost_block_2_1_197_gives_one_total_per_model() -> None:
    assert events(COST_2_1_197 + AFTER) == [SONNET_2_1_197]


def test_cost_block_2_1_330_in_settings_dialog() -> None:
    assert events(COST_2_1_330 + AFTER) == [OPUS_2_1_330]


def test_cost_block_0_2_rows_with_m_suffix_and_no_model_cost() -> None:
    found = events(COST_0_2 + AFTER)
    assert found == [
        UsageEvent(kind="total", model="claude-3-5-haiku", input_tokens=236100,
                   output_tokens=11600, approximate=True, pattern="cost-block"),
        UsageEvent(kind="total", model="claude-3-7-sonnet", input_tokens=1400,
                   output_tokens=169900, cache_read_tokens=31500000,
                   cache_write_tokens=2000000, approximate=True, pattern="cost-block"),
    ]


def test_single_model_without_row_cost_gets_the_total_cost() -> None:
    data = tui("Total cost: $1.25", "Usage by model:",
               "  claude-haiku-4-5:  10.0k input, 2.0k output")
    assert [(e.model, e.cost_usd) for e in events(data)] == [("claude-haiku-4-5", 1.25)]


def test_cost_block_without_rows_gives_one_total_without_model() -> None:
    assert events(COST_2025 + AFTER) == [
        UsageEvent(kind="total", cost_usd=0.55, approximate=True, pattern="cost-block"),
    ]


def test_cost_block_is_reported_when_its_rows_end_not_when_the_stream_ends() -> None:
    scanner, matcher = Scanner(), Matcher()
    assert matcher.feed(scanner.feed(COST_2_1_330)) == [OPUS_2_1_330]
    assert matcher.feed(scanner.feed(AFTER)) == []
    assert matcher.flush() == []


def test_cost_block_at_end_of_stream_is_reported_by_flush() -> None:
    scanner, matcher = Scanner(), Matcher()
    assert matcher.feed(scanner.feed(COST_2025)) == []
    assert matcher.feed(scanner.flush()) + matcher.flush() == [
        UsageEvent(kind="total", cost_usd=0.55, approximate=True, pattern="cost-block"),
    ]


def test_redrawn_cost_block_yields_same_events() -> None:
    redraw = b"\x1b[12A\x1b[2J\x1b[H"
    found = events(COST_2_1_330 + redraw + COST_2_1_330 + AFTER)
    assert found == [OPUS_2_1_330, OPUS_2_1_330]
    assert len(set(keys(found))) == 1  # the caller's dedupe key drops the repeat


def test_a_partial_redraw_of_a_cost_block_records_nothing_wrong() -> None:
    """Claude Code's renderer may rewrite only the cells that changed: over
    "$0.1034" it writes "2" after a column jump, and the scanner reads the jump
    as a space. A cost or a row with digits, a gap, digits is not recorded."""
    rows = (b"Usage by model:\r\n"
            b"    claude-sonnet-4-5:  12.3k input, 1\x1b[33G5k output ($0.1234)\r\n"
            b"    claude-haiku-4-5:  1.0k input, 200 output ($0.0034)\r\n\r\n")
    right = {(None, 0, 0, 0.1268), ("claude-haiku-4-5", 1000, 200, 0.0034)}
    found = events(b"Total cost: $0.1268\r\n" + rows)
    got = {(e.model, e.input_tokens, e.output_tokens, e.cost_usd) for e in found}
    assert got and got <= right  # the damaged sonnet row is not among them
    found = events(b"Total cost: $0.1\x1b[17G68\r\n" + rows)
    got = {(e.model, e.input_tokens, e.output_tokens, e.cost_usd) for e in found}
    assert got <= right


def test_two_blocks_back_to_back_are_two_blocks() -> None:
    found = events(COST_2025 + COST_2_1_197)
    assert [e.model for e in found] == [None, "claude-sonnet-4-6"]


def test_row_repeated_inside_a_block_counts_once() -> None:
    row = "   claude-sonnet-4-6:  1.2k input, 5.3k output ($0.55)"
    found = events(tui("Total cost: $0.55", "Usage by model:", row, row))
    assert len(found) == 1


def test_rows_of_one_model_with_and_without_decoration_add_up() -> None:
    found = events(tui("Total cost: $0.30", "Usage by model:",
                       "  claude-opus-4-8:  1.0k input, 1 output ($0.10)",
                       "  claude-opus-4-8[1m]:  2.0k input, 2 output ($0.20)"))
    assert [(e.model, e.input_tokens, e.output_tokens) for e in found] == [
        ("claude-opus-4-8", 3000, 3)]
    assert found[0].cost_usd == pytest.approx(0.30)


def test_row_with_web_searches_keeps_its_tokens_and_cost() -> None:
    """Claude Code adds ", N web search" to a row when the model searched."""
    row = ("   claude-sonnet-4-6:  1.2k input, 5.3k output, 940.0k cache read, 50.0k cache write,"
           " 3 web search ($0.58)")
    found = events(tui("Total cost: $0.58", "Usage by model:", row) + AFTER)
    assert [(e.model, e.input_tokens, e.cache_write_tokens, e.cost_usd) for e in found] == [
        ("claude-sonnet-4-6", 1200, 50000, 0.58)]


def test_row_wrapped_onto_the_next_line_by_claude_code_is_read_whole() -> None:
    """A narrow terminal: Claude Code ends the row's first line and draws the
    rest on the next, indented with a cursor move."""
    data = (b"Total cost: $3.17\r\nUsage by model:\r\n"
            b"\x1b[3G claude-haiku-4-5:\x1b[26G12.3k input, 1.5k output, 100.2k cache read,\r\r\n"
            b"\x1b[3G5.1k cache write ($0.0421)\r\r\n"
            b"\x1b[3Gclaude-sonnet-4-6:\x1b[26G1.2k input, 5.3k output, 940.0k cache read, 50.0k\r\r\n"
            b"\x1b[3Gcache write ($3.13)\r\r\n\r\r\nEsc to cancel\r\n")
    assert [(e.model, e.cache_read_tokens, e.cache_write_tokens, e.cost_usd)
            for e in events(data)] == [("claude-haiku-4-5", 100200, 5100, 0.0421),
                                        ("claude-sonnet-4-6", 940000, 50000, 3.13)]


def test_several_models_without_row_cost_leave_cost_unknown() -> None:
    assert [e.cost_usd for e in events(COST_0_2)] == [None, None]


def test_subscription_text_yields_nothing() -> None:
    data = tui("\x1b[2m⎿\x1b[22m  With your Claude Max subscription, no need to monitor cost — "
               "your subscription includes Claude Code usage",
               "Current session  ████▌  1% used", "Current week (all models)  3% used")
    assert events(data) == []


def test_model_rows_outside_a_block_are_ignored() -> None:
    data = tui("The doc says claude-sonnet-4-6:  1.2k input, 5.3k output ($0.55)")
    assert events(data) == []


# -- seed lines --

def test_seed_tokens_line() -> None:
    assert events(b"Tokens: 1234 input, 5678 output\r\nok\r\n") == [
        UsageEvent(input_tokens=1234, output_tokens=5678, pattern="seed-tokens")]


def test_seed_lines_tolerate_case_spacing_and_colour() -> None:
    data = b"\x1b[1mTOKENS:\x1b[0m\x1b[3C1,234 Input ,  5.6k OUTPUT\r\n"
    assert events(data) == [UsageEvent(input_tokens=1234, output_tokens=5600,
                                       approximate=True, pattern="seed-tokens")]


def test_cost_line_after_tokens_line_merges_into_one_event() -> None:
    data = b"Tokens: 1234 input, 5678 output\r\n\x1b[32mCost: $0.075\x1b[0m\r\n"
    assert events(data) == [UsageEvent(input_tokens=1234, output_tokens=5678, cost_usd=0.075,
                                       pattern="seed-tokens")]


def test_cost_line_after_tokens_merges_across_chunks() -> None:
    data = b"Tokens: 1234 input, 5678 output\r\nCost: $0.075\r\n"
    for cut in range(len(data) + 1):
        assert [e.cost_usd for e in events(data, [cut])] == [0.075], cut


def test_tokens_line_followed_by_other_text_stays_alone() -> None:
    data = b"Tokens: 10 input, 20 output\r\nsomething else\r\nCost: $0.5\r\n"
    assert events(data) == [
        UsageEvent(input_tokens=10, output_tokens=20, pattern="seed-tokens"),
        UsageEvent(cost_usd=0.5, pattern="seed-cost"),
    ]


def test_tokens_line_at_end_of_stream_is_emitted_by_flush() -> None:
    matcher = Matcher()
    assert matcher.feed(["Tokens: 1 input, 2 output"]) == []
    assert matcher.flush() == [UsageEvent(input_tokens=1, output_tokens=2, pattern="seed-tokens")]


def test_tokens_line_is_emitted_before_what_follows_it() -> None:
    data = b"Tokens: 1 input, 2 output\r\n" + json_out(RESULT) + COST_2025
    assert [e.pattern for e in events(data)] == ["seed-tokens", "p-json", "p-json", "cost-block"]


def test_usage_line_counts_its_tokens_as_input() -> None:
    assert events(b"Usage: $0.05 (1234 tokens)\r\n") == [
        UsageEvent(input_tokens=1234, cost_usd=0.05, pattern="seed-usage")]


def test_cost_alone_on_its_line_is_a_cost_only_delta() -> None:
    assert events(b"  Cost: $0.075  \r\n") == [UsageEvent(cost_usd=0.075, pattern="seed-cost")]


def test_cost_inside_a_sentence_is_not_a_cost_line() -> None:
    assert events(b"The cost: $5 is too much\r\nEstimated cost is low\r\n") == []


# -- claude -p JSON and stream-json --

def test_p_json_single_line_gives_exact_totals_per_model() -> None:
    assert events(json_out(RESULT)) == RESULT_EVENTS


def test_p_json_pretty_printed_over_many_lines() -> None:
    assert events(json_out(RESULT, indent=2)) == RESULT_EVENTS


def test_p_json_pretty_printed_split_at_every_point() -> None:
    data = json_out(RESULT, indent=2)
    for cut in range(0, len(data) + 1, 7):
        assert events(data, [cut]) == RESULT_EVENTS, cut


def test_p_json_without_model_usage_uses_usage_and_total_cost() -> None:
    obj = {k: v for k, v in RESULT.items() if k != "modelUsage"}
    assert events(json_out(obj)) == [UsageEvent(
        kind="total", input_tokens=3, output_tokens=12, cache_read_tokens=12780,
        cache_write_tokens=5104, cost_usd=0.0421, pattern="p-json",
        claude_session=RESULT["session_id"])]


def test_p_json_longer_than_a_scanner_line_is_still_read() -> None:
    obj = dict(RESULT, result="word " * 20000)  # 100 KB: the scanner cuts it in pieces
    assert events(json_out(obj)) == RESULT_EVENTS


def test_stream_json_counts_only_the_result_line() -> None:
    session = RESULT["session_id"]
    lines = [
        {"type": "system", "subtype": "init", "session_id": session, "model": "claude-opus-4-8"},
        {"type": "assistant", "message": {"model": "claude-opus-4-8", "usage": {
            "input_tokens": 3, "output_tokens": 1, "cache_read_input_tokens": 12780}},
         "session_id": session},
        {"type": "user", "message": {"content": [{"type": "tool_result", "content": "ok"}]}},
        RESULT,
    ]
    data = b"".join(json_out(line) for line in lines)
    found = events(data)
    assert [e.pattern for e in found] == ["stream-json", "stream-json"]
    assert keys(found) == keys(RESULT_EVENTS)


def test_json_that_is_not_a_result_yields_nothing() -> None:
    data = json_out({"type": "assistant", "usage": {"input_tokens": 5}})
    data += json_out({"total_cost_usd": 1.0, "type": "other", "result": "x"}, indent=2)
    assert events(data) == []


def test_brace_line_that_is_not_json_does_not_hide_what_follows() -> None:
    data = b"{\r\n  this is code, not JSON\r\nTokens: 1 input, 2 output\r\n"
    assert events(data) == [UsageEvent(input_tokens=1, output_tokens=2, pattern="seed-tokens")]


def test_unfinished_json_at_end_of_stream_yields_nothing() -> None:
    data = json_out(RESULT, indent=2)
    assert events(data[: len(data) // 2]) == []


# -- one batch or many --

def test_matcher_gives_the_same_events_for_any_batching_of_lines() -> None:
    data = COST_2_1_197 + AFTER + json_out(RESULT, indent=2) + COST_0_2 + AFTER
    lines = Scanner().feed(data)
    whole = Matcher()
    expected = whole.feed(lines) + whole.flush()
    assert len(expected) == 5
    one_by_one = Matcher()
    got = [e for line in lines for e in one_by_one.feed([line])] + one_by_one.flush()
    assert got == expected
    generator = Matcher()
    assert generator.feed(line for line in lines) + generator.flush() == expected


STREAM = (b"\x1b]0;claude\x07" + COST_2_1_197 + AFTER + b"Tokens: 5 input, 6 output\r\n"
          + b"Cost: $0.01\r\n" + json_out(RESULT, indent=2) + COST_2_1_330 + AFTER
          + json_out(RESULT) + COST_0_2)


@settings(max_examples=200, deadline=None)
@given(st.lists(st.integers(0, len(STREAM)), max_size=25))
def test_random_chunkings_of_a_realistic_stream_give_identical_events(cuts: list[int]) -> None:
    assert events(STREAM, cuts) == events(STREAM)


def test_realistic_stream_events() -> None:
    found = events(STREAM)
    assert [e.pattern for e in found] == (
        ["cost-block", "seed-tokens"] + ["p-json"] * 2 + ["cost-block"] + ["p-json"] * 2
        + ["cost-block"] * 2)


# -- user patterns --

def write(tmp_path: Path, text: str) -> Path:
    path = tmp_path / "config.toml"
    path.write_text(text, encoding="utf-8")
    return path


GOOD = r'''
[[patterns]]
name = "my-tool"
regex = '(?P<input>\d+) in / (?P<output>\d+) out, \$(?P<cost>[\d.]+)(?: \[(?P<model>[\w.-]+)\])?'

[[patterns]]
name = "meter"
regex = 'session total: (?P<input>[\d.,]+[km]?) tokens'
kind = "total"
'''


def test_user_patterns_from_toml_match_case_insensitively(tmp_path: Path) -> None:
    patterns = load_user_patterns(write(tmp_path, GOOD))
    assert [(p.name, p.kind) for p in patterns] == [("my-tool", "delta"), ("meter", "total")]
    data = b"\x1b[1m12 IN / 34 OUT, $0.5 [Claude-X]\x1b[0m\r\nSession Total: 1.5k tokens\r\n"
    assert events(data, user=patterns) == [
        UsageEvent(model="claude-x", input_tokens=12, output_tokens=34, cost_usd=0.5,
                   pattern="user:my-tool"),
        UsageEvent(kind="total", input_tokens=1500, approximate=True, pattern="user:meter"),
    ]


def test_user_pattern_with_string_anchor_still_sees_every_line(tmp_path: Path) -> None:
    patterns = load_user_patterns(write(tmp_path, r'''
[[patterns]]
name = "anchored"
regex = '\Aspent (?P<cost>[\d.]+)\Z'
'''))
    assert events(b"hello\r\nspent 2.5\r\n", user=patterns) == [
        UsageEvent(cost_usd=2.5, pattern="user:anchored")]


@pytest.mark.parametrize(("toml", "words"), [
    ('[[patterns]]\nname = "broken"\nregex = "(?P<input>\\\\d+"\n', ["'broken'", "bad regex"]),
    ('[[patterns]]\nname = "odd"\nregex = "(?P<tokens>\\\\d+)"\n', ["'odd'", "unknown group 'tokens'"]),
    ('[[patterns]]\nname = "k"\nregex = "(?P<input>\\\\d+)"\nkind = "sum"\n', ["'k'", "kind"]),
    ('[[patterns]]\nname = "m"\nregex = "(?P<model>\\\\w+)"\n', ["'m'", "at least one"]),
    ('[[patterns]]\nname = "t"\nregexp = "(?P<input>\\\\d+)"\n', ["'t'", "unknown key 'regexp'"]),
    ('[[patterns]]\nregex = "(?P<input>\\\\d+)"\n', ["pattern #1", "name"]),
    ('[[patterns]\nname = "x"\n', ["bad TOML"]),
    ('patterns = "nope"\n', ["array of tables"]),
])
def test_bad_user_pattern_is_a_one_line_error_naming_file_and_pattern(
        tmp_path: Path, toml: str, words: list[str]) -> None:
    path = write(tmp_path, toml)
    with pytest.raises(PatternError) as info:
        load_user_patterns(path)
    message = str(info.value)
    assert "\n" not in message
    assert message.startswith(str(path))
    for word in words:
        assert word in message


def test_explicit_missing_config_is_an_error(tmp_path: Path) -> None:
    with pytest.raises(PatternError, match="not found"):
        load_user_patterns(tmp_path / "nope.toml")


def test_missing_default_config_means_no_patterns(
        tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("CLAUDEWRAP_CONFIG", raising=False)
    monkeypatch.setenv("XDG_CONFIG_HOME", str(tmp_path / "xdg"))
    monkeypatch.setenv("HOME", str(tmp_path))
    assert default_config_path().name == "config.toml"
    assert str(tmp_path) in str(default_config_path())
    assert load_user_patterns() == []


def test_config_env_variable_overrides_the_default(
        tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    path = write(tmp_path, GOOD)
    monkeypatch.setenv("CLAUDEWRAP_CONFIG", str(path))
    assert default_config_path() == path
    assert [p.name for p in load_user_patterns()] == ["my-tool", "meter"]
    monkeypatch.setenv("CLAUDEWRAP_CONFIG", str(tmp_path / "missing.toml"))
    with pytest.raises(PatternError):
        load_user_patterns()


def test_config_without_patterns_is_fine(tmp_path: Path) -> None:
    assert load_user_patterns(write(tmp_path, '[pricing]\nfoo = 1\n')) == []


# -- numbers and names --

@pytest.mark.parametrize(("text", "expected"), [
    ("0", (0, False)), ("1,234", (1234, False)), ("1234", (1234, False)),
    ("1.2k", (1200, True)), ("1.2K", (1200, True)), ("236.1k", (236100, True)),
    ("2.0m", (2000000, True)), ("2.0M", (2000000, True)), ("31.5m", (31500000, True)),
    ("940.0k", (940000, True)), (" 12 ", (12, False)), ("1,234,567", (1234567, False)),
    ("0.5k", (500, True)), ("1.0b", (1000000000, True)), ("2.5", (3, True)),
])
def test_parse_count(text: str, expected: tuple[int, bool]) -> None:
    assert parse_count(text) == expected


@pytest.mark.parametrize("text", ["", "k", "1.2x", "-5", "1.2.3", "$5", "abc", "1k2"])
def test_parse_count_rejects_what_is_not_a_count(text: str) -> None:
    with pytest.raises(ValueError):
        parse_count(text)


@pytest.mark.parametrize(("text", "expected"), [
    ("$0.55", 0.55), ("0.0298", 0.0298), ("$1,234.50", 1234.5), ("$ 3", 3.0), (".5", 0.5),
    ("  $0.075 ", 0.075), ("US$2.00", 2.0),
])
def test_parse_cost(text: str, expected: float) -> None:
    assert parse_cost(text) == expected


@pytest.mark.parametrize("text", ["", "$", "free", "$-1", "1.2.3", "€5"])
def test_parse_cost_rejects_what_is_not_a_cost(text: str) -> None:
    with pytest.raises(ValueError):
        parse_cost(text)


@pytest.mark.parametrize(("name", "expected"), [
    ("claude-opus-4-8[1m]", "claude-opus-4-8"), ("Claude-Sonnet-4-6", "claude-sonnet-4-6"),
    (" claude-3-5-haiku ", "claude-3-5-haiku"), ("claude-opus-5-5 [1m]", "claude-opus-5-5"),
])
def test_normalise_model(name: str, expected: str) -> None:
    assert normalise_model(name) == expected


def test_tokens_line_right_after_a_cost_block_is_its_own_event() -> None:
    from claudewrap.parse.patterns import Matcher
    from claudewrap.parse.scanner import clean_lines

    lines = clean_lines(
        b"Total cost:            $0.55\r\n"
        b"Usage by model:\r\n"
        b"   claude-sonnet-4-6:  1.2k input, 5.3k output, 940.0k cache read, 50.0k cache write ($0.55)\r\n"
        b"Tokens: 100 input, 20 output\r\n"
    )
    matcher = Matcher()
    events = matcher.feed(lines) + matcher.flush()
    assert [(e.kind, e.model, e.input_tokens, e.output_tokens) for e in events] == [
        ("total", "claude-sonnet-4-6", 1200, 5300),
        ("delta", None, 100, 20),
    ]


# --- numbers no record can hold (issue 13) ---------------------------------------------

@pytest.mark.parametrize("text", ["9" * 400, "9" * 40 + "k", "10,000,000,001", "10.1b",
                                  "10000000.5k"])
def test_parse_count_refuses_a_count_no_record_can_hold(text: str) -> None:
    with pytest.raises(ValueError, match="not a plausible token count"):
        parse_count(text)


def test_parse_count_keeps_the_ceiling_itself() -> None:
    assert parse_count("10,000,000,000") == (10**10, False)
    assert parse_count("10b") == (10**10, True)


@pytest.mark.parametrize("text", ["$" + "9" * 400, "1" + "0" * 310, "$1,000,000.01"])
def test_parse_cost_refuses_infinity_and_amounts_no_record_can_hold(text: str) -> None:
    with pytest.raises(ValueError, match="not a plausible cost"):
        parse_cost(text)


def test_printed_lines_with_absurd_numbers_record_nothing() -> None:
    nines = "9" * 400
    found = events(tui(f"Cost: ${nines}", f"Usage: ${nines} (12 tokens)",
                       f"Tokens: {nines}k input, 5 output", "Tokens: 3 input, 4 output"))
    assert [(e.input_tokens, e.output_tokens, e.cost_usd) for e in found] == [(3, 4, None)]


def test_a_cost_row_with_an_impossible_cost_swallows_no_later_line() -> None:
    found = events(tui("Total cost: $0", "Usage by model:",
                       "  claude-x:  0 input, 5 output, 0 cache read, 0 cache write ($1000001)",
                       "reply", "Tokens: 1004 input, 4 output"))
    assert ("delta", None, 1004, 4) in [(e.kind, e.model, e.input_tokens, e.output_tokens)
                                        for e in found]
    assert all(e.cost_usd is None or e.cost_usd <= 10**6 for e in found)


def test_rows_that_add_up_beyond_the_ceiling_are_rejected_and_counted() -> None:
    matcher = Matcher()
    scanner = Scanner()
    found = matcher.feed(scanner.feed(tui(
        "Total cost: $5", "Usage by model:",
        "  claude-x:  9,000,000,000 input, 0 output, 0 cache read, 0 cache write ($1)",
        "  claude-x[1m]:  9,000,000,000 input, 0 output, 0 cache read, 0 cache write ($1)",
        "done"))) + matcher.flush()
    assert found == []
    assert matcher.rejected == 1
    assert matcher.first_rejection is not None and "input_tokens is above" in matcher.first_rejection


@pytest.mark.parametrize(("result", "why"), [
    ({"total_cost_usd": float("inf")}, "cost_usd is not a finite number"),
    ({"total_cost_usd": float("nan")}, "cost_usd is not a finite number"),
    ({"total_cost_usd": -3.5}, "cost_usd is negative"),
    ({"usage": {"input_tokens": float("inf")}}, "input_tokens is not a finite number"),
    ({"usage": {"output_tokens": -1000}}, "output_tokens is negative"),
    ({"usage": {"cache_read_input_tokens": int("9" * 300)}}, "cache_read_input_tokens is above"),
    ({"modelUsage": {"m": {"inputTokens": 10**35}}}, "inputTokens is above"),
])
def test_a_p_result_with_impossible_numbers_is_one_rejected_event(
        result: dict[str, Any], why: str) -> None:
    matcher = Matcher()
    line = json.dumps({"type": "result", "result": "x", "session_id": "s", **result})
    found = matcher.feed([line, "Tokens: 1 input, 2 output"]) + matcher.flush()
    assert [(e.pattern, e.input_tokens) for e in found] == [("seed-tokens", 1)]
    assert matcher.rejected == 1 and why in (matcher.first_rejection or "")


def test_one_bad_model_of_a_p_result_costs_only_its_own_event() -> None:
    matcher = Matcher()
    line = json.dumps({"type": "result", "result": "x", "total_cost_usd": 0.3, "modelUsage": {
        "claude-a": {"inputTokens": 5, "costUSD": 0.1},
        "claude-b": {"inputTokens": 7, "costUSD": float("inf")}}})
    found = matcher.feed([line]) + matcher.flush()
    assert [(e.model, e.input_tokens) for e in found] == [("claude-a", 5)]
    assert matcher.rejected == 1


@pytest.mark.parametrize("inner", ["[" * 100_000 + "]" * 100_000, "1" * 5000])
def test_a_hostile_json_result_is_one_lost_object_not_an_exception(inner: str) -> None:
    matcher = Matcher()
    line = '{"type":"result","result":"x","usage":' + inner + "}"
    found = matcher.feed([line, "Tokens: 1 input, 2 output"]) + matcher.flush()
    assert [(e.input_tokens, e.output_tokens) for e in found] == [(1, 2)]
    assert matcher.rejected == 1 and not matcher.busy


def test_lines_read_again_and_a_rejected_block_in_one_batch() -> None:
    # Events of lines read before are checked once (Matcher._fresh); the rows
    # of a block in the same batch are still checked, and only they go.
    matcher = Matcher()
    rows = ["Total cost: $5", "Usage by model:",
            "  claude-x:  9,000,000,000 input, 0 output, 0 cache read, 0 cache write ($1)",
            "  claude-x[1m]:  9,000,000,000 input, 0 output, 0 cache read, 0 cache write ($1)"]
    lines = ["Cost: $0.25", "Tokens: 10 input, 2 output", "Cost: $0.01", *rows, "done"]
    for _ in range(3):
        found = matcher.feed(lines)
        assert [(e.pattern, e.input_tokens, e.cost_usd) for e in found] == [
            ("seed-cost", 0, 0.25), ("seed-tokens", 10, 0.01)]
    assert matcher.rejected == 3 and matcher.flush() == []


def test_a_json_line_after_keyword_lines_and_braces_mid_line_is_read() -> None:
    # The next JSON line is looked for once per batch, not after every keyword line.
    result = json.dumps({"type": "result", "result": "x", "total_cost_usd": 0.5,
                         "usage": {"input_tokens": 7, "output_tokens": 3}})
    batch = []
    for n in range(50):
        batch += [f"Cost: ${n / 100:.2f}", 'a note {"id": 1} in prose', "model: x"]
    found = Matcher().feed([*batch, result, "Cost: $9", "{", '  "type": "other"', "}",
                            "Cost: $8"])
    assert [e.cost_usd for e in found] == [n / 100 for n in range(50)] + [0.5, 9.0, 8.0]
    assert found[50].pattern == "p-json" and found[50].input_tokens == 7


# Lines of every kind an idle matcher meets: Tokens lines (which wait for a
# Cost line), Cost and Usage lines, prose naming the keywords, blocks, JSON.
MIXED_LINES = [
    "Tokens: 10 input, 2 output", "Tokens: 1.2k input, 7 output", "Cost: $0.01", "Cost: $0.5",
    "  ⎿  Usage: $0.05 (1234 tokens)", "the cost: unknown", "model: x", "plain words",
    '{"id": 1}', json.dumps({"type": "result", "result": "x", "total_cost_usd": 0.5,
                             "usage": {"input_tokens": 7, "output_tokens": 3}}),
    "Total cost: $5", "Usage by model:",
    "  claude-x:  9 input, 1 output, 0 cache read, 0 cache write ($1)", "{", "}",
]


@settings(max_examples=150, deadline=None)
@given(st.lists(st.sampled_from(MIXED_LINES), max_size=40),
       st.lists(st.integers(0, 40), max_size=6))
def test_builtin_fast_path_reads_as_every_line_read_does(lines: list[str], cuts: list[int]) -> None:
    # Matcher._feed_builtin (no user patterns: keyword lines from their cached
    # outcome, the line after a Tokens line in place) against _feed_all, which
    # a user pattern that matches nothing sends every line through _line. Fed
    # three times: the second and third read every keyword line's outcome from
    # the cache; cut anywhere: a Tokens line's Cost line may come in the next batch.
    never = UserPattern("never", re.compile(r"(?P<input>\d+) zzqq tokens", re.IGNORECASE))
    bounds = [0, *sorted(c for c in cuts if c <= len(lines)), len(lines)]
    batches = [lines[a:b] for a, b in pairwise(bounds)]
    fast, reference = Matcher(), Matcher([never])
    assert not fast.reads_all and reference.reads_all
    for _ in range(3):
        got = [e for batch in batches for e in fast.feed(batch)]
        expected = [e for batch in batches for e in reference.feed(batch)]
        assert got == expected
    assert fast.flush() == reference.flush()
    assert (fast.rejected, fast.busy) == (reference.rejected, reference.busy)


def test_a_tokens_line_at_a_batch_end_takes_the_cost_line_of_the_next() -> None:
    matcher = Matcher()
    for _ in range(3):  # the second and third time from the cached outcomes
        first = matcher.feed(["Cost: $0.25", "Tokens: 10 input, 2 output"])
        second = matcher.feed(["Cost: $0.01", "Tokens: 3 input, 4 output", "Tokens: 5 input, 6 output"])
        third = matcher.feed(["  ⎿  Usage: $0.05 (1234 tokens)"])
        assert [(e.pattern, e.input_tokens, e.cost_usd) for e in first + second + third] == [
            ("seed-cost", 0, 0.25), ("seed-tokens", 10, 0.01), ("seed-tokens", 3, None),
            ("seed-tokens", 5, None), ("seed-usage", 1234, 0.05)]
    assert matcher.flush() == [] and not matcher.busy
