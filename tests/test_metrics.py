"""`claudewrap metrics`: the exposition, parsed with prometheus_client's own parser,
against hand-built journals; counters that never go down; the recent rates;
live-session markers; the textfile written atomically."""

from __future__ import annotations

import os
import signal
import socket
import subprocess
import sys
import textwrap
import time
from collections.abc import Iterable
from datetime import datetime, timezone
from pathlib import Path
from typing import Any

import pytest
from click.testing import CliRunner
from conftest import ROOT, gen_journal
from hypothesis import given, settings
from hypothesis import strategies as st
from prometheus_client.parser import text_string_to_metric_families

from claudewrap.cli import cli
from claudewrap.export import metrics
from claudewrap.export.metrics import JournalMetrics, advance_counters
from claudewrap.store.records import UsageRecord
from claudewrap.usage import rollup
from claudewrap.usage.pricing import default_table
from claudewrap.usage.report import make_report
from claudewrap.wrap import live

HOST = socket.gethostname()
# "Now" for the records a test makes: set again before each test (conftest.py), so
# that a record made "300 s ago" is that old when the test reads it, however long
# the suite ran before (it was the time of import: in a full run, a test late in
# the suite read its "5 minutes ago" as 15 and its rate gauge lost the record).
NOW = time.time()


def iso(seconds_ago: float, now: float | None = None) -> str:
    when = datetime.fromtimestamp((NOW if now is None else now) - seconds_ago, timezone.utc)
    return when.strftime("%Y-%m-%dT%H:%M:%S.") + f"{when.microsecond // 1000:03d}Z"


def rec(ago: float, session: str = "s1", **kw: Any) -> UsageRecord:
    kw.setdefault("source", "pty")
    kw.setdefault("model", "claude-sonnet-4-5")
    kw.setdefault("project", "web")
    kw.setdefault("host", "box")
    return UsageRecord(ts=iso(ago), session=session, **kw)


def write(path: Path, items: Iterable[UsageRecord | str], mode: str = "w") -> Path:
    with open(path, mode, encoding="utf-8") as f:
        f.writelines((i if isinstance(i, str) else i.to_json()) + "\n" for i in items)
    return path


Samples = dict[tuple[str, frozenset[tuple[str, str]]], float]


def parse(text: str | bytes) -> Samples:
    """{(sample name, labels): value} of an exposition, by prometheus_client's parser."""
    if isinstance(text, bytes):
        text = text.decode()
    out: Samples = {}
    for family in text_string_to_metric_families(text):
        for s in family.samples:
            out[(s.name, frozenset(s.labels.items()))] = s.value
    return out


def value(samples: Samples, name: str, **labels: str) -> float:
    """The sum of the samples of ``name`` whose labels include ``labels``."""
    want = set(labels.items())
    found = [v for (n, ls), v in samples.items() if n == name and want <= ls]
    assert found, f"no {name} with {labels}"
    return sum(found)


def labels_of(samples: Samples, name: str) -> list[dict[str, str]]:
    return [dict(ls) for (n, ls), _ in samples.items() if n == name]


