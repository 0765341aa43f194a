"""How numbers read on screen: token counts (full and short) and money, with one marker
convention for every view (`usage`, `status`, `monitor`, `cost`, budgets).

- ``~`` before a dollar amount: part of it was priced by claudewrap from list
  prices (Claude Code printed no cost for it);
- ``+?`` after it: it leaves out usage of a model without a known price (the
  amount shown is what is known, never a silent $0).

Short counts keep to what a person expects from ``k``/``M``/``G``: 21,475 is
``21.5k``, 250,000 is ``250.0k``; below 10,000 a count is shown whole, with
separators. Plain string work only: the status line and tmux segment import it.
"""

from __future__ import annotations

TYPE_CHECKING = False  # typing.TYPE_CHECKING without importing typing (3 ms a reader)
if TYPE_CHECKING:
    from typing import Protocol

_UNITS = ((10**9, "G"), (10**6, "M"), (10**3, "k"))
SHORT_FROM = 10_000  # below this a count is short enough as it is ("9,999")


def cells(text: str) -> int:
    """The terminal columns ``text`` takes: wide (East Asian W/F) characters two,
    combining marks none, ASCII fast."""
    if text.isascii():
        return len(text)
    import unicodedata

    return sum(0 if unicodedata.combining(c) else
               2 if unicodedata.east_asian_width(c) in ("W", "F") else 1 for c in text)


def ljust(text: str, width: int) -> str:
    """``text`` padded with spaces to ``width`` terminal columns (:func:`cells`)."""
    return text + " " * (width - cells(text))


def rjust(text: str, width: int) -> str:
    return " " * (width - cells(text)) + text


def count(n: float) -> str:
    """``1,234,567``: a whole count with thousands separators."""
    return f"{round(n):,}"


def short_count(n: float) -> str:
    """``9,999``, ``21.5k``, ``4.5M``, ``1.2G``: a count in at most 7 characters.

    Rounds to one decimal of the unit, moving up a unit where the rounding
    reaches 1000 of it (999,960 is ``1.0M``, not ``1000.0k``).
    """
    value = round(n)
    if abs(value) < SHORT_FROM:
        return f"{value:,}"
    for i, (div, suffix) in enumerate(_UNITS):
        if abs(value) >= div:
            text = f"{value / div:.1f}"
            if i > 0 and abs(float(text)) >= 1000:
                up_div, up_suffix = _UNITS[i - 1]
                return f"{value / up_div:.1f}{up_suffix}"
            return text + suffix
    return f"{value:,}"  # pragma: no cover - SHORT_FROM > 1000


def money(usd: float, *, estimated: bool = False, unpriced: bool = False,
          places: int | None = 2) -> str:
    """``$1,234.56``; ``~$1.23`` when part of it was estimated; ``$1.23+?`` when some
    usage of it has no known price (so the true amount is higher). ``places=None``:
    two decimals, or four for a small amount they would hide (``$0.0247``)."""
    if places is None:
        places = 2 if abs(usd) >= 1 or round(usd, 2) == usd else 4
    text = f"${usd:,.{places}f}"
    if estimated:
        text = "~" + text
    if unpriced:
        text += "+?"
    return text


if TYPE_CHECKING:
    class Priced(Protocol):
        """A report row's money (claudewrap.usage.report.Row)."""

        cost_usd: float
        cost_estimated_usd: float
        unpriced_records: int


def row_money(row: Priced, places: int = 2) -> str:
    """A report row's cost with its markers (see :func:`money`)."""
    return money(row.cost_usd, estimated=row.cost_estimated_usd > 0,
                 unpriced=row.unpriced_records > 0, places=places)


__all__ = ["SHORT_FROM", "count", "money", "row_money", "short_count"]
