"""Who and where a record comes from: project, cwd, host, tmux pane, screen session.

Read from the environment only; nothing here starts a process on the launch
path except one short `tmux display-message` when inside tmux (for the session
name), bounded by a timeout. The wrapper starts it without waiting
(:class:`TmuxQuery`) and reads its answer once claude runs: 5-15 ms of tmux
that `claude` no longer waits for before it starts. GNU screen needs no
process: ``$STY`` and ``$WINDOW`` say it all. scan.py uses the same labels for
scrollback it reads.
"""

from __future__ import annotations

import os

TYPE_CHECKING = False  # typing.TYPE_CHECKING without importing typing (launch path)
if TYPE_CHECKING:
    from collections.abc import Iterable
    from typing import Any


def hostname() -> str:
    """This machine's name, as records carry it (``socket.gethostname()``'s answer,
    without importing socket: this module is on the launch path)."""
    return os.uname().nodename


def tag_items(items: Iterable[str]) -> dict[str, str]:
    """``["k=v", ...]`` (each ``--tag``) as a dict, keys and values stripped.
    Raises ValueError naming the first item that is not KEY=VALUE."""
    tags: dict[str, str] = {}
    for item in items:
        key, sep, value = item.partition("=")
        if not sep or not key.strip():
            raise ValueError(f"{item!r}: use KEY=VALUE, e.g. agent=coordinator")
        tags[key.strip()] = value.strip()
    return tags


def parse_tags(text: str | None) -> dict[str, str]:
    """``$CLAUDEWRAP_TAGS`` (``"k=v,k2=v2"``) as a dict; items without ``=`` are ignored
    (an environment variable is no place for an error)."""
    return tag_items(item for item in (text or "").split(",")
                     if item.partition("=")[1] and item.partition("=")[0].strip())


def find_project(cwd: str, override: str | None = None) -> str:
    """The project name: an override, else the git top-level folder's name, else cwd's name."""
    if override:
        return override
    # As pathlib.Path(cwd) and its parents would, without pathlib (~8 ms to
    # import, on the launch path): the launch path has no other use for it.
    lead = "//" if cwd.startswith("//") and not cwd.startswith("///") else (
        "/" if cwd.startswith("/") else "")
    parts = [p for p in cwd.split("/") if p and p != "."]
    for n in range(len(parts), -1, -1):
        candidate = lead + "/".join(parts[:n]) if n or lead else "."
        if os.path.exists(os.path.join(candidate, ".git")):
            return (parts[n - 1] if n else "") or candidate
    return (parts[-1] if parts else "") or (lead or ".")


def _session_query(env: dict[str, str]) -> list[str]:
    """The tmux command that prints the session name of ``env``'s pane."""
    argv = ["tmux", "display-message", "-p"]
    pane = env.get("TMUX_PANE")
    if pane:
        argv += ["-t", pane]
    argv.append("#{session_name}")
    return argv


def tmux_session_name(env: dict[str, str]) -> str | None:
    """Ask tmux for the session name of ``$TMUX_PANE`` (None outside tmux or on error).

    The session name is not in the environment (``$TMUX`` holds the socket,
    the server pid and the session's number) and may have been renamed, so
    ask the server that ``$TMUX`` names; a stuck server costs at most 0.5 s.
    """
    if not env.get("TMUX"):
        return None
    cmd = _session_query(env)
    import subprocess  # only inside tmux

    try:
        out = subprocess.run(cmd, capture_output=True, text=True, timeout=0.5, env=env,
                             stdin=subprocess.DEVNULL, check=False)
    except (OSError, subprocess.SubprocessError):
        return None
    name = out.stdout.strip()
    return name if out.returncode == 0 and name else None


