"""Prometheus exposition of the journal's totals (what `claudewrap export` prints).

The numbers come from the rollup (the same state and rules as `claudewrap usage`),
as counters labelled by model, project, source and host. prometheus_client is
imported only here, only when asked for.
"""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
from typing import Any

from claudewrap.pricing import PriceTable, default_table
from claudewrap.report import UsageState

LABELS = ("model", "project", "source", "host")
_TOKENS = (("input", 1), ("output", 2), ("cache_read", 3), ("cache_write", 4))


def series(state: UsageState, table: PriceTable | None = None
           ) -> dict[tuple[str, str, str, str], list[float]]:
    """(model, project, source, host) -> [input, output, cache read, cache write,
    printed cost, estimated cost, records] over what counts (report.py's rules)."""
    table = table or default_table()
    out: dict[tuple[str, str, str, str], list[float]] = {}
    for unit, row in state.buckets():
        model, _, aid, printed, n, i, o, cr, cw, cost = row
        attrs = state.attrs[aid]
        key = (model or "unknown", attrs[0] or "", unit[1], attrs[1] or "")
        acc = out.get(key)
        if acc is None:
            acc = out[key] = [0, 0, 0, 0, 0.0, 0.0, 0]
        acc[0] += i
        acc[1] += o
        acc[2] += cr
        acc[3] += cw
        if printed:
            acc[4] += cost
        else:
            acc[5] += table.cost(model, i, o, cr, cw) or 0.0
        acc[6] += n
    return out


def render_prometheus(journal_path: Path, *, use_cache: bool = True) -> bytes:
    """The Prometheus text exposition of the journal at ``journal_path``."""
    from prometheus_client import CollectorRegistry, generate_latest
    from prometheus_client.core import CounterMetricFamily
    from prometheus_client.registry import Collector

    from claudewrap.rollup import load_state

    data = series(load_state(journal_path, use_cache=use_cache))

    class _JournalCollector(Collector):
        def collect(self) -> Iterator[Any]:
            for name, index in _TOKENS:
                family = CounterMetricFamily(
                    f"claude_api_tokens_{name}", f"{name.replace('_', ' ').capitalize()}"
                    " tokens used through the claude CLI", labels=LABELS)
                for key, acc in sorted(data.items()):
                    family.add_metric(key, acc[index - 1])
                yield family
            cost = CounterMetricFamily(
                "claude_api_cost_dollars", "Cost in USD; estimated=\"true\" where claudewrap"
                " priced usage Claude Code printed no cost for", labels=(*LABELS, "estimated"))
            records = CounterMetricFamily(
                "claude_api_records", "Journal records that count", labels=LABELS)
            for key, acc in sorted(data.items()):
                cost.add_metric((*key, "false"), acc[4])
                cost.add_metric((*key, "true"), acc[5])
                records.add_metric(key, acc[6])
            yield cost
            yield records

    registry = CollectorRegistry(auto_describe=False)
    registry.register(_JournalCollector())
    return generate_latest(registry)


__all__ = ["LABELS", "render_prometheus", "series"]
