"""Rates learned from printed costs: a model without a list price priced from the journal.

Claude Code prints (OpenTelemetry ``cost_usd``, ``-p`` JSON ``costUSD``) what
each request cost, priced with its own table. Cost is linear in the four token
counts, so the journal's exact records of a model teach its four rates: a
non-negative least-squares fit of

    cost = input * r_in + output * r_out + cache_read * r_cr + cache_write * r_cw

over the state's buckets (one equation per session, model and day: sums of
linear equations are linear). :func:`learn_prices` adds such rates to a price
table for every model that has no list price and enough exact records; reports
then price that model's other usage (transcripts, ``--no-otel``) with them,
marked as estimated like any price claudewrap applies.

A fit is trusted only when it is determined and checked: the counts of the
samples must be linearly independent (no rate left to guesswork), there must be
at least one sample more than rates to fit, and the rates must reproduce the
printed costs within :data:`TOLERANCE`. A rate whose tokens never appear in the
samples stays unknown (None): such usage stays unpriced rather than guessed.
"""

from __future__ import annotations

from collections.abc import Sequence
from itertools import combinations
from math import sqrt
from pathlib import Path
from typing import TYPE_CHECKING, Any

from claudewrap.usage.pricing import Learned, Price, PriceTable

if TYPE_CHECKING:
    from claudewrap.usage.state import UsageState

TOLERANCE = 0.02  # fitted costs within 2 % of the printed ones, summed over the samples
# Smallest pivot of the (column-normalised) normal equations: below it two columns
# of counts are (nearly) proportional and their rates cannot be told apart.
_MIN_PIVOT = 1e-9
_DIGITS = 6  # rates per million tokens rounded to a millionth of a dollar


def _solve(gram: list[list[float]], rhs: list[float]) -> list[float] | None:
    """``gram @ x = rhs`` by Gaussian elimination; None if (nearly) singular."""
    n = len(rhs)
    a = [row[:] + [rhs[i]] for i, row in enumerate(gram)]
    for col in range(n):
        pivot = max(range(col, n), key=lambda r: abs(a[r][col]))
        if abs(a[pivot][col]) < _MIN_PIVOT:
            return None
        a[col], a[pivot] = a[pivot], a[col]
        for r in range(col + 1, n):
            f = a[r][col] / a[col][col]
            for c in range(col, n + 1):
                a[r][c] -= f * a[col][c]
    x = [0.0] * n
    for r in range(n - 1, -1, -1):
        x[r] = (a[r][n] - sum(a[r][c] * x[c] for c in range(r + 1, n))) / a[r][r]
    return x


def fit_rates(samples: Sequence[Sequence[float]]
              ) -> tuple[tuple[float | None, ...], float] | None:
    """Rates per million tokens ``(input, output, cache read, cache write)`` and the
    relative error, fitted to ``samples`` of ``(input, output, cache read, cache
    write, cost)``; None when the samples do not determine them (see the module).

    A rate is None when its tokens appear in no sample. The fit is an exact
    non-negative least squares: four unknowns make 15 supports to try, and the
    best solution whose rates are all >= 0 is the constrained optimum.
    """
    rows = [s for s in samples if any(s[:4])]
    cols = [j for j in range(4) if any(s[j] for s in rows)]
    if not cols or len(rows) < len(cols) + 1:
        return None
    # Columns scaled to unit length: the normal equations stay well conditioned
    # whatever the token counts' magnitudes.
    norms = [sqrt(sum(float(s[j]) ** 2 for s in rows)) for j in cols]
    x = [[float(s[j]) / norm for j, norm in zip(cols, norms)] for s in rows]
    y = [float(s[4]) for s in rows]
    k = len(cols)
    gram = [[sum(r[a] * r[b] for r in x) for b in range(k)] for a in range(k)]
    rhs = [sum(r[a] * yi for r, yi in zip(x, y)) for a in range(k)]
    if _solve(gram, rhs) is None:
        return None  # the counts do not tell the rates apart
    best: tuple[float, list[float]] | None = None
    for size in range(1, k + 1):
        for support in combinations(range(k), size):
            sol = _solve([[gram[a][b] for b in support] for a in support],
                         [rhs[a] for a in support])
            if sol is None or min(sol) < 0:
                continue
            coef = [0.0] * k
            for a, v in zip(support, sol):
                coef[a] = v
            sse = sum((sum(c * v for c, v in zip(coef, r)) - yi) ** 2 for r, yi in zip(x, y))
            if best is None or sse < best[0]:
                best = (sse, coef)
    coef = best[1] if best is not None else [0.0] * k
    printed = sum(abs(v) for v in y)
    missed = sum(abs(sum(c * v for c, v in zip(coef, r)) - yi) for r, yi in zip(x, y))
    error = missed / printed if printed else (0.0 if missed == 0 else 1.0)
    if error > TOLERANCE:
        return None
    rates: list[float | None] = [None] * 4
    for j, c, norm in zip(cols, coef, norms):
        rates[j] = round(c / norm * 1_000_000, _DIGITS) + 0.0
    return tuple(rates), error


