"""The live view behind `claudewrap monitor`.

:class:`Monitor` shows what every reader shows: today, this month and the
sessions from the rollup every report shares (claudewrap.usage.rollup), the recent
window (tokens per minute, cost per hour, the sessions used in it) from the
minute buckets `status` and the metrics' rate gauges read
(claudewrap.export.metrics.window_usage). Both are incremental: an update reads only
the lines appended since the last one. All sums are the reports' rule
(claudewrap.usage.report).

:func:`render` turns a :class:`Snapshot` into lines that fit the terminal;
:func:`run_live` redraws them in place on the alternate screen and always gives
the terminal back as it was; :func:`status_line` is the plain one-line form for
a stdout that is not a terminal. Each view adds a line per plan-limit window
that Claude Code's status line reported and that has not reset yet
(claudewrap.usage.limits); none without such data.
"""

from __future__ import annotations

import os
import select
import signal
import termios
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from datetime import datetime, timedelta, timezone
from pathlib import Path

from claudewrap.api import LiveSession
from claudewrap.export.budget import Budget, Standing, standings
from claudewrap.export.metrics import JournalMetrics, Window, sessions_report
from claudewrap.usage.filters import Filters
from claudewrap.usage.limits import Snapshot as LimitSnapshot
from claudewrap.usage.limits import latest as latest_limits
from claudewrap.usage.pricing import default_table
from claudewrap.usage.report import Row, make_report
from claudewrap.usage.rollup import load_state
from claudewrap.usage.state import UsageState
from claudewrap.views.display import cells, ljust, rjust, row_money, short_count
from claudewrap.views.display import money as plain_money
from claudewrap.views.limits_view import NAMES, clock, ordered, percent, window_line
from claudewrap.wrap.launcher import write_all


@dataclass
class SessionLine:
    session: str
    project: str | None
    model: str | None
    usage: Row
    running: bool


@dataclass
class Snapshot:
    """What the screen shows at ``now``."""

    now: datetime
    today: Row
    month: Row
    window: Row  # usage in the last ``window_minutes``
    window_minutes: float
    sessions: list[SessionLine]
    budgets: list[Standing] = field(default_factory=list)
    project: str | None = None
    interval: float = 2.0
    skipped_lines: int = 0
    # The plan's rate-limit windows by name, fresh ones only (claudewrap.usage.limits.latest).
    limits: dict[str, LimitSnapshot] = field(default_factory=dict)

    @property
    def tokens_per_minute(self) -> float:
        return self.window.tokens / self.window_minutes

    @property
    def cost_per_hour(self) -> float:
        return self.window.cost_usd * 60 / self.window_minutes

    def projected_today(self) -> float:
        """Today's cost at midnight if the recent burn rate holds."""
        local = self.now.astimezone()
        midnight = datetime.combine(local.date() + timedelta(days=1), datetime.min.time(),
                                    tzinfo=local.tzinfo)
        return self.today.cost_usd + self.cost_per_hour * (midnight - local).total_seconds() / 3600


