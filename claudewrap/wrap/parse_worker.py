"""The capture's parse handed to a process of its own, where output is dense with usage.

Where nearly every line of a flood can hold usage (bench/real_output.py's
"usage on every line": the capture reads ~all of it), the parse costs several
times what relaying the bytes does, and on the relay's thread it paces the
child's output. There a forked copy of the :class:`~claudewrap.wrap.capture.Capture`
(its scanner, matcher, what it has recorded, its journal) parses on, fed
through a shared-memory ring: the relay only copies each read into the ring,
and the two run on two cores. Measured on 2 cores, 25 MB of it: the wrapper at
0.26x script(1) with the parse in line, 0.36x with it in a process
(bench/parser_offload.py's ``ring`` way). Where the flood is not dense (Claude
Code's own sessions), moving the parse gains nothing on 2 cores (the same
bench): the capture hands over only after ``OFFLOAD_AFTER`` bytes of dense
output in a row (see Capture._parse).

Only the child writes the capture's records from then on; when the run ends it
sends back the records it added and the capture's closing line. Nothing is
lost when it cannot start (fork fails: the parse stays in line); when it dies
or stalls, the relay drops what it would have parsed and close() says so.
Linux on x86 only (fork in a process with threads is the one way to hand over
a live parser's state; Linux resets what the child needs; see _ORDERED).
"""

from __future__ import annotations

import os
import select
import struct
import time

TYPE_CHECKING = False  # typing.TYPE_CHECKING without importing typing (see capture.py)
if TYPE_CHECKING:
    from mmap import mmap

    from claudewrap.store.records import UsageRecord
    from claudewrap.wrap.capture import Capture

RING = 8 << 20  # bytes between the relay and the parser: a burst this large never waits
_HEADER = struct.Struct("QQQ")  # written (relay), done (relay), read (parser)
_WRITTEN, _DONE, _READ = 0, 8, 16
_SLICE = 1 << 16  # the parser takes at most this much at a time
_STALL_SECONDS = 5.0  # a parser that takes nothing from a full ring this long is stuck
_REPORT_SECONDS = 30.0  # close(): the parser has this long to finish and report
_IDLE_MAX = 0.05  # an idle parser looks at the ring at least this often
# The ring has no lock: the relay writes the bytes, then their end; the parser
# reads the end, then the bytes. Only where the processor keeps stores and loads
# in program order (x86's total store order) is that enough; elsewhere (ARM)
# the parse stays in line.
_ORDERED = frozenset({"x86_64", "amd64", "i686", "i386"})
# close()'s note when the parser stopped before the end (why, in the braces).
OFFLOAD_NOTE = "the usage parser's process stopped ({}); usage printed after that may be missing"


