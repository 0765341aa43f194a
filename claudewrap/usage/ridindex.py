"""The request-id index: which request ids the state has counted, stored compactly.

Each segment also knows the newest time of the records it holds (``newest``).
A request is seen by its sources within seconds of each other, so a record
can only meet a request id of a segment whose newest record is not days older
than itself: such segments are not looked into, nor even read from the cache
(``loader``), and history's segments cost nothing to a reader of new usage
(issue 16: 16 MB read, checked and searched by every warm reader at 1M records).
"""

from __future__ import annotations

import zlib
from array import array
from bisect import bisect_left
from datetime import date, timedelta
from itertools import accumulate, repeat
from operator import add

TYPE_CHECKING = False  # typing.TYPE_CHECKING without importing typing (3 ms a reader)
if TYPE_CHECKING:
    from collections.abc import Callable, Sequence
    from typing import Any

_MAX_SEGMENTS = 8  # more sorted segments than this are merged into one
# A segment whose newest record is more than this many days before a record's
# day cannot hold that record's request (its sources see it within seconds).
_MARGIN_DAYS = 2

if TYPE_CHECKING:
    Loader = Callable[[], tuple[bytes, "array[int]", "array[int]"]]


class IndexBroken(Exception):
    """A segment read from a cache does not check out: the cache must be rebuilt."""


def id_bytes(request_id: str) -> bytes:
    """A request id as the index stores it (UTF-8; one with a newline by its digest)."""
    if "\n" in request_id:
        import hashlib

        return b"#" + hashlib.blake2b(request_id.encode("utf-8", "surrogatepass")).hexdigest(
            ).encode()
    return request_id.encode("utf-8", "surrogatepass")


_FLOORS: dict[str, str] = {}


def _floor(ts: str) -> str:
    """The oldest ``newest`` a segment may have to hold a request of time ``ts``."""
    day = ts[:10]
    floor = _FLOORS.get(day)
    if floor is None:
        try:
            floor = (date.fromisoformat(day) - timedelta(days=_MARGIN_DAYS)).isoformat()
        except ValueError:
            floor = ""  # not a journal time: every segment
        _FLOORS[day] = floor
    return floor


class _Segment:
    """Request ids in sorted order (``blob``: one per line), where each starts, and values.

    ``starts`` has one more entry than there are ids: where the next would
    start. A lookup bisects over them: a handful of slices, nothing split.
    A segment from a cache is read (``loader``) when first looked into.
    """

    __slots__ = ("_blob", "_keys", "_loader", "_starts", "_values", "count", "newest")

    def __init__(self, blob: bytes | memoryview, starts: array[int], values: array[int],
                 newest: str = "", loader: Loader | None = None, count: int = 0) -> None:
        self._blob = blob
        self._starts = starts
        self._values = values
        self._loader = loader
        self.count = count if loader is not None else len(values)
        self.newest = newest  # the newest record time of its ids ("": unknown)
        self._keys: list[bytes] | None = None

    def _load(self) -> None:
        if self._loader is not None:
            self._blob, self._starts, self._values = self._loader()
            self._loader = None

    @property
    def blob(self) -> bytes | memoryview:
        self._load()
        return self._blob

    @property
    def starts(self) -> array[int]:
        self._load()
        return self._starts

    @property
    def values(self) -> array[int]:
        self._load()
        return self._values

    @values.setter
    def values(self, values: array[int]) -> None:
        self._load()
        self._values = values

    @classmethod
    def of(cls, ids: Sequence[str | bytes], values: array[int], newest: str = "") -> _Segment:
        """The segment of sorted ``ids``; ValueError if one has a newline."""
        if ids and isinstance(ids[0], str):
            joined = "\n".join(ids)  # type: ignore[arg-type]
            blob = joined.encode("utf-8", "surrogatepass")
            ascii_only = len(blob) == len(joined)
        else:
            blob = b"\n".join(ids)  # type: ignore[arg-type]
            ascii_only = True
        if blob.count(b"\n") != max(len(ids) - 1, 0):
            raise ValueError("a request id with a newline")
        lengths = map(len, ids) if ascii_only else map(len, blob.split(b"\n"))
        starts = array("Q", accumulate(map(add, lengths, repeat(1)), initial=0))
        return cls(blob, starts, values, newest)

    @property
    def keys(self) -> list[bytes]:
        if self._keys is None:
            self._keys = bytes(self.blob).split(b"\n") if self.count else []
        return self._keys

    def find(self, key: bytes) -> int:
        """The position of ``key``, or -1."""
        self._load()
        if isinstance(self._blob, memoryview):
            self._blob = self._blob.tobytes()
        blob, starts = self._blob, self._starts
        i = bisect_left(range(len(self._values)), key,
                        key=lambda j: blob[starts[j]:starts[j + 1] - 1])
        return i if i < len(self._values) and blob[starts[i]:starts[i + 1] - 1] == key else -1


