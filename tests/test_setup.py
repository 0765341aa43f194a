"""`claudewrap setup` and `setup --undo`, run as a new user runs them: the installed
`claudewrap` on a throwaway HOME (ZDOTDIR and XDG folders unset, so every file is
where a real user has it), then a real interactive bash or zsh in a pty."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pexpect
import pytest
from claude_code import claude_cli, claude_env, claude_version, seed_home  # noqa: F401
from conftest import FAKE, require, spawn, unavailable
from fake_api import FakeAnthropic, Usage

pytestmark = pytest.mark.e2e  # the real CLI in subprocesses, real shells in ptys

PROMPT = "PROMPT> "
BEGIN = "# >>> claudewrap setup >>>"
# The console script pip installed beside this Python: what `pipx install .` gives a user.
SCRIPT = Path(sys.executable).parent / "claudewrap"
STATUS_INPUT = json.dumps({"session_id": "s-1", "model": {"id": "claude-opus-5-5",
                                                          "display_name": "Opus 5.5"},
                           "cost": {"total_cost_usd": 0.34}, "cwd": "/tmp"})


@pytest.fixture
def henv(tmp_path: Path) -> dict[str, str]:
    """A new user's environment: HOME is an empty folder, a fake `claude` and the
    installed `claudewrap` on PATH, nothing of claudewrap's or XDG's set."""
    if not os.access(SCRIPT, os.X_OK):
        unavailable(f"no installed claudewrap script at {SCRIPT} (pip install -e .)")
    bin_dir = tmp_path / "bin"
    bin_dir.mkdir()
    (bin_dir / "claude").symlink_to(FAKE)
    (tmp_path / "home").mkdir()
    (tmp_path / "tmp").mkdir()
    env = {k: v for k, v in os.environ.items()
           if not k.startswith(("CLAUDEWRAP_", "XDG_", "TMUX", "STY", "OTEL_", "CLAUDE_"))
           and k not in ("ZDOTDIR", "HISTFILE", "NO_COLOR")}
    env.update(HOME=str(tmp_path / "home"), SHELL="/bin/bash", TMPDIR=str(tmp_path / "tmp"),
               PATH=f"{bin_dir}:{SCRIPT.parent}:/usr/bin:/bin", TERM="xterm-256color",
               LC_ALL="C.UTF-8", HISTFILE=str(tmp_path / "history"))
    return env


def home(env: dict[str, str]) -> Path:
    return Path(env["HOME"])


def setup(env: dict[str, str], *args: str) -> subprocess.CompletedProcess[str]:
    """`claudewrap setup ARGS` with no terminal (stdin /dev/null)."""
    return subprocess.run([str(SCRIPT), "setup", *args], env=env, capture_output=True,
                          text=True, stdin=subprocess.DEVNULL, timeout=120, check=False)


def tree(folder: Path) -> dict[str, tuple[str, int, bytes]]:
    """Every entry under ``folder``: its kind, mode and bytes (a link: its target)."""
    out = {}
    for path in sorted(folder.rglob("*")):
        st = path.lstat()
        if path.is_symlink():
            out[str(path)] = ("link", 0, os.readlink(path).encode())
        elif path.is_dir():
            out[str(path)] = ("dir", st.st_mode, b"")
        else:
            out[str(path)] = ("file", st.st_mode, path.read_bytes())
    return out


def user_files(env: dict[str, str]) -> None:
    """What a user has before setup: rc files with no newline at their end, odd
    modes, Claude Code settings with keys of their own and their own status line,
    a tmux.conf with its own status-right, a config.toml of their own."""
    h = home(env)
    (h / ".bashrc").write_text(f"PS1='{PROMPT}'\nalias ll='ls -l'")
    (h / ".bashrc").chmod(0o640)
    (h / ".zshrc").write_text(f"PS1='{PROMPT}'\nunsetopt PROMPT_SP\n")
    (h / ".claude").mkdir(mode=0o700)
    settings = h / ".claude" / "settings.json"
    settings.write_text('{"model":"opus", "env": {"A": "1"},\n "statusLine": {"type": "command",'
                        ' "command": "printf \'mine\\\\n\'", "padding": 0}}')
    settings.chmod(0o600)
    (h / ".tmux.conf").write_text("set -g status-right '%H:%M'\nset -g mouse on\n")
    config = h / ".config" / "claudewrap"
    config.mkdir(parents=True)
    (config / "config.toml").write_text("[budget]\ndaily_usd = 5.0\n")


class Shell:
    """A real interactive shell (`bash -i`, `zsh -i`) reading the rc files in HOME."""

    def __init__(self, shell: str, env: dict[str, str]) -> None:
        require(shell)
        self.child = spawn([shell, "-i"], env, cols=400, timeout=30)
        self.child.expect_exact(PROMPT)
        self.startup = self.child.before.decode(errors="replace")

    def run(self, line: str) -> tuple[str, int]:
        """Type ``line``: what it printed (after the echoed line), and its status."""
        self.child.sendline(f"{line}; echo @@RC=$?@@")
        self.child.expect(r"@@RC=(\d+)@@\r\n")
        status = int(self.child.match.group(1))
        out = self.child.before.decode(errors="replace")
        self.child.expect_exact(PROMPT)
        echoed = out.find("@@RC=")
        return (out[out.find("\n", echoed) + 1:] if echoed >= 0 else out), status

    def close(self) -> None:
        self.child.sendline("exit")
        try:
            self.child.expect(pexpect.EOF, timeout=10)
        finally:
            self.child.close(force=True)


# ------------------------------------------------------------------- set up and use


@pytest.mark.parametrize("shell", ["bash", "zsh"])
def test_setup_yes_then_a_new_interactive_shell_has_claude_and_claude_usage(
        henv: dict[str, str], shell: str) -> None:
    henv["SHELL"] = require(shell)  # detected from $SHELL, as for a user
    h = home(henv)
    rc = h / (".bashrc" if shell == "bash" else ".zshrc")
    rc.write_text(f"PS1='{PROMPT}'\n" + ("unsetopt PROMPT_SP\n" if shell == "zsh" else ""))
    done = setup(henv, "--yes", "--no-tmux")
    assert done.returncode == 0, done.stdout + done.stderr
    assert f"shell-init {shell}" in rc.read_text()
    assert f'eval "$({SCRIPT} shell-init {shell})"' in rc.read_text()  # the absolute path
    # doctor ran, in the shell setup chose, and saw the new line work
    assert f"`claude` in a new {shell} runs through claudewrap" in done.stdout
    sh = Shell(shell, henv)
    try:
        assert "claudewrap:" not in sh.startup
        out, status = sh.run("type claude")
        # bash: an alias of the function; zsh: a hashed script (a real process: jobs, fg)
        wrapped = "__claudewrap_claude" if shell == "bash" else "/.cache/claudewrap/zsh-"
        assert status == 0 and wrapped in out, out
        out, status = sh.run("claude print 'Total cost: $0.55'")
        assert status == 0 and "Total cost: $0.55" in out
        out, status = sh.run("claude_usage --json")
        assert status == 0 and "0.55" in out, out
    finally:
        sh.close()
    scripts = sorted((h / ".cache" / "claudewrap").glob("zsh-*/claude"))
    assert len(scripts) == (1 if shell == "zsh" else 0)  # zsh's claude: a hashed script
    undone = setup(henv, "--undo")
    assert undone.returncode == 0, undone.stdout + undone.stderr
    assert not (h / ".cache" / "claudewrap").exists()
    if shell == "zsh":
        assert "(zsh's claude)" in undone.stdout


def test_setup_twice_adds_every_block_once(henv: dict[str, str]) -> None:
    user_files(henv)
    first = setup(henv, "--yes")
    assert first.returncode == 0, first.stderr
    after_first = tree(home(henv))
    second = setup(henv, "--yes")
    assert second.returncode == 0, second.stderr
    assert "has it already" in second.stdout
    assert tree(home(henv)) == after_first  # not even a new backup
    h = home(henv)
    for name in (".bashrc", ".tmux.conf", ".config/claudewrap/config.toml"):
        assert (h / name).read_text().count(BEGIN) == 1, name
    assert (h / ".zshrc").read_text().count(BEGIN) == 0  # $SHELL is bash
    # zsh as well, later: its own block, once
    assert setup(henv, "--yes", "--shell", "zsh").returncode == 0
    assert setup(henv, "--yes", "--shell", "zsh").returncode == 0
    assert (h / ".zshrc").read_text().count(BEGIN) == 1
    assert (h / ".bashrc").read_text().count(BEGIN) == 1


def test_a_hand_written_init_line_is_not_added_again(henv: dict[str, str]) -> None:
    rc = home(henv) / ".bashrc"
    rc.write_text('command -v claudewrap >/dev/null && eval "$(claudewrap shell-init bash)"\n')
    done = setup(henv, "--yes", "--no-tmux", "--no-statusline")
    assert done.returncode == 0
    assert "loads claudewrap already (line 1)" in done.stdout
    assert BEGIN not in rc.read_text()


def test_setup_says_when_claudewrap_is_not_on_path(henv: dict[str, str]) -> None:
    done = setup(dict(henv, PATH="/usr/bin:/bin"), "--yes", "--no-tmux", "--no-statusline")
    assert done.returncode == 0
    assert "claudewrap is not on your PATH" in done.stdout
    assert "not on your PATH" not in setup(henv, "--yes").stdout


def test_no_tmux_conf_is_written_for_a_tmux_that_is_not_installed(
        henv: dict[str, str]) -> None:
    done = setup(dict(henv, PATH=str(SCRIPT.parent)), "--yes", "--no-statusline")
    assert done.returncode == 0, done.stderr
    assert "tmux is not installed" in done.stdout
    assert not (home(henv) / ".tmux.conf").exists()


def test_dry_run_shows_every_change_and_changes_no_file(henv: dict[str, str]) -> None:
    user_files(henv)
    before = tree(home(henv))
    done = setup(henv, "--dry-run")
    assert done.returncode == 0, done.stderr
    assert tree(home(henv)) == before
    out = done.stdout
    assert "+++ ~/.bashrc" in out and f"+  eval \"$({SCRIPT} shell-init bash)\"" in out
    assert "+++ ~/.claude/settings.json" in out and f'"{SCRIPT} statusline"' in out
    assert "+++ ~/.tmux.conf" in out and "set -ga status-right" in out
    assert "+command = \"printf 'mine\\\\n'\"" in out  # the user's status line, chained
    assert "Dry run: nothing changed" in out
    # and on an empty HOME, where every file would be new
    empty = dict(henv, HOME=str(home(henv) / "fresh"))
    Path(empty["HOME"]).mkdir()
    done = setup(empty, "--dry-run")
    assert done.returncode == 0 and "--- /dev/null" in done.stdout
    assert list(Path(empty["HOME"]).iterdir()) == []


def test_without_a_terminal_or_yes_nothing_changes_and_it_says_how(
        henv: dict[str, str]) -> None:
    user_files(henv)
    before = tree(home(henv))
    done = setup(henv)
    assert done.returncode == 1
    assert "no terminal to ask in" in done.stdout and "claudewrap setup --yes" in done.stdout
    assert "+++ ~/.bashrc" in done.stdout  # what it would do
    assert tree(home(henv)) == before


# ------------------------------------------------------------------------- undo


def test_undo_restores_every_file_byte_for_byte_and_removes_what_it_made(
        henv: dict[str, str]) -> None:
    user_files(henv)
    (home(henv) / ".config" / "claudewrap" / "config.toml").unlink()  # setup writes one
    before = tree(home(henv))
    assert setup(henv, "--yes").returncode == 0
    assert setup(henv, "--yes", "--shell", "zsh").returncode == 0
    h = home(henv)
    assert (h / ".local" / "share" / "claudewrap" / "setup.json").exists()
    assert [p.name for p in h.glob(".bashrc.claudewrap-backup-*")]
    assert oct((h / ".bashrc").stat().st_mode & 0o777) == "0o640"  # mode kept
    assert (h / ".claude" / "settings.json").stat().st_mode & 0o777 == 0o600
    dry = setup(henv, "--undo", "--dry-run")
    assert dry.returncode == 0 and "would be: ~/.bashrc: setup's block taken out" in dry.stdout
    assert "config.toml: removed" in dry.stdout
    undone = setup(henv, "--undo")
    assert undone.returncode == 0, undone.stdout + undone.stderr
    assert tree(h) == before  # backups, manifest, config and its folders gone too
    again = setup(henv, "--undo")
    assert again.returncode == 1 and "Nothing to undo" in again.stdout


def test_undo_after_the_user_edited_takes_out_only_what_setup_added(
        henv: dict[str, str]) -> None:
    user_files(henv)
    h = home(henv)
    original_rc = (h / ".bashrc").read_bytes()
    assert setup(henv, "--yes", "--no-tmux").returncode == 0
    with open(h / ".bashrc", "a") as fh:
        fh.write("export EDITOR=vim\n")
    settings = json.loads((h / ".claude" / "settings.json").read_text())
    settings["theme"] = "dark"
    (h / ".claude" / "settings.json").write_text(json.dumps(settings))
    config = h / ".config" / "claudewrap" / "config.toml"
    config.write_text(config.read_text() + "\n[alerts]\nrate_limit_percent = [90]\n")
    undone = setup(henv, "--undo")
    assert undone.returncode == 0, undone.stderr
    assert (h / ".bashrc").read_bytes() == original_rc + b"\nexport EDITOR=vim\n"
    restored = json.loads((h / ".claude" / "settings.json").read_text())
    assert restored == {"model": "opus", "env": {"A": "1"}, "theme": "dark",
                        "statusLine": {"type": "command", "command": "printf 'mine\\n'",
                                       "padding": 0}}
    assert config.read_text() == "[budget]\ndaily_usd = 5.0\n\n[alerts]\nrate_limit_percent = [90]\n"
    assert "Backups kept" in undone.stdout  # the files changed since: their copies stay
    assert list(h.glob(".bashrc.claudewrap-backup-*"))


def test_a_config_changed_since_setup_wrote_it_is_kept(henv: dict[str, str]) -> None:
    assert setup(henv, "--yes", "--no-tmux", "--no-statusline").returncode == 0
    config = home(henv) / ".config" / "claudewrap" / "config.toml"
    config.write_text(config.read_text() + "[budget]\ndaily_usd = 3.0\n")
    undone = setup(henv, "--undo")
    assert "changed since setup wrote it; kept" in undone.stdout
    assert config.read_text().endswith("daily_usd = 3.0\n")
    assert not (home(henv) / ".bashrc").exists()  # setup made it, no one changed it


def test_a_symlinked_rc_file_stays_a_link(henv: dict[str, str]) -> None:
    h = home(henv)
    (h / "dotfiles").mkdir()
    (h / "dotfiles" / "bashrc").write_text("# mine\n")
    (h / ".bashrc").symlink_to(h / "dotfiles" / "bashrc")
    before = tree(h)
    assert setup(henv, "--yes", "--no-tmux", "--no-statusline").returncode == 0
    assert (h / ".bashrc").is_symlink()
    assert BEGIN in (h / "dotfiles" / "bashrc").read_text()
    assert setup(henv, "--undo").returncode == 0
    assert tree(h) == before


# ------------------------------------------------------------------ the status line


def test_a_users_own_status_line_survives_below_ours(henv: dict[str, str]) -> None:
    user_files(henv)
    (home(henv) / ".config" / "claudewrap" / "config.toml").unlink()
    assert setup(henv, "--yes", "--no-tmux").returncode == 0
    settings = json.loads((home(henv) / ".claude" / "settings.json").read_text())
    assert settings["model"] == "opus" and settings["env"] == {"A": "1"}
    line = settings["statusLine"]
    assert line == {"type": "command", "command": f"{SCRIPT} statusline", "padding": 0}
    # Claude Code runs the command with the session's JSON on stdin
    shown = subprocess.run(["/bin/sh", "-c", line["command"]], input=STATUS_INPUT, env=henv,
                           capture_output=True, text=True, timeout=60, check=True).stdout
    first, second = shown.splitlines()
    assert "Opus 5.5" in first and "$0.34" in first
    assert second == "mine"


def test_real_claude_code_shows_our_status_line_and_the_users_below_it(
        henv: dict[str, str], tmp_path: Path, claude_cli: Path,  # noqa: F811
        claude_version: str) -> None:  # noqa: F811
    """Claude Code itself reads the settings setup wrote, in the HOME it wrote them
    to, and runs the chained command: no wrapper, no --settings."""
    h, work = home(henv), tmp_path / "work"
    work.mkdir()
    seed_home(h, [work], claude_version)
    (h / ".claude").mkdir()
    (h / ".claude" / "settings.json").write_text(
        json.dumps({"statusLine": {"type": "command", "command": "printf 'mine-sl\\n'"}}))
    assert setup(henv, "--yes", "--no-tmux").returncode == 0
    api = FakeAnthropic(usage=Usage(1234, 567)).start()
    child = pexpect.spawn(str(claude_cli), [], env=claude_env(henv, api.url, h),
                          cwd=str(work), dimensions=(40, 120), timeout=30)
    seen = b""
    try:
        for _ in range(600):  # bounded: at most 600 reads of up to 0.1 s
            if b"today" in seen and b"mine-sl" in seen:  # Claude Code runs it at start
                break
            try:
                seen += child.read_nonblocking(65536, timeout=0.1)
            except pexpect.TIMEOUT:
                pass
    finally:
        child.close(force=True)
        api.stop()
    assert b"today" in seen and b"mine-sl" in seen, seen[-2000:]


def test_settings_that_are_not_json_are_left_alone(henv: dict[str, str]) -> None:
    settings = home(henv) / ".claude" / "settings.json"
    settings.parent.mkdir()
    settings.write_text("{not json")
    done = setup(henv, "--yes", "--no-tmux")
    assert done.returncode == 0
    assert "is not valid JSON" in done.stdout
    assert settings.read_text() == "{not json"


# ------------------------------------------------------------------ asking in a terminal


def test_interactive_setup_asks_each_step_and_does_what_was_answered(
        henv: dict[str, str]) -> None:
    user_files(henv)
    h = home(henv)
    settings_before = (h / ".claude" / "settings.json").read_bytes()
    child = spawn([str(SCRIPT), "setup"], henv, cols=200, timeout=60)
    try:
        answers = {"~/.bashrc": "", "~/.claude/settings.json": "n", "~/.tmux.conf": "y"}
        for _ in answers:
            child.expect("\u2022 [^\r\n]* in (~/[^:]+):".encode())
            target = child.match.group(1).decode()
            child.expect_exact("Make this change? [Y/n]: ")
            child.sendline(answers[target])
        child.expect_exact("claudewrap doctor:")
        child.expect(pexpect.EOF)
    finally:
        child.close(force=True)
    assert child.exitstatus == 0
    assert BEGIN in (h / ".bashrc").read_text()  # Enter: the default, yes
    assert (h / ".claude" / "settings.json").read_bytes() == settings_before
    assert BEGIN in (h / ".tmux.conf").read_text()
    manifest = json.loads((h / ".local" / "share" / "claudewrap" / "setup.json").read_text())
    assert [e["step"] for e in manifest["entries"]] == ["shell", "tmux"]


# ------------------------------------------------------------------------- tmux


@pytest.mark.parametrize("own", [True, False])
def test_the_tmux_segment_loads_in_tmux_and_keeps_the_users_status_right(
        henv: dict[str, str], tmux: str, own: bool) -> None:
    conf = home(henv) / ".tmux.conf"
    if own:
        conf.write_text("set -g status-right '[mine]'\n")
    assert setup(henv, "--yes", "--no-statusline").returncode == 0
    subprocess.run(["tmux", "-L", tmux, "-f", str(conf), "new-session", "-d", "-x", "120",
                    "-y", "20"], env=henv, check=True, timeout=30)
    right = subprocess.run(["tmux", "-L", tmux, "show-options", "-gv", "status-right"],
                           env=henv, capture_output=True, text=True, check=True,
                           timeout=30).stdout.strip()
    assert right.startswith("[mine] #(") if own else right.endswith(") %H:%M")
    segment = right[right.index("#(") + 2:right.rindex(")")]
    assert segment == f"{SCRIPT} status --format tmux"
    # the tmux server's PATH need not have claudewrap: the path is absolute
    shown = subprocess.run(["/bin/sh", "-c", segment], env=dict(henv, PATH="/usr/bin:/bin"),
                           capture_output=True, text=True, timeout=60, check=False)
    assert shown.returncode == 0 and "$" in shown.stdout, shown.stdout + shown.stderr
