"""Run the real `claude` so that nothing changes for the person at the keyboard.

Three ways to connect the child, chosen by what our own stdin/stdout are:

* ``pty``: stdin and stdout are terminals. The child gets a pseudo-terminal as
  its controlling terminal (stdin, stdout, and stderr when ours is a terminal);
  our terminal goes raw and every byte is relayed both ways.
* ``stdout-pty``: stdout is a terminal, stdin is not (``echo x | claude``). The
  child reads our stdin directly and writes to a pty whose master we read, so
  it still sees a terminal on stdout.
* ``pipe``: stdout is not a terminal (``claude -p ... | jq``, CI). The child
  writes to a pipe we read; stdin is inherited as it is.

In every mode stderr is left alone (inherited) unless it is the same terminal
as stdout in ``pty`` mode, each output chunk is written to our stdout first and
then handed to the tap (the parser), and a failing tap is switched off without
disturbing the session. Signals become events on a wakeup pipe, handled in the
one relay loop. When stdout is a terminal, the terminal modes the child left
on (alternate screen, hidden cursor, mouse reporting, ...) are switched back
when it ends (claudewrap.wrap.term_modes).
"""

from __future__ import annotations

import errno
import fcntl
import os
import select
import signal
import struct
import sys
import termios
import tty
from collections.abc import Sequence

from claudewrap.wrap.term_modes import TermModes

TYPE_CHECKING = False  # typing.TYPE_CHECKING without importing typing (launch path)
if TYPE_CHECKING:
    from collections.abc import Callable
    from typing import Any, Protocol

    class Tap(Protocol):
        """Receives a copy of every output chunk, after it was written out.

        A tap may batch chunks; ``idle()`` is called when the child has been quiet
        for IDLE_SECONDS, so batched output is parsed while the session waits.
        A tap may also have ``backlog`` (bytes kept, not parsed yet) and
        ``step()`` (parse a slice of them): the relay calls step() while there
        is a backlog and no output or keystroke waits (duck-typed, optional).
        """

        def feed(self, chunk: bytes) -> None: ...

        def idle(self) -> None: ...

CLAUDE_ENV = "CLAUDEWRAP_CLAUDE"
DEPTH_ENV = "CLAUDEWRAP_DEPTH"
MAX_DEPTH = 8
READ_SIZE = 65536
# A read this full says more is waiting (a pty gives up to 4095 bytes, a pipe 65536).
FULL_READ = 4000
READS_PER_WAKEUP = 4
# After the child exits, keep reading output a grandchild may still write
# to the shared pty/pipe only this long once no more data comes.
DRAIN_IDLE_SECONDS = 0.05
IDLE_SECONDS = 0.25
# On `fg` the wrapper continues claude and passes it the terminal's size, as
# the shell does unwrapped: Claude Code repaints on SIGCONT itself. Narrowing
# the window by a column until it had run, to force a repaint, made it paint
# two or three times, and 2.1.197 then sometimes stayed out of raw mode: the
# terminal echoed "/exit" and Enter never reached it (4 of 43 `fg` + `/exit`
# under load, with keys held back until the repaints were done; 0 of 40 without
# the narrowing, as 0 of 40 unwrapped).

FORWARDED_SIGNALS = (signal.SIGTERM, signal.SIGHUP, signal.SIGINT, signal.SIGQUIT)


class LaunchError(Exception):
    """The child could not be started; ``status`` is the exit status to use."""

    def __init__(self, message: str, status: int) -> None:
        super().__init__(message)
        self.status = status


class RunResult:
    """How the child ended, as data (never guessed)."""

    __slots__ = ("exit_status", "mode", "output_bytes", "signal_number", "tap_error")

    def __init__(self, exit_status: int, signal_number: int | None = None, mode: str = "",
                 tap_error: str | None = None, output_bytes: int = 0) -> None:
        self.exit_status = exit_status
        self.signal_number = signal_number
        self.mode = mode
        self.tap_error = tap_error
        self.output_bytes = output_bytes

    def __repr__(self) -> str:
        return (f"RunResult(exit_status={self.exit_status}, signal_number={self.signal_number}, "
                f"mode={self.mode!r}, tap_error={self.tap_error!r}, "
                f"output_bytes={self.output_bytes})")


