"""`claudewrap setup`: everything a new user would otherwise add by hand, once,
and `claudewrap setup --undo`, which takes exactly that out again.

The steps: the shell line in ``~/.bashrc`` or ``${ZDOTDIR:-$HOME}/.zshrc``,
Claude Code's ``statusLine`` in its ``settings.json`` (a status line of the
user's own keeps running, below ours, through ``[statusline] command`` in
config.toml), the tmux segment in ``~/.tmux.conf``, and a config.toml of
commented examples when there is none. Each step is planned first, as the
bytes a file has and the bytes it will have (:class:`Change`), so a dry run
and the diff shown before asking are exactly what will be written.

What goes into a user's file goes in one block between :data:`BEGIN` and
:data:`END`, appended at its end. Before a file that exists is changed it is
copied beside itself (``.bashrc.claudewrap-backup-YYYYmmddHHMMSS``); every
write is a new file moved into place with the old file's mode (a symlinked
rc file is written where the link points). ``setup.json`` in claudewrap's
data folder lists each change as it is made: the undo works from it alone,
restores the bytes exactly when the file was not touched since, and takes
out only its own block (or only its own ``statusLine``) when it was.
"""

from __future__ import annotations

import difflib
import hashlib
import json
import os
import shlex
import shutil
import stat
import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

BEGIN = "# >>> claudewrap setup >>>"
END = "# <<< claudewrap setup <<<"
NOTE = "# Added by `claudewrap setup`; `claudewrap setup --undo` takes this block out.\n"
MANIFEST = "setup.json"
MANIFEST_VERSION = 1
BACKUP = ".claudewrap-backup-"
SHELLS = ("bash", "zsh")

CONFIG_TEXT = """\
# claudewrap's config file, written by `claudewrap setup`. Every section is
# optional and every line below is a commented-out example: as it is, nothing
# is set and the defaults apply. `claudewrap doctor` checks this file; every
# key is described in docs/configuration.md.

# Usage lines of your own (repeatable). Named groups: input, output,
# cache_read, cache_write, cost, model.
# [[patterns]]
# name = "my-tool"
# regex = '(?P<input>\\d+) in / (?P<output>\\d+) out, \\$(?P<cost>[\\d.]+)'
# kind = "delta"                # or "total": a running total of the session

# Budgets in USD (none by default; CLAUDEWRAP_BUDGET_DAY/_MONTH override them).
# [budget]
# daily_usd = 10.0
# monthly_usd = 150.0
#
# [budget.projects.web]         # one project's budgets
# daily_usd = 4.0

# Where budget and plan-limit alerts are POSTed (none by default).
# [alerts]
# webhook_url = "https://hooks.example.com/claude"
# headers = { Authorization = "Bearer ..." }
# rate_limit_percent = [80, 95]

# A status-line command of your own: it runs after claudewrap's, with the
# same input, and its first line shows below claudewrap's.
# [statusline]
# command = "~/bin/my-statusline"
"""


class SetupError(Exception):
    """Something the user must fix before setup can go on; one line that says what."""


@dataclass
class Change:
    """One file's planned change: its bytes now (None: it does not exist) and after."""

    step: str
    path: Path
    before: bytes | None
    after: bytes
    kind: str  # "block" (a marked block appended), "file" (a new file), "settings"
    added: str = ""  # "block": the text appended, separator included
    statusline: dict[str, Any] = field(default_factory=dict)  # "settings": had, previous, ours


@dataclass
class Step:
    """One thing setup offers: its changes (none: nothing to do, ``note`` says why)."""

    title: str
    changes: list[Change]
    note: str = ""
    default: bool = True


# --- where things are ------------------------------------------------------------------


def detect_shell(option: str | None, env: Mapping[str, str]) -> str:
    """``--shell`` if given, else the name of ``$SHELL``; SetupError for any other shell."""
    if option:
        return option
    name = os.path.basename(env.get("SHELL", ""))
    if name in SHELLS:
        return name
    raise SetupError(f"cannot tell your shell from $SHELL ({env.get('SHELL') or 'unset'}): "
                     "claudewrap has integration for bash and zsh; pass --shell bash or "
                     "--shell zsh (other shells: claudewrap run -- ARGS)")


