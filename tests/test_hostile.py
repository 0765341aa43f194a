"""Hostile output and hostile journals (issue 13, items 1-3).

What claude shows includes files, logs and web pages, so the parser reads
untrusted text: no printed line may poison the journal (NaN, Infinity, a
negative or absurd count), stop capture, or print more than one line; and every
reader must skip and count the lines an older version or another tool wrote.
"""

from __future__ import annotations

import json
import subprocess
import tempfile
import threading
from pathlib import Path
from typing import Any

from conftest import CW, cw, read_all, spawn
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from claudewrap import api
from claudewrap.store.records import MAX_COST_USD, MAX_TOKENS
from claudewrap.wrap.capture import Capture

NINES = "9" * 400


def strict(line: str) -> dict[str, Any]:
    """A journal line read as strict JSON: NaN and Infinity are errors."""
    def refuse(name: str) -> Any:
        raise ValueError(f"not JSON: {name}")
    obj = json.loads(line, parse_constant=refuse)
    assert isinstance(obj, dict)
    return obj


def journal_records(path: Path) -> list[dict[str, Any]]:
    if not path.exists():
        return []
    return [strict(line) for line in path.read_text(encoding="utf-8").splitlines()]


def plausible(rec: dict[str, Any]) -> bool:
    counts = [rec.get(k, 0) for k in ("input_tokens", "output_tokens", "cache_read_tokens",
                                      "cache_write_tokens")]
    cost = rec.get("cost_usd")
    return (all(isinstance(n, int) and 0 <= n <= MAX_TOKENS for n in counts)
            and (cost is None or 0 <= cost <= MAX_COST_USD))


def p_result(**fields: Any) -> str:
    """A `claude -p --output-format json` result line; json.dumps writes
    Infinity/NaN as Claude Code never would, but a printed file might."""
    obj: dict[str, Any] = {"type": "result", "subtype": "success", "session_id": "abc",
                           "result": "hi", **fields}
    return json.dumps(obj)


# Each of these, printed by claude, once poisoned the journal or stopped capture.
HOSTILE = [
    f"Cost: ${NINES}",
    f"Usage: ${NINES} (12 tokens)",
    f"Tokens: {NINES}k input, 5 output",
    p_result(total_cost_usd=float("inf")),
    p_result(total_cost_usd=float("nan"), usage={"input_tokens": 3}),
    p_result(total_cost_usd=0.5, usage={"input_tokens": float("inf")}),
    p_result(total_cost_usd=-3.5, usage={"input_tokens": 4}),
    p_result(usage={"input_tokens": -1000, "output_tokens": 2}),
    p_result(usage={"cache_read_input_tokens": int("9" * 300)}),
    p_result(modelUsage={"claude-x": {"inputTokens": 10**35, "costUSD": 1e30}}),
    '{"type":"result","result":"x","usage":' + "[" * 100_000 + "]" * 100_000 + "}",
    '{"type":"result","result":"x","total_cost_usd":' + "1" * 5000 + "}",
    "Total cost: $" + "1" * 31,
    "Usage by model:",
    f"  claude-x:  {10**35} input, 5 output, 0 cache read, 0 cache write ($1e30)",
    f"  claude-y:  {NINES}k input, 5 output, 0 cache read, 0 cache write (${NINES})",
]


