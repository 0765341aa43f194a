"""Nothing is lost when the journal cannot take the records (issue 13, items 6 and 7).

A run whose journal is not writable saves the records in private files in the
temp folder and says, in one line, to add them once with `claudewrap journal
recover`, which moves them in by record identity: following the advice twice,
after two failed runs, after adding them by hand, or after a kill -9 at any
point, counts every record exactly once. Under a file-size limit (`ulimit -f`)
the journal keeps the whole records that fit, the saved files the rest, no
line is ever cut in half, and the child still gets the default SIGXFSZ.
"""

from __future__ import annotations

import json
import os
import random
import signal
import stat
import subprocess
import sys
import time
from collections import Counter
from pathlib import Path
from typing import Any

import pytest
from conftest import CW, cw, read_all, spawn

from claudewrap.store.journal import append_records
from claudewrap.store.records import UsageRecord

DASH = "\N{EM DASH}"
AS_ROOT = os.geteuid() == 0


@pytest.fixture
def fenv(env: dict[str, str], tmp_path: Path) -> dict[str, str]:
    """``env`` with a private temp folder (where the saved files go) and a
    journal in a folder of its own."""
    (tmp_path / "tmp").mkdir()
    return dict(env, TMPDIR=str(tmp_path / "tmp"),
                CLAUDEWRAP_JOURNAL=str(tmp_path / "j" / "journal.jsonl"))


def saved_dir(env: dict[str, str]) -> Path:
    return Path(env["TMPDIR"]) / f"claudewrap-{os.getuid()}"


def saved_files(env: dict[str, str]) -> list[Path]:
    """The saved files in the order they are filled: journal-unsaved.jsonl, -2, -3, ..."""
    def index(path: Path) -> int:
        tail = path.stem.removeprefix("journal-unsaved")
        return int(tail[1:]) if tail else 1
    return sorted(saved_dir(env).glob("journal-unsaved*.jsonl"), key=index)


def records_in(path: Path) -> list[dict[str, Any]]:
    """Every line of ``path`` as a record: no half line, no line readers skip."""
    data = path.read_bytes()
    assert not data or data.endswith(b"\n"), f"{path} ends in a half line"
    out = [json.loads(line) for line in data.splitlines()]
    assert all(UsageRecord.from_dict(r) for r in out)
    return out


def run(env: dict[str, str], *lines: str) -> subprocess.CompletedProcess[str]:
    """`claudewrap run` with the fake claude printing ``lines``."""
    return subprocess.run([*CW, "run", "--", "print", *lines], env=env, capture_output=True,
                          text=True, timeout=60, check=False)


def total(env: dict[str, str]) -> dict[str, Any]:
    done = cw(["usage", "--json", "--no-cache"], env)
    assert done.returncode == 0, done.stderr
    result: dict[str, Any] = json.loads(done.stdout)["total"]
    return result


def doctor_line(env: dict[str, str]) -> str:
    done = cw(["doctor"], env)
    lines = done.stdout.splitlines()
    for n, text in enumerate(lines):
        if text[2:].startswith("saved records "):
            fix = lines[n + 1].strip() if n + 1 < len(lines) and "fix:" in lines[n + 1] else ""
            return f"{text}\n{fix}".strip()
    raise AssertionError(f"no saved-records line in {lines}")


# --- an unwritable journal, twice; the advice, twice ---------------------------------


def _break(cause: str, journal: Path) -> tuple[str, Any]:
    """Make ``journal`` unwritable by ``cause``; the reason the run will give,
    and how to undo it."""
    if cause == "folder-is-a-file":
        journal.parent.write_text("")
        return "Not a directory", lambda: (journal.parent.unlink(), journal.parent.mkdir())
    if AS_ROOT:
        pytest.skip("root writes through file modes")
    if cause == "folder-mode-000":
        journal.parent.chmod(0)
        return "Permission denied", lambda: journal.parent.chmod(0o700)
    journal.chmod(0o400)
    return "Permission denied", lambda: journal.chmod(0o600)


