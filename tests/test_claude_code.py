"""The real Claude Code CLI (pinned, see tests/claude_code.py) against the fake
Messages API (tests/fake_api.py), through `claudewrap run`: the journal must
hold exactly what the fake API reported, per request and per model.

Nothing leaves the machine: ANTHROPIC_BASE_URL points at 127.0.0.1, HOME is
private, non-essential traffic and the auto-updater are off.
"""

from __future__ import annotations

import json
import os
import re
import shutil
import subprocess
import time
import urllib.request
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pexpect
import pytest
from claude_code import (  # noqa: F401 - fixtures
    READY,
    claude_cli,
    claude_env,
    claude_version,
    drawn,
    release,
    seed_home,
    submit,
    version_of,
)
from conftest import CW, ROOT, require
from fake_api import FakeAnthropic, Usage

from claudewrap.sources import otel
from claudewrap.store.journal import read_records
from claudewrap.store.records import UsageRecord

COUNTERS = ("input_tokens", "output_tokens", "cache_read_tokens", "cache_write_tokens")
REPLY = "zebra-7"


@dataclass
class Setup:
    env: dict[str, str]
    home: Path
    work: Path
    journal: Path
    api: FakeAnthropic


@pytest.fixture
def api() -> Iterator[FakeAnthropic]:
    server = FakeAnthropic(usage=Usage(1234, 567, 8901, 2345, text=REPLY)).start()
    yield server
    server.stop()


def make_setup(base: dict[str, str], root: Path, api: FakeAnthropic, claude: Path,
               name: str = "work") -> Setup:
    home, work = root / "home", root / name
    work.mkdir(parents=True)
    seed_home(home, [work], version_of(claude))
    env = claude_env(base, api.url, home)
    env["CLAUDEWRAP_CLAUDE"] = str(claude)
    env["CLAUDEWRAP_JOURNAL"] = str(root / "journal.jsonl")
    return Setup(env, home, work, root / "journal.jsonl", api)


@pytest.fixture
def cc(env: dict[str, str], tmp_path: Path, api: FakeAnthropic,
       claude_cli: Path) -> Setup:  # noqa: F811
    return make_setup(env, tmp_path, api, claude_cli)


def run_cw(s: Setup, *args: str, cwd: Path | None = None) -> subprocess.CompletedProcess[str]:
    return subprocess.run([*CW, "run", *args], env=s.env, cwd=cwd or s.work, check=False,
                          capture_output=True, text=True, timeout=60)


def records(s: Setup, source: str | None = None) -> list[UsageRecord]:
    return [r for r in read_records(s.journal) if source is None or r.source == source]


def sums(recs: list[UsageRecord]) -> dict[str, dict[str, int]]:
    """model -> summed counters, in the fake API's shape."""
    out: dict[str, dict[str, int]] = {}
    for r in recs:
        t = out.setdefault(r.model or "", dict.fromkeys(COUNTERS, 0))
        for c in COUNTERS:
            t[c] += getattr(r, c)
    return out


def assert_otel_exact(s: Setup) -> list[UsageRecord]:
    """The otel records are the fake API's answers, one per request."""
    recs = records(s, "otel")
    assert sums(recs) == s.api.totals()
    assert sorted(r.request_id or "" for r in recs) == sorted(a.request_id for a in s.api.answers)
    assert {(r.kind, r.approximate, r.cost_estimated) for r in recs} == {("delta", False, False)}
    return recs


def usage_report(s: Setup) -> dict[str, Any]:
    out = subprocess.run([*CW, "usage", "--json"], env=s.env, check=True, capture_output=True,
                         text=True, timeout=60)
    return json.loads(out.stdout)  # type: ignore[no-any-return]


