"""`claudewrap usage` / `stats` / `export`, driven through click's CliRunner."""

from __future__ import annotations

import csv
import io
import json
import os
import time
from collections.abc import Iterable, Iterator
from datetime import datetime, timedelta, timezone
from pathlib import Path
from typing import Any

import pytest
from click.testing import CliRunner

from claudewrap.cli import cli
from claudewrap.store.records import UsageRecord
from claudewrap.usage.rollup import cache_path

NOW = datetime.now(timezone.utc)
ROW_KEYS = {"input_tokens", "output_tokens", "cache_read_tokens", "cache_write_tokens",
            "cost_usd", "cost_estimated_usd", "unpriced_records", "records", "sessions"}


def iso(when: datetime) -> str:
    return when.strftime("%Y-%m-%dT%H:%M:%S.") + f"{when.microsecond // 1000:03d}Z"


def rec(ts: str, session: str = "s1", **kw: Any) -> UsageRecord:
    kw.setdefault("source", "pty")
    kw.setdefault("model", "claude-sonnet-4-5")
    return UsageRecord(ts=ts, session=session, **kw)


def write(path: Path, items: Iterable[UsageRecord | str]) -> Path:
    with open(path, "w", encoding="utf-8") as f:
        f.writelines((item if isinstance(item, str) else item.to_json()) + "\n"
                     for item in items)
    return path


@pytest.fixture
def utc() -> Iterator[None]:
    """Local time is UTC (days begin where the expected values say)."""
    old = os.environ.get("TZ")
    os.environ["TZ"] = "UTC"
    time.tzset()
    yield
    if old is None:
        del os.environ["TZ"]
    else:
        os.environ["TZ"] = old
    time.tzset()


@pytest.fixture
def env(tmp_path: Path, monkeypatch: pytest.MonkeyPatch, utc: None) -> Path:
    """A journal with usage today, ten days ago and last year; the path is in the env."""
    monkeypatch.setenv("CLAUDEWRAP_PRICES", str(tmp_path / "no-prices.toml"))
    monkeypatch.delenv("NO_COLOR", raising=False)
    journal = write(tmp_path / "journal.jsonl", [
        rec(iso(NOW - timedelta(minutes=5)), input_tokens=1200, output_tokens=300,
            cache_read_tokens=10_000, cache_write_tokens=500, cost_usd=0.25,
            project="web", host="box", tmux_pane="%3", tags={"agent": "coordinator"}),
        rec(iso(NOW - timedelta(minutes=4)), session="s2", model="claude-opus-4-8",
            input_tokens=2000, output_tokens=1000, project="api", host="ci",
            tags={"agent": "worker"}),
        rec(iso(NOW - timedelta(days=10)), session="s3", kind="total",
            input_tokens=1_000_000, output_tokens=0, project="web", host="box",
            approximate=True),
        rec(iso(NOW - timedelta(days=10, minutes=-1)), session="s3", kind="total",
            input_tokens=1_000_000, output_tokens=0, project="web", host="box",
            approximate=True),  # a redraw
        rec(iso(NOW - timedelta(days=400)), session="s4", model="mystery-model",
            input_tokens=77, project="old"),
        '{"torn": ',
    ])
    monkeypatch.setenv("CLAUDEWRAP_JOURNAL", str(journal))
    return journal


def run(*args: str, **kw: Any) -> Any:
    result = CliRunner().invoke(cli, list(args), catch_exceptions=False, **kw)
    return result


def usage_json(*args: str) -> dict[str, Any]:
    result = run("usage", "--json", *args)
    assert result.exit_code == 0, result.output
    data: dict[str, Any] = json.loads(result.stdout)
    return data


def test_default_view_shows_periods_top_models_and_projects(env: Path) -> None:
    result = run("usage")
    assert result.exit_code == 0
    out = result.stdout
    for word in ("today", "this week", "this month", "all time", "top models",
                 "top projects", "claude-opus-4-8", "web"):
        assert word in out
    assert "1,003,277" in out  # all-time input tokens, with thousands separators
    assert "~$" in out and "estimated from list prices" in out
    assert "+?" in out and "without a known price" in out
    assert "\x1b[" not in out  # not a terminal: no colour
    assert max(len(line) for line in out.splitlines()) <= 80
    assert result.stderr == "claudewrap: skipped 1 unreadable journal line (first at line 6)\n"