class Monitor:
    """The journal at ``path``, followed: call :meth:`update`, then :meth:`snapshot`."""

    def __init__(self, path: Path, *, window_minutes: float = 10, project: str | None = None,
                 now: Callable[[], datetime] | None = None) -> None:
        self.path = path
        self.window = timedelta(minutes=window_minutes)
        self.project = project
        self.clock = now or (lambda: datetime.now(timezone.utc))
        self._state = UsageState()
        self._stamp: tuple[int, ...] | None = None  # the journal _state was loaded from
        self._recent: JournalMetrics | None = None

    def close(self) -> None:
        """Nothing stays open between updates (kept for callers that close)."""

    def update(self) -> None:
        """Read what was appended since the last update (JournalError if unreadable)."""
        now = self.clock()
        # The window (and its sessions): the minute state the metrics keep, continued
        # with the new lines (claudewrap.export.metrics.JournalMetrics; read again from the
        # start when the journal was replaced, truncated or rewritten).
        if self._recent is None:
            self._recent = JournalMetrics(self.path)
        self._recent.update(now.timestamp())
        # Today, this month and the sessions come from the state every report shares
        # (the rollup, continued with the new lines): the same rule, rule 4 included,
        # and no copy of the journal in memory. Loaded again only when the journal
        # changed (a warm load still reads the whole rollup: ~80 ms at 1M records,
        # every 2 s otherwise).
        try:
            st = os.stat(self.path)
            stamp: tuple[int, ...] | None = (st.st_ino, st.st_size, st.st_mtime_ns,
                                             st.st_ctime_ns)
        except OSError:
            stamp = None
        if stamp is None or stamp != self._stamp:
            self._state = load_state(self.path)
            self._stamp = stamp

    def _window(self, now: datetime) -> Window:
        if self._recent is None:
            return Window(Row())
        filters = Filters(projects=(self.project,)) if self.project else None
        return self._recent.recent_usage(self.window.total_seconds(), now.timestamp(), filters)

    def snapshot(self, *, live: Sequence[LiveSession] = (), show: str = "all",
                 budgets: Sequence[Budget] = (), interval: float = 2.0) -> Snapshot:
        """Totals, the rate, the sessions to show (``show``: ``all`` for the running
        and recently active ones, or one session id) and the budgets' standing."""
        now = self.clock()
        filters = Filters(projects=(self.project,)) if self.project else None
        local_today = now.astimezone().date()
        # Today and this month: one pass over the rollup's rows (no sessions counted).
        report = make_report(self._state, filters=filters, today=local_today,
                             count_sessions=False)
        recent = self._window(now)
        window = recent.total
        running = {s.session: s for s in live}
        if show == "all":
            wanted = list(running)
            last = recent.sessions  # used in the window: (last minute, project)
            wanted += sorted((s for s in last if s not in running),
                             key=lambda s: (last[s][0], s), reverse=True)
        else:
            wanted = [show]
        # The listed sessions' usage: their units (and those linked to them) only.
        per_session = sessions_report(self._state, wanted, filters,
                                      default_table()) if wanted else None
        by_session = per_session.groups[("session",)] if per_session else {}
        models: dict[str, list[tuple[str, Row]]] = {}
        for (sid, model_id), row in (per_session.groups[("session", "model")].items()
                                     if per_session else ()):
            models.setdefault(sid, []).append((model_id, row))
        lines = []
        for sid in wanted:
            live_entry = running.get(sid)
            project = (live_entry.project if live_entry else None) or (
                recent.sessions[sid][1] if sid in recent.sessions else None)
            if self.project and project != self.project:
                continue
            ranked = sorted(models.get(sid, []), key=lambda mr: (-mr[1].cost_usd,
                                                                 -mr[1].tokens, mr[0]))
            model: str | None = ranked[0][0] if ranked else (
                live_entry.model if live_entry else None)
            if model and len(ranked) > 1:
                model += f" +{len(ranked) - 1}"
            lines.append(SessionLine(sid, project, model, by_session.get((sid,), Row()),
                                     sid in running))
        cost_per_hour = window.cost_usd * 60 / (self.window.total_seconds() / 60)
        return Snapshot(now=now, today=report.periods["today"],
                        month=report.periods["this month"], window=window,
                        window_minutes=self.window.total_seconds() / 60, sessions=lines,
                        budgets=standings(self._state, list(budgets), now=now,
                                          cost_per_hour=cost_per_hour),
                        project=self.project, interval=interval,
                        skipped_lines=report.skipped_lines,
                        limits=latest_limits(self.path, now=now.timestamp()))


# --- rendering -------------------------------------------------------------------------


def money(row_or_usd: Row | float) -> str:
    """A row's cost with its markers (``~``, ``+?``), or a plain amount."""
    if isinstance(row_or_usd, Row):
        return row_money(row_or_usd)
    return plain_money(row_or_usd)


def _used(st: Standing) -> str:
    """``25%``, ``OVER 104%``; ``+?`` after it when the spending leaves out usage of
    a model without a price (the share is a lower bound)."""
    unknown = "+?" if st.unpriced_records else ""
    return f"{'OVER ' if st.over else ''}{st.fraction * 100:.0f}%{unknown}"


