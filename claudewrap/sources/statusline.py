"""`claudewrap statusline`: the command for Claude Code's ``statusLine`` setting.

Claude Code runs it after each message (at most every 300 ms) with one JSON
object on stdin (``session_id``, ``model``, ``workspace``, ``cost.total_cost_usd``:
the session's exact running cost, and for Pro/Max subscribers ``rate_limits``).
It prints one short line::

    Opus 5.5 · $0.34 · today $4.10 · 5h 62% ↻1h40 · 7d 17%

and records what it learned, only when it changed: the session's running cost
as a ``source="statusline"``, ``kind="total"`` journal record without a model
(the summing rule, claudewrap/usage/rule.py, counts it as that session's total, lets
per-request records of the session count instead and holds them to it: rule 4),
and the plan-limit windows in ``<journal>.limits`` (claudewrap/limits.py),
alerting a window that reached ``[alerts] rate_limit_percent`` (claudewrap/budget.py).
A user's own status-line command (``$CLAUDEWRAP_STATUSLINE_COMMAND``, else
``[statusline] command`` in config.toml) runs after that with the same stdin;
its first line is printed below ours.

It never fails: bad or empty input, a journal that cannot be read or written,
a broken prices file, each only leave out what they would have given; the
exit status is 0 and nothing goes to stderr. It is fast: plain work first, the
journal's usage core (claudewrap.usage.rollup, claudewrap.usage.report) only when the
journal changed since the last call — ``<journal>.statusline`` keeps each
session's last recorded cost and today's cost with the journal's stamp
(bench/statusline.py measures it).
"""

from __future__ import annotations

import os
import sys
import time

from claudewrap.store import cjson
from claudewrap.wrap.context import hostname

TYPE_CHECKING = False  # typing.TYPE_CHECKING without importing typing
if TYPE_CHECKING:
    from collections.abc import Mapping
    from pathlib import Path  # not at run time: see store/journal.py
    from typing import Any, BinaryIO

    from claudewrap.store.journal import StrPath
    from claudewrap.usage.limits import Snapshot

COMMAND_ENV = "CLAUDEWRAP_STATUSLINE_COMMAND"
MINIMAL = "claude"  # what a call with nothing usable prints
SUFFIX = ".statusline"
_LIMITS_SUFFIX = ".limits"  # see limits_path
SOURCE = "statusline"
MAX_INPUT = 1 << 20  # Claude Code sends a few KiB
USER_TIMEOUT = 1.0  # seconds a user's own command may take
_KEEP = 200  # sessions whose last cost the state file remembers
_SEP = " \N{MIDDLE DOT} "
_RESET = "\x1b[0m"
# Window colours by share used: green below 50%, yellow below 80%, red above.
_COLOURS = ((0.5, "\x1b[32m"), (0.8, "\x1b[33m"), (float("inf"), "\x1b[31m"))


# --- input -----------------------------------------------------------------------


def read_input(stream: BinaryIO) -> bytes:
    """Up to :data:`MAX_INPUT` bytes of stdin; nothing from a terminal (run by hand)."""
    try:
        if os.isatty(stream.fileno()):
            return b""
    except (OSError, ValueError, AttributeError):
        pass
    try:
        return stream.read(MAX_INPUT)
    except (OSError, ValueError):
        return b""


def parse_input(raw: bytes) -> dict[str, Any] | None:
    """The status-line object, or None when ``raw`` is not a JSON object."""
    try:
        data = cjson.loads(raw)
    except (ValueError, RecursionError):
        return None
    return data if isinstance(data, dict) else None


def _text(value: Any, limit: int = 4096) -> str | None:
    return value if isinstance(value, str) and value and len(value) <= limit else None


def session_cost(data: Mapping[str, Any]) -> tuple[str, float] | None:
    """``(session_id, total_cost_usd)`` when both are there and plausible."""
    from claudewrap.store.records import cost_value

    session = _text(data.get("session_id"), 200)
    cost = data.get("cost")
    if session is None or not isinstance(cost, dict):
        return None
    try:
        return session, cost_value(cost.get("total_cost_usd"))
    except ValueError:
        return None


def _folders(data: Mapping[str, Any]) -> tuple[str | None, str | None]:
    """The session's project folder and current folder."""
    ws = data.get("workspace")
    ws = ws if isinstance(ws, dict) else {}
    cwd = _text(ws.get("current_dir")) or _text(data.get("cwd"))
    return _text(ws.get("project_dir")) or cwd, cwd


def model_name(data: Mapping[str, Any]) -> str | None:
    model = data.get("model")
    if isinstance(model, dict):
        return _text(model.get("display_name"), 80) or _text(model.get("id"), 80)
    return _text(model, 80)


# --- the state file -------------------------------------------------------------------


def state_path(journal: StrPath) -> Path:
    from pathlib import Path

    return Path(_state_file(journal))


