"""Claude Code's session transcripts: exact per-request usage, after the fact.

Claude Code writes each session to ``<config dir>/projects/<cwd slug>/<session
id>.jsonl`` (config dirs: ``$CLAUDE_CONFIG_DIR``, comma separated, else
``~/.config/claude`` and ``~/.claude``). An assistant line carries the API
message's ``usage`` and the request id; a message with several content blocks
is written as several lines, each repeating the usage of that moment, with
``output_tokens`` a streaming snapshot. So, per request id: the line with the
largest ``output_tokens`` wins (the last among equals); never the first, never
the sum. Subagent files (``isSidechain``) replaying a request of the main file
count once, because the key is the request id. ``<synthetic>`` lines (errors
Claude Code made up itself) are not usage.

Attribution (where the tokens went): a subagent's requests are in
``<session id>/subagents/agent-<id>.jsonl``, each assistant line naming its
agent (``attributionAgent``; else the file's ``.meta.json`` ``agentType``).
A request's command is the slash command of the user turn it answers: a
prompt line whose content starts with ``<command-...>`` names it
(``<command-name>/review</command-name>``); any other prompt (typed, a task
notification) ends it. A skill the model calls (the ``Skill`` tool) is the
command of the turn's requests after the call, as OpenTelemetry's
``skill.name`` has it. A subagent's requests take the command of the turn
that launched it (the ``toolUseId`` in its ``.meta.json``, found in the main
file). Claude Code writes no transcript line for compaction or title requests:
only OpenTelemetry sees those.

:func:`import_paths` backs ``claudewrap import``; :func:`reconcile` runs at the
end of a wrapped session and adds what OpenTelemetry did not deliver.
"""

from __future__ import annotations

import functools
import json
import os
import re
import socket
from collections.abc import Callable, Iterable, Iterator, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import msgspec

from claudewrap.sources import claude_dirs
from claudewrap.store.records import (
    SCHEMA_VERSION,
    UsageRecord,
    count_value,
    iso_of_epoch,
    iso_utc,
    utc_now_iso,
)

SOURCE = "transcript"
# Sources whose records already carry one request exactly: a request seen there
# is not imported again.
EXACT_SOURCES = ("transcript", "otel")
_SYNTHETIC = "<synthetic>"
# Only lines that can carry usage are parsed at all.
_USAGE_MARK = b'"usage"'
_ASSISTANT_MARK = b'"assistant"'
# Bounds for the end-of-session reconciliation (the launch path's exit).
RECONCILE_MAX_BYTES = 64 << 20


def transcript_files(paths: Iterable[Path], since: float | None = None) -> Iterator[Path]:
    """Every ``*.jsonl`` under ``paths`` (files are taken as they are), sorted,
    skipping those last modified before ``since`` (epoch seconds)."""
    for path in paths:
        if path.is_dir():
            found = sorted(p for p in path.rglob("*.jsonl") if p.is_file())
        elif path.is_file():
            found = [path]
        else:
            continue
        for f in found:
            if since is not None:
                try:
                    if f.stat().st_mtime < since:
                        continue
                except OSError:
                    continue
            yield f


class Request(msgspec.Struct, gc=False):
    """The usage of one API request, as the transcript last showed it.

    A msgspec struct: made in 0.19 us, a dataclass in 1.4 (one per usage line).
    gc=False: it holds strings, numbers and None only.
    """

    request_id: str
    claude_session: str | None
    model: str | None
    ts: str | None
    cwd: str | None
    input_tokens: int
    output_tokens: int
    cache_read_tokens: int
    cache_write_tokens: int
    sidechain: bool
    agent: str | None = None  # None: the main thread
    command: str | None = None

    def better_than(self, other: Request) -> bool:
        """Main-thread lines over sidechain replays; then the later/larger snapshot."""
        if self.sidechain != other.sidechain:
            return not self.sidechain
        return self.output_tokens >= other.output_tokens


def _count(value: Any) -> int:
    """ValueError for a count no record can hold (Infinity, 1e35): see parse_line."""
    if isinstance(value, bool) or not isinstance(value, (int, float)):
        return 0
    return count_value("a token count", max(0, value))


def _ts(value: Any) -> str | None:
    """The line's timestamp as the journal writes one (UTC, milliseconds, Z)."""
    if not isinstance(value, str) or not value:
        return None
    if len(value) == 24 and value.endswith("Z"):
        return value
    from datetime import datetime, timezone

    try:
        when = datetime.fromisoformat(value.replace("Z", "+00:00"))
    except ValueError:
        return None
    if when.tzinfo is None:
        when = when.replace(tzinfo=timezone.utc)
    return iso_utc(when)


