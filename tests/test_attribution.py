"""Where the tokens go, without tagging: the real Claude Code (both pinned
versions) runs a subagent (the fake API answers with an ``Agent`` tool call), a
custom slash command (``.claude/commands/review.md``) and the same command as a
skill the model calls (a ``Skill`` tool call) through `claudewrap run`;
`claudewrap usage --by agent` / `--by command` (the human tables) must show, per
agent and per command, exactly what the fake API served for those requests:
from OpenTelemetry, from `claudewrap import` of the transcripts, and from the
transcripts the wrapper reads at exit when OpenTelemetry is off.
"""

from __future__ import annotations

import json
import re
import subprocess
from collections.abc import Iterator
from dataclasses import dataclass
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
from fake_api import Answer, FakeAnthropic, Usage, text_of, tool_results
from test_claude_code import base_env

from claudewrap.sources import otel

COUNTERS = ("input_tokens", "output_tokens", "cache_read_tokens", "cache_write_tokens")
SUBTASK = "SUBTASK-7"
GO = "GO-AGENT"
SKILL_GO = "GO-SKILL"
REVIEW = "REVIEW-MARKER"
# Each kind of request gets numbers of its own, so a wrong attribution shows.
LAUNCH = Usage(101, 11, 1001, 51, tool="Agent",
               tool_input={"description": "probe task", "prompt": f"{SUBTASK} say ok",
                           "subagent_type": "general-purpose"})
SUB = Usage(203, 23, 2003, 63, text="sub ok")
SKILL_CALL = Usage(401, 41, 4001, 81, tool="Skill", tool_input={"skill": "review"})
FINAL = Usage(307, 37, 3007, 77, text="all done")
OTHER = Usage(5, 3, 0, 0, text="Title")


def last_user_text(body: Any) -> str:
    users = [m for m in body.get("messages") or [] if isinstance(m, dict)
             and m.get("role") == "user"]
    return text_of({"messages": users[-1:]})


class Chooser:
    """Answers as a user's session would go: the first prompt of a run asks for
    a subagent (a tool call), the subagent answers with text, the main thread
    then finishes. Remembers, per answer, whose request it was."""

    def __init__(self) -> None:
        self.launched: set[str] = set()

    def __call__(self, body: dict[str, Any]) -> Usage:
        text, last = text_of(body), last_user_text(body)
        if SUBTASK in last and not tool_results(body):
            return SUB
        if tool_results(body) or "<task-notification>" in last:
            return FINAL
        if SKILL_GO in text and SKILL_GO not in self.launched:
            self.launched.add(SKILL_GO)
            return SKILL_CALL
        for mark in (GO, REVIEW):
            if mark in text and mark not in self.launched and SKILL_GO not in text:
                self.launched.add(mark)
                return LAUNCH
        return OTHER


def expected(answer: Answer, body: dict[str, Any], command: str | None
             ) -> tuple[str, str]:
    """(agent, command) of one served request, as usage must label it: the
    subagent's requests are general-purpose; a turn that a task notification
    started (2.1.332 runs the agent in the background) is no command's; the
    request that calls a skill is not yet the skill's."""
    agent = "general-purpose" if answer.usage is SUB else "main"
    if "<task-notification>" in last_user_text(body) or answer.usage is SKILL_CALL:
        command = None
    return agent, command or "(none)"


@dataclass
class Served:
    by_agent: dict[str, dict[str, int]]
    by_command: dict[str, dict[str, int]]


def served(*apis: tuple[FakeAnthropic, list[str | None]]) -> Served:
    """What the fake APIs served, summed per agent and per command; with each
    API, the command of each `claude` run it served, in order (each run starts
    with the subagent's launch or the skill's call)."""
    out = Served({}, {})
    for api, commands in apis:
        run = -1
        for answer in api.answers:
            body = answer.body
            assert answer.usage in (LAUNCH, SUB, FINAL, SKILL_CALL), (
                answer.usage, text_of(body)[-200:])
            if answer.usage in (LAUNCH, SKILL_CALL):
                run += 1
            agent, command = expected(answer, body, commands[run])
            for table, key in ((out.by_agent, agent), (out.by_command, command)):
                t = table.setdefault(key, dict.fromkeys(COUNTERS, 0))
                for c in COUNTERS:
                    t[c] += getattr(answer.usage, c)
    return out