def test_fake_api_gives_every_answer_fresh_request_and_message_ids() -> None:
    """As the real API does: an id seen twice would hide a request counted twice
    or dropped (two servers, as in the two-sessions test, included)."""
    seen_requests, seen_messages = [], []
    for _server in range(2):
        api = FakeAnthropic().start()
        try:
            for _call in range(2):
                req = urllib.request.Request(
                    f"{api.url}/v1/messages", method="POST",
                    data=json.dumps({"model": "claude-opus-5-5", "max_tokens": 5,
                                     "messages": []}).encode())
                with urllib.request.urlopen(req, timeout=10) as answer:
                    seen_requests.append(answer.headers["request-id"])
                    seen_messages.append(json.load(answer)["id"])
            assert seen_requests[-2:] == [a.request_id for a in api.answers]
            assert seen_messages[-2:] == [a.message_id for a in api.answers]
        finally:
            api.stop()
    assert len(set(seen_requests)) == len(set(seen_messages)) == 4


# ------------------------------------------------------------------ claude -p


def test_drawn_finds_a_reply_however_the_renderer_skipped_cells() -> None:
    """The waits on the screen: Claude Code skips the cells that already show
    the right letter with one cursor move, over one letter or several (CI drew
    the second identical reply as "z", a move over "eb", "ra-7", and the
    session's fixture timed out)."""
    pattern = drawn(REPLY)
    assert REPLY == "zebra-7"
    for screen in (b"zebra-7", b"z\x1b[5Gbra-7", b"\xe2\x97\x8f\x1b[3Gz\x1b[6Gra-7\x1b[K",
                   b"z\x1b[2Cra-7"):
        assert pattern.search(screen), screen
    for screen in (b"zbra-7", b"ebra-7", b"z\x1b[6G", b"z\x1b[6Gra-", b"zeb\x1b[Kra-7",
                   b"z\x1b[6Gra\x1b[2K-7"):
        assert not pattern.search(screen), screen


def test_p_json_result_and_otel_are_exact(cc: Setup) -> None:
    done = run_cw(cc, "--", "-p", "hello", "--output-format", "json")
    assert done.returncode == 0, done.stderr
    assert done.stderr == ""
    result = json.loads(done.stdout)
    assert [m.path for m in cc.api.message_calls()] == ["/v1/messages?beta=true"]
    otel_recs = assert_otel_exact(cc)
    assert sum(r.cost_usd or 0 for r in otel_recs) == pytest.approx(result["total_cost_usd"])
    assert {r.claude_session for r in otel_recs} == {result["session_id"]}
    (total,) = records(cc, "pty")
    assert (total.kind, total.approximate) == ("total", False)
    assert sums([total]) == cc.api.totals()  # the model too: each version's default
    assert total.cost_usd == pytest.approx(result["total_cost_usd"])
    assert total.claude_session == result["session_id"]
    assert total.session == otel_recs[0].session  # one wrapped run
    # OpenTelemetry had every request: the transcript adds nothing.
    assert records(cc, "transcript") == []


def test_stream_json_result_and_otel_are_exact(cc: Setup) -> None:
    cc.api.usage = Usage(2000, 1500, 0, 640, text=REPLY)
    done = run_cw(cc, "--", "-p", "hello", "--output-format", "stream-json", "--verbose")
    assert done.returncode == 0, done.stderr
    lines = [json.loads(x) for x in done.stdout.splitlines() if x.strip()]
    result = lines[-1]
    assert result["type"] == "result"
    # Claude Code's own `assistant` line shows an early output snapshot; the result is final.
    otel_recs = assert_otel_exact(cc)
    assert sum(r.cost_usd or 0 for r in otel_recs) == pytest.approx(result["total_cost_usd"])
    totals = records(cc, "pty")
    assert totals and {r.kind for r in totals} == {"total"}
    assert sums([totals[-1]]) == cc.api.totals()


def test_text_mode_is_exact_through_otel(cc: Setup) -> None:
    cc.api.usage = Usage(10, 20, 30, 40, text=REPLY)
    done = run_cw(cc, "--", "-p", "hello")
    assert done.returncode == 0, done.stderr
    assert done.stdout.strip() == REPLY
    assert_otel_exact(cc)


def test_without_otel_the_transcript_supplies_exact_usage(cc: Setup) -> None:
    cc.api.usage = Usage(321, 54, 9000, 0, text=REPLY)
    done = run_cw(cc, "--no-otel", "--", "-p", "hello")
    assert done.returncode == 0, done.stderr
    assert records(cc, "otel") == []
    recs = records(cc, "transcript")
    assert sums(recs) == cc.api.totals()
    assert [r.request_id for r in recs] == [a.request_id for a in cc.api.answers]
    assert recs[0].session != recs[0].claude_session  # the wrapped run's session
    assert recs[0].project == "work"


