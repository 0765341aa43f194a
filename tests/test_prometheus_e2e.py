"""End to end with a real Prometheus (Debian's `prometheus`, started here on 127.0.0.1
with a temp config and data folder): it scrapes `claudewrap serve`, its HTTP API
returns the journal's tokens and cost, and every query of the Grafana dashboard in
examples/ returns data. promtool checks the example config and rules."""

from __future__ import annotations

import json
import re
import signal
import subprocess
import time
import urllib.parse
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from conftest import ROOT, require
from test_exporter import CW, environment, free_port, get, stop, wait_http
from test_metrics import rec, write

from claudewrap.usage import limits

EXAMPLES = ROOT / "examples"
DASHBOARD = EXAMPLES / "grafana" / "claude-usage.json"
# What Grafana would put in for the dashboard's variables (all hosts, projects, models).
GRAFANA_VARS = {"$__rate_interval": "10s", "$__range": "1h", "$__interval": "2s",
                "$host": ".*", "$project": ".*", "$model": ".*"}


def promtool(*args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run([require("promtool"), *args], capture_output=True, text=True,
                          timeout=30, check=False)


def test_example_config_and_rules_pass_promtool() -> None:
    result = promtool("check", "config", str(EXAMPLES / "prometheus" / "prometheus.yml"))
    assert result.returncode == 0, result.stdout + result.stderr
    result = promtool("check", "rules", str(EXAMPLES / "prometheus" / "alerts.yml"))
    assert result.returncode == 0, result.stdout + result.stderr
    assert "SUCCESS: 6 rules found" in result.stdout


def test_example_alerts_fire(tmp_path: Path) -> None:
    """promtool's rule unit tests: the budget alerts fire on the metric names we export."""
    (tmp_path / "alerts.yml").write_text((EXAMPLES / "prometheus" / "alerts.yml").read_text())
    (tmp_path / "test.yml").write_text("""
rule_files: [alerts.yml]
evaluation_interval: 1m
tests:
  - interval: 1m
    input_series:
      - series: 'claude_cost_per_hour_dollars{host="box",model="m",project="p",source="pty"}'
        values: '12x10'
      - series: 'claude_api_cost_dollars_total{host="box",model="m",project="p",source="pty",estimated="false"}'
        values: '0+1x60'
    alert_rule_test:
      - eval_time: 10m
        alertname: ClaudeCostPerHourHigh
        exp_alerts:
          - exp_labels: {severity: warning, host: box}
            exp_annotations:
              summary: "claude spends 12.00 $/h on box"
              description: "The claude CLI on box has cost more than $10 per hour for 5 minutes."
      - eval_time: 60m
        alertname: ClaudeDailyBudgetExceeded
        exp_alerts:
          - exp_labels: {severity: warning}
            exp_annotations:
              summary: "claude cost 60.00 $ in the last 24 h (budget $50)"
              description: "The claude CLI usage of all machines is above the daily budget."
  - interval: 1m
    input_series:
      - series: 'claude_rate_limit_used_ratio{host="box",window="five_hour"}'
        values: '0.85 0.92x10'
    alert_rule_test:
      - eval_time: 3m
        alertname: ClaudePlanLimitNearlyReached
        exp_alerts: []
      - eval_time: 7m
        alertname: ClaudePlanLimitNearlyReached
        exp_alerts:
          - exp_labels: {severity: warning, host: box, window: five_hour}
            exp_annotations:
              summary: "claude plan's five_hour window is 92% used"
              description: "The Claude.ai plan's five_hour rate-limit window (seen on box) has been over 90% used for 5 minutes; usage stops at 100% until it resets."
""")
    result = promtool("test", "rules", str(tmp_path / "test.yml"))
    assert result.returncode == 0, result.stdout + result.stderr


def dashboard_queries() -> tuple[list[str], list[str]]:
    """(PromQL of every panel target, label_values(...) of every variable)."""
    data = json.loads(DASHBOARD.read_text())
    exprs: list[str] = []

    def walk(node: Any) -> None:
        if isinstance(node, dict):
            if isinstance(node.get("expr"), str):
                exprs.append(node["expr"])
            for v in node.values():
                walk(v)
        elif isinstance(node, list):
            for v in node:
                walk(v)

    walk(data["panels"])
    variables = [v["query"]["query"] for v in data["templating"]["list"] if v["type"] == "query"]
    return exprs, variables


def fill(expr: str) -> str:
    for name in sorted(GRAFANA_VARS, key=len, reverse=True):
        expr = expr.replace(name, GRAFANA_VARS[name])
    assert "$" not in expr, expr
    return expr


def test_dashboard_uses_exactly_our_metric_names() -> None:
    exprs, variables = dashboard_queries()
    names = set(re.findall(r"\b(claude_[a-z_]+)", " ".join(exprs + variables)))
    exported = {"claude_api_tokens_input_total", "claude_api_tokens_output_total",
                "claude_api_tokens_cache_read_total", "claude_api_tokens_cache_write_total",
                "claude_api_cost_dollars_total", "claude_api_records_total",
                "claude_tokens_per_minute", "claude_cost_per_hour_dollars",
                "claude_sessions_active", "claude_journal_skipped_lines",
                "claude_rate_limit_used_ratio", "claude_rate_limit_resets_timestamp_seconds"}
    assert names <= exported, names - exported
    assert {"claude_api_tokens_input_total", "claude_api_cost_dollars_total",
            "claude_rate_limit_used_ratio"} <= names
    data = json.loads(DASHBOARD.read_text())
    assert data["schemaVersion"] >= 36  # Grafana 10 reads it as is
    titles = {p["title"] for p in data["panels"]}
    assert {"Token usage (tokens per minute)", "API cost by model", "Tokens, last hour",
            "Cost, last hour", "Tokens, today", "Cost, today", "Cost per project",
            "Plan limits (used)", "Plan limit use over time"} <= titles
    assert {v["name"] for v in data["templating"]["list"]} >= {"host", "project"}


class NotReady(Exception):
    """Prometheus answered, but not yet with a result (starting up)."""


class Prometheus:
    def __init__(self, tmp_path: Path, target: str) -> None:
        binary = require("prometheus")
        self.port = free_port()
        self.url = f"http://127.0.0.1:{self.port}"
        config = tmp_path / "prometheus.yml"
        config.write_text(json.dumps({  # JSON is YAML
            "global": {"scrape_interval": "1s", "evaluation_interval": "1s",
                       "scrape_timeout": "1s"},
            "rule_files": [str(EXAMPLES / "prometheus" / "alerts.yml")],
            "scrape_configs": [{"job_name": "claudewrap",
                                "static_configs": [{"targets": [target]}]}],
        }))
        self.log = open(tmp_path / "prometheus.log", "wb")  # noqa: SIM115 - closed in close()
        self.proc = subprocess.Popen(
            [binary, f"--config.file={config}", f"--storage.tsdb.path={tmp_path / 'data'}",
             f"--web.listen-address=127.0.0.1:{self.port}", "--log.level=warn"],
            stdout=self.log, stderr=subprocess.STDOUT, cwd=tmp_path)
        wait_http(self.url + "/-/ready", self.proc, limit=20)

    def api(self, path: str, **params: str) -> Any:
        status, _, body = get(f"{self.url}/api/v1/{path}?{urllib.parse.urlencode(params)}")
        if status != 200 or not body.strip():
            # Prometheus just after start (seen in CI: an empty answer): not ready yet.
            raise NotReady(f"{path}: HTTP {status}, {body[:200]!r}")
        data = json.loads(body)
        assert data["status"] == "success", data
        return data["data"]

    def query(self, expr: str) -> list[dict[str, Any]]:
        result: list[dict[str, Any]] = self.api("query", query=expr)["result"]
        return result

    def scalar(self, expr: str) -> float | None:
        result = self.query(expr)
        return float(result[0]["value"][1]) if result else None

    def wait_for(self, expr: str, expected: float, limit: float = 20) -> None:
        end = time.time() + limit
        got = None
        while time.time() < end:
            try:
                got = self.scalar(expr)
            except NotReady:
                got = None
            if got is not None and abs(got - expected) < 1e-9:
                return
            time.sleep(0.25)
        raise AssertionError(f"{expr} = {got}, expected {expected}")

    def close(self) -> None:
        stop(self.proc, signal.SIGTERM)
        self.log.close()


@pytest.fixture
def stack(tmp_path: Path) -> Iterator[tuple[Prometheus, Path, subprocess.Popen[bytes]]]:
    journal = write(tmp_path / "journal.jsonl", [
        rec(300, input_tokens=1000, output_tokens=200, cache_read_tokens=5000, cost_usd=0.5),
        rec(240, "s2", model="claude-opus-4-1", project="api", input_tokens=300,
            output_tokens=30, cache_write_tokens=700, cost_usd=0.25),
        rec(200, "s3", project="api", source="transcript", input_tokens=2000),  # estimated
    ])
    # A subscriber's windows, as `claudewrap statusline` keeps them.
    limits.record(journal, limits.from_status_input(
        {"rate_limits": {"five_hour": {"used_percentage": 62, "resets_at": time.time() + 3600},
                         "seven_day": {"used_percentage": 17,
                                       "resets_at": time.time() + 86400}}},
        ts="2026-11-30T10:00:00.000Z", host="box"))
    port = free_port()
    serve = subprocess.Popen([*CW, "serve", "--port", str(port), "--journal", str(journal)],
                             env=environment(tmp_path), stdout=subprocess.DEVNULL,
                             stderr=subprocess.DEVNULL)
    prom = None
    try:
        wait_http(f"http://127.0.0.1:{port}/healthz", serve)
        prom = Prometheus(tmp_path, f"127.0.0.1:{port}")
        yield prom, journal, serve
    finally:
        if prom is not None:
            prom.close()
        stop(serve, signal.SIGKILL)


@pytest.mark.timeout(60)
def test_prometheus_scrapes_serve_and_the_dashboard_has_data(
        stack: tuple[Prometheus, Path, subprocess.Popen[bytes]]) -> None:
    prom, journal, serve = stack
    started = time.time()
    estimated = 2000 * 3.0 / 1e6  # claude-sonnet-4-5 input at $3 per million
    prom.wait_for("sum(claude_api_tokens_input_total)", 3300)
    prom.wait_for("sum(claude_api_tokens_output_total)", 230)
    prom.wait_for("sum(claude_api_tokens_cache_read_total)", 5000)
    prom.wait_for("sum(claude_api_tokens_cache_write_total)", 700)
    prom.wait_for('sum(claude_api_cost_dollars_total{estimated="false"})', 0.75)
    prom.wait_for('sum(claude_api_cost_dollars_total{estimated="true"})', estimated)
    prom.wait_for('sum by (model) (claude_api_cost_dollars_total{model="claude-opus-4-1"})',
                  0.25)
    assert prom.scalar("sum(claude_tokens_per_minute)") == pytest.approx(
        (3300 + 230 + 5000 + 700) / 15)
    assert prom.scalar("max(up)") == 1
    prom.wait_for('claude_rate_limit_used_ratio{window="five_hour",host="box"}', 0.62)
    prom.wait_for('claude_rate_limit_used_ratio{window="seven_day",host="box"}', 0.17)

    # New usage arrives: the next scrape shows it, and the dashboard's increases see it.
    write(journal, [rec(1, "s4", model="claude-haiku-4-5", project="cli", input_tokens=4000,
                        output_tokens=400, cost_usd=0.1)], "a")
    prom.wait_for("sum(claude_api_tokens_input_total)", 7300)
    prom.wait_for('sum(claude_api_cost_dollars_total{estimated="false"})', 0.85)
    time.sleep(2)  # a few more samples after the rise for rate() and increase()

    exprs, variables = dashboard_queries()
    assert len(exprs) >= 10
    empty = [e for e in exprs if not prom.query(fill(e))]
    assert empty == [], empty
    assert prom.scalar(fill(exprs[0])) is not None
    cost_last_hour = next(e for e in exprs if e.startswith("sum(increase(claude_api_cost")
                          and "[1h]" in e)
    assert (prom.scalar(fill(cost_last_hour)) or 0) > 0.05
    for query in variables:
        m = re.fullmatch(r"label_values\((.+), (\w+)\)", query)
        assert m, query
        values = prom.api(f"label/{m.group(2)}/values", **{"match[]": fill(m.group(1))})
        assert values, query
    assert "cli" in prom.api("label/project/values",
                             **{"match[]": "claude_api_records_total"})

    # The example alerting rules load and evaluate without errors.
    groups = prom.api("rules")["groups"]
    rules = [r for g in groups for r in g["rules"]]
    assert len(rules) == 6
    assert all(r["health"] != "err" for r in rules), rules

    assert stop(serve, signal.SIGTERM) == 0
    assert time.time() - started < 50
