"""`claudewrap advise`: a few suggestions, each with its evidence and the dollars at stake.

Each rule is a small function over one report of the usage core (grouped by day,
session and model; by day and project; by day and ``tag:agent``) and says nothing
unless the journal clearly supports it. The thresholds are named below: a
suggestion that is wrong costs a person's trust, one that is missing costs little.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass, field
from datetime import date, timedelta
from pathlib import Path
from typing import Any

from claudewrap.usage.filters import Filters
from claudewrap.usage.pricing import PriceTable
from claudewrap.usage.report import Report, Row
from claudewrap.views.analysis import cache_ratio, repriced
from claudewrap.views.display import count, money

CHEAPER_MODEL = "claude-sonnet-5"  # what an expensive model's small sessions are priced on
LITTLE_OUTPUT = 500  # output tokens of a session "with little output"
MIN_SESSIONS = 3  # sessions of a pattern before it is worth a suggestion
MIN_USD = 0.50  # dollars at stake below which nothing is said
RECENT_DAYS, USUAL_DAYS = 7, 28  # this week against the four weeks before it
CACHE_DROP = 0.5  # this week's cache read ratio below half the usual one
MIN_USUAL_RATIO = 0.2
MIN_CACHE_TOKENS = 100_000  # input + cache tokens of each side of the comparison
MOST_SPEND = 0.7  # one project (or agent) taking 70 % of the spend or more
MIN_SPEND = 1.0
SHORT_OUTPUT = 2_000  # output tokens of a "short" session
RESTART_SESSIONS = 5
WRITE_SHARE = 0.5  # cache writes' share of a short session's list-price cost
_DIMS = (("day", "session", "model"), ("day", "project"), ("day", "tag:agent"))


@dataclass
class Suggestion:
    kind: str  # expensive_model | cache_drop | most_spend | restarts
    title: str
    evidence: str
    usd_at_stake: float
    numbers: dict[str, Any] = field(default_factory=dict)

    def to_json(self) -> dict[str, Any]:
        return {"kind": self.kind, "title": self.title, "evidence": self.evidence,
                "usd_at_stake": round(self.usd_at_stake, 6), "numbers": self.numbers}


@dataclass
class Advice:
    since: str  # the first local day looked at (YYYY-MM-DD)
    suggestions: list[Suggestion]
    sessions: int
    cost_usd: float

    def to_json(self) -> dict[str, Any]:
        """The ``advise --json`` object (keys documented in the README)."""
        return {"since": self.since, "sessions": self.sessions,
                "cost_usd": round(self.cost_usd, 6),
                "suggestions": [s.to_json() for s in self.suggestions]}


def _add(rows: Iterable[Row]) -> Row:
    out = Row()
    for r in rows:
        out.add(r)
    return out


def _by(report: Report, dims: tuple[str, ...], first: str, last: str | None = None,
        keep: slice = slice(1, None)) -> dict[tuple[str, ...], Row]:
    """``report.groups[dims]`` of the days ``first`` to ``last`` (inclusive), summed
    over the day (the first label)."""
    parts: dict[tuple[str, ...], list[Row]] = {}
    for key, row in report.groups[dims].items():
        if key[0] >= first and (last is None or key[0] <= last):
            parts.setdefault(key[keep], []).append(row)
    return {k: _add(rows) for k, rows in parts.items()}


def _name(model: str) -> str:
    return model.removeprefix("claude-")


def expensive_model(pairs: dict[tuple[str, ...], Row], table: PriceTable) -> list[Suggestion]:
    """Sessions with little output on a model whose output rate is above CHEAPER_MODEL's."""
    cheap = table.list_price(CHEAPER_MODEL)
    if cheap is None or cheap.output is None:
        return []
    small: dict[str, list[Row]] = {}
    for (_session, model), row in pairs.items():
        price = table.lookup(model)
        if (price is not None and price.output is not None and price.output > cheap.output
                and 0 < row.tokens and row.output_tokens < LITTLE_OUTPUT):
            small.setdefault(model, []).append(row)
    out = []
    for model, rows in sorted(small.items()):
        spent = sum(r.cost_usd for r in rows)
        on_cheap = sum(repriced(r, cheap) or 0.0 for r in rows)
        if len(rows) < MIN_SESSIONS or spent - on_cheap < MIN_USD:
            continue
        out.append(Suggestion(
            "expensive_model", f"Use {_name(CHEAPER_MODEL)} for short questions",
            f"{len(rows)} sessions on {_name(model)} with < {count(LITTLE_OUTPUT)} output"
            f" tokens each cost {money(spent)}; on {_name(CHEAPER_MODEL)} they would have"
            f" cost {money(on_cheap)}",
            spent - on_cheap,
            {"model": model, "sessions": len(rows), "cost_usd": round(spent, 6),
             "cost_on_cheaper_usd": round(on_cheap, 6), "cheaper_model": CHEAPER_MODEL}))
    return out


