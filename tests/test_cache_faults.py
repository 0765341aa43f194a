"""Special files and caches (issue 13, items 5, 8, 9 and 11).

A FIFO in the journal's place: every reader says so in one line at once (none
waits on it), and `claudewrap run` keeps claude running and saves the usage in
the fallback file. A cache (`.rollup`, `.metrics`, `.counters` and its lock,
`.alerts`, a live marker) that cannot be read, for whatever reason, is rebuilt
from the journal, and a FIFO in its place is neither opened nor replaced. A
journal rewritten in place is read again, and its metrics counters start again
from it. Killed cache writers leave no temporaries behind for long.
"""

from __future__ import annotations

import json
import os
import shutil
import signal
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from conftest import CW, ROOT, gen_journal
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from prometheus_client.parser import text_string_to_metric_families
from test_exporter import Serve, get, stop

from claudewrap.export import budget, metrics
from claudewrap.store.journal import atomic_write
from claudewrap.store.records import UsageRecord
from claudewrap.usage import rollup
from claudewrap.usage.report import make_report, report_json

TOKENS = "Tokens: 1200 input, 340 output"
FIFO_LINE = "it is a named pipe (FIFO), not a regular file"
LIMIT = 30  # seconds: a command that waits on a FIFO never ends; these end in one or two

# Every command that reads the journal, as a person types it.
READERS = {
    "usage": ["usage"],
    "usage-json": ["usage", "--json"],
    "stats": ["stats"],
    "journal-check": ["journal", "check"],
    "status": ["status"],
    "cost": ["cost"],
    "monitor": ["monitor", "--once"],
    "metrics": ["metrics"],
    "metrics-no-cache": ["metrics", "--no-cache"],
    "export": ["export"],
}


def run_cw(args: list[str], env: dict[str, str]) -> subprocess.CompletedProcess[str]:
    return subprocess.run([*CW, *args], env=env, capture_output=True, text=True,
                          timeout=LIMIT, check=False)


@pytest.fixture
def private_tmp(env: dict[str, str], tmp_path: Path) -> dict[str, str]:
    """``env`` with a private TMPDIR (where a run saves what its journal cannot take)."""
    tmp = tmp_path / "tmp"
    tmp.mkdir()
    return dict(env, TMPDIR=str(tmp))


def _unsaved(env: dict[str, str]) -> Path:
    return Path(env["TMPDIR"]) / f"claudewrap-{os.getuid()}" / "journal-unsaved.jsonl"


def _fifo_is_empty(path: Path) -> bool:
    fd = os.open(path, os.O_RDONLY | os.O_NONBLOCK)
    try:
        return os.read(fd, 65536) == b""
    except BlockingIOError:
        return True
    finally:
        os.close(fd)


# --- a FIFO as the journal ------------------------------------------------------------


@pytest.mark.parametrize("name", sorted(READERS))
def test_every_reader_refuses_a_fifo_journal_at_once_in_one_line(
        private_tmp: dict[str, str], name: str) -> None:
    journal = Path(private_tmp["CLAUDEWRAP_JOURNAL"])
    os.mkfifo(journal)
    done = run_cw(READERS[name], private_tmp)
    assert done.returncode == 1, (done.stdout, done.stderr)
    assert done.stderr == f"Error: cannot read the journal {journal}: {FIFO_LINE}" + (
        "\n" if name == "monitor" else
        "; move it away, or choose a regular file with --journal or $CLAUDEWRAP_JOURNAL\n")
    assert "Traceback" not in done.stdout


def test_doctor_names_a_fifo_journal_and_ends(private_tmp: dict[str, str]) -> None:
    journal = Path(private_tmp["CLAUDEWRAP_JOURNAL"])
    os.mkfifo(journal)
    done = run_cw(["doctor"], private_tmp)
    assert done.returncode == 1
    (line,) = [x for x in done.stdout.splitlines() if x.split()[1:2] == ["journal"]]
    assert line.endswith(f"{journal} is not a regular file")
    (prices,) = [x for x in done.stdout.splitlines() if x.split()[1:2] == ["prices"]]
    assert FIFO_LINE in prices
    assert "Traceback" not in done.stdout + done.stderr


