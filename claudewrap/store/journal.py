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
import os
import stat
import time

from claudewrap.plain import field, plain
from claudewrap.store import cjson
from claudewrap.store import config as _config
from claudewrap.store.files import NotRegularFile, open_regular
from claudewrap.store.records import UsageRecord
from claudewrap.wrap.context import hostname

TYPE_CHECKING = False
if TYPE_CHECKING:
    from collections.abc import Iterable, Iterator

    # Not at run time: pathlib (with urllib.parse and ipaddress) was ~6 ms of each
    # status-line call; what the status line calls here takes a str or a Path.
    from pathlib import Path
    from typing import Any

    StrPath = str | os.PathLike[str]

# Where the journal is: defined in config.py, which the launch path can import
# without this module's dependencies.

# O_RDWR rather than O_WRONLY: the writer reads the last byte (under the lock) to
# find a torn tail. O_APPEND still puts every write at the end.
_OPEN_FLAGS = os.O_RDWR | os.O_APPEND | os.O_CREAT | os.O_CLOEXEC
_READ_BLOCK = 1 << 20
_MAX_LINE = 16 << 20  # a longer "line" is skipped without being held in memory
MAX_BAD_LINES = 10
_CLOSE_LOCK_TIMEOUT = 2.0
_MAX_LOCK_SLEEP = 0.01
# ulimit -f 1 fits two records a file: 1,000 files hold a long session.
_MAX_FALLBACK_FILES = 1000


class JournalError(Exception):
    """The journal could not be written or read; the message says what to do.

    ``reason`` is the short cause (``Permission denied``); ``written`` is how many
    records of the failed batch are nevertheless complete in the file (the first
    ones: a file-size limit takes what fits); ``errno`` the OSError's, if any.
    """

    def __init__(self, message: str, *, reason: str = "", written: int = 0,
                 errno: int | None = None) -> None:
        super().__init__(message)
        self.reason = reason or message
        self.written = written
        self.errno = errno


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


def resolve_file(option: str | os.PathLike[str] | None = None) -> str:
    """:func:`resolve_path` as a string: what `claude_usage` and `usage --json` run
    (pathlib with urllib.parse, fnmatch and re was ~5-9 ms of their imports)."""
    path = _config.journal_file(option)
    if os.path.isdir(path):
        return os.fspath(resolve_path(option))  # raises JournalError, in its words
    return path


def write_all(fd: int, parts: Iterable[bytes | memoryview]) -> None:
    """Write ``parts`` one after the other to ``fd``, each whole (OSError if not)."""
    for part in parts:
        view = memoryview(part)
        while view:
            view = view[os.write(fd, view):]


# Temporaries of atomic_write: ``.NAME.HOST.PID.NS.tmp`` (before: ``.NAME.PID.NS.tmp``).
# A writer killed between creating one and moving it in place leaves it behind:
# writers remove those of a dead process of this host, and any older than this.
_STALE_TMP = 60.0


def _tmp_host() -> str:
    return "".join(c if c.isalnum() or c == "-" else "-" for c in hostname())[:64] or "-"


def remove_stale_temporaries(path: StrPath) -> int:
    """Remove the temporaries that killed writers of ``path`` left (see atomic_write);
    how many. Never raises."""
    folder, base = os.path.split(os.fspath(path))
    prefix = f".{base}."
    host = _tmp_host()
    removed = 0
    try:
        names = [n for n in os.listdir(folder or ".")
                 if n.startswith(prefix) and n.endswith(".tmp")]
    except OSError:
        return 0
    now = time.time()
    for name in names:
        fields = name[len(prefix):-4].split(".")
        if len(fields) not in (2, 3) or not all(f.isdigit() for f in fields[-2:]):
            continue  # not one of ours
        tmp = os.path.join(folder, name)
        try:
            st = os.lstat(tmp)
            ours = len(fields) == 2 or fields[0] == host
            if not (now - st.st_mtime > _STALE_TMP or (ours and not _pid_alive(int(fields[-2])))):
                continue
            os.unlink(tmp)
            removed += 1
        except (OSError, ValueError):
            continue
    return removed


def _pid_alive(pid: int) -> bool:
    if pid <= 0:
        return False
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except OSError:
        return True  # someone else's process (EPERM): it exists
    return True


