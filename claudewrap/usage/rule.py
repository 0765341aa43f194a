"""The summing rule, plainly: journal records in, what counts out.

This is the reference. It is short and slow on purpose: it holds no state
between calls and takes no shortcut. The fast path (:class:`claudewrap.usage.state.UsageState`,
its rollup, its parallel read) must give the same rows; tests/test_rule.py checks
that on random journals. When the rule changes, it changes here first.

1. **The same request counts once.** Delta records with the same ``request_id``
   are one API request seen by several sources: the most exact source counts
   (otel = transcript > pty > scan > manual; an approximate record below all
   exact ones; among equals the first in the journal).
2. **Exact sources win over the screen.** A session (wrapper ``session`` or
   Claude session) with per-request records (otel, transcript) ignores its pty
   and scan records. Otherwise an approximate ``total`` is dropped where the
   same Claude session has an exact ``total`` (a ``-p`` JSON result).
3. **Within one session and source, totals replace deltas.** Totals count as a
   running total per model: each counter counts the highest value it reached,
   each rise dated at the record that shows it. A rounded screen total of a
   known Claude session (``claude -p --resume ID /cost`` names it) is that
   session's, whichever wrapped run showed it (:func:`unit_key`).
4. **Never less than Claude Code displayed.** Where rule 2 set a screen total
   aside, the session's exact records per model must reach what that block
   displayed, beyond the block's rounding (``1.2k`` is 1,150-1,249; a cost
   printed with 4 decimals is +-0.00005); the rest counts as the screen's.
   Sessions linked by a record (a wrapper session and the Claude session it
   ran) are one session here. Not applied to a state cut at a time (``--since
   24h``): its exact part and the whole block cannot be compared.
"""

from __future__ import annotations

from claudewrap.store.records import UsageRecord

TYPE_CHECKING = False  # typing.TYPE_CHECKING without importing typing (3 ms a reader)
if TYPE_CHECKING:
    from collections.abc import Callable, Iterable, Sequence
    from typing import Any

    Attribution = tuple[Any, Any, Any, tuple[tuple[str, str], ...]]  # project, host, pane, tags

PRIORITY = {"otel": 6, "transcript": 6, "pty": 5, "scan": 4, "manual": 3}
PER_REQUEST = ("otel", "transcript")
SCREEN = ("pty", "scan")
# Sources that show a session's running totals rather than each request: the
# screen, Claude Code's status-line input (the session's exact running cost) and
# ~/.claude.json (the last session's totals). Rule 2 sets them aside for
# per-request records; rule 4 holds those to them.
SUMMARY = (*SCREEN, "statusline", "claude_json")

UnitKey = tuple[str, str, str, bool]  # session, source, Claude session, approximate
if TYPE_CHECKING:
    # (unit, model, day, attribution, cost printed?) -> [records, in, out, cache read,
    # cache write, printed cost]
    RowKey = tuple[UnitKey, Any, str, Attribution, bool]


def undated(model: Any) -> Any:
    r"""A model id without its release date, as rule 4 matches them: OpenTelemetry
    reports ``claude-haiku-4-5-20251001`` where ``/cost`` shows ``claude-haiku-4-5``.
    ``re.sub(r"-\d{8}$", "", model)`` without `re` (not imported on the status
    line's path; tests/test_pricing_names.py holds it to the pattern)."""
    if not isinstance(model, str):
        return model
    t, nl = (model[:-1], "\n") if model.endswith("\n") else (model, "")
    if len(t) >= 9 and t[-9] == "-" and t[-8:].isdecimal():
        return t[:-9] + nl
    return model


def priority(r: UsageRecord) -> int:
    """Rule 1's rank of a record (higher wins)."""
    return 1 if r.approximate else PRIORITY.get(r.source, 2)