@pytest.mark.parametrize("cause", ["folder-mode-000", "read-only-file", "folder-is-a-file"])
def test_two_failed_runs_and_the_advice_followed_twice_count_each_record_once(
        fenv: dict[str, str], cause: str) -> None:
    journal = Path(fenv["CLAUDEWRAP_JOURNAL"])
    first = 0
    if cause != "folder-is-a-file":
        assert run(fenv, "Tokens: 5 input, 1 output").stderr == ""
        first = 5
    reason, repair = _break(cause, journal)
    saved = saved_dir(fenv) / "journal-unsaved.jsonl"
    try:
        one = run(fenv, "Tokens: 1000 input, 100 output", "Tokens: 2000 input, 200 output")
        two = run(fenv, "Tokens: 30000 input, 300 output")
    finally:
        repair()
    assert one.returncode == two.returncode == 0
    advice = f" {DASH} add them once with: claudewrap journal recover"
    assert one.stderr == (f"claudewrap: the journal {journal} was not writable ({reason});"
                          f" 2 records saved in {saved}{advice}\n")
    assert two.stderr == (f"claudewrap: the journal {journal} was not writable ({reason});"
                          f" 1 record saved in {saved}{advice}\n")
    assert stat.S_IMODE(saved.stat().st_mode) == 0o600
    assert stat.S_IMODE(saved.parent.stat().st_mode) == 0o700

    # journal check and doctor flag the waiting records with the same command.
    check = cw(["journal", "check"], fenv)
    assert (f"3 records that runs could not write to a journal wait in {saved}{advice}"
            in check.stdout.splitlines())
    assert doctor_line(fenv) == (f"\u2717 saved records  3 records that runs could not write"
                                 f" to a journal wait in {saved}\n"
                                 f"fix: add them once with: claudewrap journal recover")

    before = saved.read_bytes()
    dry = cw(["journal", "recover", "--dry-run"], fenv)
    assert (dry.returncode, dry.stderr) == (0, "")
    assert dry.stdout == (f"would add 3 records from {saved} to {journal}"
                          f" (--dry-run: nothing changed)\n")
    assert saved.read_bytes() == before

    done = cw(["journal", "recover"], fenv)
    assert (done.returncode, done.stderr) == (0, "")
    assert done.stdout == (f"added 3 records from {saved} to {journal};"
                           " the saved files are empty now\n")
    again = cw(["journal", "recover"], fenv)
    assert again.returncode == 0
    assert again.stdout == "nothing to recover: no run saved records elsewhere\n"
    assert saved.read_bytes() == b""

    usage = total(fenv)
    assert usage["input_tokens"] == first + 33000
    assert usage["output_tokens"] == (1 if first else 0) + 600
    assert usage["records"] == (4 if first else 3)
    assert "wait in" not in cw(["journal", "check"], fenv).stdout
    assert doctor_line(fenv).startswith("\u2713 saved records  none waiting")


def test_records_already_added_by_hand_are_not_added_again(fenv: dict[str, str]) -> None:
    """The advice before `recover` was `cat SAVED >> JOURNAL`: someone who followed
    it (and kept the file) and then runs recover gets each record once."""
    journal = Path(fenv["CLAUDEWRAP_JOURNAL"])
    _, repair = _break("folder-is-a-file", journal)
    try:
        assert run(fenv, "Tokens: 700 input, 70 output", "Tokens: 800 input, 80 output",
                   ).returncode == 0
    finally:
        repair()
    saved = saved_dir(fenv) / "journal-unsaved.jsonl"
    journal.write_bytes(saved.read_bytes())  # cat SAVED >> JOURNAL
    done = cw(["journal", "recover"], fenv)
    assert done.stdout == (f"added 0 records from {saved} to {journal}; 2 were in it already;"
                           " the saved files are empty now\n")
    assert (total(fenv)["input_tokens"], total(fenv)["records"]) == (1500, 2)


def test_recover_names_the_journal_when_the_run_used_another_one(fenv: dict[str, str],
                                                                 tmp_path: Path) -> None:
    """A run with --journal X: the advice says --journal X, so the records go
    where that run meant them to, not to the default journal."""
    other = tmp_path / "blocked" / "other.jsonl"
    other.parent.write_text("")
    done = subprocess.run([*CW, "run", "--journal", str(other), "--", "print",
                           "Tokens: 9 input, 9 output"], env=fenv, capture_output=True,
                          text=True, timeout=60, check=False)
    assert done.stderr.endswith(f" add them once with: claudewrap journal recover --journal"
                                f" {other}\n")
    other.parent.unlink()
    command = done.stderr.split("add them once with: claudewrap ")[1].split()
    assert cw(command, fenv).returncode == 0
    assert [r["input_tokens"] for r in records_in(other)] == [9]
    assert not Path(fenv["CLAUDEWRAP_JOURNAL"]).exists()