def test_users_own_otel_collector_keeps_getting_the_data(cc: Setup) -> None:
    theirs = otel.Receiver(session="theirs", write=False).start()
    cc.env.update(CLAUDE_CODE_ENABLE_TELEMETRY="1", OTEL_LOGS_EXPORTER="otlp",
                  OTEL_METRICS_EXPORTER="otlp", OTEL_EXPORTER_OTLP_PROTOCOL="http/json",
                  OTEL_EXPORTER_OTLP_ENDPOINT=theirs.endpoint)
    try:
        done = run_cw(cc, "--", "-p", "hello", "--output-format", "json")
    finally:
        theirs.close()
    assert done.returncode == 0, done.stderr
    assert [r.request_id for r in theirs.records] == [a.request_id for a in cc.api.answers]
    assert_otel_exact(cc)  # forwarded and recorded on the way (tests/test_otel_forward.py)
    assert records(cc, "pty")  # the screen capture still works


def test_two_sessions_at_once_land_on_their_own_session_and_project(
        env: dict[str, str], tmp_path: Path, claude_cli: Path) -> None:  # noqa: F811
    apis = [FakeAnthropic(usage=Usage(100 * (i + 1), 10 * (i + 1), 0, 0, text=REPLY)).start()
            for i in range(2)]
    try:
        setups = [make_setup(env, tmp_path / f"s{i}", apis[i], claude_cli, name=f"proj{i}")
                  for i in range(2)]
        for s in setups:  # one journal for both, as for a real user
            s.env["CLAUDEWRAP_JOURNAL"] = str(tmp_path / "journal.jsonl")
            s.journal = tmp_path / "journal.jsonl"
        procs = [subprocess.Popen([*CW, "run", "--", "-p", "hello", "--output-format", "json"],
                                  env=s.env, cwd=s.work, stdout=subprocess.PIPE, text=True)
                 for s in setups]
        outs = [json.loads(p.communicate(timeout=60)[0]) for p in procs]
    finally:
        for a in apis:
            a.stop()
    recs = records(setups[0], "otel")
    assert len(recs) == 2
    by_project = {r.project: r for r in recs}
    assert set(by_project) == {"proj0", "proj1"}
    for i, s in enumerate(setups):
        r = by_project[f"proj{i}"]
        assert sums([r]) == s.api.totals()
        assert r.claude_session == outs[i]["session_id"]
        pty = [x for x in records(s, "pty") if x.project == f"proj{i}"]
        assert [x.session for x in pty] == [r.session]
    assert by_project["proj0"].session != by_project["proj1"].session


def test_report_counts_a_p_run_once(cc: Setup) -> None:
    # The -p JSON result (pty, exact total) and the OTel events describe the
    # same request: the summary counts it once.
    assert run_cw(cc, "--", "-p", "hello", "--output-format", "json").returncode == 0
    sources = {r.source for r in records(cc)}
    assert {"pty", "otel"} <= sources
    text = json.dumps(usage_report(cc))
    assert "1234" in text and "2468" not in text


def _tokens(total: dict[str, Any]) -> dict[str, int]:
    return {c: total[c] for c in COUNTERS}


def _served(api: FakeAnthropic) -> dict[str, int]:
    """What the fake API answered, summed over its models."""
    return {c: sum(t[c] for t in api.totals().values()) for c in COUNTERS}


