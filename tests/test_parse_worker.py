"""Output dense with usage is parsed in a process of its own (issue 14 item 2:
"if parsing still cannot keep up, take it off the relay's path"): the records
must be exactly those of the parse in line, in the journal and in the run's
summary; a parser process that dies or is left alone by a dying relay costs
what it had not written, never the run, and leaves no process behind."""

from __future__ import annotations

import json
import os
import re
import signal
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import pytest
from conftest import CW, read_all, spawn, wait_until

from claudewrap.store.config import UserPattern
from claudewrap.store.records import UsageRecord
from claudewrap.wrap import capture as capture_module
from claudewrap.wrap import parse_worker
from claudewrap.wrap.capture import OFFLOAD_AFTER, Capture

pytestmark = pytest.mark.skipif(
    not sys.platform.startswith("linux") or os.uname().machine not in parse_worker._ORDERED,
    reason="the parser's process is for Linux on x86")


def dense(megabytes: float, seed: int = 0) -> bytes:
    """Claude-Code-like lines with usage on every one: 3 forms, 4,000 values."""
    out = bytearray()
    k = seed
    while len(out) < megabytes * 1_000_000:
        n = k % 4000
        out += (f"\x1b[2mTokens: {n * 37:,} input, {n * 11} output\x1b[22m\x1b[K\r\x1b[1B"
                f"\x1b[1mCost:\x1b[22m ${n / 991:.4f}\x1b[K\r\x1b[1B"
                f"  \u23bf  Usage: ${n / 997:.4f} ({n * 53} tokens)\x1b[K\r\x1b[1B"
                f"\x1b[38;5;246mnote:\x1b[39m reading src/app.py \x1b[12Gnow\r\x1b[1B").encode()
        k += 1
    return bytes(out)


def values(records: list[dict[str, object]]) -> list[dict[str, object]]:
    """What a record says, less when it was made."""
    return [{k: v for k, v in r.items() if k != "ts"} for r in records]


def journal(path: Path) -> list[dict[str, object]]:
    return [json.loads(line) for line in path.read_text().splitlines()] if path.exists() else []


def feed_all(cap: Capture, data: bytes, cut: int = 4095) -> bool:
    """Feed ``data`` as a pty hands it over (``cut`` bytes a read); whether a
    worker took the parse."""
    took = False
    for i in range(0, len(data), cut):
        cap.feed(data[i:i + cut])
        took = took or cap._worker is not None
    return took


def parsed_in_line(data: bytes) -> list[UsageRecord]:
    """What a capture that parses ``data`` itself records: the truth here."""
    inline = Capture(session="s", write=False)
    assert not feed_all(inline, data)
    assert inline.close() is None
    return inline.records


def no_children() -> bool:
    """No child process of this one is left (reaped or never made)."""
    try:
        pid, _ = os.waitpid(-1, os.WNOHANG)
    except ChildProcessError:
        return True
    return pid != 0 and no_children()


@pytest.mark.parametrize("cut", [4095, 1000, 65536])
def test_a_dense_flood_is_parsed_in_a_process_with_the_same_records(tmp_path: Path,
                                                                    cut: int) -> None:
    data = dense(2.5)
    inline = Capture(session="s", journal=str(tmp_path / "inline.jsonl"))
    assert not feed_all(inline, data, cut)
    assert inline.close() is None

    offloaded = Capture(session="s", journal=str(tmp_path / "worker.jsonl"), offload=True)
    assert feed_all(offloaded, data, cut), "the dense flood should have gone to the parser's process"
    assert offloaded.close() is None
    assert offloaded._worker is None

    assert len(inline.records) > 7900  # 4,000 values: a Tokens line with its Cost, a Usage line
    assert values([r.to_dict() for r in offloaded.records]) == values(
        [r.to_dict() for r in inline.records])
    assert values(journal(tmp_path / "worker.jsonl")) == values(journal(tmp_path / "inline.jsonl"))
    assert no_children()


