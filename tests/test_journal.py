"""The journal: real files, real processes, real locks."""

from __future__ import annotations

import json
import os
import select
import signal
import stat
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest

from claudewrap.store.config import JOURNAL_ENV, default_journal_path
from claudewrap.store.journal import (
    JournalError,
    JournalWriter,
    ReadStats,
    append_records,
    check,
    file_identity,
    read_records,
    resolve_path,
)
from claudewrap.store.records import UsageRecord

ROOT = Path(__file__).resolve().parents[1]
TS = "2025-01-02T03:04:05.678Z"


def rec(n: int = 0, session: str = "s1", **kw: Any) -> UsageRecord:
    return UsageRecord(ts=TS, session=session, source="pty", input_tokens=n, **kw)


def tokens(path: Path, start: int = 0) -> list[int]:
    return [r.input_tokens for r in read_records(path, start=start)]


def python(code: str, *args: str, **kw: Any) -> subprocess.Popen[str]:
    """A real Python process running ``code`` with this checkout importable."""
    env = dict(os.environ, PYTHONPATH=str(ROOT))
    return subprocess.Popen([sys.executable, "-c", code, *args], env=env, text=True, **kw)


def wait_for(predicate: Callable[[], bool], timeout: float = 10.0) -> None:
    deadline = time.monotonic() + timeout
    while not predicate():
        assert time.monotonic() < deadline, "timed out"
        time.sleep(0.01)


@pytest.fixture
def journal(tmp_path: Path) -> Path:
    return tmp_path / "data" / "journal.jsonl"


# --- round trip, modes, where the journal lives ----------------------------------


def test_records_read_back_equal_to_what_was_appended(journal: Path) -> None:
    records = [
        rec(1200, model="claude-sonnet-4-5", output_tokens=340, cost_usd=0.0123,
            cost_estimated=True, tags={"team": "ünïcode"}),
        # U+2028 is a line break to str.splitlines(), not to the journal.
        rec(2, project="a\u2028b", cwd="/home/u/caf\udce9", tmux_pane="%3"),
        rec(3, kind="total", cache_read_tokens=10**10),  # the ceiling itself: kept
    ]
    append_records(journal, records[:2])
    append_records(journal, records[2:])
    assert list(read_records(journal)) == records
    raw = journal.read_bytes()
    assert raw.count(b"\n") == 3 and raw.endswith(b"\n")
    assert b'"input_tokens":1200' in raw


def test_new_folder_is_0700_and_journal_0600(tmp_path: Path) -> None:
    path = tmp_path / "new" / "claudewrap" / "journal.jsonl"
    old = os.umask(0o022)
    try:
        append_records(path, [rec()])
    finally:
        os.umask(old)
    assert stat.S_IMODE(path.parent.stat().st_mode) == 0o700
    assert stat.S_IMODE(path.stat().st_mode) == 0o600


def test_wider_journal_is_narrowed_but_a_folder_not_ours_is_left_alone(tmp_path: Path) -> None:
    tmp_path.chmod(0o755)
    path = tmp_path / "journal.jsonl"
    path.write_bytes(b"")
    path.chmod(0o644)
    append_records(path, [rec()])
    assert stat.S_IMODE(path.stat().st_mode) == 0o600
    assert stat.S_IMODE(tmp_path.stat().st_mode) == 0o755