def _per_hour(snap: Snapshot) -> str:
    """The window's cost per hour, with the window's markers."""
    w = snap.window
    return plain_money(snap.cost_per_hour, estimated=w.cost_estimated_usd > 0,
                       unpriced=w.unpriced_records > 0)


def _fit_segments(segments: Sequence[str], width: int, sep: str = "  ") -> str:
    """Join the segments that fit in ``width`` (the first always, cut if need be)."""
    line = segments[0]
    for seg in segments[1:]:
        if len(line) + len(sep) + len(seg) > width:
            break
        line += sep + seg
    return line[:width]


def _pick(width: int, *options: str) -> str:
    """The first (longest) wording that fits in ``width``; else the last, cut."""
    for text in options:
        if len(text) <= width:
            return text
    return options[-1][:width]


def _period_lines(snap: Snapshot, width: int) -> list[str]:
    """Today and this month: spending, tokens, budget use; then where each is heading."""
    by_period = {st.budget.period: st for st in snap.budgets}
    lines = []
    for label, row, period in (("today     ", snap.today, "day"),
                               ("this month", snap.month, "month")):
        st = by_period.get(period)
        head = [f"{label} {money(row):>9}", f"{short_count(row.tokens):>6} tok"]
        if st is not None:
            used = _used(st)
            room = width - len(head[0]) - 2
            fits = [t for t in (f"{used} of {money(st.budget.usd)} budget", used)
                    if len(t) <= room]
            head[1:1] = fits[:1]
        lines.append(_fit_segments(head, width))
        if period == "day":
            # A projection from a lower bound is one too.
            amount = plain_money((st.projected_usd if st is not None else None)
                                 or snap.projected_today(),
                                 unpriced=bool(row.unpriced_records
                                               or snap.window.unpriced_records))
            tail = [_pick(width, f"  at this rate ~{amount} by midnight",
                          f"  ~{amount} by midnight", f"  ~{amount} today")]
        else:
            if st is None or st.projected_usd is None:
                continue
            amount = plain_money(st.projected_usd, unpriced=row.unpriced_records > 0)
            tail = [_pick(width, f"  at this pace ~{amount} by month end",
                          f"  ~{amount} by month end", f"  ~{amount} month")]
        if st is not None and st.reached_at is not None:
            fmt = "%H:%M" if period == "day" else "%b %d"
            when = st.reached_at.astimezone().strftime(fmt)
            tail.append(f"budget reached ~{when}")
            if len(tail[0]) + 2 + len(tail[1]) > width:
                lines.append(_fit_segments(tail[:1], width))
                tail = [_pick(width, f"  budget reached ~{when}", f"  full ~{when}")]
        lines.append(_fit_segments(tail, width, "; "))
    mins = f"{snap.window_minutes:g}"
    rate = short_count(snap.tokens_per_minute)
    lines.append(_fit_segments([f"last {mins} min {rate:>6} tok/min", f"{_per_hour(snap)}/h"],
                               width))
    lines += _limit_lines(snap, width)
    return lines


def _limit_lines(snap: Snapshot, width: int) -> list[str]:
    """A line per plan-limit window: its use, reset and pace, worded to fit."""
    now = snap.now.timestamp()
    lines = []
    for lim in ordered(snap.limits):
        short = NAMES[lim.window][1]
        full = lim.pace(now)
        pace = f", 100% ~{clock(full, now)}" if full is not None else ""
        used = f"{short} {percent(lim)} used"
        resets = f"{used}, resets {clock(lim.resets_at, now)}"
        lines.append(_pick(width, window_line(lim, now), resets + pace, resets, used))
    return lines


# Session table columns: (title, priority: lower is dropped later, right-aligned?)
_COLUMNS = (("SESSION", 0, False), ("PROJECT", 5, False), ("MODEL", 2, False),
            ("IN", 3, True), ("OUT", 4, True), ("CACHE", 6, True), ("COST", 1, True))


