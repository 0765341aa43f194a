"""`claudewrap doctor` on a healthy and on a deliberately broken set-up, each in a
private HOME with a real interactive bash and a loopback exporter."""

from __future__ import annotations

import http.server
import json
import socket
import subprocess
import threading
from collections.abc import Iterator
from pathlib import Path

import pytest
from conftest import CW
from test_shell import make_bin

from claudewrap.store.journal import append_records
from claudewrap.store.records import UsageRecord

RC_LINE = 'command -v claudewrap >/dev/null && eval "$(claudewrap shell-init bash)"'


class _Metrics(http.server.BaseHTTPRequestHandler):
    def do_GET(self) -> None:
        body = b"# TYPE claude_tokens_total counter\nclaude_tokens_total 1\n"
        self.send_response(200)
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)

    def log_message(self, *args: object) -> None:
        pass


@pytest.fixture
def exporter() -> Iterator[str]:
    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), _Metrics)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    yield f"http://127.0.0.1:{server.server_address[1]}/metrics"
    server.shutdown()
    server.server_close()


def closed_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def doctor(env: dict[str, str], *args: str) -> tuple[int, list[str]]:
    done = subprocess.run([*CW, "doctor", *args], env=env, capture_output=True, text=True,
                          check=False, timeout=60)
    assert not done.stderr.strip() or "Traceback" not in done.stderr, done.stderr
    return done.returncode, done.stdout.splitlines()


def line(lines: list[str], name: str) -> str:
    """The check's line and its fix line (if any), as one string."""
    for n, text in enumerate(lines):
        if text[2:].startswith(name + " "):
            fix = lines[n + 1] if n + 1 < len(lines) and "fix:" in lines[n + 1] else ""
            return text + "\n" + fix.strip()
    raise AssertionError(f"no {name} line in {lines}")


def setup(env: dict[str, str], tmp_path: Path, *, claude: bool = True, snippet: bool = True,
          model: str = "claude-sonnet-4-5") -> dict[str, str]:
    bin_dir = make_bin(tmp_path / "dbin", claude=claude)
    home = Path(env["HOME"])
    if snippet:
        (home / ".bashrc").write_text(RC_LINE + "\n")
    journal = tmp_path / "data" / "cw" / "journal.jsonl"
    append_records(journal, [UsageRecord(ts="2026-07-01T10:00:00.000Z", session="s",
                                         source="pty", model=model, input_tokens=10)])
    return dict(env, PATH=f"{bin_dir}:/usr/bin:/bin", SHELL="/bin/bash",
                CLAUDEWRAP_JOURNAL=str(journal))


def test_healthy_set_up_is_all_ticks(env: dict[str, str], tmp_path: Path,
                                     exporter: str) -> None:
    env = dict(setup(env, tmp_path), CLAUDEWRAP_EXPORTER_URL=exporter)
    code, lines = doctor(env)
    assert code == 0, lines
    marks = [text[0] for text in lines if not text.startswith(" ")]
    assert set(marks) <= {"\u2713", "\u00b7"}, lines
    assert line(lines, "claude").startswith("\u2713 claude ")
    assert str(tmp_path / "dbin" / "claude") in line(lines, "claude")
    assert "(1" not in line(lines, "journal") and "private" in line(lines, "journal")
    assert "runs through claudewrap" in line(lines, "shell")
    assert "known for all 1 model in the journal" in line(lines, "prices")
    assert line(lines, "exporter").startswith("\u2713") and exporter in line(lines, "exporter")
    assert line(lines, "tmux/screen").startswith("\u00b7")
    assert not any("fix:" in text for text in lines)


def test_broken_set_up_says_what_is_wrong_and_how_to_fix_it(env: dict[str, str],
                                                          tmp_path: Path) -> None:
    env = setup(env, tmp_path, claude=False, snippet=False, model="claude-imaginary-9")
    journal_dir = Path(env["CLAUDEWRAP_JOURNAL"]).parent
    config = Path(env["XDG_CONFIG_HOME"]) / "claudewrap" / "config.toml"
    config.parent.mkdir(parents=True)
    config.write_text("[budget]\ndaily_usd = 'lots'\n")
    env["CLAUDEWRAP_EXPORTER_URL"] = f"http://127.0.0.1:{closed_port()}/metrics"
    journal_dir.chmod(0o555)
    try:
        code, lines = doctor(env)
    finally:
        journal_dir.chmod(0o700)
    assert code == 1
    claude = line(lines, "claude")
    assert claude.startswith("\u2717 claude ") and "cannot find the real `claude`" in claude
    assert "fix: install Claude Code" in claude
    journal = line(lines, "journal")
    assert journal.startswith("\u2717 journal ")
    # As root the folder is writable but not private; as a user it is not writable.
    assert f"fix: chmod 700 {journal_dir}" in journal or f"chmod u+w {journal_dir}" in journal
    shell = line(lines, "shell")
    assert shell.startswith("\u2717 shell ") and "claude is not defined" in shell
    assert f"fix: add this line at the end of {env['HOME']}/.bashrc: {RC_LINE}" in shell
    prices = line(lines, "prices")
    assert "no price for claude-imaginary-9 (1 record)" in prices
    assert 'fix: add [models."claude-imaginary-9"]' in prices
    config_line = line(lines, "config")
    assert "budget.daily_usd" in config_line and f"fix: edit {config}" in config_line
    assert line(lines, "exporter").startswith("\u2717 exporter ")

    code, lines = doctor(env, "--json")
    checks = {c["name"]: c for c in json.loads("\n".join(lines))}
    assert checks["claude"]["ok"] is False and checks["opentelemetry"]["ok"] is True