def test_the_hand_over_comes_only_after_a_dense_run(tmp_path: Path) -> None:
    """Less than OFFLOAD_AFTER bytes of dense output, or dense output cut by
    plain text, stays in line."""
    plain = b"\x1b[38;5;246mnote:\x1b[39m src/app.py:42 reads {x}\r\x1b[1B" * 6000
    data = (dense(0.6) + plain) * 3
    cap = Capture(session="s", write=False, offload=True)
    assert not feed_all(cap, data)
    assert cap.close() is None
    assert len(cap.records) > 1000
    assert len(dense(1.0)) < OFFLOAD_AFTER * 1.05  # the test means what it says


SESSIONS = sorted((Path(__file__).parent / "captures").glob("*/interactive_session.typescript"))


def with_my_tool(session: Path, times: int) -> bytes:
    """A real Claude Code session's bytes, again and again, each time followed
    by a line that only a user pattern reads."""
    block = session.read_bytes()
    return b"".join(block + f"\x1b[1Gmytool spent {k * 7} in, {k} out\r\n".encode()
                    for k in range(times))


def my_tool() -> list[UserPattern]:
    return [UserPattern("mytool", re.compile(r"mytool spent (?P<input>\d+) in, (?P<output>\d+) out"))]


@pytest.mark.parametrize("session", SESSIONS, ids=lambda p: p.parent.name)
def test_with_user_patterns_a_flood_of_real_output_hands_over(session: Path) -> None:
    """User patterns read every line (the parse costs ~10x the built-ins'):
    real Claude Code output that comes without a pause goes to the process,
    with the same records, the user's and the built-in ones."""
    data = with_my_tool(session, 150)
    assert len(data) > 1.5 * OFFLOAD_AFTER
    inline = Capture(session="s", write=False, user_patterns=my_tool())
    assert not feed_all(inline, data)
    assert inline.close() is None
    offloaded = Capture(session="s", write=False, user_patterns=my_tool(), offload=True)
    assert feed_all(offloaded, data)
    assert offloaded.close() is None
    assert values([r.to_dict() for r in offloaded.records]) == values(
        [r.to_dict() for r in inline.records])
    assert sum(r.pattern == "user:mytool" for r in inline.records) == 150  # one per line
    assert no_children()


def test_with_user_patterns_output_with_pauses_stays_in_line() -> None:
    """An interactive session: screens with pauses between them (idle() parses
    each), however much of it there is, never hand over."""
    data = with_my_tool(SESSIONS[0], 150)
    cap = Capture(session="s", write=False, user_patterns=my_tool(), offload=True)
    for i in range(0, len(data), 8000):
        cap.feed(data[i:i + 8000])
        cap.idle()  # the relay's idle(): output paused
        assert cap._worker is None
    assert cap.close() is None
    assert sum(r.pattern == "user:mytool" for r in cap.records) == 150


def test_when_the_fork_fails_the_parse_stays_in_line(tmp_path: Path,
                                                     monkeypatch: pytest.MonkeyPatch) -> None:
    tried = []

    def no_fork() -> int:
        tried.append(1)
        raise BlockingIOError(11, "Resource temporarily unavailable")  # EAGAIN: too many processes

    monkeypatch.setattr(os, "fork", no_fork)
    data = dense(2.5)
    cap = Capture(session="s", journal=str(tmp_path / "journal.jsonl"), offload=True)
    assert not feed_all(cap, data)
    assert tried == [1]  # tried once, not again at every batch
    assert cap.close() is None
    truth = parsed_in_line(data)
    assert values(journal(tmp_path / "journal.jsonl")) == values(
        [r.to_dict() for r in truth])
    assert no_children()


def test_a_killed_parser_costs_what_it_had_not_written_not_the_run(tmp_path: Path) -> None:
    path = tmp_path / "journal.jsonl"
    cap = Capture(session="s", journal=str(path), offload=True)
    data = dense(1.5)
    assert feed_all(cap, data)
    worker = cap._worker
    assert worker is not None
    os.kill(worker.pid, signal.SIGKILL)
    started = time.monotonic()
    # More than the ring holds: put() finds it gone when the ring is full.
    more = dense(10, seed=4000)
    for i in range(0, len(more), 65536):
        cap.feed(more[i:i + 65536])
    warning = cap.close()
    assert time.monotonic() - started < 30
    assert warning is not None
    assert "usage parser's process stopped (it was killed by signal 9)" in warning
    assert "may be missing" in warning
    assert no_children()
    # What it wrote before it died stays written, once.
    written = journal(path)
    assert len({json.dumps(r, sort_keys=True) for r in values(written)}) == len(written)


