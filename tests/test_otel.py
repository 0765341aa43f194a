"""The OpenTelemetry receiver: OTLP/HTTP JSON in, exact usage records out.

Payloads below are shaped like what Claude Code 2.1.197 sends (captured from
the real CLI against the fake API, trimmed); tests/test_claude_code.py drives
the real CLI end to end.
"""

from __future__ import annotations

import gzip
import http.client
import json
import socket
import subprocess
import threading
import time
from pathlib import Path
from typing import Any

import pytest
from conftest import CW

from claudewrap.sources import otel
from claudewrap.store.journal import read_records


def _attr(key: str, value: Any) -> dict[str, Any]:
    if isinstance(value, bool):
        v: dict[str, Any] = {"boolValue": value}
    elif isinstance(value, int):
        v = {"intValue": value}
    elif isinstance(value, float):
        v = {"doubleValue": value}
    else:
        v = {"stringValue": value}
    return {"key": key, "value": v}


def api_request(rid: str | None, *, session: str = "sess-1", model: str = "claude-opus-4-8",
                tokens: tuple[int, int, int, int] = (1234, 567, 8901, 2345),
                cost: float = 0.03945175, seq: int = 1, int_as_str: bool = False
                ) -> dict[str, Any]:
    attrs = [
        _attr("user.id", "u" * 64), _attr("session.id", session),
        _attr("event.name", "api_request"), _attr("event.timestamp", "2026-07-01T10:00:00.123Z"),
        _attr("event.sequence", seq), _attr("prompt.id", "p-1"), _attr("model", model),
        _attr("input_tokens", tokens[0]), _attr("output_tokens", tokens[1]),
        _attr("cache_read_tokens", tokens[2]), _attr("cache_creation_tokens", tokens[3]),
        _attr("cost_usd", cost), _attr("duration_ms", 18), _attr("query_source", "sdk"),
    ]
    if rid is not None:
        attrs.append(_attr("request_id", rid))
    if int_as_str:  # proto3 JSON may write int64 as a string
        for a in attrs:
            if "intValue" in a["value"]:
                a["value"]["intValue"] = str(a["value"]["intValue"])
    return {"timeUnixNano": "1782900000123000000",
            "body": {"stringValue": "claude_code.api_request"}, "attributes": attrs}


def other_event(name: str, **extra: Any) -> dict[str, Any]:
    return {"timeUnixNano": "1782900000000000000", "body": {"stringValue": f"claude_code.{name}"},
            "attributes": [_attr("event.name", name), _attr("session.id", "sess-1"),
                           *(_attr(k, v) for k, v in extra.items())]}


def logs(*records: dict[str, Any]) -> dict[str, Any]:
    return {"resourceLogs": [{"resource": {"attributes": [_attr("service.name", "claude-code")]},
                              "scopeLogs": [{"scope": {"name": "com.anthropic.claude_code.events"},
                                             "logRecords": list(records)}]}]}


def metrics(session: str, model: str, values: dict[str, float], cost: float,
            temporality: int = 1) -> dict[str, Any]:
    def point(value: float, *extra: dict[str, Any]) -> dict[str, Any]:
        return {"attributes": [_attr("session.id", session), _attr("model", model), *extra],
                "startTimeUnixNano": "1", "timeUnixNano": "2", "asDouble": value}

    return {"resourceMetrics": [{"scopeMetrics": [{"metrics": [
        {"name": "claude_code.cost.usage", "unit": "USD",
         "sum": {"aggregationTemporality": temporality, "isMonotonic": True,
                 "dataPoints": [point(cost)]}},
        {"name": "claude_code.token.usage", "unit": "tokens",
         "sum": {"aggregationTemporality": temporality, "isMonotonic": True,
                 "dataPoints": [point(v, _attr("type", t)) for t, v in values.items()]}},
        {"name": "claude_code.session.count", "sum": {"dataPoints": [{"asDouble": 1}]}},
    ]}]}]}


def post(receiver: otel.Receiver, path: str, body: bytes, headers: dict[str, str] | None = None,
         chunked: bool = False) -> int:
    conn = http.client.HTTPConnection("127.0.0.1", receiver.port, timeout=5)
    hdrs = {"Content-Type": "application/json", **(headers or {})}
    if chunked:
        conn.request("POST", path, body=iter([body[:10], body[10:]]), headers=hdrs,
                     encode_chunked=True)
    else:
        conn.request("POST", path, body=body, headers=hdrs)
    resp = conn.getresponse()
    resp.read()
    conn.close()
    return resp.status


