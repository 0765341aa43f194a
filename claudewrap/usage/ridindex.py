"""The request-id index: which request ids the state has counted, stored compactly."""

from __future__ import annotations

from array import array
from bisect import bisect_left
from collections.abc import Sequence
from itertools import accumulate, repeat
from operator import add

_MAX_SEGMENTS = 8  # more sorted segments than this are merged into one


def id_bytes(request_id: str) -> bytes:
    """A request id as the index stores it (UTF-8; one with a newline by its digest)."""
    if "\n" in request_id:
        import hashlib

        return b"#" + hashlib.blake2b(request_id.encode("utf-8", "surrogatepass")).hexdigest(
            ).encode()
    return request_id.encode("utf-8", "surrogatepass")


class _Segment:
    """Request ids in sorted order (``blob``: one per line), where each starts, and values.

    ``starts`` has one more entry than there are ids: where the next would
    start. A lookup bisects over them: a handful of slices, nothing split.
    """

    __slots__ = ("_keys", "blob", "starts", "values")

    def __init__(self, blob: bytes | memoryview, starts: array[int], values: array[int]
                 ) -> None:
        self.blob = blob  # a view into what was read, until looked into
        self.starts = starts
        self.values = values
        self._keys: list[bytes] | None = None

    @classmethod
    def of(cls, ids: Sequence[str | bytes], values: array[int]) -> _Segment:
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
        return cls(blob, starts, values)

    @property
    def keys(self) -> list[bytes]:
        if self._keys is None:
            self._keys = bytes(self.blob).split(b"\n") if self.values else []
        return self._keys

    def find(self, key: bytes) -> int:
        """The position of ``key``, or -1."""
        if isinstance(self.blob, memoryview):
            self.blob = self.blob.tobytes()
        blob, starts = self.blob, self.starts
        i = bisect_left(range(len(self.values)), key,
                        key=lambda j: blob[starts[j]:starts[j + 1] - 1])
        return i if i < len(self.values) and blob[starts[i]:starts[i + 1] - 1] == key else -1


class RidIndex:
    """Request ids -> ``position << 3 | priority`` (position: the line number), in sorted segments.

    Each :meth:`add` (UsageState.seal) makes a segment. An id may be in
    several segments; the newest holds its value (the request as rule 1
    counts it). The ids are kept as text: sorting them costs less than hashing
    them, and no two ids can be taken for one. Segments read from bytes are
    split when first looked into, and written back as they came.
    """

    def __init__(self, sizes: Sequence[Sequence[int]] = (), data: bytes | memoryview = b""
                 ) -> None:
        self.segments: list[_Segment] = []
        data = memoryview(data)
        pos = 0
        for count, blob_len in sizes:
            starts, values = array("Q"), array("Q")
            at = pos + blob_len
            starts.frombytes(data[at:at + 8 * (count + 1)])
            values.frombytes(data[at + 8 * (count + 1):at + 8 * (2 * count + 1)])
            if len(values) != count or starts[-1] != (blob_len + 1 if count else 0):
                raise ValueError("request-id index cut short")
            self.segments.append(_Segment(data[pos:pos + blob_len], starts, values))
            pos = at + 8 * (2 * count + 1)
        if pos != len(data):
            raise ValueError("request-id index of the wrong size")
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

    def get(self, request_id: str) -> int | None:
        return self.get_key(id_bytes(request_id))

    def get_key(self, key: bytes) -> int | None:
        for seg in reversed(self.segments):
            i = seg.find(key)
            if i >= 0:
                return seg.values[i]
        return None

    def add(self, new: dict[str, int]) -> None:
        """A segment of ``new`` (newer than all before)."""
        ids = sorted(new)
        values = array("Q")
        values.fromlist(list(map(new.__getitem__, ids)))
        try:
            self.segments.append(_Segment.of(ids, values))
        except ValueError:  # an id with a newline (rare): stored by its digest
            pairs = sorted((id_bytes(i), v) for i, v in zip(ids, values))
            self.segments.append(_Segment.of([k for k, _ in pairs],
                                             array("Q", [v for _, v in pairs])))

    def to_parts(self) -> tuple[list[list[int]], list[bytes | memoryview]]:
        """``(sizes, parts)``: ``RidIndex(sizes, data)`` reads back the parts written
        one after the other. Too many segments are made one first (newer values win).
        """
        if len(self.segments) > _MAX_SEGMENTS:
            merged: dict[bytes, int] = {}
            for seg in self.segments:
                merged.update(zip(seg.keys, seg.values))
            keys = sorted(merged)
            values = array("Q")
            values.fromlist(list(map(merged.__getitem__, keys)))
            self.segments = [_Segment.of(keys, values)]
            self.base = 1
        sizes = [[len(seg.values), len(seg.blob)] for seg in self.segments]
        return sizes, [part for seg in self.segments for part in (
            seg.blob, memoryview(seg.starts).cast("B"), memoryview(seg.values).cast("B"))]


