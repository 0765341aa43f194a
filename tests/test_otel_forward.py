"""The user's own OpenTelemetry collector keeps getting every export while the
wrapper records usage from them (issue 18, item 3).

A second receiver on 127.0.0.1 stands for the company's collector. The real
Claude Code (both pinned versions) exports to it through `claudewrap run`,
over http/json and http/protobuf, with the user's headers; a small sender
stands for Claude Code where the test needs exact bytes or a protocol Claude
Code cannot be made to misbehave with.
"""

from __future__ import annotations

import gzip
import http.client
import json
import subprocess
import threading
import time
from collections.abc import Iterator
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

import pytest
from claude_code import (  # noqa: F401 - fixtures
    claude_cli,
    claude_env,
    seed_home,
    version_of,
)
from conftest import CW
from fake_api import FakeAnthropic, Usage
from test_otel import api_request, logs, metrics

from claudewrap.sources import otel, otel_forward
from claudewrap.store.journal import read_records
from claudewrap.store.records import UsageRecord

REPLY = "zebra-7"
COUNTERS = ("input_tokens", "output_tokens", "cache_read_tokens", "cache_write_tokens")


@dataclass
class Received:
    path: str
    headers: dict[str, str]
    body: bytes


@dataclass
class Collector:
    """The company's collector: records each request (path, headers, body as it
    came); ``status`` is what it answers; ``hold`` (when set) makes it wait
    until released before answering."""

    status: int = 200
    got: list[Received] = field(default_factory=list)
    hold: threading.Event | None = None
    sleep: float = 0.0  # seconds before each answer
    busy_first: int = 0  # answer this many requests with 503 first

    def start(self, cert: Path | None = None, key: Path | None = None) -> Collector:
        """Serve (over TLS with ``cert`` and ``key``)."""
        collector = self

        class Handler(BaseHTTPRequestHandler):
            protocol_version = "HTTP/1.1"

            def log_message(self, format: str, *args: Any) -> None:
                pass

            def do_POST(self) -> None:
                body = self.rfile.read(int(self.headers.get("Content-Length") or 0))
                if collector.hold is not None:
                    collector.hold.wait(60)
                time.sleep(collector.sleep)
                collector.got.append(Received(self.path, dict(self.headers), body))
                status = collector.status
                if collector.busy_first > 0:
                    collector.busy_first -= 1
                    status = 503
                answer = b'{"partialSuccess":{}}' if status == 200 else b"{}"
                self.send_response(status)
                self.send_header("Content-Type", "application/json")
                self.send_header("Content-Length", str(len(answer)))
                self.end_headers()
                try:
                    self.wfile.write(answer)
                except OSError:
                    pass  # the sender gave up waiting (a held request): fine here

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.server.daemon_threads = True
        self.scheme = "http"
        if cert is not None:
            import ssl

            context = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
            context.load_cert_chain(cert, key)
            self.server.socket = context.wrap_socket(self.server.socket, server_side=True)
            self.scheme = "https"
        threading.Thread(target=self.server.serve_forever, daemon=True).start()
        return self

    @property
    def url(self) -> str:
        return f"{self.scheme}://127.0.0.1:{self.server.server_port}"

    def stop(self) -> None:
        if self.hold is not None:
            self.hold.set()
        self.server.shutdown()
        self.server.server_close()


@pytest.fixture
def collector() -> Iterator[Collector]:
    c = Collector().start()
    yield c
    c.stop()


def free_port() -> int:
    """A loopback port nobody listens on (bound, then closed)."""
    import socket

    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


# ------------------------------------------------------------- where it goes


