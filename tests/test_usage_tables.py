"""What a person reads in `claudewrap usage` tables agrees with `--json` on the same journal.

Every number printed (whole or shortened with k/M/G, with the ~ and +? markers)
is parsed back and compared with the JSON report, at 40, 80 and 200 columns.
"""

from __future__ import annotations

import json
import re
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest

from claudewrap.store.records import UsageRecord
from tests.conftest import ROOT

UNITS = {"k": 10**3, "M": 10**6, "G": 10**9}
NUMBER_KEYS = ("input_tokens", "output_tokens", "cache_read_tokens", "cache_write_tokens")


def parse_count(text: str) -> tuple[float, float]:
    """A printed count -> (value, how far the truth may be from it)."""
    m = re.fullmatch(r"(-?[\d,]+(?:\.\d+)?)([kMG]?)", text)
    assert m, f"not a count: {text!r}"
    number, unit = m.groups()
    if not unit:
        assert "." not in number, text
        if len(number.replace(",", "").lstrip("-")) > 3:
            assert "," in number, f"{text!r}: no thousands separators"
        return float(number.replace(",", "")), 0.0
    assert "," not in number, text
    assert float(number) < 1000, f"{text!r}: should have moved up a unit"
    return float(number) * UNITS[unit], 0.05 * UNITS[unit] + 1e-9


def parse_money(text: str) -> tuple[float, bool, bool]:
    """``~$1,234.56+?`` -> (amount, estimated, unpriced)."""
    m = re.fullmatch(r"(~?)\$([\d,]+\.\d\d)(\+\?)?", text)
    assert m, f"not an amount: {text!r}"
    return float(m.group(2).replace(",", "")), bool(m.group(1)), bool(m.group(3))


def check_row(cells: list[str], truth: dict[str, Any], what: str) -> None:
    for text, key in zip(cells[:4], NUMBER_KEYS):
        value, slack = parse_count(text)
        assert abs(value - truth[key]) <= slack, (what, key, text, truth[key])
    amount, estimated, unpriced = parse_money(cells[4])
    assert abs(amount - truth["cost_usd"]) <= 0.005 + 1e-9, (what, cells[4], truth["cost_usd"])
    assert estimated == (truth["cost_estimated_usd"] > 0), (what, cells[4])
    assert unpriced == (truth["unpriced_records"] > 0), (what, cells[4])


def rec(session: str, model: str | None, project: str, i: int, o: int, cr: int = 0,
        cw: int = 0, cost: float | None = None, ts: str = "2026-11-02T10:00:00.000Z"
        ) -> str:
    return UsageRecord(ts=ts, session=session, source="manual", model=model, input_tokens=i,
                       output_tokens=o, cache_read_tokens=cr, cache_write_tokens=cw,
                       cost_usd=cost, project=project).to_json() + "\n"


@pytest.fixture
def journal(tmp_path: Path) -> Path:
    """Numbers that cross every boundary of the short form, priced, estimated and unpriced."""
    path = tmp_path / "journal.jsonl"
    path.write_text("".join([
        rec("s1", "claude-sonnet-4-5", "api", 250_000, 21_475, 1_234_567, 9_999, cost=12.5),
        rec("s2", "claude-sonnet-4-5", "api", 999_960, 999, 10_000, 0),  # estimated
        rec("s3", "claude-opus-4-5", "web-ünïcode", 1_234, 5_678, 2_500_000_000, 42, cost=3.75),
        rec("s4", "mystery-model-9", "web-ünïcode", 4_321, 100_000, 0, 0),  # unpriced
        rec("s5", "claude-haiku-4-5", "cli", 7, 3, 0, 0, cost=0.01,
            ts="2026-11-03T10:00:00.000Z"),
    ]), encoding="utf-8")
    return path