def home(env: Mapping[str, str]) -> Path:
    return Path(env.get("HOME") or Path.home())


def rc_file(shell: str, env: Mapping[str, str]) -> Path:
    """``~/.bashrc``, or ``${ZDOTDIR:-$HOME}/.zshrc``: what an interactive shell reads."""
    if shell == "zsh":
        return Path(env.get("ZDOTDIR") or home(env)) / ".zshrc"
    return home(env) / ".bashrc"


def settings_file(env: Mapping[str, str]) -> Path:
    """Claude Code's user settings: ``$CLAUDE_CONFIG_DIR/settings.json`` (its first
    folder), else ``~/.claude/settings.json``."""
    listed = [d.strip() for d in (env.get("CLAUDE_CONFIG_DIR") or "").split(",") if d.strip()]
    folder = Path(listed[0]).expanduser() if listed else home(env) / ".claude"
    return folder / "settings.json"


def tmux_conf(env: Mapping[str, str]) -> Path:
    """``~/.tmux.conf``, unless only tmux 3.1's ``$XDG_CONFIG_HOME/tmux/tmux.conf`` exists."""
    classic = home(env) / ".tmux.conf"
    xdg = Path(env.get("XDG_CONFIG_HOME") or home(env) / ".config") / "tmux" / "tmux.conf"
    return xdg if not classic.exists() and xdg.exists() else classic


def manifest_path() -> Path:
    import platformdirs

    return Path(platformdirs.user_data_dir("claudewrap", appauthor=False)) / MANIFEST


def show(path: Path, env: Mapping[str, str]) -> str:
    """``path`` with the home folder as ``~``, for messages."""
    try:
        return "~/" + str(path.relative_to(home(env)))
    except ValueError:
        return str(path)


# --- planning --------------------------------------------------------------------------


class Files:
    """The files as they will be once the changes planned so far are made."""

    def __init__(self, pending: dict[Path, bytes] | None = None) -> None:
        self.pending: dict[Path, bytes] = dict(pending or {})

    def copy(self) -> Files:
        return Files(self.pending)

    def read(self, path: Path) -> bytes | None:
        if path in self.pending:
            return self.pending[path]
        try:
            st = os.stat(path)
        except FileNotFoundError:
            return None
        except OSError as exc:
            raise SetupError(f"cannot read {path}: {exc.strerror or exc}") from None
        if not stat.S_ISREG(st.st_mode):
            raise SetupError(f"{path} is not a regular file: move it away, or leave out this step")
        try:
            return path.read_bytes()
        except OSError as exc:
            raise SetupError(f"cannot read {path}: {exc.strerror or exc}") from None

    def text(self, path: Path) -> str | None:
        data = self.read(path)
        if data is None:
            return None
        try:
            return data.decode("utf-8")
        except UnicodeDecodeError:
            raise SetupError(f"{path} is not UTF-8 text: setup leaves it alone; add the lines "
                             "by hand (see docs/shell.md)") from None

    def add(self, change: Change) -> Change:
        self.pending[change.path] = change.after
        return change


def append_block(step: str, path: Path, files: Files, body: str) -> Change:
    """The change that appends ``body`` in a marked block at the end of ``path``."""
    old = files.text(path)
    text = old or ""
    sep = "" if not text or text.endswith("\n\n") else "\n" if text.endswith("\n") else "\n\n"
    added = f"{sep}{BEGIN}\n{NOTE}{body}{END}\n"
    return files.add(Change(step, path, None if old is None else text.encode(),
                            (text + added).encode(), "block", added=added))


def has_block(text: str | None) -> bool:
    return text is not None and BEGIN in text


def command_parts(command: str) -> tuple[str, str]:
    """(the program to test with ``[ -x ]``, the whole command), shell-quoted."""
    program = shlex.split(command)[0]
    return shlex.quote(program), command