def unit_key(session: str, source: str, claude_session: str | None, approximate: bool
             ) -> UnitKey:
    """The group a record's numbers add up in: its session, source, Claude session
    and whether it was printed rounded.

    A rounded screen total of a known Claude session belongs to that session
    wherever it was shown: ``claude -p --resume ID /cost`` prints a finished
    session's whole block again, in another wrapped run, and it is one running
    total with every other block of that session.
    """
    if approximate and claude_session and source in SCREEN:
        session = claude_session
    return (session, source, claude_session or session, approximate)


def unit_of(r: UsageRecord) -> UnitKey:
    return unit_key(r.session, r.source, r.claude_session, r.approximate)


# Where the tokens went (records.py: agent, command) rides in an attribution's
# tag tuple under keys no tag can have (a tag is KEY=VALUE: its key never holds
# "="), so the rollup's saved form is the same as before them.
AGENT_TAG = "=agent"
COMMAND_TAG = "=command"


def attribution_tags(tags: dict[str, str] | None, agent: str | None,
                     command: str | None) -> tuple[tuple[str, str], ...]:
    """The tag part of an attribution: the tags sorted, then agent and command."""
    items = sorted(tags.items()) if tags else []
    if agent:
        items.append((AGENT_TAG, agent))
    if command:
        items.append((COMMAND_TAG, command))
    return tuple(items)


def attribution_of(r: UsageRecord) -> Attribution:
    return (r.project, r.host, r.tmux_pane or r.screen_session,
            attribution_tags(r.tags, r.agent, r.command))


def printed(r: UsageRecord) -> bool:
    return r.cost_usd is not None and not r.cost_estimated


def counted_requests(records: Sequence[UsageRecord]) -> set[int]:
    """Rule 1: the positions of delta records that another record of the same
    request outranks (they do not count)."""
    best: dict[str, int] = {}
    out: set[int] = set()
    for n, r in enumerate(records):
        if r.kind != "delta" or not r.request_id:
            continue
        first = best.get(r.request_id)
        if first is None:
            best[r.request_id] = n
        elif priority(r) > priority(records[first]):
            out.add(first)
            best[r.request_id] = n
        else:
            out.add(n)
    return out


def _add(rows: dict[RowKey, list[Any]], key: RowKey, values: Sequence[Any]) -> None:
    have = rows.setdefault(key, [0, 0, 0, 0, 0, 0.0])
    for j, v in enumerate(values):
        have[j] += v


def unit_rows(records: Sequence[UsageRecord], day: Callable[[str], str]
              ) -> tuple[dict[UnitKey, dict[RowKey, list[Any]]],
                         dict[UnitKey, dict[RowKey, list[Any]]],
                         dict[UnitKey, dict[Any, list[Any]]]]:
    """Per unit: the rows of its deltas (less rule 1's losers), the rises of its
    running totals (rule 3), and each model's highest values (for rule 4)."""
    lost = counted_requests(records)
    deltas: dict[UnitKey, dict[RowKey, list[Any]]] = {}
    rises: dict[UnitKey, dict[RowKey, list[Any]]] = {}
    highest: dict[UnitKey, dict[Any, list[Any]]] = {}
    for n, r in enumerate(records):
        unit = unit_of(r)
        deltas.setdefault(unit, {})
        rises.setdefault(unit, {})
        key: RowKey = (unit, r.model, day(r.ts), attribution_of(r), printed(r))
        if r.kind == "delta":
            if n not in lost:
                _add(deltas[unit], key, [1, r.input_tokens, r.output_tokens,
                                         r.cache_read_tokens, r.cache_write_tokens,
                                         r.cost_usd if printed(r) else 0.0])
            continue
        mx = highest.setdefault(unit, {}).setdefault(r.model, [0, 0, 0, 0, 0.0])
        now = [r.input_tokens, r.output_tokens, r.cache_read_tokens, r.cache_write_tokens,
               r.cost_usd if printed(r) else 0.0]
        rise = [max(0, now[j] - mx[j]) for j in range(5)]
        if not any(rise):
            continue
        mx[:] = [mx[j] + rise[j] for j in range(5)]
        _add(rises[unit], key, [1, *rise])
    return deltas, rises, highest


