"""Plan limits: the 5-hour and weekly rate-limit windows of a Claude.ai subscription.

Claude Code (2.1.80 on, after a session's first answer, for Pro/Max subscribers)
gives its status-line command ``rate_limits{five_hour{used_percentage, resets_at},
seven_day{...}}``: the share of each window used (0-100) and when it resets (Unix
seconds). ``claudewrap statusline`` keeps a snapshot whenever one changed, in
``<journal>.limits`` beside the journal: one JSON object a line, mode 0600,

    {"ts": "2026-11-30T10:00:00.000Z", "window": "five_hour", "used": 0.62,
     "resets_at": 1796032800, "host": "laptop"}

(``used`` as a ratio 0-1). Readers take the newest snapshot of each window that
has not reset yet (:func:`latest`): with no fresh data (API-key billing, an older
Claude Code) they show nothing rather than a guess. Only counts and times are kept.

Light on purpose: the status line imports it after every message.
"""

from __future__ import annotations

import os
from datetime import datetime, timezone

from claudewrap.plain import plain
from claudewrap.store import cjson as json  # json without importing json (store/cjson.py)

TYPE_CHECKING = False  # typing.TYPE_CHECKING without importing typing (3 ms a reader)
if TYPE_CHECKING:
    from pathlib import Path  # not at run time: see store/journal.py
    from typing import Any

    from claudewrap.store.journal import StrPath

WINDOWS = {"five_hour": 5 * 3600, "seven_day": 7 * 86400}  # name -> length in seconds
_TAIL = 64 << 10  # the newest snapshots are in the file's last 64 KiB


@plain(frozen=True)
class Snapshot:
    """One window's use at one time."""

    window: str  # "five_hour" or "seven_day"
    used: float  # 0..1 (Claude Code reports percent)
    resets_at: float  # Unix seconds
    ts: str = ""  # when it was seen (the journal's UTC form)
    host: str | None = None

    def to_json(self) -> str:
        return json.dumps({"ts": self.ts, "window": self.window, "used": round(self.used, 6),
                           "resets_at": self.resets_at, "host": self.host},
                          separators=(",", ":"), allow_nan=False)

    def pace(self, now: float) -> float | None:
        """When (Unix seconds) the window reaches 100% at the pace it has been used
        so far; None when it will not before it resets (or nothing is used)."""
        length = WINDOWS.get(self.window)
        if length is None or self.used <= 0:
            return None
        elapsed = length - (self.resets_at - now)
        if elapsed <= 0:
            return None
        full = now + (1 - self.used) * elapsed / self.used
        return full if full < self.resets_at else None


def limits_path(journal: StrPath) -> Path:
    from pathlib import Path

    return Path(_limits_file(journal))


def _limits_file(journal: StrPath) -> str:
    return os.fspath(journal) + ".limits"


def from_status_input(data: Any, *, ts: str, host: str | None) -> list[Snapshot]:
    """The snapshots in one status-line input object (none when it has no valid
    ``rate_limits``: API-key billing, older versions, before the first answer)."""
    limits = data.get("rate_limits") if isinstance(data, dict) else None
    out: list[Snapshot] = []
    if not isinstance(limits, dict):
        return out
    for window in WINDOWS:
        item = limits.get(window)
        if not isinstance(item, dict):
            continue
        used, resets = item.get("used_percentage"), item.get("resets_at")
        if (isinstance(used, bool) or not isinstance(used, (int, float))
                or isinstance(resets, bool) or not isinstance(resets, (int, float))):
            continue
        if not (0 <= used <= 1000 and 0 < resets < 1e11):  # finite, plausible
            continue
        out.append(Snapshot(window, used / 100.0, float(resets), ts, host))
    return out


def _parse(line: bytes) -> Snapshot | None:
    try:
        d = json.loads(line)
        snap = Snapshot(str(d["window"]), float(d["used"]), float(d["resets_at"]),
                        str(d.get("ts") or ""), d.get("host"))
    except (ValueError, TypeError, KeyError, AttributeError, RecursionError):
        return None
    if snap.window not in WINDOWS or not (0 <= snap.used <= 10 and 0 < snap.resets_at < 1e11):
        return None
    return snap


def _tail(path: StrPath) -> list[Snapshot]:
    """The snapshots in the file's last :data:`_TAIL` bytes, oldest first."""
    try:
        fd = os.open(path, os.O_RDONLY | os.O_NONBLOCK | os.O_CLOEXEC)
    except OSError:
        return []
    try:
        import stat

        st = os.fstat(fd)
        if not stat.S_ISREG(st.st_mode):
            return []
        start = max(0, st.st_size - _TAIL)
        data = os.pread(fd, st.st_size - start, start)
    except OSError:
        return []
    finally:
        os.close(fd)
    lines = data.split(b"\n")
    if start > 0:
        lines = lines[1:]  # cut
    return [s for s in map(_parse, lines) if s is not None]


def latest(journal: StrPath, *, now: float | None = None, host: str | None = None
           ) -> dict[str, Snapshot]:
    """The newest snapshot of each window that has not reset by ``now`` (of ``host``
    only, when given)."""
    now = datetime.now(timezone.utc).timestamp() if now is None else now
    out: dict[str, Snapshot] = {}
    for snap in _tail(_limits_file(journal)):
        if host is not None and snap.host != host:
            continue
        out[snap.window] = snap
    return {w: s for w, s in out.items() if s.resets_at > now}


def record(journal: StrPath, snapshots: list[Snapshot]) -> int:
    """Append the snapshots that differ from their window's newest one; how many
    were written. Never raises: the status line must never fail."""
    try:
        known = {}
        for snap in _tail(_limits_file(journal)):
            known[(snap.window, snap.host)] = snap
        fresh = [s for s in snapshots
                 if (old := known.get((s.window, s.host))) is None
                 or (round(old.used, 6), old.resets_at) != (round(s.used, 6), s.resets_at)]
        if not fresh:
            return 0
        path = _limits_file(journal)
        fd = os.open(path, os.O_WRONLY | os.O_APPEND | os.O_CREAT | os.O_NONBLOCK | os.O_CLOEXEC,
                     0o600)
        try:
            import stat

            if not stat.S_ISREG(os.fstat(fd).st_mode):
                return 0
            data = "".join(s.to_json() + "\n" for s in fresh).encode()
            written = os.write(fd, data)  # one write: O_APPEND keeps lines whole
            return len(fresh) if written == len(data) else 0
        finally:
            os.close(fd)
    except (OSError, ValueError):
        return 0


__all__ = ["WINDOWS", "Snapshot", "from_status_input", "latest", "limits_path", "record"]