def _decode_segment(data: bytes | memoryview, count: int, blob_len: int, crc: int | None
                    ) -> tuple[bytes | memoryview, array[int], array[int]]:
    """A segment's blob, starts and values from its stored bytes (IndexBroken if they
    are not what was written)."""
    if len(data) != blob_len + 8 * (2 * count + 1) or (
            crc is not None and zlib.crc32(data) != crc):
        raise IndexBroken("request-id index segment does not check out")
    starts, values = array("Q"), array("Q")
    starts.frombytes(data[blob_len:blob_len + 8 * (count + 1)])
    values.frombytes(data[blob_len + 8 * (count + 1):])
    if starts[-1] != (blob_len + 1 if count else 0):
        raise IndexBroken("request-id index cut short")
    return data[:blob_len], starts, values


class RidIndex:
    """Request ids -> ``position << 3 | priority`` (position: the line number), in sorted segments.

    Each :meth:`add` (UsageState.seal) makes a segment. An id may be in
    several segments; the newest holds its value (the request as rule 1
    counts it). The ids are kept as text: sorting them costs less than hashing
    them, and no two ids can be taken for one. Segments read from bytes are
    split when first looked into, and written back as they came.

    ``sizes``: per segment ``[count, blob length, newest, crc]`` (the last two
    may be missing: then unknown, unchecked); ``read(offset, length)`` gives
    the bytes :meth:`to_parts` wrote, from the start of the first; called only
    for the segments looked into.
    """

    def __init__(self, sizes: Sequence[Sequence[Any]] = (),
                 data: bytes | memoryview | Callable[[int, int], bytes | memoryview] = b""
                 ) -> None:
        self.segments: list[_Segment] = []
        if callable(data):
            read = data
        else:
            view = memoryview(data)
            total = sum(int(s[1]) + 8 * (2 * int(s[0]) + 1) for s in sizes)
            if total != len(view):
                raise ValueError("request-id index of the wrong size")

            def read(offset: int, length: int) -> bytes | memoryview:
                return view[offset:offset + length]
        pos = 0
        for entry in sizes:
            count, blob_len = int(entry[0]), int(entry[1])
            newest = str(entry[2]) if len(entry) > 2 else ""
            crc = int(entry[3]) if len(entry) > 3 else None
            length = blob_len + 8 * (2 * count + 1)

            def loader(at: int = pos, length: int = length, count: int = count,
                       blob_len: int = blob_len, crc: int | None = crc
                       ) -> tuple[bytes | memoryview, array[int], array[int]]:
                return _decode_segment(read(at, length), count, blob_len, crc)

            self.segments.append(_Segment(b"", array("Q"), array("Q"), newest,
                                          loader, count))  # type: ignore[arg-type]
            pos += length
        self.base = len(self.segments)  # segments read, the rest added since
        self._new_ids: tuple[int, set[bytes]] = (0, set())

    def new_ids(self) -> set[bytes]:
        """The ids of the segments added since the index was read."""
        if self._new_ids[0] != len(self.segments):
            ids: set[bytes] = set()
            for seg in self.segments[self.base:]:
                ids.update(seg.keys)
            self._new_ids = (len(self.segments), ids)
        return self._new_ids[1]

    def __bool__(self) -> bool:
        return bool(self.segments)

    def get(self, request_id: str, ts: str | None = None) -> int | None:
        """The value of ``request_id``; with ``ts`` (its record's journal time), only
        the segments that can hold a request of that time are looked into."""
        key = id_bytes(request_id)
        if ts is None:
            return self.get_key(key)
        floor = _floor(ts)
        for seg in reversed(self.segments):
            if seg.newest and seg.newest < floor:
                continue
            i = seg.find(key)
            if i >= 0:
                return seg.values[i]
        return None

    def read_past(self, now: str) -> bool:
        """Whether a segment of the cache that no record dated ``now`` looks into
        was read all the same: records dated days before it were fed (an import
        of old transcripts, say). Each later read would read it again for them
        (~40 ms at 1M records for 600 such records, most of a warm `usage`), so
        the rollup is worth saving now, however few they were."""
        floor = _floor(now)
        return any(seg._loader is None and seg.newest and seg.newest < floor
                   for seg in self.segments[:self.base])

    def get_key(self, key: bytes) -> int | None:
        for seg in reversed(self.segments):
            i = seg.find(key)
            if i >= 0:
                return seg.values[i]
        return None

    def add(self, new: dict[str, int], newest: str = "") -> None:
        """A segment of ``new`` (newer than all before); ``newest``: the newest
        time of their records."""
        ids = sorted(new)
        values = array("Q")
        values.fromlist(list(map(new.__getitem__, ids)))
        try:
            self.segments.append(_Segment.of(ids, values, newest))
        except ValueError:  # an id with a newline (rare): stored by its digest
            pairs = sorted((id_bytes(i), v) for i, v in zip(ids, values))
            self.segments.append(_Segment.of([k for k, _ in pairs],
                                             array("Q", [v for _, v in pairs]), newest))

    @staticmethod
    def _merged(segments: list[_Segment]) -> _Segment:
        """One segment of consecutive ``segments`` (the later ones' values win)."""
        merged: dict[bytes, int] = {}
        for seg in segments:
            merged.update(zip(seg.keys, seg.values))
        keys = sorted(merged)
        values = array("Q")
        values.fromlist(list(map(merged.__getitem__, keys)))
        newest = "" if any(not s.newest for s in segments) else max(s.newest for s in segments)
        return _Segment.of(keys, values, newest)

    def to_parts(self, now: str = "") -> tuple[list[list[Any]], list[bytes | memoryview]]:
        """``(sizes, parts)``: ``RidIndex(sizes, data)`` reads back the parts written
        one after the other. The oldest segments (all older than ``now``'s floor:
        no new record looks into them) are merged into one that stays unread by
        later readers; too many segments after it are merged into one (newer
        values win: the order of the segments is kept)."""
        segs = self.segments
        floor = _floor(now) if now else ""
        old = 0
        while old < len(segs) and segs[old].newest and segs[old].newest < floor:
            old += 1
        if old > 1:
            segs = [self._merged(segs[:old]), *segs[old:]]
            old = 1
        if len(segs) > _MAX_SEGMENTS:
            segs = [*segs[:old], self._merged(segs[old:])]
        if segs is not self.segments:
            self.segments = segs
            self.base = len(segs)
            self._new_ids = (0, set())
        sizes: list[list[Any]] = []
        parts: list[bytes | memoryview] = []
        for seg in segs:
            blob = seg.blob
            body = [blob, memoryview(seg.starts).cast("B"), memoryview(seg.values).cast("B")]
            crc = 0
            for part in body:
                crc = zlib.crc32(part, crc)
            sizes.append([seg.count, len(blob), seg.newest, crc])
            parts += body
        return sizes, parts