def displayed_slack(value: float, approximate: bool) -> float:
    """How far below the true count a displayed count may be (rule 4): ``1.2k`` or
    ``1.2m`` are rounded to one decimal; smaller counts are shown whole."""
    if not approximate:
        return 0.0
    if value >= 999_950:
        return 50_000.0
    if value >= 999.5:
        return 50.0
    return 0.5


def cost_slack(value: float) -> float:
    """Claude Code prints a cost with 4 decimals up to $0.50, with 2 above."""
    return 0.005 if value > 0.5 else 0.00005


def effective_rows(records: Iterable[UsageRecord], day: Callable[[str], str],
                   floor: bool = True) -> dict[RowKey, list[Any]]:
    """What counts of ``records`` (in journal order, times in the journal's UTC form):
    rows with records > 0 (and rule 4's rows), keyed by unit, model, local day
    (``day(ts)``), attribution and whether the cost was printed."""
    records = list(records)
    deltas, rises, highest = unit_rows(records, day)
    units = list(deltas)
    # Rule 2.
    per_request = {key for u in units if u[1] in PER_REQUEST and not u[3] for key in (u[0], u[2])}
    set_aside = [u for u in units if u[1] in SUMMARY
                 and (u[0] in per_request or u[2] in per_request)]
    kept = [u for u in units if u not in set_aside]
    # A unit "has totals" once it has a total record, even one that raised nothing.
    has_totals = {unit_of(r) for r in records if r.kind == "total"}
    # A Claude session's cost alone (the status line) beside an exact summary of the
    # same session with its models (~/.claude.json, a -p result): the latter counts,
    # the cost alone is its floor (rule 4), as it is for per-request records.
    summaries = [u for u in kept if u[1] in SUMMARY and not u[3] and u in has_totals]
    per_session: dict[str, int] = {}
    for u in summaries:
        per_session[u[2]] = per_session.get(u[2], 0) + 1
    summaries = [u for u in summaries if per_session[u[2]] > 1]  # a session with two
    itemised = [u for u in summaries if not cost_alone(highest.get(u, {}))]
    with_models = {u[2] for u in itemised}
    alone = [u for u in summaries if cost_alone(highest.get(u, {})) and u[2] in with_models]
    set_aside += alone
    kept = [u for u in kept if u not in alone]
    exact_totals = {u[2] for u in kept if u in has_totals and not u[3]}
    with_totals = {(u[0], u[1]) for u in kept
                   if u in has_totals and not (u[3] and u[2] in exact_totals)}
    out: dict[RowKey, list[Any]] = {}
    for u in kept:
        totals = (u[0], u[1]) in with_totals
        if totals and u[3] and u[2] in exact_totals:
            continue
        for key, values in (rises[u] if totals else deltas[u]).items():
            if values[0] > 0:
                out[key] = list(values)
    if floor:
        for key, values in floor_rows(out, [u for u in set_aside if u in has_totals], rises,
                                      highest, set(itemised)).items():
            _add(out, key, values)
    return out


def cost_alone(highest: dict[Any, list[Any]]) -> bool:
    """Whether a unit's totals are a cost alone (no model, no tokens)."""
    return all(model is None and not any(v[:4]) for model, v in highest.items())