def endpoint_path(receiver: otel.Receiver, signal: str) -> str:
    return receiver.endpoint.split(str(receiver.port), 1)[1] + signal


# -------------------------------------------------------------------- parsing


def test_api_request_event_becomes_exact_delta_without_text() -> None:
    payload = logs(other_event("user_prompt", prompt="<REDACTED>", prompt_length="2"),
                   api_request("req_1", model="claude-opus-4-8[1m]"),
                   other_event("assistant_response", response="secret words"))
    found = otel.parse_logs(payload)
    assert len(found) == 1
    e = found[0].event
    assert (e.kind, e.model, e.request_id, e.claude_session) == (
        "delta", "claude-opus-4-8", "req_1", "sess-1")
    assert (e.input_tokens, e.output_tokens, e.cache_read_tokens, e.cache_write_tokens) == (
        1234, 567, 8901, 2345)
    assert e.cost_usd == 0.03945175
    assert found[0].ts == "2026-07-01T10:00:00.123Z"


def test_int64_attributes_sent_as_strings_are_read() -> None:
    e = otel.parse_logs(logs(api_request("req_1", int_as_str=True)))[0].event
    assert (e.input_tokens, e.output_tokens) == (1234, 567)


def test_garbage_payloads_yield_nothing() -> None:
    payloads: list[Any] = [None, [], {"resourceLogs": "x"},
                           {"resourceLogs": [{"scopeLogs": [1]}]}, logs({"attributes": "nope"})]
    for payload in payloads:
        assert otel.parse_logs(payload) == []
        assert otel.parse_metrics(payload) == []


def test_metrics_cover_only_what_events_missed() -> None:
    events, tally = otel.Tally(), otel.Tally()
    for p in otel.parse_metrics(metrics("s1", "claude-opus-4-8[1m]",
                                        {"input": 300, "output": 30, "cacheRead": 3,
                                         "cacheCreation": 0}, 0.3)):
        tally.add_point(p)
    # The events saw one request of 100/10/1 for $0.1: 200/20/2 and $0.2 are missing.
    for i, v in enumerate((100, 10, 1, 0, 0.1)):
        events.add(("s1", "claude-opus-4-8"), i, v)
    (extra,) = otel.missing_usage(events, tally)
    assert (extra.model, extra.input_tokens, extra.output_tokens, extra.cache_read_tokens) == (
        "claude-opus-4-8", 200, 20, 2)
    assert abs((extra.cost_usd or 0) - 0.2) < 1e-9 and extra.request_id is None
    # Everything covered (even under another model name): nothing.
    events.add(("s1", "claude-opus-4-8-20260101"), 0, 200)
    events.add(("s1", "claude-opus-4-8-20260101"), 1, 20)
    events.add(("s1", "claude-opus-4-8-20260101"), 2, 2)
    events.add(("s1", "claude-opus-4-8-20260101"), 4, 0.2)
    assert otel.missing_usage(events, tally) == []


def test_cumulative_metrics_count_their_newest_value() -> None:
    tally = otel.Tally()
    for total in (10, 25, 40):
        for p in otel.parse_metrics(metrics("s1", "m", {"input": total}, 0.0, temporality=2)):
            tally.add_point(p)
    assert tally.totals()[("s1", "m")][0] == 40


# -------------------------------------------------------------------- receiving


def test_receiver_writes_records_for_chunked_gzip_and_plain_bodies(tmp_path: Path) -> None:
    journal = tmp_path / "j.jsonl"
    r = otel.Receiver(session="wrap1", journal=str(journal),
                      attribution={"project": "p", "tmux_pane": "%3"}).start()
    path = endpoint_path(r, "/v1/logs")
    assert post(r, path, json.dumps(logs(api_request("req_a"))).encode(), chunked=True) == 200
    assert post(r, path, gzip.compress(json.dumps(logs(api_request("req_b"))).encode()),
                {"Content-Encoding": "gzip"}) == 200
    assert post(r, path, json.dumps(logs(api_request("req_c", seq=3))).encode()) == 200
    # An export retried after a timeout repeats its events: counted once.
    assert post(r, path, json.dumps(logs(api_request("req_c", seq=3))).encode()) == 200
    assert r.close() is None
    recs = list(read_records(journal))
    assert [x.request_id for x in recs] == ["req_a", "req_b", "req_c"]
    assert {(x.source, x.kind, x.session, x.claude_session, x.project, x.tmux_pane)
            for x in recs} == {("otel", "delta", "wrap1", "sess-1", "p", "%3")}
    assert "REDACTED" not in journal.read_text()


