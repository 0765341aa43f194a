"""The journal: where it lives, atomic append, tolerant streaming read.

Each record is one line, ``UsageRecord.to_json() + "\\n"``. A writer appends a
whole batch with one ``write()`` on an ``O_APPEND`` descriptor while it holds an
advisory ``flock``, so lines of concurrent writers never interleave. A line torn
by a crashed writer costs only that line: readers skip it, and the next writer
starts on a fresh line.
"""

from __future__ import annotations

import errno
import fcntl
import json
import os
import stat
import time
from collections.abc import Iterable, Iterator
from dataclasses import dataclass, field
from pathlib import Path

from claudewrap import config as _config
from claudewrap.records import UsageRecord

# Where the journal is: defined in config.py, which the launch path can import
# without this module's dependencies.
ENV_VAR = _config.JOURNAL_ENV
default_path = _config.default_journal_path

# O_RDWR rather than O_WRONLY: the writer reads the last byte (under the lock) to
# find a torn tail. O_APPEND still puts every write at the end.
_OPEN_FLAGS = os.O_RDWR | os.O_APPEND | os.O_CREAT | os.O_CLOEXEC
_READ_BLOCK = 1 << 20
_MAX_LINE = 16 << 20  # a longer "line" is skipped without being held in memory
_MAX_BAD_LINES = 10
_CLOSE_LOCK_TIMEOUT = 2.0
_MAX_LOCK_SLEEP = 0.01


class JournalError(Exception):
    """The journal could not be written or read; the message says what to do.

    ``reason`` is the short cause (``Permission denied``); ``written`` is how many
    records of the failed batch are nevertheless complete in the file (usually 0).
    """

    def __init__(self, message: str, *, reason: str = "", written: int = 0) -> None:
        super().__init__(message)
        self.reason = reason or message
        self.written = written


def resolve_path(option: str | os.PathLike[str] | None = None) -> Path:
    """The journal to use: ``option`` (``--journal``), else ``$CLAUDEWRAP_JOURNAL``,
    else the one in the user data folder.

    Raises JournalError when that is a directory: one line naming it and the fix,
    where each reader would otherwise fail on it in its own words (issue 12).
    """
    path = _config.journal_path(option)
    if os.path.isdir(path):
        raise JournalError(_config.journal_is_directory(path, _config.journal_source(option)),
                           reason="Is a directory")
    return path


def write_all(fd: int, parts: Iterable[bytes | memoryview]) -> None:
    """Write ``parts`` one after the other to ``fd``, each whole (OSError if not)."""
    for part in parts:
        view = memoryview(part)
        while view:
            view = view[os.write(fd, view):]


def atomic_write(path: Path, parts: Iterable[bytes | memoryview], mode: int) -> None:
    """Write ``parts`` one after the other to a new file beside ``path`` (mode
    ``mode``) and move it in place: readers see the old file or the new one,
    never half of one. OSError when that cannot be done (nothing is left behind).
    """
    tmp = path.with_name(f".{path.name}.{os.getpid()}.{time.monotonic_ns()}.tmp")
    fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_EXCL | os.O_CLOEXEC, 0o600)
    try:
        try:
            write_all(fd, parts)
            os.fchmod(fd, mode)
        finally:
            os.close(fd)
        os.replace(tmp, path)
    except BaseException:
        try:
            os.unlink(tmp)
        except OSError:
            pass
        raise


def file_identity(path: Path) -> tuple[int, int] | None:
    """``(st_dev, st_ino)`` of ``path``, or None if it cannot be stat'ed.

    A reader that follows the journal by byte offset compares this (and the size)
    to notice that the file was replaced or truncated.
    """
    try:
        st = os.stat(path)
    except OSError:
        return None
    return (st.st_dev, st.st_ino)


# --- writing -------------------------------------------------------------------


def _encode(record: UsageRecord) -> bytes:
    # A lone surrogate (a non-UTF-8 cwd decoded with surrogateescape) cannot be
    # UTF-8; "\udcff" written as a JSON escape reads back as the same string.
    return (record.to_json() + "\n").encode("utf-8", "backslashreplace")


def _reason(exc: Exception) -> str:
    return (exc.strerror if isinstance(exc, OSError) else None) or str(exc)