def test_targets_follow_the_otlp_spec_and_claude_codes_settings() -> None:
    base = {"OTEL_LOGS_EXPORTER": "otlp", "OTEL_METRICS_EXPORTER": "console,otlp",
            "OTEL_EXPORTER_OTLP_PROTOCOL": "http/json",
            "OTEL_EXPORTER_OTLP_ENDPOINT": "https://collector.example:4318/otlp"}
    assert otel_forward.targets(base) == {
        "/v1/logs": "https://collector.example:4318/otlp/v1/logs",
        "/v1/metrics": "https://collector.example:4318/otlp/v1/metrics"}
    # A per-signal endpoint is used as it is; a trailing slash is not doubled.
    assert otel_forward.targets({**base, "OTEL_EXPORTER_OTLP_ENDPOINT": "http://c:4318/",
                                 "OTEL_EXPORTER_OTLP_LOGS_ENDPOINT": "http://l/ingest"}) == {
        "/v1/logs": "http://l/ingest", "/v1/metrics": "http://c:4318/v1/metrics"}
    # No protocol: the spec's default, http/protobuf; no endpoint: localhost:4318.
    assert otel_forward.targets({"OTEL_LOGS_EXPORTER": "otlp"}) == {
        "/v1/logs": "http://localhost:4318/v1/logs"}
    # gRPC, per signal or for all, is not forwarded; nor are other exporters.
    assert otel_forward.targets({**base, "OTEL_EXPORTER_OTLP_METRICS_PROTOCOL": "grpc"}) == {
        "/v1/logs": "https://collector.example:4318/otlp/v1/logs"}
    assert otel_forward.targets({**base, "OTEL_EXPORTER_OTLP_PROTOCOL": "grpc"}) == {}
    assert otel_forward.targets({**base, "OTEL_EXPORTER_OTLP_PROTOCOL": "grpc",
                                 "OTEL_EXPORTER_OTLP_LOGS_PROTOCOL": "http/protobuf"}) == {
        "/v1/logs": "https://collector.example:4318/otlp/v1/logs"}
    assert otel_forward.targets({"OTEL_METRICS_EXPORTER": "prometheus",
                                 "OTEL_LOGS_EXPORTER": "none"}) == {}
    assert otel_forward.targets({"CLAUDE_CODE_ENABLE_TELEMETRY": "1"}) == {}


def child_env(env: dict[str, str], cwd: Path | None = None) -> dict[str, str]:
    """The environment `claudewrap run` gives the child (the child is env(1))."""
    out = subprocess.run([*CW, "run", "--claude", "/usr/bin/env"], check=False, env=env,
                         cwd=cwd, capture_output=True, text=True, timeout=30)
    assert out.returncode == 0, out.stderr
    return dict(line.split("=", 1) for line in out.stdout.splitlines() if "=" in line)


def _otel_vars(got: dict[str, str]) -> dict[str, str]:
    return {k: v for k, v in got.items()
            if k.startswith("OTEL_") or k == "CLAUDE_CODE_ENABLE_TELEMETRY"}


def test_only_the_forwarded_signals_endpoints_change_in_the_child(env: dict[str, str]) -> None:
    mine = {"CLAUDE_CODE_ENABLE_TELEMETRY": "1", "OTEL_LOGS_EXPORTER": "otlp",
            "OTEL_METRICS_EXPORTER": "otlp", "OTEL_EXPORTER_OTLP_PROTOCOL": "http/json",
            "OTEL_EXPORTER_OTLP_METRICS_PROTOCOL": "grpc",
            "OTEL_EXPORTER_OTLP_ENDPOINT": "http://collector.example:4318",
            "OTEL_EXPORTER_OTLP_HEADERS": "Authorization=Bearer%20t",
            "OTEL_RESOURCE_ATTRIBUTES": "team=blue", "OTEL_LOGS_EXPORT_INTERVAL": "7000"}
    got = _otel_vars(child_env({**env, **mine}))
    logs_endpoint = got.pop("OTEL_EXPORTER_OTLP_LOGS_ENDPOINT")
    assert logs_endpoint.startswith("http://127.0.0.1:") and logs_endpoint.endswith("/v1/logs")
    assert got == mine  # metrics over gRPC go straight to the collector, as before


