"""Plan-limit snapshots (claudewrap.usage.limits): kept once per change, read back fresh."""

from __future__ import annotations

import json
import os
import stat
from pathlib import Path

from claudewrap.usage import limits

NOW = 1_796_000_000.0


def status_input(five: float, week: float, *, resets: float = NOW + 3600) -> dict[str, object]:
    """What Claude Code gives a status-line command for a subscriber (2.1.80 on)."""
    return {"session_id": "s", "cost": {"total_cost_usd": 0.1},
            "rate_limits": {"five_hour": {"used_percentage": five, "resets_at": resets},
                            "seven_day": {"used_percentage": week,
                                          "resets_at": NOW + 5 * 86400}}}


def test_snapshots_are_kept_only_when_they_change(tmp_path: Path) -> None:
    journal = tmp_path / "journal.jsonl"
    snaps = limits.from_status_input(status_input(62, 17), ts="t1", host="h")
    assert [(s.window, s.used) for s in snaps] == [("five_hour", 0.62), ("seven_day", 0.17)]
    assert limits.record(journal, snaps) == 2
    assert limits.record(journal, limits.from_status_input(status_input(62, 17), ts="t2",
                                                           host="h")) == 0
    assert limits.record(journal, limits.from_status_input(status_input(63, 17), ts="t3",
                                                           host="h")) == 1
    path = limits.limits_path(journal)
    assert stat.S_IMODE(os.stat(path).st_mode) == 0o600
    assert len(path.read_text().splitlines()) == 3
    assert json.loads(path.read_text().splitlines()[-1])["used"] == 0.63
    now = limits.latest(journal, now=NOW)
    assert now["five_hour"].used == 0.63 and now["seven_day"].used == 0.17


def test_no_rate_limits_and_bad_values_give_nothing(tmp_path: Path) -> None:
    assert limits.from_status_input({"cost": {}}, ts="t", host=None) == []
    assert limits.from_status_input("junk", ts="t", host=None) == []
    bad = status_input(float("inf"), -5)
    assert limits.from_status_input(bad, ts="t", host=None) == []
    limits.limits_path(tmp_path / "j.jsonl").write_text("{]\nnot json\n")
    assert limits.latest(tmp_path / "j.jsonl", now=NOW) == {}


def test_a_window_that_has_reset_is_not_shown(tmp_path: Path) -> None:
    journal = tmp_path / "journal.jsonl"
    limits.record(journal, limits.from_status_input(status_input(90, 20, resets=NOW - 1),
                                                    ts="t", host="h"))
    assert set(limits.latest(journal, now=NOW)) == {"seven_day"}


def test_pace_says_when_the_window_fills_at_this_rate() -> None:
    # 2 of 5 hours gone (3 h left), 50% used: 100% 2 h from now, before the reset.
    snap = limits.Snapshot("five_hour", 0.5, NOW + 3 * 3600)
    full = snap.pace(NOW)
    assert full is not None and abs(full - (NOW + 2 * 3600)) < 1
    assert limits.Snapshot("five_hour", 0.2, NOW + 3 * 3600).pace(NOW) is None  # resets first
    assert limits.Snapshot("five_hour", 0.0, NOW + 3600).pace(NOW) is None