def test_journal_under_a_file_and_a_claude_shim_first_on_path(env: dict[str, str],
                                                              tmp_path: Path) -> None:
    env = setup(env, tmp_path)
    blocker = tmp_path / "blocker"
    blocker.write_text("")
    shim_dir = tmp_path / "shim"
    shim_dir.mkdir()
    shim = shim_dir / "claude"
    shim.write_text("#!/bin/sh\nexec claudewrap run -- \"$@\"\n")
    shim.chmod(0o755)
    env = dict(env, CLAUDEWRAP_JOURNAL=str(blocker / "journal.jsonl"),
               PATH=f"{shim_dir}:{env['PATH']}")
    code, lines = doctor(env)
    assert code == 1
    journal = line(lines, "journal")
    assert journal.startswith("\u2717") and f"{blocker} is not a folder" in journal
    claude = line(lines, "claude")
    assert claude.startswith("\u2713") and f"skipping {shim}" in claude


def test_records_without_a_model_are_a_note_not_a_price_failure(
        env: dict[str, str], tmp_path: Path, exporter: str) -> None:
    env = dict(setup(env, tmp_path), CLAUDEWRAP_EXPORTER_URL=exporter)
    seed = "Tokens: 1234 input, 567 output"  # the seed's line: no model in it
    for args in (["run", "--", "print", seed], ["parse", "--write", seed],
                 ["log", "100", "50"]):
        done = subprocess.run([*CW, *args], env=env, capture_output=True, text=True,
                              check=False, timeout=60)
        assert done.returncode == 0, done.stderr
    code, lines = doctor(env)
    assert code == 0, lines
    prices = line(lines, "prices")
    assert prices.startswith("\u00b7 prices "), prices
    assert "known for all 1 model in the journal; 3 records without a model" in prices
    assert "no price for" not in prices and "(no model)" not in prices
    assert "fix: to price such records, give their model: claudewrap log --model ID" in prices
    code, lines = doctor(env, "--json")
    check = next(c for c in json.loads("\n".join(lines)) if c["name"] == "prices")
    assert check["ok"] is True and check["status"] == "info"


def test_a_model_without_a_price_still_fails_next_to_modelless_records(
        env: dict[str, str], tmp_path: Path) -> None:
    env = setup(env, tmp_path, model="claude-imaginary-9")
    done = subprocess.run([*CW, "log", "10", "5"], env=env, capture_output=True, text=True,
                          check=False, timeout=60)
    assert done.returncode == 0, done.stderr
    code, lines = doctor(env)
    assert code == 1
    prices = line(lines, "prices")
    assert prices.startswith("\u2717 prices ")
    assert "no price for claude-imaginary-9 (1 record); 1 record without a model" in prices
    assert 'fix: add [models."claude-imaginary-9"]' in prices


def test_a_model_priced_by_learned_rates_is_known(env: dict[str, str], tmp_path: Path) -> None:
    env = setup(env, tmp_path, model="claude-opus-9-1")
    rates = (6.0, 30.0, 0.6, 7.5)
    counts = [(38172, 496, 25691, 755), (36803, 7563, 13654, 9550), (1234, 567, 8901, 2345),
              (28524, 7259, 15664, 177), (5000, 100, 0, 4000), (900, 9000, 1200, 30)]
    append_records(Path(env["CLAUDEWRAP_JOURNAL"]), [
        UsageRecord(ts=f"2026-07-{d + 2:02d}T10:00:00.000Z", session=f"run{d}", source="otel",
                    model="claude-opus-9-1", input_tokens=i, output_tokens=o,
                    cache_read_tokens=cr, cache_write_tokens=cw,
                    cost_usd=(i * rates[0] + o * rates[1] + cr * rates[2] + cw * rates[3]) / 1e6,
                    request_id=f"req_{d}")
        for d, (i, o, cr, cw) in enumerate(counts)])
    _code, lines = doctor(env)
    prices = line(lines, "prices")
    assert prices.startswith("\u2713 prices "), prices
    assert "claude-opus-9-1 priced with rates learned from the journal" in prices


@pytest.mark.parametrize("protocol", ["http/protobuf", "http/json", "grpc"])
def test_doctor_says_what_happens_to_the_users_own_opentelemetry(
        env: dict[str, str], protocol: str) -> None:
    """Over OTLP/HTTP the wrapper forwards to the user's collector (and records);
    over gRPC it leaves OTel alone and the transcripts give the exact usage."""
    mine = dict(env, CLAUDE_CODE_ENABLE_TELEMETRY="1", OTEL_LOGS_EXPORTER="otlp",
                OTEL_EXPORTER_OTLP_PROTOCOL=protocol,
                OTEL_EXPORTER_OTLP_ENDPOINT="http://collector.example:4318")
    _, lines = doctor(mine)
    otel_line = line(lines, "opentelemetry")
    if protocol == "grpc":
        assert otel_line.startswith("\u2139") or "left alone" in otel_line, otel_line
        assert "transcripts" in otel_line
    else:
        assert otel_line.startswith("\u2713 opentelemetry "), otel_line
        assert "http://collector.example:4318/v1/logs" in otel_line
        assert "records exact usage" in otel_line
