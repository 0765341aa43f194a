"""Journal lines to records, fast: the typed msgspec decoder (lines it cannot take go
through journal.parse_line, the reference parser).

A few new lines (a warm read: `statusline`, `status`, `usage` after a session) do
not pay for importing msgspec (23 ms with typing_extensions and inspect, of a
status-line call that has 50 ms in all): for the first :data:`_SMALL` bytes a
process decodes, while msgspec is not loaded anyway, :func:`_decode_small` gives
the same objects with json and the same checks (tests/test_lines.py holds the
two to each other). :func:`loads` and :func:`dumps` are the saved state's JSON
(the rollup, the archive, the metrics' state), on the same terms.
"""

from __future__ import annotations

import sys

from claudewrap.store import cjson
from claudewrap.store.records import MAX_COST_USD, MAX_TOKENS

TYPE_CHECKING = False  # typing.TYPE_CHECKING without importing typing
if TYPE_CHECKING:
    from collections.abc import Callable
    from typing import Any

# json decodes the first this many bytes of a process (~600 journal lines): at
# ~9 us a line against msgspec's ~1 us, the import it saves pays for ~2,500 lines.
_SMALL = 256 << 10


def _fast_decoder() -> Callable[[bytes], list[Any]]:
    """A typed JSON-lines decoder (msgspec): about 5x faster than json + records.py.

    It accepts only lines in the canonical journal form; a block with anything
    else goes line by line through UsageRecord.from_dict, the reference parser.
    Its counts and cost carry the bounds of a plausible record (records.py,
    MAX_TOKENS), checked in C: a line beyond them (Infinity, -1000, 1e35) fails
    here and goes the slow way, which skips and counts it. (A class body cannot
    say Annotated[...] here: this module's annotations are strings, and the
    names are local; hence defstruct.)
    """
    from typing import Annotated

    import msgspec

    count = Annotated[int, msgspec.Meta(ge=0, le=MAX_TOKENS)]
    cost = Annotated[float, msgspec.Meta(ge=0, le=MAX_COST_USD)]
    line = msgspec.defstruct("_Line", [
        ("ts", str),
        ("session", str),
        ("source", str, "pty"),
        ("kind", str, "delta"),
        ("model", str | None, None),
        ("input_tokens", count, 0),
        ("output_tokens", count, 0),
        ("cache_read_tokens", count, 0),
        ("cache_write_tokens", count, 0),
        ("cost_usd", cost | None, None),
        ("cost_estimated", bool, False),
        ("approximate", bool, False),
        ("project", str | None, None),
        ("host", str | None, None),
        ("tmux_pane", str | None, None),
        ("screen_session", str | None, None),
        ("request_id", str | None, None),
        ("claude_session", str | None, None),
        ("agent", str | None, None),
        ("command", str | None, None),
        ("tags", dict[str, str] | None, None),
    ], gc=False)

    decode = msgspec.json.Decoder(line).decode_lines

    def decode_lines(block: bytes) -> list[Any]:
        try:
            return decode(block)
        except (msgspec.MsgspecError, RecursionError):  # RecursionError: braces nested deep
            raise ValueError("not in the canonical form") from None

    return decode_lines


_FIELDS = ("ts", "session", "source", "kind", "model", "input_tokens", "output_tokens",
           "cache_read_tokens", "cache_write_tokens", "cost_usd", "cost_estimated",
           "approximate", "project", "host", "tmux_pane", "screen_session", "request_id",
           "claude_session", "agent", "command", "tags")
_NAMES = ("model", "project", "host", "tmux_pane", "screen_session", "request_id",
          "claude_session", "agent", "command")
_COUNTS = ("input_tokens", "output_tokens", "cache_read_tokens", "cache_write_tokens")


class Line:
    """One canonical journal line, as the msgspec decoder's struct holds it."""

    __slots__ = _FIELDS

    def __init__(self, d: dict[str, Any]) -> None:
        """Raises ValueError where the msgspec struct would not take ``d``."""
        ts = d.get("ts")
        session = d.get("session")
        if ts.__class__ is not str or session.__class__ is not str:
            raise ValueError("ts or session")
        self.ts = ts
        self.session = session
        get = d.get
        for name, default in (("source", "pty"), ("kind", "delta")):
            value = get(name, default)
            if value.__class__ is not str:
                raise ValueError(name)
            setattr(self, name, value)
        for name in _NAMES:
            value = get(name)
            if value is not None and value.__class__ is not str:
                raise ValueError(name)
            setattr(self, name, value)
        for name in _COUNTS:
            value = get(name, 0)
            if value.__class__ is not int or not 0 <= value <= MAX_TOKENS:
                raise ValueError(name)
            setattr(self, name, value)
        cost = get("cost_usd")
        if cost is not None:
            if cost.__class__ is int:
                cost = float(cost)
            if cost.__class__ is not float or not 0 <= cost <= MAX_COST_USD:
                raise ValueError("cost_usd")
        self.cost_usd = cost
        for name in ("cost_estimated", "approximate"):
            value = get(name, False)
            if value is not True and value is not False:
                raise ValueError(name)
            setattr(self, name, value)
        tags = get("tags")
        if tags is not None and (tags.__class__ is not dict or any(
                v.__class__ is not str for v in tags.values())):
            raise ValueError("tags")
        self.tags = tags