# --------------------------------------------------------------------------
# Finding the real claude


def which(name: str, path: str | None = None) -> str | None:
    """``shutil.which(name, path=path)`` for an executable file, without
    importing shutil (it loads bz2, lzma and fnmatch: ~4 ms of every start)."""
    if os.path.dirname(name):
        return name if _executable(name) else None
    if path is None:
        path = os.environ.get("PATH")
        if path is None:
            try:
                path = os.confstr("CS_PATH") or os.defpath
            except (AttributeError, ValueError, OSError):
                path = os.defpath
    seen: set[str] = set()
    for folder in path.split(os.pathsep) if path else ():
        if folder in seen:
            continue
        seen.add(folder)
        candidate = os.path.join(folder, name)
        if _executable(candidate):
            return candidate
    return None


def _executable(path: str) -> bool:
    return os.path.exists(path) and os.access(path, os.X_OK) and not os.path.isdir(path)


def _is_claudewrap(path: str) -> bool:
    """True when ``path`` is claudewrap itself (its console script, a symlink
    to it, or a small shim script that calls it) rather than the real CLI."""
    real = os.path.realpath(path)
    argv0 = os.path.realpath(sys.argv[0]) if sys.argv and sys.argv[0] else ""
    if argv0 and real == argv0:
        return True
    try:
        with open(real, "rb") as fh:
            head = fh.read(4096)
    except OSError:
        return False
    # Only scripts can be shims; the real CLI is a native binary or a large
    # node bundle whose first page never names us.
    return head.startswith(b"#!") and b"claudewrap" in head


def find_claude(option: str | None = None, env: dict[str, str] | None = None) -> str:
    """Path of the real `claude`: ``option``, else $CLAUDEWRAP_CLAUDE, else the
    first `claude` on PATH that is not claudewrap itself.

    Raises LaunchError (status 127, or 126 when not executable) with a one-line
    message naming what was tried.
    """
    env = dict(os.environ if env is None else env)
    for label, value in (("--claude", option), (f"${CLAUDE_ENV}", env.get(CLAUDE_ENV))):
        if not value:
            continue
        candidate = value if os.sep in value else (which(value, path=env.get("PATH")) or value)
        if not os.path.exists(candidate):
            raise LaunchError(f"claudewrap: {label} {value}: no such file", 127)
        if os.path.isdir(candidate) or not os.access(candidate, os.X_OK):
            raise LaunchError(f"claudewrap: {label} {value}: not an executable file", 126)
        return os.path.abspath(candidate)
    searched = 0
    for folder in (env.get("PATH") or os.defpath).split(os.pathsep):
        searched += 1
        candidate = os.path.join(folder or ".", "claude")
        if (os.path.isfile(candidate) and os.access(candidate, os.X_OK)
                and not _is_claudewrap(candidate)):
            return os.path.abspath(candidate)
    raise LaunchError(
        "claudewrap: cannot find the real `claude`: no --claude option, "
        f"${CLAUDE_ENV} unset, and no `claude` other than claudewrap in the "
        f"{searched} PATH folders; install Claude Code or pass --claude PATH",
        127,
    )


# --------------------------------------------------------------------------
# Terminal helpers


def get_winsize(fd: int) -> tuple[int, int] | None:
    """(rows, cols) of the terminal on ``fd``, or None."""
    try:
        packed = fcntl.ioctl(fd, termios.TIOCGWINSZ, b"\0" * 8)
    except OSError:
        return None
    rows, cols, _, _ = struct.unpack("HHHH", packed)
    return (rows, cols) if rows and cols else None


def set_winsize(fd: int, size: tuple[int, int]) -> None:
    try:
        fcntl.ioctl(fd, termios.TIOCSWINSZ, struct.pack("HHHH", size[0], size[1], 0, 0))
    except OSError:
        pass


