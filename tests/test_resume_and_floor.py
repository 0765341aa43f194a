"""A finished session's block printed again counts once; what Claude Code displayed
is a floor when exact records are incomplete (issue 12 items 4 and 5).

`claudewrap run` relays a stand-in `claude` that prints the real bytes Claude
Code 2.1.332 printed for `claude -p --resume ID /cost`; the journal holds what the
interactive session before it left there.
"""

from __future__ import annotations

import json
import stat
import sys
from pathlib import Path
from typing import Any

import pytest
from conftest import cw

from claudewrap.store.records import UsageRecord

CAPTURES = Path(__file__).resolve().parent / "captures"
RESUME_RAW = CAPTURES / "claude-code-2.1.332" / "p_resume_cost.raw"
SID = "5d7b0b8e-2f43-4c1e-9d0a-0c1f2e3d4a5b"
MODEL = "claude-opus-5-5"
# What the captured block shows: 28.3k input, 8.8k output, 169.7k cache read,
# 32.8k cache write ($0.4868).
SHOWN = (28_300, 8_800, 169_700, 32_800, 0.4868)


def fake_claude(tmp_path: Path, raw: Path) -> Path:
    """A `claude` that prints ``raw`` when run as ``-p --resume ID /cost``."""
    path = tmp_path / "claude-resume"
    path.write_text(f"#!{sys.executable}\n"
                    "import os, sys\n"
                    "args = sys.argv[1:]\n"
                    "assert '-p' in args and '--resume' in args and args[-1] == '/cost', args\n"
                    f"os.write(1, open({str(raw)!r}, 'rb').read())\n")
    path.chmod(path.stat().st_mode | stat.S_IXUSR)
    return path