def test_resume_cost_of_a_finished_p_session_counts_it_once(
        cc: Setup, claude_version: str) -> None:  # noqa: F811
    """`claude -p --resume ID /cost` after a finished session: 2.1.332 prints that
    session's whole block again (2.1.197 zeros); the wrapper names the resumed
    session, so nothing is added to what the session's own run recorded."""
    first = run_cw(cc, "--", "-p", "hello", "--output-format", "json")
    assert first.returncode == 0, first.stderr
    result = json.loads(first.stdout)
    sid = result["session_id"]
    before = usage_report(cc)["total"]
    assert _tokens(before) == _served(cc.api)
    runs_before = {r.session for r in records(cc)}
    again = run_cw(cc, "--", "-p", "--resume", sid, "/cost")
    assert again.returncode == 0, again.stderr
    assert len(cc.api.answers) == 1  # /cost asks the API nothing
    whole_block = release(claude_version) >= (2, 1, 332)
    shown = "Estimated cost:" if whole_block else "Total cost:"
    assert again.stdout.startswith(shown)  # relayed unchanged
    after = usage_report(cc)["total"]
    assert _tokens(after) == _served(cc.api)
    assert after["cost_usd"] == pytest.approx(result["total_cost_usd"], abs=1e-6)
    resumed = [r for r in records(cc) if r.session not in runs_before]
    assert {r.claude_session for r in resumed} <= {sid}
    if whole_block:  # the block was read, and filed under its session
        assert [r.kind for r in resumed if r.source == "pty"] == ["total"]


# ------------------------------------------------------------------ interactive


WORD_GAP = rb"(?:\x1b\[[0-9;?]*[A-Za-z]|\s)+"  # the TUI separates words by cursor moves


def words(*ws: str) -> re.Pattern[bytes]:
    return re.compile(WORD_GAP.join(re.escape(w.encode()) for w in ws))


def wait_for(predicate: Any, limit: float = 15) -> None:
    deadline = time.monotonic() + limit
    while not predicate():
        assert time.monotonic() < deadline, "timed out"
        time.sleep(0.05)


@dataclass
class Interactive:
    setup: Setup
    exit_status: int | None


def base_env(tmp: Path) -> dict[str, str]:
    """What conftest's ``env`` fixture gives, for a module-scoped fixture."""
    env = {k: v for k, v in os.environ.items()
           if not k.startswith(("CLAUDEWRAP_", "TMUX", "STY", "OTEL_"))}
    env.update({"XDG_DATA_HOME": str(tmp / "data"), "XDG_CONFIG_HOME": str(tmp / "config"),
                "XDG_CACHE_HOME": str(tmp / "cache"), "PYTHONPATH": str(ROOT),
                "TERM": "xterm-256color", "LC_ALL": "C.UTF-8"})
    env.pop("NO_COLOR", None)
    return env


@pytest.fixture(scope="module")
def interactive(tmp_path_factory: pytest.TempPathFactory, claude_cli: Path  # noqa: F811
                ) -> Iterator[Interactive]:
    """One interactive session through `claudewrap run` in a real pty: two
    prompts, `/cost`, Esc, `/exit`."""
    tmp = tmp_path_factory.mktemp("interactive")
    base = base_env(tmp)
    api = FakeAnthropic(usage=Usage(1234, 567, 8901, 2345, text=REPLY)).start()
    s = make_setup(base, tmp, api, claude_cli)
    child = pexpect.spawn(CW[0], [*CW[1:], "run"], env=s.env, cwd=str(s.work),
                          dimensions=(40, 120), timeout=20)
    child.logfile_read = (tmp / "screen.log").open("wb")  # for a failing test's reader
    try:
        child.expect(READY)
        for n, prompt in enumerate(("first question", "second question"), 1):
            child.send(prompt)
            time.sleep(0.3)
            child.send("\r")
            child.expect(drawn(REPLY))
            wait_for(lambda n=n: len(api.answers) >= n)
            time.sleep(0.3)
        child.send("/cost")
        time.sleep(0.3)
        child.send("\r")
        child.expect(words("Usage", "by", "model:"))
        child.expect(rb"\(\$[0-9.]+\)")
        time.sleep(0.6)  # idle: the wrapper parses what it batched
        child.send("\x1b")
        time.sleep(0.5)
        submit(child, "/exit", pexpect.EOF, wait=20)
        child.close()
        yield Interactive(s, child.exitstatus)
    finally:
        if child.isalive():
            child.terminate(force=True)
        child.logfile_read.close()
        api.stop()