def test_serve_answers_503_for_a_fifo_journal_until_it_is_a_file(tmp_path: Path) -> None:
    journal = tmp_path / "journal.jsonl"
    os.mkfifo(journal)
    server = Serve(journal, tmp_path)
    try:
        started = time.monotonic()
        status, _, body = get(server.url + "/metrics")
        assert time.monotonic() - started < 10
        assert status == 503 and body.decode().count("\n") == 1 and FIFO_LINE in body.decode()
        journal.unlink()
        journal.write_text(UsageRecord(ts="2026-11-30T10:00:00.000Z", session="s", source="pty",
                                       kind="delta", input_tokens=5).to_json() + "\n")
        assert server.scrape()  # the same server reads the file now
    finally:
        stop(server.proc, signal.SIGKILL)


def test_run_with_a_fifo_journal_runs_claude_and_saves_the_usage_elsewhere(
        private_tmp: dict[str, str]) -> None:
    journal = Path(private_tmp["CLAUDEWRAP_JOURNAL"])
    os.mkfifo(journal)
    started = time.monotonic()
    done = subprocess.run([*CW, "run", "--", "print", TOKENS, "done"], env=private_tmp,
                          capture_output=True, text=True, timeout=LIMIT, check=False)
    assert time.monotonic() - started < 15
    assert done.returncode == 0
    assert done.stdout == f"{TOKENS}\ndone\n"
    (warning,) = done.stderr.splitlines()
    assert warning.startswith(f"claudewrap: the journal {journal}")
    assert FIFO_LINE in warning and str(_unsaved(private_tmp)) in warning
    saved = [UsageRecord.from_dict(json.loads(x))
             for x in _unsaved(private_tmp).read_text().splitlines()]
    assert [(r.input_tokens, r.output_tokens) for r in saved] == [(1200, 340)]
    assert journal.is_fifo() and _fifo_is_empty(journal)  # nothing went into the pipe


def test_run_with_a_fifo_journal_and_a_reader_on_it_loses_nothing(
        private_tmp: dict[str, str]) -> None:
    """Someone reads the FIFO (`cat journal`): still nothing is written into it."""
    journal = Path(private_tmp["CLAUDEWRAP_JOURNAL"])
    os.mkfifo(journal)
    reader = subprocess.Popen(["cat", str(journal)], stdout=subprocess.PIPE)
    try:
        done = subprocess.run([*CW, "run", "--", "print", TOKENS, "done",
                               "Tokens: 10 input, 20 output"],
                              env=private_tmp, capture_output=True, text=True, timeout=LIMIT,
                              check=False)
        assert done.returncode == 0 and done.stderr.count("\n") == 1
        assert _unsaved(private_tmp).read_text().count("\n") == 2
    finally:
        try:  # a writer that comes and goes lets cat see EOF, if our open did not
            os.close(os.open(journal, os.O_WRONLY | os.O_NONBLOCK))
        except OSError:
            pass  # ENXIO: cat is gone already
        out, _ = reader.communicate(timeout=10)
    assert out == b""


# --- caches that cannot be read -----------------------------------------------------------


def _journal(path: Path, records: int = 3000, seed: int = 5) -> dict[str, int]:
    with open(path, "w", encoding="utf-8") as out:
        truth: dict[str, int] = gen_journal().generate(out, records, seed=seed)
    return truth


def _usage(env: dict[str, str], *extra: str) -> dict[str, Any]:
    done = run_cw(["usage", "--json", *extra], env)
    assert done.returncode == 0, done.stderr
    data: dict[str, Any] = json.loads(done.stdout)
    return data


def _counters(text: str) -> dict[str, float]:
    """The sum of each counter family of a Prometheus exposition."""
    out: dict[str, float] = {}
    for family in text_string_to_metric_families(text):
        if family.type == "counter":
            out[family.name] = sum(s.value for s in family.samples if s.name.endswith("_total"))
    return out


def _metrics(env: dict[str, str], *extra: str) -> dict[str, float]:
    done = run_cw(["metrics", *extra], env)
    assert done.returncode == 0, done.stderr
    return _counters(done.stdout)


def _truth(env: dict[str, str], tmp_path: Path) -> tuple[dict[str, Any], dict[str, float]]:
    """usage --json and the metrics' counters of a copy of the journal, with no cache."""
    folder = tmp_path / f"truth-{time.monotonic_ns()}"
    folder.mkdir()
    copy = folder / "journal.jsonl"
    shutil.copyfile(env["CLAUDEWRAP_JOURNAL"], copy)
    other = dict(env, CLAUDEWRAP_JOURNAL=str(copy))
    return _usage(other, "--no-cache"), _metrics(other, "--no-cache")


CACHES = [".rollup", ".rollup-sums", ".metrics", ".counters", ".counters.lock"]