def test_recover_into_a_journal_it_cannot_write_moves_nothing_and_says_so(
        fenv: dict[str, str]) -> None:
    journal = Path(fenv["CLAUDEWRAP_JOURNAL"])
    _, repair = _break("folder-is-a-file", journal)
    try:
        assert run(fenv, "Tokens: 1 input, 2 output").returncode == 0
        saved = saved_dir(fenv) / "journal-unsaved.jsonl"
        before = saved.read_bytes()
        done = cw(["journal", "recover"], fenv)
    finally:
        repair()
    assert done.returncode == 1
    assert done.stderr == (f"Error: cannot write the journal {journal}: Not a directory; fix"
                           " that, or choose another file with --journal or"
                           " $CLAUDEWRAP_JOURNAL; nothing was moved\n")
    assert saved.read_bytes() == before


# --- kill -9 of recover at random points -------------------------------------------


def _batch(first: int, n: int) -> list[UsageRecord]:
    return [UsageRecord(ts=f"2026-03-{1 + i // 86400 % 28:02d}T{i // 3600 % 24:02d}:"
                           f"{i // 60 % 60:02d}:{i % 60:02d}.{i % 1000:03d}Z",
                        session=f"s{i % 7}", source="pty", model="claude-sonnet-4-5",
                        input_tokens=i, output_tokens=1)
            for i in range(first, first + n)]