def _reject(name: str) -> Any:
    raise ValueError(f"{name} is not JSON")


def _decode_small(block: bytes) -> list[Any]:
    """``block``'s lines as :class:`Line` objects; ValueError when one is not in
    the canonical form (what the msgspec decoder raises for)."""
    out = []
    loads = cjson.loads  # json's C codec without importing json and re (store/cjson.py)
    for raw in block.split(b"\n"):
        if not raw.strip():
            continue  # as msgspec's decode_lines: the caller compares the count
        try:  # UTF-8 only, as msgspec reads it (json.loads of bytes would take UTF-16)
            d = loads(raw.decode("utf-8"), parse_constant=_reject)
        except (ValueError, RecursionError):  # UnicodeDecodeError is a ValueError
            raise ValueError("not in the canonical form") from None
        if d.__class__ is not dict:
            raise ValueError("not an object")
        if b"\\ud" in raw or b"\\uD" in raw:
            # msgspec refuses an escaped lone surrogate anywhere in the line (a
            # pair is one character); encoding the whole object finds it.
            cjson.dumps(d, ensure_ascii=False).encode("utf-8")  # UnicodeEncodeError
        out.append(Line(d))
    return out


_fast: Callable[[bytes], list[Any]] | None = None
_small_bytes = 0  # decoded by _decode_small so far in this process


def decode_lines(block: bytes) -> list[Any]:
    """The records of a block of whole journal lines (blank lines give none);
    ValueError when a line is not in the canonical journal form.

    json for the first :data:`_SMALL` bytes a process decodes (a warm read's new
    lines), msgspec from there on (a cold read: the blocks are smaller than
    _SMALL, so the sum decides, not a block's size)."""
    global _fast
    if _fast is None:
        if not _use_msgspec(len(block)):
            return _decode_small(block)
        _fast = _fast_decoder()
    return _fast(block)


def _use_msgspec(size: int) -> bool:
    """Whether to decode ``size`` more bytes with msgspec: once it is loaded, or
    once this process has decoded :data:`_SMALL` bytes (lines and saved state)."""
    global _small_bytes
    if "msgspec" in sys.modules:
        return True
    _small_bytes += size
    return _small_bytes >= _SMALL


def loads(data: bytes | memoryview) -> Any:
    """Saved-state JSON (the rollup's meta and parts, the archive's keys): json
    while the process has decoded little and msgspec is not loaded (its import is
    most of a warm status-line call; json takes ~3 ms for 256 KiB), else msgspec."""
    if not _use_msgspec(len(data)):
        return cjson.loads(bytes(data))
    import msgspec

    return msgspec.json.decode(data)


def dumps(obj: Any) -> bytes:
    """Saved-state JSON, written: msgspec (about 3x json's speed; a dependency)."""
    import msgspec

    return msgspec.json.encode(obj)


def json_float(x: float) -> Any:
    """``x`` as :func:`indented_spelled` must be given it to write it as json does.

    msgspec writes a float with the shortest digits that read back, as repr()
    does, but not always in the same form: 2.5e-05 as 0.000025, 1e+16 as 1e16.
    Both forms agree for 0 and 1e-4 <= |x| < 1e16 (tests/test_usage_json.py holds
    them to it); any other float goes as json's own text (msgspec.Raw)."""
    if x == 0.0 or 1e-4 <= abs(x) < 1e16:
        return x
    import msgspec

    return msgspec.Raw(cjson.dumps(x).encode())


def _escaped(m: Any) -> bytes:
    return cjson.dumps(m.group().decode()).encode()[1:-1]


def indented_spelled(obj: Any) -> bytes | None:
    """``json.dumps(obj, indent=2)``, byte for byte (as UTF-8), for an ``obj`` whose
    floats went through :func:`json_float`; None when msgspec cannot write it (a
    lone surrogate in a string, a float json would write as NaN or Infinity).

    msgspec encodes and indents (3.6 MB of `usage --json` in ~12 ms against
    json's ~50 ms compact, before indenting); json's ``ensure_ascii`` spelling
    of what is not ASCII (and of DEL) is put in after, where there is any."""
    import msgspec

    try:
        data = msgspec.json.format(msgspec.json.encode(obj), indent=2)
    except (msgspec.MsgspecError, UnicodeEncodeError, TypeError, ValueError):
        return None
    if not data.isascii() or b"\x7f" in data:
        import re

        data = re.sub(b"[^\\x00-\\x7e]+", _escaped, data)
    return data