def plan_shell(shell: str, env: Mapping[str, str], files: Files, command: str) -> Step:
    path = rc_file(shell, env)
    title = f"the shell line in {show(path, env)}: `claude` runs through claudewrap, " \
            "`claude_usage` shows what it cost"
    text = files.text(path)
    if has_block(text):
        return Step(title, [], f"{show(path, env)} has it already")
    for number, line in enumerate((text or "").splitlines(), 1):
        if f"shell-init {shell}" in line and not line.lstrip().startswith("#"):
            return Step(title, [], f"{show(path, env)} loads claudewrap already "
                        f"(line {number})")
    program, whole = command_parts(command)
    body = (f"if [ -x {program} ]; then\n"
            f"  eval \"$({whole} shell-init {shell})\"\n"
            "fi\n")
    return Step(title, [append_block("shell", path, files, body)])


def _is_ours(value: Any) -> bool:
    command = value.get("command") if isinstance(value, dict) else None
    return isinstance(command, str) and "claudewrap" in command and "statusline" in command


def _toml_string(value: str) -> str:
    # JSON's escapes (\" \\ \n \uXXXX) are TOML's basic-string escapes.
    return json.dumps(value, ensure_ascii=False)


def plan_statusline(env: Mapping[str, str], files: Files, command: str,
                    config: Path) -> Step:
    path = settings_file(env)
    title = (f"Claude Code's status line in {show(path, env)}: model, this session's cost, "
             "today's cost, plan limits")
    raw = files.read(path)
    settings: Any = {}
    if raw is not None and raw.strip():
        try:
            settings = json.loads(raw)
        except ValueError as exc:
            return Step(title, [], f"{show(path, env)} is not valid JSON ({exc}): "
                        "fix it, then run setup again")
    if not isinstance(settings, dict):
        return Step(title, [], f"{show(path, env)} does not hold a JSON object: "
                    "left alone")
    previous = settings.get("statusLine")
    if _is_ours(previous):
        return Step(title, [], f"{show(path, env)} has it already")
    changes = []
    theirs = previous.get("command") if isinstance(previous, dict) else None
    if isinstance(theirs, str) and theirs.strip():
        chain = plan_chain(theirs, env, files, config)
        if isinstance(chain, str):
            return Step(title, [], chain)
        if chain is not None:
            changes.append(chain)
        title += f"; yours ({theirs}) shows below it"
    ours = {**(previous if isinstance(previous, dict) else {}),
            "type": "command", "command": f"{command} statusline"}
    new = dict(settings)
    new["statusLine"] = ours
    after = (json.dumps(new, indent=2, ensure_ascii=False) + "\n").encode()
    changes.insert(0, files.add(Change(
        "statusline", path, raw, after, "settings",
        statusline={"had": "statusLine" in settings, "previous": previous, "ours": ours})))
    return Step(title, changes)


def plan_chain(theirs: str, env: Mapping[str, str], files: Files,
               config: Path) -> Change | str | None:
    """The config.toml change that keeps the user's own status line running below
    ours (None: it runs already; a string: why it cannot be kept)."""
    from claudewrap.sources.statusline import COMMAND_ENV
    from claudewrap.store.config import parse_toml

    if env.get(COMMAND_ENV):
        return None if env[COMMAND_ENV] == theirs else (
            f"${COMMAND_ENV} names another status-line command than the one in your "
            f"settings ({theirs}): set it to that, then run setup again")
    text = files.text(config)
    table: Any = None
    if text is not None:
        try:
            table = parse_toml(text, config).get("statusline")
        except ValueError as exc:
            return f"{exc}: fix it, then run setup again"
    if isinstance(table, dict) and table.get("command") == theirs:
        return None
    if table is not None:
        return (f"{show(config, env)} has a [statusline] table already: add "
                f"command = {_toml_string(theirs)} to it to keep your status line, then run "
                "setup again")
    body = ("# Your own status line from Claude Code's settings: it shows below claudewrap's.\n"
            f"[statusline]\ncommand = {_toml_string(theirs)}\n")
    return append_block("statusline", config, files, body)