def test_interactive_session_otel_records_are_exact(interactive: Interactive) -> None:
    assert interactive.exit_status == 0
    recs = assert_otel_exact(interactive.setup)
    assert len(recs) >= 2  # two prompts (plus a session-title request, when Claude Code makes one)
    assert len({r.session for r in recs}) == 1 and len({r.claude_session for r in recs}) == 1


def test_interactive_cost_block_is_parsed(interactive: Interactive) -> None:
    """`/cost` shows rounded running totals per model (2.5k): each model's newest
    block row must agree with the exact sums within that rounding."""
    s = interactive.setup
    newest: dict[str, UsageRecord] = {}
    for r in records(s, "pty"):
        if r.kind == "total" and r.model:
            newest[r.model] = r
    # The prompts go to claude-opus-4-8, a side request per prompt to
    # claude-haiku-4-5-20251001, which /cost names claude-haiku-4-5.
    exact = {_screen_name(m, list(newest)): v for m, v in s.api.totals().items()}
    assert set(newest) == set(exact), "the /cost block's model rows were not recorded"
    costs: dict[str, float] = {}
    for r in records(s, "otel"):
        name = _screen_name(r.model or "", list(newest))
        costs[name] = costs.get(name, 0.0) + (r.cost_usd or 0.0)
    for model, row in newest.items():
        assert row.approximate
        for c in COUNTERS:
            want = exact[model][c]
            assert abs(getattr(row, c) - want) <= (0 if want < 1000 else 50 if want < 10**6
                                                   else 50_000), (model, c)
        assert row.cost_usd == pytest.approx(costs[model], abs=0.00005)


def test_interactive_session_report_equals_what_the_api_served(
        interactive: Interactive) -> None:
    """OTel had each request, the screen its /cost block: the summary counts each
    request once, exactly. (2.1.197's /cost names the side requests' model
    claude-haiku-4-5, OTel claude-haiku-4-5-20251001: rule 4 takes them as one.)"""
    s = interactive.setup
    total = usage_report(s)["total"]
    assert _tokens(total) == _served(s.api)
    otel_cost = sum(r.cost_usd or 0.0 for r in records(s, "otel"))
    assert total["cost_usd"] == pytest.approx(otel_cost, abs=1e-6)


def test_resume_cost_after_the_interactive_session_adds_nothing(
        interactive: Interactive, tmp_path: Path, claude_version: str) -> None:  # noqa: F811
    """The session above, finished; `claude -p --resume ID /cost` in its folder
    (on copies of its HOME and journal: the other tests read them)."""
    s = interactive.setup
    home, journal = tmp_path / "home", tmp_path / "journal.jsonl"
    shutil.copytree(s.home, home, symlinks=True)
    shutil.copyfile(s.journal, journal)
    mine = Setup(dict(s.env, HOME=str(home), CLAUDEWRAP_JOURNAL=str(journal)), home, s.work,
                 journal, s.api)
    (sid,) = {r.claude_session for r in records(mine, "otel")}
    before = usage_report(mine)["total"]
    served = len(s.api.answers)
    again = run_cw(mine, "--", "-p", "--resume", sid, "/cost")
    assert again.returncode == 0, again.stderr
    assert len(s.api.answers) == served
    after = usage_report(mine)["total"]
    assert _tokens(after) == _tokens(before)
    assert after["cost_usd"] == pytest.approx(before["cost_usd"], abs=1e-6)
    if release(claude_version) >= (2, 1, 332):
        assert "Estimated cost:" in again.stdout
        resumed = [r for r in records(mine, "pty") if r.claude_session == sid]
        assert resumed and {r.kind for r in resumed} == {"total"}


def _screen_name(model: str, shown: list[str]) -> str:
    """``claude-haiku-4-5-20251001`` as /cost shows it (without the date), if shown."""
    return next((m for m in shown if model == m or model.startswith(m + "-")), model)


