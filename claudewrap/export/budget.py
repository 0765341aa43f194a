"""Budgets: what they are (config), how far the spending is, where it is heading,
and the one alert when a budget is crossed.

Config, in the same TOML file as the user's patterns (``config.toml``)::

    [budget]
    daily_usd = 5.0
    monthly_usd = 100.0

    [budget.projects.myproject]     # optional, per project
    daily_usd = 2.0

    [alerts]
    webhook_url = "https://example.invalid/hook"
    headers = { Authorization = "Bearer ..." }   # optional
    rate_limit_percent = [80, 95]   # optional: plan-limit windows (claudewrap.usage.limits)
    each_record = true              # optional: also POST each run's records, batched
                                    # (claudewrap.export.record_hook)

``$CLAUDEWRAP_BUDGET_DAY`` / ``$CLAUDEWRAP_BUDGET_MONTH`` override the two global
amounts (``0`` switches one off). Spending is what the reports count
(:mod:`claudewrap.usage.report`), in the local time zone.

An alert is raised at most once per crossing: a crossing is the budget (period,
its first day, project, amount) and it is claimed in ``<journal>.alerts`` under
a lock before anything is said or sent, so two sessions ending together never
both alert. The webhook POST runs in a detached process with a short timeout and
one retry: it never delays or fails the session that crossed the line.

Plan limits (a Claude.ai subscription's 5-hour and 7-day windows, as Claude
Code's status line reports them: claudewrap.usage.limits) alert the same way when a
window reaches one of ``rate_limit_percent``: once per window (its
``resets_at``) and threshold, claimed in the same file. They are checked after
a wrapped session and by whoever records a snapshot (:func:`check_rate_limits`).
"""

from __future__ import annotations

import fcntl
import json
import os
import sys
import time
from datetime import datetime, timedelta, timezone
from pathlib import Path

from claudewrap.plain import field, plain
from claudewrap.views.display import money

TYPE_CHECKING = False  # typing.TYPE_CHECKING without importing typing (3 ms a reader)
if TYPE_CHECKING:
    from collections.abc import Iterable
    from typing import Any

    from claudewrap.usage.limits import Snapshot
    from claudewrap.usage.report import Row
    from claudewrap.usage.state import UsageState

DAY_ENV = "CLAUDEWRAP_BUDGET_DAY"
MONTH_ENV = "CLAUDEWRAP_BUDGET_MONTH"
ALERTS_SUFFIX = ".alerts"
WEBHOOK_TIMEOUT = 3.0
WEBHOOK_RETRY_DELAY = 0.5
_KEEP_CLAIMS_DAYS = 62
PERIODS = ("day", "month")


class BudgetError(ValueError):
    """The budget or alerts config is wrong; the message says what to fix."""


@plain(frozen=True)
class Budget:
    period: str  # "day" or "month"
    usd: float
    project: str | None = None  # None: all usage

    def label(self) -> str:
        what = "daily" if self.period == "day" else "monthly"
        return f"{what} budget" + (f" of project {self.project}" if self.project else "")


@plain
class BudgetConfig:
    budgets: list[Budget] = field(default_factory=list)
    webhook_url: str | None = None
    headers: dict[str, str] = field(default_factory=dict)
    # Plan-limit windows alert when their use reaches one of these (percent, ascending).
    rate_limit_percent: tuple[float, ...] = ()
    # POST every wrapped run's records to webhook_url as they land (record_hook).
    each_record: bool = False

    def for_project(self, project: str | None) -> list[Budget]:
        """The global budgets and those of ``project``."""
        return [b for b in self.budgets if b.project is None or b.project == project]

    def get(self, period: str, project: str | None = None) -> Budget | None:
        for b in self.budgets:
            if b.period == period and b.project == project:
                return b
        return None


def _amount(where: str, value: Any) -> float | None:
    if isinstance(value, str):
        try:
            value = float(value.strip().lstrip("$"))
        except ValueError:
            raise BudgetError(f"{where}: {value!r} is not an amount in USD;"
                              f" write a number such as 5 or 12.50") from None
    if isinstance(value, bool) or not isinstance(value, (int, float)) or value < 0:
        raise BudgetError(f"{where}: must be a number of USD >= 0 (0 switches it off)")
    return float(value) or None


def _percents(where: str, value: Any) -> tuple[float, ...]:
    values = value if isinstance(value, list) else [value]
    if not all(isinstance(v, (int, float)) and not isinstance(v, bool) and 0 < v <= 100
               for v in values):
        raise BudgetError(f"{where}: use percentages between 0 and 100, e.g."
                          f" rate_limit_percent = [80, 95]")
    return tuple(sorted({float(v) for v in values}))