def atomic_write(path: StrPath, parts: Iterable[bytes | memoryview], mode: int, *,
                 cache: bool = False) -> None:
    """Write ``parts`` one after the other to a new file beside ``path`` (mode
    ``mode``) and move it in place: readers see the old file or the new one,
    never half of one. OSError when that cannot be done (nothing is left behind;
    temporaries that killed writers left are removed).

    ``cache``: ``path`` is a cache, which takes the place of a regular file only:
    a FIFO, socket or device there is left alone (NotRegularFile).
    """
    if cache:
        try:
            st_mode = os.lstat(path).st_mode
        except FileNotFoundError:
            pass
        else:
            if not (stat.S_ISREG(st_mode) or stat.S_ISLNK(st_mode)):
                raise NotRegularFile(path, st_mode)
    folder, base = os.path.split(os.fspath(path))
    tmp = os.path.join(folder, f".{base}.{_tmp_host()}.{os.getpid()}.{time.monotonic_ns()}.tmp")
    try:
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
    finally:
        remove_stale_temporaries(path)


def file_identity(path: StrPath) -> tuple[int, int] | None:
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


def _write_error(path: StrPath, exc: Exception, written: int = 0) -> JournalError:
    reason = _reason(exc)
    return JournalError(
        f"cannot write the journal {path}: {reason}; fix that, or choose another file"
        f" with --journal or ${_config.JOURNAL_ENV}",
        reason=reason,
        written=written,
        errno=exc.errno if isinstance(exc, OSError) else None,
    )


def read_error(path: StrPath, exc: OSError) -> JournalError:
    """The one line of a journal that cannot be read (``exc``), with the fix."""
    reason = _reason(exc)
    fix = ("move it away, or choose a regular file with --journal or"
           if isinstance(exc, NotRegularFile) else
           "check its permissions, or choose another file with --journal or")
    return JournalError(f"cannot read the journal {path}: {reason}; {fix} ${_config.JOURNAL_ENV}",
                        reason=reason)


def _make_folder(folder: str) -> None:
    """Create the journal's folder 0700; leave a pre-existing folder alone."""
    try:
        os.mkdir(folder, 0o700)
    except FileExistsError:
        return
    except FileNotFoundError:
        os.makedirs(os.path.dirname(folder) or ".", exist_ok=True)  # mkdir -p: default modes
        try:
            os.mkdir(folder, 0o700)
        except FileExistsError:
            return
    try:
        os.chmod(folder, 0o700)  # the umask may have said otherwise
    except OSError:
        pass


def _open(path: StrPath, extra_flags: int) -> int:
    # A FIFO in the journal's place would take a few records into its buffer (lost
    # when it closes) and then block the session in write(): regular files only.
    try:
        return open_regular(path, _OPEN_FLAGS | extra_flags)
    except FileNotFoundError:
        _make_folder(os.path.dirname(os.fspath(path)) or ".")
        return open_regular(path, _OPEN_FLAGS | extra_flags)


def _lock(fd: int, path: StrPath, timeout: float) -> None:
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