def test_exit_right_after_an_answer_keeps_the_final_export(cc: Setup) -> None:
    """`/exit` before the next export interval: the events come in Claude Code's
    flush on the way out, which the wrapper waits for."""
    child = pexpect.spawn(CW[0], [*CW[1:], "run"], env=cc.env, cwd=str(cc.work),
                          dimensions=(40, 120), timeout=20)
    try:
        child.expect(READY)
        child.send("only question")
        time.sleep(0.3)
        child.send("\r")
        child.expect(drawn(REPLY))
        wait_for(lambda: len(cc.api.answers) >= 1)
        submit(child, "/exit", pexpect.EOF, wait=20)
        child.close()
    finally:
        if child.isalive():
            child.terminate(force=True)
    assert child.exitstatus == 0
    assert_otel_exact(cc)


# ------------------------------------------------------------------ tmux


def _tmux(sock: str, *args: str) -> str:
    return subprocess.run(["tmux", "-L", sock, *args], check=True, capture_output=True,
                          text=True, timeout=10).stdout


def _screen_after_two_prompts(sock: str, name: str, s: Setup, argv: list[str]) -> str:
    script = s.work.parent / f"{name}.sh"
    exports = "".join(f"export {k}={_q(v)}\n" for k, v in s.env.items())
    script.write_text(f"{exports}cd {_q(str(s.work))}\n"
                      f"{' '.join(_q(a) for a in argv)}\necho EXITED rc=$?\nsleep 60\n")
    _tmux(sock, "new-session", "-d", "-s", name, "-x", "110", "-y", "40", f"sh {_q(str(script))}")

    def pane() -> str:
        return _tmux(sock, "capture-pane", "-p", "-t", name)

    wait_for(lambda: READY.search(pane().encode()), 20)
    for n, prompt in enumerate(("first question", "second question"), 1):
        _tmux(sock, "send-keys", "-t", name, "-l", prompt)
        time.sleep(0.3)
        _tmux(sock, "send-keys", "-t", name, "Enter")
        wait_for(lambda n=n: pane().count(REPLY) >= n and "esc to interrupt" not in pane(), 20)
    time.sleep(1.0)
    shown = pane()
    _tmux(sock, "send-keys", "-t", name, "-l", "/exit")
    time.sleep(0.3)
    _tmux(sock, "send-keys", "-t", name, "Enter")
    wait_for(lambda: "EXITED rc=0" in pane(), 20)
    return shown


def _q(text: str) -> str:
    return "'" + text.replace("'", "'\\''") + "'"


def _normal(screen: str, name: str) -> list[str]:
    """Screen lines without what differs between any two runs (the spinner's
    random verb and its seconds, 2.1.332's clock time, the session's folder name)."""
    out = []
    for line in screen.replace(name, "NAME").splitlines():
        line = re.sub(r"✻ \w+ for \d+s( · done \d+:\d+ [AP]M)?", "✻ VERB", line)
        out.append(line.rstrip())
    return out


def test_under_tmux_wrapped_screen_equals_unwrapped_and_usage_is_exact(
        env: dict[str, str], tmp_path: Path, tmux: str, claude_cli: Path) -> None:  # noqa: F811
    require("tmux")
    screens = {}
    setups = {}
    for name in ("plain", "wrapd"):  # same length: the folder shows in the welcome box
        api = FakeAnthropic(usage=Usage(1234, 567, 8901, 2345, text=REPLY)).start()
        try:
            s = setups[name] = make_setup(env, tmp_path / name, api, claude_cli)
            argv = [str(claude_cli)] if name == "plain" else [*CW, "run"]
            screens[name] = _screen_after_two_prompts(tmux, name, s, argv)
        finally:
            api.stop()
    assert REPLY in screens["wrapd"]
    assert _normal(screens["wrapd"], "wrapd") == _normal(screens["plain"], "plain")
    assert records(setups["plain"]) == []
    assert_otel_exact(setups["wrapd"])
    rec = records(setups["wrapd"], "otel")[0]
    assert rec.tmux_pane and rec.tmux_pane.startswith("%")
    assert rec.tmux_session == "wrapd"


def test_pinned_cli_is_the_one_under_test(claude_cli: Path, claude_version: str  # noqa: F811
                                           ) -> None:
    out = subprocess.run([str(claude_cli), "--version"], check=True, capture_output=True,
                         text=True, timeout=30)
    assert out.stdout.split()[0] == claude_version
