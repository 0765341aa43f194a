"""The rollup: a cache beside the journal so that reports need not re-read it all.

``<journal>.rollup`` holds a :class:`claudewrap.usage.state.UsageState` (per-session
state, not just sums: a new ``total`` replaces what its session counted so far)
with the byte offset it covers, the journal's file identity, size and times
when it was saved, and a digest of the part it covers (all of it up to 256 KiB;
beyond, its first and last 4 KiB and 16 blocks spread between), behind a CRC-32
of the whole. A report loads it, reads only the lines
appended since, and saves it again (temp file + ``os.replace``, mode 0600), so
concurrent readers and writers see one whole cache or another, never half of one.
A report that found less than 1 MiB of new lines does not rewrite it: reading
them again next time is cheaper.

The cache is never a source of wrong numbers: a different identity (the journal
was replaced or rotated), a smaller size (truncated), the same size with another
modification or change time (rewritten in place), other bytes where the digest
looked (rewritten), another format or time resolution: any mismatch means a full
re-read. What a rewrite that also appended can keep: a same-length edit of a
big journal outside the sampled blocks (``--no-cache`` reads it right). A cache
is only a cache: one that cannot be read (a CRC that does not match, any
exception while decoding, a FIFO or folder in its place) is rebuilt, and a FIFO,
socket or device in its place is never opened nor replaced. Estimated costs are
not cached; they are priced at report time, so a changed price file takes
effect at once.

Request ids (rule 1 of report.py) are stored after the JSON part as the
segments of a :class:`claudewrap.usage.ridindex.RidIndex` (sorted ids and their
values), only split when new lines carry request ids.
"""

from __future__ import annotations

import os
import sys
import zlib
from datetime import datetime, timedelta, timezone, tzinfo

from claudewrap.store.files import open_regular
from claudewrap.store.journal import (
    atomic_write,
    file_identity,
    read_error,
    record_at,
    remove_stale_temporaries,
    write_all,
)
from claudewrap.store.records import UsageRecord, utc_now_iso
from claudewrap.usage.lines import dumps, loads
from claudewrap.usage.ridindex import IndexBroken, RidIndex
from claudewrap.usage.state import UsageState, no_cyclic_gc

TYPE_CHECKING = False  # typing.TYPE_CHECKING without importing typing (3 ms a reader)
if TYPE_CHECKING:
    from collections.abc import Callable
    from pathlib import Path  # not at run time: see store/journal.py
    from typing import Any

    from claudewrap.store.journal import StrPath

try:  # hashlib itself would load OpenSSL first (2.5 ms of every report)
    from _blake2 import blake2b
except ImportError:  # pragma: no cover - a Python without the built-in module
    from hashlib import blake2b


# 8: a CRC of the rest, the journal's stamp, sampled digests (issue 13); 9: settled
# history archived (state.Archive: an older reader would miss its rows); 10: parts
# read when needed, each with its own CRC; 11: the archive's cells; 12: where each
# session id first appears
MAGIC = b"claudewrap-rollup 12\n"
SUFFIX = ".rollup"
# Small reads keep the decoded objects of a block in the CPU cache: 128 KiB reads
# are 16% faster than 8 MiB ones (1M-record bench). Long lines grow the read.
_BLOCK = 128 << 10
_MAX_LINE = 16 << 20
_CHECK = 4096
# The covered part is digested whole up to _WHOLE bytes (1.5 ms on the slowest
# machine we measured); beyond, its first and last _CHECK bytes and _SAMPLES
# blocks spread between (0.3 ms for 130 MB, bench/usage_bench.py's journal).
_WHOLE = 256 << 10
_SAMPLES = 16
_PARALLEL = 32 << 20  # below this a second process costs more than it saves
_REWRITE = 1 << 20  # new journal bytes worth saving a new rollup for
SETTLE_DAYS = 35


def cache_path(journal: StrPath) -> Path:
    from pathlib import Path

    return Path(_cache_file(journal))


