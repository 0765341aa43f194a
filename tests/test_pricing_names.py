"""pricing matches model names with string methods (no `re` on the status line's
path): each function does exactly what the regular expression it replaced did."""

from __future__ import annotations

import re

import pytest
from hypothesis import example, given, settings
from hypothesis import strategies as st

from claudewrap.usage import pricing, rule

SUBS = [
    (pricing._drop_date, r"-(?:19|20)\d{6}$"),
    (pricing._drop_provider, r"^(?:[a-z0-9-]+\.)?anthropic\."),
    (pricing._drop_brackets, r"\[[^\]]*\]$"),
    (pricing._drop_at, r"@[0-9a-z-]+$"),
    (pricing._drop_version, r"-v\d+(?::\d+)?$"),
    (pricing._drop_latest, r"-latest$"),
]
NEW_STYLE = re.compile(r"^claude-(opus|sonnet|haiku)-(\d+)(?:[-.](\d{1,2}))?(?=$|-)")
OLD_STYLE = re.compile(r"^claude-(\d+)(?:[-.](\d{1,2}))?-(opus|sonnet|haiku)(?=$|-)")

# Pieces model names are made of, and the characters the patterns turn on.
PIECES = ["claude", "-", ".", "opus", "sonnet", "haiku", "4", "5", "45", "1", "0", "2025",
          "20250929", "19991231", "-v1", ":0", "@", "20240620", "latest", "-latest", "[1m]",
          "[", "]", "/", "us.", "anthropic.", "bedrock", "\n", "٤", "x", "v", "A", " ", ":"]
names = st.lists(st.sampled_from(PIECES), max_size=10).map("".join) | st.text(max_size=12)


def family_by_pattern(model: str) -> tuple[str, int, int] | None:
    name = re.sub(r"-(?:19|20)\d{6}$", "", model.strip().lower())
    m = NEW_STYLE.match(name)
    if m:
        return m.group(1), int(m.group(2)), int(m.group(3) or 0)
    m = OLD_STYLE.match(name)
    if m:
        return m.group(3), int(m.group(1)), int(m.group(2) or 0)
    return None


@pytest.mark.parametrize("fn,pattern", SUBS, ids=[f.__name__ for f, _ in SUBS])
@settings(max_examples=600, deadline=None)
@given(name=names)
@example(name="a[x[y]")
@example(name="x-latest\n")
@example(name="us.anthropic.claude-opus-4-5@20251101\n")
@example(name="claude-v-v1:2")
def test_each_name_rule_is_its_pattern(fn: object, pattern: str, name: str) -> None:
    assert fn(name) == re.sub(pattern, "", name)  # type: ignore[operator]


@settings(max_examples=600, deadline=None)
@given(st.one_of(names, st.integers(), st.none()))
@example("claude-haiku-4-5-20251001\n")
@example("x-٤0000000")
def test_rule_undated_is_its_pattern(model: object) -> None:
    expected = re.sub(r"-\d{8}$", "", model) if isinstance(model, str) else model
    assert rule.undated(model) == expected


@settings(max_examples=1500, deadline=None)
@given(names)
@example("claude-opus-4-567")
@example("claude-opus-45x")
@example("claude-4.5-sonnet-x")
@example("claude-3-5-haiku-20241022")
@example("claude-opus-٤-5\n")
@example("claude-3-5-sonnet\n")
def test_family_key_is_its_patterns(name: str) -> None:
    assert pricing.family_key(name) == family_by_pattern(name)


@settings(max_examples=500, deadline=None)
@given(names)
def test_candidates_are_the_patterns_in_turn(model: str) -> None:
    name = model.strip().lower()
    expected = [name]
    name = re.sub(r"^(?:[a-z0-9-]+\.)?anthropic\.", "",
                  re.sub(r"\[[^\]]*\]$", "", name).rsplit("/", 1)[-1])
    expected.append(name)
    for pattern in (r"@[0-9a-z-]+$", r"-v\d+(?::\d+)?$", r"-latest$"):
        name = re.sub(pattern, "", name)
        expected.append(name)
    expected.append(re.sub(r"-(?:19|20)\d{6}$", "", name))
    assert list(pricing._candidates(model)) == expected