@pytest.fixture(autouse=True)
def no_user_prices(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("CLAUDEWRAP_PRICES", str(tmp_path / "no-prices.toml"))


def scrape(journal: Path, **kw: Any) -> Samples:
    return parse(metrics.render_prometheus(journal, **kw))


# --------------------------------------------------------------------------- counters


def test_counters_follow_the_summing_rules(tmp_path: Path) -> None:
    table = default_table()
    j = write(tmp_path / "j.jsonl", [
        rec(600, input_tokens=1000, output_tokens=200, cost_usd=0.5),
        rec(500, input_tokens=10, output_tokens=5, cache_read_tokens=7, cost_usd=0.25),
        # a /cost block redrawn, then a higher running total: the highest counts once
        rec(400, "s2", kind="total", input_tokens=3000, output_tokens=100, cost_usd=1.0,
            approximate=True, project="api"),
        rec(300, "s2", kind="total", input_tokens=3000, output_tokens=100, cost_usd=1.0,
            approximate=True, project="api"),
        rec(200, "s2", kind="total", input_tokens=5000, output_tokens=300, cost_usd=1.5,
            approximate=True, project="api"),
        # no printed cost: priced by claudewrap, labelled estimated
        rec(100, "s3", source="transcript", input_tokens=2_000_000, host="ci"),
        # a model without a price: tokens count, no dollars
        rec(90, "s4", model="mystery-model", input_tokens=77, project=None, host=None),
        '{"torn": ',
    ])
    s = scrape(j)
    key = {"model": "claude-sonnet-4-5", "project": "web", "source": "pty", "host": "box"}
    assert value(s, "claude_api_tokens_input_total", **key) == 1010
    assert value(s, "claude_api_tokens_output_total", **key) == 205
    assert value(s, "claude_api_tokens_cache_read_total", **key) == 7
    assert value(s, "claude_api_tokens_cache_write_total", **key) == 0
    assert value(s, "claude_api_cost_dollars_total", estimated="false", **key) == 0.75
    assert value(s, "claude_api_cost_dollars_total", estimated="true", **key) == 0
    assert value(s, "claude_api_records_total", **key) == 2
    assert value(s, "claude_api_tokens_input_total", project="api") == 5000
    assert value(s, "claude_api_cost_dollars_total", project="api") == 1.5
    est = table.cost("claude-sonnet-4-5", 2_000_000)
    assert est
    assert value(s, "claude_api_cost_dollars_total", host="ci", estimated="true") == est
    assert value(s, "claude_api_cost_dollars_total", host="ci", estimated="false") == 0
    unknown = {"model": "mystery-model", "project": "unknown", "host": "unknown"}
    assert value(s, "claude_api_tokens_input_total", **unknown) == 77
    assert value(s, "claude_api_cost_dollars_total", **unknown) == 0
    assert value(s, "claude_journal_skipped_lines") == 1
    # Exactly the documented labels, no session ids.
    for name in ("claude_api_tokens_input_total", "claude_api_records_total"):
        assert {frozenset(ls) for ls in labels_of(s, name)} == {
            frozenset(("model", "project", "source", "host"))}
    assert {frozenset(ls) for ls in labels_of(s, "claude_api_cost_dollars_total")} == {
        frozenset(("model", "project", "source", "host", "estimated"))}


def test_totals_equal_the_usage_report(tmp_path: Path) -> None:
    """The same rules as `claudewrap usage`: request ids counted once across sources,
    running totals by their highest value, torn lines skipped."""
    generate = gen_journal().generate
    j = tmp_path / "gen.jsonl"
    with open(j, "w", encoding="utf-8") as out:
        truth = generate(out, 20_000, seed=7, corrupt_every=5000)
    report = make_report(rollup.load_state(j, use_cache=False), count_sessions=False)
    s = scrape(j, use_cache=False)
    assert value(s, "claude_api_tokens_input_total") == truth["input_tokens"]
    assert value(s, "claude_api_tokens_output_total") == truth["output_tokens"]
    assert value(s, "claude_api_tokens_cache_read_total") == truth["cache_read_tokens"]
    assert value(s, "claude_api_tokens_cache_write_total") == truth["cache_write_tokens"]
    assert value(s, "claude_api_cost_dollars_total") == pytest.approx(report.total.cost_usd)
    assert value(s, "claude_api_cost_dollars_total", estimated="true") == pytest.approx(
        report.total.cost_estimated_usd)
    assert value(s, "claude_api_records_total") == report.total.records
    assert value(s, "claude_journal_skipped_lines") == report.skipped_lines == 4


def test_counters_never_go_down_when_exact_usage_replaces_rounded(tmp_path: Path) -> None:
    j = write(tmp_path / "j.jsonl", [
        rec(300, "w1", kind="total", input_tokens=1200, cost_usd=5.0, approximate=True,
            claude_session="c1"),
    ])
    first = scrape(j)
    assert value(first, "claude_api_cost_dollars_total", source="pty") == 5.0
    # The exact total of the same Claude session (its transcript) replaces the /cost block.
    write(j, [rec(200, "t1", source="transcript", kind="total", input_tokens=1180,
                  cost_usd=4.8, claude_session="c1")], "a")
    scrape(j)  # the transcript's series appears (at 0)
    second = scrape(j)
    for key, v in first.items():
        if key[0].endswith("_total"):
            assert second[key] >= v, key
    assert value(second, "claude_api_cost_dollars_total") == 5.0  # the highest total reached
    assert value(second, "claude_api_tokens_input_total") == 1200
    # Once the true total passes the highest one, the counters follow it again.
    write(j, [rec(100, "t1", source="transcript", kind="total", input_tokens=2000,
                  cost_usd=6.0, claude_session="c1")], "a")
    third = scrape(j)
    for key, v in second.items():
        if key[0].endswith("_total"):
            assert third[key] >= v, key
    assert value(third, "claude_api_cost_dollars_total") == pytest.approx(6.0)
    assert value(third, "claude_api_tokens_input_total") == 2000
    # The counters live beside the journal: a new process continues from them.
    assert scrape(j) == third
    assert metrics.counters_path(j).exists()


def test_a_new_series_shows_zero_once(tmp_path: Path) -> None:
    """Prometheus's increase() starts a series at its first sample: the usage that
    creates a series (a new project here) would never count unless it starts at 0.
    The first export of a journal shows its values (history, not new usage)."""
    j = write(tmp_path / "j.jsonl", [rec(60, input_tokens=10)])
    assert value(scrape(j), "claude_api_tokens_input_total") == 10
    write(j, [rec(30, "s2", project="new", input_tokens=7, cost_usd=0.5)], "a")
    s = scrape(j)
    assert value(s, "claude_api_tokens_input_total", project="new") == 0
    assert value(s, "claude_api_cost_dollars_total", project="new") == 0
    assert value(s, "claude_tokens_per_minute", project="new", type="input") > 0
    s = scrape(j)
    assert value(s, "claude_api_tokens_input_total", project="new") == 7
    assert value(s, "claude_api_cost_dollars_total", project="new") == 0.5
    # A journal that did not exist at the last export: all of it is new usage.
    k = tmp_path / "k.jsonl"
    scrape(k)
    write(k, [rec(10, input_tokens=5)])
    assert value(scrape(k), "claude_api_tokens_input_total") == 0
    assert value(scrape(k), "claude_api_tokens_input_total") == 5


def test_a_request_seen_again_from_a_better_source_counts_once(tmp_path: Path) -> None:
    j = write(tmp_path / "j.jsonl", [
        rec(300, "w1", input_tokens=100, output_tokens=10, request_id="req_1", cost_usd=0.1),
    ])
    m = JournalMetrics(j)
    m.update()
    before = m.snapshot()
    write(j, [rec(200, "w1", source="otel", input_tokens=100, output_tokens=10,
                  request_id="req_1", cost_usd=0.1)], "a")
    m.update()
    after = m.snapshot()
    assert sum(after.counters["tokens_input"].values()) == 100
    for name, family in before.counters.items():
        for key, v in family.items():
            assert after.counters[name][key] >= v


def test_a_replaced_or_truncated_journal_is_a_real_reset(tmp_path: Path) -> None:
    j = write(tmp_path / "j.jsonl", [rec(60, input_tokens=500), rec(50, input_tokens=500)])
    assert value(scrape(j), "claude_api_tokens_input_total") == 1000
    # rotated: a new file under the same name
    os.rename(j, tmp_path / "j.jsonl.1")
    write(j, [rec(10, input_tokens=30)])
    assert value(scrape(j), "claude_api_tokens_input_total") == 30
    # truncated in place, then written again
    write(j, [rec(5, input_tokens=40)])
    assert value(scrape(j), "claude_api_tokens_input_total") == 40


def test_incremental_reads_only_new_lines(tmp_path: Path, monkeypatch: pytest.MonkeyPatch
                                          ) -> None:
    j = write(tmp_path / "j.jsonl", [rec(60, input_tokens=1)] * 50)
    starts: list[int] = []
    real_scan = rollup.scan

    def spy(fd: int, state: Any, start: int, stop: int | None = None) -> tuple[int, bool]:
        starts.append(start)
        end, tail = real_scan(fd, state, start, stop)
        return end, tail

    monkeypatch.setattr(rollup, "scan", spy)
    m = JournalMetrics(j)
    m.update()
    size = j.stat().st_size
    with open(j, "a", encoding="utf-8") as f:
        f.write(rec(30, input_tokens=5).to_json()[:20])  # a line being written
    m.update()
    assert starts == [0, size]
    assert sum(m.snapshot().counters["tokens_input"].values()) == 50
    with open(j, "a", encoding="utf-8") as f:
        f.write(rec(30, input_tokens=5).to_json()[20:] + "\n")
    m.update()
    assert starts[-1] == size
    assert sum(m.snapshot().counters["tokens_input"].values()) == 55


def test_state_cache_gives_the_same_numbers(tmp_path: Path) -> None:
    big = [rec(7200 - i * 0.01, f"s{i % 50}", input_tokens=i, output_tokens=1, cost_usd=0.001,
               request_id=f"r{i}") for i in range(6000)]
    j = write(tmp_path / "j.jsonl", big)
    assert j.stat().st_size > metrics._REWRITE
    fresh = scrape(j, use_cache=False)
    cached = scrape(j)
    assert metrics.state_cache_path(j).exists()
    assert cached == fresh
    m = JournalMetrics(j)
    m.update()
    assert m.saved_offset == j.stat().st_size  # loaded, nothing read again
    # a duplicate of a cached request id still counts once
    write(j, [rec(10, "s1", source="otel", input_tokens=5999, output_tokens=1,
                  cost_usd=0.001, request_id="r5999")], "a")
    again = scrape(j)
    assert value(again, "claude_api_tokens_input_total") == value(fresh,
                                                                  "claude_api_tokens_input_total")


# ------------------------------------------------------------------------- the rule


def test_advance_counters_shares_a_move_within_a_project() -> None:
    a = ("m", "p", "pty", "h")
    b = ("m", "p", "transcript", "h")
    c = ("m", "q", "pty", "h")
    prev = {"tokens_input": {a: 100, c: 10}}
    # usage moved from a to b (same project): nothing rises
    out = advance_counters(prev, {"tokens_input": {a: 0, b: 100, c: 10}})
    assert out["tokens_input"] == {a: 100, b: 0, c: 10}
    # the project's true total rises by 30 beyond the exported 100: b gets it
    out = advance_counters(out, {"tokens_input": {a: 0, b: 130, c: 10}})
    assert out["tokens_input"] == {a: 100, b: 30, c: 10}
    # another project is never held back by it
    out = advance_counters(out, {"tokens_input": {a: 0, b: 130, c: 25}})
    assert out["tokens_input"][c] == 25


_keys = st.sampled_from([("m", p, s, "h") for p in "pq" for s in ("pty", "otel")])


@settings(max_examples=200, deadline=None)
@given(st.lists(st.dictionaries(_keys, st.integers(0, 1000), max_size=4), min_size=1,
                max_size=8))
def test_counters_only_rise_and_keep_the_highest_project_total(
        truths: list[dict[tuple[str, ...], int]]) -> None:
    exported: dict[str, dict[tuple[str, ...], float]] = {}
    best: dict[str, int] = {}
    for truth in truths:
        new = advance_counters(exported, {"tokens_input": dict(truth)})
        for key, v in exported.get("tokens_input", {}).items():
            assert new["tokens_input"][key] >= v
        for project in "pq":
            total = sum(v for k, v in truth.items() if k[1] == project)
            best[project] = max(best.get(project, 0), total)
            got = sum(v for k, v in new["tokens_input"].items() if k[1] == project)
            assert got == best[project]
            assert all(float(v).is_integer() for v in new["tokens_input"].values())
        exported = new


# ---------------------------------------------------------------------------- rates


def test_rates_over_the_recent_window(tmp_path: Path) -> None:
    j = write(tmp_path / "j.jsonl", [
        rec(120, input_tokens=600, output_tokens=300, cost_usd=0.3),
        rec(300, input_tokens=900, cache_read_tokens=1500, cost_usd=0.2),
        rec(1800, input_tokens=100_000, cost_usd=50.0),  # outside 15 min, inside 1 h
        # a running total: only its rise inside the window counts
        rec(2400, "s2", kind="total", output_tokens=1000, cost_usd=1.0, project="api"),
        rec(240, "s2", kind="total", output_tokens=1600, cost_usd=1.25, project="api"),
    ])
    s = scrape(j)
    web = {"project": "web", "model": "claude-sonnet-4-5", "source": "pty", "host": "box"}
    assert value(s, "claude_tokens_per_minute", type="input", **web) == pytest.approx(1500 / 15)
    assert value(s, "claude_tokens_per_minute", type="output", **web) == pytest.approx(300 / 15)
    assert value(s, "claude_tokens_per_minute", type="cache_read", **web) == pytest.approx(100)
    assert value(s, "claude_tokens_per_minute", type="output", project="api") == pytest.approx(
        600 / 15)
    assert value(s, "claude_cost_per_hour_dollars", **web) == pytest.approx(0.5 * 4)
    assert value(s, "claude_cost_per_hour_dollars", project="api") == pytest.approx(0.25 * 4)
    hour = parse(metrics.render_prometheus(j, window=3600))
    assert value(hour, "claude_tokens_per_minute", type="input", **web) == pytest.approx(
        101_500 / 60)
    assert value(hour, "claude_cost_per_hour_dollars") == pytest.approx(50.5 + 1.25)


def test_window_option_and_help(tmp_path: Path) -> None:
    j = write(tmp_path / "j.jsonl", [rec(120, input_tokens=600)])
    result = CliRunner().invoke(cli, ["metrics", "--journal", str(j), "--window", "1h"])
    assert result.exit_code == 0, result.output
    assert "over the last 1 h" in result.output
    assert value(parse(result.output), "claude_tokens_per_minute", type="input") == 10
    result = CliRunner().invoke(cli, ["metrics", "--journal", str(j), "--window", "5s"])
    assert result.exit_code == 2 and "between 1m and 24h" in result.output


# --------------------------------------------------------------------- live sessions


def test_live_markers_count_running_sessions_only(tmp_path: Path) -> None:
    j = tmp_path / "data" / "journal.jsonl"
    j.parent.mkdir()
    assert live.active(j) == []
    with live.register("abc", {"project": "web", "host": HOST}, journal=j) as marker:
        (found,) = live.active(j)
        assert found["session"] == "abc" and found["pid"] == os.getpid()
        assert found["project"] == "web" and found["model"] is None
        marker.update(model="claude-opus-4-1")
        assert live.active(j)[0]["model"] == "claude-opus-4-1"
        assert value(scrape(j), "claude_sessions_active", host=HOST) == 1
        assert oct(os.stat(live.live_dir(j)).st_mode & 0o777) == "0o700"
    assert live.active(j) == []
    assert value(scrape(j), "claude_sessions_active", host=HOST) == 0


def test_a_crashed_session_leaves_no_active_marker(tmp_path: Path) -> None:
    j = tmp_path / "journal.jsonl"
    code = textwrap.dedent(f"""
        import sys, time
        from claudewrap.wrap import live
        with live.register("crashy", {{"project": "p"}}, journal={str(j)!r}):
            print("ready", flush=True)
            time.sleep(60)
    """)
    child = subprocess.Popen([sys.executable, "-c", code], stdout=subprocess.PIPE,
                             env={**os.environ, "PYTHONPATH": str(ROOT)})
    try:
        assert child.stdout is not None and child.stdout.readline() == b"ready\n"
        assert [m["session"] for m in live.active(j)] == ["crashy"]
        child.send_signal(signal.SIGKILL)
        child.wait(10)
    finally:
        if child.poll() is None:
            child.kill()
            child.wait()
    assert len(os.listdir(live.live_dir(j))) == 1  # left behind by the crash
    assert live.active(j) == []
    assert os.listdir(live.live_dir(j)) == []  # cleaned


def test_recycled_pid_and_other_hosts_do_not_count(tmp_path: Path) -> None:
    j = tmp_path / "journal.jsonl"
    folder = Path(live.live_dir(j))
    folder.mkdir()
    (folder / "reused.json").write_text(
        f'{{"pid": {os.getpid()}, "proc_start": "1", "session": "x", "host": "{HOST}"}}')
    (folder / "other.json").write_text('{"pid": 1, "session": "y", "host": "elsewhere"}')
    (folder / "junk.json").write_text("not json")
    assert live.active(j) == []
    assert sorted(os.listdir(folder)) == ["junk.json", "other.json"]


# --------------------------------------------------------------------------- textfile


READER = textwrap.dedent("""
    import sys, time
    path, stop_after = sys.argv[1], float(sys.argv[2])
    reads = bad = 0
    end = time.time() + stop_after
    while time.time() < end:
        try:
            with open(path, "rb") as f:
                data = f.read()
        except FileNotFoundError:
            continue
        reads += 1
        if not data.endswith(b"\\n") or b"# TYPE claude_journal_skipped_lines gauge" not in data:
            bad += 1
    print(reads, bad)
""")


def _read_concurrently(path: Path, seconds: float, writer: Any) -> tuple[int, int]:
    reader = subprocess.Popen([sys.executable, "-c", READER, str(path), str(seconds)],
                              stdout=subprocess.PIPE)
    try:
        end = time.time() + seconds
        while time.time() < end:
            writer()
        out, _ = reader.communicate(timeout=30)
    finally:
        if reader.poll() is None:
            reader.kill()
            reader.wait()
    reads, bad = map(int, out.split())
    return reads, bad


def test_textfile_is_never_seen_half_written(tmp_path: Path) -> None:
    many = [rec(100 + i, f"s{i}", project=f"project-{i % 300}", model=f"claude-x-{i % 7}",
                input_tokens=i) for i in range(3000)]
    j = write(tmp_path / "j.jsonl", many)
    snap = metrics.collect(j)
    out = tmp_path / "textfile" / "claude.prom"
    out.parent.mkdir()
    assert len(metrics.exposition(snap)) > 200_000

    reads, bad = _read_concurrently(out, 2.0, lambda: metrics.write_textfile(snap, out))
    assert reads > 50 and bad == 0
    assert oct(out.stat().st_mode & 0o777) == "0o644"
    assert os.listdir(out.parent) == ["claude.prom"]  # no temp file left behind

    # The reader does notice a file written in place (so the check above means something).
    data = metrics.exposition(snap)

    def in_place() -> None:
        with open(out, "wb") as f:
            for i in range(0, len(data), 16384):
                f.write(data[i:i + 16384])
                f.flush()

    _, bad = _read_concurrently(out, 1.0, in_place)
    assert bad > 0


def test_textfile_command(tmp_path: Path) -> None:
    j = write(tmp_path / "j.jsonl", [rec(60, input_tokens=42)])
    out = tmp_path / "claude.prom"
    result = CliRunner().invoke(cli, ["metrics", "--journal", str(j), "--textfile", str(out)])
    assert result.exit_code == 0 and result.output == ""
    assert value(parse(out.read_text()), "claude_api_tokens_input_total") == 42
    result = CliRunner().invoke(cli, ["metrics", "--journal", str(j), "--textfile",
                                      str(tmp_path / "missing" / "claude.prom")])
    assert result.exit_code == 1
    assert result.output.count("\n") == 1 and "check that its folder exists" in result.output


def test_metrics_command_prints_the_exposition(tmp_path: Path) -> None:
    j = write(tmp_path / "j.jsonl", [rec(60, input_tokens=42, cost_usd=0.01)])
    result = CliRunner().invoke(cli, ["metrics", "--journal", str(j)])
    assert result.exit_code == 0
    s = parse(result.output)
    assert value(s, "claude_api_tokens_input_total") == 42
    for name in ("claude_api_tokens_input_total", "claude_api_tokens_output_total",
                 "claude_api_tokens_cache_read_total", "claude_api_tokens_cache_write_total",
                 "claude_api_cost_dollars_total", "claude_api_records_total"):
        assert f"# TYPE {name} counter" in result.output
    for name in ("claude_tokens_per_minute", "claude_cost_per_hour_dollars",
                 "claude_sessions_active", "claude_journal_skipped_lines"):
        assert f"# TYPE {name} gauge" in result.output
    # `export` prints the same exposition
    exported = CliRunner().invoke(cli, ["export", "--journal", str(j)])
    assert parse(exported.output) == s


def test_unreadable_journal_is_one_line(tmp_path: Path) -> None:
    os.mkfifo(tmp_path / "fifo.jsonl")
    result = CliRunner().invoke(cli, ["metrics", "--journal", str(tmp_path / "fifo.jsonl")])
    assert result.exit_code == 1
    assert result.output.count("\n") == 1 and "not a regular file" in result.output


_LABEL_TEXT = st.text(st.characters(codec="utf-8"), max_size=12) | st.sampled_from(
    ['a"b', "back\\slash", "new\nline", "", "web", "日本", '\\"\n'])
_VALUE = st.floats(allow_nan=False, allow_infinity=False, min_value=0, max_value=1e18) | (
    st.integers(0, 10**12).map(float))


@settings(max_examples=60, deadline=None)
@given(st.dictionaries(st.tuples(*[_LABEL_TEXT] * 4), _VALUE, max_size=6),
       st.dictionaries(st.tuples(*[_LABEL_TEXT] * 4, st.sampled_from(["true", "false"])),
                       _VALUE, max_size=4),
       st.dictionaries(st.tuples(*[_LABEL_TEXT] * 4, st.sampled_from(metrics.TOKEN_TYPES)),
                       _VALUE, max_size=4),
       st.dictionaries(_LABEL_TEXT, st.integers(0, 50), max_size=3),
       st.integers(0, 10**6), st.sampled_from([60.0, 900.0, 3600.0]))
def test_the_exposition_is_what_prometheus_client_writes(
        plain: dict[Any, float], cost: dict[Any, float], rates: dict[Any, float],
        active: dict[str, int], skipped: int, window: float) -> None:
    """metrics.exposition writes the families itself (the library's per-sample checks
    cost 200 ms at 8k series): byte for byte what generate_latest writes."""
    from prometheus_client import generate_latest

    from claudewrap.usage.limits import Snapshot as Limit

    snap = metrics.Snapshot(
        counters={**{name: plain for name in metrics.COUNTERS if name != "cost"},
                  "cost": cost},
        tokens_per_minute=rates, cost_per_hour=plain, sessions_active=active,
        skipped_lines=skipped, window=window,
        rate_limits=(Limit(window="five_hour", used=0.42, resets_at=1_900_000_000.0,
                           host="host\"1"),))
    assert metrics.exposition(snap) == generate_latest(metrics.registry(snap))


@settings(max_examples=300, deadline=None)
@given(st.floats() | st.integers(-10**20, 10**20).map(float) | st.integers(-10**20, 10**20)
       | st.integers(0, 2**54) | st.sampled_from([
           0.0, -0.0, 1e6, 999999.0, 1234567.0, 1e7, 1e15, 1e16, 1e22, 0.1, 1e-5,
           123456789.125, float("inf"), float("-inf"), float("nan"), 0, 999_999, 1_000_000,
           1_000_001, 10**7, 2**53 - 1, 2**53, 2**53 + 1, 10**16, 10**16 + 1]))
def test_go_float_spells_values_as_prometheus_client(value: float) -> None:
    from prometheus_client.utils import floatToGoString

    assert metrics.go_float(value) == floatToGoString(value)


def test_the_metrics_command_does_not_import_prometheus_client(tmp_path: Path) -> None:
    """The library's package import (http.server, ssl, ...) is not needed to print."""
    j = write(tmp_path / "j.jsonl", [rec(60, input_tokens=10, cost_usd=0.5)])
    code = ("import sys; from claudewrap.main import main; sys.argv = ['claudewrap',"
            f" 'metrics', '--journal', {str(j)!r}]\n"
            "try:\n    main()\nexcept SystemExit:\n    pass\n"
            "assert 'prometheus_client' not in sys.modules, 'imported'\n")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True,
                         cwd=ROOT, timeout=120, check=False)
    assert out.returncode == 0, out.stderr
    assert "claude_api_tokens_input_total" in out.stdout