def _append_lines(path: StrPath, lines: list[bytes], lock_timeout: float,
                  extra_flags: int = 0) -> None:
    """Append ``lines`` (each ending in ``\\n``) with one write, under the lock.

    On failure the lines written whole stay (a file-size limit takes what fits)
    and a line written in part is truncated away: a record is in the file whole
    or not at all. JournalError.written says how many stayed.
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
        except OSError as exc:
            raise _write_error(path, exc) from None
        _append_locked(fd, path, lines)
    finally:
        try:
            os.close(fd)  # releases the lock
        except OSError:
            pass


def _append_locked(fd: int, path: StrPath, lines: list[bytes]) -> None:
    """The write of :func:`_append_lines`, on ``fd`` whose lock the caller holds."""
    try:
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
        # EFBIG (ulimit -f) after a short write, ENOSPC, EIO: keep the lines
        # that are whole, cut the one written in part.
        complete = _complete_lines(lines, written - len(prefix))
        if written:
            keep = size
            if complete:
                keep += len(prefix) + sum(len(line) for line in lines[:complete])
            if keep < size + written:
                try:
                    os.ftruncate(fd, keep)
                except OSError:
                    pass  # readers skip the torn line; the next writer ends it
        raise _write_error(path, exc, complete) from None


def append_records(path: StrPath, records: Iterable[UsageRecord], lock_timeout: float = 2.0) -> None:
    """Append ``records`` to the journal at ``path`` in one write.

    Raises JournalError (a one-line message for the user) when that fails.
    """
    _append_lines(path, [_encode(r) for r in records], lock_timeout)


def append_lines(path: StrPath, lines: list[bytes], lock_timeout: float = 2.0) -> None:
    """:func:`append_records` for records already encoded as their journal lines
    (``UsageRecord.to_json()`` + newline, UTF-8), as ``claudewrap import`` makes them."""
    _append_lines(path, lines, lock_timeout)


class JournalWriter:
    """Used inside a wrapped ``claude`` session: never raises, never blocks the session for long.

    Records that cannot be written now stay in :attr:`pending` and are retried,
    first and in order, by the next :meth:`append`; a file-size limit takes the
    ones that fit. :meth:`close` tries a last time, saves what is left in the
    fallback files (``claudewrap journal recover`` moves them in, once) and
    returns at most one warning line. It never prints by itself.
    """

    def __init__(self, path: Path, lock_timeout: float = 0.2) -> None:
        self.path = path
        self.lock_timeout = lock_timeout
        self.pending: list[UsageRecord] = []
        self._lines: list[bytes] = []  # pending[:len(_lines)], encoded once, retried often
        self._reason = ""
        self._written = 0  # records of this writer that are in the journal
        self._dropped = 0  # records that could not be serialised at all
        self._dropped_reason = ""

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
        from claudewrap.views.display import count

        def records(n: int) -> str:
            return f"{count(n)} record{'' if n == 1 else 's'}"

        unwritten = len(self.pending)
        total = self._written + unwritten
        files, why = self._save_elsewhere()
        saved, lost = unwritten - len(self.pending), len(self.pending)
        target = self.path
        if os.path.isdir(self.path):
            from pathlib import Path

            target = Path(self.path) / "journal.jsonl"
            parts = [f"claudewrap: {_config.journal_is_directory(self.path, '')}"]
        elif unwritten:
            parts = [f"claudewrap: the journal {self.path} was not writable ({self._reason})"]
        else:
            parts = [f"claudewrap: could not write to the journal {self.path}"]
        if self._written and unwritten:
            parts.append(f"{count(self._written)} of {records(total)} are in it")
        if lost:
            parts.append(f"{records(lost)} could not be saved anywhere ({why}): they are lost")
        if dropped:
            parts.append(f"{records(dropped)} could not be serialised ({self._dropped_reason})")
        if saved:
            parts.append(f"{records(saved)} saved in {saved_in(files)} \N{EM DASH} add them once"
                         " with:"
                         f" {_config.recover_advice(target)}")
        self._written = 0
        return "; ".join(parts)

    def _encode_pending(self) -> None:
        i = len(self._lines)
        while i < len(self.pending):
            try:
                line = _encode(self.pending[i])
            except (TypeError, ValueError) as exc:
                self._dropped += 1
                self._dropped_reason = str(exc)
                del self.pending[i]
                continue
            self._lines.append(line)
            i += 1

    def _take(self, n: int) -> None:
        """The first ``n`` pending records are written (to the journal or elsewhere)."""
        del self.pending[:n]
        del self._lines[:n]

    def _flush(self, lock_timeout: float) -> bool:
        self._encode_pending()
        if not self._lines:
            return True
        try:
            _append_lines(self.path, self._lines, lock_timeout)
        except JournalError as exc:
            self._written += exc.written
            self._take(exc.written)
            self._reason = exc.reason
            return False
        except OSError as exc:  # not expected: _append_lines wraps them
            self._reason = _reason(exc)
            return False
        self._written += len(self._lines)
        self._take(len(self._lines))
        return True

    def _save_elsewhere(self) -> tuple[list[Path], str]:
        """Append the pending records to the private fallback files: the first,
        and the next ones while a file-size limit leaves no room in those before.
        The files that took records, and why the rest (if any) could not be saved.
        """
        files: list[Path] = []
        why = ""
        for index in range(_MAX_FALLBACK_FILES):
            if not self._lines:
                break
            target = _config.fallback_journal(index)
            if target is None:
                why = "no private folder for it in the temp dir"
                break
            if target == self.path:  # the run writes to the fallback already
                continue
            try:
                _append_lines(target, self._lines, _CLOSE_LOCK_TIMEOUT, os.O_NOFOLLOW)
            except JournalError as exc:
                why = f"{target}: {exc.reason}"
                if exc.written:
                    files.append(target)
                    self._take(exc.written)
                elif exc.errno == errno.EFBIG and _is_empty(target):
                    break  # a record larger than the limit: no other file takes it
                if exc.errno != errno.EFBIG:
                    break
                continue
            files.append(target)
            self._take(len(self._lines))
        return files, why


def _is_empty(path: Path) -> bool:
    try:
        return os.stat(path).st_size == 0
    except OSError:
        return True


# --- recovering what a run saved in the fallback files ---------------------------


@plain
class Recovery:
    """What :func:`recover` found in the fallback files and did with it."""

    journal: Path
    files: list[Path] = field(default_factory=list)  # fallback files that held lines
    saved: int = 0  # records in them
    added: int = 0  # appended to the journal (with dry_run: would be)
    present: int = 0  # already in the journal (or saved twice): not added again
    unreadable: int = 0  # lines no reader can read (torn by a crash): emptied with the files


def recover(journal: Path, *, dry_run: bool = False, lock_timeout: float = 10.0) -> Recovery:
    """Move the records of the fallback files (:func:`config.fallback_files`) into
    ``journal`` once, then empty those files.

    A record is already there when the journal holds one with the same
    canonical line (same ts, session, source, kind, model, counts, cost, request
    id, ...): it is not added again, nor twice when saved twice (a session never
    records the same numbers at the same millisecond twice: capture takes that
    for a repaint). The files stay locked throughout (a run saving more waits)
    and are emptied only once the journal took the records and was synced: a
    kill at any point, or a second run, adds nothing twice. JournalError (one
    line) when that cannot be done; nothing is moved then.
    """
    result = Recovery(journal)
    saved: dict[bytes, bytes] = {}  # fingerprint -> canonical line
    held: list[int] = []
    try:
        for path in _config.fallback_files():
            fd = _open_fallback(path, journal, dry_run, lock_timeout)
            if fd is not None:
                held.append(fd)
                if _read_saved(fd, saved, result):
                    result.files.append(path)
        if saved:
            _add_missing(journal, saved, result, dry_run, lock_timeout)
        if not dry_run:
            for fd in held:
                os.ftruncate(fd, 0)  # only after the journal's fsync
    except OSError as exc:
        raise JournalError(f"cannot recover the saved records: {_reason(exc)}",
                           reason=_reason(exc), errno=exc.errno) from None
    finally:
        for fd in held:
            os.close(fd)  # releases the locks
    return result


def saved_in(files: list[Path]) -> str:
    """``F``, or ``F and 3 more files beside it``: where records were saved."""
    more = len(files) - 1
    if not more:
        return str(files[0])
    return f"{files[0]} and {more} more file{'' if more == 1 else 's'} beside it"


def saved_records() -> tuple[int, list[Path]]:
    """How many lines the fallback files hold (records a run could not write
    to its journal, for :func:`recover`), and the files that hold them."""
    lines, files = 0, []
    for path in _config.fallback_files():
        try:
            if not stat.S_ISREG(os.lstat(path).st_mode):
                continue
            with open(path, "rb") as f:
                n = sum(block.count(b"\n") for block in iter(lambda: f.read(_READ_BLOCK), b""))
        except OSError:
            continue
        if n:
            lines += n
            files.append(path)
    return lines, files


def _open_fallback(path: Path, journal: Path, dry_run: bool, lock_timeout: float
                   ) -> int | None:
    """``path`` open (and locked, unless ``dry_run``), or None when it is not a
    regular file. JournalError when it is the journal itself."""
    flags = (os.O_RDONLY if dry_run else os.O_RDWR) | os.O_NOFOLLOW | os.O_NONBLOCK
    try:
        fd = os.open(path, flags | os.O_CLOEXEC)
    except FileNotFoundError:
        return None
    try:
        st = os.fstat(fd)
        if not stat.S_ISREG(st.st_mode):
            os.close(fd)
            return None
        if file_identity(journal) == (st.st_dev, st.st_ino):
            raise JournalError(
                f"the journal {journal} is the file the saved records are in; name the"
                " journal to move them to with --journal PATH", reason="same file")
        if not dry_run:
            _lock(fd, path, lock_timeout)
    except BaseException:
        os.close(fd)
        raise
    return fd


def _fingerprint(line: bytes) -> tuple[bytes, bytes] | None:
    """``(fingerprint, canonical line)`` of a journal line; None when it is no record."""
    record = parse_line(line)
    if record is None:
        return None
    try:
        canonical = _encode(record)
    except (TypeError, ValueError):
        return None
    import hashlib  # only `journal recover` needs it: loading OpenSSL costs every reader

    return hashlib.sha256(canonical).digest(), canonical


def _read_saved(fd: int, saved: dict[bytes, bytes], result: Recovery) -> bool:
    """Add the records of the fallback file open on ``fd`` to ``saved``; True if
    it held anything."""
    data = bytearray()
    while block := os.pread(fd, _READ_BLOCK, len(data)):
        data += block
    lines = bytes(data).split(b"\n")
    if lines[-1]:  # no newline at the end: torn by a crash (the lock keeps writers out)
        result.unreadable += 1
    for line in lines[:-1]:
        if not line.strip():
            continue
        found = _fingerprint(line)
        if found is None:
            result.unreadable += 1
            continue
        key, canonical = found
        saved.setdefault(key, canonical)
        result.saved += 1
    return bool(data)


def _ts_pattern() -> Any:
    """The ts of a journal line, to skip the lines of other times without decoding
    them (compiled when `journal recover` needs it: `re` is not imported by readers)."""
    import re

    return re.compile(rb'"ts"\s*:\s*"([^"\\]*)"')


def _find_present(fd: int, start: int, saved: dict[bytes, bytes], times: set[bytes],
                  present: set[bytes]) -> int:
    """Add to ``present`` the fingerprints of ``saved`` that the journal open on
    ``fd`` holds from byte ``start``; returns the offset after its last whole line."""
    find_ts = _ts_pattern().search
    pos = start
    rest = b""
    while block := os.pread(fd, _READ_BLOCK, pos):
        pos += len(block)
        lines = (rest + block).split(b"\n")
        rest = lines.pop()
        for line in lines:
            ts = find_ts(line)
            if ts is not None and ts[1] not in times:
                continue
            found = _fingerprint(line)
            if found is not None and found[0] in saved:
                present.add(found[0])
    return pos - len(rest)


def _add_missing(journal: Path, saved: dict[bytes, bytes], result: Recovery,
                 dry_run: bool, lock_timeout: float) -> None:
    """Append to ``journal`` the saved records it does not hold yet, and sync it."""
    find_ts = _ts_pattern().search
    times = {ts[1] for line in saved.values() if (ts := find_ts(line))}
    present: set[bytes] = set()
    try:
        if dry_run:
            fd = os.open(journal, os.O_RDONLY | os.O_NONBLOCK | os.O_CLOEXEC)  # a FIFO: no wait
        else:
            fd = _open(journal, 0)
    except FileNotFoundError as exc:
        if not dry_run:
            raise _write_error(journal, exc) from None
        fd = -1  # no journal yet: nothing in it
    except (OSError, ValueError) as exc:
        raise _write_error(journal, exc) from None
    try:
        if fd >= 0:
            if not stat.S_ISREG(os.fstat(fd).st_mode):
                raise JournalError(f"the journal {journal} is not a regular file; choose"
                                   f" one with --journal or ${_config.JOURNAL_ENV}", reason="not a file")
            # Most of the journal is read before taking its lock, so that runs
            # writing meanwhile are not held up; the rest is read under it.
            end = _find_present(fd, 0, saved, times, present)
            if not dry_run:
                _lock(fd, journal, lock_timeout)
                if os.fstat(fd).st_size < end:  # cut meanwhile: read it all again
                    present.clear()
                    end = 0
                _find_present(fd, end, saved, times, present)
        missing = [line for key, line in saved.items() if key not in present]
        result.added = len(missing)
        result.present = result.saved - result.added
        if missing and not dry_run:
            _append_locked(fd, journal, missing)
        if not dry_run:
            os.fsync(fd)
    finally:
        if fd >= 0:
            os.close(fd)


# --- reading -------------------------------------------------------------------


@plain
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
        if len(self.first_bad_lines) < MAX_BAD_LINES:
            self.first_bad_lines.append(lineno)


def parse_line(line: bytes) -> UsageRecord | None:
    """One journal line as a record; None for a blank, torn or invalid line."""
    if not line.strip():
        return None
    try:
        return UsageRecord.from_dict(cjson.loads(line.decode("utf-8")))
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
        # A FIFO would block the read for ever: regular files only.
        f = os.fdopen(open_regular(path, os.O_RDONLY), "rb", buffering=0)
    except (FileNotFoundError, NotADirectoryError):
        st.end_offset = 0
        return
    except OSError as exc:
        raise read_error(path, exc) from None
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
        obj = cjson.loads(text)
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
        f = os.fdopen(open_regular(path, os.O_RDONLY), "rb")
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