class raw_mode:  # a context manager, used as a function (no contextlib: launch path)
    """Put the terminal on ``fd`` in raw mode; always restore it.

    ``with raw_mode(fd) as saved``: the saved attributes (None when ``fd`` is
    not a terminal). ``raw_mode(None)`` does nothing and gives None."""

    def __init__(self, fd: int | None) -> None:
        self.fd = fd
        self.saved: list[Any] | None = None

    def __enter__(self) -> list[Any] | None:
        if self.fd is None:
            return None
        try:
            saved = termios.tcgetattr(self.fd)
        except termios.error:
            return None
        try:
            tty.setraw(self.fd, termios.TCSANOW)
        except BaseException:
            restore_terminal(self.fd, saved)
            raise
        self.saved = saved
        return saved

    def __exit__(self, *exc: object) -> None:
        if self.fd is not None:
            restore_terminal(self.fd, self.saved)


def restore_terminal(fd: int, saved: list[Any] | None) -> None:
    if saved is None:
        return
    try:
        termios.tcsetattr(fd, termios.TCSADRAIN, saved)
    except termios.error:
        pass


def write_all(fd: int, data: bytes) -> None:
    """Blocking write of all of ``data`` (stdout may be non-blocking when shared)."""
    view = memoryview(data)
    while view:
        try:
            n = os.write(fd, view)
        except BlockingIOError:
            select.select([], [fd], [], 1.0)
            continue
        view = view[n:]


def exit_status_of(wait_status: int) -> tuple[int, int | None]:
    """(exit status as a shell reports it, signal number or None)."""
    if os.WIFSIGNALED(wait_status):
        sig = os.WTERMSIG(wait_status)
        return 128 + sig, sig
    return os.waitstatus_to_exitcode(wait_status), None


# --------------------------------------------------------------------------
# Spawning


def _child_env(env: dict[str, str] | None) -> dict[str, str]:
    child = dict(os.environ if env is None else env)
    try:
        depth = int(child.get(DEPTH_ENV, "0"))
    except ValueError:
        depth = 0
    child[DEPTH_ENV] = str(depth + 1)
    return child


def check_depth(env: dict[str, str] | None = None) -> None:
    """Refuse runaway nesting (a shim that calls us calling a shim ...)."""
    value = (os.environ if env is None else env).get(DEPTH_ENV, "0")
    try:
        depth = int(value)
    except ValueError:
        depth = 0
    if depth >= MAX_DEPTH:
        raise LaunchError(
            f"claudewrap: {depth} nested claudewrap runs; a `claude` shim probably "
            f"calls claudewrap again; pass --claude PATH or set ${CLAUDE_ENV}",
            126,
        )


def _spawn_pty(argv: Sequence[str], env: dict[str, str], winsize: tuple[int, int] | None,
               attrs: list[Any] | None, stderr_fd: int | None) -> tuple[int, int]:
    """Start claude on a new pty as its controlling terminal, under a session
    leader of ours (:func:`_session_leader`). Returns (the leader's pid, master).

    Why the leader: a process group none of whose members has a parent in
    another group of the same session is orphaned, and the kernel discards a
    SIGTSTP sent to it. Claude as the leader of its pty's session, with us (in
    the user's session) as parent, was such a group: the SIGTSTP Claude Code
    sends itself on Ctrl-Z was dropped and the terminal hung (issue 14). With
    the leader as claude's parent in the same session, claude stops as it does
    unwrapped; the leader then stops itself (SIGSTOP, which is never
    discarded), and the relay sees that and stops the job (``_relay.reap``).
    """
    path = _exec_path(argv[0], env)
    err_r, err_w = os.pipe()  # close-on-exec: EOF once claude is exec'd
    try:
        pid, master = os.forkpty()
    except OSError as exc:
        os.close(err_r)
        os.close(err_w)
        raise LaunchError(f"claudewrap: cannot open a terminal for {argv[0]}: "
                          f"{exc.strerror or exc}", 126) from exc
    if pid == 0:  # pragma: no cover - runs in the child
        status = 126
        try:
            status = _session_leader(path, argv, env, winsize, attrs, stderr_fd, err_w)
        finally:
            os._exit(status)
    try:
        _exec_report(err_r, err_w, pid, argv[0])
    except LaunchError:
        os.close(master)
        raise
    set_winsize(master, winsize or (24, 80))
    return pid, master


