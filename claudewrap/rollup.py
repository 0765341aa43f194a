"""The rollup: a cache beside the journal so that reports need not re-read it all.

``<journal>.rollup`` holds a :class:`claudewrap.report.UsageState` (per-session
state, not just sums: a new ``total`` replaces what its session counted so far)
with the byte offset it covers, the journal's file identity and digests of the
first and the last 4 KiB it covered. A report loads it, reads only the lines
appended since, and saves it again (temp file + ``os.replace``, mode 0600), so
concurrent readers and writers see one whole cache or another, never half of one.
A report that found less than 1 MiB of new lines does not rewrite it: reading
them again next time is cheaper.

The cache is never a source of wrong numbers: a different identity (the journal
was replaced or rotated), a smaller size (truncated), other bytes where the
covered part was (rewritten), another format or time resolution: any mismatch
means a full re-read. Estimated costs are not cached; they are priced at report
time, so a changed price file takes effect at once.

Request-id hashes (rule 1 of report.py) are stored as two sorted arrays after
the JSON part and only parsed when new lines carry request ids.
"""

from __future__ import annotations

import gc
import hashlib
import os
import stat
import sys
import tempfile
from array import array
from bisect import bisect_left
from datetime import tzinfo
from pathlib import Path
from typing import Any

from claudewrap.journal import JournalError, file_identity, record_at
from claudewrap.report import UsageState

try:
    import msgspec
except ImportError:  # pragma: no cover - depends on the environment
    msgspec = None  # type: ignore[assignment]


def _dumps(obj: Any) -> bytes:
    if msgspec is not None:
        return msgspec.json.encode(obj)
    import json

    return json.dumps(obj, separators=(",", ":")).encode()


def _loads(data: bytes) -> Any:
    if msgspec is not None:
        return msgspec.json.decode(data)
    import json

    return json.loads(data)

MAGIC = b"claudewrap-rollup 2\n"  # 2: units saved as keys and bodies apart
SUFFIX = ".rollup"
# Small reads keep the decoded objects of a block in the CPU cache: 128 KiB reads
# are 16% faster than 8 MiB ones (1M-record bench). Long lines grow the read.
_BLOCK = 128 << 10
_MAX_LINE = 16 << 20
_CHECK = 4096
_PARALLEL = 32 << 20  # below this a second process costs more than it saves
_REWRITE = 1 << 20  # new journal bytes worth saving a new rollup for


class RidIndex:
    """Sorted request-id hashes with their ``offset << 3 | priority`` values."""

    def __init__(self, hashes: array[int], values: array[int]) -> None:
        self.hashes = hashes
        self.values = values

    def get(self, h: int) -> int | None:
        i = bisect_left(self.hashes, h)
        if i < len(self.hashes) and self.hashes[i] == h:
            return self.values[i]
        return None

    def merged(self, new: dict[int, int]) -> RidIndex:
        """A new index with ``new`` added (new values win)."""
        old_h, old_v = self.hashes, self.values
        if not old_h:
            keys = sorted(new)  # fast when new is in order (UsageState.seal)
            hashes, values = array("Q"), array("Q")
            hashes.fromlist(keys)
            values.fromlist(list(map(new.__getitem__, keys)))
            return RidIndex(hashes, values)
        out_h, out_v = array("Q"), array("Q")
        pos = 0
        for h in sorted(new):
            v = new[h]
            i = bisect_left(old_h, h, pos)
            out_h.extend(old_h[pos:i])
            out_v.extend(old_v[pos:i])
            out_h.append(h)
            out_v.append(v)
            pos = i + 1 if i < len(old_h) and old_h[i] == h else i
        out_h.extend(old_h[pos:])
        out_v.extend(old_v[pos:])
        return RidIndex(out_h, out_v)


def cache_path(journal: Path) -> Path:
    return journal.with_name(journal.name + SUFFIX)


def _digest(fd: int, start: int, end: int) -> str:
    return hashlib.blake2b(os.pread(fd, max(0, end - start), start), digest_size=16).hexdigest()


def _checks(fd: int, offset: int) -> list[str]:
    return [_digest(fd, 0, min(offset, _CHECK)), _digest(fd, max(0, offset - _CHECK), offset)]