def _cache_file(journal: StrPath) -> str:
    return os.fspath(journal) + SUFFIX


def file_checks(fd: int, offset: int) -> list[str]:
    """A digest of the first ``offset`` bytes of the file open on ``fd``: of all of
    them up to 256 KiB; beyond, of the first and the last 4 KiB and 16 blocks of
    4 KiB spread evenly between. A cache is only valid for a journal that still
    has these bytes (an edit elsewhere in a big journal goes unseen: :func:`stamp`
    catches one that did not also append)."""
    h = blake2b(offset.to_bytes(8, "little"), digest_size=16)
    if offset <= _WHOLE:
        h.update(os.pread(fd, offset, 0))
    else:
        spans = [0, *((offset * k // (_SAMPLES + 1)) & -_CHECK for k in range(1, _SAMPLES + 1))]
        for start in spans:
            h.update(os.pread(fd, min(_CHECK, offset - start), start))
        h.update(os.pread(fd, _CHECK, offset - _CHECK))
    return [h.hexdigest()]


def stamp(st: os.stat_result) -> list[int]:
    """The journal's size, modification and change time: saved with a cache."""
    return [st.st_size, st.st_mtime_ns, st.st_ctime_ns]


def rewritten(now: list[int], saved: object) -> bool:
    """Whether the journal changed in place between its :func:`stamp` ``saved`` and
    ``now``: it is smaller, or as big with another modification or change time
    (an edit that kept the length; or a chmod or touch, which costs a re-read)."""
    if not isinstance(saved, list) or len(saved) != 3:
        return True
    size = saved[0]
    return bool(now[0] < size or (now[0] == size and now != saved))


def scan(fd: int, state: UsageState, start: int, stop: int | None = None,
         resolve: bool = True) -> tuple[int, bool]:
    """Feed the complete lines from ``start`` (to ``stop``, a line start, or the end).

    Returns ``(end offset, incomplete tail?)``: a last line without its newline
    is left for the next read. ``resolve=False`` leaves the replaced records to
    the caller (UsageState.merge).
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
    if resolve and (state.replaced or state.replaced_before):
        state.resolve(fetcher(fd, state))
    state.seal()
    return offset, bool(carry) or skipping


def fetcher(fd: int | None, state: UsageState) -> Callable[[int], UsageRecord | None]:
    """``fetch(line number)``: the record on that line of the journal ``state`` was fed
    from (open on ``fd``), found from the nearest of its marks; None if it is not
    there or not valid. Calls in increasing order go on from the last one.
    """
    cursor = [0, -1]  # a line number and where it starts

    def fetch(line: int) -> UsageRecord | None:
        mark = state.mark_before(line)
        if fd is None or mark is None:
            return None
        at_line, at = mark
        if at_line <= cursor[0] <= line:
            at_line, at = cursor
        skip = line - at_line
        while skip:
            chunk = os.pread(fd, _BLOCK, at)
            if not chunk:
                return None
            n = chunk.count(b"\n")
            if n < skip:
                skip -= n
                at += len(chunk)
                continue
            pos = -1
            for _ in range(skip):
                pos = chunk.index(b"\n", pos + 1)
            at += pos + 1
            skip = 0
        cursor[0], cursor[1] = line, at
        return record_at(fd, at)

    return fetch


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
    result is the same either way (UsageState.merge). Each process also puts
    its state in the form the rollup saves, so little is left to do after.
    """
    mid = _line_start_after(fd, start + (size - start) // 2) if size - start >= _PARALLEL else None
    if mid is None or not hasattr(os, "fork"):
        return scan(fd, state, start)
    rfd, wfd = os.pipe()
    pid = os.fork()
    if pid == 0:  # the child: read the second half, send the state, never return
        code = 1
        try:
            os.close(rfd)
            other = UsageState(state.tz, state.since, state.until)
            other.tot_log = {}
            other.rid_index = state.rid_index  # our copy: ids from before this read
            before = len(other.rid_index.segments)
            end, tail = scan(fd, other, mid, resolve=False)
            own = RidIndex()
            own.segments = other.rid_index.segments[before:]
            sizes, rid_parts = own.to_parts()
            meta = {"state": other.to_json(), "end": end, "tail": tail,
                    "replaced": other.replaced, "replaced_before": other.replaced_before,
                    "first": list(other.first_seen.items()),  # first_line of its sessions
                    "rids": sizes,
                    "tot_log": [[*key, positions] for key, positions in other.tot_log.items()]}
            write_all(wfd, [dumps(meta), b"\n", *rid_parts])
            code = 0
        finally:
            os._exit(code)
    os.close(wfd)
    try:
        scan(fd, state, start, mid)
        state.freeze()  # while the child finishes
        payload = _read_all(rfd)
    finally:
        os.close(rfd)
        _, status = os.waitpid(pid, 0)
    if status != 0 or not payload:
        return scan(fd, state, mid)  # the child failed: read that half here
    nl = payload.index(b"\n")
    meta = loads(payload[:nl])
    other = UsageState.from_json(meta["state"], state.tz)
    other.tot_log = {(tuple(ukey), model): positions
                     for ukey, model, positions in meta["tot_log"]}
    other.replaced = meta["replaced"]
    other.replaced_before = meta["replaced_before"]
    other.first_seen = dict(meta["first"])
    other.rid_index = RidIndex(meta["rids"], memoryview(payload)[nl + 1:])
    state.merge(other, fetcher(fd, state))
    return int(meta["end"]), bool(meta["tail"])


class _CacheFile:
    """A cache file kept open for what is read from it later (request-id segments,
    archived units): a replaced cache keeps its old bytes for us; closed with the
    last part that needs it."""

    __slots__ = ("base", "fd")

    def __init__(self, fd: int, base: int) -> None:
        self.fd = fd
        self.base = base  # where the parts after the JSON start

    def read(self, offset: int, length: int) -> bytes:
        data = os.pread(self.fd, length, self.base + offset)
        if len(data) != length:
            raise IndexBroken("cache file cut short")
        return data

    def __del__(self) -> None:
        try:
            os.close(self.fd)
        except OSError:
            pass


def read_cache(path: StrPath, magic: bytes, identity: tuple[int, ...], size: int, fd: int,
               make_state: Callable[[Any], UsageState]) -> tuple[UsageState, int] | None:
    """A state cache and the journal offset it covers; None unless it was made for
    this journal (open on ``fd``, ``size`` bytes) as it is. ``make_state`` builds
    the state from its JSON form.

    The file: ``magic``, a line with the CRC-32 and the length of the JSON part,
    the JSON part, a newline, then the request-id index's segments and the
    archived units (state.Archive), each with its CRC in the JSON part and read
    only when needed (a warm reader of new usage reads neither: issue 16).

    None, too, for a cache that cannot be read for any reason (a cache is only a
    cache: the caller reads the journal instead); a FIFO in its place is not waited
    on. A part read later that does not check out raises ridindex.IndexBroken
    (:func:`load_state` then reads the journal again).
    """
    try:
        cfd = open_regular(path, os.O_RDONLY)
    except OSError:
        return None
    holder: _CacheFile | None = None
    try:
        head = os.pread(cfd, len(magic) + 32, 0)
        if not head.startswith(magic):
            return None
        nl = head.index(b"\n", len(magic))
        crc_text, length_text = head[len(magic):nl].split(b" ")
        meta_len = int(length_text, 16)
        data = os.pread(cfd, meta_len + 1, nl + 1)
        if len(data) != meta_len + 1 or data[-1:] != b"\n":
            return None
        if int(crc_text, 16) != zlib.crc32(memoryview(data)[:meta_len]):
            return None  # torn or corrupted
        meta = loads(memoryview(data)[:meta_len])
        offset = int(meta["offset"])
        if (meta["identity"] != list(identity) or not 0 <= offset <= size
                or meta["byteorder"] != sys.byteorder
                or rewritten(stamp(os.fstat(fd)), meta["stamp"])
                or meta["checks"] != file_checks(fd, offset)):
            return None
        state = make_state(meta["state"])
        holder = _CacheFile(cfd, nl + 2 + meta_len)
        cfd = -1  # the holder closes it
        rid_total = sum(int(s[1]) + 8 * (2 * int(s[0]) + 1) for s in meta["rids"])
        state.rid_index = RidIndex(meta["rids"], holder.read)  # each segment when used
        at = rid_total
        first_len, first_crc = meta["first"]
        state.saved_first = _part_loader(holder, at, first_len, first_crc)()
        at += first_len
        archived = meta["state"].get("archive")
        if archived is not None and state.archive is not None:
            for name, length, crc in archived["parts"]:
                load = _part_loader(holder, at, length, crc)
                if name == "body":  # read only by a scan (or the next write): load_state
                    state.archive.bodies.append(load)
                else:  # read now (they may be decoded after load_state): checked here
                    state.archive.raw[name] = load()
                at += length
    except Exception:  # noqa: BLE001 - whatever is wrong with a cache, the journal is right
        return None
    finally:
        if cfd >= 0 and holder is None:
            os.close(cfd)
    return state, offset


def _part_loader(holder: _CacheFile, at: int, length: int, crc: int) -> Callable[[], bytes]:
    def load() -> bytes:
        data = holder.read(at, length)
        if zlib.crc32(data) != crc:
            raise IndexBroken("a part of the archive does not check out")
        return data
    return load


def write_cache(path: StrPath, magic: bytes, state: UsageState, identity: tuple[int, ...],
                offset: int, fd: int) -> bool:
    """Save what :func:`read_cache` reads (mode 0600); False if it could not be written
    (a cache that cannot be written only costs speed; a FIFO, socket or device in
    its place is left alone)."""
    state.seal()
    sizes, rid_parts = state.rid_index.to_parts(utc_now_iso())
    first = state.first_part()
    meta = {"identity": list(identity), "offset": offset, "byteorder": sys.byteorder,
            "stamp": stamp(os.fstat(fd)), "checks": file_checks(fd, offset), "rids": sizes,
            "first": [len(first), zlib.crc32(first)], "state": state.to_json()}
    bodies = [first, *(b for _, b in state.archive.parts())] if state.archive is not None else [
        first]
    encoded = dumps(meta)
    head = b"%08x %x\n" % (zlib.crc32(encoded), len(encoded))
    try:
        atomic_write(path, [magic, head, encoded, b"\n", *rid_parts, *bodies], 0o600,
                     cache=True)
    except OSError:
        return False
    return True


SUMS_SUFFIX = ".rollup-sums"
SUMS_MAGIC = b"claudewrap-sums 1\n"


def read_sums(journal: StrPath) -> tuple[memoryview, memoryview, memoryview] | None:
    """The report sums of the settled history saved beside ``journal``
    (:func:`claudewrap.usage.report.usage_json`): its three parts (meta JSON,
    sessions JSON, binary), or None when there are none that check out (a FIFO
    in its place is not waited on)."""
    try:
        fd = open_regular(_cache_file(journal) + "-sums", os.O_RDONLY)
    except OSError:
        return None
    try:
        size = os.fstat(fd).st_size
        data = os.pread(fd, size, 0) if size < (256 << 20) else b""
    except OSError:
        return None
    finally:
        os.close(fd)
    if not data.startswith(SUMS_MAGIC):
        return None
    try:
        nl = data.index(b"\n", len(SUMS_MAGIC))
        crc, *sizes = (int(x, 16) for x in data[len(SUMS_MAGIC):nl].split(b" "))
        body = memoryview(data)[nl + 1:]
        if len(sizes) != 3 or sum(sizes) != len(body) or zlib.crc32(body) != crc:
            return None
    except ValueError:
        return None
    a, b = sizes[0], sizes[0] + sizes[1]
    return body[:a], body[a:b], body[b:]


def write_sums(journal: StrPath, parts: tuple[bytes, bytes, bytes]) -> bool:
    """Save what :func:`read_sums` reads (mode 0600); False if it could not be."""
    crc = zlib.crc32(b"".join(parts))
    head = b"%08x %x %x %x\n" % (crc, *map(len, parts))
    try:
        atomic_write(_cache_file(journal) + "-sums", [SUMS_MAGIC, head, *parts], 0o600,
                     cache=True)
    except OSError:
        return False
    return True


def horizon(tz: tzinfo | None, now: datetime | None = None) -> str:
    """The day before which link groups are settled (UsageState.settle): 35 days
    before today, so that no settled row is in today, this week or this month."""
    now = now or datetime.now(timezone.utc)
    local = now.astimezone(tz) if tz is not None else now.astimezone()
    return (local.date() - timedelta(days=SETTLE_DAYS)).isoformat()


def _load_state(fd: int, journal: StrPath, identity: tuple[int, int], size: int,
                use_cache: bool, tz: tzinfo | None, since: str | None,
                until: str | None, trust_cache: bool = True) -> UsageState:
    cpath = _cache_file(journal)
    cached = read_cache(cpath, MAGIC, identity, size, fd,
                        lambda data: UsageState.from_json(data, tz)) if (
        use_cache and trust_cache) else None
    if cached is not None:
        state, start = cached
    else:
        state, start = UsageState(tz, since, until), 0
    archived = state.archive is not None
    try:
        end, _ = scan_parallel(fd, state, start, size)
        unarchived = archived and state.archive is None  # saved again: not each time
        # Rewriting the rollup costs more than reading a few new lines again next
        # time, unless they were dated days back (their request ids were looked
        # up in history's segments); and never when the journal was rotated while
        # we read it.
        if (use_cache and (cached is None or end - start > _REWRITE or unarchived
                           or state.rid_index.read_past(utc_now_iso()))
                and file_identity(journal) == identity):
            state.settle(horizon(tz))
            write_cache(cpath, MAGIC, state, identity, end, fd)
        elif use_cache:
            remove_stale_temporaries(cpath)  # what killed writers left (write_cache does it too)
    except IndexBroken:  # a part of the cache read only now did not check out
        if cached is None:
            raise
        return _load_state(fd, journal, identity, size, use_cache, tz, since, until,
                           trust_cache=False)
    return state


def load_state(journal: StrPath, *, use_cache: bool = True, tz: tzinfo | None = None,
               since: str | None = None, until: str | None = None) -> UsageState:
    """The state of the whole journal: from the rollup plus new lines when it can.

    ``since``/``until`` (journal-form UTC strings) build a windowed state with a
    full read and leave the cache alone. A missing journal gives an empty state.
    Raises JournalError when the journal exists but cannot be read.
    """
    windowed = since is not None or until is not None
    try:
        fd = open_regular(journal, os.O_RDONLY)  # a FIFO: refused at once, not waited on
    except (FileNotFoundError, NotADirectoryError):
        return UsageState(tz, since, until)
    except OSError as exc:
        raise read_error(journal, exc) from None
    try:
        st = os.fstat(fd)
        identity = (st.st_dev, st.st_ino)
        with no_cyclic_gc():
            return _load_state(fd, journal, identity, st.st_size, use_cache and not windowed,
                               tz, since, until)
    finally:
        os.close(fd)


__all__ = ["RidIndex", "cache_path", "fetcher", "file_checks", "load_state", "read_cache",
           "read_sums", "rewritten", "scan", "stamp", "write_cache", "write_sums"]