def _read_toml(path: Path) -> dict[str, Any]:
    from claudewrap.store.config import parse_toml

    try:
        text = path.read_text(encoding="utf-8")
    except FileNotFoundError:
        return {}
    except (OSError, UnicodeDecodeError) as exc:
        raise BudgetError(f"{path}: cannot read the config file: {exc}") from None
    return parse_toml(text, path, BudgetError)


def load_config(path: str | os.PathLike[str] | None = None, *,
                env: dict[str, str] | None = None, day: float | None = None,
                month: float | None = None) -> BudgetConfig:
    """Budgets and alerts from the config file, the environment and options.

    ``day``/``month`` (the monitor's options) win over ``$CLAUDEWRAP_BUDGET_*``,
    which win over the file. Raises :class:`BudgetError`.
    """
    from claudewrap.store.config import default_config_path

    env = dict(os.environ if env is None else env)
    cfg_path = Path(path) if path else default_config_path()
    data = _read_toml(cfg_path)
    where = str(cfg_path)
    section = data.get("budget", {})
    alerts = data.get("alerts", {})
    if not isinstance(section, dict) or not isinstance(alerts, dict):
        raise BudgetError(f"{where}: [budget] and [alerts] must be tables")
    amounts: dict[tuple[str, str | None], float | None] = {}
    for period, key in (("day", "daily_usd"), ("month", "monthly_usd")):
        if key in section:
            amounts[(period, None)] = _amount(f"{where}: budget.{key}", section[key])
    for name, var in (("day", DAY_ENV), ("month", MONTH_ENV)):
        text = env.get(var)
        if text is not None and text.strip():
            amounts[(name, None)] = _amount(f"${var}", text)
    for name, option in (("day", day), ("month", month)):
        if option is not None:
            amounts[(name, None)] = _amount(f"--budget-{name}", option)
    projects = section.get("projects", {})
    if not isinstance(projects, dict):
        raise BudgetError(f"{where}: budget.projects must be a table of [budget.projects.NAME]")
    for project, entry in projects.items():
        if not isinstance(entry, dict):
            raise BudgetError(f"{where}: budget.projects.{project} must be a table")
        for period, key in (("day", "daily_usd"), ("month", "monthly_usd")):
            if key in entry:
                amounts[(period, project)] = _amount(
                    f"{where}: budget.projects.{project}.{key}", entry[key])
    unknown = sorted(set(section) - {"daily_usd", "monthly_usd", "projects"})
    if unknown:
        raise BudgetError(f"{where}: unknown key budget.{unknown[0]}"
                          f" (allowed: daily_usd, monthly_usd, projects)")
    url = alerts.get("webhook_url")
    if url is not None and (not isinstance(url, str) or not url.startswith(("http://",
                                                                             "https://"))):
        raise BudgetError(f"{where}: alerts.webhook_url must be an http:// or https:// URL")
    headers = alerts.get("headers", {})
    if not isinstance(headers, dict) or not all(isinstance(v, str) for v in headers.values()):
        raise BudgetError(f"{where}: alerts.headers must be a table of strings")
    percents = _percents(f"{where}: alerts.rate_limit_percent",
                         alerts["rate_limit_percent"]) if "rate_limit_percent" in alerts else ()
    each_record = alerts.get("each_record", False)
    if not isinstance(each_record, bool):
        raise BudgetError(f"{where}: alerts.each_record must be true or false")
    if each_record and not url:
        raise BudgetError(f"{where}: alerts.each_record needs alerts.webhook_url, the URL"
                          f" to POST the records to")
    budgets = [Budget(period, usd, project) for (period, project), usd in amounts.items()
               if usd is not None]
    return BudgetConfig(budgets=budgets, webhook_url=url or None,
                        headers={str(k): v for k, v in headers.items()},
                        rate_limit_percent=percents, each_record=each_record)


# --- spending and projection ---------------------------------------------------------