def _model_name(model: str | None) -> str:
    if not model:
        return "?"
    return model.removeprefix("claude-")


def _session_rows(snap: Snapshot) -> list[list[str]]:
    rows = []
    for s in snap.sessions:
        u = s.usage
        rows.append([("*" if s.running else " ") + s.session[:8], (s.project or "-")[:16],
                     _model_name(s.model)[:20], short_count(u.input_tokens),
                     short_count(u.output_tokens), short_count(u.cache_read_tokens + u.cache_write_tokens), money(u)])
    return rows


def _table(rows: list[list[str]], width: int) -> list[str]:
    """Header and rows, dropping the least important columns until they fit."""
    keep = list(range(len(_COLUMNS)))
    while True:
        widths = {i: max(len(_COLUMNS[i][0]), *(cells(r[i]) for r in rows)) for i in keep}
        total = sum(widths.values()) + 2 * (len(keep) - 1)
        if total <= width or len(keep) <= 2:
            break
        keep.remove(max(keep, key=lambda i: _COLUMNS[i][1]))
    out = []
    for r in [[c[0] for c in _COLUMNS], *rows]:
        padded = [rjust(r[i], widths[i]) if _COLUMNS[i][2] else ljust(r[i], widths[i])
                  for i in keep]
        out.append("  ".join(padded).rstrip()[:width])
    return out


def render(snap: Snapshot, width: int = 80, height: int | None = None, *,
           live: bool = True) -> list[str]:
    """The screen: title, today/month/rate lines, the sessions; at most ``width``
    columns and ``height`` lines (None: as many as needed). ``live``: the title
    says how often it is redrawn and how to quit."""
    width = max(width, 20)
    title = ["claudewrap monitor", snap.now.astimezone().strftime("%H:%M:%S")]
    if snap.project:
        title.append(f"project {snap.project}")
    if live:
        title += [f"every {snap.interval:g}s", "q quits"]
    lines = [_fit_segments(title, width, " | ")]
    lines += _period_lines(snap, width)
    if snap.skipped_lines:
        lines.append(f"({snap.skipped_lines} unreadable journal lines skipped)"[:width])
    lines.append("")
    running = sum(1 for s in snap.sessions if s.running)
    if not snap.sessions:
        lines.append(_pick(width, f"no session active in the last {snap.window_minutes:g} min",
                           "no recent session"))
    else:
        lines.append(_pick(width, f"sessions: {running} running (*), "
                                  f"{len(snap.sessions) - running} recent",
                           f"{running} running, {len(snap.sessions) - running} recent"))
        table = _table(_session_rows(snap), width)
        lines += table
    if height is not None and len(lines) > height:
        hidden = len(lines) - height + 1
        lines = lines[:height - 1] + [_pick(width, f"(+{hidden} more; a taller window shows them)",
                                            f"(+{hidden} more)")]
    return lines


def status_line(snap: Snapshot) -> str:
    """One plain line for logs and pipes (no terminal)."""
    parts = [snap.now.astimezone().strftime("%Y-%m-%dT%H:%M:%S")]
    if snap.project:
        parts.append(f"project={snap.project}")
    by_period = {st.budget.period: st for st in snap.budgets}
    for name, row, period in (("today", snap.today, "day"), ("month", snap.month, "month")):
        text = f"{name}={money(row)} {name}_tokens={row.tokens}"
        st = by_period.get(period)
        if st is not None:
            text += f" {name}_budget={_used(st).replace('OVER ', '')}"
        parts.append(text)
    parts.append(f"tok/min={snap.tokens_per_minute:.0f} cost/h={_per_hour(snap)}")
    parts.append(f"running={sum(1 for s in snap.sessions if s.running)}")
    now = snap.now.timestamp()
    for lim in ordered(snap.limits):
        short = NAMES[lim.window][1]
        text = f"{short}={percent(lim)} {short}_resets={clock(lim.resets_at, now).replace(' ', '_')}"
        full = lim.pace(now)
        if full is not None:
            text += f" {short}_full={clock(full, now).replace(' ', '_')}"
        parts.append(text)
    return " ".join(parts)