def _exec_path(name: str, env: dict[str, str]) -> str:
    """What to exec for ``name``: itself when it names a folder, else the first
    match on the child's PATH (as Popen searched), else itself (exec says why)."""
    if os.sep in name:
        return name
    return which(name, path=env.get("PATH", os.defpath)) or name


def _exec_report(err_r: int, err_w: int, pid: int, name: str) -> None:
    """Wait until the child has exec'd (the close-on-exec pipe reads EOF) or
    says why it could not (an errno on the pipe): then reap it and raise
    LaunchError (127: no such file; 126: anything else)."""
    os.close(err_w)
    report = b""
    while True:
        try:
            chunk = os.read(err_r, 512)
        except InterruptedError:
            continue
        if not chunk:
            break
        report += chunk
    os.close(err_r)
    if report:
        _wait_blocking(pid)
        code = int(report) if report.isdigit() else errno.EIO
        if code == errno.ENOENT:
            raise LaunchError(f"claudewrap: {name}: no such file", 127)
        raise LaunchError(f"claudewrap: cannot start {name}: {os.strerror(code)}", 126)


def _session_leader(path: str, argv: Sequence[str], env: dict[str, str],
                    winsize: tuple[int, int] | None, attrs: list[Any] | None,
                    stderr_fd: int | None, err_w: int) -> int:
    """The pty session's leader (in the forked child): starts claude in a process
    group of its own, the terminal's foreground group, and waits for it.

    When claude stops (Ctrl-Z in Claude Code, kill -STOP), the leader stops
    itself; when continued, it continues claude's group. Signals the relay
    forwards to it go on to claude. Returns claude's exit status; when a signal
    killed claude, the leader dies of the same signal.
    """
    signal.set_wakeup_fd(-1)
    for sig in (*FORWARDED_SIGNALS, signal.SIGWINCH, signal.SIGCHLD, signal.SIGCONT):
        signal.signal(sig, signal.SIG_DFL)
    set_winsize(0, winsize or (24, 80))
    if attrs is not None:
        try:
            termios.tcsetattr(0, termios.TCSANOW, attrs)
        except termios.error:
            pass
    if stderr_fd is not None:
        os.dup2(stderr_fd, 2)
    # Only the terminal and the error pipe go on (as ptyprocess did: no fd of ours leaks).
    os.closerange(3, err_w)
    os.closerange(err_w + 1, max(err_w + 1, min(os.sysconf("SC_OPEN_MAX"), 1 << 20)))
    # tcsetpgrp from what becomes a background group must not stop us.
    signal.signal(signal.SIGTTOU, signal.SIG_IGN)
    mask = signal.pthread_sigmask(signal.SIG_BLOCK, FORWARDED_SIGNALS)
    try:
        child = os.fork()
    except OSError as exc:
        os.write(err_w, b"%d" % (exc.errno or errno.EAGAIN))
        return 126
    if child == 0:
        _exec_claude(path, argv, env, err_w, mask)
    os.close(err_w)
    try:  # as the child does too: whichever runs first, claude is in front before it reads
        os.setpgid(child, child)
        os.tcsetpgrp(0, child)
    except OSError:
        pass

    def forward(signum: int, _frame: object) -> None:
        try:
            os.kill(child, signum)
        except ProcessLookupError:
            pass

    for sig in FORWARDED_SIGNALS:
        signal.signal(sig, forward)
    signal.pthread_sigmask(signal.SIG_SETMASK, mask)
    while True:
        try:
            _, status = os.waitpid(child, os.WUNTRACED)
        except ChildProcessError:
            return 0
        if not os.WIFSTOPPED(status):
            break
        os.kill(os.getpid(), signal.SIGSTOP)  # the relay sees it and stops the job
        try:
            os.killpg(child, signal.SIGCONT)
        except OSError:
            pass
    if os.WIFSIGNALED(status):
        killer = os.WTERMSIG(status)
        import resource  # only here: our own death must not write a core file

        resource.setrlimit(resource.RLIMIT_CORE, (0, 0))
        for blocked in FORWARDED_SIGNALS:
            signal.signal(blocked, signal.SIG_DFL)
        try:
            signal.signal(killer, signal.SIG_DFL)
        except (OSError, ValueError):
            pass  # SIGKILL, SIGSTOP: already the default
        os.kill(os.getpid(), killer)
        return 128 + killer
    return os.waitstatus_to_exitcode(status)