class Worker:
    """The relay's side: :meth:`put` each read, :meth:`finish` at the end."""

    def __init__(self, pid: int, mm: mmap, done_w: int, report_r: int) -> None:
        self.pid = pid
        self._mm = mm
        self._done_w = done_w  # closed at finish(): wakes the parser at once
        self._report_r = report_r
        self._written = 0
        self._ended = ""  # how the process ended, once reaped
        self.stopped = ""  # why the parser stopped before the end ("" while it runs)

    def put(self, chunk: bytes) -> bool:
        """Copy ``chunk`` into the ring, waiting while it is full; False (and
        nothing copied) once the parser has stopped or finished."""
        if self.stopped or self._mm.closed:
            return False
        mm = self._mm
        size = len(chunk)
        if size > RING // 2:
            return self.put(chunk[:RING // 2]) and self.put(chunk[RING // 2:])
        read = _HEADER.unpack_from(mm, RING)[2]
        if self._written + size - read > RING:
            waited_since = time.monotonic()
            while self._written + size - read > RING:
                if not self._alive():
                    self.stopped = self._ended
                    return False
                time.sleep(0.0005)
                now_read = _HEADER.unpack_from(mm, RING)[2]
                if now_read != read:
                    read, waited_since = now_read, time.monotonic()
                elif time.monotonic() - waited_since > _STALL_SECONDS:
                    self._stop(f"it took nothing for {_STALL_SECONDS:g} s")
                    return False
        start = self._written % RING
        first = min(size, RING - start)
        mm[start:start + first] = chunk if first == size else chunk[:first]
        if first < size:
            mm[:size - first] = chunk[first:]
        self._written += size
        struct.pack_into("Q", mm, RING + _WRITTEN, self._written)
        return True

    def _alive(self) -> bool:
        try:
            pid, status = os.waitpid(self.pid, os.WNOHANG)
        except ChildProcessError:
            pid, status = self.pid, 0
        if pid == 0:
            return True
        self.pid = 0  # reaped
        self._ended = (f"it was killed by signal {os.WTERMSIG(status)}" if os.WIFSIGNALED(status)
                       else f"it exited with status {os.waitstatus_to_exitcode(status)}")
        return False

    def _stop(self, why: str) -> None:
        if self.pid:
            import signal

            try:
                os.kill(self.pid, signal.SIGKILL)
                os.waitpid(self.pid, 0)
            except (ProcessLookupError, ChildProcessError):
                pass
            self.pid = 0
        self.stopped = self.stopped or why

    def finish(self) -> tuple[list[UsageRecord], str | None] | None:
        """Let the parser read the rest and close; the records it added and
        its closing line, or None when it stopped before it could report."""
        mm = self._mm
        struct.pack_into("Q", mm, RING + _DONE, 1)
        os.close(self._done_w)
        chunks: list[bytes] = []
        deadline = time.monotonic() + _REPORT_SECONDS
        try:
            while True:
                left = deadline - time.monotonic()
                if left <= 0:
                    self._stop(f"it had not finished {_REPORT_SECONDS:.0f} s after the end")
                    break
                if not select.select([self._report_r], [], [], min(left, 0.5))[0]:
                    if self.pid and not self._alive():
                        break
                    continue
                data = os.read(self._report_r, 1 << 16)
                if not data:
                    break
                chunks.append(data)
        finally:
            os.close(self._report_r)
        if self.pid:
            for _ in range(100):  # it reported: it is exiting
                if not self._alive():
                    break
                time.sleep(0.01)
            else:
                self._stop("it did not exit after it reported")
        mm.close()  # the ring goes with the parser (put() copies nothing after this)
        import pickle

        try:
            records, warning = pickle.loads(b"".join(chunks))
        except Exception:  # noqa: BLE001 - a report cut short: the parser stopped
            self.stopped = self.stopped or self._ended or "it stopped before it reported"
            return None
        return records, warning


def start(capture: Capture) -> Worker | None:
    """Fork a parser with ``capture``'s state; in the child, parse until the
    relay is done and exit (never returns). None where it cannot start."""
    import mmap
    import sys
    import warnings

    if not sys.platform.startswith("linux") or os.uname().machine not in _ORDERED:
        return None
    # What the child may import, imported here first: a module another thread
    # (the OpenTelemetry receiver writing its records) is importing when we
    # fork would stay locked in the child; here we wait for that thread.
    import pathlib  # noqa: F401
    import pickle  # noqa: F401
    import shlex  # noqa: F401
    import tempfile  # noqa: F401

    import claudewrap.store.journal
    import claudewrap.views.display  # noqa: F401

    try:
        mm = mmap.mmap(-1, RING + _HEADER.size)
        done_r, done_w = os.pipe()
        report_r, report_w = os.pipe()
    except OSError:
        return None
    parent = os.getpid()
    try:
        with warnings.catch_warnings():
            # Python 3.12+ warns of fork() beside threads (the OpenTelemetry
            # receiver): the child only uses the capture, which no other thread
            # touches, and exits without returning to anything else.
            warnings.simplefilter("ignore", DeprecationWarning)
            pid = os.fork()
    except OSError:
        for fd in (done_r, done_w, report_r, report_w):
            os.close(fd)
        mm.close()
        return None
    if pid == 0:
        status = 1
        try:
            _detach({done_r, report_w})
            status = _serve(capture, mm, done_r, report_w, parent)
        finally:
            os._exit(status)
    os.close(done_r)
    os.close(report_w)
    return Worker(pid, mm, done_w, report_r)


def _detach(keep: set[int]) -> None:
    """The child: no signal of the run's (Ctrl-C, the terminal's hang-up, a
    kill of the job) ends it before it has written what it parsed; the relay's
    descriptors (the pty, the terminal, the receiver's socket) point at
    /dev/null, so that holding them changes nothing for the run."""
    import signal

    signal.set_wakeup_fd(-1)  # the relay's wake-up pipe is not ours to write
    for name in ("SIGINT", "SIGQUIT", "SIGHUP", "SIGTERM", "SIGPIPE", "SIGUSR1", "SIGUSR2"):
        signal.signal(getattr(signal, name), signal.SIG_IGN)
    for name in ("SIGCHLD", "SIGWINCH", "SIGCONT", "SIGTSTP", "SIGTTIN", "SIGTTOU", "SIGALRM"):
        signal.signal(getattr(signal, name), signal.SIG_DFL)
    null = os.open(os.devnull, os.O_RDWR)
    try:
        fds = [int(fd) for fd in os.listdir("/proc/self/fd")]
    except OSError:
        fds = list(range(3))
    for fd in fds:
        if fd not in keep and fd != null:
            try:
                os.dup2(null, fd)  # not closed: a number reused by a later open() stays safe
            except OSError:
                pass
    os.close(null)


def _serve(capture: Capture, view: mmap, done_r: int, report_w: int, parent: int) -> int:
    """The child: parse what the relay puts in the ring, in order, until it is
    done (or gone); then close the capture and report. Its exit status."""
    import pickle

    first = len(capture.records)
    # Forked from Capture._hand_over: offloading is off and no worker is set
    # in this copy, so it parses here as a capture that never handed over.
    capture.idle()  # what the relay had kept and not parsed: it comes first
    read = 0
    wait = 0.001
    while True:
        written, done, _ = _HEADER.unpack_from(view, RING)
        if written > read:
            while read < written:
                start = read % RING
                size = min(written - read, RING - start, _SLICE)
                capture.feed(bytes(view[start:start + size]))
                read += size
                struct.pack_into("Q", view, RING + _READ, read)
            wait = 0.001
            continue
        if done or os.getppid() != parent:
            break  # the end, or the relay is gone: parse what came, write it
        capture.idle()  # output paused: its records go to the journal now
        select.select([done_r], [], [], wait)
        wait = min(wait * 2, _IDLE_MAX)
    warning = capture.close()
    report = pickle.dumps((capture.records[first:], warning))
    view_out = memoryview(report)
    while view_out:
        try:
            n = os.write(report_w, view_out)
        except OSError:
            return 1  # the relay is gone: the records are in the journal
        view_out = view_out[n:]
    return 0


__all__ = ["OFFLOAD_NOTE", "RING", "Worker", "start"]