def scan(fd: int, state: UsageState, start: int, stop: int | None = None) -> tuple[int, bool]:
    """Feed the complete lines from ``start`` (to ``stop``, a line start, or the end).

    Returns ``(end offset, incomplete tail?)``: a last line without its newline
    is left for the next read.
    """
    offset = start
    carry = b""
    skipping = False
    block_size = _BLOCK
    while True:
        want = block_size if stop is None else min(block_size, stop - offset - len(carry))
        block = os.pread(fd, want, offset + len(carry)) if want > 0 else b""
        if not block:
            break
        data = carry + block if carry else block
        if skipping:  # inside an over-long line: drop it up to its newline
            nl = data.find(b"\n")
            if nl < 0:
                offset += len(data)
                carry = b""
                continue
            skipping = False
            block_size = _BLOCK
            state.stats.lines += 1
            state.stats.bad(state.stats.lines)
            offset += nl + 1
            carry = data[nl + 1:]
            continue
        cut = data.rfind(b"\n") + 1
        if cut:
            state.feed_block(data[:cut], offset)
            offset += cut
            block_size = _BLOCK
        else:
            block_size = min(block_size * 2, _MAX_LINE)  # a long line: read more at once
        carry = data[cut:]
        if len(carry) > _MAX_LINE:
            offset += len(carry)
            carry = b""
            skipping = True
    if state.replaced:
        state.resolve(lambda off: record_at(fd, off))
    state.seal()
    return offset, bool(carry) or skipping


def _line_start_after(fd: int, pos: int) -> int | None:
    """The offset of the first line that starts after ``pos`` (None if none near)."""
    chunk = os.pread(fd, 1 << 20, pos)
    nl = chunk.find(b"\n")
    return None if nl < 0 else pos + nl + 1


def _read_all(fd: int) -> bytes:
    parts: list[bytes] = []
    while True:
        chunk = os.read(fd, 1 << 20)
        if not chunk:
            return b"".join(parts)
        parts.append(chunk)