@pytest.mark.parametrize("no_color", [False, True])
def test_colour_only_on_a_terminal_and_never_with_no_color(env: Path, no_color: bool) -> None:
    import sys

    import pexpect

    child_env = {k: v for k, v in os.environ.items() if k != "NO_COLOR"}
    child_env["PYTHONPATH"] = str(Path(__file__).resolve().parent.parent)
    if no_color:
        child_env["NO_COLOR"] = "1"
    child = pexpect.spawn(sys.executable, ["-m", "claudewrap", "usage"], env=child_env,
                          dimensions=(40, 100), timeout=30)
    out = child.read().decode()
    child.close()
    assert "all time" in out
    assert ("\x1b[" in out) is not no_color


def test_stats_is_an_alias(env: Path) -> None:
    assert run("stats").stdout == run("usage").stdout


def test_json_shape_is_stable(env: Path) -> None:
    data = usage_json()
    assert list(data) == ["total", "by_model", "by_day", "by_project", "by_session",
                          "skipped_lines"]
    assert set(data["total"]) == ROW_KEYS
    for group in ("by_model", "by_day", "by_project", "by_session"):
        assert all(set(row) == ROW_KEYS for row in data[group].values())
    assert data["skipped_lines"] == 1
    assert data["total"]["input_tokens"] == 1200 + 2000 + 1_000_000 + 77
    assert data["total"]["sessions"] == 4
    assert data["total"]["unpriced_records"] == 1
    assert data["by_model"]["claude-opus-4-8"]["cost_estimated_usd"] == pytest.approx(
        2000 * 5 / 1e6 + 1000 * 25 / 1e6)
    assert data["by_session"]["s3"]["input_tokens"] == 1_000_000
    assert data["by_day"][iso(NOW)[:10]]["records"] == 2


@pytest.mark.parametrize("dim", ["model", "day", "week", "month", "project", "session", "pane",
                                 "host", "source", "tag:agent"])
def test_by_every_dimension(env: Path, dim: str) -> None:
    result = run("usage", "--by", dim)
    assert result.exit_code == 0
    lines = result.stdout.splitlines()
    assert lines[0].startswith(dim)
    assert any(line.startswith("total") for line in lines)
    data = usage_json("--by", dim)
    assert sum(r["input_tokens"] for r in data[f"by_{dim}"].values()) == 1_003_277


def test_by_several_dimensions_together(env: Path) -> None:
    out = run("usage", "--by", "project", "--by", "tag:agent").stdout
    assert "project  tag:agent" in out.splitlines()[0]
    assert any(line.split()[:2] == ["web", "coordinator"] for line in out.splitlines())
    data = usage_json("--by", "project", "--by", "model")
    assert data["by_project_model"]["web|claude-sonnet-4-5"]["input_tokens"] == 1_001_200


def test_bad_by_value(env: Path) -> None:
    result = CliRunner().invoke(cli, ["usage", "--by", "colour"])
    assert result.exit_code == 2
    assert "cannot group by 'colour'" in result.output


@pytest.mark.parametrize(("args", "expected"), [
    (["--since", "today"], 3200),
    (["--since", "1d"], 3200),
    (["--since", "7d"], 3200),
    (["--since", "24h"], 3200),
    (["--since", "30d"], 1_003_200),
    (["--until", "yesterday"], 1_000_077),
    (["--since", iso(NOW - timedelta(days=20))[:10], "--until", "2d"], 1_000_000),
    (["--since", iso(NOW - timedelta(minutes=10))], 3200),
    (["--since", iso(NOW - timedelta(minutes=10))[:16]], 3200),
    (["--project", "web"], 1_001_200),
    (["--project", "web", "--project", "api"], 1_003_200),
    (["--model", "opus"], 2000),
    (["--tag", "agent=worker"], 2000),
    (["--tag", "agent=worker", "--tag", "x=y"], 0),
])
def test_filters(env: Path, args: list[str], expected: int) -> None:
    assert usage_json(*args)["total"]["input_tokens"] == expected