def test_grpc_is_left_alone(env: dict[str, str]) -> None:
    mine = {"CLAUDE_CODE_ENABLE_TELEMETRY": "1", "OTEL_LOGS_EXPORTER": "otlp",
            "OTEL_METRICS_EXPORTER": "otlp", "OTEL_EXPORTER_OTLP_PROTOCOL": "grpc",
            "OTEL_EXPORTER_OTLP_ENDPOINT": "http://collector.example:4317"}
    assert _otel_vars(child_env({**env, **mine})) == mine


def test_settings_files_are_read_as_claude_code_layers_them(tmp_path: Path) -> None:
    home, cwd = tmp_path / "home", tmp_path / "proj"
    (home / ".claude").mkdir(parents=True)
    (cwd / ".claude").mkdir(parents=True)
    env = {"HOME": str(home), "OTEL_EXPORTER_OTLP_ENDPOINT": "http://from-env:4318"}
    (home / ".claude" / "settings.json").write_text(json.dumps({"env": {
        "CLAUDE_CODE_ENABLE_TELEMETRY": "1", "OTEL_LOGS_EXPORTER": "otlp",
        "OTEL_METRICS_EXPORTER": "otlp", "OTEL_EXPORTER_OTLP_PROTOCOL": "http/json",
        "OTEL_EXPORTER_OTLP_ENDPOINT": "http://from-user-settings:4318",
        "OTEL_METRIC_EXPORT_INTERVAL": 10000}}))
    local = cwd / ".claude" / "settings.local.json"
    local.write_text(json.dumps({"env": {"OTEL_EXPORTER_OTLP_TIMEOUT": "3000"}}))
    urls, effective = otel.pass_through(env, str(cwd), str(home))
    assert urls == {"/v1/logs": "http://from-user-settings:4318/v1/logs",
                    "/v1/metrics": "http://from-user-settings:4318/v1/metrics"}
    assert effective["OTEL_EXPORTER_OTLP_TIMEOUT"] == "3000"
    assert effective["OTEL_METRIC_EXPORT_INTERVAL"] == "10000"
    # A signal endpoint fixed in a settings file would beat the child's
    # environment: that signal goes straight to the collector, as before.
    local.write_text(json.dumps({"env": {"OTEL_EXPORTER_OTLP_LOGS_ENDPOINT": "http://l/v1/logs"}}))
    assert otel.pass_through(env, str(cwd), str(home))[0] == {
        "/v1/metrics": "http://from-user-settings:4318/v1/metrics"}
    # A settings file that mentions OTel but is no JSON: nothing is taken.
    local.write_text('{"env": {"OTEL_LOGS_EXPORTER": "otlp",')
    assert otel.pass_through(env, str(cwd), str(home))[0] == {}


# --------------------------------------------------- a sender standing for CC


def send(receiver: otel.Receiver, signal: str, body: bytes, headers: dict[str, str]) -> int:
    conn = http.client.HTTPConnection("127.0.0.1", receiver.port, timeout=10)
    path = receiver.endpoint.split(str(receiver.port), 1)[1] + signal
    conn.request("POST", path, body=body, headers=headers)
    resp = conn.getresponse()
    resp.read()
    conn.close()
    return resp.status