def _write_error(path: Path, exc: Exception, written: int = 0) -> JournalError:
    reason = _reason(exc)
    return JournalError(
        f"cannot write the journal {path}: {reason}; fix that, or choose another file"
        f" with --journal or ${ENV_VAR}",
        reason=reason,
        written=written,
    )


def _make_folder(folder: Path) -> None:
    """Create the journal's folder 0700; leave a pre-existing folder alone."""
    try:
        os.mkdir(folder, 0o700)
    except FileExistsError:
        return
    except FileNotFoundError:
        os.makedirs(folder.parent, exist_ok=True)  # like mkdir -p: default modes
        try:
            os.mkdir(folder, 0o700)
        except FileExistsError:
            return
    try:
        os.chmod(folder, 0o700)  # the umask may have said otherwise
    except OSError:
        pass


def _open(path: Path, extra_flags: int) -> int:
    try:
        return os.open(path, _OPEN_FLAGS | extra_flags, 0o600)
    except FileNotFoundError:
        _make_folder(path.parent)
        return os.open(path, _OPEN_FLAGS | extra_flags, 0o600)


def _lock(fd: int, path: Path, timeout: float) -> None:
    """flock(LOCK_EX), polling with LOCK_NB so the wait is bounded by ``timeout``."""
    deadline = time.monotonic() + timeout
    delay = 0.0005
    while True:
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
            return
        except BlockingIOError:
            pass
        remaining = deadline - time.monotonic()
        if remaining <= 0:
            reason = f"locked by another process for {timeout:g} s"
            raise JournalError(
                f"cannot write the journal {path}: {reason}; try again, or find the"
                f" process holding it with: fuser {path}",
                reason=reason,
            )
        time.sleep(min(delay, remaining))
        delay = min(delay * 2, _MAX_LOCK_SLEEP)


def _complete_lines(lines: list[bytes], nbytes: int) -> int:
    """How many of ``lines`` lie entirely within the first ``nbytes``."""
    done = end = 0
    for line in lines:
        end += len(line)
        if end > nbytes:
            break
        done += 1
    return done


def _append_lines(path: Path, lines: list[bytes], lock_timeout: float,
                  extra_flags: int = 0) -> None:
    """Append ``lines`` (each ending in ``\\n``) with one write, under the lock.

    On failure nothing of the batch stays in the file when that can be helped
    (a short write is truncated away); JournalError.written says otherwise.
    """
    if not lines:
        return
    try:
        fd = _open(path, extra_flags)
    except (OSError, ValueError) as exc:  # ValueError: a NUL in the path
        raise _write_error(path, exc) from None
    try:
        try:
            _lock(fd, path, lock_timeout)
            st = os.fstat(fd)
            if stat.S_IMODE(st.st_mode) & 0o077:
                try:
                    os.fchmod(fd, 0o600)
                except OSError:
                    pass
            size = st.st_size
            # A writer that died mid-write left a line without its newline: end
            # that line first, so the torn bytes spoil no more than themselves.
            prefix = b"\n" if size and os.pread(fd, 1, size - 1) != b"\n" else b""
        except OSError as exc:
            raise _write_error(path, exc) from None
        data = memoryview(prefix + b"".join(lines))
        written = 0
        try:
            while written < len(data):  # a short write continues; the lock holds
                n = os.write(fd, data[written:])
                if n <= 0:
                    raise OSError(errno.EIO, "write() wrote nothing")
                written += n
        except OSError as exc:
            complete = 0
            if written:
                try:
                    os.ftruncate(fd, size)
                except OSError:
                    complete = _complete_lines(lines, written - len(prefix))
            raise _write_error(path, exc, complete) from None
    finally:
        try:
            os.close(fd)  # releases the lock
        except OSError:
            pass


def append_records(path: Path, records: Iterable[UsageRecord], lock_timeout: float = 2.0) -> None:
    """Append ``records`` to the journal at ``path`` in one write.

    Raises JournalError (a one-line message for the user) when that fails.
    """
    _append_lines(path, [_encode(r) for r in records], lock_timeout)