def test_impossible_numbers_cost_only_their_own_event(tmp_path: Path) -> None:
    # Infinity, NaN and 1e400 in one export (JSON as Python reads it): the good
    # events of the same body are recorded, the receiver keeps answering.
    journal = tmp_path / "j.jsonl"
    r = otel.Receiver(session="w", journal=str(journal)).start()
    path = endpoint_path(r, "/v1/logs")
    body = json.dumps(logs(api_request("req_ok", seq=1),
                           api_request("req_inf", seq=2, tokens=(10**400, 1, 1, 1)),
                           api_request("req_nan", seq=3, cost=float("nan")),
                           api_request("req_ok2", seq=4))).encode()
    body = body.replace(str(10**400).encode(), b"Infinity")
    assert post(r, path, body) == 200
    assert post(r, path, json.dumps(logs(api_request("req_after", seq=5))).encode()) == 200
    r.close()
    lines = journal.read_text().splitlines()
    assert [json.loads(line)["request_id"] for line in lines] == ["req_ok", "req_ok2",
                                                                  "req_after"]
    assert all("Infinity" not in line and "NaN" not in line for line in lines)


def test_receiver_rejects_strangers_and_protobuf(tmp_path: Path) -> None:
    r = otel.Receiver(session="w", journal=str(tmp_path / "j.jsonl")).start()
    body = json.dumps(logs(api_request("req_x"))).encode()
    assert post(r, "/v1/logs", body) == 404  # no token in the path
    assert post(r, endpoint_path(r, "/v1/logs"), b"\x0a\x00",
                {"Content-Type": "application/x-protobuf"}) == 415
    assert post(r, endpoint_path(r, "/v1/logs"), b"{not json") == 400
    r.close()
    assert r.records == [] and not (tmp_path / "j.jsonl").exists()


@pytest.mark.parametrize("temporality", [1, 2], ids=["delta", "cumulative"])
def test_metrics_only_session_is_recorded_at_close(tmp_path: Path, temporality: int) -> None:
    journal = tmp_path / "j.jsonl"
    r = otel.Receiver(session="w", journal=str(journal)).start()
    body = json.dumps(metrics("s9", "claude-sonnet-4-6", {"input": 50, "output": 5,
                                                          "cacheRead": 0, "cacheCreation": 7},
                              0.01, temporality=temporality)).encode()
    assert post(r, endpoint_path(r, "/v1/metrics"), body) == 200
    assert list(read_records(journal)) == []  # not before the end: events may still come
    r.close()
    (rec,) = read_records(journal)
    assert (rec.source, rec.model, rec.input_tokens, rec.output_tokens, rec.cache_write_tokens,
            rec.cost_usd, rec.claude_session, rec.pattern) == (
        "otel", "claude-sonnet-4-6", 50, 5, 7, 0.01, "s9", "otel:metrics")


def test_close_waits_for_an_export_still_in_flight(tmp_path: Path) -> None:
    journal = tmp_path / "j.jsonl"
    r = otel.Receiver(session="w", journal=str(journal)).start()
    body = json.dumps(logs(api_request("req_late"))).encode()
    sock = socket.create_connection(("127.0.0.1", r.port))
    head = (f"POST {endpoint_path(r, '/v1/logs')} HTTP/1.1\r\nHost: x\r\n"
            f"Content-Type: application/json\r\nTransfer-Encoding: chunked\r\n\r\n").encode()
    sock.sendall(head)

    def finish() -> None:
        time.sleep(0.4)
        sock.sendall(f"{len(body):x}\r\n".encode() + body + b"\r\n0\r\n\r\n")
        sock.recv(1000)
        sock.close()

    t = threading.Thread(target=finish)
    t.start()
    started = time.monotonic()
    r.close()
    t.join()
    assert time.monotonic() - started < otel.CLOSE_GRACE_SECONDS + 0.5
    assert [x.request_id for x in read_records(journal)] == ["req_late"]