_counter_keys = st.tuples(*[_LABEL_TEXT] * 4)


@settings(max_examples=60, deadline=None)
@given(st.dictionaries(_counter_keys, st.integers(0, 10**12), max_size=8),
       st.dictionaries(st.tuples(*[_LABEL_TEXT] * 4, st.sampled_from(["true", "false"])),
                       _VALUE, max_size=8))
def test_the_counters_file_keeps_every_value(plain: dict[Any, int], cost: dict[Any, float]
                                             ) -> None:
    import tempfile

    values = {**{name: dict(plain) for name in metrics.COUNTERS if name != "cost"},
              "cost": dict(cost)}
    values["records"] = {k: v + 1 for k, v in list(plain.items())[:3]}  # another key set
    mark = metrics.JournalMark((1, 2), 10, ["x"], [3])
    with tempfile.TemporaryDirectory() as folder:
        path = Path(folder) / "j.jsonl.counters"
        metrics._write_counters(path, mark, values)
        found = metrics._read_counters(path)
    assert found is not None
    assert found == (mark.to_json(), values, True)


def test_a_counters_file_of_format_3_is_read(tmp_path: Path) -> None:
    """Counters saved by the previous format still hold after an upgrade (a file read
    as none would start the counters again from the journal: a drop)."""
    import json
    import zlib

    j = write(tmp_path / "j.jsonl", [rec(60, input_tokens=10, cost_usd=0.5)])
    scrape(j)
    path = metrics.counters_path(j)
    found = metrics._read_counters(path)
    assert found is not None
    mark, values, _ = found
    values["tokens_input"] = {k: v + 1000 for k, v in values["tokens_input"].items()}
    old = {"journal": mark, "counters": {
        name: [[*k, v] for k, v in sorted(values[name].items())] for name in metrics.COUNTERS}}
    body = json.dumps(old).encode()
    path.write_bytes(b"claudewrap-counters 3 " + b"%08x\n" % zlib.crc32(body) + body)
    assert metrics._read_counters(path) == (mark, values, False)
    assert value(scrape(j), "claude_api_tokens_input_total") == 1010
    assert path.read_bytes().startswith(metrics._COUNTERS_MAGIC)  # saved again as format 4
