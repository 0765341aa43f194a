"""`claudewrap prices` and the prices reports use: shipped rates for Claude Code's newest
models, the user's file, and rates learned from the journal's exact records, all
through the real CLI on real journals (records shaped like Claude Code 2.1.332's)."""

from __future__ import annotations

import json
import re
import subprocess
from pathlib import Path

import pytest
from conftest import CW, cw

from claudewrap.store.journal import append_records
from claudewrap.store.records import UsageRecord

M = 1_000_000
OPUS_5_5 = (4.0, 20.0, 0.20, 5.0)  # Claude Code's own: input, output, cache read, cache write
NEW = "claude-opus-9-1"  # a model no price list knows
NEW_RATES = (6.0, 30.0, 0.6, 7.5)
# Requests as Claude Code 2.1.332 reported them (captures: otlp_logs_*.json): input,
# output, cache read, cache write.
REQUESTS = [(38172, 496, 25691, 755), (36803, 7563, 13654, 9550), (1234, 567, 8901, 2345),
            (28524, 7259, 15664, 177)]


def cost(rates: tuple[float, ...], i: int, o: int, cr: int, cw_: int) -> float:
    return (i * rates[0] + o * rates[1] + cr * rates[2] + cw_ * rates[3]) / M


def transcript(folder: Path, session: str, model: str,
               requests: list[tuple[int, int, int, int]], day: str = "2026-07-20") -> Path:
    """A Claude Code transcript (one assistant line per request) as `import` reads it."""
    path = folder / "projects" / "-work-web" / f"{session}.jsonl"
    path.parent.mkdir(parents=True, exist_ok=True)
    lines = []
    for n, (i, o, cr, cw_) in enumerate(requests):
        lines.append(json.dumps({
            "parentUuid": None, "isSidechain": False, "type": "assistant",
            "message": {"model": model, "id": f"msg_{session}_{n}", "type": "message",
                        "role": "assistant", "content": [], "stop_reason": "end_turn",
                        "usage": {"input_tokens": i, "output_tokens": o,
                                  "cache_read_input_tokens": cr,
                                  "cache_creation_input_tokens": cw_}},
            "requestId": f"req_{session}_{n}", "uuid": f"u{n}",
            "timestamp": f"{day}T10:{n:02d}:00.000Z", "cwd": "/work/web",
            "sessionId": session, "version": "2.1.332"}))
    path.write_text("\n".join(lines) + "\n")
    return path


def otel_sessions(journal: Path, model: str, rates: tuple[float, ...], sessions: int) -> float:
    """Wrapped runs whose requests came over OpenTelemetry with Claude Code's cost, one
    run a day (as the receiver writes them); returns the printed cost."""
    records = []
    for s in range(sessions):
        for n, (i, o, cr, cw_) in enumerate(REQUESTS[:s % 4 + 1]):
            # Sessions of different mixes: each run's sums are a new equation.
            i, o, cr, cw_ = i + 1000 * s, o + 37 * s * n, cr * (1 + s % 3), cw_ * (1 + s * s % 5)
            records.append(UsageRecord(
                ts=f"2026-07-{s + 1:02d}T09:{n:02d}:00.000Z", session=f"run{s}", source="otel",
                model=model, input_tokens=i, output_tokens=o, cache_read_tokens=cr,
                cache_write_tokens=cw_, cost_usd=cost(rates, i, o, cr, cw_),
                request_id=f"req_run{s}_{n}", claude_session=f"claude{s}", project="web",
                pattern="otel"))
    append_records(journal, records)
    return sum(r.cost_usd or 0.0 for r in records)


@pytest.fixture
def penv(env: dict[str, str], tmp_path: Path) -> dict[str, str]:
    return dict(env, CLAUDEWRAP_PRICES=str(tmp_path / "prices.toml"), COLUMNS="200")


def usage_json(env: dict[str, str]) -> dict[str, object]:
    done = cw(["usage", "--json"], env)
    assert done.returncode == 0, done.stderr
    return json.loads(done.stdout)  # type: ignore[no-any-return]


def row_of(text: str, first: str) -> list[str]:
    for line in text.splitlines():
        if line.split()[:1] == [first]:
            return line.split()
    raise AssertionError(f"no row {first!r} in:\n{text}")


def test_opus_5_5_transcript_session_costs_its_tokens_at_claude_codes_rates(
        penv: dict[str, str], tmp_path: Path) -> None:
    path = transcript(tmp_path / "claude", "sess-opus", "claude-opus-5-5", REQUESTS)
    done = cw(["import", str(path)], penv)
    assert done.returncode == 0, done.stderr
    model = usage_json(penv)["by_model"]["claude-opus-5-5"]  # type: ignore[index]
    expected = sum(cost(OPUS_5_5, *r) for r in REQUESTS)
    assert model["unpriced_records"] == 0
    assert model["cost_estimated_usd"] == pytest.approx(expected, abs=1e-6)
    assert model["cost_usd"] == pytest.approx(expected, abs=1e-6)
    text = cw(["usage", "--by", "model"], penv).stdout
    assert row_of(text, "claude-opus-5-5")[-2] == f"~${expected:,.2f}"
    assert "+?" not in text