def test_close_serves_every_connection_made_before_it(tmp_path: Path) -> None:
    # close() no longer waits for a quiet spell after the last export: a
    # connection is counted before accept() takes it off the listening socket,
    # so one made before close() is served, and recorded, before close()
    # returns, wherever in accepting it close() comes.
    import random

    rng = random.Random(5)
    for n in range(40):
        journal = tmp_path / f"j{n}.jsonl"
        r = otel.Receiver(session="w", journal=str(journal)).start()
        time.sleep(otel._SERVER_AFTER_SECONDS + 0.02)  # the server is made
        body = json.dumps(logs(api_request(f"req_{n}"))).encode()
        request = (f"POST {endpoint_path(r, '/v1/logs')} HTTP/1.1\r\nHost: x\r\n"
                   f"Content-Type: application/json\r\nContent-Length: {len(body)}\r\n"
                   f"Connection: close\r\n\r\n").encode() + body
        sock = socket.create_connection(("127.0.0.1", r.port))
        answer: list[bytes] = []

        def export(sock: socket.socket = sock, request: bytes = request,
                   answer: list[bytes] = answer, wait: float = rng.random() * 0.004) -> None:
            time.sleep(wait)
            sock.sendall(request)
            answer.append(sock.recv(1000))
            sock.close()

        t = threading.Thread(target=export)
        t.start()
        time.sleep(rng.random() * 0.004)
        r.close()
        recorded = [x.request_id for x in read_records(journal)] if journal.exists() else []
        t.join(10)
        assert recorded == [f"req_{n}"], n
        assert answer and answer[0].startswith(b"HTTP/1.1 200"), (n, answer)


def test_a_child_that_ends_at_once_costs_no_http_server(env: dict[str, str]) -> None:
    # The server's modules load 100 ms after the child started (or at its first
    # connection): a `claude` that ends sooner never pays for them.
    code = ("import sys, time, claudewrap.sources.otel as o\n"
            "r = o.Receiver(session='s', journal=None).start(); r.close()\n"
            "time.sleep(0.2)\n"
            "print('http.server' in sys.modules)")
    out = subprocess.run([*CW[:1], "-c", code], check=False, env=env, capture_output=True,
                         text=True, timeout=30)
    assert out.stdout.strip() == "False", out.stderr


def test_close_is_bounded_when_a_connection_hangs(tmp_path: Path) -> None:
    r = otel.Receiver(session="w", journal=str(tmp_path / "j.jsonl")).start()
    sock = socket.create_connection(("127.0.0.1", r.port))
    sock.sendall(b"POST /x HTTP/1.1\r\nContent-Length: 100\r\n\r\n")
    started = time.monotonic()
    r.close(grace=0.5)
    assert time.monotonic() - started < 1.5
    sock.close()


# -------------------------------------------------------------------- child env


def child_env(env: dict[str, str], *args: str, cwd: Path | None = None) -> dict[str, str]:
    """The environment `claudewrap run` gives the child (the child is env(1))."""
    out = subprocess.run([*CW, "run", "--claude", "/usr/bin/env", *args], check=False,
                         env=env, cwd=cwd, capture_output=True, text=True, timeout=30)
    assert out.returncode == 0, out.stderr
    return dict(line.split("=", 1) for line in out.stdout.splitlines() if "=" in line)


def test_child_is_pointed_at_the_receiver(env: dict[str, str]) -> None:
    got = child_env(env)
    assert got["CLAUDE_CODE_ENABLE_TELEMETRY"] == "1"
    assert got["OTEL_LOGS_EXPORTER"] == got["OTEL_METRICS_EXPORTER"] == "otlp"
    assert got["OTEL_EXPORTER_OTLP_PROTOCOL"] == "http/json"
    assert got["OTEL_EXPORTER_OTLP_ENDPOINT"].startswith("http://127.0.0.1:")
    assert "OTEL_LOG_USER_PROMPTS" not in got


def test_no_otel_and_no_capture_leave_the_environment_alone(env: dict[str, str]) -> None:
    for flag in ("--no-otel", "--no-capture"):
        got = child_env(env, flag)
        assert not [k for k in got if k.startswith("OTEL_") or k == "CLAUDE_CODE_ENABLE_TELEMETRY"]


def test_users_own_otel_settings_pass_through_untouched(env: dict[str, str],
                                                       tmp_path: Path) -> None:
    mine = {"CLAUDE_CODE_ENABLE_TELEMETRY": "1", "OTEL_METRICS_EXPORTER": "prometheus"}
    got = child_env({**env, **mine})
    assert {k: v for k, v in got.items()
            if k.startswith("OTEL_") or k == "CLAUDE_CODE_ENABLE_TELEMETRY"} == mine
    # Set in Claude Code's settings file instead of the environment: also left alone.
    settings = Path(env["HOME"]) / ".claude" / "settings.json"
    settings.parent.mkdir(parents=True)
    settings.write_text(json.dumps({"env": {"OTEL_LOGS_EXPORTER": "console"}}))
    got = child_env(env)
    assert not [k for k in got if k.startswith("OTEL_") or k == "CLAUDE_CODE_ENABLE_TELEMETRY"]


