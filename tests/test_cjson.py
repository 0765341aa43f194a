"""claudewrap.store.cjson gives what json gives, value for value and error for error."""

from __future__ import annotations

import json
import math
import subprocess
import sys
from typing import Any

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from claudewrap.store import cjson

values = st.recursive(
    st.none() | st.booleans() | st.integers(-10**30, 10**30) | st.floats() | st.text(),
    lambda inner: st.lists(inner, max_size=4) | st.dictionaries(st.text(max_size=6), inner,
                                                                max_size=4),
    max_leaves=25)


def same(a: Any, b: Any) -> bool:
    """Equal, NaN equal to NaN, and the same types all the way down."""
    if type(a) is not type(b):
        return False
    if isinstance(a, float) and math.isnan(a):
        return math.isnan(b)
    if isinstance(a, list):
        return len(a) == len(b) and all(same(x, y) for x, y in zip(a, b))
    if isinstance(a, dict):
        return list(a) == list(b) and all(same(a[k], b[k]) for k in a)
    return bool(a == b)


def outcome(fn: Any, *args: Any, **kw: Any) -> tuple[str, Any]:
    try:
        return "ok", fn(*args, **kw)
    except (ValueError, TypeError, RecursionError) as e:
        return type(e).__name__, str(e)


@settings(max_examples=300, deadline=None)
@given(values, st.booleans(), st.sampled_from([None, (",", ":"), (", ", ": ")]), st.booleans(),
       st.booleans())
def test_dumps_is_json_dumps(value: Any, ascii_only: bool, separators: Any, sort: bool,
                             nan: bool) -> None:
    kw = {"ensure_ascii": ascii_only, "separators": separators, "sort_keys": sort,
          "allow_nan": nan}
    assert outcome(cjson.dumps, value, **kw) == outcome(json.dumps, value, **kw)


@settings(max_examples=300, deadline=None)
@given(values, st.sampled_from(["", " ", "\n\t ", "\r\n"]), st.sampled_from(["", " ", "\n"]))
def test_loads_reads_what_json_writes(value: Any, before: str, after: str) -> None:
    text = before + json.dumps(value, ensure_ascii=False) + after
    for doc in (text, text.encode("utf-8", "surrogatepass")):
        assert same(cjson.loads(doc), json.loads(doc))


@settings(max_examples=500, deadline=None)
@given(st.text(alphabet='{}[]",:0123456789.eE+-tfnrulaIiyNs \t\n\\\ufeffé\x00', max_size=20))
def test_loads_refuses_what_json_refuses(text: str) -> None:
    for doc in (text, text.encode("utf-8", "surrogatepass"), text.encode("utf-16")):
        a, b = outcome(cjson.loads, doc), outcome(json.loads, doc)
        assert a[0] == b[0]
        assert same(a[1], b[1])  # the value, or json's own message


@pytest.mark.parametrize("doc", [b"\xef\xbb\xbf{}", b"{\"a\": \"\xff\"}", b"[1, 2] [3]", b"",
                                 "\ufeff[]", "NaN", "[-Infinity, Infinity]", '"\\ud800"',
                                 b'{"a": "\xed\xa0\x80"}', "1e400", "[" * 100 + "]" * 100])
def test_odd_documents(doc: Any) -> None:
    a, b = outcome(cjson.loads, doc), outcome(json.loads, doc)
    assert a[0] == b[0] and (a[1] == b[1] if a[0] != "ok" else same(a[1], b[1]))


def test_circular_and_unserializable_as_json() -> None:
    loop: list[Any] = []
    loop.append(loop)
    assert outcome(cjson.dumps, loop) == outcome(json.dumps, loop)
    assert outcome(cjson.dumps, {"a": {1, 2}}) == outcome(json.dumps, {"a": {1, 2}})
    # an error part-way leaves the next call unaffected
    shared = {"x": 1}
    assert cjson.dumps([shared, shared]) == json.dumps([shared, shared])


BAD = [b'{"sessions": [1, {"x"', b"[1,", b'{"a" 1}', b"[1 2]", b'"abc', b"{", b"[1] x", b""]


def test_errors_before_json_is_loaded_are_json_errors() -> None:
    # The C scanner raises JSONDecodeError only once json.decoder is loaded: the
    # first bad document of a process (a broken status-line state file) must
    # still raise json's ValueError, with json's message.
    code = ("import sys\nfrom claudewrap.store import cjson\n"
            f"for doc in {BAD!r}:\n"
            "    try:\n        cjson.loads(doc)\n"
            "    except ValueError as e:\n        print(type(e).__name__, e)\n")
    env = {"PYTHONPATH": str(__import__("pathlib").Path(cjson.__file__).parents[2])}
    got = subprocess.run([sys.executable, "-S", "-c", code], capture_output=True, text=True,
                         env=env, check=True)
    assert got.stderr == ""
    expected = []
    for doc in BAD:
        try:
            json.loads(doc)
        except ValueError as e:
            expected.append(f"{type(e).__name__} {e}")
    assert got.stdout.splitlines() == expected


def test_importing_it_does_not_import_json_or_re() -> None:
    code = ("import sys; import claudewrap.store.cjson as c; c.loads(b'{\"a\": [1.5, null]}');"
            " c.dumps({'a': 1}, sort_keys=True);"
            " print(sorted(m for m in ('json', 're', 'enum') if m in sys.modules))")
    out = subprocess.run([sys.executable, "-S", "-c", code], capture_output=True, text=True,
                         check=True, env={"PYTHONPATH": str(__import__("pathlib").Path(
                             cjson.__file__).parents[2])}).stdout
    assert out.strip() == "[]"


def _no_constants(name: str) -> Any:
    raise ValueError(f"{name} is not JSON")


@settings(max_examples=300, deadline=None)
@given(st.text(alphabet='{}[]",:0123456789.eE-NaIfinty \\u', max_size=16) | values.map(json.dumps))
def test_parse_constant_as_json(text: str) -> None:
    for doc in (text, text.encode("utf-8", "surrogatepass")):
        a = outcome(cjson.loads, doc, parse_constant=_no_constants)
        b = outcome(json.loads, doc, parse_constant=_no_constants)
        assert a[0] == b[0] and same(a[1], b[1])
    assert outcome(cjson.loads, "[NaN]", parse_constant=_no_constants)[0] == "ValueError"