def parse_line(line: bytes | str) -> Request | None:
    """The usage on one transcript line, or None (not an assistant message with
    usage, a ``<synthetic>`` error, or not JSON)."""
    try:
        obj = json.loads(line)
    except (ValueError, RecursionError):
        return None
    if not isinstance(obj, dict) or obj.get("type") != "assistant":
        return None
    message = obj.get("message")
    if not isinstance(message, dict):
        return None
    usage = message.get("usage")
    model = message.get("model")
    if not isinstance(usage, dict) or model == _SYNTHETIC or obj.get("isApiErrorMessage"):
        return None
    rid = obj.get("requestId") or message.get("id")
    if not isinstance(rid, str) or not rid:
        return None
    from claudewrap.parse.patterns import normalise_model

    session = obj.get("sessionId")
    cwd = obj.get("cwd")
    try:
        counts = [_count(usage.get(k)) for k in ("input_tokens", "output_tokens",
                                                  "cache_read_input_tokens",
                                                  "cache_creation_input_tokens")]
    except ValueError:
        return None  # numbers no record can hold (issue 13): not a real request
    return Request(
        request_id=rid,
        claude_session=session if isinstance(session, str) and session else None,
        model=normalise_model(model) if isinstance(model, str) and model else None,
        ts=_ts(obj.get("timestamp")),
        cwd=cwd if isinstance(cwd, str) and cwd else None,
        input_tokens=counts[0],
        output_tokens=counts[1],
        cache_read_tokens=counts[2],
        cache_write_tokens=counts[3],
        sidechain=bool(obj.get("isSidechain")),
        agent=_agent_of(obj.get("isSidechain"), obj.get("attributionAgent")),
    )


# A subagent line whose agent has no name (older layouts without attributionAgent
# or a .meta.json).
UNNAMED_AGENT = "subagent"


def _agent_of(sidechain: Any, name: Any) -> str | None:
    """The agent of an assistant line: None on the main thread."""
    if not sidechain:
        return None
    return name if isinstance(name, str) and name else UNNAMED_AGENT


class _Decoder:
    """:func:`parse_line` for the usual assistant line, by a typed msgspec decoder
    of only the fields it needs; any line of another shape goes to parse_line.

    Its gain (cProfile of an import of bench/import_bench.py's transcripts):
    84 us a line with parse_line, 11 us with this. :meth:`parse_all` decodes a
    block's usage lines in one call (``decode_lines``): 4.3 us a line against
    5.7 us for a call per line (39,503 of those lines, one busy core).
    """

    def __init__(self) -> None:
        from claudewrap.parse.patterns import normalise_model
        from claudewrap.store.records import MAX_TOKENS

        # defstruct: annotations are strings here (__future__), which msgspec
        # would look up in the module, where these classes are not. gc=False:
        # they hold only strings, numbers and each other (no cycles), and the
        # collector need not track a million of them.
        usage = msgspec.defstruct("Usage", [(k, int, 0) for k in (
            "input_tokens", "output_tokens", "cache_read_input_tokens",
            "cache_creation_input_tokens")], gc=False)
        message = msgspec.defstruct("Message", [("model", str | None, None),
                                                ("id", str | None, None),
                                                ("usage", usage | None, None)], gc=False)
        text = str | None
        line_type = msgspec.defstruct("Line", [
            ("type", text, None), ("message", message | None, None), ("requestId", text, None),
            ("sessionId", text, None), ("cwd", text, None), ("timestamp", text, None),
            ("isSidechain", bool, False), ("isApiErrorMessage", bool, False),
            ("attributionAgent", text, None)], gc=False)
        decoder = msgspec.json.Decoder(line_type)
        self.decode_one = decoder.decode
        self.decode_lines = decoder.decode_lines
        self.error = msgspec.DecodeError  # ValidationError is one too
        self.models: dict[str, str] = {}
        self.normalise_model = normalise_model
        self.max_tokens = MAX_TOKENS

    def parse(self, line: bytes) -> Request | None:
        """:func:`parse_line` of one line."""
        try:
            obj = self.decode_one(line)
        except self.error:
            return parse_line(line)  # not the usual shape: the tolerant reader decides
        return self.request(obj, line)

    def parse_all(self, lines: list[bytes]) -> list[Request | None]:
        """:meth:`parse` of each line (without its newline), decoded in one call
        when all have the usual shape."""
        try:
            objs = self.decode_lines(b"\n".join(lines))
        except self.error:
            return [self.parse(line) for line in lines]
        if len(objs) != len(lines):  # cannot be (no line is blank); never guess
            return [self.parse(line) for line in lines]
        request = self.request
        return [request(obj, line) for obj, line in zip(objs, lines)]

    def request(self, obj: Any, line: bytes) -> Request | None:
        """The Request of a decoded line (``line``: its bytes, for odd counts)."""
        message = obj.message
        if obj.type != "assistant" or message is None:
            return None
        usage = message.usage
        if usage is None:
            return None
        i, o, r, w = (usage.input_tokens, usage.output_tokens, usage.cache_read_input_tokens,
                      usage.cache_creation_input_tokens)
        if i < 0 or o < 0 or r < 0 or w < 0 or max(i, o, r, w) > self.max_tokens:
            return parse_line(line)
        model = message.model
        if model == _SYNTHETIC or obj.isApiErrorMessage:
            return None
        rid = obj.requestId or message.id
        if not rid:
            return None
        if model:
            found = self.models.get(model)
            if found is None:
                found = self.models[model] = self.normalise_model(model)
            model = found
        ts = obj.timestamp
        sidechain = obj.isSidechain
        return Request(rid, obj.sessionId or None, model or None,
                       ts if ts is not None and len(ts) == 24 and ts[-1] == "Z" else _ts(ts),
                       obj.cwd or None, i, o, r, w, sidechain,
                       _agent_of(sidechain, obj.attributionAgent) if sidechain else None)