@plain
class Standing:
    """One budget against its period's spending."""

    budget: Budget
    period_start: str  # YYYY-MM-DD (day) or YYYY-MM (month)
    row: Row  # the period's usage
    projected_usd: float | None = None  # at the end of the period, at the current pace
    reached_at: datetime | None = None  # when the budget will be reached at that pace

    @property
    def spent(self) -> float:
        """Printed + estimated cost; a lower bound when :attr:`unpriced_records`."""
        return self.row.cost_usd

    @property
    def estimated(self) -> bool:
        """Part of the spending was priced by claudewrap from list prices."""
        return self.row.cost_estimated_usd > 0

    @property
    def unpriced_records(self) -> int:
        """Records of models without a price: their cost is not in :attr:`spent`,
        which is then a lower bound (shown with ``+?``)."""
        return self.row.unpriced_records

    @property
    def fraction(self) -> float:
        return self.spent / self.budget.usd

    @property
    def over(self) -> bool:
        return self.spent >= self.budget.usd

    @property
    def key(self) -> str:
        """Identifies the crossing: the same budget, period and amount alert once."""
        return f"{self.budget.period}:{self.period_start}:{self.budget.project or '*'}:" \
               f"{self.budget.usd:g}"


def _local(now: datetime) -> datetime:
    return now.astimezone()


def standings(state: UsageState, budgets: list[Budget], *, now: datetime | None = None,
              cost_per_hour: float | None = None) -> list[Standing]:
    """How each budget stands; with ``cost_per_hour`` (the recent burn rate) the daily
    budgets get a projection for the rest of the day. Monthly budgets are projected at
    the month's average pace so far."""
    from claudewrap.usage.filters import Filters
    from claudewrap.usage.report import make_report

    now = now or datetime.now(timezone.utc)
    local = now.astimezone(state.tz) if state.tz is not None else _local(now)
    today = local.date()
    reports: dict[str | None, Any] = {}
    out = []
    for b in budgets:
        if b.project not in reports:
            filters = Filters(projects=(b.project,)) if b.project else None
            reports[b.project] = make_report(state, filters=filters, today=today,
                                             count_sessions=False)
        periods = reports[b.project].periods
        if b.period == "day":
            st = Standing(b, today.isoformat(), periods["today"])
            if cost_per_hour is not None:
                midnight = datetime.combine(today + timedelta(days=1), datetime.min.time(),
                                            tzinfo=local.tzinfo)
                hours_left = max(0.0, (midnight - local).total_seconds() / 3600)
                st.projected_usd = st.spent + cost_per_hour * hours_left
                if not st.over and cost_per_hour > 0:
                    at = local + timedelta(hours=(b.usd - st.spent) / cost_per_hour)
                    st.reached_at = at if at < midnight else None
        else:
            st = Standing(b, today.strftime("%Y-%m"), periods["this month"])
            start = datetime.combine(today.replace(day=1), datetime.min.time(),
                                     tzinfo=local.tzinfo)
            import calendar  # imports locale: only a monthly budget's pace needs it

            days = calendar.monthrange(today.year, today.month)[1]
            elapsed = max((local - start).total_seconds() / 86400, 1 / 24)
            per_day = st.spent / elapsed
            st.projected_usd = per_day * days
            if not st.over and per_day > 0:
                at = local + timedelta(days=(b.usd - st.spent) / per_day)
                st.reached_at = at if at < start + timedelta(days=days) else None
        out.append(st)
    return out


# --- alerts ----------------------------------------------------------------------------


def claims_path(journal: Path) -> Path:
    return journal.with_name(journal.name + ALERTS_SUFFIX)


def claim(journal: Path, keys: list[str], *, now: float | None = None,
          lock_timeout: float = 2.0) -> list[str]:
    """Of ``keys``, those not alerted before: recorded now, under a lock.

    A file that cannot be written claims nothing (no alert rather than alerts
    repeated at every session); nor does a FIFO, socket or device in its place
    (never waited on). One that cannot be read (torn, deeply nested, not an
    object) is as good as empty.
    """
    from claudewrap.store.files import open_regular

    if not keys:
        return []
    path = claims_path(journal)
    now = time.time() if now is None else now
    try:
        fd = open_regular(path, os.O_RDWR | os.O_CREAT)
    except OSError:
        return []
    try:
        deadline = time.monotonic() + lock_timeout
        while True:
            try:
                fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
                break
            except BlockingIOError:
                if time.monotonic() > deadline:
                    return []
                time.sleep(0.01)
        raw = b""
        while chunk := os.read(fd, 65536):
            raw += chunk
        try:
            seen = json.loads(raw) if raw.strip() else {}
            if not isinstance(seen, dict):
                seen = {}
        except Exception:  # noqa: BLE001 - RecursionError too: start again, empty
            seen = {}
        fresh = [k for k in dict.fromkeys(keys) if k not in seen]
        if not fresh:
            return []
        cutoff = now - _KEEP_CLAIMS_DAYS * 86400
        seen = {k: v for k, v in seen.items() if isinstance(v, (int, float)) and v >= cutoff}
        seen.update({k: now for k in fresh})
        data = json.dumps(seen, indent=0, sort_keys=True).encode()
        os.lseek(fd, 0, os.SEEK_SET)
        os.ftruncate(fd, 0)
        view = memoryview(data)
        while view:
            view = view[os.write(fd, view):]
        return fresh
    except OSError:
        return []
    finally:
        os.close(fd)  # releases the lock