def _exec_claude(path: str, argv: Sequence[str], env: dict[str, str], err_w: int,
                 mask: set[int | signal.Signals]) -> None:
    """In the grandchild: own process group in front on the terminal, then exec."""
    try:
        os.setpgid(0, 0)
        os.tcsetpgrp(0, os.getpid())
    except OSError:
        pass
    # Python ignores SIGPIPE and SIGXFSZ, the leader SIGTTOU: the real CLI must
    # not inherit that (ignored signals stay ignored across exec).
    for sig in (signal.SIGPIPE, signal.SIGXFSZ, signal.SIGTTOU):
        signal.signal(sig, signal.SIG_DFL)
    signal.pthread_sigmask(signal.SIG_SETMASK, mask)
    try:
        os.execve(path, list(argv), env)
    except OSError as exc:
        os.write(err_w, b"%d" % (exc.errno or errno.EIO))
        os._exit(127 if exc.errno == errno.ENOENT else 126)


def _spawn_plain(argv: Sequence[str], env: dict[str, str],
                 stdout_target: int) -> int:
    """Start claude with ``stdout_target`` as its stdout, our stdin and stderr,
    in our process group, no other fd of ours, default SIGPIPE and SIGXFSZ: as
    ``subprocess.Popen(argv, stdout=..., close_fds=True)`` did, without
    importing subprocess (~4 ms of every start). Returns its pid."""
    path = _exec_path(argv[0], env)
    args = list(argv)
    err_r, err_w = os.pipe()  # close-on-exec: EOF once claude is exec'd
    try:
        pid = os.fork()
    except OSError as exc:
        os.close(err_r)
        os.close(err_w)
        raise LaunchError(f"claudewrap: cannot start {argv[0]}: {exc.strerror or exc}",
                          126) from exc
    if pid == 0:  # pragma: no cover - runs in the child
        status = 126
        try:
            signal.set_wakeup_fd(-1)
            os.close(err_r)
            if stdout_target != 1:
                os.dup2(stdout_target, 1)
            os.closerange(3, err_w)
            os.closerange(err_w + 1, max(err_w + 1, min(os.sysconf("SC_OPEN_MAX"), 1 << 20)))
            for sig in (signal.SIGPIPE, signal.SIGXFSZ):
                signal.signal(sig, signal.SIG_DFL)
            os.execve(path, args, env)
        except OSError as exc:
            status = 127 if exc.errno == errno.ENOENT else 126
            try:
                os.write(err_w, b"%d" % (exc.errno or errno.EIO))
            except OSError:
                pass
        finally:
            os._exit(status)
    _exec_report(err_r, err_w, pid, argv[0])
    return pid


def choose_mode(stdin_fd: int, stdout_fd: int) -> str:
    if os.isatty(stdout_fd):
        return "pty" if os.isatty(stdin_fd) else "stdout-pty"
    return "pipe"


def _same_tty(fd_a: int, fd_b: int) -> bool:
    try:
        a, b = os.fstat(fd_a), os.fstat(fd_b)
    except OSError:
        return False
    return os.isatty(fd_a) and (a.st_rdev, a.st_ino) == (b.st_rdev, b.st_ino)


# --------------------------------------------------------------------------
# The relay