# Every folder Claude Code reads settings.json from (claude_dirs.config_dirs).
SETTINGS_DIRS = {
    "xdg": lambda env: Path(env["XDG_CONFIG_HOME"]) / "claude",
    "dot-config": lambda env: Path(env["HOME"]) / ".config" / "claude",
    "dot-claude": lambda env: Path(env["HOME"]) / ".claude",
}
# (OTLP over HTTP in a settings file is forwarded instead: tests/test_otel_forward.py.)
OWN_SETTINGS = {
    "exporter": {"OTEL_METRICS_EXPORTER": "otlp", "OTEL_EXPORTER_OTLP_PROTOCOL": "grpc",
                 "OTEL_EXPORTER_OTLP_ENDPOINT": "http://collector.example:4317"},
    "telemetry": {"CLAUDE_CODE_ENABLE_TELEMETRY": "1"},
}


def _ours(got: dict[str, str]) -> list[str]:
    return sorted(k for k in got if k.startswith("OTEL_") or k == "CLAUDE_CODE_ENABLE_TELEMETRY")


@pytest.mark.parametrize("settings", sorted(OWN_SETTINGS))
@pytest.mark.parametrize("where", sorted(SETTINGS_DIRS))
def test_otel_settings_in_any_claude_config_dir_are_left_alone(
        env: dict[str, str], where: str, settings: str) -> None:
    folder = SETTINGS_DIRS[where](env)
    folder.mkdir(parents=True)
    path = folder / "settings.json"
    path.write_text(json.dumps({"model": "opus"}))
    assert _ours(child_env(env)), "settings without OTel: the wrapper points claude at itself"
    path.write_text(json.dumps({"model": "opus", "env": OWN_SETTINGS[settings]}))
    assert _ours(child_env(env)) == []


GRPC_LOGS = {"OTEL_LOGS_EXPORTER": "otlp", "OTEL_EXPORTER_OTLP_PROTOCOL": "grpc"}


def test_otel_settings_in_claude_config_dir_env_folders_are_left_alone(
        env: dict[str, str], tmp_path: Path) -> None:
    first, second = tmp_path / "cc1", tmp_path / "cc2"
    first.mkdir()
    second.mkdir()
    env = dict(env, CLAUDE_CONFIG_DIR=f"{first},{second}")
    (second / "settings.json").write_text(json.dumps({"env": GRPC_LOGS}))
    assert _ours(child_env(env)) == []
    # $CLAUDE_CONFIG_DIR replaces the usual folders, as it does for Claude Code.
    (second / "settings.json").unlink()
    dot = Path(env["HOME"]) / ".claude"
    dot.mkdir()
    (dot / "settings.json").write_text(json.dumps({"env": GRPC_LOGS}))
    assert _ours(child_env(env))


def test_user_configured_looks_at_env_and_settings_files(tmp_path: Path) -> None:
    home, cwd = tmp_path / "home", tmp_path / "proj"
    (cwd / ".claude").mkdir(parents=True)
    home.mkdir()
    assert not otel.user_configured({"HOME": str(home)}, str(cwd), str(home))
    assert otel.user_configured({"OTEL_EXPORTER_OTLP_ENDPOINT": "http://x"}, str(cwd), str(home))
    local = cwd / ".claude" / "settings.local.json"
    local.write_text('{"env": {"OTEL_METRICS_EXPORTER": "otlp"}}')
    assert otel.user_configured({}, str(cwd), str(home))


def test_launch_path_does_not_import_the_http_server(env: dict[str, str]) -> None:
    # The server and the journal load in the receiver's thread, never before claude starts:
    # the module itself must stay light.
    code = ("import sys, claudewrap.sources.otel as o; "
            "print(sorted(m for m in ('http.server', 'json', 'claudewrap.store.journal') "
            "if m in sys.modules))")
    out = subprocess.run([*CW[:1], "-c", code], check=False, env=env, capture_output=True,
                         text=True,
                         timeout=30)
    assert out.stdout.strip() == "[]", out.stderr