def _exact_samples(state: UsageState, table: PriceTable
                   ) -> dict[str, tuple[list[tuple[Any, ...]], int]]:
    """Per model without a list price: its buckets with a printed cost from exact
    (not rounded) records, and how many records they hold."""
    out: dict[str, tuple[list[tuple[Any, ...]], int]] = {}
    listed: dict[Any, bool] = {}
    for unit, row in state.buckets():
        model, printed = row[0], row[3]
        if not printed or unit[3] or not model:
            continue
        known = listed.get(model)
        if known is None:
            known = listed[model] = table.list_price(model) is not None
        if known or not (row[5] or row[6] or row[7] or row[8]):
            continue
        samples, records = out.get(model, ([], 0))
        samples.append((row[5], row[6], row[7], row[8], row[9]))
        out[model] = (samples, records + row[4])
    return out


def learn_prices(state: UsageState, table: PriceTable) -> PriceTable:
    """``table`` plus rates learned from ``state`` for the models without a list
    price that have enough exact records with a printed cost; ``table`` itself
    when there is nothing to learn."""
    learned: dict[str, Learned] = {}
    for model, (samples, records) in _exact_samples(state, table).items():
        fit = fit_rates(samples)
        if fit is None:
            continue
        (r_in, r_out, r_cr, r_cw), error = fit
        learned[model] = Learned(Price(model=model, input=r_in, output=r_out, cache_read=r_cr,
                                       cache_write_5m=r_cw),
                                 records=records, samples=len(samples), error=error)
    return table.with_learned(learned) if learned else table


def unpriced_usage(state: UsageState, table: PriceTable) -> dict[str | None, int]:
    """Records per model whose cost was not printed and that ``table`` cannot price
    (None: records without a model)."""
    out: dict[str | None, int] = {}
    for _unit, row in state.summary_rows():
        if row[3] or not (row[5] or row[6] or row[7] or row[8]):
            continue
        price = table.lookup(row[0])
        if price is None or price.cost(row[5], row[6], row[7], row[8]) is None:
            out[row[0] or None] = out.get(row[0] or None, 0) + row[4]
    return out


def journal_prices(journal: Path) -> tuple[PriceTable, dict[str | None, int]]:
    """The prices in force for ``journal`` (shipped, the user's file, learned from
    it) and its records that stay unpriced. Raises JournalError, PriceFileError."""
    from claudewrap.usage.pricing import default_table
    from claudewrap.usage.rollup import load_state

    table = default_table()
    state = load_state(journal)
    table = learn_prices(state, table)
    return table, unpriced_usage(state, table)


__all__ = ["TOLERANCE", "fit_rates", "journal_prices", "learn_prices", "unpriced_usage"]
