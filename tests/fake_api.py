"""A fake Anthropic Messages API on 127.0.0.1 for driving the real Claude Code CLI.

`POST /v1/messages` (any query string, e.g. ``?beta=true``) answers as JSON or,
when the request says ``"stream": true``, as an SSE stream shaped like the real
one: ``message_start`` (usage with input and cache counts, output 1),
``content_block_start``/``ping``/``content_block_delta``/``content_block_stop``,
``message_delta`` with the final ``output_tokens``, ``message_stop``. Each test
chooses the usage numbers (one :class:`Usage` for every call, or a queue used
in order). Every request is logged; ``answers`` lists what each messages call
reported, so a test can sum exactly what Claude Code was told. Each answer has
a request id and a message id of its own, never seen before.

An answer can be a tool call instead of text (``Usage(tool="Agent",
tool_input={...})``): the content is one ``tool_use`` block and the stop reason
``tool_use``, so Claude Code runs the tool (a subagent, for ``Agent``) and
calls again with the result. :func:`tool_results` and :func:`text_of` help a
``chooser`` tell the calls apart.

Other paths: ``count_tokens`` gives a number, a few start-up GETs get an empty
but well-formed answer, anything else a 404 in the API's error shape.

Run it by hand to watch what the CLI asks for: ``python tests/fake_api.py``.
"""

from __future__ import annotations

import json
import secrets
import threading
from collections import deque
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any


@dataclass(frozen=True)
class Usage:
    """What one messages call reports."""

    input_tokens: int = 11
    output_tokens: int = 7
    cache_read_tokens: int = 0
    cache_write_tokens: int = 0
    text: str = "pong"
    # A tool call instead of the text (stop_reason "tool_use").
    tool: str | None = None
    tool_input: Any = field(default=None, compare=False, hash=False)

    def content(self, block_id: str) -> list[dict[str, Any]]:
        if self.tool is None:
            return [{"type": "text", "text": self.text}]
        return [{"type": "tool_use", "id": f"toolu_{block_id}", "name": self.tool,
                 "input": dict(self.tool_input or {})}]

    @property
    def stop_reason(self) -> str:
        return "end_turn" if self.tool is None else "tool_use"

    def as_api(self, output_tokens: int | None = None) -> dict[str, Any]:
        return {
            "input_tokens": self.input_tokens,
            "cache_creation_input_tokens": self.cache_write_tokens,
            "cache_read_input_tokens": self.cache_read_tokens,
            "output_tokens": self.output_tokens if output_tokens is None else output_tokens,
        }


@dataclass
class Answer:
    """One messages call as the fake API answered it."""

    request_id: str
    message_id: str
    model: str
    usage: Usage
    stream: bool
    # The request's JSON body: what a test classifies an answer by (requests made
    # at once, a background subagent's and the main thread's, are logged in any order).
    body: Any = field(default=None, repr=False, compare=False)


@dataclass
class Logged:
    method: str
    path: str
    headers: dict[str, str]
    body: Any