_NUMBERS = re.compile(r"\s+([\d,]+)\s+([\d,]+)\s+([\d,]+)\s+([\d,]+)\s+~?\$")


def table_rows(text: str, dims: list[str]) -> dict[str, dict[str, int]]:
    """The human table of `usage --by X [--by Y]` as {"x-label y-label": counters}
    (the total row as "total")."""
    lines = text.splitlines()
    head = next(i for i, line in enumerate(lines) if line.split()[:len(dims)] == dims)
    assert lines[head].split()[len(dims):len(dims) + 4] == ["input", "output", "cache",
                                                            "read"], lines[head]
    rows = {}
    for line in lines[head + 1:]:
        m = _NUMBERS.search(line)
        if not m:
            break
        label = " ".join(line[:m.start()].split())
        rows[label] = dict(zip(COUNTERS, (int(g.replace(",", "")) for g in m.groups())))
    return rows


def usage_table(env: dict[str, str], journal: Path, *args: str) -> dict[str, dict[str, int]]:
    out = subprocess.run([*CW, "usage", "--journal", str(journal), *args],
                         env={**env, "COLUMNS": "200", "NO_COLOR": "1"}, check=True,
                         capture_output=True, text=True, timeout=60)
    dims = [args[i + 1] for i, a in enumerate(args) if a == "--by"]
    return table_rows(out.stdout, dims)


def with_total(rows: dict[str, dict[str, int]]) -> dict[str, dict[str, int]]:
    total = {c: sum(r[c] for r in rows.values()) for c in COUNTERS}
    return {**rows, "total": total}


@dataclass
class Session:
    env: dict[str, str]
    home: Path
    work: Path
    otel_journal: Path
    api: FakeAnthropic
    plain_journal: Path  # a --no-otel run: the wrapper's own transcript reading
    plain_api: FakeAnthropic


def run_claude(s: Session, api: FakeAnthropic, journal: Path, prompt: str,
               *wrapper: str) -> None:
    env = {**s.env, "ANTHROPIC_BASE_URL": api.url, "CLAUDEWRAP_JOURNAL": str(journal)}
    done = subprocess.run([*CW, "run", *wrapper, "--", "-p", prompt, "--output-format",
                           "json"], env=env, cwd=s.work, check=False, capture_output=True,
                          text=True, timeout=120)
    assert done.returncode == 0, done.stderr
    assert json.loads(done.stdout)["is_error"] is False


@pytest.fixture(scope="module")
def session(tmp_path_factory: pytest.TempPathFactory, claude_cli: Path  # noqa: F811
            ) -> Iterator[Session]:
    """Three wrapped `claude -p` runs with OpenTelemetry (a prompt that starts a
    subagent; `/review`, whose turn starts one too; a prompt whose answer calls
    the review skill), and a `/review` run with --no-otel into a journal of its
    own."""
    tmp = tmp_path_factory.mktemp("attribution")
    version = version_of(claude_cli)
    home, work = tmp / "home", tmp / "work"
    commands = work / ".claude" / "commands"
    commands.mkdir(parents=True)
    (commands / "review.md").write_text(f"Review the code. {REVIEW}\n")
    seed_home(home, [work], version)
    api = FakeAnthropic(chooser=Chooser()).start()
    plain_api = FakeAnthropic(chooser=Chooser()).start()
    env = claude_env(base_env(tmp), api.url, home)
    env["CLAUDEWRAP_CLAUDE"] = str(claude_cli)
    s = Session(env, home, work, tmp / "otel.jsonl", api, tmp / "plain.jsonl", plain_api)
    try:
        run_claude(s, api, s.otel_journal, f"{GO} please")
        run_claude(s, api, s.otel_journal, "/review")
        run_claude(s, api, s.otel_journal, f"{SKILL_GO} please")
        run_claude(s, plain_api, s.plain_journal, "/review", "--no-otel")
        yield s
    finally:
        api.stop()
        plain_api.stop()


# The command of each run with OpenTelemetry: a typed prompt, /review, the skill.
OTEL_RUNS: list[str | None] = [None, "review", "review"]


def test_a_subagent_really_ran(session: Session) -> None:
    """The Agent tool call made Claude Code run a subagent whose requests came
    back to the fake API, once in each run."""
    subs = [a for a in session.api.answers if a.usage is SUB]
    assert len(subs) == 2
    assert [a.usage for a in session.api.answers].count(SKILL_CALL) == 1
    assert len([a for a in session.plain_api.answers if a.usage is SUB]) == 1