def test_a_stuck_parser_is_ended_and_the_relay_goes_on(tmp_path: Path,
                                                       monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(parse_worker, "_STALL_SECONDS", 0.5)
    cap = Capture(session="s", write=False, offload=True)
    assert feed_all(cap, dense(1.5))
    worker = cap._worker
    assert worker is not None
    os.kill(worker.pid, signal.SIGSTOP)  # alive, takes nothing
    started = time.monotonic()
    more = dense(10, seed=4000)
    for i in range(0, len(more), 65536):
        cap.feed(more[i:i + 65536])
    assert worker.stopped == "it took nothing for 0.5 s"
    warning = cap.close()
    assert time.monotonic() - started < 20
    assert warning is not None and "usage parser's process stopped" in warning
    assert no_children()


DYING_RELAY = """
import os, sys
sys.path.insert(0, {root!r})
from test_parse_worker import dense
from claudewrap.wrap.capture import Capture
cap = Capture(session="s", journal={journal!r}, offload=True)
data = dense(2.5)
for i in range(0, len(data), 4095):
    cap.feed(data[i:i + 4095])
print(cap._worker.pid, flush=True)
os._exit(0)  # the relay gone without close(): killed, say
"""


def test_a_parser_whose_relay_died_writes_what_it_had(tmp_path: Path) -> None:
    path = tmp_path / "journal.jsonl"
    root = str(Path(__file__).resolve().parent)  # this folder: dense() and its conftest
    out = subprocess.run([sys.executable, "-c", DYING_RELAY.format(root=root, journal=str(path))],
                         capture_output=True, text=True, timeout=60, check=True)
    pid = int(out.stdout.split()[0])
    wait_until(lambda: not Path(f"/proc/{pid}").exists()
               or Path(f"/proc/{pid}/stat").read_text().split()[2] == "Z",
               "the orphaned parser to exit", limit=30)
    truth = parsed_in_line(dense(2.5))
    assert values(journal(path)) == values([r.to_dict() for r in truth])


def test_a_wrapped_claude_flooding_usage_is_recorded_exactly(env: dict[str, str],
                                                            tmp_path: Path) -> None:
    """The real wrapper in a real pty: a `claude` that pours out 3 MB of usage
    lines; every byte shown, every record once, the exit status passed on, and
    no parser process left once the run has ended."""
    data = dense(3)
    flood = tmp_path / "flood.bin"
    flood.write_bytes(data)
    marker = f"cw-worker-{os.getpid()}-{time.monotonic_ns()}"
    child = spawn([*CW, "run", "--", str(flood)],
                  dict(env, CLAUDEWRAP_CLAUDE="/bin/cat", CW_TEST_MARK=marker), timeout=60)
    shown = read_all(child)
    assert child.exitstatus == 0
    assert shown.count(b"Tokens: ") == data.count(b"Tokens: ")
    truth = parsed_in_line(data)
    got = journal(Path(env["CLAUDEWRAP_JOURNAL"]))
    want = {(r.kind, r.input_tokens, r.output_tokens, r.cost_usd) for r in truth}
    assert len(got) == len(want) > 7900
    assert {(r["kind"], r.get("input_tokens", 0), r.get("output_tokens", 0), r.get("cost_usd"))
            for r in got} == want

    wait_until(lambda: not _processes_marked(marker), "no process of the run to be left",
               limit=10)


def test_capture_made_without_offload_never_forks(tmp_path: Path) -> None:
    cap = Capture(session="s", write=False)
    assert not feed_all(cap, dense(2.5))
    assert cap.close() is None
    assert capture_module.OFFLOAD_AFTER == OFFLOAD_AFTER


def test_an_unwritable_journal_in_the_parser_process_loses_nothing(
        tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """The child owns the journal after the hand-over: what it cannot write
    goes to the fallback file, and its closing line (with the command that
    adds them) is the run's."""
    monkeypatch.setattr(tempfile, "tempdir", str(tmp_path / "tmp"))
    (tmp_path / "tmp").mkdir()
    blocker = tmp_path / "not-a-folder"
    blocker.write_text("")
    cap = Capture(session="s", journal=str(blocker / "journal.jsonl"), offload=True)
    data = dense(2.5)
    assert feed_all(cap, data)
    warning = cap.close()
    assert warning is not None
    assert "claudewrap journal recover" in warning and "saved in" in warning
    assert "parser's process stopped" not in warning
    saved = [r for f in sorted((tmp_path / "tmp").glob("claudewrap-*/journal-unsaved*.jsonl"))
             for r in journal(f)]
    truth = parsed_in_line(data)
    assert values(saved) == values([r.to_dict() for r in truth])
    assert values([r.to_dict() for r in cap.records]) == values(saved)
    assert no_children()


SLOW_CLAUDE = """
import sys, time
sys.stdout.buffer.write(open(sys.argv[1], "rb").read() + b"FLOOD-DONE\\r\\n")
sys.stdout.flush()
time.sleep(60)
"""


def test_a_wrapper_stopped_by_sigterm_mid_run_keeps_every_record(env: dict[str, str],
                                                                tmp_path: Path) -> None:
    """SIGTERM to the wrapper while its parser process runs: claude gets it,
    the exit status says so, and every record the flood held is written."""
    data = dense(3)
    flood = tmp_path / "flood.bin"
    flood.write_bytes(data)
    fake = tmp_path / "slow_claude"
    fake.write_text(f"#!{sys.executable}\n{SLOW_CLAUDE}")
    fake.chmod(0o755)
    marker = f"cw-worker-{os.getpid()}-{time.monotonic_ns()}"
    child = spawn([*CW, "run", "--", str(flood)],
                  dict(env, CLAUDEWRAP_CLAUDE=str(fake), CW_TEST_MARK=marker), timeout=60)
    child.expect(b"FLOOD-DONE", timeout=60)
    assert len(ring_holders(marker)) == 2  # the wrapper and its parser process
    truth = parsed_in_line(data)
    time.sleep(0.2)
    os.kill(child.pid, signal.SIGTERM)
    read_all(child)
    assert child.signalstatus is None and child.exitstatus == 128 + signal.SIGTERM
    got = journal(Path(env["CLAUDEWRAP_JOURNAL"]))
    assert len(got) == len(truth) > 7900
    assert {(r["kind"], r.get("input_tokens", 0), r.get("output_tokens", 0), r.get("cost_usd"))
            for r in got} == {(r.kind, r.input_tokens, r.output_tokens, r.cost_usd)
                              for r in truth}
    wait_until(lambda: not _processes_marked(marker), "no process of the run to be left",
               limit=10)


def _processes_marked(marker: str) -> list[str]:
    """The processes whose environment holds ``marker``."""
    found = []
    for proc in Path("/proc").iterdir():
        try:
            if proc.name.isdigit() and marker.encode() in (proc / "environ").read_bytes():
                found.append(proc.name)
        except OSError:
            continue
    return found


def ring_holders(marker: str) -> list[str]:
    """The processes (with ``marker`` in their environment) that map the
    parser's ring: the wrapper and its parser process, while it runs."""
    from claudewrap.wrap.parse_worker import RING

    size = RING + 4096  # the ring and its header, in whole pages
    found = []
    for pid in _processes_marked(marker):
        try:
            maps = Path(f"/proc/{pid}/maps").read_text()
        except OSError:
            continue
        for line in maps.splitlines():
            span, perms = line.split()[:2]
            start, end = (int(x, 16) for x in span.split("-"))
            if perms.endswith("s") and end - start == size:
                found.append(pid)
                break
    return found