def test_bodies_arrive_byte_for_byte_with_headers_and_usage_is_recorded(
        tmp_path: Path, collector: Collector) -> None:
    journal = tmp_path / "j.jsonl"
    upstream = {"/v1/logs": collector.url + "/team/v1/logs",
                "/v1/metrics": collector.url + "/metrics-in"}
    r = otel.Receiver(session="w", journal=str(journal), upstream=upstream, env={}).start()
    sent = {
        "/v1/logs": gzip.compress(json.dumps(logs(api_request("req_1"))).encode()),
        "/v1/metrics": json.dumps(metrics("sess-1", "claude-opus-4-8", {"input": 1234},
                                          0.01)).encode(),
    }
    headers = {"Authorization": "Bearer%20tok", "X-Team": "blue",
               "User-Agent": "OTel-OTLP-Exporter-JavaScript/0.208.0"}
    assert send(r, "/v1/logs", sent["/v1/logs"], {**headers, "Content-Encoding": "gzip",
                                                  "Content-Type": "application/json"}) == 200
    assert send(r, "/v1/metrics", sent["/v1/metrics"],
                {**headers, "Content-Type": "application/json"}) == 200
    assert r.close() is None
    by_path = {g.path: g for g in collector.got}
    assert set(by_path) == {"/team/v1/logs", "/metrics-in"}
    assert by_path["/team/v1/logs"].body == sent["/v1/logs"]
    assert by_path["/metrics-in"].body == sent["/v1/metrics"]
    for g in collector.got:
        assert {k: g.headers[k] for k in headers} == headers
    assert by_path["/team/v1/logs"].headers["Content-Encoding"] == "gzip"
    assert [rec.request_id for rec in read_records(journal)] == ["req_1"]


def test_the_collectors_refusal_reaches_the_sender_and_is_said_once(
        tmp_path: Path, collector: Collector) -> None:
    collector.status = 401
    r = otel.Receiver(session="w", journal=str(tmp_path / "j.jsonl"),
                      upstream={"/v1/logs": collector.url + "/v1/logs"}, env={}).start()
    body = json.dumps(logs(api_request("req_1"))).encode()
    assert send(r, "/v1/logs", body, {"Content-Type": "application/json"}) == 401
    warning = r.close()
    assert warning is not None and "refused 1 of 1 (HTTP 401)" in warning
    assert [rec.request_id for rec in r.records] == ["req_1"]


def test_a_busy_collector_gets_the_request_again_and_claude_code_is_not_told(
        tmp_path: Path, collector: Collector) -> None:
    collector.busy_first = 2  # 503 twice, then 200
    r = otel.Receiver(session="w", journal=str(tmp_path / "j.jsonl"),
                      upstream={"/v1/logs": collector.url + "/v1/logs"}, env={}).start()
    body = json.dumps(logs(api_request("req_1"))).encode()
    # Claude Code would retry a 503 itself and the collector would get it twice.
    assert send(r, "/v1/logs", body, {"Content-Type": "application/json"}) == 200
    assert r.close() is None
    assert [g.body for g in collector.got] == [body] * 3  # 503, 503, 200
    assert [rec.request_id for rec in r.records] == ["req_1"]


def test_a_body_the_wrapper_cannot_read_still_goes_on_unchanged(
        tmp_path: Path, collector: Collector) -> None:
    r = otel.Receiver(session="w", journal=str(tmp_path / "j.jsonl"),
                      upstream={"/v1/logs": collector.url + "/v1/logs"}, env={}).start()
    truncated = b"\x0a\xff\x01\x0a"  # a resource_logs field longer than the body
    assert send(r, "/v1/logs", truncated, {"Content-Type": "application/x-protobuf"}) == 200
    assert r.close() is None
    assert [g.body for g in collector.got] == [truncated]
    assert r.rejected == 1 and r.records == []


def test_https_collector_with_the_users_own_ca(tmp_path: Path) -> None:
    cert, key = tmp_path / "cert.pem", tmp_path / "key.pem"
    subprocess.run(["openssl", "req", "-x509", "-newkey", "rsa:2048", "-nodes", "-days", "1",
                    "-subj", "/CN=collector", "-addext", "subjectAltName=IP:127.0.0.1",
                    "-keyout", str(key), "-out", str(cert)], check=True, capture_output=True,
                   timeout=60)
    collector = Collector().start(cert, key)
    body = json.dumps(logs(api_request("req_1"))).encode()
    try:
        for env, delivered in (({"OTEL_EXPORTER_OTLP_CERTIFICATE": str(cert)}, True),
                               ({}, False)):  # the system's CAs do not know this one
            r = otel.Receiver(session="w", journal=str(tmp_path / "j.jsonl"),
                              upstream={"/v1/logs": collector.url + "/v1/logs"},
                              env=env).start()
            assert send(r, "/v1/logs", body, {"Content-Type": "application/json"}) == 200
            warning = r.close(grace=0.5)
            assert (warning is None) == delivered, warning
            assert [rec.request_id for rec in r.records] == ["req_1"]
        assert [g.body for g in collector.got] == [body]
    finally:
        collector.stop()