@functools.cache
def _decoder() -> _Decoder:
    return _Decoder()


# A user line that starts a turn: not a tool result, not Claude Code's own
# (isMeta) text. Its content starting with "<command-" is a slash command.
# Only a line's head is searched for the role and the start of the content
# (2.1.x writes them within the first ~200 bytes), so the big lines (tool
# results, attachments, request blobs) cost no full scan. read_requests of a
# 1 GB file of a real 2.1.332 session's lines (repeated), CPU seconds, best of 3
# side by side: 2.52 before attribution, 3.11 with a full scan of each line for
# "type":"user", 2.50 with this.
_HEAD = 1024
_USER_ROLE = b'"role":"user"'
_META = b'"isMeta":true'
# 2.1.332's request records (api-request-blob, ...) start with their type and
# hold a request's messages: "role":"user" in their head, but no turn.
_BOOKKEEPING = b'{"type":"api-request'

_COMMAND_NAME = re.compile(rb'<command-name>/?([^<\\"]{1,200})</command-name>')
_TOOL_USE_ID = re.compile(rb'"type":"tool_use","id":"([^"\\]+)"')
# The model calling a skill (the Skill tool): the turn's later requests are the
# skill's (OpenTelemetry's skill.name says so from the next request on).
_SKILL_CALL = b'"name":"Skill"'
_SKILL_NAME = re.compile(rb'"name":"Skill","input":\{[^{}]*?"skill":"([^"\\]{1,200})"')
_REQUEST_ID = re.compile(rb'"requestId":"([^"\\]+)"')


def prompt_command(line: bytes) -> str | None | bool:
    """For a transcript line: False when it starts no turn; else the turn's
    slash command, or None for a typed (or system) prompt."""
    head = line[:_HEAD]
    if (_USER_ROLE not in head or b'"tool_use_id"' in head or b'"tool_result"' in head
            or _META in line):
        return False
    if b'"content":"<command-' not in head and b'"text":"<command-' not in head:
        return None
    found = _COMMAND_NAME.search(line)
    return found.group(1).decode("utf-8", "replace") if found else None


class _Turn:
    """The command of the turn a main transcript's lines belong to, line by line:
    a prompt line sets it (None for a typed prompt); a Skill tool call sets it
    for the turn's requests after the one that made the call."""

    __slots__ = ("command", "skill", "skill_request")

    def __init__(self) -> None:
        self.command: str | None = None
        self.skill: str | None = None
        self.skill_request: str | None = None

    def other_line(self, line: bytes) -> None:
        """A line without usage: a prompt line starts a turn."""
        if line.find(_USER_ROLE, 0, _HEAD) >= 0 and not line.startswith(_BOOKKEEPING):
            turn = prompt_command(line)
            if turn is not False:
                self.command = turn if isinstance(turn, str) else None
                self.skill = None

    def request(self, line: bytes, request_id: str | None) -> str | None:
        """The command of the request on this assistant line."""
        if self.skill is not None and request_id != self.skill_request:
            self.command, self.skill = self.skill, None
        command = self.command
        if _SKILL_CALL in line:
            found = _SKILL_NAME.search(line)
            if found:
                self.skill = found.group(1).decode("utf-8", "replace")
                self.skill_request = request_id
        return command