def cache_drop(recent: dict[tuple[str, ...], Row], usual: dict[tuple[str, ...], Row],
               table: PriceTable) -> list[Suggestion]:
    """This week's cache read ratio far below the four weeks before."""
    now_all, before_all = _add(recent.values()), _add(usual.values())
    now_r, before_r = cache_ratio(now_all), cache_ratio(before_all)
    if now_r is None or before_r is None or before_r < MIN_USUAL_RATIO:
        return []
    if now_r >= before_r * CACHE_DROP or min(
            now_all.tokens - now_all.output_tokens,
            before_all.tokens - before_all.output_tokens) < MIN_CACHE_TOKENS:
        return []
    stake = 0.0  # the week's reads at the usual ratio, at the input rate instead of reads
    for (model,), row in recent.items():
        price = table.lookup(model)
        whole = row.input_tokens + row.cache_read_tokens + row.cache_write_tokens
        missing = max(0.0, before_r * whole - row.cache_read_tokens)
        if price is not None and price.input is not None and price.cache_read is not None:
            stake += missing * (price.input - price.cache_read) / 1_000_000
    if stake < MIN_USD:
        return []
    return [Suggestion(
        "cache_drop", "Your cache reads dropped this week",
        f"cache read ratio {now_r:.0%} in the last {RECENT_DAYS} days against {before_r:.0%}"
        f" in the {USUAL_DAYS} before; at your usual ratio the last {RECENT_DAYS} days"
        f" would have cost {money(stake)} less (a changed CLAUDE.md, tools or MCP servers"
        f" start the cache again; so do new sessions instead of --continue)",
        stake, {"recent_ratio": round(now_r, 6), "usual_ratio": round(before_r, 6)})]


def most_spend(rows: dict[tuple[str, ...], Row], what: str) -> list[Suggestion]:
    """One project (or agent) taking most of the spend."""
    total = sum(r.cost_usd for r in rows.values())
    named = [(k[0], r) for k, r in rows.items() if k[0] != "(none)" and r.cost_usd > 0]
    if total < MIN_SPEND or len(rows) < 2 or not named:
        return []
    top, row = max(named, key=lambda kv: (kv[1].cost_usd, kv[0]))
    share = row.cost_usd / total
    if share < MOST_SPEND:
        return []
    return [Suggestion(
        "most_spend", f"{what.capitalize()} {top} takes most of the spend",
        f"{what} {top} cost {money(row.cost_usd)} of {money(total)} ({share:.0%}); see"
        f" `claudewrap usage --analysis --by {what if what == 'project' else 'tag:agent'}`",
        row.cost_usd, {"dimension": what, "name": top, "cost_usd": round(row.cost_usd, 6),
                       "total_usd": round(total, 6), "share": round(share, 6)})]