def run(argv: Sequence[str], tap: Tap | None = None, *, env: dict[str, str] | None = None,
        stdin_fd: int = 0, stdout_fd: int = 1, stderr_fd: int = 2,
        mode: str | None = None, started: Callable[[], object] | None = None) -> RunResult:
    """Run ``argv`` (argv[0] is the real claude), relay its I/O, return how it ended.

    ``started`` is called once the child runs (exec'd), before the relay:
    what the run needs only while claude runs is done there, while claude
    starts up, rather than before it (an exception from it is ignored).
    Raises LaunchError when it cannot be started.
    """
    mode = mode or choose_mode(stdin_fd, stdout_fd)
    child_env = _child_env(env)
    result = RunResult(exit_status=0, mode=mode)
    # Under a file-size limit (ulimit -f) a journal write must fail with EFBIG,
    # so the writer keeps what fits and saves the rest, rather than SIGXFSZ
    # killing us. Python ignores it at start-up; a program embedding us may
    # not, and it stays ignored for the writes after the child ended. The child
    # gets the default back (preexec in _spawn_pty; Popen's restore_signals).
    signal.signal(signal.SIGXFSZ, signal.SIG_IGN)

    # Signals become bytes on a pipe, read in the loop (no handler races it).
    wake_r, wake_w = os.pipe()
    for fd in (wake_r, wake_w):
        os.set_blocking(fd, False)
        fcntl.fcntl(fd, fcntl.F_SETFD, fcntl.FD_CLOEXEC)
    watched = (*FORWARDED_SIGNALS, signal.SIGWINCH, signal.SIGCHLD, signal.SIGCONT)
    old_handlers = {sig: signal.signal(sig, lambda *_: None) for sig in watched}
    old_wakeup = signal.set_wakeup_fd(wake_w, warn_on_full_buffer=False)

    saved_attrs: list[Any] | None = None
    try:
        if mode == "pty":
            try:
                saved_attrs = termios.tcgetattr(stdin_fd)
            except termios.error:
                saved_attrs = None
            winsize = get_winsize(stdout_fd) or get_winsize(stdin_fd)
            err = None if _same_tty(stderr_fd, stdout_fd) else os.dup(stderr_fd)
            try:
                pid, out_fd = _spawn_pty(argv, child_env, winsize, saved_attrs, err)
            finally:
                if err is not None:
                    os.close(err)
            in_fd: int | None = stdin_fd
        else:
            if mode == "stdout-pty":
                out_fd, slave = os.openpty()
                winsize = get_winsize(stdout_fd)
                if winsize:
                    set_winsize(slave, winsize)
                # The real terminal does the output processing, as without us.
                attrs = termios.tcgetattr(slave)
                attrs[1] &= ~termios.OPOST
                termios.tcsetattr(slave, termios.TCSANOW, attrs)
            else:
                out_fd, slave = os.pipe()
            fcntl.fcntl(out_fd, fcntl.F_SETFD, fcntl.FD_CLOEXEC)
            try:
                pid = _spawn_plain(argv, child_env, slave)
            except LaunchError:
                os.close(out_fd)
                raise
            finally:
                os.close(slave)
            in_fd = None

        modes = TermModes() if os.isatty(stdout_fd) else None
        with raw_mode(stdin_fd if mode == "pty" else None) as raw_saved:
            if started is not None:
                try:
                    started()
                except Exception:  # noqa: BLE001,S110 - never hurt the session
                    pass
            _relay(pid, out_fd, in_fd, stdout_fd, wake_r, mode, tap, result, raw_saved, modes)
    finally:
        signal.set_wakeup_fd(old_wakeup)
        for sig, handler in old_handlers.items():
            signal.signal(sig, handler)
        os.close(wake_r)
        os.close(wake_w)
    return result