def run(env: dict[str, str], journal: Path, *args: str, columns: int | None = None
        ) -> subprocess.CompletedProcess[str]:
    e = dict(env, PYTHONPATH=str(ROOT), CLAUDEWRAP_JOURNAL=str(journal))
    e.pop("COLUMNS", None)
    if columns is not None:
        e["COLUMNS"] = str(columns)
    return subprocess.run([sys.executable, "-m", "claudewrap", "usage", *args], env=e,
                          capture_output=True, text=True, timeout=60, check=False)


def table_rows(text: str, labels: int) -> dict[str, list[str]]:
    """Rows of a printed table: the first ``labels`` cells (joined by |) -> the others."""
    rows = {}
    for line in text.splitlines()[1:]:
        cells = re.split(r"\s{2,}", line.strip())
        if len(cells) > labels and cells[0] not in ("~", "+?"):
            rows["|".join(cells[:labels])] = cells[labels:]
    return rows


@pytest.mark.parametrize("columns", [40, 80, 200])
@pytest.mark.parametrize("dim", ["model", "project", "session"])
def test_grouped_table_numbers_match_json_at_every_width(env: dict[str, str], journal: Path,
                                                         columns: int, dim: str) -> None:
    data = json.loads(run(env, journal, "--json", "--by", dim).stdout)
    shown = run(env, journal, "--by", dim, columns=columns)
    assert shown.returncode == 0, shown.stderr
    rows = table_rows(shown.stdout, 1)
    truth = data[f"by_{dim}"]
    assert set(rows) == {*truth, "total"}
    for key, cells in rows.items():
        check_row(cells, data["total"] if key == "total" else truth[key], key)
    shortened = re.search(r"\d[kMG]\b", shown.stdout)
    if columns == 200:  # room for every number in full
        assert not shortened, shown.stdout
    elif not shortened:  # numbers in full only where the table fits
        assert max(map(len, shown.stdout.splitlines()[:-2])) <= columns, shown.stdout
    if columns == 40:
        assert shortened, shown.stdout


def test_short_numbers_are_not_ten_times_too_small(env: dict[str, str], journal: Path) -> None:
    shown = run(env, journal, "--by", "session", columns=40).stdout
    row = table_rows(shown, 1)["s1"]
    assert row[:4] == ["250.0k", "21.5k", "1.2M", "9,999"], shown
    assert table_rows(shown, 1)["s2"][0] == "1.0M"  # 999,960 rounds up a unit
    assert table_rows(shown, 1)["s3"][2] == "2.5G"


@pytest.mark.parametrize("columns", [40, 80, 200])
def test_default_view_periods_and_tops_match_json(env: dict[str, str], journal: Path,
                                                  columns: int) -> None:
    data = json.loads(run(env, journal, "--json").stdout)
    shown = run(env, journal, columns=columns)
    assert shown.returncode == 0, shown.stderr
    blocks = shown.stdout.split("\n\n")
    periods = table_rows(blocks[0], 1)
    check_row(periods["all time"], data["total"], "all time")
    for title, key in (("top models", "by_model"), ("top projects", "by_project")):
        block = next(b for b in blocks if b.startswith(title))
        for label, (tokens, money) in table_rows(block, 1).items():
            truth = data[key][label]
            value, slack = parse_count(tokens)
            total = sum(truth[k] for k in NUMBER_KEYS)
            assert abs(value - total) <= slack, (label, tokens, total)
            amount, estimated, unpriced = parse_money(money)
            assert abs(amount - truth["cost_usd"]) <= 0.005 + 1e-9
            assert (estimated, unpriced) == (truth["cost_estimated_usd"] > 0,
                                             truth["unpriced_records"] > 0), (label, money)
    assert "+?" in shown.stdout and "~$" in shown.stdout  # the markers are explained
    assert "+? includes models without a known price" in shown.stdout