def plan_tmux(env: Mapping[str, str], files: Files, command: str) -> Step:
    from claudewrap.install.integration import tmux_lines

    path = tmux_conf(env)
    title = f"the tmux segment in {show(path, env)}: today's cost and token rate"
    installed = shutil.which("tmux", path=env.get("PATH")) is not None
    text = files.text(path)
    if has_block(text) or (text is not None and "status --format tmux" in text):
        return Step(title, [], f"{show(path, env)} has it already")
    if not installed and text is None:
        return Step(title, [], "tmux is not installed (once it is, setup again adds "
                    "the segment)")
    if "'" in command:
        return Step(title, [], f"the path {command} has a single quote: tmux "
                    "cannot be given it")
    mine = any(line.split()[:3] in (["set", "-g", "status-right"],
                                    ["set-option", "-g", "status-right"])
               for line in (text or "").splitlines())
    if mine:  # keep the user's status-right: add ours at its end
        body = ("# today's cost and token rate after your status-right (an absolute path:\n"
                "# the tmux server may not have claudewrap on its PATH)\n"
                f"set -ga status-right ' #({command} status --format tmux)'\n"
                "set -g status-interval 15\n")
    else:
        try:
            body = tmux_lines()
        except ValueError as exc:  # a path tmux's quoting cannot hold
            raise SetupError(str(exc)) from None
    return Step(title, [append_block("tmux", path, files, body)], default=installed,
                note="" if installed else "tmux is not on PATH")


def plan_config(env: Mapping[str, str], files: Files, path: Path) -> Step:
    title = f"a config file of commented examples, {show(path, env)}"
    if files.read(path) is not None:
        return Step(title, [], f"{show(path, env)} is there already")
    return Step(title, [files.add(Change("config", path, None,
                                                   CONFIG_TEXT.encode(), "file"))])


def diff(change: Change, env: Mapping[str, str]) -> str:
    """The change as a unified diff (paths shown with ``~``)."""
    before = (change.before or b"").decode("utf-8", "replace").splitlines(keepends=True)
    after = change.after.decode("utf-8", "replace").splitlines(keepends=True)
    name = show(change.path, env)
    lines = difflib.unified_diff(before, after, "/dev/null" if change.before is None else name,
                                 name, n=2)
    return "".join(line if line.endswith("\n") else line + "\n" for line in lines)


# --- writing ---------------------------------------------------------------------------


def sha256(data: bytes) -> str:
    return hashlib.sha256(data).hexdigest()


def write_file(path: Path, data: bytes, new_mode: int) -> None:
    """``data`` into ``path`` by a new file moved in place: the old file's mode (or
    ``new_mode`` for a new file); a symlink stays a link, its target is written."""
    from claudewrap.store.journal import atomic_write

    target = Path(os.path.realpath(path))
    try:
        mode = stat.S_IMODE(os.stat(target).st_mode)
    except FileNotFoundError:
        mode = new_mode
    atomic_write(target, [data], mode)


def make_dirs(folder: Path, made: list[str], mode: int = 0o700) -> None:
    """``folder`` and its missing parents; each one made is added to ``made``."""
    missing = []
    while not folder.exists():
        missing.append(folder)
        folder = folder.parent
    for one in reversed(missing):
        os.mkdir(one, mode)
        made.append(str(one))


def backup(path: Path) -> Path:
    """A copy of ``path`` beside it, with its mode: ``NAME.claudewrap-backup-STAMP``."""
    stamp = time.strftime("%Y%m%d%H%M%S")
    target = Path(os.path.realpath(path))
    copy = target.with_name(f"{target.name}{BACKUP}{stamp}")
    n = 1
    while copy.exists():
        n += 1
        copy = target.with_name(f"{target.name}{BACKUP}{stamp}-{n}")
    shutil.copy2(target, copy)
    return copy