def _state_file(journal: StrPath) -> str:
    return os.fspath(journal) + SUFFIX


def limits_path(journal: StrPath) -> Path:
    """claudewrap.usage.limits.limits_path, without loading that module when
    there is no such file (API-key users: no windows to show)."""
    from pathlib import Path

    return Path(_limits_file(journal))


def _limits_file(journal: StrPath) -> str:
    return os.fspath(journal) + _LIMITS_SUFFIX


def _load(path: StrPath) -> dict[str, Any]:
    """``{"sessions": {id: [cost, epoch]}, "today": {...}, "tmux": [...]}``; empty
    when missing or unreadable (it is only a cache)."""
    try:
        from claudewrap.store.files import read_regular  # not the journal module

        data = cjson.loads(read_regular(path))
    except (OSError, ValueError, RecursionError):
        return {}
    return data if isinstance(data, dict) else {}


def _save(path: StrPath, state: dict[str, Any]) -> None:
    from claudewrap.store.journal import atomic_write

    sessions = state.get("sessions")
    if isinstance(sessions, dict) and len(sessions) > _KEEP:
        newest = sorted(sessions.items(), key=lambda kv: _epoch(kv[1]))[-_KEEP:]
        state["sessions"] = dict(newest)
    try:
        atomic_write(path, [cjson.dumps(state, separators=(",", ":")).encode()], 0o600,
                     cache=True)
    except (OSError, ValueError, TypeError):
        pass


def _epoch(entry: Any) -> float:
    ok = isinstance(entry, list) and len(entry) == 2 and isinstance(entry[1], (int, float))
    return float(entry[1]) if ok else 0.0


# --- recording ------------------------------------------------------------------------


def attribution(data: Mapping[str, Any], env: Mapping[str, str],
                state: dict[str, Any] | None = None) -> dict[str, Any]:
    """Project, cwd, host, tmux pane, screen session and tags, as the wrapper
    gives them (claudewrap.wrap.context), from the session's folders.

    Inside tmux the session name costs a `tmux display-message`: the wrapper asks
    once a run, we once a Claude session (kept in ``state["tmux"]``).
    """
    from claudewrap.wrap import context

    project_dir, cwd = _folders(data)
    cwd = cwd or os.getcwd()
    project = context.find_project(project_dir or cwd, env.get("CLAUDEWRAP_PROJECT"))
    key = [env.get("TMUX"), env.get("TMUX_PANE"), _text(data.get("session_id"), 200)]
    saved: Any = state.get("tmux") if state is not None else None
    known = (isinstance(saved, list) and len(saved) == 2 and saved[0] == key
             and (saved[1] is None or isinstance(saved[1], str)))
    if known:
        env = {k: v for k, v in env.items() if k != "TMUX"}  # not asked again
    attr = context.collect(project=project, env=dict(env), cwd=cwd)
    if known:
        attr["tmux_session"] = saved[1]
    elif state is not None and key[0]:
        state["tmux"] = [key, attr["tmux_session"]]
    return attr


def record_cost(journal: StrPath, data: Mapping[str, Any], state: dict[str, Any],
                env: Mapping[str, str]) -> bool:
    """Append the session's running cost when it differs from the last one
    recorded (a first cost of 0 is nothing to record); whether it did.
    Updates ``state``. JournalError when the journal cannot be written."""
    found = session_cost(data)
    if found is None:
        return False
    session, cost = found
    sessions = state.setdefault("sessions", {})
    if not isinstance(sessions, dict):
        sessions = state["sessions"] = {}
    last = sessions.get(session)
    last_cost = last[0] if isinstance(last, list) and last else None
    if last_cost == cost or (last_cost is None and cost == 0):
        return False
    from claudewrap.store.journal import append_records
    from claudewrap.store.records import UsageEvent, UsageRecord

    event = UsageEvent(kind="total", cost_usd=cost, pattern="statusline",
                       claude_session=session)
    rec = UsageRecord.from_event(event, session=session, source=SOURCE,
                                 attribution=attribution(data, env, state))
    append_records(journal, [rec])
    sessions[session] = [cost, time.time()]
    return True


def record_limits(journal: StrPath, data: Mapping[str, Any]) -> list[Snapshot]:
    """Keep the input's plan-limit windows (when they changed) and alert a window
    that reached a threshold (the webhook; the notice has nowhere to go); the
    snapshots."""
    if not isinstance(data.get("rate_limits"), dict):
        return []  # API-key billing, older versions: nothing to load the module for
    from claudewrap.store.records import utc_now_iso
    from claudewrap.usage import limits

    snaps = limits.from_status_input(data, ts=utc_now_iso(), host=hostname())
    if snaps and limits.record(journal, snaps) and b"rate_limit_percent" in _config_bytes():
        # A window can only cross an alert threshold when it changed, and only one
        # that config.toml sets (loading the budget module and the TOML parser to
        # find no thresholds was ~20 ms of each call after a window moved).
        try:
            from pathlib import Path

            from claudewrap.export.budget import check_rate_limits

            check_rate_limits(Path(journal), snapshots=snaps,
                              session=_text(data.get("session_id")))
        except Exception:  # noqa: BLE001, S110 - a bad config.toml: the line still shows
            pass
    return snaps