def requests(n: int, *, session: str, source: str, scale: float = 1.0) -> list[UsageRecord]:
    """``n`` requests of the session that add up to what the block shows (times ``scale``)."""
    out = []
    parts = [int(v * scale) for v in SHOWN[:4]]
    for k in range(n):
        share = [p // n + (p % n if k == n - 1 else 0) for p in parts]
        out.append(UsageRecord(
            ts=f"2026-11-30T10:0{k}:00.000Z", session=session, source=source, model=MODEL,
            input_tokens=share[0], output_tokens=share[1], cache_read_tokens=share[2],
            cache_write_tokens=share[3],
            cost_usd=round(SHOWN[4] * scale / n, 6) if source == "otel" else None,
            request_id=f"req_{session}_{k}", claude_session=SID))
    return out


def screen_block(session: str, claude_session: str | None = None) -> UsageRecord:
    return UsageRecord(ts="2026-11-30T10:09:00.000Z", session=session, source="pty",
                       kind="total", model=MODEL, input_tokens=SHOWN[0], output_tokens=SHOWN[1],
                       cache_read_tokens=SHOWN[2], cache_write_tokens=SHOWN[3],
                       cost_usd=SHOWN[4], approximate=True, claude_session=claude_session)


def write(path: Path, records: list[UsageRecord]) -> None:
    path.write_text("".join(r.to_json() + "\n" for r in records), encoding="utf-8")


def usage_json(env: dict[str, str]) -> dict[str, Any]:
    done = cw(["usage", "--json"], env)
    assert done.returncode == 0, done.stderr
    return json.loads(done.stdout)  # type: ignore[no-any-return]


def resume_cost(env: dict[str, str], tmp_path: Path) -> None:
    done = cw(["run", "--claude", str(fake_claude(tmp_path, RESUME_RAW)), "--", "-p",
               "--resume", SID, "/cost"], env)
    assert done.returncode == 0, done.stderr
    assert "Estimated cost:" in done.stdout  # relayed unchanged


@pytest.fixture
def journal(env: dict[str, str]) -> Path:
    return Path(env["CLAUDEWRAP_JOURNAL"])


def test_resume_cost_after_a_wrapped_session_counts_once(env: dict[str, str], tmp_path: Path,
                                                         journal: Path) -> None:
    # The interactive session ran wrapped: OTel saw each request, the screen its /cost.
    write(journal, [*requests(3, session="wrap-1", source="otel"), screen_block("wrap-1")])
    before = usage_json(env)["total"]
    assert before["input_tokens"] == SHOWN[0]
    resume_cost(env, tmp_path)
    recorded = [json.loads(line) for line in journal.read_text().splitlines()]
    assert recorded[-1]["claude_session"] == SID and recorded[-1]["kind"] == "total"
    after = usage_json(env)["total"]
    assert after == {**before, "records": after["records"], "sessions": after["sessions"]}
    assert after["input_tokens"] == SHOWN[0]
    assert after["cost_usd"] == pytest.approx(SHOWN[4], abs=1e-5)


def test_resume_cost_of_an_unwrapped_session_counts_it_once(env: dict[str, str],
                                                            tmp_path: Path,
                                                            journal: Path) -> None:
    # Nothing of the session was recorded: the block is all there is; twice is once.
    resume_cost(env, tmp_path)
    resume_cost(env, tmp_path)
    total = usage_json(env)["total"]
    assert (total["input_tokens"], total["output_tokens"], total["cache_read_tokens"],
            total["cache_write_tokens"]) == SHOWN[:4]
    assert total["cost_usd"] == pytest.approx(SHOWN[4])
    # Its transcript imported later: exact per-request records replace the block.
    with open(journal, "a", encoding="utf-8") as fh:
        fh.writelines(r.to_json() + "\n" for r in requests(4, session=SID, source="transcript"))
    total = usage_json(env)["total"]
    assert total["input_tokens"] == SHOWN[0]


def test_incomplete_transcript_never_reports_less_than_claude_code_displayed(
        env: dict[str, str], journal: Path) -> None:
    # --no-otel: the transcript lost requests (70% of the usage is in it); the
    # screen showed the whole session's block.
    write(journal, [*requests(3, session="wrap-2", source="transcript", scale=0.7),
                    screen_block("wrap-2")])
    data = usage_json(env)
    total = data["total"]
    assert (total["input_tokens"], total["output_tokens"], total["cache_read_tokens"],
            total["cache_write_tokens"]) == SHOWN[:4]
    # What a person reads agrees: the table shows the displayed numbers.
    shown = cw(["usage", "--by", "model"], dict(env, COLUMNS="200")).stdout
    assert f"{SHOWN[0]:,}" in shown and f"{SHOWN[2]:,}" in shown, shown
    # The part the transcript lacks counts as the screen's (it showed it).
    sources = cw(["usage", "--json", "--by", "source"], env)
    by_source = json.loads(sources.stdout)["by_source"]
    assert by_source["pty"]["input_tokens"] == SHOWN[0] - int(SHOWN[0] * 0.7)


def test_complete_exact_records_win_within_the_blocks_rounding(env: dict[str, str],
                                                               journal: Path) -> None:
    # Exact records a little above or below the rounded block (28.3k is 28,250 to
    # 28,349): the exact numbers count, nothing is added.
    exact = requests(2, session="wrap-3", source="otel")
    exact[0].input_tokens -= 40
    exact[1].cache_read_tokens += 49
    write(journal, [*exact, screen_block("wrap-3")])
    total = usage_json(env)["total"]
    assert total["input_tokens"] == SHOWN[0] - 40
    assert total["cache_read_tokens"] == SHOWN[2] + 49


def test_resumed_session_args_name_the_claude_session() -> None:
    from claudewrap.wrap.runner import resumed_session

    assert resumed_session(["-p", "--resume", SID, "/cost"]) == SID
    assert resumed_session(["-r", "abc", "hi"]) == "abc"
    assert resumed_session([f"--resume={SID}"]) == SID
    assert resumed_session(["--session-id", "x1"]) == "x1"
    assert resumed_session(["--resume"]) is None  # the picker: no id given
    assert resumed_session(["--continue", "-p", "hi"]) is None
    assert resumed_session(["--", "--resume", "x"]) is None


def cost_alone(session: str, source: str, cost: float, claude_session: str | None = None
               ) -> UsageRecord:
    """A session's cost with no rows: `Total cost: $x` on screen, or the status line."""
    return UsageRecord(ts="2026-11-30T10:09:30.000Z", session=session, source=source,
                       kind="total", cost_usd=cost, claude_session=claude_session)


@pytest.mark.parametrize("source", ["pty", "statusline"])
def test_a_cost_alone_is_held_against_every_model_of_the_session(
        env: dict[str, str], journal: Path, source: str) -> None:
    # Two models' exact requests add up to what the session's cost line says: nothing
    # is added (a cost alone covers every model, not the records without one).
    exact = requests(2, session="wrap-5", source="otel")
    side = UsageRecord(ts="2026-11-30T10:05:00.000Z", session="wrap-5", source="otel",
                       model="claude-haiku-4-5", input_tokens=100, cost_usd=0.0123,
                       request_id="req_side", claude_session=SID)
    total = sum(r.cost_usd or 0 for r in exact) + 0.0123
    shown = cost_alone("wrap-5" if source == "pty" else SID, source, round(total, 4),
                       claude_session=None if source == "pty" else SID)
    write(journal, [*exact, side, shown])
    assert usage_json(env)["total"]["cost_usd"] == pytest.approx(total, abs=1e-4)
    # Requests missing from the exact records: the session's cost is the floor.
    write(journal, [exact[0], side, shown])
    data = usage_json(env)
    assert data["total"]["cost_usd"] == pytest.approx(round(total, 4), abs=1e-6)
    assert data["total"]["input_tokens"] == exact[0].input_tokens + 100


def test_a_dated_model_in_the_exact_records_is_the_blocks_undated_row(
        env: dict[str, str], journal: Path) -> None:
    # Claude Code 2.1.197: OTel reports the side requests' model with its date
    # (claude-haiku-4-5-20251001), /cost shows the row without it: one model.
    exact = requests(2, session="wrap-6", source="otel")
    for r in exact:
        r.model = "claude-haiku-4-5-20251001"
    block = screen_block("wrap-6")
    block.model = "claude-haiku-4-5"
    write(journal, [*exact, block])
    total = usage_json(env)["total"]
    assert total["input_tokens"] == SHOWN[0]
    assert total["cost_usd"] == pytest.approx(SHOWN[4], abs=1e-5)


def test_the_status_line_and_claude_json_of_one_session_count_once(
        env: dict[str, str], journal: Path) -> None:
    # A session imported from ~/.claude.json, then resumed with the status line on:
    # the itemised summary counts; the status line's cost is its floor.
    summary = [UsageRecord(ts="2026-11-30T10:00:00.000Z", session=SID, source="claude_json",
                           kind="total", model=MODEL, input_tokens=SHOWN[0],
                           output_tokens=SHOWN[1], cache_read_tokens=SHOWN[2],
                           cache_write_tokens=SHOWN[3], cost_usd=SHOWN[4],
                           claude_session=SID)]
    write(journal, [*summary, cost_alone(SID, "statusline", SHOWN[4], claude_session=SID)])
    total = usage_json(env)["total"]
    assert total["input_tokens"] == SHOWN[0]
    assert total["cost_usd"] == pytest.approx(SHOWN[4], abs=1e-6)
    # The resumed session went on: the status line shows more than the summary.
    write(journal, [*summary, cost_alone(SID, "statusline", SHOWN[4] + 0.25,
                                         claude_session=SID)])
    assert usage_json(env)["total"]["cost_usd"] == pytest.approx(SHOWN[4] + 0.25, abs=1e-6)
