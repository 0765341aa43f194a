"""`usage --analysis`: where the money went, from a report of the usage core.

Everything here is derived from :func:`claudewrap.usage.report.make_report`'s groups (no
second reading of the journal, no second summing rule): the chosen grouping for
cost shares, the grouping plus ``model`` to price each group's tokens at each
model's rates (the cache's saving, "what it would have cost on X"), ``session``
and ``session`` + ``model`` for the most expensive sessions.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any

from claudewrap.usage.filters import UNKNOWN_MODEL
from claudewrap.usage.pricing import Price, PriceTable
from claudewrap.usage.report import Report, Row

# The current model of each family, as the price table names them: usage is
# priced again on each of these ("what would this have cost on X").
COMPARE_MODELS = ("claude-opus-5-5", "claude-sonnet-5", "claude-haiku-4-5")
TOP_SESSIONS = 5


def groupings(dims: tuple[str, ...]) -> list[tuple[str, ...]]:
    """The groupings :func:`analyze` needs from make_report for ``dims``."""
    out = [dims, ("session",), ("session", "model")]
    if "model" not in dims:
        out.append(dims + ("model",))
    return out


def cache_ratio(row: Row) -> float | None:
    """cache read / (input + cache read + cache write); None without input at all."""
    whole = row.input_tokens + row.cache_read_tokens + row.cache_write_tokens
    return row.cache_read_tokens / whole if whole else None


def per_1k_output(row: Row) -> float | None:
    """USD per 1,000 output tokens; None without output."""
    return row.cost_usd * 1000 / row.output_tokens if row.output_tokens else None


def _price(table: PriceTable, model: str) -> Price | None:
    return None if model == UNKNOWN_MODEL else table.lookup(model)


def repriced(row: Row, price: Price | None) -> float | None:
    """``row``'s tokens at ``price``'s rates, or None when a needed rate is missing."""
    if price is None:
        return None
    return price.cost(row.input_tokens, row.output_tokens, row.cache_read_tokens,
                      row.cache_write_tokens)


def cache_saving(row: Row, price: Price | None) -> float | None:
    """What ``row``'s cache reads saved: at the input rate minus at the cache-read rate."""
    if not row.cache_read_tokens:
        return 0.0
    if price is None or price.input is None or price.cache_read is None:
        return None
    return row.cache_read_tokens * (price.input - price.cache_read) / 1_000_000


@dataclass
class GroupAnalysis:
    """One group of the chosen grouping (or the total)."""

    labels: tuple[str, ...]
    row: Row
    share: float  # % of the total cost (0-100)
    cost_per_1k_output: float | None
    cache_read_ratio: float | None
    cache_saved_usd: float
    cache_saved_unknown: bool  # some cache reads of a model without both rates
    on_models: dict[str, float]  # COMPARE_MODELS entry -> the same tokens at its rates

    def to_json(self) -> dict[str, Any]:
        def r(x: float | None, places: int = 6) -> float | None:
            return None if x is None else round(x, places)

        return {"key": "|".join(self.labels), "labels": list(self.labels),
                **self.row.to_json(), "share_percent": round(self.share, 2),
                "cost_per_1k_output_usd": r(self.cost_per_1k_output),
                "cache_read_ratio": r(self.cache_read_ratio),
                "cache_saved_usd": round(self.cache_saved_usd, 6),
                "cache_saved_unknown": self.cache_saved_unknown,
                "on_models": {m: round(c, 6) for m, c in self.on_models.items()}}


@dataclass
class SessionCost:
    session: str
    row: Row
    models: list[str]

    def to_json(self) -> dict[str, Any]:
        return {"session": self.session, "models": self.models, **self.row.to_json()}


@dataclass
class Analysis:
    dims: tuple[str, ...]
    total: GroupAnalysis
    groups: list[GroupAnalysis]  # by cost, highest first
    top_sessions: list[SessionCost]
    models: list[str] = field(default_factory=list)  # the models compared with

    def to_json(self) -> dict[str, Any]:
        """The ``usage --analysis --json`` object (keys documented in the README)."""
        return {"by": list(self.dims), "compared_models": self.models,
                "total": self.total.to_json(), "groups": [g.to_json() for g in self.groups],
                "top_sessions": [s.to_json() for s in self.top_sessions]}


def _analyse(labels: tuple[str, ...], row: Row, by_model: Sequence[tuple[str, Row]],
             total_cost: float, table: PriceTable, models: Sequence[str]) -> GroupAnalysis:
    saved, unknown = 0.0, False
    on = dict.fromkeys(models, 0.0)
    for model, part in by_model:
        s = cache_saving(part, _price(table, model))
        if s is None:
            unknown = True
        else:
            saved += s
        for target in models:
            on[target] += repriced(part, table.list_price(target)) or 0.0
    return GroupAnalysis(labels, row, 100 * row.cost_usd / total_cost if total_cost else 0.0,
                         per_1k_output(row), cache_ratio(row), saved, unknown, on)


def analyze(report: Report, dims: tuple[str, ...], table: PriceTable) -> Analysis:
    """The analysis of ``report`` (made with :func:`groupings` of ``dims``) by ``dims``."""
    table = report.table or table
    models = [m for m in COMPARE_MODELS if table.list_price(m) is not None]
    if "model" in dims:
        at = dims.index("model")
        split = {k: [(k[at], r)] for k, r in report.groups[dims].items()}
    else:
        split = {}
        for key, part in report.groups[dims + ("model",)].items():
            split.setdefault(key[:-1], []).append((key[-1], part))
    total_cost = report.total.cost_usd
    groups = [_analyse(k, r, split.get(k, []), total_cost, table, models)
              for k, r in report.groups[dims].items()]
    groups.sort(key=lambda g: (-g.row.cost_usd, -g.row.tokens, g.labels))
    every = [(m, r) for pairs in split.values() for m, r in pairs]
    total = _analyse(("total",), report.total, every, total_cost, table, models)
    session_models: dict[str, list[str]] = {}
    for (session, model), part in report.groups[("session", "model")].items():
        if part.tokens:
            session_models.setdefault(session, []).append(model)
    sessions = sorted(report.groups[("session",)].items(),
                      key=lambda kv: (-kv[1].cost_usd, -kv[1].tokens, kv[0]))
    top = [SessionCost(k[0], r, sorted(session_models.get(k[0], [])))
           for k, r in sessions[:TOP_SESSIONS]]
    return Analysis(dims, total, groups, top, models)


__all__ = ["COMPARE_MODELS", "Analysis", "GroupAnalysis", "SessionCost", "analyze",
           "cache_ratio", "cache_saving", "groupings", "per_1k_output", "repriced"]