def test_exact_records_teach_the_rates_of_a_model_without_a_price(
        penv: dict[str, str], tmp_path: Path) -> None:
    journal = Path(penv["CLAUDEWRAP_JOURNAL"])
    printed = otel_sessions(journal, NEW, NEW_RATES, sessions=6)
    # A session Claude Code printed no cost for: only its transcript was imported.
    path = transcript(tmp_path / "claude", "sess-new", NEW, REQUESTS)
    assert cw(["import", str(path)], penv).returncode == 0
    unprinted = sum(cost(NEW_RATES, *r) for r in REQUESTS)

    model = usage_json(penv)["by_model"][NEW]  # type: ignore[index]
    assert model["unpriced_records"] == 0
    assert model["cost_estimated_usd"] == pytest.approx(unprinted, abs=1e-6)
    assert model["cost_usd"] == pytest.approx(printed + unprinted, abs=1e-6)

    assert row_of(cw(["usage"], penv).stdout, "all")[-1] == f"~${printed + unprinted:,.2f}"
    text = cw(["usage", "--by", "model"], penv).stdout
    assert row_of(text, NEW)[-2] == f"~${printed + unprinted:,.2f}"
    assert f"~ {NEW}: no list price; rates learned from 13 exact records" in text

    done = cw(["prices"], penv)
    assert done.returncode == 0, done.stderr
    assert row_of(done.stdout, NEW)[:6] == [NEW, "$6.00", "$30.00", "$0.60", "$7.50", "-"]
    assert re.search(rf"^{NEW} .* learned from 13 records of the journal \(6 samples, "
                     r"within 0\.0%\)$", done.stdout, re.MULTILINE), done.stdout
    assert "No price for" not in done.stdout

    entries = {e["model"]: e for e in json.loads(cw(["prices", "--json"], penv).stdout)["models"]}
    learned = entries[NEW]
    assert learned["rates"] == {"input": 6.0, "output": 30.0, "cache_read": 0.6,
                                "cache_write_5m": 7.5, "cache_write_1h": None}
    assert set(learned["from"].values()) == {"learned"}
    assert learned["learned"]["records"] == 13 and learned["learned"]["samples"] == 6
    assert entries["claude-opus-5-5"]["learned"] is None

    # metrics and cost price it the same way.
    text = cw(["metrics"], penv).stdout
    estimated = sum(float(line.rsplit(" ", 1)[1]) for line in text.splitlines()
                    if line.startswith("claude_api_cost_dollars_total{")
                    and 'estimated="true"' in line and f'model="{NEW}"' in line)
    assert estimated == pytest.approx(unprinted, abs=1e-6)
    session = json.loads(cw(["cost", "--session", "sess-new", "--json"], penv).stdout)
    assert session["unpriced_records"] == 0
    assert session["cost_estimated_usd"] == pytest.approx(unprinted, abs=1e-6)


def test_too_few_exact_records_teach_nothing(penv: dict[str, str], tmp_path: Path) -> None:
    otel_sessions(Path(penv["CLAUDEWRAP_JOURNAL"]), NEW, NEW_RATES, sessions=3)
    path = transcript(tmp_path / "claude", "sess-new", NEW, REQUESTS)
    assert cw(["import", str(path)], penv).returncode == 0
    model = usage_json(penv)["by_model"][NEW]  # type: ignore[index]
    assert model["unpriced_records"] == 4 and model["cost_estimated_usd"] == 0
    assert row_of(cw(["usage", "--by", "model"], penv).stdout, NEW)[-2].endswith("+?")
    done = cw(["prices"], penv)
    assert NEW not in [line.split()[0] for line in done.stdout.splitlines() if line.strip()]
    assert f"No price for {NEW} (4 records): add [models.\"ID\"]" in done.stdout
    assert str(Path(penv["CLAUDEWRAP_PRICES"])) in done.stdout


def test_costs_no_rates_explain_teach_nothing(penv: dict[str, str], tmp_path: Path) -> None:
    journal = Path(penv["CLAUDEWRAP_JOURNAL"])
    records = [UsageRecord(ts=f"2026-07-{d:02d}T09:00:00.000Z", session=f"run{d}", source="otel",
                           model=NEW, input_tokens=1000 * d, output_tokens=300 + d * d,
                           cache_read_tokens=50 * d, cache_write_tokens=7 * d * d,
                           cost_usd=[0.5, 0.01, 0.3, 0.02, 0.9, 0.05, 0.4][d - 1],
                           request_id=f"r{d}") for d in range(1, 8)]
    append_records(journal, records)
    path = transcript(tmp_path / "claude", "sess-new", NEW, REQUESTS)
    assert cw(["import", str(path)], penv).returncode == 0
    model = usage_json(penv)["by_model"][NEW]  # type: ignore[index]
    assert model["unpriced_records"] == 4


