"""`claudewrap advise` on crafted journals: each suggestion appears when its evidence is
there, with the dollars computed by hand, and not otherwise.

Rates (USD per million, prices.toml): opus-5-5 4/20/0.20/5, sonnet-5 3/15/0.30/3.75.
"""

from __future__ import annotations

import json
from datetime import datetime, timedelta, timezone
from pathlib import Path
from typing import Any

import pytest

from claudewrap.store.records import UsageRecord
from tests.conftest import cw

M = 1_000_000
OPUS, SONNET = "claude-opus-5-5", "claude-sonnet-5"


def rec(session: str, model: str, *, days_ago: int = 1, i: int = 0, o: int = 0, cr: int = 0,
        cw_: int = 0, cost: float | None = None, project: str = "api",
        tags: dict[str, str] | None = None) -> str:
    ts = (datetime.now(timezone.utc) - timedelta(days=days_ago)).replace(
        hour=12, minute=0, second=0, microsecond=0)
    return UsageRecord(ts=ts.strftime("%Y-%m-%dT%H:%M:%S.000Z"), session=session,
                       source="manual", model=model, input_tokens=i, output_tokens=o,
                       cache_read_tokens=cr, cache_write_tokens=cw_, cost_usd=cost,
                       project=project, tags=tags or {}).to_json() + "\n"


def advise(env: dict[str, str], lines: list[str], *args: str) -> tuple[dict[str, Any], str]:
    env["TZ"] = "UTC"
    Path(env["CLAUDEWRAP_JOURNAL"]).write_text("".join(lines), encoding="utf-8")
    data = cw(["advise", "--json", *args], env)
    text = cw(["advise", *args], env)
    assert data.returncode == text.returncode == 0, (data.stderr, text.stderr)
    assert not text.stderr
    return json.loads(data.stdout), text.stdout


def kinds(data: dict[str, Any]) -> list[str]:
    return [s["kind"] for s in data["suggestions"]]


def test_expensive_model_for_small_sessions_is_priced_on_sonnet(env: dict[str, str]) -> None:
    data, text = advise(env, [rec(f"s{n}", OPUS, i=100_000, o=200, cost=1.0)
                              for n in range(4)])
    assert kinds(data) == ["expensive_model"]
    on_sonnet = 4 * (100_000 * 3 + 200 * 15) / M  # 1.212
    s = data["suggestions"][0]
    assert s["usd_at_stake"] == pytest.approx(4.0 - on_sonnet)
    assert s["numbers"]["cost_on_cheaper_usd"] == pytest.approx(on_sonnet)
    assert ("4 sessions on opus-5-5 with < 500 output tokens each cost $4.00; on sonnet-5"
            " they would have cost $1.21") in text
    assert "($2.79 at stake)" in text


@pytest.mark.parametrize("lines", [
    [rec(f"s{n}", OPUS, i=100_000, o=600, cost=1.0) for n in range(4)],  # real output
    [rec(f"s{n}", OPUS, i=100_000, o=200, cost=1.0) for n in range(2)],  # too few
    [rec(f"s{n}", SONNET, i=100_000, o=200, cost=1.0) for n in range(4)],  # not expensive
    [rec(f"s{n}", OPUS, i=100_000, o=200, cost=1.0, days_ago=40) for n in range(4)],  # old
], ids=["output", "few", "sonnet", "before-since"])
def test_no_expensive_model_suggestion_without_its_evidence(env: dict[str, str],
                                                            lines: list[str]) -> None:
    data, _ = advise(env, lines)
    assert "expensive_model" not in kinds(data)


def usual_weeks() -> list[str]:
    return [rec(f"u{d}", SONNET, days_ago=d, i=200_000, cr=1_000_000, o=1_000)
            for d in range(10, 30, 3)]


def test_cache_read_ratio_far_below_usual_is_reported(env: dict[str, str]) -> None:
    data, text = advise(env, [*usual_weeks(), rec("now", SONNET, days_ago=2, i=1_000_000,
                                                  o=1_000)])
    assert kinds(data) == ["cache_drop"]
    usual = 1_000_000 / 1_200_000
    stake = usual * 1_000_000 * (3 - 0.30) / M  # 2.25
    s = data["suggestions"][0]
    assert s["usd_at_stake"] == pytest.approx(stake)
    assert s["numbers"] == {"recent_ratio": 0.0, "usual_ratio": pytest.approx(usual, abs=1e-6)}
    assert "cache read ratio 0% in the last 7 days against 83% in the 28 before" in text
    assert "would have cost $2.25 less" in text