def scan_parallel(fd: int, state: UsageState, start: int, size: int) -> tuple[int, bool]:
    """:func:`scan`, with the second half of a big range read by a forked process.

    Falls back to one process where fork is missing or the range is small; the
    result is the same either way (UsageState.merge).
    """
    # The parent reads a little more: the child also pickles its state for us.
    mid = (_line_start_after(fd, start + (size - start) * 103 // 200)
           if size - start >= _PARALLEL else None)
    if mid is None or not hasattr(os, "fork"):
        return scan(fd, state, start)
    import pickle

    rfd, wfd = os.pipe()
    pid = os.fork()
    if pid == 0:  # the child: read the second half, send the state, never return
        code = 1
        try:
            os.close(rfd)
            other = UsageState(state.tz, state.since, state.until)
            other.tot_log = {}
            result = scan(fd, other, mid)
            payload = pickle.dumps((other, result), protocol=pickle.HIGHEST_PROTOCOL)
            view = memoryview(payload)
            while view:
                view = view[os.write(wfd, view):]
            code = 0
        finally:
            os._exit(code)
    os.close(wfd)
    try:
        scan(fd, state, start, mid)
        payload = _read_all(rfd)
    finally:
        os.close(rfd)
        _, status = os.waitpid(pid, 0)
    if status != 0 or not payload:
        return scan(fd, state, mid)  # the child failed: read that half here
    other, result = pickle.loads(payload)
    state.merge(other, lambda off: record_at(fd, off))
    end, tail = result
    return int(end), bool(tail)


def _load_cache(path: Path, identity: tuple[int, int], size: int, fd: int,
                tz: tzinfo | None) -> tuple[UsageState, int, bytes] | None:
    try:
        data = path.read_bytes()
    except OSError:
        return None
    if not data.startswith(MAGIC):
        return None
    end = data.find(b"\n", len(MAGIC))
    try:
        meta = _loads(data[len(MAGIC):end])
        offset = int(meta["offset"])
        if (meta["identity"] != list(identity) or offset > size
                or meta["byteorder"] != sys.byteorder
                or meta["checks"] != _checks(fd, offset)):
            return None
        state = UsageState.from_json(meta["state"], tz)
        count = int(meta["rids"])
    except (ValueError, KeyError, TypeError, IndexError, OSError):
        return None
    rid_bytes = data[end + 1:]
    if len(rid_bytes) != 16 * count:
        return None
    return state, offset, rid_bytes


def _rid_index(rid_bytes: bytes) -> RidIndex:
    half = len(rid_bytes) // 2
    hashes, values = array("Q"), array("Q")
    hashes.frombytes(rid_bytes[:half])
    values.frombytes(rid_bytes[half:])
    return RidIndex(hashes, values)


class _LazyRids:
    """The cached request-id index, parsed on the first lookup."""

    def __init__(self, rid_bytes: bytes) -> None:
        self.rid_bytes = rid_bytes
        self.index: RidIndex | None = None

    def get(self, h: int) -> int | None:
        if self.index is None:
            self.index = _rid_index(self.rid_bytes)
        return self.index.get(h)


def _save_cache(path: Path, state: UsageState, identity: tuple[int, int], offset: int,
                fd: int, old_rids: bytes | _LazyRids | None) -> None:
    state.seal()
    if isinstance(old_rids, _LazyRids) and old_rids.index is None and not state.hashed:
        rid_bytes = old_rids.rid_bytes
    else:
        if isinstance(old_rids, _LazyRids):
            base = old_rids.index or _rid_index(old_rids.rid_bytes)
        else:
            base = RidIndex(array("Q"), array("Q"))
        merged = base.merged(state.hashed)
        rid_bytes = merged.hashes.tobytes() + merged.values.tobytes()
    meta = {"identity": list(identity), "offset": offset, "byteorder": sys.byteorder,
            "checks": _checks(fd, offset), "rids": len(rid_bytes) // 16,
            "state": state.to_json()}
    payload = MAGIC + _dumps(meta) + b"\n" + rid_bytes
    tmp = None
    try:
        fd_tmp, tmp = tempfile.mkstemp(prefix=path.name + ".", suffix=".tmp", dir=path.parent)
        with os.fdopen(fd_tmp, "wb") as f:  # mkstemp makes it 0600
            f.write(payload)
        os.replace(tmp, path)
        tmp = None
    except OSError:
        pass  # a cache that cannot be written only costs speed
    finally:
        if tmp is not None:
            try:
                os.unlink(tmp)
            except OSError:
                pass


def load_state(journal: Path, *, use_cache: bool = True, tz: tzinfo | None = None,
               since: str | None = None, until: str | None = None) -> UsageState:
    """The state of the whole journal: from the rollup plus new lines when it can.

    ``since``/``until`` (journal-form UTC strings) build a windowed state with a
    full read and leave the cache alone. A missing journal gives an empty state.
    Raises JournalError when the journal exists but cannot be read.
    """
    windowed = since is not None or until is not None
    try:
        fd = os.open(journal, os.O_RDONLY | os.O_CLOEXEC)
    except (FileNotFoundError, NotADirectoryError):
        return UsageState(tz, since, until)
    except OSError as exc:
        reason = exc.strerror or str(exc)
        raise JournalError(f"cannot read the journal {journal}: {reason}; check its"
                           f" permissions, or choose another file with --journal",
                           reason=reason) from None
    try:
        st = os.fstat(fd)
        if not stat.S_ISREG(st.st_mode):
            raise JournalError(f"cannot read the journal {journal}: not a regular file;"
                               f" choose another file with --journal",
                               reason="not a regular file")
        identity = (st.st_dev, st.st_ino)
        cpath = cache_path(journal)
        cached = None
        if use_cache and not windowed:
            cached = _load_cache(cpath, identity, st.st_size, fd, tz)
        old_rids: _LazyRids | None = None
        if cached is not None:
            state, start, rid_bytes = cached
            old_rids = _LazyRids(rid_bytes)
            state.rid_base = old_rids
        else:
            state, start = UsageState(tz, since, until), 0
        # Reading creates many small objects that all live on: the cyclic garbage
        # collector would only walk them again and again.
        collecting = gc.isenabled()
        gc.disable()
        try:
            end, _ = scan_parallel(fd, state, start, st.st_size)
        finally:
            if collecting:
                gc.enable()
        # Rewriting the rollup costs more than reading a few new lines again next
        # time; and never when the journal was rotated while we read it.
        if (use_cache and not windowed and (cached is None or end - start > _REWRITE)
                and file_identity(journal) == identity):
            _save_cache(cpath, state, identity, end, fd, old_rids)
        return state
    finally:
        os.close(fd)


__all__ = ["RidIndex", "cache_path", "load_state", "scan"]