def test_user_file_rates_are_listed_as_yours(penv: dict[str, str]) -> None:
    Path(penv["CLAUDEWRAP_PRICES"]).write_text(
        '[models."claude-sonnet-4-5-20250929"]\ninput = 2.5\n\n'
        '[models."claude-opus-9-1"]\ninput = 4\noutput = 20\n')
    done = cw(["prices"], penv)
    assert done.returncode == 0, done.stderr
    sonnet = row_of(done.stdout, "claude-sonnet-4-5-20250929")
    assert sonnet[1:3] == ["$2.50", "$15.00"] and " ".join(sonnet[6:]) == "yours (input), shipped"
    mine = row_of(done.stdout, "claude-opus-9-1")
    assert mine[1:6] == ["$4.00", "$20.00", "-", "-", "-"] and mine[6:] == ["yours"]
    assert row_of(done.stdout, "claude-opus-5-5")[6:] == ["shipped"]
    assert f"yours: {penv['CLAUDEWRAP_PRICES']}." in done.stdout
    data = json.loads(cw(["prices", "--json"], penv).stdout)
    assert data["user_file_exists"] is True
    entry = next(e for e in data["models"] if e["model"] == "claude-sonnet-4-5-20250929")
    assert entry["from"]["input"] == "user" and entry["from"]["output"] == "shipped"


def test_a_broken_prices_file_is_one_line_naming_it(penv: dict[str, str]) -> None:
    Path(penv["CLAUDEWRAP_PRICES"]).write_text('[models."x"]\ninput = "cheap"\n')
    done = cw(["prices"], penv)
    assert done.returncode == 1 and done.stdout == ""
    assert len(done.stderr.strip().splitlines()) == 1, done.stderr
    assert "prices.toml" in done.stderr and "Traceback" not in done.stderr


def test_records_without_a_model_are_explained(penv: dict[str, str]) -> None:
    done = subprocess.run([*CW, "run", "--", "print", "Tokens: 1234 input, 567 output"],
                          env=penv, capture_output=True, text=True, timeout=60, check=False)
    assert done.returncode == 0, done.stderr
    out = cw(["prices"], penv).stdout
    assert "1 journal record without a model" in out and "claudewrap log --model ID" in out
    assert "No price for" not in out
    data = json.loads(cw(["prices", "--json"], penv).stdout)
    assert data["unpriced_records"] == {"(no model)": 1}


def test_prices_help_says_where_rates_come_from(penv: dict[str, str]) -> None:
    done = cw(["prices", "--help"], penv)
    assert done.returncode == 0
    for words in ("per million tokens", "shipped", "prices.toml", "learned from the",
                  "--json", "--journal"):
        assert words in " ".join(done.stdout.split()), words
    assert "prices" in cw(["--help"], penv).stdout


def test_status_and_metrics_price_a_new_model_as_usage_does(penv: dict[str, str],
                                                              tmp_path: Path) -> None:
    from datetime import datetime, timedelta, timezone

    now = datetime.now(timezone.utc)
    if (now.astimezone() - timedelta(minutes=20)).date() != now.astimezone().date():
        pytest.skip("the records of the last 20 minutes must all be today's")
    journal = Path(penv["CLAUDEWRAP_JOURNAL"])
    records = []
    for n, (i, o, cr, cw_) in enumerate(REQUESTS * 2):  # one wrapped run, a request a minute
        i, o = i + 100 * n, o + 37 * n * n
        records.append(UsageRecord(
            ts=(now - timedelta(minutes=18 - 2 * n)).isoformat(timespec="milliseconds"
                                                                ).replace("+00:00", "Z"),
            session="run", source="otel", model=NEW, input_tokens=i, output_tokens=o,
            cache_read_tokens=cr, cache_write_tokens=cw_, cost_usd=cost(NEW_RATES, i, o, cr, cw_),
            request_id=f"req_run_{n}", claude_session="claude-run", project="web"))
    # A session of the same model with no printed cost (its transcript).
    records.append(UsageRecord(
        ts=(now - timedelta(minutes=1)).isoformat(timespec="milliseconds").replace("+00:00", "Z"),
        session="tr", source="transcript", model=NEW, input_tokens=1000, output_tokens=1000,
        request_id="req_tr", claude_session="claude-tr", project="web"))
    append_records(journal, records)
    total = usage_json(penv)["total"]
    status = cw(["status"], penv).stdout.splitlines()[0]
    m = re.fullmatch(r"today: (~?)\$([\d,]+\.\d\d)(\+\?)?, .*", status)
    assert m, status
    assert (bool(m[1]), float(m[2].replace(",", "")), bool(m[3])) == (
        total["cost_estimated_usd"] > 0, round(total["cost_usd"], 2),  # type: ignore[index]
        total["unpriced_records"] > 0), (status, total)  # type: ignore[index]
    estimated = sum(float(line.rsplit(" ", 1)[1])
                    for line in cw(["metrics"], penv).stdout.splitlines()
                    if line.startswith("claude_api_cost_dollars_total{")
                    and 'estimated="true"' in line)
    assert estimated == pytest.approx(total["cost_estimated_usd"], abs=1e-6)  # type: ignore[index]