# ------------------------------------------------------ the real Claude Code


@dataclass
class Setup:
    env: dict[str, str]
    work: Path
    journal: Path
    api: FakeAnthropic


@pytest.fixture
def cc(env: dict[str, str], tmp_path: Path, claude_cli: Path) -> Iterator[Setup]:  # noqa: F811
    api = FakeAnthropic(usage=Usage(1234, 567, 8901, 2345, text=REPLY)).start()
    home, work = tmp_path / "home", tmp_path / "work"
    work.mkdir()
    seed_home(home, [work], version_of(claude_cli))
    e = claude_env(env, api.url, home)
    e["CLAUDEWRAP_CLAUDE"] = str(claude_cli)
    e["CLAUDEWRAP_JOURNAL"] = str(tmp_path / "journal.jsonl")
    yield Setup(e, work, tmp_path / "journal.jsonl", api)
    api.stop()


def own_otel(s: Setup, endpoint: str, protocol: str, **more: str) -> None:
    s.env.update(CLAUDE_CODE_ENABLE_TELEMETRY="1", OTEL_LOGS_EXPORTER="otlp",
                 OTEL_METRICS_EXPORTER="otlp", OTEL_EXPORTER_OTLP_PROTOCOL=protocol,
                 OTEL_EXPORTER_OTLP_ENDPOINT=endpoint,
                 OTEL_EXPORTER_OTLP_HEADERS="Authorization=Bearer%20company-token,X-Team=blue",
                 **more)


def run_p(s: Setup) -> subprocess.CompletedProcess[str]:
    return subprocess.run([*CW, "run", "--", "-p", "hello"], env=s.env, cwd=s.work,
                          check=False, capture_output=True, text=True, timeout=90)


def otel_records(s: Setup) -> list[UsageRecord]:
    return [r for r in read_records(s.journal) if r.source == "otel"]


def assert_journal_exact(s: Setup) -> None:
    recs = otel_records(s)
    assert sorted(r.request_id or "" for r in recs) == sorted(a.request_id
                                                             for a in s.api.answers)
    totals = s.api.totals()
    for c in COUNTERS:
        assert sum(getattr(r, c) for r in recs) == sum(t[c] for t in totals.values())


def request_ids_in(got: list[Received], protobuf: bool) -> list[str]:
    """The api_request events' request ids in what the collector received, read
    with the parser matching the content type each request declared."""
    from claudewrap.sources import otlp_protobuf

    ids = []
    for g in got:
        if not g.path.endswith("/v1/logs"):
            continue
        assert ("protobuf" in g.headers["Content-Type"]) == protobuf
        payload = otlp_protobuf.logs_request(g.body) if protobuf else json.loads(g.body)
        ids += [e.event.request_id or "" for e in otel.parse_logs(payload)]
    return ids


@pytest.mark.parametrize("protocol", ["http/json", "http/protobuf"])
def test_claude_codes_exports_reach_the_collector_and_the_journal(
        cc: Setup, collector: Collector, protocol: str) -> None:
    own_otel(cc, collector.url + "/otlp", protocol,
             OTEL_EXPORTER_OTLP_LOGS_HEADERS="X-Logs-Only=yes")
    done = run_p(cc)
    assert done.returncode == 0, done.stderr
    assert done.stdout.strip() == REPLY and done.stderr == ""
    paths = sorted({g.path for g in collector.got})
    assert paths == ["/otlp/v1/logs", "/otlp/v1/metrics"]
    for g in collector.got:
        assert g.headers["Authorization"] == "Bearer%20company-token"
        assert g.headers["X-Team"] == "blue"
        assert (g.headers.get("X-Logs-Only") == "yes") == g.path.endswith("/logs")
    # Every request the fake API answered is in the collector's logs, once.
    want = sorted(a.request_id for a in cc.api.answers)
    assert sorted(request_ids_in(collector.got, protocol == "http/protobuf")) == want
    assert_journal_exact(cc)