def notice(st: Standing) -> str:
    """The one line on stderr for a crossing."""
    when = "today" if st.budget.period == "day" else "this month"
    spent = money(st.spent, estimated=st.estimated, unpriced=st.unpriced_records > 0,
                  places=None)
    return (f"claudewrap: budget reached: {when}'s spending {spent} is over your"
            f" {st.budget.label()} of {money(st.budget.usd, places=None)} (see `claudewrap monitor`)")


def webhook_body(st: Standing, *, session: str | None, host: str | None) -> dict[str, Any]:
    """The JSON body POSTed for a crossing (documented in the README)."""
    from claudewrap.store.records import utc_now_iso

    row = st.row
    return {
        "event": "budget_exceeded",
        "period": st.budget.period,
        "period_start": st.period_start,
        "budget_usd": st.budget.usd,
        "cost_usd": round(row.cost_usd, 6),
        "cost_estimated_usd": round(row.cost_estimated_usd, 6),
        # Records of models without a price: cost_usd leaves them out (a lower bound).
        "unpriced_records": row.unpriced_records,
        "tokens": {"input": row.input_tokens, "output": row.output_tokens,
                   "cache_read": row.cache_read_tokens, "cache_write": row.cache_write_tokens,
                   "total": row.tokens},
        "project": st.budget.project,
        "host": host,
        "session": session,
        "ts": utc_now_iso(),
    }


def post(url: str, headers: dict[str, str], body: dict[str, Any], *,
         timeout: float = WEBHOOK_TIMEOUT, retries: int = 1) -> bool:
    """POST ``body`` as JSON; one retry after a failure. True when a 2xx came back."""
    import urllib.error
    import urllib.request

    data = json.dumps(body).encode()
    for attempt in range(retries + 1):
        if attempt:
            time.sleep(WEBHOOK_RETRY_DELAY)
        req = urllib.request.Request(url, data=data, method="POST", headers={
            "Content-Type": "application/json", "User-Agent": "claudewrap", **headers})
        try:
            with urllib.request.urlopen(req, timeout=timeout) as resp:
                if 200 <= resp.status < 300:
                    return True
        except (urllib.error.URLError, OSError, ValueError):
            pass
    return False


def post_in_background(url: str, headers: dict[str, str], bodies: list[dict[str, Any]]) -> None:
    """Send the bodies from a detached process: the caller never waits for the receiver."""
    import subprocess

    payload = json.dumps({"url": url, "headers": headers, "bodies": bodies}).encode()
    from claudewrap import child_env

    env = child_env()
    proc = subprocess.Popen(
        [sys.executable, "-m", "claudewrap.export.budget"], stdin=subprocess.PIPE, env=env,
        stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, start_new_session=True,
        close_fds=True)
    assert proc.stdin is not None
    try:
        proc.stdin.write(payload)  # small: fits the pipe, never blocks
        proc.stdin.close()
    except OSError:
        pass
    proc.returncode = 0  # detached: nobody waits for it


def limit_key(snap: Snapshot, percent: float) -> str:
    """Identifies a plan-limit crossing: the window, its reset time and the threshold."""
    return f"limit:{snap.window}:{snap.resets_at:.0f}:{percent:g}"


def limit_notice(snap: Snapshot, percent: float, now: float) -> str:
    """The one line on stderr for a plan-limit crossing."""
    from claudewrap.views.limits_view import window_line

    return f"claudewrap: plan limit over {percent:g}%: {window_line(snap, now)}"


def limit_body(snap: Snapshot, percent: float, now: float, *, session: str | None
               ) -> dict[str, Any]:
    """The JSON body POSTed for a plan-limit crossing (documented in the README)."""
    from claudewrap.store.records import utc_now_iso

    full = snap.pace(now)
    return {
        "event": "rate_limit_reached",
        "window": snap.window,
        "threshold_percent": percent,
        "used_percent": round(snap.used * 100, 4),
        "resets_at": snap.resets_at,
        # When the window reaches 100% at its pace so far (null: not before it resets).
        "full_at": round(full) if full is not None else None,
        "host": snap.host,
        "session": session,
        "ts": utc_now_iso(),
    }