# --- today's cost -----------------------------------------------------------------------


def _stamp(path: StrPath) -> list[int] | None:
    try:
        st = os.stat(path)
    except OSError:
        return None
    return [st.st_dev, st.st_ino, st.st_size, st.st_mtime_ns]


def today_cost(journal: StrPath, state: dict[str, Any],
               env: Mapping[str, str]) -> tuple[float, bool, bool] | None:
    """Today's cost as ``usage`` sums it (cost, partly estimated, some unpriced).

    From ``state`` while the journal, the prices file and the day are as they
    were (the prices file's path as claudewrap.usage.pricing found it last time, while
    the variables it depends on are the same: loading pricing to ask again
    would cost more than the rest); else from the rollup, and kept in ``state``.
    Raises what the journal or the prices file raise.
    """
    key = [_stamp(journal), time.strftime("%Y-%m-%d"), time.strftime("%z"),
           [env.get(v) for v in ("CLAUDEWRAP_PRICES", "XDG_CONFIG_HOME", "HOME")]]
    saved = state.get("today")
    if (isinstance(saved, dict) and saved.get("key") == key
            and isinstance(saved.get("prices"), str)
            and saved.get("prices_stamp") == _stamp(saved["prices"])):
        value = saved.get("value")
        if isinstance(value, list) and len(value) == 3:
            return float(value[0]), bool(value[1]), bool(value[2])
    from claudewrap.usage.pricing import user_prices_file
    from claudewrap.usage.report import make_report
    from claudewrap.usage.rollup import load_state

    prices = user_prices_file()
    prices_stamp = _stamp(prices)
    row = make_report(load_state(journal), count_sessions=False).periods["today"]
    found = (row.cost_usd, row.cost_estimated_usd > 0, row.unpriced_records > 0)
    if key[0] == _stamp(journal):  # nothing was appended while we read
        state["today"] = {"key": key, "prices": str(prices), "prices_stamp": prices_stamp,
                          "value": list(found)}
    return found


# --- the line ---------------------------------------------------------------------------