# --- the terminal ----------------------------------------------------------------------

ENTER = "\x1b[?1049h\x1b[?25l"  # alternate screen, cursor hidden
LEAVE = "\x1b[?25h\x1b[?1049l"


def frame(lines: Sequence[str], width: int, color: bool) -> bytes:
    """Redraw in place: home, each line then erase to its end, erase below.
    Lines stay one short of the width (a full line would erase its own last
    character), and no newline follows the last one (it would scroll)."""
    out = []
    for n, line in enumerate(lines):
        line = line[:max(1, width - 1)]
        if color and (n == 0 or line.startswith("SESSION")):
            line = f"\x1b[1m{line}\x1b[22m"
        elif color and " OVER " in line:
            line = line.replace(" OVER ", " \x1b[31mOVER\x1b[39m ")
        out.append(line + "\x1b[K")
    return ("\x1b[H" + "\r\n".join(out) + "\x1b[J").encode("utf-8", "replace")


def _size(fd: int) -> tuple[int, int]:
    try:
        size = os.get_terminal_size(fd)
        return size.columns or 80, size.lines or 24
    except OSError:
        return 80, 24


def run_live(draw: Callable[[int, int], list[str]], update: Callable[[], None], *,
             interval: float, out_fd: int = 1, in_fd: int = 0, color: bool = True) -> None:
    """Redraw ``draw(width, height)`` every ``interval`` seconds (after ``update()``)
    and on resize, until q, Ctrl-C, SIGTERM or SIGHUP; the terminal is always
    restored: screen, cursor and input modes."""
    wake_r, wake_w = os.pipe()
    for fd in (wake_r, wake_w):
        os.set_blocking(fd, False)

    def stop(*_: object) -> None:
        raise SystemExit(0)

    old = {signal.SIGWINCH: signal.signal(signal.SIGWINCH, lambda *_: None),
           signal.SIGTERM: signal.signal(signal.SIGTERM, stop),
           signal.SIGHUP: signal.signal(signal.SIGHUP, stop)}
    old_wakeup = signal.set_wakeup_fd(wake_w, warn_on_full_buffer=False)
    keys = os.isatty(in_fd)
    saved = termios.tcgetattr(in_fd) if keys else None
    try:
        if saved is not None:
            quiet = termios.tcgetattr(in_fd)
            quiet[3] &= ~(termios.ECHO | termios.ICANON)  # keys unechoed, Ctrl-C still works
            quiet[6][termios.VMIN] = 1
            quiet[6][termios.VTIME] = 0
            termios.tcsetattr(in_fd, termios.TCSANOW, quiet)
        write_all(out_fd, ENTER.encode())
        shown = b""
        due = 0.0
        import time

        while True:
            if time.monotonic() >= due:
                update()
                due = time.monotonic() + interval
            width, height = _size(out_fd)
            data = frame(draw(width - 1, height), width, color)
            if data != shown:
                write_all(out_fd, data)
                shown = data
            rlist = [wake_r] + ([in_fd] if keys else [])
            try:
                ready, _, _ = select.select(rlist, [], [], max(0.0, due - time.monotonic()))
            except InterruptedError:
                continue
            if wake_r in ready:
                try:
                    os.read(wake_r, 512)
                except BlockingIOError:
                    pass
                shown = b""  # resized (or another signal): draw everything again
            if keys and in_fd in ready:
                data = os.read(in_fd, 64)
                if not data:
                    keys = False
                elif b"q" in data.lower():
                    return
    except KeyboardInterrupt:
        return
    finally:
        try:
            write_all(out_fd, LEAVE.encode())
        except OSError:
            pass
        if saved is not None:
            try:
                termios.tcsetattr(in_fd, termios.TCSADRAIN, saved)
            except termios.error:
                pass
        signal.set_wakeup_fd(old_wakeup)
        for sig, handler in old.items():
            signal.signal(sig, handler)
        os.close(wake_r)
        os.close(wake_w)


__all__ = ["Monitor", "SessionLine", "Snapshot", "frame", "money", "render", "run_live",
           "status_line"]