def test_bad_times_and_tags_say_what_to_write(env: Path) -> None:
    result = CliRunner().invoke(cli, ["usage", "--since", "last tuesday"])
    assert result.exit_code == 2 and "use today, yesterday, 7d" in result.output
    result = CliRunner().invoke(cli, ["usage", "--tag", "agent"])
    assert result.exit_code == 2 and "KEY=VALUE" in result.output
    result = CliRunner().invoke(cli, ["usage", "--json", "--csv"])
    assert result.exit_code == 2


def test_csv(env: Path) -> None:
    rows = list(csv.DictReader(io.StringIO(run("usage", "--csv").stdout)))
    assert list(rows[0])[:2] == ["day", "input_tokens"]
    assert sum(int(r["input_tokens"]) for r in rows) == 1_003_277
    rows = list(csv.DictReader(io.StringIO(run("usage", "--csv", "--by", "host").stdout)))
    assert {r["host"] for r in rows} == {"box", "ci", "(none)"}


def test_journal_option_and_no_cache(env: Path, tmp_path: Path) -> None:
    other = write(tmp_path / "other.jsonl", [rec(iso(NOW), input_tokens=5)])
    result = run("usage", "--json", "--journal", str(other), "--no-cache")
    assert json.loads(result.stdout)["total"]["input_tokens"] == 5
    assert not cache_path(other).exists()
    run("usage", "--journal", str(other))
    assert cache_path(other).exists()


def test_an_empty_journal(tmp_path: Path) -> None:
    result = run("usage", "--journal", str(tmp_path / "none.jsonl"))
    assert result.exit_code == 0 and "No usage recorded yet" in result.stdout
    assert usage_json("--journal", str(tmp_path / "none.jsonl"))["total"]["records"] == 0