def restarts(pairs: dict[tuple[str, ...], Row], table: PriceTable) -> list[Suggestion]:
    """Many short sessions that pay mostly for writing the cache again."""
    sessions: dict[str, list[tuple[str, Row]]] = {}
    for (session, model), row in pairs.items():
        sessions.setdefault(session, []).append((model, row))
    writes = extra = 0.0
    hit = 0
    for parts in sessions.values():
        if sum(r.output_tokens for _, r in parts) >= SHORT_OUTPUT:
            continue
        listed, written, over = 0.0, 0.0, 0.0
        for model, r in parts:
            price = table.lookup(model)
            if price is None or price.cache_write_5m is None or price.cache_read is None:
                break
            listed += repriced(r, price) or 0.0
            written += r.cache_write_tokens * price.cache_write_5m / 1_000_000
            over += r.cache_write_tokens * (price.cache_write_5m - price.cache_read) / 1_000_000
        else:
            if listed and written / listed >= WRITE_SHARE:
                hit, writes, extra = hit + 1, writes + written, extra + over
    if hit < RESTART_SESSIONS or extra < MIN_USD:
        return []
    return [Suggestion(
        "restarts", "Continue sessions instead of starting new ones",
        f"{hit} short sessions (< {count(SHORT_OUTPUT)} output tokens) paid {money(writes)}"
        f" for writing the cache, most of their cost; read back in a continued session"
        f" (claude --continue) the same tokens would have cost {money(writes - extra)}",
        extra, {"sessions": hit, "cache_write_usd": round(writes, 6),
                "as_cache_reads_usd": round(writes - extra, 6)})]


def suggestions(report: Report, *, since: date, today: date, table: PriceTable) -> Advice:
    """The suggestions of ``report`` (grouped by :data:`_DIMS`) from ``since`` on,
    biggest first; the cache comparison always looks at the last five weeks."""
    first = since.isoformat()
    pairs = _by(report, _DIMS[0], first)
    recent_start = today - timedelta(days=RECENT_DAYS - 1)
    recent = _by(report, _DIMS[0], recent_start.isoformat(), keep=slice(2, 3))
    usual = _by(report, _DIMS[0], (recent_start - timedelta(days=USUAL_DAYS)).isoformat(),
                (recent_start - timedelta(days=1)).isoformat(), keep=slice(2, 3))
    found = [*expensive_model(pairs, table), *cache_drop(recent, usual, table),
             *most_spend(_by(report, _DIMS[1], first), "project"),
             *most_spend(_by(report, _DIMS[2], first), "agent"), *restarts(pairs, table)]
    found.sort(key=lambda s: -s.usd_at_stake)
    return Advice(first, found, len({s for s, _ in pairs}),
                  sum(r.cost_usd for r in pairs.values()))


def advise(path: Path, *, since: date, today: date, tz: Any, table: PriceTable,
           use_cache: bool = True) -> tuple[Advice, Report]:
    """Read the journal at ``path`` and make :func:`suggestions` (JournalError,
    PriceFileError)."""
    from claudewrap.views.usage_view import summary

    earliest = min(since, today - timedelta(days=RECENT_DAYS + USUAL_DAYS - 1))
    report = summary(path, tz=tz, use_cache=use_cache, since=None, until=None, dims=_DIMS,
                     filters=Filters(since_day=earliest.isoformat()), table=table,
                     count_sessions=False)
    return suggestions(report, since=since, today=today, table=report.table or table), report


def render(advice: Advice) -> str:
    """The text of ``advise``: one numbered block per suggestion."""
    if not advice.suggestions:
        if not advice.sessions:
            return f"No suggestions: no usage recorded since {advice.since}.\n"
        return (f"No suggestions: nothing in {advice.sessions} sessions since {advice.since}"
                f" ({money(advice.cost_usd)}) points to a saving.\n")
    lines = []
    for n, s in enumerate(advice.suggestions, 1):
        lines += [f"{n}. {s.title} ({money(s.usd_at_stake)} at stake)", f"   {s.evidence}", ""]
    return "\n".join(lines[:-1]) + "\n"


__all__ = ["Advice", "Suggestion", "advise", "cache_drop", "expensive_model", "most_spend",
           "render", "restarts", "suggestions"]