def _nested(suffix: str) -> bytes:
    """Deep nesting behind each cache's header, with a CRC that matches: the decoder
    itself must fail (RecursionError in the JSON reader) and cost only the cache."""
    import zlib

    body = b"[" * 200_000 + b"]" * 200_000 + b"\n"
    if suffix == rollup.SUMS_SUFFIX:  # its header: CRC and the sizes of its three parts
        return rollup.SUMS_MAGIC + b"%08x %x 0 0\n" % (zlib.crc32(body), len(body)) + body
    magic = {".rollup": rollup.MAGIC, ".metrics": metrics._MAGIC,
             ".counters": metrics._COUNTERS_MAGIC}.get(suffix)
    if magic is None:
        return body
    return magic + b"%08x\n" % zlib.crc32(body) + body


@pytest.mark.parametrize("kind", ["fifo", "nested", "plain-nested", "directory"])
@pytest.mark.parametrize("suffix", CACHES)
def test_a_cache_that_cannot_be_read_is_rebuilt_and_the_numbers_are_right(
        env: dict[str, str], tmp_path: Path, suffix: str, kind: str) -> None:
    journal = Path(env["CLAUDEWRAP_JOURNAL"])
    truth = _journal(journal)
    cache = journal.with_name(journal.name + suffix)
    if kind == "fifo":
        os.mkfifo(cache)
    elif kind == "directory":
        cache.mkdir()
    elif kind == "nested":
        cache.write_bytes(_nested(suffix))
    else:
        cache.write_bytes(b"[" * 200_000 + b"]" * 200_000)
    expected_usage, expected_metrics = _truth(env, tmp_path)
    assert expected_usage["total"]["input_tokens"] == truth["input_tokens"]
    for _ in range(2):  # and again, after whatever the first run did with the cache
        assert _usage(env) == expected_usage
        assert _metrics(env) == expected_metrics
        status = run_cw(["status"], env)
        assert status.returncode == 0 and "Traceback" not in status.stderr
        doctor = run_cw(["doctor"], env)
        assert "Traceback" not in doctor.stdout + doctor.stderr
    if kind == "fifo":
        assert cache.is_fifo()  # left alone: neither read nor replaced
    if kind == "directory":
        assert cache.is_dir() and not any(cache.iterdir())


def test_a_fifo_or_nested_json_as_the_alert_claims_claims_nothing_or_starts_again(
        tmp_path: Path) -> None:
    journal = tmp_path / "journal.jsonl"
    claims = budget.claims_path(journal)
    os.mkfifo(claims)
    started = time.monotonic()
    assert budget.claim(journal, ["daily:p:2026-11-30"]) == []  # not waited on
    assert time.monotonic() - started < 5 and claims.is_fifo()
    claims.unlink()
    claims.write_bytes(b"[" * 200_000 + b"]" * 200_000)
    assert budget.claim(journal, ["daily:p:2026-11-30"]) == ["daily:p:2026-11-30"]
    assert budget.claim(journal, ["daily:p:2026-11-30"]) == []


@pytest.mark.parametrize("kind", ["fifo", "nested"])
def test_a_bad_live_marker_does_not_hang_or_crash_the_readers(
        env: dict[str, str], tmp_path: Path, kind: str) -> None:
    journal = Path(env["CLAUDEWRAP_JOURNAL"])
    _journal(journal, 200)
    live = tmp_path / "live"
    live.mkdir()
    marker = live / "s1-123.json"
    if kind == "fifo":
        os.mkfifo(marker)
    else:
        marker.write_bytes(b"[" * 200_000 + b"]" * 200_000)
    for args in (["status"], ["metrics"], ["doctor"], ["monitor", "--once"]):
        done = run_cw(args, env)
        assert "Traceback" not in done.stdout + done.stderr, args
        assert done.returncode in (0, 1), args  # doctor fails on the shell check here
    assert "claude_sessions_active" in run_cw(["metrics"], env).stdout


# --- random corruptions of the caches' bytes ----------------------------------------------


@pytest.fixture(scope="module")
def corruptible(tmp_path_factory: pytest.TempPathFactory) -> Iterator[dict[str, Any]]:
    """A journal, its caches as written, and what each reader shows without them."""
    folder = tmp_path_factory.mktemp("corrupt")
    journal = folder / "journal.jsonl"
    _journal(journal, 3000, seed=11)
    dims = [("model",), ("day",), ("project",), ("session",)]
    expected = report_json(make_report(rollup.load_state(journal, use_cache=False),
                                       dims=dims))
    counters = metrics.collect(journal, use_cache=False).counters
    rollup.load_state(journal)
    metrics.collect(journal)
    caches = {s: journal.with_name(journal.name + s).read_bytes()
              for s in (".rollup", ".metrics", ".counters")}
    yield {"journal": journal, "dims": dims, "report": expected, "counters": counters,
           "caches": caches}