class JournalWriter:
    """Used inside a wrapped ``claude`` session: never raises, never blocks the session for long.

    Records that cannot be written now stay in :attr:`pending` and are retried,
    first and in order, by the next :meth:`append`; :meth:`close` tries a last
    time and returns at most one warning line. It never prints by itself.
    """

    def __init__(self, path: Path, lock_timeout: float = 0.2) -> None:
        self.path = path
        self.lock_timeout = lock_timeout
        self.pending: list[UsageRecord] = []
        self._reason = ""
        self._dropped = 0  # records that could not be serialised at all

    def append(self, records: Iterable[UsageRecord]) -> bool:
        """Write pending and new records; True if all are in the journal now."""
        self.pending.extend(records)
        return self._flush(self.lock_timeout)

    def close(self) -> str | None:
        """Last attempt; None, or one warning line for stderr (without newline)."""
        if self.pending:
            self._flush(max(self.lock_timeout, _CLOSE_LOCK_TIMEOUT))
        dropped, self._dropped = self._dropped, 0
        if not self.pending and not dropped:
            return None
        count = len(self.pending) + dropped
        plural = "" if count == 1 else "s"
        target = self.path
        if os.path.isdir(self.path):
            target = self.path / "journal.jsonl"
            message = (f"claudewrap: {_config.journal_is_directory(self.path, '')}; could not"
                       f" write {count} usage record{plural}")
        else:
            message = (f"claudewrap: could not write {count} usage record{plural}"
                       f" to {self.path}: {self._reason}")
        if self.pending:
            saved = self._save_elsewhere()
            if saved is not None:
                message += (f"; saved them to {saved} (add them with:"
                            f" {_config.add_back_advice(saved, target)})")
            else:
                message += "; they are lost"
        if dropped:
            message += f" ({dropped} could not be serialised)"
        return message

    def _flush(self, lock_timeout: float) -> bool:
        lines: list[bytes] = []
        keep: list[UsageRecord] = []
        for record in self.pending:
            try:
                lines.append(_encode(record))
            except (TypeError, ValueError) as exc:
                self._dropped += 1
                self._reason = f"cannot serialise a record: {exc}"
            else:
                keep.append(record)
        self.pending[:] = keep
        if not lines:
            return True
        try:
            _append_lines(self.path, lines, lock_timeout)
        except JournalError as exc:
            del self.pending[:exc.written]
            self._reason = exc.reason
            return False
        except OSError as exc:  # not expected: _append_lines wraps them
            self._reason = _reason(exc)
            return False
        self.pending.clear()
        return True

    def _save_elsewhere(self) -> Path | None:
        """Append the pending records to a private file in the temp dir; its path or None."""
        try:
            target = _config.fallback_journal()
            if target is None or target == self.path:
                return None
            lines = [_encode(r) for r in self.pending]
            _append_lines(target, lines, _CLOSE_LOCK_TIMEOUT, os.O_NOFOLLOW)
        except (OSError, JournalError, TypeError, ValueError):
            return None
        self.pending.clear()
        return target


# --- reading -------------------------------------------------------------------


@dataclass
class ReadStats:
    """What a read found. Counts add up when the same object is passed again.

    Line numbers are 1-based and count from the ``start`` of the first read that
    used this object (a follower that passes ``start=end_offset`` each time gets
    numbers for the whole file).
    """

    good: int = 0
    skipped: int = 0  # torn / invalid JSON / not a record
    incomplete_tail: bool = False  # last line had no newline (being written, or torn)
    end_offset: int = 0  # byte offset just after the last complete line consumed
    first_bad_lines: list[int] = field(default_factory=list)
    _lines: int = field(default=0, repr=False, compare=False)  # complete lines consumed

    def _bad(self, lineno: int) -> None:
        self.skipped += 1
        if len(self.first_bad_lines) < _MAX_BAD_LINES:
            self.first_bad_lines.append(lineno)


def parse_line(line: bytes) -> UsageRecord | None:
    """One journal line as a record; None for a blank, torn or invalid line."""
    if not line.strip():
        return None
    try:
        return UsageRecord.from_dict(json.loads(line.decode("utf-8")))
    except (ValueError, TypeError, OverflowError, RecursionError, AttributeError):
        return None


def record_at(fd: int, offset: int) -> UsageRecord | None:
    """The record whose line starts at byte ``offset`` of the journal open on
    ``fd`` (None when that line is torn or invalid)."""
    parts = []
    pos = offset
    while True:
        block = os.pread(fd, 65536, pos)
        if not block:
            break
        nl = block.find(b"\n")
        if nl >= 0:
            parts.append(block[:nl])
            break
        parts.append(block)
        pos += len(block)
    return parse_line(b"".join(parts))