class Manifest:
    """``setup.json``: what setup did, in order, for :func:`undo`."""

    def __init__(self, path: Path) -> None:
        self.path = path
        self.entries: list[dict[str, Any]] = []
        self.dirs: list[str] = []
        try:
            data = json.loads(path.read_bytes())
        except FileNotFoundError:
            return
        except (OSError, ValueError) as exc:
            raise SetupError(f"cannot read {path} ({exc}): move it away to start afresh "
                             "(--undo then has nothing to undo)") from None
        if not isinstance(data, dict) or data.get("version") != MANIFEST_VERSION:
            raise SetupError(f"{path} is not a setup manifest claudewrap knows: move it away")
        self.entries = list(data.get("entries", []))
        self.dirs = list(data.get("dirs", []))

    def save(self) -> None:
        make_dirs(self.path.parent, self.dirs, 0o700)
        data = {"version": MANIFEST_VERSION, "entries": self.entries, "dirs": self.dirs}
        write_file(self.path, (json.dumps(data, indent=2) + "\n").encode(), 0o600)


def apply(change: Change, manifest: Manifest, seen: set[Path]) -> Path | None:
    """Make ``change`` (after a backup of the file, unless this run made or copied
    it already) and record it; returns the backup made, if any."""
    now = Files().read(change.path)
    if now != change.before:
        raise SetupError(f"{change.path} changed while setup ran: nothing more was changed; "
                         "run setup again")
    made: list[str] = []
    copy = None
    if now is not None and change.path not in seen:
        copy = backup(change.path)
    seen.add(change.path)
    make_dirs(change.path.parent, made)
    write_file(change.path, change.after, 0o644 if change.kind == "block" else 0o600)
    entry: dict[str, Any] = {
        "step": change.step, "kind": change.kind, "path": str(change.path),
        "created": change.before is None, "after_sha256": sha256(change.after),
        "backup": str(copy) if copy else None,
        "backup_sha256": sha256(now) if copy and now is not None else None,
        "dirs": made, "time": time.strftime("%Y-%m-%dT%H:%M:%S%z"),
    }
    if change.kind == "block":
        entry["added"] = change.added
    if change.kind == "settings":
        entry["statusline"] = change.statusline
    manifest.entries.append(entry)
    manifest.save()
    return copy


# --- the command ------------------------------------------------------------------------


def planners(shell: str, env: Mapping[str, str], command: str, *, statusline: bool,
             tmux: bool) -> list[Callable[[Files], Step]]:
    """The steps in the order they are offered, each planned on the files as the
    steps before it left them."""
    from claudewrap.store.config import default_config_path

    config = default_config_path()
    steps: list[Callable[[Files], Step]] = [
        lambda files: plan_config(env, files, config),
        lambda files: plan_shell(shell, env, files, command),
    ]
    if statusline:
        steps.append(lambda files: plan_statusline(env, files, command, config))
    if tmux:
        steps.append(lambda files: plan_tmux(env, files, command))
    return steps