def _subagent_file(path: Path) -> bool:
    return path.parent.name == "subagents"


_launches: dict[tuple[str, int, int], dict[str, str | None]] = {}


def _launch_commands(session_file: Path) -> dict[str, str | None]:
    """tool_use id -> the command of the turn it was made in, over one main
    transcript (memoised by path, size and mtime: a subagent file asks for its
    session's, and a session may have many)."""
    try:
        st = session_file.stat()
    except OSError:
        return {}
    key = (str(session_file), st.st_size, st.st_mtime_ns)
    found = _launches.get(key)
    if found is not None:
        return found
    found = {}
    turn = _Turn()
    try:
        with open(session_file, "rb") as fh:
            for line in fh:
                if line.find(b'"role":"assistant"', 0, _HEAD) < 0:
                    turn.other_line(line)
                elif b'"tool_use"' in line:
                    rid = _REQUEST_ID.search(line)
                    command = turn.request(line, rid.group(1).decode() if rid else None)
                    for tid in _TOOL_USE_ID.findall(line):
                        found[tid.decode("utf-8", "replace")] = command
    except OSError:
        return {}
    if len(_launches) > 256:
        _launches.clear()
    _launches[key] = found
    return found


def _subagent_context(path: Path) -> tuple[str | None, str | None]:
    """(agent type, command) of a ``<session>/subagents/agent-<id>.jsonl`` file,
    from its ``.meta.json`` and its session's main file."""
    try:
        meta = json.loads(path.with_name(path.stem + ".meta.json").read_bytes())
    except (OSError, ValueError, RecursionError):
        return None, None
    if not isinstance(meta, dict):
        return None, None
    agent = meta.get("agentType")
    tool_use = meta.get("toolUseId")
    command = None
    if isinstance(tool_use, str):
        command = _launch_commands(path.parent.parent.with_suffix(".jsonl")).get(tool_use)
    return (agent if isinstance(agent, str) and agent else None), command


def read_requests(files: Iterable[Path], into: dict[str, Request] | None = None,
                  max_bytes: int | None = None) -> dict[str, Request]:
    """request id -> its best :class:`Request`, over all ``files``.

    Unreadable files and lines are skipped. ``max_bytes`` bounds what is read
    from each file (its end is where a live session writes).
    """
    found: dict[str, Request] = {} if into is None else into
    for path in files:
        _read_file(path, found, max_bytes)
    return found


# A file is read in blocks of this size; a block's usage lines are decoded at
# once. Memory stays bounded for any file.
_BLOCK = 1 << 20