def test_option_beats_env_var_beats_platform_default(
        tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("HOME", str(tmp_path))
    monkeypatch.setenv("XDG_DATA_HOME", str(tmp_path / "xdg"))
    monkeypatch.delenv(JOURNAL_ENV, raising=False)
    if sys.platform.startswith("linux"):
        assert default_journal_path() == tmp_path / "xdg" / "claudewrap" / "journal.jsonl"
    assert default_journal_path().name == "journal.jsonl"
    assert resolve_path() == default_journal_path()
    monkeypatch.setenv(JOURNAL_ENV, "")
    assert resolve_path("") == default_journal_path() and default_journal_path().name == "journal.jsonl"

    monkeypatch.setenv(JOURNAL_ENV, "~/env.jsonl")
    assert default_journal_path() == tmp_path / "env.jsonl"
    assert resolve_path(None) == tmp_path / "env.jsonl"
    assert resolve_path("~/opt.jsonl") == tmp_path / "opt.jsonl"
    assert resolve_path(tmp_path / "p.jsonl") == tmp_path / "p.jsonl"


def test_a_journal_path_that_is_a_directory_is_one_error_naming_the_setting_to_fix(
        tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    folder = tmp_path / "logs"
    folder.mkdir()
    monkeypatch.setenv(JOURNAL_ENV, str(folder))
    with pytest.raises(JournalError) as info:
        resolve_path()
    assert str(info.value) == (f"the journal {folder} is a directory: set {JOURNAL_ENV} to a"
                               f" file path (e.g. {folder}/journal.jsonl)")
    with pytest.raises(JournalError, match="pass --journal a file path"):
        resolve_path(folder)
    monkeypatch.delenv(JOURNAL_ENV)
    monkeypatch.setenv("XDG_DATA_HOME", str(tmp_path / "xdg"))
    default_journal_path().mkdir(parents=True)
    with pytest.raises(JournalError, match="move that folder away, or set"):
        resolve_path()
    # A symlink to a folder is a folder too; a file beside it is fine.
    (tmp_path / "link").symlink_to(folder)
    with pytest.raises(JournalError, match="is a directory"):
        resolve_path(tmp_path / "link")
    assert resolve_path(folder / "journal.jsonl") == folder / "journal.jsonl"


def test_file_identity_follows_the_inode(journal: Path) -> None:
    assert file_identity(journal) is None
    append_records(journal, [rec()])
    first = file_identity(journal)
    assert first == (journal.stat().st_dev, journal.stat().st_ino)
    journal.rename(journal.with_name("old.jsonl"))
    append_records(journal, [rec()])
    assert file_identity(journal) not in (None, first)


# --- concurrency and crashes ---------------------------------------------------

WRITER = """
import sys
from pathlib import Path
from claudewrap.store.journal import append_records
from claudewrap.store.records import UsageRecord
path, w, n = Path(sys.argv[1]), sys.argv[2], int(sys.argv[3])
sys.stdin.readline()  # start together
for i in range(n):
    append_records(path, [UsageRecord(ts="t", session="w" + w, source="pty",
                                      input_tokens=i)], lock_timeout=60)
"""


def test_sixteen_processes_appending_never_interleave(journal: Path) -> None:
    writers, n = 16, 2000
    procs = [python(WRITER, str(journal), str(w), str(n), stdin=subprocess.PIPE)
             for w in range(writers)]
    for p in procs:
        assert p.stdin is not None
        p.stdin.write("go\n")
        p.stdin.close()
    for p in procs:
        assert p.wait(timeout=60) == 0
    assert journal.read_bytes().count(b"\n") == writers * n
    stats = ReadStats()
    seen = [(r.session, r.input_tokens) for r in read_records(journal, stats)]
    assert stats.skipped == 0 and not stats.incomplete_tail
    assert len(seen) == len(set(seen)) == writers * n
    assert set(seen) == {(f"w{w}", i) for w in range(writers) for i in range(n)}


HEAVY = """
import sys
from pathlib import Path
from claudewrap.store.journal import append_records
from claudewrap.store.records import UsageRecord
path = Path(sys.argv[1])
pad = "x" * 3000
i = 0
while True:  # until killed
    append_records(path, [UsageRecord(ts="t", session="k", source="pty", input_tokens=i + j,
                                      project=pad) for j in range(40)])
    i += 40
"""


def test_sigkill_during_heavy_appends_costs_at_most_one_line(journal: Path) -> None:
    proc = python(HEAVY, str(journal))
    try:
        wait_for(lambda: journal.exists() and journal.read_bytes().count(b"\n") > 1000)
    finally:
        proc.send_signal(signal.SIGKILL)
        proc.wait(timeout=10)
    stats = check(journal)
    assert stats.skipped <= 1 and stats.good > 1000
    assert sum(1 for _ in read_records(journal)) == stats.good

    append_records(journal, [rec(7, session="after")])
    records = list(read_records(journal))
    assert records[-1] == rec(7, session="after")
    after = check(journal)
    assert after.good == stats.good + 1 and after.skipped <= 1 and not after.incomplete_tail


def test_torn_tail_costs_only_its_own_line(journal: Path) -> None:
    append_records(journal, [rec(1)])
    with open(journal, "ab") as f:
        f.write(b'{"ts":"2025-01-02T03:0')  # a writer died here
    append_records(journal, [rec(2), rec(3)])
    stats = check(journal)
    assert tokens(journal) == [1, 2, 3]
    assert (stats.good, stats.skipped, stats.first_bad_lines) == (3, 1, [2])


def test_a_file_size_limit_keeps_the_lines_that_fit_whole_and_no_part_of_a_line(
        journal: Path) -> None:
    # RLIMIT_FSIZE makes the kernel write part of the batch, then refuse (EFBIG):
    # the two whole lines that fit stay, the third, written in part, is cut.
    code = """
import json, resource, signal, sys
from pathlib import Path
from claudewrap.store.journal import JournalWriter, append_records, read_records
from claudewrap.store.records import UsageRecord
signal.signal(signal.SIGXFSZ, signal.SIG_IGN)
path = Path(sys.argv[1])
recs = [UsageRecord(ts="t", session="s", source="pty", input_tokens=i) for i in range(10)]
append_records(path, recs[:1])
size0 = path.stat().st_size
soft, hard = resource.getrlimit(resource.RLIMIT_FSIZE)
resource.setrlimit(resource.RLIMIT_FSIZE, (size0 * 3 + size0 // 2, hard))
w = JournalWriter(path)
ok1 = w.append(recs[1:])
size1, pending1 = path.stat().st_size, len(w.pending)
resource.setrlimit(resource.RLIMIT_FSIZE, (soft, hard))
ok2 = w.append([])
print(json.dumps([ok1, (size1 - size0) / size0, pending1, ok2, [r.input_tokens for r in read_records(path)]]))
"""
    proc = python(code, str(journal), stdout=subprocess.PIPE)
    out, _ = proc.communicate(timeout=30)
    assert proc.returncode == 0
    assert json.loads(out) == [False, 2, 7, True, list(range(10))]


# --- tolerant reading ------------------------------------------------------------


def test_bad_lines_are_skipped_and_counted_with_their_line_numbers(journal: Path) -> None:
    good = rec(1).to_json().encode()
    bad = [
        b"garbage",
        good[: len(good) // 2],  # truncated JSON
        b"[1, 2, 3]",
        b'{"session":"s","source":"pty"}',  # no ts
        b'{"ts":"t","session":"s","input_tokens":"lots"}',
        b'{"ts":"t","session":"s","cost_usd":true}',
        b'{"ts":"t","session":"s","input_tokens":Infinity}',
        b'{"ts":"x' + b"y" * (1 << 20) + b'"}',  # 1 MB, no session
        b'{"ts":"t","session":"\xff\xfe"}',  # invalid UTF-8
        b"[" * 100_000,  # too deep for json
    ]
    lines = [good]
    for line in bad:
        lines += [line, good]
    journal.parent.mkdir()
    journal.write_bytes(b"\n".join(lines) + b"\n\n")  # a blank line is no harm
    stats = ReadStats()
    assert len(list(read_records(journal, stats))) == len(bad) + 1
    assert (stats.good, stats.skipped) == (len(bad) + 1, len(bad))
    assert stats.first_bad_lines == list(range(2, 2 * len(bad) + 1, 2))
    assert stats.end_offset == journal.stat().st_size and not stats.incomplete_tail


def test_only_the_first_ten_bad_line_numbers_are_kept(journal: Path) -> None:
    journal.parent.mkdir()
    journal.write_bytes(b"nope\n" * 25)
    stats = check(journal)
    assert (stats.good, stats.skipped, stats.first_bad_lines) == (0, 25, list(range(1, 11)))


def test_unknown_fields_and_newer_schema_are_tolerated(journal: Path) -> None:
    journal.parent.mkdir()
    journal.write_text(json.dumps({"v": 99, "ts": TS, "session": "s", "source": "otel",
                                   "input_tokens": 5, "future": {"a": [1]}}) + "\n")
    [r] = list(read_records(journal))
    assert (r.v, r.source, r.input_tokens) == (99, "otel", 5)


def test_an_enormous_line_is_skipped_without_holding_it(journal: Path) -> None:
    journal.parent.mkdir()
    with open(journal, "wb") as f:
        f.write(b"x" * (17 << 20) + b"\n" + rec(1).to_json().encode() + b"\n")
        f.write(b"y" * (17 << 20))
    stats = check(journal)
    assert tokens(journal) == [1]
    assert (stats.good, stats.skipped, stats.first_bad_lines) == (1, 2, [1, 3])
    assert stats.incomplete_tail and stats.end_offset == (17 << 20) + 1 + len(rec(1).to_json()) + 1


def test_missing_journal_reads_as_empty(tmp_path: Path) -> None:
    stats = ReadStats()
    assert list(read_records(tmp_path / "none.jsonl", stats)) == []
    assert list(read_records(tmp_path / "none" / "j.jsonl")) == []
    assert stats == ReadStats()
    assert check(tmp_path / "none.jsonl") == ReadStats()


def test_unreadable_journal_is_a_journal_error(tmp_path: Path) -> None:
    with pytest.raises(JournalError, match="cannot read the journal"):
        list(read_records(tmp_path))  # a folder


def test_reading_from_an_offset_returns_only_later_records(journal: Path) -> None:
    append_records(journal, [rec(1), rec(2), rec(3)])
    stats = ReadStats()
    assert tokens(journal) == [1, 2, 3]
    assert len(list(read_records(journal, stats))) == 3
    first_end = stats.end_offset
    assert first_end == journal.stat().st_size
    append_records(journal, [rec(4), rec(5)])
    later = ReadStats()
    assert [r.input_tokens for r in read_records(journal, later, start=first_end)] == [4, 5]
    assert later.end_offset == journal.stat().st_size and later.good == 2
    assert tokens(journal, start=later.end_offset) == []


def test_end_offset_advances_record_by_record(journal: Path) -> None:
    append_records(journal, [rec(1), rec(2)])
    stats = ReadStats()
    it = read_records(journal, stats)
    next(it)
    assert stats.end_offset == len(rec(1).to_json()) + 1
    assert [r.input_tokens for r in it] == [2]
    assert stats.end_offset == journal.stat().st_size


def test_incomplete_tail_is_left_for_the_next_read(journal: Path) -> None:
    append_records(journal, [rec(1)])
    line = rec(2).to_json().encode() + b"\n"
    with open(journal, "ab") as f:
        f.write(line[:20])  # another writer, mid-write
    stats = ReadStats()
    assert [r.input_tokens for r in read_records(journal, stats)] == [1]
    assert stats.incomplete_tail and stats.skipped == 0
    assert stats.end_offset == len(rec(1).to_json()) + 1
    assert check(journal).skipped == 1

    with open(journal, "ab") as f:
        f.write(line[20:])
    assert [r.input_tokens for r in read_records(journal, stats, start=stats.end_offset)] == [2]
    assert not stats.incomplete_tail and stats.good == 2
    assert stats.end_offset == journal.stat().st_size
    assert tokens(journal, start=stats.end_offset) == []


def test_lines_across_read_blocks_are_read_whole(journal: Path) -> None:
    n = 12_000  # about 3 MB: several 1 MiB blocks
    for i in range(0, n, 1000):
        append_records(journal, [rec(j, project="p" * (j % 300)) for j in range(i, i + 1000)])
    stats = check(journal)
    assert tokens(journal) == list(range(n))
    assert (stats.good, stats.skipped, stats.end_offset) == (n, 0, journal.stat().st_size)


# --- failures: append_records raises, JournalWriter keeps records ----------------


def test_append_records_failure_is_one_line_that_says_what_to_do(tmp_path: Path) -> None:
    (tmp_path / "afile").write_text("")
    with pytest.raises(JournalError) as err:
        append_records(tmp_path / "afile" / "journal.jsonl", [rec()])
    message = str(err.value)
    assert "\n" not in message and "Not a directory" in message and "--journal" in message


def unusable_paths(tmp_path: Path) -> list[Path]:
    (tmp_path / "afile").write_text("")
    return [tmp_path / "afile" / "journal.jsonl", Path("/proc/claudewrap-test/journal.jsonl")]


def test_writer_keeps_records_while_the_folder_is_unusable_then_writes_them_once(
        tmp_path: Path, capfd: pytest.CaptureFixture[str]) -> None:
    afile = tmp_path / "afile"
    afile.write_text("")
    writer = JournalWriter(afile / "journal.jsonl")
    assert writer.append([rec(1)]) is False
    assert writer.append([rec(2), rec(3)]) is False
    assert writer.pending == [rec(1), rec(2), rec(3)]
    afile.unlink()  # the problem goes away
    assert writer.append([rec(4)]) is True
    assert writer.pending == []
    assert tokens(afile / "journal.jsonl") == [1, 2, 3, 4]
    assert writer.close() is None
    assert capfd.readouterr() == ("", "")


def test_writer_close_writes_pending_records_when_the_problem_went_away(tmp_path: Path) -> None:
    afile = tmp_path / "afile"
    afile.write_text("")
    writer = JournalWriter(afile / "journal.jsonl")
    assert not writer.append([rec(1), rec(2)])
    afile.unlink()
    assert writer.close() is None
    assert tokens(afile / "journal.jsonl") == [1, 2]
    assert writer.close() is None


@pytest.mark.parametrize("which", [0, 1], ids=["file-as-folder", "proc"])
def test_writer_close_saves_what_it_could_not_write_in_a_private_temp_file(
        which: int, tmp_path: Path, monkeypatch: pytest.MonkeyPatch,
        capfd: pytest.CaptureFixture[str]) -> None:
    path = unusable_paths(tmp_path)[which]
    (tmp_path / "tmp").mkdir()
    monkeypatch.setattr(tempfile, "tempdir", str(tmp_path / "tmp"))
    writer = JournalWriter(path)
    for i in range(3):
        assert writer.append([rec(i)]) is False
    warning = writer.close()
    assert warning is not None and "\n" not in warning
    saved = tmp_path / "tmp" / f"claudewrap-{os.getuid()}" / "journal-unsaved.jsonl"
    assert warning.startswith(f"claudewrap: the journal {path} was not writable (")
    assert warning.endswith(f"; 3 records saved in {saved} \N{EM DASH} add them once with:"
                            f" claudewrap journal recover --journal {path}")
    assert tokens(saved) == [0, 1, 2]
    assert stat.S_IMODE(saved.stat().st_mode) == 0o600
    assert stat.S_IMODE(saved.parent.stat().st_mode) == 0o700
    assert capfd.readouterr() == ("", "")


def test_writer_close_for_a_directory_advises_a_file_inside_it_not_the_directory(
        tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    folder = tmp_path / "logs"
    folder.mkdir()
    (tmp_path / "tmp").mkdir()
    monkeypatch.setattr(tempfile, "tempdir", str(tmp_path / "tmp"))
    writer = JournalWriter(folder)
    assert writer.append([rec(1), rec(2)]) is False
    warning = writer.close()
    saved = tmp_path / "tmp" / f"claudewrap-{os.getuid()}" / "journal-unsaved.jsonl"
    assert warning == (f"claudewrap: the journal {folder} is a directory: choose a file with"
                       f" --journal or ${JOURNAL_ENV} (e.g. {folder}/journal.jsonl); 2 records"
                       f" saved in {saved} \N{EM DASH} add them once with: claudewrap journal"
                       f" recover --journal {folder}/journal.jsonl")
    assert tokens(saved) == [1, 2]
    # The advice, run as it is (twice), moves the records into that file once.
    command = warning.split("add them once with: claudewrap ")[1].split()
    for _ in range(2):
        subprocess.run([sys.executable, "-m", "claudewrap", *command], check=True, timeout=60,
                       env=dict(os.environ, PYTHONPATH=str(ROOT), TMPDIR=str(tmp_path / "tmp")))
    assert tokens(folder / "journal.jsonl") == [1, 2] and saved.read_bytes() == b""


def test_writer_close_says_records_are_lost_when_no_fallback_works(
        tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    path = unusable_paths(tmp_path)[0]
    monkeypatch.setattr(tempfile, "tempdir", str(tmp_path / "afile"))
    writer = JournalWriter(path)
    assert writer.append([rec(1)]) is False
    assert writer.close() == (f"claudewrap: the journal {path} was not writable (Not a"
                              " directory); 1 record could not be saved anywhere (no private"
                              " folder for it in the temp dir): they are lost")


LOCKER = """
import fcntl, os, select, sys
fd = os.open(sys.argv[1], os.O_RDWR | os.O_CREAT, 0o600)
fcntl.flock(fd, fcntl.LOCK_EX)
print("locked", flush=True)
select.select([sys.stdin], [], [], 3.0)  # hold it 3 s, or until stdin closes
"""


def test_writer_gives_up_quickly_while_another_process_holds_the_lock(journal: Path) -> None:
    append_records(journal, [rec(1)])
    holder = python(LOCKER, str(journal), stdin=subprocess.PIPE, stdout=subprocess.PIPE)
    assert holder.stdout is not None and holder.stdin is not None
    try:
        ready, _, _ = select.select([holder.stdout], [], [], 10)
        assert ready and holder.stdout.readline() == "locked\n"
        writer = JournalWriter(journal, lock_timeout=0.2)
        started = time.monotonic()
        assert writer.append([rec(2), rec(3)]) is False
        assert time.monotonic() - started < 0.5
        assert writer.pending == [rec(2), rec(3)]
        with pytest.raises(JournalError, match="locked by another process"):
            append_records(journal, [rec(99)], lock_timeout=0.1)
    finally:
        holder.stdin.close()
        holder.wait(timeout=10)
    assert writer.append([rec(4)]) is True
    assert tokens(journal) == [1, 2, 3, 4]


def test_writer_close_waits_longer_for_the_lock(journal: Path) -> None:
    append_records(journal, [rec(1)])
    holder = python(LOCKER, str(journal), stdin=subprocess.PIPE, stdout=subprocess.PIPE)
    assert holder.stdout is not None and holder.stdin is not None
    try:
        assert holder.stdout.readline() == "locked\n"
        writer = JournalWriter(journal, lock_timeout=0.05)
        assert writer.append([rec(2)]) is False
        releaser = subprocess.Popen(
            ["sh", "-c", "sleep 0.3; kill $0", str(holder.pid)])
        assert writer.close() is None  # waits up to 2 s; the lock goes after 0.3 s
        releaser.wait(timeout=10)
    finally:
        holder.stdin.close()
        holder.wait(timeout=10)
    assert tokens(journal) == [1, 2]