def test_recover_killed_at_random_points_then_run_again_adds_each_record_once(
        fenv: dict[str, str]) -> None:
    journal = Path(fenv["CLAUDEWRAP_JOURNAL"])
    # A journal large enough that reading it takes a while, so the kills land
    # before, during and after the append.
    for start in range(0, 40_000, 10_000):
        append_records(journal, _batch(1_000_000 + start, 10_000))
    saved_dir(fenv).mkdir(mode=0o700)
    saved = saved_dir(fenv) / "journal-unsaved.jsonl"
    append_records(saved, _batch(0, 1))
    started = time.monotonic()
    assert cw(["journal", "recover", "--dry-run"], fenv).returncode == 0
    took = time.monotonic() - started

    rng = random.Random(13)
    expected = 0
    killed = 0
    for round_ in range(12):
        # Each round saves new records (and a copy of one already moved: it
        # must not be added again).
        append_records(saved, _batch(expected, 400) + _batch(0, 1))
        expected += 400
        proc = subprocess.Popen([*CW, "journal", "recover"], env=fenv,
                                stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
        time.sleep(rng.uniform(0.3, 1.3) * took)
        proc.kill()
        _, err = proc.communicate(timeout=60)
        assert b"Traceback" not in err, err
        killed += proc.returncode == -signal.SIGKILL
        assert proc.returncode in (0, -signal.SIGKILL), (round_, err)
    assert killed >= 3, "the kills came too late to test anything"

    done = cw(["journal", "recover"], fenv)
    assert done.returncode == 0, done.stderr
    assert saved.read_bytes() == b""
    good = Counter(r.input_tokens for r in map(_record, journal.read_bytes().splitlines())
                   if r is not None)
    assert {n: c for n, c in good.items() if n < 1_000_000} == dict.fromkeys(range(expected), 1)
    assert sum(c for n, c in good.items() if n >= 1_000_000) == 40_000


def _record(line: bytes) -> UsageRecord | None:
    try:
        return UsageRecord.from_dict(json.loads(line))
    except ValueError:
        return None  # a line torn by a kill mid-write: every reader skips it


# --- a file-size limit ---------------------------------------------------------------

# A `claude` that prints what it is given, then writes past the file-size limit
# and says how that ended. A shell script, not the Python fake: Python ignores
# SIGXFSZ at start-up, so a Python child cannot show what it inherited.
FSIZE_CLAUDE = """#!/bin/sh
cat "$1"
head -c 200000 /dev/zero > "$2"
echo "head: $?"
"""
N = 2000


def _limited(env: dict[str, str], tmp_path: Path) -> tuple[dict[str, str], list[str]]:
    script = tmp_path / "fsize-claude"
    script.write_text(FSIZE_CLAUDE)
    script.chmod(0o755)
    output = tmp_path / "output.txt"
    output.write_text("".join(f"Tokens: {1000 + i} input, {i + 1} output\n" for i in range(N)))
    argv = ["bash", "-c", 'ulimit -f 64; exec "$@"', "bash", *CW, "run", "--", str(output),
            str(tmp_path / "big")]
    return dict(env, CLAUDEWRAP_CLAUDE=str(script)), argv


def _run_limited(env: dict[str, str], argv: list[str], mode: str) -> tuple[int, str]:
    if mode == "pipe":
        done = subprocess.run(argv, env=env, capture_output=True, text=True, timeout=120,
                              check=False)
        return done.returncode, done.stdout + done.stderr
    child = spawn(argv, env, timeout=120)
    out = read_all(child, limit=120).decode()
    return child.exitstatus, out


@pytest.mark.parametrize("mode", ["pipe", "pty"])
def test_a_file_size_limit_loses_no_record_and_the_child_keeps_default_sigxfsz(
        fenv: dict[str, str], tmp_path: Path, mode: str) -> None:
    env, argv = _limited(fenv, tmp_path)
    status, out = _run_limited(env, argv, mode)
    assert status == 0, out
    # The child was killed by SIGXFSZ at the limit, as without the wrapper.
    assert f"head: {128 + signal.SIGXFSZ}" in out.splitlines()
    assert (tmp_path / "big").stat().st_size == 64 * 1024

    journal = Path(env["CLAUDEWRAP_JOURNAL"])
    in_journal = records_in(journal)
    files = saved_files(env)
    in_files = [r for path in files for r in records_in(path)]
    assert journal.stat().st_size <= 64 * 1024
    assert all(path.stat().st_size <= 64 * 1024 for path in files)
    assert len(files) > 1  # one file could not hold them: the next ones did
    pairs = Counter((r["input_tokens"], r["output_tokens"]) for r in in_journal + in_files)
    assert pairs == Counter((1000 + i, i + 1) for i in range(N))

    (warning,) = [line for line in out.splitlines() if line.startswith("claudewrap:")]
    assert warning == (f"claudewrap: the journal {journal} was not writable (File too large);"
                       f" {len(in_journal)} of 2,000 records are in it;"
                       f" {len(in_files):,} records saved in {files[0]} and {len(files) - 1}"
                       f" more files beside it {DASH} add them once with:"
                       " claudewrap journal recover")

    done = cw(["journal", "recover"], env)
    assert done.returncode == 0, done.stderr
    usage = total(env)
    assert (usage["records"], usage["input_tokens"], usage["output_tokens"]) == (
        N, sum(1000 + i for i in range(N)), sum(i + 1 for i in range(N)))


def test_under_a_file_size_limit_only_what_no_file_takes_is_called_lost(
        fenv: dict[str, str], tmp_path: Path) -> None:
    """No private temp folder (another user took the name, say): the journal
    still keeps what fits, and the line counts exactly the rest as lost."""
    saved_dir(fenv).write_text("")
    env, argv = _limited(fenv, tmp_path)
    status, out = _run_limited(env, argv, "pipe")
    assert status == 0
    journal = Path(env["CLAUDEWRAP_JOURNAL"])
    kept = len(records_in(journal))
    assert 0 < kept < N
    (warning,) = [line for line in out.splitlines() if line.startswith("claudewrap:")]
    assert warning == (f"claudewrap: the journal {journal} was not writable (File too large);"
                       f" {kept} of 2,000 records are in it; {N - kept:,} records could not be"
                       " saved anywhere (no private folder for it in the temp dir): they are"
                       " lost")


def test_the_wrapper_itself_survives_sigxfsz_when_its_parent_left_it_default(
        fenv: dict[str, str], tmp_path: Path) -> None:
    """A program that embeds the wrapper with SIGXFSZ at its default: the
    journal still keeps what fits instead of the wrapper being killed."""
    env, argv = _limited(fenv, tmp_path)
    driver = ("import signal, sys\n"
              "signal.signal(signal.SIGXFSZ, signal.SIG_DFL)\n"
              "from claudewrap.main import main\n"
              "sys.argv[0] = 'claudewrap'\n"
              "main()\n")
    argv = [*argv[:argv.index(sys.executable)], sys.executable, "-c", driver,
            *argv[argv.index("run"):]]
    status, out = _run_limited(env, argv, "pipe")
    assert status == 0, out
    assert "File too large" in out and len(records_in(Path(env["CLAUDEWRAP_JOURNAL"]))) > 0