def _limit_crossings(journal: Path, config: BudgetConfig, snapshots: Iterable[Snapshot],
                     now: float, session: str | None) -> tuple[list[str], list[dict[str, Any]]]:
    """(notices, webhook bodies) of the plan-limit thresholds newly reached: one of
    each per window, for the highest threshold it reached (the lower ones reached
    at the same time are claimed with it, never alerted later)."""
    percents = config.rate_limit_percent
    if not percents:
        return [], []
    reached = {}
    for snap in snapshots:
        if snap.resets_at > now and snap.used * 100 >= percents[0]:
            reached[snap.window] = (snap, [p for p in percents if snap.used * 100 >= p])
    if not reached:
        return [], []
    fresh = set(claim(journal, [limit_key(snap, p) for snap, ps in reached.values()
                                for p in ps], now=now))
    notices, bodies = [], []
    for snap, ps in reached.values():
        new = [p for p in ps if limit_key(snap, p) in fresh]
        if new:
            notices.append(limit_notice(snap, new[-1], now))
            bodies.append(limit_body(snap, new[-1], now, session=session))
    return notices, bodies


def check_rate_limits(journal: Path, config: BudgetConfig | None = None,
                      snapshots: Iterable[Snapshot] | None = None, *,
                      session: str | None = None, now: float | None = None) -> list[str]:
    """Alert the plan-limit windows that reached a threshold of
    ``[alerts] rate_limit_percent`` (once per window and threshold).

    ``snapshots``: the windows as just seen (the status line passes what it
    recorded); None reads the newest fresh ones (claudewrap.usage.limits.latest).
    Returns the notice lines (one per window newly over a threshold) and POSTs
    the webhook from a detached process. Cheap when nothing is over a threshold:
    no file is read beyond the snapshots'. Never waits on the receiver.
    """
    config = config if config is not None else load_config()
    if not config.rate_limit_percent:
        return []
    now = time.time() if now is None else now
    if snapshots is None:
        from claudewrap.usage.limits import latest

        snapshots = latest(journal, now=now).values()
    notices, bodies = _limit_crossings(journal, config, snapshots, now, session)
    if bodies and config.webhook_url:
        post_in_background(config.webhook_url, config.headers, bodies)
    return notices


def check_after_session(journal: Path, *, project: str | None, session: str | None,
                        host: str | None, config: BudgetConfig | None = None,
                        now: datetime | None = None) -> list[str]:
    """After a wrapped session: alert the budgets it took over their line, and the
    plan-limit windows (:func:`check_rate_limits`) that reached a threshold.

    Returns the notice lines for stderr (one per new crossing) and sends the
    webhook in the background. Does nothing without budgets or thresholds.
    """
    config = config if config is not None else load_config()
    budgets = config.for_project(project)
    crossed: list[Standing] = []
    if budgets:
        from claudewrap.usage.rollup import load_state

        over = [st for st in standings(load_state(journal), budgets, now=now) if st.over]
        fresh = set(claim(journal, [st.key for st in over]))
        crossed = [st for st in over if st.key in fresh]
    bodies = [webhook_body(st, session=session, host=host) for st in crossed]
    notices = [notice(st) for st in crossed]
    if config.rate_limit_percent:
        from claudewrap.usage.limits import latest

        stamp = (now or datetime.now(timezone.utc)).timestamp()
        more, limit_bodies = _limit_crossings(
            journal, config, latest(journal, now=stamp).values(), stamp, session)
        notices += more
        bodies += limit_bodies
    if bodies and config.webhook_url:
        post_in_background(config.webhook_url, config.headers, bodies)
    return notices


def _main() -> int:
    """``python -m claudewrap.export.budget``: POST the bodies read as JSON from stdin."""
    job = json.loads(sys.stdin.buffer.read())
    ok = True
    for body in job["bodies"]:
        ok = post(job["url"], job.get("headers") or {}, body) and ok
    return 0 if ok else 1


if __name__ == "__main__":
    sys.exit(_main())


__all__ = ["Budget", "BudgetConfig", "BudgetError", "Standing", "check_after_session",
           "check_rate_limits", "claim", "limit_body", "limit_key", "limit_notice",
           "load_config", "notice", "post", "post_in_background", "standings",
           "webhook_body"]