def setup(env: Mapping[str, str], command: str, echo: Callable[[str], None],
          ask: Callable[[str, bool], bool] | None, *, shell: str | None = None,
          yes: bool = False, dry_run: bool = False, statusline: bool = True,
          tmux: bool = True, doctor: bool = True) -> int:
    """Plan, show and (unless ``dry_run``) make each step; ``ask`` (None: there is no
    terminal) asks for each one unless ``yes``. Runs doctor at the end. Returns
    the exit status: 1 when nothing could be asked and --yes was not given."""
    name = detect_shell(shell, env)
    act = not dry_run and (yes or ask is not None)
    manifest = Manifest(manifest_path())
    files, seen, done = Files(), set[Path](), 0
    for planner in planners(name, env, command, statusline=statusline, tmux=tmux):
        trial = files.copy()
        step = planner(trial)
        if not step.changes:
            echo(f"\N{MIDDLE DOT} {step.title}: {step.note}")
            continue
        echo(f"\N{BULLET} {step.title}" + (f" ({step.note})" if step.note else ""))
        for change in step.changes:
            echo(diff(change, env))
        if act and not yes and ask is not None and not ask("Make this change?", step.default):
            echo("  skipped")
            continue
        files = trial
        if not act:
            continue
        for change in step.changes:
            copy = apply(change, manifest, seen)
            done += 1
            echo(f"  \N{CHECK MARK} {show(change.path, env)}"
                 + (f" (backup: {show(copy, env)})" if copy else ""))
    rc = show(rc_file(name, env), env)
    if dry_run:
        echo("Dry run: nothing changed. `claudewrap setup` makes these changes.")
        return 0
    if not act:
        echo("Nothing changed: there is no terminal to ask in. To make these changes, run "
             "`claudewrap setup --yes` (--no-statusline, --no-tmux leave steps out; "
             "--dry-run only shows them).")
        return 1
    if done:
        echo(f"Recorded in {show(manifest.path, env)}: `claudewrap setup --undo` takes it out.")
    if doctor:
        from claudewrap.install.doctor import render, run_checks

        echo("\nclaudewrap doctor:")
        echo(render(run_checks({**env, "SHELL": shutil.which(name, path=env.get("PATH"))
                                or name})))
    if shutil.which("claudewrap", path=env.get("PATH")) is None:
        # The shell's `claude` finds claudewrap on PATH, as `command claude` finds claude.
        echo("\nclaudewrap is not on your PATH: `claude` needs it there (pipx: run "
             "`pipx ensurepath`, then open a new terminal).")
    echo(f"\nOpen a new shell (or run `exec {name}`) to use `claude` through claudewrap "
         f"({rc} loads it).")
    return 0


# --- undo ------------------------------------------------------------------------------


def remove_block(text: str, added: str) -> str | None:
    """``text`` without the marked block (and the separator setup put before it);
    None when there is no whole block."""
    start = text.rfind(BEGIN + "\n")
    if start < 0 or (start > 0 and text[start - 1] != "\n"):
        return None
    end = text.find(END + "\n", start)
    if end < 0:
        return None
    end += len(END) + 1
    sep = added[:added.index(BEGIN)] if BEGIN in added else ""
    if text[end:]:  # lines of the user's after it: keep the newline that ends theirs
        sep = sep[-1:]  # (the separator's last newline is the blank line)
    if sep and text[:start].endswith(sep):
        start -= len(sep)
    return text[:start] + text[end:]


def undo_entry(entry: dict[str, Any], env: Mapping[str, str],
               view: dict[Path, bytes | None] | None = None) -> str:
    """Take one change out again; returns what was done, in one line. With ``view``
    (a dry run) nothing is written: the files' would-be bytes go there instead."""
    path = Path(entry["path"])
    name = show(path, env)
    try:
        now = view[path] if view is not None and path in view else path.read_bytes()
    except FileNotFoundError:
        now = None
    except OSError as exc:
        return f"{name}: cannot read it ({exc.strerror or exc}); left alone"
    if now is None:
        return f"{name}: not there any more; nothing to undo"
    untouched = sha256(now) == entry["after_sha256"]
    kind = entry["kind"]
    new: bytes | None
    if untouched and entry["created"]:
        new, what = None, "removed (setup created it)"
    elif kind == "file":
        return f"{name}: changed since setup wrote it; kept"
    elif kind == "block":
        added = entry["added"].encode()
        if untouched and now.endswith(added):
            new = now[:len(now) - len(added)]
        else:
            text = remove_block(now.decode("utf-8", "replace"), entry["added"])
            if text is None:
                return f"{name}: setup's block is not there any more; left alone"
            new = text.encode()
        what = "setup's block taken out"
    else:
        new = restore_settings(now, entry, untouched)
        if new is None:
            return f"{name}: statusLine changed since setup; left alone"
        what = "statusLine restored"
    if view is not None:
        view[path] = new
    elif new is None:
        path.unlink()
    else:
        write_file(path, new, 0o644)
    return f"{name}: {what}"