def _relay(pid: int, out_fd: int, in_fd: int | None, stdout_fd: int, wake_r: int,
           mode: str, tap: Tap | None, result: RunResult,
           raw_saved: list[Any] | None, modes: TermModes | None = None) -> None:
    """The one copy loop: child output → stdout (then tap), stdin → child.

    ``modes`` follows the terminal modes the output switches; what the child
    left on is switched back once it has ended, before the terminal's own
    settings are restored.
    """
    os.set_blocking(out_fd, False)
    stdin_fd_raw = in_fd if in_fd is not None else 0
    pending_input = bytearray()
    tap_dirty = False
    tap_feed = tap.feed if tap is not None else None
    stdout_ok = True
    child_status: int | None = None
    output_open = True

    def handle_output() -> bool:
        """Copy what the child wrote; False once its side is closed.

        Each read is written out at once (reading on until the pty is empty
        to write once holds output back from the terminal, and the whole
        pipeline, child -> us -> terminal, then runs slower). A pty hands over
        at most ~4 KiB per read; while reads come back that full, the child is
        ahead of us and the next read is made without asking select() first,
        up to READS_PER_WAKEUP reads (keystrokes wait at most that long).
        """
        nonlocal stdout_ok, tap_dirty
        # Per read: one read, one write, the modes and the tap's feed() (which
        # only keeps the chunk); nothing else, as this runs ~25,000 times per
        # 100 MB (bench/real_output.py).
        write = os.write
        feed = modes.feed if modes is not None else None
        for _ in range(READS_PER_WAKEUP):
            try:
                data = os.read(out_fd, READ_SIZE)
            except BlockingIOError:
                return True
            except OSError as exc:
                if exc.errno != errno.EIO:  # Linux: EIO = pty slave closed by everyone
                    raise
                return False
            if not data:
                return False
            size = len(data)
            result.output_bytes += size
            if stdout_ok:
                try:
                    written = write(stdout_fd, data)
                    if written < size:
                        write_all(stdout_fd, data[written:])
                except BlockingIOError:  # nothing written (stdout shared, non-blocking)
                    try:
                        write_all(stdout_fd, data)
                    except OSError:
                        stdout_ok = False
                except OSError:
                    # Reader gone (EPIPE) or terminal hung up (EIO): keep reading
                    # and parsing until the child ends, writing nothing more.
                    stdout_ok = False
                if feed is not None:
                    feed(data)
            if tap_feed is not None:
                try:
                    tap_feed(data)
                except Exception as exc:  # noqa: BLE001 - as in call_tap
                    tap_failed(exc)
                else:
                    tap_dirty = True
            if size < FULL_READ:
                break
        return True

    def tap_failed(exc: Exception) -> None:
        nonlocal tap, tap_feed
        result.tap_error = f"{type(exc).__name__}: {exc}"
        tap = None
        tap_feed = None

    def call_tap(method: str, *args: bytes) -> None:
        nonlocal tap_dirty
        if tap is None:
            return
        fn = getattr(tap, method, None)
        if fn is None:
            return
        try:
            fn(*args)
        except Exception as exc:  # noqa: BLE001 - a parser bug must never hurt the session
            tap_failed(exc)
        else:
            tap_dirty = method != "idle"

    def resume_raw() -> None:
        _enter_raw(stdin_fd_raw)
        pass_size()

    def pass_size() -> None:
        size = get_winsize(stdout_fd)
        if size:
            set_winsize(out_fd, size)

    def reap() -> int | None:
        """SIGCHLD: the child exited, or stopped (Ctrl-Z in its pty)."""
        try:
            got, status = os.waitpid(pid, os.WNOHANG | os.WUNTRACED)
        except ChildProcessError:
            return 0
        if got == 0:
            return None
        if not os.WIFSTOPPED(status):
            return status
        if raw_saved is not None:
            # Job control: claude stopped (Ctrl-Z in Claude Code, kill -STOP),
            # and so did its session leader. Give the shell its terminal back
            # as it was and stop as claude would have; on `fg`, go raw again,
            # pass the terminal's size and wake claude (the leader continues
            # its group), which repaints, as the shell's `fg` does unwrapped.
            # What it wrote before it stopped ("... has been suspended") is shown first.
            for _ in range(64):
                if not select.select([out_fd], [], [], 0)[0] or not handle_output():
                    break
            restore_terminal(stdin_fd_raw, raw_saved)
            _stop_self()
            resume_raw()  # raw again, and the size, changed or not while stopped
        try:
            os.kill(pid, signal.SIGCONT)
        except ProcessLookupError:
            pass
        return None

    def handle_signals() -> None:
        nonlocal child_status
        try:
            data = os.read(wake_r, 1024)
        except BlockingIOError:
            return
        for signum in set(data):
            if signum == signal.SIGWINCH:
                pass_size()
            elif signum == signal.SIGCHLD:
                if child_status is None:
                    child_status = reap()
            elif signum == signal.SIGCONT and raw_saved is not None:
                resume_raw()
            elif signum in FORWARDED_SIGNALS and (
                    mode == "pty" or signum in (signal.SIGTERM, signal.SIGHUP)):
                # In pty mode the terminal's keys reach the child as bytes, so
                # a signal to us was sent by someone on purpose: pass it on.
                # Without our pty the child shares our process group and gets
                # terminal-generated SIGINT/SIGQUIT itself.
                try:
                    os.kill(pid, signum)
                except ProcessLookupError:
                    pass

    while child_status is None or output_open:
        rlist = [wake_r]
        if output_open:
            rlist.append(out_fd)
        if in_fd is not None and child_status is None:
            rlist.append(in_fd)
        wlist = [out_fd] if pending_input and child_status is None else []
        if child_status is not None:
            timeout: float | None = DRAIN_IDLE_SECONDS
        elif tap is None or not tap_dirty:
            timeout = None
        else:
            # Output kept and not parsed: parse a slice whenever nothing waits.
            timeout = 0.0 if getattr(tap, "backlog", 0) else IDLE_SECONDS
        try:
            readable, writable, _ = select.select(rlist, wlist, [], timeout)
        except InterruptedError:
            continue
        if not readable and not writable:
            if child_status is not None:
                break  # child gone and nothing more came: a grandchild holds the pty
            if timeout == 0.0:
                call_tap("step")
                continue
            tap_dirty = False
            call_tap("idle")
            continue
        if wake_r in readable:
            handle_signals()
        # Keystrokes first, written on at once (the pty is non-blocking: what
        # it cannot take now waits for select() to say it can), then output:
        # while output flows, a keystroke waited behind its reads, and for a
        # second select() round before it was written.
        if in_fd is not None and in_fd in readable:
            try:
                data = os.read(in_fd, READ_SIZE)
            except OSError:
                data = b""
            if data:
                pending_input += data
            else:
                in_fd = None  # stdin EOF: stop reading it, keep copying output
        if pending_input and child_status is None:
            try:
                n = os.write(out_fd, pending_input)
                del pending_input[:n]
            except BlockingIOError:
                pass
            except OSError:
                pending_input.clear()
        if out_fd in readable:
            output_open = handle_output()
        if not output_open and child_status is None:
            # Output closed first (child exited or closed its stdout): wait for it.
            child_status = _wait_blocking(pid)
    os.close(out_fd)
    if child_status is None:
        child_status = _wait_blocking(pid)
    if modes is not None and stdout_ok:
        resets = modes.resets()  # b"" when the child switched everything back
        if resets:
            try:
                write_all(stdout_fd, resets)
            except OSError:
                pass
    result.exit_status, result.signal_number = exit_status_of(child_status)


def _stop_self() -> None:
    """Stop this process as a job does on Ctrl-Z (SIGTSTP: the shell reports it
    stopped); returns once it is continued (`fg`, `bg`, SIGCONT). Sent to our whole
    process group, as the terminal sends Ctrl-Z: a parent in the job stops too (zsh's
    `claude` script, a `sh -c`, a pipeline's subshell), so the shell sees its job stop
    instead of waiting on a parent that never will. A stop is group-wide in the kernel:
    this thread stops before the call returns even while other threads (the
    OpenTelemetry receiver) run. An orphaned group would not stop: it returns at once."""
    os.killpg(os.getpgrp(), signal.SIGTSTP)


def _enter_raw(fd: int) -> None:
    try:
        tty.setraw(fd, termios.TCSANOW)
    except termios.error:
        pass


def _wait_blocking(pid: int) -> int:
    while True:
        try:
            _, status = os.waitpid(pid, os.WUNTRACED)
        except ChildProcessError:
            return 0
        except InterruptedError:
            continue
        if os.WIFSTOPPED(status):
            os.kill(pid, signal.SIGCONT)
            continue
        return status