@dataclass
class FakeAnthropic:
    """The server: ``api = FakeAnthropic(usage=...).start()``, ``api.url``, ``api.stop()``."""

    usage: Usage = field(default_factory=Usage)
    queue: deque[Usage] = field(default_factory=deque)
    requests: list[Logged] = field(default_factory=list)
    answers: list[Answer] = field(default_factory=list)
    # A callable that picks the usage from the request body overrides both.
    chooser: Any = None

    def __post_init__(self) -> None:
        self._lock = threading.Lock()
        self._server: ThreadingHTTPServer | None = None
        self._thread: threading.Thread | None = None

    # -- life cycle --------------------------------------------------------

    def start(self) -> FakeAnthropic:
        api = self

        class Handler(_Handler):
            fake = api

        self._server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self._server.daemon_threads = True
        self._thread = threading.Thread(target=self._server.serve_forever,
                                        name="fake-anthropic", daemon=True)
        self._thread.start()
        return self

    def stop(self) -> None:
        if self._server is not None:
            self._server.shutdown()
            self._server.server_close()
            self._server = None

    @property
    def url(self) -> str:
        assert self._server is not None, "start() first"
        return f"http://127.0.0.1:{self._server.server_address[1]}"

    # -- what happened -----------------------------------------------------

    def message_calls(self) -> list[Logged]:
        return [r for r in self.requests
                if r.method == "POST" and r.path.split("?")[0] == "/v1/messages"]

    def totals(self) -> dict[str, dict[str, int]]:
        """model -> summed usage of every messages call answered so far."""
        out: dict[str, dict[str, int]] = {}
        with self._lock:
            answers = list(self.answers)
        for a in answers:
            t = out.setdefault(a.model, {"input_tokens": 0, "output_tokens": 0,
                                         "cache_read_tokens": 0, "cache_write_tokens": 0})
            t["input_tokens"] += a.usage.input_tokens
            t["output_tokens"] += a.usage.output_tokens
            t["cache_read_tokens"] += a.usage.cache_read_tokens
            t["cache_write_tokens"] += a.usage.cache_write_tokens
        return out

    def paths(self) -> list[str]:
        return [f"{r.method} {r.path}" for r in self.requests]

    # -- used by the handler -----------------------------------------------

    def _log(self, entry: Logged) -> None:
        with self._lock:
            self.requests.append(entry)

    def _next_answer(self, body: dict[str, Any]) -> Answer:
        with self._lock:
            if self.chooser is not None:
                usage = self.chooser(body)
            elif self.queue:
                usage = self.queue.popleft()
            else:
                usage = self.usage
            # Fresh ids per answer, across servers and runs too, as the real API
            # gives: ids that repeat would hide a request counted twice or dropped.
            n = len(self.answers) + 1
            tag = secrets.token_hex(6)
            answer = Answer(request_id=f"req_fake{n:04d}{tag}", message_id=f"msg_fake{n:04d}{tag}",
                            model=str(body.get("model") or "claude-sonnet-4-5"),
                            usage=usage, stream=bool(body.get("stream")), body=body)
            self.answers.append(answer)
        return answer


def text_of(body: Any) -> str:
    """Every text of a messages call's ``messages`` (user turns, tool results,
    system reminders), joined: what a ``chooser`` looks at."""
    out: list[str] = []

    def walk(value: Any) -> None:
        if isinstance(value, str):
            out.append(value)
        elif isinstance(value, list):
            for v in value:
                walk(v)
        elif isinstance(value, dict):
            for k in ("text", "content"):
                if k in value:
                    walk(value[k])

    walk(body.get("messages") if isinstance(body, dict) else None)
    return "\n".join(out)


def tool_results(body: Any) -> list[str]:
    """The ``tool_use_id`` of each ``tool_result`` a messages call sends back."""
    found = []
    for m in (body.get("messages") or []) if isinstance(body, dict) else []:
        content = m.get("content") if isinstance(m, dict) else None
        for block in content if isinstance(content, list) else []:
            if isinstance(block, dict) and block.get("type") == "tool_result":
                found.append(str(block.get("tool_use_id")))
    return found