def _sums(counters: dict[str, dict[Any, float]]) -> dict[str, float]:
    return {name: round(sum(family.values()), 6) for name, family in counters.items()}


@settings(max_examples=60, deadline=None,
          suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(suffix=st.sampled_from([".rollup", ".metrics", ".counters"]),
       edits=st.lists(st.tuples(st.floats(0, 1, exclude_max=True), st.binary(min_size=1,
                                                                            max_size=8)),
                      min_size=1, max_size=4),
       cut=st.one_of(st.none(), st.floats(0, 1)))
def test_random_corruptions_of_a_cache_never_change_the_numbers(
        corruptible: dict[str, Any], suffix: str, edits: list[tuple[float, bytes]],
        cut: float | None) -> None:
    journal: Path = corruptible["journal"]
    caches: dict[str, bytes] = corruptible["caches"]
    for name, data in caches.items():  # all as written, then one corrupted
        journal.with_name(journal.name + name).write_bytes(data)
    data = bytearray(caches[suffix])
    for where, new in edits:
        at = int(where * len(data))
        data[at:at + len(new)] = new
    if cut is not None:
        del data[int(cut * len(data)):]
    journal.with_name(journal.name + suffix).write_bytes(bytes(data))
    got = report_json(make_report(rollup.load_state(journal), dims=corruptible["dims"]))
    assert got == corruptible["report"]
    assert _sums(metrics.collect(journal).counters) == _sums(corruptible["counters"])


# --- a journal rewritten in place -----------------------------------------------------------


def _blank_middle_half(path: Path) -> None:
    """Spaces over the middle half's lines (newlines kept): the same size, fewer records."""
    data = bytearray(path.read_bytes())
    quarter = len(data) // 4
    for i in range(quarter, 3 * quarter):
        if data[i] != 0x0A:
            data[i] = 0x20
    with open(path, "r+b") as f:  # in place: the same file, the same size
        f.write(data)


@pytest.mark.parametrize("how", ["same-size", "then-appended", "mtime-restored", "small"])
def test_a_journal_blanked_in_place_is_read_again_and_resets_the_counters(
        env: dict[str, str], tmp_path: Path, how: str) -> None:
    journal = Path(env["CLAUDEWRAP_JOURNAL"])
    _journal(journal, 400 if how == "small" else 3000)
    if how == "small":
        assert journal.stat().st_size <= rollup._WHOLE
    before = _usage(env)
    counters_before = _metrics(env)
    assert rollup.cache_path(journal).exists() and metrics.counters_path(journal).exists()
    st = journal.stat()
    _blank_middle_half(journal)
    if how == "mtime-restored":
        os.utime(journal, ns=(st.st_atime_ns, st.st_mtime_ns))
    elif how in ("then-appended", "small"):
        record = UsageRecord(ts="2026-11-30T10:00:00.000Z", session="late", source="pty",
                             kind="delta", input_tokens=7, output_tokens=1)
        with open(journal, "a", encoding="utf-8") as f:
            f.write(record.to_json() + "\n")
    expected_usage, expected_metrics = _truth(env, tmp_path)
    assert expected_usage["total"]["input_tokens"] < before["total"]["input_tokens"]
    assert _usage(env) == expected_usage  # from the cache
    assert _usage(env, "--no-cache") == expected_usage
    assert _usage(env) == expected_usage  # from the cache rebuilt
    # The counters start again from the rewritten journal: a reset, not a rise.
    assert _metrics(env) == expected_metrics
    assert expected_metrics["claude_api_tokens_input"] < counters_before["claude_api_tokens_input"]
    assert _metrics(env, "--no-cache") == expected_metrics


def test_metrics_no_cache_exports_the_journals_own_numbers(
        env: dict[str, str], tmp_path: Path) -> None:
    """A same-length edit of one line outside the sampled blocks of a big journal,
    then an append: the caches cannot see it; --no-cache is right all the same."""
    journal = Path(env["CLAUDEWRAP_JOURNAL"])
    _journal(journal, 3000)
    _usage(env)
    _metrics(env)
    data = journal.read_bytes()
    size = len(data)
    # A line between two sampled blocks (rollup.file_checks): 1/34 and 2/34 of the way.
    start = data.index(b"\n", size * 3 // 68 - 2000) + 1
    end = data.index(b"\n", start)
    line = data[start:end]
    assert b'"input_tokens":' in line or b'"cache_read_tokens":' in line
    with open(journal, "r+b") as f:
        f.seek(start)
        f.write(b" " * len(line))
    with open(journal, "a", encoding="utf-8") as f:
        f.write(UsageRecord(ts="2026-11-30T10:00:00.000Z", session="late", source="pty",
                            kind="delta", input_tokens=7).to_json() + "\n")
    expected_usage, expected_metrics = _truth(env, tmp_path)
    assert _usage(env, "--no-cache") == expected_usage
    assert _metrics(env, "--no-cache") == expected_metrics


# --- killed cache writers ---------------------------------------------------------------------


WRITER = """
import os, sys, time
from pathlib import Path
from claudewrap.store.journal import atomic_write
def parts():
    yield b"x" * 65536
    os.write(1, b"ready\\n")
    time.sleep(60)
    yield b"never"
atomic_write(Path(sys.argv[1]), parts(), 0o600, cache=True)
"""


def _temporaries(folder: Path) -> list[str]:
    return sorted(p.name for p in folder.iterdir() if p.name.endswith(".tmp"))


def test_killed_cache_writers_leave_no_temporaries_after_the_next_run(
        env: dict[str, str]) -> None:
    journal = Path(env["CLAUDEWRAP_JOURNAL"])
    _journal(journal, 3000)
    expected = _usage(env, "--no-cache")
    expected_metrics = _metrics(env, "--no-cache")
    caches = [journal.with_name(journal.name + s) for s in (".rollup", ".metrics", ".counters")]
    # `usage` itself, killed at some point of its run (most often not in a write)
    for delay in (0.05, 0.1, 0.2, 0.3, 0.4):
        proc = subprocess.Popen([*CW, "usage"], env=env, stdout=subprocess.DEVNULL)
        time.sleep(delay)
        proc.send_signal(signal.SIGKILL)
        proc.wait(timeout=10)
    for i in range(9):  # then a writer killed in the middle of each cache's write, three times
        writer = subprocess.Popen([sys.executable, "-c", WRITER, str(caches[i % 3])],
                                  env=dict(env, PYTHONPATH=str(ROOT)), stdout=subprocess.PIPE)
        assert writer.stdout is not None and writer.stdout.readline() == b"ready\n"
        writer.send_signal(signal.SIGKILL)
        writer.wait(timeout=10)
    assert len(_temporaries(journal.parent)) >= 9
    assert _usage(env) == expected
    assert _metrics(env) == expected_metrics
    assert _temporaries(journal.parent) == []


def test_a_killed_counters_writer_leaves_nothing_while_the_journal_stays_the_same(
        env: dict[str, str]) -> None:
    """The counters are not written again while nothing changed: the temporaries a
    killed writer left are removed all the same."""
    journal = Path(env["CLAUDEWRAP_JOURNAL"])
    _journal(journal, 50)
    first = _metrics(env)
    counters = journal.with_name(journal.name + ".counters")
    writer = subprocess.Popen([sys.executable, "-c", WRITER, str(counters)],
                              env=dict(env, PYTHONPATH=str(ROOT)), stdout=subprocess.PIPE)
    assert writer.stdout is not None and writer.stdout.readline() == b"ready\n"
    writer.send_signal(signal.SIGKILL)
    writer.wait(timeout=10)
    assert len(_temporaries(journal.parent)) == 1
    assert _metrics(env) == first
    assert _temporaries(journal.parent) == []


def test_a_live_writers_temporary_is_left_alone(tmp_path: Path) -> None:
    cache = tmp_path / "journal.jsonl.rollup"
    writer = subprocess.Popen([sys.executable, "-c", WRITER, str(cache)],
                              env=dict(os.environ, PYTHONPATH=str(ROOT)), stdout=subprocess.PIPE)
    try:
        assert writer.stdout is not None and writer.stdout.readline() == b"ready\n"
        (mine,) = _temporaries(tmp_path)
        atomic_write(cache, [b"data"], 0o600, cache=True)  # another writer, done
        assert _temporaries(tmp_path) == [mine] and cache.read_bytes() == b"data"
    finally:
        writer.kill()
        writer.wait(timeout=10)
    atomic_write(cache, [b"more"], 0o600, cache=True)
    assert _temporaries(tmp_path) == []