class TmuxQuery:
    """``tmux display-message`` for the session name, started now and read later
    (:meth:`result`), with os.posix_spawn and a pipe: no subprocess module (it
    is ~5 ms to import) and no wait before claude starts."""

    __slots__ = ("_answer", "_done", "_fd", "_pid")

    TIMEOUT = 0.5  # what a stuck server may cost, at most (as tmux_session_name)

    def __init__(self, pid: int, fd: int) -> None:
        self._pid = pid
        self._fd = fd
        self._done = False
        self._answer: str | None = None

    @classmethod
    def start(cls, env: dict[str, str]) -> TmuxQuery | None:
        """The query for ``$TMUX_PANE``'s session, running; None outside tmux or
        when tmux cannot be started."""
        if not env.get("TMUX"):
            return None
        # As subprocess finds it: in the PATH of ``env`` (posix_spawnp would
        # search ours).
        path = next((p for p in (os.path.join(d or ".", "tmux")
                                 for d in env.get("PATH", os.defpath).split(os.pathsep))
                     if os.access(p, os.X_OK) and not os.path.isdir(p)), None)
        if path is None:
            return None
        argv = _session_query(env)
        import signal  # loaded by the launcher already

        r, w = os.pipe()
        try:
            pid = os.posix_spawn(path, argv, env, file_actions=[
                (os.POSIX_SPAWN_OPEN, 0, os.devnull, os.O_RDONLY, 0),
                (os.POSIX_SPAWN_DUP2, w, 1),
                (os.POSIX_SPAWN_OPEN, 2, os.devnull, os.O_WRONLY, 0),
                (os.POSIX_SPAWN_CLOSE, r),
            ], setsigdef=(signal.SIGPIPE, signal.SIGXFSZ))  # as subprocess restores them
        except OSError:
            os.close(r)
            return None
        finally:
            os.close(w)
        return cls(pid, r)

    def result(self) -> str | None:
        """The session name (None on error or after TIMEOUT); waits for tmux
        the first time, at most TIMEOUT seconds."""
        if self._done:
            return self._answer
        self._done = True
        import select
        import time

        out = b""
        deadline = time.monotonic() + self.TIMEOUT
        try:
            while True:
                left = deadline - time.monotonic()
                if left <= 0 or not select.select([self._fd], [], [], left)[0]:
                    os.kill(self._pid, 9)  # stuck: no answer
                    out = b""
                    break
                chunk = os.read(self._fd, 4096)
                if not chunk:
                    break
                out += chunk
        except (OSError, InterruptedError):
            out = b""
        finally:
            os.close(self._fd)
        status = self._reap()
        name = out.decode("utf-8", "replace").strip()
        self._answer = name if status == 0 and name else None
        return self._answer

    def cancel(self) -> None:
        """Claude did not start: end the query unread."""
        if self._done:
            return
        self._done = True
        os.close(self._fd)
        try:
            os.kill(self._pid, 9)
        except OSError:
            pass
        self._reap()

    def _reap(self) -> int | None:
        """tmux's exit status (None if killed or already reaped)."""
        while True:
            try:
                _, status = os.waitpid(self._pid, 0)
            except InterruptedError:
                continue
            except ChildProcessError:
                return None
            return os.waitstatus_to_exitcode(status)


def screen_label(sty: str | None, window: str | None) -> str | None:
    """``screen_session`` for GNU screen's ``$STY`` (``pid.name``) and ``$WINDOW``:
    ``"pid.name:window"``, or just ``$STY`` without a window number."""
    if not sty:
        return None
    return f"{sty}:{window}" if window else sty


def collect(*, project: str | None = None, tags: dict[str, str] | None = None,
            env: dict[str, str] | None = None, cwd: str | None = None,
            ask_tmux: bool = True) -> dict[str, Any]:
    """Attribution fields for records written by this process; with
    ``ask_tmux`` false, ``tmux_session`` is None (see TmuxQuery)."""
    env = dict(os.environ if env is None else env)
    cwd = cwd or os.getcwd()
    all_tags = parse_tags(env.get("CLAUDEWRAP_TAGS"))
    all_tags.update(tags or {})
    return {
        "project": find_project(cwd, project or env.get("CLAUDEWRAP_PROJECT")),
        "cwd": cwd,
        "host": hostname(),
        "tmux_pane": env.get("TMUX_PANE") or None,
        "tmux_session": tmux_session_name(env) if ask_tmux else None,
        "screen_session": screen_label(env.get("STY"), env.get("WINDOW")),
        "tags": all_tags,
    }