class _Handler(BaseHTTPRequestHandler):
    fake: FakeAnthropic
    protocol_version = "HTTP/1.1"

    def log_message(self, format: str, *args: Any) -> None:
        pass

    def _body(self) -> Any:
        length = int(self.headers.get("Content-Length") or 0)
        raw = self.rfile.read(length) if length else b""
        if not raw:
            return None
        try:
            return json.loads(raw)
        except ValueError:
            return raw.decode("utf-8", "replace")

    def _log(self, body: Any) -> None:
        keep = {k.lower(): v for k, v in self.headers.items()
                if k.lower() in ("anthropic-beta", "anthropic-version", "user-agent",
                                 "x-api-key", "authorization", "x-app")}
        self.fake._log(Logged(self.command, self.path, keep, body))

    def _send_json(self, status: int, obj: Any, headers: dict[str, str] | None = None) -> None:
        data = json.dumps(obj).encode()
        self.send_response(status)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(data)))
        for k, v in (headers or {}).items():
            self.send_header(k, v)
        self.end_headers()
        self.wfile.write(data)

    def _not_found(self) -> None:
        self._send_json(404, {"type": "error", "error": {
            "type": "not_found_error", "message": f"fake API: no {self.command} {self.path}"}})

    def do_GET(self) -> None:
        self._log(None)
        path = self.path.split("?")[0]
        if path == "/v1/models":
            self._send_json(200, {"data": [], "has_more": False, "first_id": None,
                                  "last_id": None})
        elif path in ("/", "/health"):
            self._send_json(200, {"ok": True})
        else:
            self._not_found()

    def do_HEAD(self) -> None:
        self._log(None)
        self.send_response(200)
        self.send_header("Content-Length", "0")
        self.end_headers()

    def do_POST(self) -> None:
        body = self._body()
        self._log(body)
        path = self.path.split("?")[0]
        if path == "/v1/messages" and isinstance(body, dict):
            self._messages(body)
        elif path == "/v1/messages/count_tokens" and isinstance(body, dict):
            self._send_json(200, {"input_tokens": 42})
        else:
            self._not_found()

    def _messages(self, body: dict[str, Any]) -> None:
        a = self.fake._next_answer(body)
        headers = {"request-id": a.request_id, "anthropic-organization-id": "fake-org"}
        message = {"id": a.message_id, "type": "message", "role": "assistant",
                   "model": a.model, "stop_sequence": None}
        if not a.stream:
            self._send_json(200, {**message, "content": a.usage.content(a.message_id),
                                  "stop_reason": a.usage.stop_reason,
                                  "usage": a.usage.as_api()},
                            headers)
            return
        events: list[tuple[str, dict[str, Any]]] = [
            ("message_start", {"type": "message_start", "message": {
                **message, "content": [], "stop_reason": None,
                "usage": a.usage.as_api(output_tokens=1)}}),
        ]
        if a.usage.tool is None:
            events += [
                ("content_block_start", {"type": "content_block_start", "index": 0,
                                         "content_block": {"type": "text", "text": ""}}),
                ("ping", {"type": "ping"}),
            ]
            text = a.usage.text
            for piece in (text[: len(text) // 2], text[len(text) // 2:]):
                if piece:
                    events.append(("content_block_delta", {
                        "type": "content_block_delta", "index": 0,
                        "delta": {"type": "text_delta", "text": piece}}))
        else:
            (block,) = a.usage.content(a.message_id)
            events += [
                ("content_block_start", {"type": "content_block_start", "index": 0,
                                         "content_block": {**block, "input": {}}}),
                ("ping", {"type": "ping"}),
                ("content_block_delta", {"type": "content_block_delta", "index": 0, "delta": {
                    "type": "input_json_delta", "partial_json": json.dumps(block["input"])}}),
            ]
        events += [
            ("content_block_stop", {"type": "content_block_stop", "index": 0}),
            ("message_delta", {"type": "message_delta",
                               "delta": {"stop_reason": a.usage.stop_reason,
                                         "stop_sequence": None},
                               "usage": {"output_tokens": a.usage.output_tokens}}),
            ("message_stop", {"type": "message_stop"}),
        ]
        self.send_response(200)
        self.send_header("Content-Type", "text/event-stream")
        self.send_header("Cache-Control", "no-cache")
        self.send_header("Transfer-Encoding", "chunked")
        for k, v in headers.items():
            self.send_header(k, v)
        self.end_headers()
        for name, data in events:
            chunk = f"event: {name}\ndata: {json.dumps(data)}\n\n".encode()
            self.wfile.write(f"{len(chunk):x}\r\n".encode() + chunk + b"\r\n")
            self.wfile.flush()
        self.wfile.write(b"0\r\n\r\n")


if __name__ == "__main__":
    import time

    server = FakeAnthropic().start()
    if True:
        print(server.url, flush=True)
        seen = 0
        try:
            while True:
                time.sleep(0.5)
                for r in server.requests[seen:]:
                    print(r.method, r.path, flush=True)
                seen = len(server.requests)
        except KeyboardInterrupt:
            pass