def read_records(path: Path, stats: ReadStats | None = None, start: int = 0
                 ) -> Iterator[UsageRecord]:
    """Stream the records of the journal from byte offset ``start`` (a line start).

    Bad lines are skipped and counted in ``stats``; a last line without its
    newline is left unconsumed (``stats.end_offset`` stays before it). A missing
    file yields nothing. Raises JournalError if the file exists but cannot be read.
    """
    st = stats if stats is not None else ReadStats()
    st.incomplete_tail = False
    try:
        f = open(path, "rb", buffering=0)  # noqa: SIM115 - closed by the with below
    except (FileNotFoundError, NotADirectoryError):
        st.end_offset = 0
        return
    except OSError as exc:
        raise JournalError(f"cannot read the journal {path}: {_reason(exc)}; check its"
                           f" permissions, or choose another file with --journal or"
                           f" ${ENV_VAR}", reason=_reason(exc)) from None
    with f:
        f.seek(start)
        st.end_offset = start
        buf = bytearray()
        offset = start  # file offset of buf[0]
        scan = 0  # buf[:scan] holds no newline
        skipping = False  # inside an over-long line: drop bytes up to its newline
        while True:
            block = f.read(_READ_BLOCK)
            if not block:
                break
            buf += block
            pos = 0
            while (nl := buf.find(b"\n", scan)) >= 0:
                st._lines += 1
                lineno = st._lines
                line = bytes(buf[pos:nl])
                pos = scan = nl + 1
                st.end_offset = offset + pos
                if skipping:
                    skipping = False
                    st._bad(lineno)
                    continue
                if not line.strip():
                    continue
                record = parse_line(line)
                if record is None:
                    st._bad(lineno)
                    continue
                st.good += 1
                yield record
            del buf[:pos]
            offset += pos
            scan = len(buf)
            if len(buf) > _MAX_LINE:
                skipping = True
                offset += len(buf)
                buf.clear()
                scan = 0
        st.incomplete_tail = bool(buf) or skipping


def check(path: Path) -> ReadStats:
    """Read the whole journal; an incomplete last line counts as skipped too."""
    stats = ReadStats()
    for _ in read_records(path, stats):
        pass
    if stats.incomplete_tail:
        stats._bad(stats._lines + 1)
    return stats


def why_skipped(line: bytes) -> str | None:
    """Why every reader skips this journal line (None when it reads)."""
    if not line.strip():
        return None
    try:
        text = line.decode("utf-8")
    except UnicodeDecodeError:
        return "not UTF-8 text"
    try:
        obj = json.loads(text)
    except RecursionError:
        return "not a record: JSON nested too deeply"
    except ValueError as exc:
        return f"not JSON ({getattr(exc, 'msg', exc)}): torn by a crash, or not written by claudewrap"
    try:
        UsageRecord.from_dict(obj)
    except (ValueError, TypeError, OverflowError, AttributeError) as exc:
        return str(exc) or type(exc).__name__
    return None


def skipped_lines(path: Path, stats: ReadStats) -> list[tuple[int, str]]:
    """``(line number, why)`` for :attr:`ReadStats.first_bad_lines` of a
    :func:`check` of ``path``: the file read again up to the last of them."""
    wanted = set(stats.first_bad_lines)
    if not wanted:
        return []
    last = max(wanted)
    out: list[tuple[int, str]] = []
    try:
        f = open(path, "rb")  # noqa: SIM115 - closed by the with below
    except OSError as exc:
        return [(n, f"cannot read it again: {_reason(exc)}") for n in sorted(wanted)]
    with f:
        lineno = 0
        while lineno < last:
            line = f.readline(_MAX_LINE + 1)
            if not line:
                break
            if not line.endswith(b"\n"):
                if len(line) <= _MAX_LINE:  # the last line, without its newline
                    lineno += 1
                    if lineno in wanted:
                        out.append((lineno, ("incomplete last line (no newline):"
                                            " being written, or torn by a crash")))
                    break
                while line and not line.endswith(b"\n"):  # over-long: skip to its end
                    line = f.readline(_READ_BLOCK)
                lineno += 1
                if lineno in wanted:
                    out.append((lineno, f"longer than {_MAX_LINE >> 20} MiB: not a record"))
                continue
            lineno += 1
            if lineno in wanted:
                out.append((lineno, why_skipped(line[:-1]) or "not a usage record"))
    return out