def beyond(showings: list[tuple[list[Any], bool]], exact: list[Any]
           ) -> tuple[list[Any], float, bool]:
    """Rule 4's numbers: how far each counter and the cost that summaries showed
    (their highest values, and whether printed rounded) go beyond the ``exact``
    ones [in, out, cr, cw, cost, all costs printed?], each summary within its own
    rounding; the most any of them shows. Returns (counters, cost, cost printed?)."""
    more = [0, 0, 0, 0]
    cost = 0.0
    cost_printed = any(mx[4] > 0 for mx, _ in showings) and bool(exact[5])
    for mx, approximate in showings:
        for j in range(4):
            gap = mx[j] - exact[j]
            if gap > displayed_slack(mx[j], approximate) and gap > more[j]:
                more[j] = gap
        gap = mx[4] - exact[4]
        if cost_printed and gap > cost_slack(mx[4]) and gap > cost:
            cost = gap
    return more, cost, cost_printed


def floor_rows(counted: dict[RowKey, list[Any]], screens: list[UnitKey],
               rises: dict[UnitKey, dict[RowKey, list[Any]]],
               highest: dict[UnitKey, dict[Any, list[Any]]],
               itemised: set[UnitKey] | None = None) -> dict[RowKey, list[Any]]:
    """Rule 4: what the summaries set aside showed beyond the session's exact rows
    (per-request records, and ``itemised``: exact summaries with their models)."""
    itemised = itemised or set()

    def exact_unit(u: UnitKey) -> bool:
        return (u[1] in PER_REQUEST and not u[3]) or u in itemised

    # Sessions linked by a per-request unit (its wrapper session and Claude session).
    parent: dict[str, str] = {}

    def find(x: str) -> str:
        while parent.setdefault(x, x) != x:
            x = parent[x]
        return x

    for key in counted:
        u = key[0]
        if exact_unit(u):
            parent[find(u[0])] = find(u[2])
    for u in screens:
        parent[find(u[0])] = find(u[2])
    exact: dict[tuple[str, Any], list[Any]] = {}  # (group, model) -> in, out, cr, cw, cost, all printed
    every: dict[str, list[Any]] = {}  # group -> the same over all models
    for (u, model, _day, _attr, was_printed), v in counted.items():
        if exact_unit(u):
            for e in (exact.setdefault((find(u[0]), undated(model)), [0, 0, 0, 0, 0.0, True]),
                      every.setdefault(find(u[0]), [0, 0, 0, 0, 0.0, True])):
                for j in range(5):
                    e[j] += v[j + 1]
                e[5] = e[5] and was_printed
    # (group, model) -> what each summary showed: (its highest values, approximate?)
    shown: dict[tuple[str, Any], list[tuple[list[Any], bool]]] = {}
    where: dict[tuple[str, Any], tuple[Any, ...]] = {}  # -> the latest row that showed it
    for u in sorted(screens):
        for model, mx in highest.get(u, {}).items():
            gm = (find(u[0]), model)
            shown.setdefault(gm, []).append((mx, u[3]))
            for (_u, m, d, attr, _p) in rises[u]:
                if m == model:
                    rank = (d, u, repr(attr))
                    if gm not in where or rank > where[gm][0]:
                        where[gm] = (rank, u, d, attr)
    out: dict[RowKey, list[Any]] = {}
    for gm, showings in sorted(shown.items(), key=lambda kv: repr(kv[0])):
        e = exact.get((gm[0], undated(gm[1])), [0, 0, 0, 0, 0.0, True])
        if gm[1] is None and not any(any(mx[:4]) for mx, _ in showings):
            # A session's cost alone (`Total cost:` without rows, the status line):
            # it covers every model of the session.
            e = every.get(gm[0], [0, 0, 0, 0, 0.0, True])
        more, cost, cost_printed = beyond(showings, e)
        if not (any(more) or cost):
            continue
        _rank, u, d, attr = where[gm]
        _add(out, (u, gm[1], d, attr, bool(cost_printed)), [1, *more, cost])
    return out


__all__ = ["PER_REQUEST", "PRIORITY", "SCREEN", "SUMMARY", "beyond", "cost_alone",
           "cost_slack", "displayed_slack", "effective_rows", "floor_rows", "priority", "undated", "unit_key", "unit_of",
           "unit_rows"]