def test_an_unreadable_journal_is_one_line(env: Path, tmp_path: Path,
                                           monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("CLAUDEWRAP_JOURNAL", str(tmp_path))
    result = CliRunner().invoke(cli, ["usage"])
    assert result.exit_code == 1
    assert result.output.startswith(f"Error: the journal {tmp_path} is a directory: set"
                                    " CLAUDEWRAP_JOURNAL to a file path"), result.output
    assert len(result.output.splitlines()) == 1


def test_a_broken_prices_file_is_one_line(env: Path, tmp_path: Path,
                                          monkeypatch: pytest.MonkeyPatch) -> None:
    bad = tmp_path / "prices.toml"
    bad.write_text("[[[")
    monkeypatch.setenv("CLAUDEWRAP_PRICES", str(bad))
    result = CliRunner().invoke(cli, ["usage"])
    assert result.exit_code == 1, result.output
    # the file and the line first, as for config.toml
    assert f"{bad}: line 1: bad TOML: " in result.output
    assert result.output.rstrip().endswith("fix it or remove it")
    assert len(result.output.splitlines()) == 1


def test_time_zone_option(env: Path, tmp_path: Path) -> None:
    j = write(tmp_path / "tz.jsonl", [rec("2026-07-01T22:30:00.000Z", input_tokens=1)])
    data = usage_json("--journal", str(j), "--tz", "Asia/Tokyo")
    assert list(data["by_day"]) == ["2026-07-02"]
    result = CliRunner().invoke(cli, ["usage", "--tz", "Mars/Olympus"])
    assert result.exit_code == 2


def test_export_prometheus(env: Path) -> None:
    result = run("export")
    assert result.exit_code == 0
    text = result.stdout
    for name in ("claude_api_tokens_input_total", "claude_api_tokens_output_total",
                 "claude_api_tokens_cache_read_total", "claude_api_tokens_cache_write_total",
                 "claude_api_cost_dollars_total", "claude_api_records_total"):
        assert f"# TYPE {name} counter" in text
    assert ('claude_api_tokens_input_total{host="box",model="claude-sonnet-4-5",'
            'project="web",source="pty"} 1.0012e+06') in text
    assert 'estimated="true"' in text and 'estimated="false"' in text
    # The counters are the same either way (the rate gauges follow the clock).
    def counters(text: str) -> list[str]:
        return [line for line in text.splitlines() if line.startswith("claude_api_")]

    assert counters(result.stdout) == counters(run("export", "--format", "prometheus").stdout)


def test_export_json_lines_and_csv(env: Path) -> None:
    result = run("export", "--format", "json")
    lines = result.stdout.splitlines()
    assert len(lines) == 5
    assert UsageRecord.from_json(lines[0]).input_tokens == 1200
    assert "skipped 1 unreadable journal line" in result.stderr
    rows = list(csv.DictReader(io.StringIO(run("export", "--format", "csv").stdout)))
    assert len(rows) == 5
    assert rows[0]["tags"] == "agent=coordinator" and rows[0]["cost_usd"] == "0.25"
    assert rows[2]["kind"] == "total" and rows[2]["approximate"] == "true"


_CLICK_USAGE = "from claudewrap.cli import main; main(['usage'])"


def _plain_and_click(journal: Path, extra_env: dict[str, str] | None = None,
                     options: tuple[str, ...] = ()) -> tuple[Any, Any]:
    """`claudewrap usage` as the shell runs it (no options: main.py's click-free view)
    and the click command with the same (no) options."""
    import subprocess
    import sys

    env = {**os.environ, "PYTHONPATH": str(Path(__file__).resolve().parent.parent),
           "CLAUDEWRAP_JOURNAL": str(journal), **(extra_env or {})}

    def one(*args: str) -> Any:
        return subprocess.run([sys.executable, *args], env=env, capture_output=True,
                              text=True, timeout=60, check=False)

    return (one("-m", "claudewrap", "usage", *options),
            one("-c", f"from claudewrap.cli import main; main(['usage', *{options!r}])"))


@pytest.mark.parametrize("options", [(), ("--json",)])
def test_plain_usage_is_the_click_commands_view_without_click(
        env: Path, tmp_path: Path, options: tuple[str, ...]) -> None:
    bad_prices = tmp_path / "prices.toml"
    bad_prices.write_text("[[[")
    cases: list[tuple[Path, dict[str, str]]] = [
        (env, {}),  # usage, estimates, a model without a price, a torn line
        (tmp_path / "none.jsonl", {}),  # nothing yet
        (tmp_path, {}),  # a folder: cannot be read
        (env, {"CLAUDEWRAP_PRICES": str(bad_prices)}),
    ]
    statuses = []
    for journal, extra in cases:
        plain, clicked = _plain_and_click(journal, extra, options)
        assert (plain.stdout, plain.stderr, plain.returncode) == (
            clicked.stdout, clicked.stderr, clicked.returncode), journal
        statuses.append(plain.returncode)
    assert statuses == [0, 0, 1, 1]


def test_plain_usage_in_a_terminal_matches_click_colours_and_all(env: Path) -> None:
    import sys

    import pexpect

    child_env = {k: v for k, v in os.environ.items() if k != "NO_COLOR"}
    child_env["PYTHONPATH"] = str(Path(__file__).resolve().parent.parent)
    shown = []
    for args in (["-m", "claudewrap", "usage"], ["-c", _CLICK_USAGE]):
        child = pexpect.spawn(sys.executable, args, env=child_env, dimensions=(40, 60),
                              timeout=30)
        shown.append(child.read())
        child.close()
    assert b"\x1b[1m" in shown[0] and b"\x1b[2m" in shown[0]
    assert shown[0] == shown[1]


@pytest.mark.parametrize("options", [(), ("--json",)])
def test_plain_usage_does_not_load_click(env: Path, options: tuple[str, ...]) -> None:
    import subprocess
    import sys

    env_vars = {**os.environ, "PYTHONPATH": str(Path(__file__).resolve().parent.parent)}
    out = subprocess.run([sys.executable, "-X", "importtime", "-m", "claudewrap", "usage",
                          *options],
                         env=env_vars, capture_output=True, text=True, timeout=60, check=True)
    loaded = {line.rsplit("|", 1)[-1].strip() for line in out.stderr.splitlines()
              if line.startswith("import time:")}
    assert "claudewrap.views.usage_view" in loaded and "claudewrap.usage.rollup" in loaded
    assert not {m for m in loaded if m == "click" or m.startswith("click.")}