def _read_file(path: Path, found: dict[str, Request], max_bytes: int | None = None) -> None:
    """:func:`read_requests` of one file, into ``found``.

    Lines are found in blocks, by list comprehensions over the block's lines
    (usage lines, and in a session's file the lines that may start a turn);
    a block's usage lines are decoded in one call. Per line of
    bench/import_bench.py's transcripts, one busy core: finding the usage
    lines 2.6 us by a loop over the file's lines, 1.3 us this way.
    """
    main = not _subagent_file(path)
    sub_agent, command = (None, None) if main else _subagent_context(path)
    stem_session = path.stem if "agent-" not in path.stem else None
    turn = _Turn()
    decoder = _decoder()

    def take(lines: list[bytes], users: bool) -> None:
        """A block's lines: the turns they start, the requests they hold
        (``users``: whether any line holds the user's role)."""
        usage = [i for i, line in enumerate(lines)
                 if _USAGE_MARK in line and _ASSISTANT_MARK in line]
        # A line that starts a turn: not a usage line, the user's role in its head.
        turns = [i for i, line in enumerate(lines) if line.find(_USER_ROLE, 0, _HEAD) >= 0
                 and not line.startswith(_BOOKKEEPING)] if main and users else []
        if not usage:
            for i in turns:
                turn.other_line(lines[i])
            return
        usage_lines = [lines[i] for i in usage]
        at = 0  # the next of turns
        for i, req in zip(usage, decoder.parse_all(usage_lines)):
            while at < len(turns) and turns[at] < i:
                turn.other_line(lines[turns[at]])
                at += 1
            if at < len(turns) and turns[at] == i:
                at += 1  # a usage line: no turn
            if req is None:
                continue
            req.command = turn.request(lines[i], req.request_id) if main else command
            if req.agent == UNNAMED_AGENT and sub_agent is not None:
                req.agent = sub_agent
            if req.claude_session is None:
                req.claude_session = stem_session
            old = found.get(req.request_id)
            if old is None or req.better_than(old):
                found[req.request_id] = req
        for i in turns[at:]:
            turn.other_line(lines[i])

    try:
        fh = open(path, "rb", buffering=0)  # noqa: SIM115 - closed by the with below
    except OSError:
        return
    with fh:
        start: list[bytes] = []  # the start of a line a later block ends
        try:
            skip = False  # up to the first newline: a line read in part
            size = os.fstat(fh.fileno()).st_size
            at = 0
            if max_bytes is not None and size > max_bytes:
                at = fh.seek(size - max_bytes)
                skip = True
            # Reads of what the file holds (at most a block), then a small one
            # that finds its end (or what a live session added): a read of a
            # block allocates the whole block first, and mapping 1 MB for a
            # 50 kB file was a third of reading the generated transcripts.
            while block := fh.read(min(_BLOCK, size - at) if size > at else 1 << 16):
                at += len(block)
                if skip:
                    cut = block.find(b"\n")
                    if cut < 0:
                        continue
                    block, skip = block[cut + 1:], False
                lines = block.split(b"\n")
                if len(lines) == 1:  # a line longer than a block
                    start.append(block)
                    continue
                if start:
                    start.append(lines[0])
                    lines[0] = b"".join(start)
                    start.clear()
                # (one search of the block, or of a line it only ends)
                users = _USER_ROLE in block or _USER_ROLE in lines[0]
                if lines[-1]:
                    start.append(lines[-1])
                del lines[-1]
                take(lines, users)
        except OSError:
            return
        if start:
            take([b"".join(start)], True)


def to_record(req: Request, *, session: str | None = None,
              attribution: Mapping[str, Any] | None = None,
              host: str | None = None) -> UsageRecord:
    """One exact ``delta`` record. ``session`` defaults to the Claude session id;
    the wrapper passes its own run's id and attribution instead."""
    from claudewrap.store.records import UsageEvent

    event = UsageEvent(kind="delta", model=req.model, input_tokens=req.input_tokens,
                       output_tokens=req.output_tokens, cache_read_tokens=req.cache_read_tokens,
                       cache_write_tokens=req.cache_write_tokens, pattern="transcript",
                       request_id=req.request_id, claude_session=req.claude_session,
                       agent=req.agent, command=req.command)
    if attribution is None:
        attribution = {"host": host or socket.gethostname()}
        if req.cwd:
            from claudewrap.wrap.context import find_project

            attribution["cwd"] = req.cwd
            attribution["project"] = find_project(req.cwd)
    return UsageRecord.from_event(event, session=session or req.claude_session or "transcript",
                                  source=SOURCE, attribution=dict(attribution),
                                  ts=req.ts or utc_now_iso())


def record_line(req: Request, host: str | None, project: str | None) -> bytes:
    """``to_record(req, host=host).to_json()`` + newline, as UTF-8, built without
    the record (tests/test_transcripts.py holds them equal): the record's fields
    in the record's order, None left out as UsageRecord.to_dict does; counts are
    plausible (parse_line checked them) and there is no cost to check.

    Its gain (bench/import_bench.py's transcripts, per record, on a busy machine):
    80 us for to_record + to_json; 15 us for a dict and json.dumps; 4 us for a
    msgspec struct of the record's fields (:func:`_struct_line`: 8 us in the
    run that timed this at 2.5 us), the same bytes from the encoded parts (the
    names, models and folders that repeat encoded once).
    """
    p = _parts()
    cwd = req.cwd or None
    try:
        return b"".join((
            b'{"ts":', p.quote(req.ts or utc_now_iso()),
            p.session[req.claude_session or "transcript"],
            b',"source":"transcript","kind":"delta"',
            b"" if req.model is None else p.model[req.model],
            _COUNTS % (req.input_tokens, req.output_tokens, req.cache_read_tokens,
                       req.cache_write_tokens),
            b"" if cwd is None or project is None else p.project[project],
            b"" if cwd is None else p.cwd[cwd],
            b"" if host is None else p.host[host],
            b',"pattern":"transcript","request_id":', p.quote(req.request_id),
            b"" if req.claude_session is None else p.claude_session[req.claude_session],
            b"" if req.agent is None else p.agent[req.agent],
            b"" if req.command is None else p.command[req.command],
            _END))
    except UnicodeEncodeError:  # a lone surrogate (a cwd that is not UTF-8)
        return _struct_line(req, host, project)