def restore_settings(now: bytes, entry: dict[str, Any], untouched: bool) -> bytes | None:
    """settings.json as it was (the backup's bytes when nothing else changed since),
    else with only its statusLine put back; None when the statusLine is not ours now."""
    copy = entry.get("backup")
    if untouched and copy:
        try:
            old = Path(copy).read_bytes()
        except OSError:
            old = None
        if old is not None and sha256(old) == entry.get("backup_sha256"):
            return old
    try:
        settings = json.loads(now)
    except ValueError:
        return None
    info = entry["statusline"]
    if not isinstance(settings, dict) or settings.get("statusLine") != info["ours"]:
        return None
    if info["had"]:
        settings["statusLine"] = info["previous"]
    else:
        del settings["statusLine"]
    return (json.dumps(settings, indent=2, ensure_ascii=False) + "\n").encode()


def undo(env: Mapping[str, str], echo: Callable[[str], None], dry_run: bool = False) -> int:
    """Take out everything the manifest lists, newest first; 0, or 1 if there is nothing."""
    path = manifest_path()
    manifest = Manifest(path)
    if not manifest.entries:
        echo(f"Nothing to undo: no setup recorded in {show(path, env)}.")
        return 1
    view: dict[Path, bytes | None] | None = {} if dry_run else None
    for entry in reversed(manifest.entries):
        echo(("would be: " if dry_run else "") + undo_entry(entry, env, view))
    if dry_run:
        echo("Dry run: nothing changed.")
        return 0
    kept = []
    for entry in manifest.entries:
        copy, path_ = entry.get("backup"), Path(entry["path"])
        if not copy or not os.path.exists(copy):
            continue
        try:
            same = Path(copy).read_bytes() == path_.read_bytes()
        except OSError:
            same = False
        if same:  # the file is back as it was: the copy says nothing more
            os.unlink(copy)
        else:
            kept.append(show(Path(copy), env))
    os.unlink(manifest.path)
    for folder in reversed([d for e in manifest.entries for d in e.get("dirs", [])]
                           + manifest.dirs):
        try:
            os.rmdir(folder)
        except OSError:
            pass  # not empty: someone else's files are in it now
    for script in zsh_scripts(env):
        echo(f"{show(script, env)}: removed (zsh's claude)")
    if kept:
        echo("Backups kept (the files changed since setup): " + ", ".join(kept))
    echo("Done: open a new shell to drop the `claude` function from this one.")
    return 0


def zsh_scripts(env: Mapping[str, str]) -> list[Path]:
    """Remove the scripts the zsh snippet wrote for `claude` (shell/claudewrap.zsh:
    ``${XDG_CACHE_HOME:-$HOME/.cache}/claudewrap/zsh-<hash>/claude``, a folder each
    holding only that file), and the cached price table; the scripts removed."""
    home = env.get("HOME") or "/nonexistent"
    base = Path(env.get("XDG_CACHE_HOME") or os.path.join(home, ".cache")) / "claudewrap"
    removed = []
    for folder in sorted(base.glob("zsh-*")):
        script = folder / "claude"
        try:
            if [p.name for p in folder.iterdir()] != ["claude"] or not script.is_file():
                continue  # not only ours
            script.unlink()
            folder.rmdir()
        except OSError:
            continue
        removed.append(script)
    try:
        # The parsed price table (claudewrap.usage.pricing): a cache any reader
        # makes again; not a trace to leave behind.
        (base / "prices.json").unlink()
    except OSError:
        pass
    try:
        base.rmdir()  # only when nothing else of ours is left in it
    except OSError:
        pass
    return removed


__all__ = ["BEGIN", "END", "Change", "Manifest", "SetupError", "Step", "apply", "detect_shell",
           "diff", "manifest_path", "rc_file", "settings_file", "setup", "tmux_conf", "undo",
           "zsh_scripts"]