def _left(seconds: float) -> str:
    """Time until a reset: ``45m``, ``1h40``, ``3d4h``."""
    minutes = max(0, int(seconds // 60))
    if minutes < 60:
        return f"{minutes}m"
    if minutes < 24 * 60:
        return f"{minutes // 60}h{minutes % 60:02d}"
    return f"{minutes // 1440}d{minutes % 1440 // 60}h"


def _window(snap: Snapshot, now: float, color: bool) -> str:
    from claudewrap.views.limits_view import NAMES, clock, percent

    text = f"{NAMES[snap.window][1]} {percent(snap)}"
    if color:
        shade = next(c for limit, c in _COLOURS if snap.used < limit)
        text = f"{shade}{text}{_RESET}"
    if snap.window == "five_hour":
        text += f" \N{CLOCKWISE OPEN CIRCLE ARROW}{_left(snap.resets_at - now)}"
    full = snap.pace(now)
    if full is not None:
        text += f" \N{RIGHTWARDS ARROW}100% {clock(full, now)}"
    return text


def render(data: Mapping[str, Any] | None, today: tuple[float, bool, bool] | None,
           windows: list[Snapshot], *, now: float, color: bool) -> str:
    """``Opus 5.5 · $0.34 · today $4.10 · 5h 62% ↻1h40 · 7d 17%`` (what is known of it)."""
    from claudewrap.views.display import money

    parts = []
    if data is not None:
        parts.append(model_name(data) or MINIMAL)
        found = session_cost(data)
        if found is not None:
            parts.append(money(found[1]))
    else:
        parts.append(MINIMAL)
    if today is not None:
        parts.append("today " + money(today[0], estimated=today[1], unpriced=today[2]))
    parts += [_window(s, now, color) for s in windows]
    return _SEP.join(parts)


def use_color(env: Mapping[str, str]) -> bool:
    """Claude Code shows ANSI colours; NO_COLOR turns them off."""
    return not env.get("NO_COLOR")


# --- the user's own status line -------------------------------------------------------------


def _config_bytes() -> bytes:
    """claudewrap's config.toml as bytes (empty when it cannot be read)."""
    from claudewrap.store.config import config_file

    try:
        with open(config_file(), "rb") as fh:
            return fh.read()
    except (OSError, ValueError):
        return b""


def user_command(env: Mapping[str, str]) -> str | None:
    """``$CLAUDEWRAP_STATUSLINE_COMMAND``, else ``[statusline] command`` in
    claudewrap's config.toml; None when neither is set (or the file is bad)."""
    command = env.get(COMMAND_ENV)
    if command is not None:
        return command.strip() or None
    raw = _config_bytes()
    if b"statusline" not in raw:
        return None
    from claudewrap.store.config import parse_toml

    try:  # (a broken file: `doctor` and the other commands say what is wrong)
        table = parse_toml(raw.decode("utf-8"), "config.toml").get("statusline")
    except ValueError:  # UnicodeDecodeError too
        return None
    command = table.get("command") if isinstance(table, dict) else None
    return command.strip() or None if isinstance(command, str) else None


def run_user(command: str, raw: bytes, timeout: float = USER_TIMEOUT) -> str | None:
    """The first line ``command`` (run by /bin/sh with ``raw`` on stdin) printed;
    None when it failed, printed nothing or took longer than ``timeout`` seconds."""
    import signal
    import subprocess

    try:
        # A group of its own: on time-out the whole group goes (a `sleep` the
        # shell started would otherwise hold the pipe open, and us with it).
        proc = subprocess.Popen(["/bin/sh", "-c", command], stdin=subprocess.PIPE,
                                stdout=subprocess.PIPE, stderr=subprocess.DEVNULL,
                                start_new_session=True)
    except (OSError, ValueError):
        return None
    try:
        out, _ = proc.communicate(raw, timeout=timeout)
    except (subprocess.TimeoutExpired, OSError):
        try:
            os.killpg(proc.pid, signal.SIGKILL)
        except OSError:
            pass
        proc.kill()
        proc.wait()
        return None
    if proc.returncode != 0:
        return None
    lines = out.decode("utf-8", "replace").splitlines()
    return next((line.rstrip() for line in lines if line.strip()), None)


# --- the whole command ---------------------------------------------------------------------


def run(raw: bytes, *, journal: StrPath | None = None, env: Mapping[str, str] | None = None,
        now: float | None = None) -> str:
    """Record what ``raw`` (the status-line input) says and return the text to print
    (one or two lines, no final newline). Never raises."""
    env = os.environ if env is None else env
    now = time.time() if now is None else now
    data = parse_input(raw) if raw.strip() else None
    today: tuple[float, bool, bool] | None = None
    windows: list[Snapshot] = []
    try:
        if journal is None:
            # journal.resolve_path without loading the journal module (a call with
            # nothing to record needs nothing else of it).
            from claudewrap.store.config import journal_file

            journal = journal_file(None)
            if os.path.isdir(journal):
                raise IsADirectoryError(journal)  # nothing to record or sum: the line alone
        path = _state_file(journal)
        state = _load(path)
        before = cjson.dumps(state, sort_keys=True)
        if data is not None:
            try:
                record_cost(journal, data, state, env)
                written = True
            except Exception:  # noqa: BLE001 - an unwritable journal: still show the line
                written = False  # and no today: it would leave this session out
            windows = record_limits(journal, data)
        else:
            written = True
        try:
            today = today_cost(journal, state, env) if written else None
        except Exception:  # noqa: BLE001 - an unreadable journal, a broken prices file
            today = None
        if not windows and data is not None and os.path.exists(_limits_file(journal)):
            from claudewrap.usage.limits import latest

            windows = [s for s in latest(journal, now=now, host=hostname()).values()]
        windows.sort(key=lambda s: s.window != "five_hour")
        if cjson.dumps(state, sort_keys=True) != before:
            _save(path, state)
    except Exception:  # noqa: BLE001, S110 - the status line never fails
        pass
    try:
        line = render(data, today, windows, now=now, color=use_color(env))
    except Exception:  # noqa: BLE001
        line = MINIMAL
    try:
        command = user_command(env)
        extra = run_user(command, raw) if command else None
    except Exception:  # noqa: BLE001
        extra = None
    return line if extra is None else f"{line}\n{extra}"


def main(journal_option: str | None = None) -> int:
    """Read stdin, print the line; exit status 0 whatever happens."""
    try:
        journal = None
        if journal_option is not None:
            from claudewrap.store.journal import resolve_path

            journal = resolve_path(journal_option)
        text = run(read_input(sys.stdin.buffer), journal=journal)
    except Exception:  # noqa: BLE001 - never fails
        text = MINIMAL
    try:
        sys.stdout.write(text + "\n")
        sys.stdout.flush()
    except (OSError, ValueError):
        pass
    return 0


__all__ = ["COMMAND_ENV", "MINIMAL", "SOURCE", "main", "parse_input", "read_input",
           "record_cost", "render", "run", "run_user", "session_cost", "state_path",
           "today_cost", "user_command"]
