"""Live-session markers: which wrapped `claude` sessions are running right now.

``claudewrap run`` calls :func:`register` around the child: it leaves a small
JSON file in ``<journal folder>/live/`` (pid, start time, session, project,
host, model when known) and removes it when the run ends. A run killed with
SIGKILL or lost in a crash leaves its marker behind; :func:`active` counts a
marker only while its process is alive (on Linux also the same process: its
start time must match, so a recycled pid does not count) and deletes the stale
ones it finds on this host.

This module is on the launch path (a run registers once claude started): it
imports only ``os`` and ``_json`` (and ``time``, which is built in); ``json``,
~3 ms to import, only to read markers. Nothing here may fail a run: errors are
swallowed.
"""

from __future__ import annotations

import os
import time
from _json import encode_basestring_ascii

from claudewrap.wrap.context import hostname

TYPE_CHECKING = False  # typing.TYPE_CHECKING without importing typing (launch path)
if TYPE_CHECKING:
    from typing import Any

FOLDER = "live"
SUFFIX = ".json"
_ATTRIBUTION_KEYS = ("project", "host", "cwd", "tmux_pane", "tmux_session", "screen_session")


def live_dir(journal_path: str | os.PathLike[str]) -> str:
    """The marker folder for the journal at ``journal_path``."""
    return os.path.join(os.path.dirname(os.path.abspath(os.fspath(journal_path))), FOLDER)


def _proc_start(pid: int) -> str | None:
    """The kernel's start time of ``pid`` (clock ticks since boot), where /proc has it."""
    try:
        with open(f"/proc/{pid}/stat", "rb") as fh:
            data = fh.read()
    except OSError:
        return None
    # Field 2 (comm) may contain spaces and parentheses: split after its last ')'.
    fields = data[data.rfind(b")") + 2:].split()
    return fields[19].decode() if len(fields) > 19 else None


def _alive(pid: int, proc_start: str | None) -> bool:
    if pid <= 0:
        return False
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        pass  # someone else's process: it exists
    except OSError:
        return False
    if proc_start is not None:
        now = _proc_start(pid)
        if now is not None and now != proc_start:
            return False  # the pid was recycled
    return True


def _write(path: str, data: dict[str, Any]) -> None:
    tmp = f"{path}.{os.getpid()}.tmp"
    fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_TRUNC | os.O_CLOEXEC, 0o600)
    try:
        os.write(fd, _dumps(data).encode("utf-8", "backslashreplace"))
    finally:
        os.close(fd)
    os.replace(tmp, path)


def _dumps(data: dict[str, Any]) -> str:
    """``json.dumps(data, separators=(",", ":"))`` for a marker's flat values
    (str, int, float, bool, None), without importing json; anything else
    goes through json."""
    parts = []
    for key, value in data.items():
        if value is None:
            text = "null"
        elif value is True or value is False:
            text = "true" if value else "false"
        elif type(value) is str:
            text = encode_basestring_ascii(value)
        elif type(value) is int or (type(value) is float and value - value == 0):
            text = repr(value)  # json.dumps' own spelling of ints and finite floats
        else:
            import json

            return json.dumps(data, separators=(",", ":"))
        parts.append(f"{encode_basestring_ascii(str(key))}:{text}")
    return "{" + ",".join(parts) + "}"


def _read_marker(path: str) -> bytes:
    """A marker's bytes; OSError for anything but a regular file (a FIFO named
    like a marker must not hang `status` or the exporter)."""
    fd = os.open(path, os.O_RDONLY | os.O_NONBLOCK | os.O_CLOEXEC)
    try:
        if (os.fstat(fd).st_mode & 0o170000) != 0o100000:  # S_ISREG, without stat
            raise OSError(f"{path}: not a regular file")
        return os.read(fd, 1 << 16)
    finally:
        os.close(fd)


class Marker:
    """The marker of one running session; a context manager (see :func:`register`)."""

    def __init__(self, folder: str, session_id: str, attribution: dict[str, Any] | None,
                 model: str | None) -> None:
        safe = "".join(c if c.isalnum() or c in "-_." else "_" for c in session_id)[:80]
        self.path: str | None = os.path.join(folder, f"{safe or 'session'}-{os.getpid()}{SUFFIX}")
        self.folder = folder
        attrs = attribution or {}
        self.data: dict[str, Any] = {
            "pid": os.getpid(),
            "proc_start": _proc_start(os.getpid()),
            "started": time.time(),
            "session": session_id,
            "model": model,
        }
        for key in _ATTRIBUTION_KEYS:
            if attrs.get(key) is not None:
                self.data[key] = attrs[key]
        self.data.setdefault("host", hostname())

    def __enter__(self) -> Marker:  # noqa: PYI034 - Python 3.10: no typing.Self
        try:
            try:
                os.mkdir(self.folder, 0o700)
            except FileExistsError:
                pass
            assert self.path is not None
            _write(self.path, self.data)
        except OSError:
            self.path = None  # no marker: the session just does not show as active
        return self

    def update(self, **fields: Any) -> None:
        """Record what became known later (``model=...``)."""
        self.data.update(fields)
        if self.path is not None:
            try:
                _write(self.path, self.data)
            except OSError:
                pass

    def __exit__(self, *exc: object) -> None:
        if self.path is not None:
            try:
                os.unlink(self.path)
            except OSError:
                pass
            self.path = None


def register(session_id: str, attribution: dict[str, Any] | None = None, *,
             journal: str | os.PathLike[str] | None = None,
             model: str | None = None) -> Marker:
    """A context manager that marks session ``session_id`` as running while it is open.

    ``attribution`` is the dict of claudewrap.wrap.context.collect (project, host, ...);
    ``journal`` the journal the run writes to (default: the usual one). Use
    ``marker.update(model=...)`` when the model becomes known.
    """
    if journal is None or os.fspath(journal) == "":
        from claudewrap.store.journal import resolve_path  # light: platformdirs only if needed

        journal = resolve_path(None)
    return Marker(live_dir(journal), session_id, attribution, model)


def active(journal_path: str | os.PathLike[str], *, clean: bool = True) -> list[dict[str, Any]]:
    """The markers of sessions running now on this host (stale ones are deleted)."""
    folder = live_dir(journal_path)
    try:
        names = os.listdir(folder)
    except OSError:
        return []
    host = hostname()
    out = []
    for name in sorted(names):
        if not name.endswith(SUFFIX):
            continue
        path = os.path.join(folder, name)
        try:
            import json

            data = json.loads(_read_marker(path))
            pid = int(data["pid"])
        except (OSError, ValueError, KeyError, TypeError, RecursionError):
            continue  # being written, or not ours
        if not isinstance(data, dict):
            continue
        if data.get("host", host) != host:
            continue  # another machine's (a shared home folder): its pid means nothing here
        if _alive(pid, data.get("proc_start")):
            out.append(data)
        elif clean:
            try:
                os.unlink(path)
            except OSError:
                pass
    return out


__all__ = ["Marker", "active", "live_dir", "register"]