_COUNTS = (b',"input_tokens":%d,"output_tokens":%d,"cache_read_tokens":%d,'
           b'"cache_write_tokens":%d,"cost_estimated":false,"approximate":false')
_END = b',"v":%d}\n' % SCHEMA_VERSION


class _Part(dict[str, bytes]):
    """value -> ``,"name":<value as JSON>``, encoded when first asked (at most
    _Part.MAX kept: memory does not grow with the number of sessions)."""

    MAX = 4096

    def __init__(self, name: str, quote: Callable[[str], bytes]) -> None:
        super().__init__()
        self.prefix = b',"' + name.encode() + b'":'
        self.quote = quote

    def __missing__(self, value: str) -> bytes:
        if len(self) >= self.MAX:
            self.clear()
        part = self[value] = self.prefix + self.quote(value)
        return part


class _Parts:
    def __init__(self) -> None:
        # The encoder msgspec structs are written with: the same bytes as
        # json.dumps(ensure_ascii=False, separators=(",", ":")) (see _line_type).
        self.quote: Callable[[str], bytes] = msgspec.json.Encoder().encode
        self.session, self.model, self.project, self.cwd, self.host, self.claude_session, \
            self.agent, self.command = (_Part(name, self.quote) for name in (
                "session", "model", "project", "cwd", "host", "claude_session", "agent",
                "command"))


@functools.cache
def _parts() -> _Parts:
    return _Parts()


def _struct_line(req: Request, host: str | None, project: str | None) -> bytes:
    """:func:`record_line` through a msgspec struct of the record's fields (and
    json.dumps with backslashreplace for a lone surrogate, as _encode does)."""
    make, encode = _line_type()
    cwd = req.cwd or None
    rec = make(ts=req.ts or utc_now_iso(), session=req.claude_session or "transcript",
               source=SOURCE, kind="delta", model=req.model, input_tokens=req.input_tokens,
               output_tokens=req.output_tokens, cache_read_tokens=req.cache_read_tokens,
               cache_write_tokens=req.cache_write_tokens, cost_estimated=False,
               approximate=False, project=project if cwd else None, cwd=cwd, host=host,
               pattern="transcript", request_id=req.request_id,
               claude_session=req.claude_session, agent=req.agent, command=req.command,
               v=SCHEMA_VERSION)
    try:
        return encode(rec) + b"\n"
    except UnicodeEncodeError:
        obj = {k: getattr(rec, k) for k in rec.__struct_fields__ if getattr(rec, k) is not None}
        line = json.dumps(obj, ensure_ascii=False, separators=(",", ":"), allow_nan=False)
        return (line + "\n").encode("utf-8", "backslashreplace")


@functools.cache
def _line_type() -> tuple[Any, Callable[[Any], bytes]]:
    """A msgspec struct of a transcript record's fields (omitted when None) and
    its encoder. msgspec writes the same bytes as ``json.dumps(obj,
    ensure_ascii=False, separators=(",", ":"))`` for every code point but lone
    surrogates (checked over all of them), where it raises UnicodeEncodeError."""
    text = str | None
    fields: list[tuple[str, Any] | tuple[str, Any, Any]] = [("ts", str), ("session", str), ("source", str), ("kind", str),
              ("model", text, None), ("input_tokens", int), ("output_tokens", int),
              ("cache_read_tokens", int), ("cache_write_tokens", int),
              ("cost_estimated", bool), ("approximate", bool), ("project", text, None),
              ("cwd", text, None), ("host", text, None), ("pattern", str),
              ("request_id", str), ("claude_session", text, None), ("agent", text, None),
              ("command", text, None), ("v", int)]
    line = msgspec.defstruct("TranscriptRecord", fields, kw_only=True, omit_defaults=True)
    return line, msgspec.json.Encoder().encode