def test_usage_by_agent_shows_what_each_agent_was_served(session: Session) -> None:
    want = served((session.api, OTEL_RUNS))
    assert set(want.by_agent) == {"main", "general-purpose"}
    got = usage_table(session.env, session.otel_journal, "--by", "agent")
    assert got == with_total(want.by_agent)


def test_usage_by_command_shows_what_each_command_was_served(session: Session) -> None:
    want = served((session.api, OTEL_RUNS))
    assert {"review", "(none)"} <= set(want.by_command)
    got = usage_table(session.env, session.otel_journal, "--by", "command")
    assert got == with_total(want.by_command)


def test_agent_and_command_filters_select_those_requests(session: Session) -> None:
    want = served((session.api, OTEL_RUNS))
    sub = usage_table(session.env, session.otel_journal, "--by", "model",
                      "--agent", "general-purpose")
    assert sub["total"] == want.by_agent["general-purpose"]
    review = usage_table(session.env, session.otel_journal, "--by", "agent",
                         "--command", "/review")
    assert review["total"] == want.by_command["review"]
    # /review's subagent: both filters at once.
    both = usage_table(session.env, session.otel_journal, "--by", "agent",
                       "--command", "review", "--agent", "general-purpose")
    assert both == {"general-purpose": SUB_COUNTS, "total": SUB_COUNTS}


SUB_COUNTS = {c: getattr(SUB, c) for c in COUNTERS}


def test_import_of_the_transcripts_attributes_the_same(session: Session) -> None:
    """`claudewrap import` of the sessions' transcripts (the three runs): the
    same tables."""
    journal = session.otel_journal.with_name("imported.jsonl")
    subprocess.run([*CW, "import", "--journal", str(journal),
                    str(session.home / ".claude" / "projects")], env=session.env,
                   check=True, capture_output=True, text=True, timeout=120)
    want = served((session.api, OTEL_RUNS), (session.plain_api, ["review"]))
    assert usage_table(session.env, journal, "--by", "agent") == with_total(want.by_agent)
    assert usage_table(session.env, journal, "--by", "command") == with_total(
        want.by_command)


def test_wrapper_without_otel_attributes_from_the_transcript(session: Session) -> None:
    want = served((session.plain_api, ["review"]))
    journal = session.plain_journal
    sources = {json.loads(line)["source"] for line in journal.read_text().splitlines()}
    assert "otel" not in sources and "transcript" in sources
    assert usage_table(session.env, journal, "--by", "agent") == with_total(want.by_agent)
    assert usage_table(session.env, journal, "--by", "command") == with_total(
        want.by_command)


def test_tags_set_by_hand_stay_apart_from_the_agent(session: Session, tmp_path: Path) -> None:
    """`--by tag:agent` groups by the tag a person set (`run --tag agent=...`),
    not by Claude Code's subagents, and the two group together."""
    journal = tmp_path / "tagged.jsonl"
    api = FakeAnthropic(chooser=Chooser()).start()
    try:
        run_claude(session, api, journal, f"{GO} please", "--tag", "agent=coordinator")
    finally:
        api.stop()
    total = {c: sum(getattr(a.usage, c) for a in api.answers) for c in COUNTERS}
    assert usage_table(session.env, journal, "--by", "tag:agent") == {
        "coordinator": total, "total": total}
    both = usage_table(session.env, journal, "--by", "tag:agent", "--by", "agent")
    main = {c: total[c] - SUB_COUNTS[c] for c in COUNTERS}
    assert both == {"coordinator general-purpose": SUB_COUNTS, "coordinator main": main,
                    "total": total}


# ------------------------------------------------------- real OTLP bodies, parsed

CAPTURES = Path(__file__).parent / "captures" / "attribution"


@pytest.mark.parametrize("name", sorted(p.name for p in CAPTURES.glob("*.json")))
def test_captured_otlp_events_carry_agent_and_command(name: str) -> None:
    """Interactive sessions of the real CLI (a prompt that ran a subagent,
    /review, /compact): each api_request's attribution, as the capture's
    expected list says (side requests by their query_source)."""
    capture = json.loads((CAPTURES / name).read_text())
    otel._PROMPT_COMMANDS.clear()
    got = [[e.event.request_id, e.event.agent, e.event.command]
           for body in capture["bodies"] for e in otel.parse_logs(body)]
    assert got == capture["expected"]