def test_collector_down_loses_nothing_here_and_says_so_once(cc: Setup) -> None:
    own_otel(cc, f"http://127.0.0.1:{free_port()}", "http/json")
    done = run_p(cc)
    assert done.returncode == 0
    assert done.stdout.strip() == REPLY
    lines = [x for x in done.stderr.splitlines() if "OpenTelemetry exports" in x]
    assert len(lines) == 1 and "could not be delivered" in lines[0], done.stderr
    assert_journal_exact(cc)


def test_a_slow_collector_gets_everything_and_the_journal_too(
        cc: Setup, collector: Collector) -> None:
    collector.sleep = 0.6  # longer than the wrapper holds Claude Code's request
    own_otel(cc, collector.url, "http/json")
    done = run_p(cc)
    assert done.returncode == 0, done.stderr
    assert done.stderr == ""
    assert sorted(request_ids_in(collector.got, protobuf=False)) == sorted(
        a.request_id for a in cc.api.answers)
    assert_journal_exact(cc)


def test_a_collector_that_never_answers_does_not_hold_the_exit(
        cc: Setup, collector: Collector) -> None:
    # The collector holds every request until the test releases it, after the
    # run: a wrapper that waited for it would never end (subprocess timeout).
    collector.hold = threading.Event()
    own_otel(cc, collector.url, "http/protobuf")
    done = run_p(cc)
    collector.hold.set()
    assert done.returncode == 0
    assert done.stdout.strip() == REPLY
    assert "could not be delivered" in done.stderr
    assert_journal_exact(cc)


def test_otel_set_in_claude_codes_settings_file_is_forwarded_too(
        cc: Setup, collector: Collector) -> None:
    # How an administrator sets it up (managed settings work the same way).
    settings = Path(cc.env["HOME"]) / ".claude" / "settings.json"
    settings.parent.mkdir(parents=True, exist_ok=True)
    settings.write_text(json.dumps({"env": {
        "CLAUDE_CODE_ENABLE_TELEMETRY": "1", "OTEL_LOGS_EXPORTER": "otlp",
        "OTEL_METRICS_EXPORTER": "otlp", "OTEL_EXPORTER_OTLP_PROTOCOL": "http/json",
        "OTEL_EXPORTER_OTLP_ENDPOINT": collector.url,
        "OTEL_EXPORTER_OTLP_HEADERS": "X-Team=green"}}))
    done = run_p(cc)
    assert done.returncode == 0, done.stderr
    assert done.stderr == ""
    assert sorted({g.path for g in collector.got}) == ["/v1/logs", "/v1/metrics"]
    assert {g.headers["X-Team"] for g in collector.got} == {"green"}
    assert sorted(request_ids_in(collector.got, protobuf=False)) == sorted(
        a.request_id for a in cc.api.answers)
    assert_journal_exact(cc)


def test_metrics_only_are_forwarded_and_the_transcript_counts_each_request_once(
        cc: Setup, collector: Collector) -> None:
    own_otel(cc, collector.url, "http/protobuf")
    del cc.env["OTEL_LOGS_EXPORTER"]
    done = run_p(cc)
    assert done.returncode == 0, done.stderr
    assert {g.path for g in collector.got} == {"/v1/metrics"}
    recs = list(read_records(cc.journal))
    assert [r for r in recs if r.source == "otel"] == []
    exact = [r for r in recs if r.source == "transcript"]
    assert sorted(r.request_id or "" for r in exact) == sorted(
        a.request_id for a in cc.api.answers)