def known_request_ids(journal: Path) -> set[str]:
    """Request ids the journal already has from an exact source.

    Only lines that name a request id are decoded, and only the fields asked
    here (a line of another shape goes through the journal's own reader).
    """
    from claudewrap.store.files import open_regular
    from claudewrap.store.journal import parse_line, read_error

    # defstruct: see _Decoder.
    shape = msgspec.defstruct("Ids", [("ts", str), ("session", str),
                                      ("source", str, "pty"),
                                      ("request_id", str | None, None)])
    decode = msgspec.json.Decoder(shape).decode
    exact = frozenset(EXACT_SOURCES)
    found: set[str] = set()
    try:
        f = os.fdopen(open_regular(journal, os.O_RDONLY), "rb")
    except (FileNotFoundError, NotADirectoryError):
        return found
    except OSError as exc:
        raise read_error(journal, exc) from None
    with f:
        try:
            for line in f:
                if b'"request_id"' not in line:
                    continue
                try:
                    rec: Any = decode(line)
                except msgspec.DecodeError:
                    rec = parse_line(line)
                    if rec is None:
                        continue
                if rec.request_id and rec.source in exact:
                    found.add(rec.request_id)
        except OSError as exc:
            raise read_error(journal, exc) from None
    return found


@dataclass
class ImportResult:
    files: int = 0
    requests: int = 0
    added: int = 0


# Records written at once: a few MB per write, few lock round trips.
IMPORT_BATCH = 20_000


# From this many files on, worker processes read and encode them (one per
# core, at most 4) while this one dedupes and writes. Gain on 2 busy cores:
# bench/import_bench.py's 200,000 requests in-process, import 3.7-4.7 -> 3.0-3.1 s,
# re-import 3.3-3.7 -> 2.9-3.1 s; 912,603 requests, the command: 15.3 -> 12.8 s.
PARALLEL_FILES = 64


@functools.cache
def _project_of(cwd: str) -> str:
    from claudewrap.wrap.context import find_project

    return find_project(cwd)  # looks at the disk: once per cwd and process


# What one transcript file gives the import: its requests' ids, their times
# and their journal lines, one joined bytes object (each line ends with a
# newline and holds no other). Three objects to pass back from a worker, not
# three per request: the main process' share of an import (unpickling, dedup)
# went from ~7 to ~3 us a request.
_FileLines = tuple[list[str], list[str], bytes]


def _file_lines(path: Path, host: str) -> _FileLines:
    """(request ids, times, journal lines) of the requests of one transcript file."""
    found: dict[str, Request] = {}
    _read_file(path, found)
    times = []
    lines = []
    for req in found.values():
        if req.ts is None:
            req.ts = utc_now_iso()
        times.append(req.ts)
        lines.append(record_line(req, host, _project_of(req.cwd) if req.cwd else None))
    return list(found), times, b"".join(lines)


# Files a worker reads per message to the main process.
_CHUNK_FILES = 16


def _read_files(files: list[Path], host: str) -> Iterator[_FileLines]:
    """:func:`_file_lines` of each file, in order; by worker processes for many files.

    Worker k reads chunks k, k + n, k + 2n, ... of _CHUNK_FILES files and sends
    each chunk's results down its own pipe; this process takes them in turn.
    No pool: its threads here (tasks, results, workers) cost this process
    0.45-0.9 s of CPU per 200,000 requests beside 0.03 s for the plain pipes,
    and a full pipe holds a worker back (memory stays bounded).
    """
    try:
        cores = len(os.sched_getaffinity(0))
    except (AttributeError, OSError):
        cores = os.cpu_count() or 1
    if len(files) < PARALLEL_FILES or cores < 2:
        for path in files:
            yield _file_lines(path, host)
        return
    import multiprocessing
    import pickle

    chunks = [files[i:i + _CHUNK_FILES] for i in range(0, len(files), _CHUNK_FILES)]
    n = min(cores, 4)
    workers = []
    done = False
    try:
        for k in range(n):
            ours, theirs = multiprocessing.Pipe(duplex=False)
            proc = multiprocessing.Process(target=_worker, args=(theirs, chunks[k::n], host),
                                           daemon=True)
            proc.start()
            theirs.close()
            workers.append((proc, ours))
        for i, chunk in enumerate(chunks):
            proc, conn = workers[i % n]
            try:
                found: list[_FileLines] = pickle.loads(conn.recv_bytes())
            except (EOFError, OSError):  # the worker died: this process reads its chunk
                found = [_file_lines(path, host) for path in chunk]
            yield from found
        done = True
    finally:
        for proc, conn in workers:
            if not done:  # stopped early: the workers' work is not wanted
                proc.kill()
            proc.join(timeout=10)
            if proc.is_alive():
                proc.kill()
                proc.join()
            conn.close()


