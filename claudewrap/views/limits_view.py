"""How the plan-limit windows (claudewrap.usage.limits) read on screen, in every view:
`status` (plain and the tmux segment), `monitor` (the screen and its plain line)
and the budget alerts.

A window shows its share used, when it resets and, when it would fill before
then at the pace it has been used so far, when that would be::

    5-hour window: 62% used, resets 15:40 (at this pace 100% at 14:55)

Times are local: ``15:40`` today, ``Tue 09:00`` within the week, else a date.
With no fresh snapshot a view shows no line at all (never a guess).

Plain string work only: the status line and tmux segment import it.
"""

from __future__ import annotations

import time
from collections.abc import Mapping

from claudewrap.usage.limits import WINDOWS, Snapshot

# window -> (long name, short name)
NAMES = {"five_hour": ("5-hour window", "5h"), "seven_day": ("7-day window", "7d")}


def ordered(snapshots: Mapping[str, Snapshot]) -> list[Snapshot]:
    """The snapshots, the 5-hour window first."""
    return [snapshots[w] for w in WINDOWS if w in snapshots]


def percent(snap: Snapshot) -> str:
    """``62%`` (whole percent, as Claude Code shows it)."""
    return f"{snap.used * 100:.0f}%"


def clock(when: float, now: float) -> str:
    """A local time: ``15:40`` on the day of ``now``, ``Tue 09:00`` within six
    days, ``Dec 09 09:00`` beyond."""
    at = time.localtime(when)
    today = time.localtime(now)
    if (at.tm_year, at.tm_yday) == (today.tm_year, today.tm_yday):
        return time.strftime("%H:%M", at)
    if 0 <= when - now < 6 * 86400:
        return time.strftime("%a %H:%M", at)
    return time.strftime("%b %d %H:%M", at)


def window_line(snap: Snapshot, now: float) -> str:
    """``5-hour window: 62% used, resets 15:40 (at this pace 100% at 14:55)``."""
    text = (f"{NAMES.get(snap.window, (snap.window, ''))[0]}: {percent(snap)} used,"
            f" resets {clock(snap.resets_at, now)}")
    full = snap.pace(now)
    if full is not None:
        text += f" (at this pace 100% at {clock(full, now)})"
    return text


def tmux_segment(snapshots: Mapping[str, Snapshot]) -> str:
    """``5h 62% 7d 17%`` (no ``#``: tmux would read it as a format); empty without data."""
    return " ".join(f"{NAMES[s.window][1]} {percent(s)}" for s in ordered(snapshots))


__all__ = ["NAMES", "clock", "ordered", "percent", "tmux_segment", "window_line"]