def hostile_session(good: int = 200) -> bytes:
    """``good`` usage lines (input i, output 2i), a hostile line after every tenth."""
    lines = []
    hostile = iter(HOSTILE * (good // 10 // len(HOSTILE) + 1))
    for i in range(1, good + 1):
        lines.append(f"Tokens: {i} input, {2 * i} output")
        lines.append("some reply text")
        if i % 10 == 0:
            lines.append(next(hostile))
            lines.append("more reply text")
    return ("\r\n".join(lines) + "\r\n").encode()


def test_hostile_lines_cost_only_themselves_and_print_one_line(
        env: dict[str, str], tmp_path: Path) -> None:
    screen = tmp_path / "screen.bin"
    screen.write_bytes(hostile_session())
    res = cw(["run", "--", "file", str(screen)], env)
    assert res.returncode == 0, res.stderr
    assert "some reply text" in res.stdout  # claude's output passes unchanged
    records = journal_records(Path(env["CLAUDEWRAP_JOURNAL"]))
    assert sorted((r["input_tokens"], r["output_tokens"]) for r in records) == [
        (i, 2 * i) for i in range(1, 201)]
    assert all(plausible(r) for r in records)
    lines = res.stderr.splitlines()
    assert len(lines) <= 1, res.stderr
    assert "Traceback" not in res.stderr
    assert lines[0].startswith("claudewrap: skipped ") and "could not be recorded" in lines[0]


def test_hostile_lines_in_a_pty_keep_capture_on(env: dict[str, str], tmp_path: Path) -> None:
    screen = tmp_path / "screen.bin"
    screen.write_bytes(hostile_session(100))
    out = read_all(spawn([*CW, "run", "--", "file", str(screen)], env))
    records = journal_records(Path(env["CLAUDEWRAP_JOURNAL"]))
    assert len(records) == 100
    assert b"Traceback" not in out and b"capture stopped" not in out
    assert out.count(b"claudewrap:") <= 1


def test_readers_are_fine_after_a_hostile_session(env: dict[str, str], tmp_path: Path) -> None:
    screen = tmp_path / "screen.bin"
    screen.write_bytes(hostile_session())
    assert cw(["run", "--", "file", str(screen)], env).returncode == 0
    usage = cw(["usage", "--json"], env)
    assert usage.returncode == 0, usage.stderr
    report = json.loads(usage.stdout)
    assert report["total"]["input_tokens"] == sum(range(1, 201))
    assert report["skipped_lines"] == 0
    for args in (["usage"], ["status"], ["metrics"], ["cost"], ["journal", "check"]):
        res = cw(args, env)
        assert res.returncode == 0 and not res.stderr, (args, res.stderr)
        assert "Inf" not in res.stdout and "NaN" not in res.stdout, args


def test_parse_shows_no_traceback_for_hostile_json(env: dict[str, str]) -> None:
    res = subprocess.run([*CW, "parse", "-"], input="\n".join([*HOSTILE, "Tokens: 7 input, 8 output"]),
                         env=env, capture_output=True, text=True, timeout=60, check=False)
    assert res.returncode == 0, res.stderr
    events = [json.loads(line) for line in res.stdout.splitlines()]
    assert [(e["input_tokens"], e["output_tokens"]) for e in events] == [(7, 8)]
    assert "Traceback" not in res.stderr
    assert res.stderr.startswith("skipped ") and len(res.stderr.splitlines()) == 1


# --- a journal that already holds such lines ------------------------------------------

GOOD = ('{"v":1,"ts":"%s","session":"s1","source":"pty","kind":"delta",'
        '"model":"claude-sonnet-4-5","input_tokens":100,"output_tokens":10,"cost_usd":0.5}')

POISON = [
    ('"cost_usd":0.5', '"cost_usd":Infinity', "cost_usd is not a finite number"),
    ('"cost_usd":0.5', '"cost_usd":NaN', "cost_usd is not a finite number"),
    ('"cost_usd":0.5', '"cost_usd":-Infinity', "cost_usd is not a finite number"),
    ('"input_tokens":100', '"input_tokens":-1000', "input_tokens is negative"),
    ('"cost_usd":0.5', '"cost_usd":-3.5', "cost_usd is negative"),
    ('"input_tokens":100', '"input_tokens":1e35', "input_tokens is above 10^10"),
    ('"cost_usd":0.5', '"cost_usd":1e30', "cost_usd is above $10^6"),
    ('"output_tokens":10', '"output_tokens":1e400', "output_tokens is not a finite number"),
    ('"input_tokens":100', '"cache_read_tokens":' + "9" * 300, "cache_read_tokens is above"),
    ('"input_tokens":100', '"input_tokens":1.5', "input_tokens is not a whole number"),
]


def poisoned_journal(path: Path) -> tuple[list[int], int]:
    """Good lines with POISON between them; the poisoned line numbers, and the good count."""
    lines, bad = [], []
    for i in range(30):
        ts = f"2026-01-{1 + i % 28:02d}T10:00:{i % 60:02d}.000Z"
        lines.append(GOOD % ts)
        if i < len(POISON):
            old, new, _ = POISON[i]
            lines.append((GOOD % ts).replace(old, new))
            bad.append(len(lines))
    lines.append('{"v":1,"ts":"2026-01-02T00:00:00.000Z","session":"s1","x":'
                 + "[" * 50_000 + "]" * 50_000 + "}")
    bad.append(len(lines))
    path.write_text("\n".join(lines) + "\n", encoding="utf-8")
    return bad, 30


def test_every_reader_skips_and_counts_poisoned_lines(env: dict[str, str]) -> None:
    journal = Path(env["CLAUDEWRAP_JOURNAL"])
    bad, good = poisoned_journal(journal)
    for no_cache in ([], ["--no-cache"], []):  # cold, uncached, from the cache built first
        res = cw(["usage", "--json", "--since", "2000-01-01", *no_cache], env)
        assert res.returncode == 0, res.stderr
        report = json.loads(res.stdout)
        assert report["skipped_lines"] == len(bad)
        assert report["total"]["input_tokens"] == 100 * good
        assert abs(report["total"]["cost_usd"] - 0.5 * good) < 1e-9
    plain = cw(["usage"], env)
    assert plain.returncode == 0 and "Traceback" not in plain.stderr
    assert f"skipped {len(bad)} unreadable journal lines" in plain.stderr
    for args in (["status"], ["cost", "--session", "s1", "--json"], ["monitor", "--once"],
                 ["export", "--format", "json"], ["export", "--format", "csv"]):
        res = cw(args, env)
        assert res.returncode == 0, (args, res.stderr)
        assert "Traceback" not in res.stderr
        assert "Infinity" not in res.stdout and "NaN" not in res.stdout, args
    exported = cw(["export", "--format", "json"], env).stdout.splitlines()
    assert len(exported) == good and all(plausible(strict(line)) for line in exported)
    for args in (["metrics"], ["export"]):
        res = cw(args, env)
        assert res.returncode == 0, (args, res.stderr)
        assert "Inf" not in res.stdout and "NaN" not in res.stdout, args
        assert f"claude_journal_skipped_lines {float(len(bad))}" in res.stdout or args == [
            "export"]


def test_journal_check_lists_each_poisoned_line_and_why(env: dict[str, str]) -> None:
    journal = Path(env["CLAUDEWRAP_JOURNAL"])
    bad, good = poisoned_journal(journal)
    res = cw(["journal", "check"], env)
    assert res.returncode == 1
    assert f"{good} good records, {len(bad)} unreadable lines" in res.stdout
    listed = {int(line.split()[1].rstrip(":")): line for line in res.stdout.splitlines()
              if line.startswith("  line ")}
    assert sorted(listed) == bad[:10]  # the first ten, each with its reason
    for (_, _, why), lineno in zip(POISON, bad):
        assert why in listed[lineno], listed[lineno]


def test_api_follow_skips_poisoned_lines(env: dict[str, str]) -> None:
    journal = Path(env["CLAUDEWRAP_JOURNAL"])
    _, good = poisoned_journal(journal)
    stop = threading.Event()
    stop.set()
    got = list(api.follow(None, journal, from_start=True, stop=stop, poll=0.01))
    assert len(got) == good
    assert all(r.cost_usd == 0.5 and r.input_tokens == 100 for r in got)
    assert api.session_usage("s1", journal).usage.input_tokens == 100 * good


# --- the parser over random chunkings ------------------------------------------------

absurd_count = st.one_of(
    st.integers(min_value=-(10**40), max_value=10**40),
    st.integers(min_value=MAX_TOKENS - 2, max_value=MAX_TOKENS + 2),
    st.floats(allow_nan=True, allow_infinity=True),
    st.text("0123456789", min_size=11, max_size=450).map(int),
)
absurd_printed = st.one_of(
    st.text("0123456789", min_size=1, max_size=450),
    st.builds(lambda d, s: d + s, st.text("0123456789", min_size=1, max_size=40),
              st.sampled_from(["k", "m", "b", ".5k", ",999"])),
)


@st.composite
def hostile_line(draw: st.DrawFn) -> str:
    n, m = draw(absurd_printed), draw(absurd_printed)
    form = draw(st.integers(0, 7))
    if form == 0:
        return f"Tokens: {n} input, {m} output"
    if form == 1:
        return f"Cost: ${n}"
    if form == 2:
        return f"Usage: ${n} ({m} tokens)"
    if form == 3:
        return (f"Total cost: ${n}\r\nUsage by model:\r\n"
                f"  claude-x:  {n} input, {m} output, {n} cache read, {m} cache write (${m})")
    if form == 4:
        return p_result(total_cost_usd=draw(absurd_count),
                        usage={"input_tokens": draw(absurd_count),
                               "cache_read_input_tokens": draw(absurd_count)})
    if form == 5:
        return p_result(modelUsage={"claude-x": {"inputTokens": draw(absurd_count),
                                                 "outputTokens": draw(absurd_count),
                                                 "costUSD": draw(absurd_count)}})
    if form == 6:
        depth = draw(st.sampled_from([10, 900, 5000, 100_000]))
        return '{"type":"result","result":"x","usage":' + "[" * depth + "]" * depth + "}"
    return draw(st.text(max_size=200)).replace("\n", " ")


@settings(max_examples=60, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(hostile=st.lists(hostile_line(), min_size=1, max_size=12),
       cuts=st.lists(st.integers(min_value=1, max_value=4096), max_size=30))
def test_random_chunkings_record_only_plausible_records_and_every_good_one(
        hostile: list[str], cuts: list[int]) -> None:
    lines = []
    for i, bad in enumerate(hostile, 1):
        lines += [f"Tokens: {1000 + i} input, {i} output", "reply", bad, "reply"]
    data = ("\r\n".join(lines) + "\r\n").encode("utf-8", "surrogatepass")
    with tempfile.TemporaryDirectory() as tmp:
        journal = Path(tmp) / "journal.jsonl"
        cap = Capture(session="h", journal=str(journal))
        pos = 0
        for cut in cuts:
            cap.feed(data[pos:pos + cut])
            pos += cut
            if cut % 3 == 0:
                cap.idle()  # the launcher reports the child idle now and then
        cap.feed(data[pos:])
        warning = cap.close()
        records = journal_records(journal)
    assert warning is None or "\n" not in warning
    assert all(plausible(r) for r in records), records
    got = {(r["input_tokens"], r["output_tokens"]) for r in records}
    assert {(1000 + i, i) for i in range(1, len(hostile) + 1)} <= got


@settings(max_examples=60, deadline=None)
@given(parts=st.lists(st.one_of(st.binary(max_size=300), hostile_line().map(str.encode),
                                st.sampled_from([b"\x1b[2J", b"\x1b]0;t", b"\x07", b"\r\n",
                                                 b"{", b'{"type":"result"', b"}"])),
                      max_size=20),
       cuts=st.lists(st.integers(min_value=1, max_value=512), max_size=20))
def test_random_bytes_never_raise_and_record_only_plausible_records(
        parts: list[bytes], cuts: list[int]) -> None:
    data = b"".join(parts)
    with tempfile.TemporaryDirectory() as tmp:
        journal = Path(tmp) / "journal.jsonl"
        cap = Capture(session="b", journal=str(journal))
        pos = 0
        for cut in cuts:
            cap.feed(data[pos:pos + cut])
            pos += cut
            cap.idle()
        cap.feed(data[pos:])
        warning = cap.close()
        records = journal_records(journal)
    assert warning is None or "\n" not in warning
    assert all(plausible(r) for r in records), records


def test_import_skips_transcript_lines_with_impossible_counts(env: dict[str, str]) -> None:
    projects = Path(env["HOME"]) / ".claude" / "projects" / "-work"
    projects.mkdir(parents=True)

    def line(rid: str, usage: str) -> str:
        return ('{"type":"assistant","requestId":"' + rid + '","sessionId":"s","timestamp":'
                '"2026-01-01T00:00:00.000Z","message":{"model":"claude-x","id":"' + rid
                + '","usage":' + usage + "}}")
    (projects / "s.jsonl").write_text("\n".join([
        line("r1", '{"input_tokens":Infinity,"output_tokens":1}'),
        line("r2", '{"input_tokens":' + str(10**35) + ',"output_tokens":1}'),
        line("r3", '{"input_tokens":5,"output_tokens":1}'),
    ]) + "\n")
    res = cw(["import"], env)
    assert res.returncode == 0 and "Traceback" not in res.stderr, res.stderr
    records = journal_records(Path(env["CLAUDEWRAP_JOURNAL"]))
    assert [(r["request_id"], r["input_tokens"]) for r in records] == [("r3", 5)]


def test_names_that_are_not_utf8_do_not_break_any_reader(env: dict[str, str]) -> None:
    """A project folder whose name is not UTF-8 (Latin-1 `café` reaches a record as
    `caf\\udce9`), a session id with a lone surrogate: every reader, cold and from
    its caches, shows them spelled out (the rollup's encoder refused them, and
    every reader failed with a traceback)."""
    from claudewrap.store.journal import append_records
    from claudewrap.store.records import UsageRecord, utc_now_iso

    journal = Path(env["CLAUDEWRAP_JOURNAL"])
    append_records(journal, [
        UsageRecord(ts=utc_now_iso(), session="s1", source="pty", input_tokens=5,
                    project="caf\udce9", model="claude-sonnet-4-5", cost_usd=0.25),
        UsageRecord(ts="2026-07-01T10:00:00.000Z", session="o\udcffld", source="pty",
                    input_tokens=7, project="caf\udce9"),  # settled history too
    ])
    for _ in range(2):  # cold, then from the caches
        res = cw(["usage", "--json", "--since", "2000-01-01", "--by", "project"], env)
        assert res.returncode == 0, res.stderr
        report = json.loads(res.stdout)
        assert report["total"]["input_tokens"] == 12
        assert list(report["by_project"]) == ["caf\\udce9"]
        for args in (["usage", "--by", "session"], ["status"], ["cost", "--session", "s1"],
                     ["monitor", "--once"], ["metrics"], ["export", "--format", "csv"]):
            # (a reader that prints a record as it was written may give the name's
            # own bytes back: not UTF-8, as the folder's name is not)
            raw = subprocess.run([*CW, *args], env=env, capture_output=True, timeout=60,
                                 check=False)
            assert raw.returncode == 0 and b"Traceback" not in raw.stderr, (args, raw.stderr)
        assert "caf\\udce9" in cw(["usage", "--by", "project"], env).stdout
        assert "o\\udcffld" in cw(["usage", "--by", "session"], env).stdout