def _worker(conn: Any, chunks: list[list[Path]], host: str) -> None:
    """A worker of :func:`_read_files`."""
    import pickle

    with conn:
        for chunk in chunks:
            conn.send_bytes(pickle.dumps([_file_lines(path, host) for path in chunk],
                                         protocol=pickle.HIGHEST_PROTOCOL))


def _main_files_first(files: Iterable[Path]) -> list[Path]:
    """Sessions before subagents (``agent-*``), each in path order: a request a
    subagent file replays was then already taken from its main thread."""
    return sorted(files, key=lambda f: f.stem.startswith("agent-"))


def import_paths(paths: Iterable[Path], journal: Path, *, since: float | None = None,
                 dry_run: bool = False) -> ImportResult:
    """Add the usage of the transcripts under ``paths`` to ``journal``.

    Idempotent: a request the journal already has from an exact source is
    skipped. ``since`` (epoch seconds) skips files last modified before it and
    requests made before it. Raises JournalError when the journal cannot be
    read or written.

    Streams: one file at a time, records written in batches of IMPORT_BATCH;
    what is kept across files is one set of request ids (the journal's and
    those taken), so memory does not grow with the transcripts' size.
    """
    from claudewrap.store.journal import append_lines

    cutoff = None if since is None else iso_of_epoch(since)
    have = known_request_ids(journal)  # in the journal already
    taken: set[str] = set()  # seen in a transcript of this import
    host = socket.gethostname()
    result = ImportResult()
    times: list[str] = []  # of the lines to write
    lines: list[bytes] = []

    def flush() -> None:
        order = sorted(range(len(times)), key=times.__getitem__)  # stable: file order in a tie
        result.added += len(order)
        if not dry_run:
            append_lines(journal, [lines[i] for i in order])
        times.clear()
        lines.clear()

    for rids, stamps, blob in _read_files(_main_files_first(transcript_files(paths, since)),
                                          host):
        result.files += 1
        # (JSON has no raw line break but the newline after each line)
        file_lines = blob.splitlines(keepends=True)
        fresh = set(rids)
        if cutoff is None and taken.isdisjoint(fresh) and have.isdisjoint(fresh):
            # The usual file: all its requests new (the same, one by one, below).
            taken |= fresh
            result.requests += len(rids)
            times += stamps
            lines += file_lines
        else:
            for rid, ts, line in zip(rids, stamps, file_lines):
                if rid in taken:
                    continue  # a replay, or a copy in a resumed session's file
                taken.add(rid)
                result.requests += 1
                if rid in have:
                    have.discard(rid)  # one set holds it: memory for each id once
                    continue
                if cutoff is not None and ts < cutoff:
                    continue
                times.append(ts)
                lines.append(line)
        if len(times) >= IMPORT_BATCH:
            flush()
    if times:
        flush()
    return result


def reconcile(*, session: str, attribution: Mapping[str, Any] | None, journal: str | None,
              claude_sessions: Iterable[str], known_request_ids: Iterable[str],
              started: float, env: Mapping[str, str] | None = None,
              cwd: str | None = None, files: list[Path] | None = None) -> str | None:
    """End of a wrapped run: add the requests of its transcript(s) made during
    the run that no other exact source of this run recorded.

    ``files``: the run's transcripts when the caller already looked them up
    (:func:`claudewrap.sources.claude_dirs.run_transcripts`). Bounded: at most
    claude_dirs.MAX_FILES files, the last RECONCILE_MAX_BYTES of each. Returns
    one warning line or None; never raises for a bad file.
    """
    from claudewrap.store.journal import JournalWriter, resolve_path

    if files is None:
        files = claude_dirs.run_transcripts(claude_sessions, started, env=env, cwd=cwd)
    if not files:
        return None
    found = read_requests(files, max_bytes=RECONCILE_MAX_BYTES)
    known = set(known_request_ids)
    # A resumed session's transcript holds earlier runs' requests too.
    cutoff = iso_of_epoch(started - 5)
    new = [to_record(r, session=session, attribution=attribution or {})
           for k, r in found.items()
           if k not in known and (r.ts is None or r.ts >= cutoff)]
    if not new:
        return None
    new.sort(key=lambda rec: rec.ts)
    writer = JournalWriter(resolve_path(journal))
    writer.append(new)
    return writer.close()