def test_cache_read_ratio_as_usual_says_nothing(env: dict[str, str]) -> None:
    data, text = advise(env, [*usual_weeks(), rec("now", SONNET, days_ago=2, i=200_000,
                                                  cr=900_000, o=1_000)])
    assert data["suggestions"] == []
    assert text.startswith("No suggestions: nothing in 8 sessions since ")
    assert text.count("\n") == 1


def test_one_project_taking_most_of_the_spend(env: dict[str, str]) -> None:
    data, text = advise(env, [rec("a1", SONNET, o=5_000, cost=6.0, project="web"),
                              rec("a2", SONNET, o=5_000, cost=2.0, project="web"),
                              rec("b1", SONNET, o=5_000, cost=1.0, project="cli")])
    assert kinds(data) == ["most_spend"]
    assert data["suggestions"][0]["usd_at_stake"] == pytest.approx(8.0)
    assert "project web cost $8.00 of $9.00 (89%)" in text


def test_one_agent_taking_most_of_the_spend(env: dict[str, str]) -> None:
    data, text = advise(env, [
        rec("a1", SONNET, o=5_000, cost=6.0, tags={"agent": "reviewer"}),
        rec("b1", SONNET, o=5_000, cost=1.0, project="cli")])
    assert {(s["numbers"]["dimension"], s["numbers"]["name"]) for s in data["suggestions"]
            } == {("agent", "reviewer"), ("project", "api")}
    assert "agent reviewer cost $6.00 of $7.00 (86%)" in text


def test_spend_spread_over_projects_says_nothing(env: dict[str, str]) -> None:
    data, _ = advise(env, [rec("a1", SONNET, o=5_000, cost=5.0, project="web"),
                           rec("b1", SONNET, o=5_000, cost=4.0, project="cli")])
    assert data["suggestions"] == []


def test_short_sessions_that_write_the_cache_again(env: dict[str, str]) -> None:
    data, text = advise(env, [rec(f"s{n}", SONNET, i=1_000, o=300, cw_=100_000)
                              for n in range(6)])
    assert kinds(data) == ["restarts"]
    writes = 6 * 100_000 * 3.75 / M  # 2.25
    reads = 6 * 100_000 * 0.30 / M  # 0.18
    s = data["suggestions"][0]
    assert s["usd_at_stake"] == pytest.approx(writes - reads)
    assert s["numbers"]["sessions"] == 6
    assert "6 short sessions (< 2,000 output tokens) paid $2.25 for writing the cache" in text
    assert "would have cost $0.18" in text


@pytest.mark.parametrize("lines", [
    [rec(f"s{n}", SONNET, i=1_000, o=300, cw_=100_000) for n in range(4)],  # few
    [rec(f"s{n}", SONNET, i=1_000, o=3_000, cw_=100_000) for n in range(6)],  # not short
    [rec(f"s{n}", SONNET, i=1_000, o=300, cw_=100_000, cr=2_000_000)
     for n in range(6)],  # the writes are a small part of the cost
], ids=["few", "long", "reads"])
def test_no_restart_suggestion_without_its_evidence(env: dict[str, str],
                                                    lines: list[str]) -> None:
    data, _ = advise(env, lines)
    assert "restarts" not in kinds(data)


def test_empty_journal_has_one_line(env: dict[str, str]) -> None:
    data, text = advise(env, [])
    assert data["suggestions"] == [] and data["sessions"] == 0
    assert text.startswith("No suggestions: no usage recorded since ")
    assert text.count("\n") == 1


def test_suggestions_come_biggest_first(env: dict[str, str]) -> None:
    data, text = advise(env, [
        *[rec(f"o{n}", OPUS, i=100_000, o=200, cost=1.0, project="p") for n in range(4)],
        *[rec(f"s{n}", SONNET, i=1_000, o=300, cw_=100_000, project="p") for n in range(6)]])
    assert kinds(data) == ["expensive_model", "restarts"]
    assert text.startswith("1. Use sonnet-5 for short questions ($2.79 at stake)")
    assert "\n2. Continue sessions instead of starting new ones ($2.07 at stake)" in text


def test_bad_since_is_one_line(env: dict[str, str]) -> None:
    result = cw(["advise", "--since", "someday"], env)
    assert result.returncode == 2
    assert "Traceback" not in result.stderr
    assert "--since" in result.stderr.splitlines()[-1]


def test_journal_that_is_a_directory_is_one_line(env: dict[str, str], tmp_path: Path) -> None:
    folder = tmp_path / "journal-dir"
    folder.mkdir()
    for args in (["advise"], ["usage", "--analysis"]):
        done = cw(args, dict(env, CLAUDEWRAP_JOURNAL=str(folder)))
        assert done.returncode == 1
        assert done.stderr == (f"Error: the journal {folder} is a directory: set"
                               f" CLAUDEWRAP_JOURNAL to a file path (e.g."
                               f" {folder}/journal.jsonl)\n")
