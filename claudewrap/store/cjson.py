"""``json.loads`` and ``json.dumps``, answer for answer, without importing `json`.

The status line (run by Claude Code after every message) and the readers parse
and write a few small JSON documents. `import json` costs ~10 ms of CPU there:
json.decoder and json.scanner import `re`, which imports enum, functools and
collections; `import _json` (the C codec json itself runs on) costs ~1 ms
(``python -S``, CPU medians of 40 starts: pass 12.0, `_json` and the other C
modules of a status-line call 18.1, with json and re instead 29.1). This module
drives the C scanner and encoder exactly as json's own classes do:

* :func:`loads` reads what ``json.loads`` reads and gives the same objects; text
  it refuses (or bytes that are not plain UTF-8) go to ``json.loads`` itself,
  which raises its own ``JSONDecodeError`` (a ``ValueError``), so callers see
  json's errors and json is imported only then.
* :func:`dumps` is ``json.dumps`` for the options it takes (json uses the same C
  encoder whenever ``indent`` is None).

Where the C codec is missing (an interpreter without ``_json``) or its
constructor changed, both are json's own functions. tests/test_cjson.py holds
them to json on generated values and documents.
"""

from __future__ import annotations

TYPE_CHECKING = False
if TYPE_CHECKING:
    from collections.abc import Callable
    from typing import Any

_WS = " \t\n\r"
_INF = float("inf")
_CONSTANTS = {"-Infinity": -_INF, "Infinity": _INF, "NaN": _INF - _INF}


class _Context:
    """What ``_json.make_scanner`` reads of a json.JSONDecoder (its defaults)."""

    strict = True
    object_hook = None
    object_pairs_hook = None
    parse_float = float
    parse_int = int
    parse_constant = _CONSTANTS.__getitem__


def _not_serializable(o: Any) -> Any:
    raise TypeError(f"Object of type {o.__class__.__name__} is not JSON serializable")


_scanners: dict[Any, Callable[[str, int], tuple[Any, int]]] = {}  # by parse_constant
try:
    from _json import encode_basestring, encode_basestring_ascii, make_encoder, make_scanner

    _scan: Callable[[str, int], tuple[Any, int]] | None = make_scanner(_Context())  # type: ignore[arg-type]
    make_encoder({}, _not_serializable, encode_basestring_ascii, None, ": ", ", ", False,
                 False, True)  # the constructor json calls: TypeError if it changed
except (ImportError, TypeError):  # pragma: no cover - CPython has had these since 3.x
    _scan = None


def loads(s: str | bytes | bytearray, *,
          parse_constant: Callable[[str], Any] | None = None) -> Any:
    """``json.loads(s, parse_constant=...)``."""
    scan = _scan
    if scan is not None and parse_constant is not None:
        scan = _scanners.get(parse_constant)
        if scan is None:
            context = _Context()
            context.parse_constant = parse_constant  # type: ignore[method-assign]
            scan = _scanners[parse_constant] = make_scanner(context)  # type: ignore[arg-type]
    if scan is None:
        return _json_loads(s, parse_constant)
    if not isinstance(s, str):
        head = bytes(s[:4])
        if b"\x00" in head or head.startswith((b"\xef\xbb\xbf", b"\xfe\xff", b"\xff\xfe")):
            return _json_loads(s, parse_constant)  # UTF-16/32 or a BOM: json's own detection
        try:
            s = bytes(s).decode("utf-8", "surrogatepass")  # as json.loads decodes UTF-8
        except UnicodeDecodeError:
            return _json_loads(s, parse_constant)
    elif s.startswith("\ufeff"):
        return _json_loads(s, parse_constant)  # json refuses it, with its message
    start = len(s) - len(s.lstrip(_WS))
    try:
        obj, end = scan(s, start)
    except (StopIteration, ValueError, SystemError):
        # StopIteration ("Expecting value"), or a JSONDecodeError, which the C
        # scanner can only raise once json.decoder is loaded (before, a
        # SystemError), or parse_constant's own error: json says what and where.
        return _json_loads(s, parse_constant)
    if end != len(s) and s[end:].strip(_WS):
        return _json_loads(s, parse_constant)  # "Extra data"
    return obj


def dumps(obj: Any, *, ensure_ascii: bool = True, separators: tuple[str, str] | None = None,
          sort_keys: bool = False, allow_nan: bool = True) -> str:
    """``json.dumps(obj, ensure_ascii=..., separators=..., sort_keys=..., allow_nan=...)``."""
    if _scan is None:
        import json

        return json.dumps(obj, ensure_ascii=ensure_ascii, separators=separators,
                          sort_keys=sort_keys, allow_nan=allow_nan)
    item, key = separators if separators is not None else (", ", ": ")
    string = encode_basestring_ascii if ensure_ascii else encode_basestring
    if isinstance(obj, str):  # as json.JSONEncoder.encode
        return str(string(obj))
    # A new encoder each time, as json makes one: its circular-reference
    # markers must start empty (an error part-way would leave some behind).
    encode = make_encoder({}, _not_serializable, string, None, key, item, sort_keys, False,
                          allow_nan)
    return "".join(encode(obj, 0))


def _json_loads(s: str | bytes | bytearray,
                parse_constant: Callable[[str], Any] | None = None) -> Any:
    import json

    return json.loads(s, parse_constant=parse_constant)