def test_a_filter_that_matches_nothing_says_so(env: dict[str, str], journal: Path) -> None:
    for args in (["--project", "nope"], ["--model", "gpt", "--by", "day"],
                 ["--since", "2030-01-01"]):
        shown = run(env, journal, *args)
        assert shown.returncode == 0, shown.stderr
        assert "No usage matches " in shown.stdout, (args, shown.stdout)
        assert "5 records" in shown.stdout and "recorded yet" not in shown.stdout
    empty = journal.with_name("empty.jsonl")
    shown = run(env, empty, "--project", "nope")
    assert shown.stdout.startswith("No usage recorded yet in "), shown.stdout


def columns_of(text: str) -> int:
    """Terminal columns: wide characters take two, combining marks none (unicodedata,
    not claudewrap's own helper)."""
    import unicodedata

    return sum(0 if unicodedata.combining(c) else
               2 if unicodedata.east_asian_width(c) in ("W", "F") else 1 for c in text)


def right_edges(line: str) -> list[int]:
    """The terminal column where each cell of ``line`` (cells: 2+ spaces apart) ends."""
    return [columns_of(line[:m.end()]) for m in re.finditer(r"(?:\S| (?=\S))+", line)]


def left_edges(line: str) -> list[int]:
    """The terminal column where each cell of ``line`` starts."""
    return [columns_of(line[:m.start()]) for m in re.finditer(r"(?:\S| (?=\S))+", line)]


WIDE_IDS = ["会话-1", "cafe\u0301-2", "run-🚀"]


@pytest.mark.parametrize("columns", [40, 80, 200])
def test_numbers_of_wide_and_combining_ids_stay_in_their_columns(
        env: dict[str, str], tmp_path: Path, columns: int) -> None:
    journal = tmp_path / "journal.jsonl"
    journal.write_text("".join(
        rec(sid, "claude-sonnet-4-5", "api", 12_345 * (n + 1), 678, cost=0.5)
        for n, sid in enumerate(["s-plain", *WIDE_IDS])), encoding="utf-8")
    data = json.loads(run(env, journal, "--json", "--by", "session").stdout)
    shown = run(env, journal, "--by", "session", columns=columns)
    assert shown.returncode == 0, shown.stderr
    lines = shown.stdout.splitlines()
    rows = table_rows(shown.stdout, 1)
    assert set(rows) == {*data["by_session"], "total"}
    for key, cells in rows.items():
        check_row(cells, data["total"] if key == "total" else data["by_session"][key], key)
    header = right_edges(lines[0])[1:]
    for line in lines[1:len(WIDE_IDS) + 3]:  # every session and the total
        assert right_edges(line)[1:] == header, (line, lines[0])


def test_monitor_keeps_wide_session_ids_in_their_columns(env: dict[str, str],
                                                         tmp_path: Path) -> None:
    from datetime import datetime, timezone

    now = datetime.now(timezone.utc).isoformat(timespec="milliseconds").replace("+00:00", "Z")
    journal = tmp_path / "journal.jsonl"
    journal.write_text("".join(rec(sid, "claude-sonnet-4-5", "web", 1_000, 100, cost=0.01, ts=now)
                               for sid in ["s-plain", *WIDE_IDS]), encoding="utf-8")
    e = dict(env, PYTHONPATH=str(ROOT), CLAUDEWRAP_JOURNAL=str(journal), COLUMNS="80")
    shown = subprocess.run([sys.executable, "-m", "claudewrap", "monitor", "--once"], env=e,
                           capture_output=True, text=True, timeout=60, check=False)
    assert shown.returncode == 0, shown.stderr
    lines = shown.stdout.splitlines()
    head = next(n for n, line in enumerate(lines) if line.startswith("SESSION"))
    table = lines[head:head + 1 + len(WIDE_IDS) + 1]
    assert {sid for sid in WIDE_IDS if any(sid in line for line in table)} == set(WIDE_IDS)
    # Project and model start where their headers do; the numbers end where theirs do.
    starts, ends = left_edges(table[0])[1:3], right_edges(table[0])[-4:]
    for line in table[1:]:
        assert (left_edges(line)[1:3], right_edges(line)[-4:]) == (starts, ends), (line, table[0])
