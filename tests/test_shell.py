"""The bash and zsh integration, driven as a user drives it: interactive shells
in a real pty, rc files in a temporary HOME, a fake `claude` on PATH."""

from __future__ import annotations

import json
import re
import subprocess
import sys
from pathlib import Path

import pexpect
import pytest
from conftest import FAKE, ROOT, require, spawn

PROMPT = "PROMPT> "
SNIPPET = {"bash": ROOT / "shell" / "claudewrap.bash", "zsh": ROOT / "shell" / "claudewrap.zsh"}
TRICKY = ["a b", "", "--flag=x y", "$HOME", "it's \"quoted\"", "\u00fcnic\u00f8de \u2603", "--", "*"]


def make_bin(folder: Path, *, claudewrap: bool = True, claude: bool = True) -> Path:
    """A PATH folder with the fake `claude`, a `claudewrap` that runs this
    checkout, and `python3` for the fake's #! line."""
    folder.mkdir(parents=True, exist_ok=True)
    if claude:
        (folder / "claude").symlink_to(FAKE)
    (folder / "python3").symlink_to(sys.executable)
    if claudewrap:
        script = folder / "claudewrap"
        script.write_text(f'#!/bin/sh\nexec {sys.executable} -m claudewrap "$@"\n')
        script.chmod(0o755)
    return folder


@pytest.fixture
def senv(env: dict[str, str], tmp_path: Path) -> dict[str, str]:
    """``env`` with a PATH of just the test's bin folder and the system's."""
    bin_dir = make_bin(tmp_path / "sbin")
    project = tmp_path / "home" / "proj"
    (project / ".git").mkdir(parents=True)
    return dict(env, PATH=f"{bin_dir}:/usr/bin:/bin", FAKE_ARGS_FILE=str(tmp_path / "runs.jsonl"),
                PROJ=str(project))


def load_line(shell: str, how: str) -> str:
    if how == "eval":
        return f'eval "$(claudewrap shell-init {shell})"'
    return f"source {SNIPPET[shell]}"


class Shell:
    """An interactive bash or zsh in a pty whose rc file is ``rc``."""

    def __init__(self, shell: str, env: dict[str, str], rc: str) -> None:
        require(shell)
        home = Path(env["HOME"])
        if shell == "bash":
            (home / ".bashrc").write_text(rc + f"\nPS1='{PROMPT}'\n")
            args = ["bash", "--noprofile", "--rcfile", str(home / ".bashrc"), "-i"]
        else:
            (home / ".zshrc").write_text(rc + f"\nPS1='{PROMPT}'\nunsetopt PROMPT_SP\n")
            args = ["zsh", "-d", "-i"]
        self.child = spawn(args, env, cols=400, timeout=30)
        self.child.expect_exact(PROMPT)
        self.startup = self.child.before.decode(errors="replace")

    def run(self, line: str, sep: str = ";") -> tuple[str, int]:
        """Type ``line``; (what it printed, after the echo of the line; its status)."""
        self.child.sendline(f"{line}{sep} echo @@RC=$?@@")
        self.child.expect(r"@@RC=(\d+)@@\r\n")
        status = int(self.child.match.group(1))
        out = self.child.before.decode(errors="replace")
        self.child.expect_exact(PROMPT)
        echoed = out.find("@@RC=")  # the typed line, echoed by the terminal
        return out[out.find("\n", echoed) + 1:] if echoed >= 0 else out, status

    def close(self) -> None:
        self.child.sendline("exit")
        try:
            self.child.expect(pexpect.EOF, timeout=10)
        finally:
            self.child.close(force=True)


def runs(env: dict[str, str]) -> list[dict[str, object]]:
    """What the fake `claude logrun` wrote, one entry per run; then forget them."""
    path = Path(env["FAKE_ARGS_FILE"])
    if not path.exists():
        return []
    lines = path.read_text(encoding="utf-8").splitlines()
    path.unlink()
    return [json.loads(line) for line in lines]


def journal(env: dict[str, str]) -> list[dict[str, object]]:
    path = Path(env["CLAUDEWRAP_JOURNAL"])
    if not path.exists():
        return []
    return [json.loads(line) for line in path.read_text(encoding="utf-8").splitlines()]


def warnings(text: str) -> list[str]:
    return [line for line in text.splitlines() if line.startswith("claudewrap:")]


def sh_quote(arg: str) -> str:
    return "'" + arg.replace("'", "'\\''") + "'"


# -------------------------------------------------------------------- wrapping


@pytest.mark.parametrize("how", ["source", "eval"])
@pytest.mark.parametrize("shell", ["bash", "zsh"])
def test_claude_runs_through_wrapper_with_arguments_status_and_attribution(
        senv: dict[str, str], shell: str, how: str) -> None:
    sh = Shell(shell, senv, load_line(shell, how))
    try:
        assert warnings(sh.startup) == []
        typed = " ".join(sh_quote(a) for a in TRICKY)
        out, status = sh.run(f"cd \"$PROJ\" && claude logrun 0 {typed}")
        assert status == 0, out
        assert runs(senv) == [{"args": TRICKY, "depth": "1"}]  # depth 1: through the wrapper
        out, status = sh.run('claude logrun 0 "a b" \'\' --flag=x y \'$HOME\' "\u00fc \u2603"')
        assert runs(senv) == [{"args": ["a b", "", "--flag=x", "y", "$HOME", "\u00fc \u2603"],
                               "depth": "1"}]
        for code in (3, 1, 2, 126, 127, 255):
            out, status = sh.run(f"claude logrun {code} x")
            assert status == code
            assert warnings(out) == []
            assert len(runs(senv)) == 1  # a failing claude is never run again
        out, status = sh.run("claude print 'Total cost: $0.55'")
        assert status == 0 and "Total cost: $0.55" in out
        (record,) = journal(senv)
        assert record["source"] == "pty" and record["cost_usd"] == 0.55
        assert record["cwd"] == senv["PROJ"] and record["project"] == "proj"
        assert "tmux_pane" not in record and "screen_session" not in record
    finally:
        sh.close()


@pytest.mark.parametrize("shell", ["bash", "zsh"])
def test_command_claude_backslash_claude_and_disable_reach_the_real_binary(
        senv: dict[str, str], shell: str) -> None:
    sh = Shell(shell, senv, load_line(shell, "source"))
    try:
        for line in ("command claude logrun 0 a", "\\claude logrun 0 a",
                     "CLAUDEWRAP_DISABLE=1 claude logrun 0 a",
                     "export CLAUDEWRAP_DISABLE=yes; claude logrun 0 a"):
            out, status = sh.run(line)
            assert status == 0 and warnings(out) == []
            assert runs(senv) == [{"args": ["a"], "depth": ""}], line
        assert sh.run("CLAUDEWRAP_DISABLE=1 claude logrun 7 a")[1] == 7
        assert runs(senv) == [{"args": ["a"], "depth": ""}]
        sh.run("export CLAUDEWRAP_DISABLE=0")
        assert sh.run("claude logrun 0 b")[1] == 0
        assert runs(senv) == [{"args": ["b"], "depth": "1"}]
        out, status = sh.run("claude_usage --json")
        assert status == 0 and '"total"' in out, out
        out, status = sh.run("claude_metrics")
        assert status == 0 and "# TYPE" in out, out
    finally:
        sh.close()


# -------------------------------------------------------------------- falling back


@pytest.mark.parametrize("shell", ["bash", "zsh"])
def test_missing_claudewrap_falls_back_to_real_claude_with_one_warning(
        senv: dict[str, str], tmp_path: Path, shell: str) -> None:
    bin_dir = make_bin(tmp_path / "nocw", claudewrap=False)
    env = dict(senv, PATH=f"{bin_dir}:/usr/bin:/bin")
    sh = Shell(shell, env, load_line(shell, "source"))
    try:
        out, status = sh.run("claude logrun 4 x 'y z'")
        assert status == 4
        assert runs(env) == [{"args": ["x", "y z"], "depth": ""}]
        (warning,) = warnings(out)
        assert "not found" in warning
        out, status = sh.run("claude_usage")
        assert status == 127 and len(warnings(out)) == 1
    finally:
        sh.close()


BROKEN = {
    # a removed virtualenv: the #! interpreter is gone
    "interpreter": "#!/nonexistent/venv/bin/python3\nimport sys\n",
    # Python starts, the package does not import
    "import": "#!/bin/sh\necho 'Traceback (most recent call last):' >&2\n"
              "echo 'ModuleNotFoundError: No module named click' >&2\nexit 1\n",
    # a pyenv-style shim whose version lacks the command
    "shim": "#!/bin/sh\necho 'pyenv: claudewrap: command not found' >&2\nexit 127\n",
}


@pytest.mark.parametrize("kind", sorted(BROKEN))
@pytest.mark.parametrize("shell", ["bash", "zsh"])
def test_broken_claudewrap_falls_back_and_claude_runs_once(
        senv: dict[str, str], tmp_path: Path, shell: str, kind: str) -> None:
    bin_dir = make_bin(tmp_path / "broken", claudewrap=False)
    (bin_dir / "claudewrap").write_text(BROKEN[kind])
    (bin_dir / "claudewrap").chmod(0o755)
    env = dict(senv, PATH=f"{bin_dir}:/usr/bin:/bin")
    sh = Shell(shell, env, load_line(shell, "source"))
    try:
        out, status = sh.run("claude logrun 3 x")
        assert status == 3
        assert runs(env) == [{"args": ["x"], "depth": ""}]
        ours = [w for w in warnings(out) if "without usage tracking" in w]
        assert len(ours) == 1, out
        if kind == "interpreter":
            assert warnings(out) == ours and "bad interpreter" not in out
    finally:
        sh.close()


# A config.toml a person got wrong, and the line (1-based) the error is on.
BAD_CONFIGS = {
    "toml": ("[[patterns]]\nname = x\nregex = '(?P<input>\\d+)'\n", 2, "bad TOML"),
    "regex": ("# mine\n\n[[patterns]]\nname = 'x'\nregex = '(?P<input>\\d+'\n", 3,
              "pattern 'x': bad regex"),
    "group": (("[[patterns]]\nname = 'ok'\nregex = '(?P<input>\\d+)'\n\n"
               "[[patterns]]\nname = 'odd'\nregex = '(?P<tokens>\\d+)'\n"), 5,
              "pattern 'odd': unknown group 'tokens'"),
}


@pytest.mark.parametrize("kind", sorted(BAD_CONFIGS))
@pytest.mark.parametrize("shell", ["bash", "zsh"])
def test_bad_config_is_one_line_then_claude_runs_once_with_its_status(
        senv: dict[str, str], tmp_path: Path, shell: str, kind: str) -> None:
    text, lineno, what = BAD_CONFIGS[kind]
    config = Path(senv["XDG_CONFIG_HOME"]) / "claudewrap" / "config.toml"
    config.parent.mkdir(parents=True)
    config.write_text(text)
    err = tmp_path / "stderr.txt"
    sh = Shell(shell, senv, load_line(shell, "eval"))
    try:
        out, status = sh.run(f"claude logrun 3 -p hi 2>{err}")
        assert status == 3
        assert runs(senv) == [{"args": ["-p", "hi"], "depth": ""}]  # the real binary, once
        (line,) = err.read_text().splitlines()
        assert line.startswith(f"claudewrap: {config}: line {lineno}: "), line
        assert what in line and line.endswith("fix or move the file")
        assert warnings(out) == []  # nothing else said, on stdout either
        # Fixed: through the wrapper again, and a status of 2 is claude's own.
        config.write_text("[[patterns]]\nname = 'x'\nregex = '(?P<input>\\d+) in'\n")
        out, status = sh.run(f"claude logrun 2 -p hi 2>{err}")
        assert status == 2
        assert runs(senv) == [{"args": ["-p", "hi"], "depth": "1"}]
        assert err.read_text() == "" and warnings(out) == []
    finally:
        sh.close()


@pytest.mark.parametrize("shell", ["bash", "zsh"])
def test_real_claude_missing_gives_claudewraps_own_error_and_127(
        senv: dict[str, str], tmp_path: Path, shell: str) -> None:
    bin_dir = make_bin(tmp_path / "noclaude", claude=False)
    env = dict(senv, PATH=f"{bin_dir}:/usr/bin:/bin")
    sh = Shell(shell, env, load_line(shell, "source"))
    try:
        out, status = sh.run("claude x")
        assert status == 127
        (line,) = warnings(out)
        assert "cannot find the real `claude`" in line
    finally:
        sh.close()


# -------------------------------------------------------------------- loading


def _dump(shell: str, env: dict[str, str], before: str, times: int) -> str:
    require(shell)
    load = f"source {SNIPPET[shell]}\n" * times
    if shell == "bash":
        script = (f"{before}\n{load}alias; declare -f; echo \"PC=$PROMPT_COMMAND\"\n"
                  "echo \"TRAP=$(trap -p DEBUG)\"")
        args = ["bash", "--noprofile", "--norc", "-c", script]
    else:
        script = (f"{before}\n{load}alias; functions; echo PRE=$precmd_functions "
                  "$preexec_functions $chpwd_functions")
        args = ["zsh", "-f", "-c", script]
    done = subprocess.run(args, env=env, capture_output=True, text=True, timeout=30, check=False)
    assert done.returncode == 0, done.stderr
    return done.stdout


@pytest.mark.parametrize("shell", ["bash", "zsh"])
def test_sourcing_twice_changes_nothing_and_keeps_hooks(senv: dict[str, str], shell: str) -> None:
    if shell == "bash":
        before = "PROMPT_COMMAND='echo mine'; trap 'true' DEBUG"
    else:
        before = "precmd_functions=(mine); preexec_functions=(theirs); chpwd_functions=(c)"
    once = _dump(shell, senv, before, 1)
    assert _dump(shell, senv, before, 2) == once
    assert "claude=__claudewrap_claude" in once.replace("'", "")
    assert ("PC=echo mine" in once) if shell == "bash" else ("PRE=mine theirs c" in once)
    with_alias = _dump(shell, senv, before + "\nalias claude='claude --x'", 1)
    assert _dump(shell, senv, before + "\nalias claude='claude --x'", 3) == with_alias
    assert "claude=__claudewrap_claude --x" in with_alias.replace("'", "")


@pytest.mark.parametrize("shell", ["bash", "zsh"])
def test_existing_alias_or_function_named_claude(senv: dict[str, str], tmp_path: Path,
                                                 shell: str) -> None:
    other = tmp_path / "home" / "other"
    other.mkdir()
    (other / "claude").write_text(f'#!/bin/sh\nexec {FAKE} logrun 0 other "$@"\n')
    (other / "claude").chmod(0o755)
    # An alias adding flags goes through the wrapper; one naming the real
    # claude's file (Claude Code's "local install" alias) makes it the real one.
    for alias, args in (("claude logrun 0 --pre", ["--pre", "x"]),
                        ("command claude logrun 0", ["x"]),
                        ("~/other/claude", ["other", "x"])):
        sh = Shell(shell, senv, f"alias claude='{alias}'\n{load_line(shell, 'source')}")
        try:
            assert warnings(sh.startup) == []
            out, status = sh.run("claude x")
            assert status == 0, out
            assert runs(senv) == [{"args": args, "depth": "1"}], alias
            sh.run("\\claude logrun 0 y")
            assert runs(senv) == [{"args": ["y"], "depth": ""}]
        finally:
            sh.close()
    # Anything else is kept as it is, with one note at start-up.
    rc = f"alias claude='FOO=1 claude logrun 0 odd'\n{load_line(shell, 'source')}"
    sh = Shell(shell, senv, rc)
    try:
        (note,) = warnings(sh.startup)
        assert "kept your alias" in note
        sh.run("claude x")
        assert runs(senv) == [{"args": ["odd", "x"], "depth": ""}]
    finally:
        sh.close()
    # Your own function wins (defined before or after); it can call the wrapper.
    for body, note, depth in (('command claude logrun 0 fn "$@"', True, ""),
                              ('__claudewrap_claude logrun 0 fn "$@"', False, "1")):
        rc = f"claude() {{ {body}; }}\n{load_line(shell, 'source')}"
        sh = Shell(shell, senv, rc)
        try:
            assert len(warnings(sh.startup)) == (1 if note else 0), sh.startup
            out, status = sh.run("claude x")
            assert status == 0, out
            assert runs(senv) == [{"args": ["fn", "x"], "depth": depth}]
        finally:
            sh.close()


# -------------------------------------------------------------------- strict modes


def test_bash_set_eu_and_non_interactive(senv: dict[str, str]) -> None:
    require("bash")
    script = (f"set -euo pipefail\nsource {SNIPPET['bash']}\nsource {SNIPPET['bash']}\n"
              "claude logrun 0 plain\n"  # scripts do not expand aliases: the real claude
              "__claudewrap_claude logrun 0 '' 'a b'\n"
              "__claudewrap_claude logrun 6 z || echo \"rc=$?\"\n"
              "CLAUDEWRAP_DISABLE=1 __claudewrap_claude logrun 0 d\n"
              "echo done\n")
    done = subprocess.run(["bash", "--noprofile", "--norc", "-c", script], env=senv,
                          capture_output=True, text=True, timeout=60, check=False)
    assert done.returncode == 0, done.stderr
    assert done.stdout.splitlines() == ["rc=6", "done"]
    assert done.stderr == ""
    assert runs(senv) == [{"args": ["plain"], "depth": ""}, {"args": ["", "a b"], "depth": "1"},
                          {"args": ["z"], "depth": "1"}, {"args": ["d"], "depth": ""}]
    # set -e: a failing claude stops the script, as the real one would
    done = subprocess.run(["bash", "--noprofile", "--norc", "-c",
                           (f"set -eu\nsource {SNIPPET['bash']}\n"
                            "__claudewrap_claude logrun 5 z\necho not-reached\n")],
                          env=senv, capture_output=True, text=True, timeout=60, check=False)
    assert done.returncode == 5 and "not-reached" not in done.stdout


def test_zsh_nounset_errreturn_errexit_and_non_interactive(senv: dict[str, str],
                                                           tmp_path: Path) -> None:
    require("zsh")
    script = (f"setopt nounset errreturn errexit pipefail\nsource {SNIPPET['zsh']}\n"
              f"source {SNIPPET['zsh']}\n"
              "claude logrun 0 '' 'a b'\n"  # zsh expands aliases in scripts too
              "claude logrun 6 z || echo \"rc=$?\"\n"
              "\\claude logrun 0 plain\n"
              "CLAUDEWRAP_DISABLE=1 claude logrun 0 d\n"
              "echo done\n")
    # A script file (zsh reads it command by command, so the alias applies;
    # a -c string is parsed whole first).
    (tmp_path / "script.zsh").write_text(script)
    done = subprocess.run(["zsh", "-f", str(tmp_path / "script.zsh")], env=senv,
                          capture_output=True, text=True, timeout=60, check=False)
    assert done.returncode == 0, done.stderr
    assert done.stdout.splitlines() == ["rc=6", "done"]
    assert done.stderr == ""
    assert runs(senv) == [{"args": ["", "a b"], "depth": "1"}, {"args": ["z"], "depth": "1"},
                          {"args": ["plain"], "depth": ""}, {"args": ["d"], "depth": ""}]


@pytest.mark.parametrize("shell", ["bash", "zsh"])
def test_interactive_strict_options_keep_the_shell_alive(senv: dict[str, str],
                                                         shell: str) -> None:
    strict = "set -eu" if shell == "bash" else "setopt nounset errreturn"
    sh = Shell(shell, senv, f"{strict}\n{load_line(shell, 'source')}")
    try:
        assert warnings(sh.startup) == []
        _, status = sh.run("claude logrun 0 'a b'")
        assert status == 0 and runs(senv) == [{"args": ["a b"], "depth": "1"}]
        if shell == "zsh":
            # errreturn ends the command line at a failure, as with the real claude
            _, status = sh.run("claude logrun 9 q", sep=" ||")
            assert status == 9
            assert runs(senv) == [{"args": ["q"], "depth": "1"}]
    finally:
        sh.close()


def test_shell_init_prints_the_packaged_snippets(senv: dict[str, str]) -> None:
    for shell, path in SNIPPET.items():
        done = subprocess.run(["claudewrap", "shell-init", shell], env=senv, capture_output=True,
                              text=True, timeout=30, check=False)
        assert done.returncode == 0
        assert done.stdout == path.read_text(encoding="utf-8")
        assert re.search(r"__claudewrap_claude", done.stdout)
    done = subprocess.run(["claudewrap", "shell-init", "fish"], env=senv, capture_output=True,
                          text=True, timeout=30, check=False)
    assert done.returncode == 2 and "fish" in done.stderr


# -------------------------------------------------------------------- zsh's hashed `claude` script


def zsh_script() -> tuple[str, str]:
    """(the `claude` script's text in the zsh snippet, the folder name it goes to)."""
    text = SNIPPET["zsh"].read_text(encoding="utf-8")
    script = re.search(r"^typeset -g __claudewrap_shim_text='([^']*)'$", 
                       text, re.MULTILINE | re.DOTALL)
    folder = re.search(r"/claudewrap/(zsh-[0-9a-f]+)/claude$", text, re.MULTILINE)
    assert script and folder
    return script.group(1), folder.group(1)


def test_zsh_script_is_valid_sh_and_its_folder_is_named_by_its_sha256() -> None:
    import hashlib

    script, folder = zsh_script()
    # a changed script must get a new folder, or shells would run an older copy
    assert folder == "zsh-" + hashlib.sha256(script.encode()).hexdigest()[:12]
    assert script.startswith("#!/bin/sh\n")
    done = subprocess.run(["sh", "-n"], input=script, capture_output=True, text=True, timeout=30,
                          check=False)
    assert done.returncode == 0, done.stderr


def test_zsh_prompt_claude_is_the_hashed_script_and_survives_path_changes(
        senv: dict[str, str]) -> None:
    _, folder = zsh_script()
    sh = Shell("zsh", senv, f"{load_line('zsh', 'source')}\n{load_line('zsh', 'eval')}")
    try:
        out, _ = sh.run("whence -v claude; print -r -- $precmd_functions $preexec_functions")
        assert f"{folder}/claude" in out
        script = Path(senv.get("XDG_CACHE_HOME") or Path(senv["HOME"]) / ".cache")
        script = script / "claudewrap" / folder / "claude"
        assert script.stat().st_mode & 0o777 == 0o755
        assert (script.parent.stat().st_mode & 0o777) == 0o700
        assert "__claudewrap_precmd __claudewrap_preexec" in out  # once, loaded twice
        assert sh.run("alias claude")[1] == 1  # no alias: the word itself is the job
        # zsh forgets hashed names when PATH changes: the next prompt names it again
        sh.run("path=(/nonexistent $path)")
        assert sh.run("claude logrun 0 a")[1] == 0
        assert runs(senv) == [{"args": ["a"], "depth": "1"}]
        # the real binary, for the line that asks for it; wrapped again after
        for line in ("\\command claude logrun 0 b", "'claude' logrun 0 b", "\"claude\" logrun 0 b",
                     "x=$(command claude logrun 0 b)"):
            assert sh.run(line)[1] == 0
            assert runs(senv) == [{"args": ["b"], "depth": ""}], line
        out, _ = sh.run("command -v claude")
        assert out.strip().endswith("sbin/claude")
        assert sh.run("claude logrun 0 c")[1] == 0
        assert runs(senv) == [{"args": ["c"], "depth": "1"}]
        # your functions that call claude are tracked too
        sh.run("ask() { claude logrun 0 \"$@\"; }")
        assert sh.run("ask d")[1] == 0
        assert runs(senv) == [{"args": ["d"], "depth": "1"}]
    finally:
        sh.close()


def test_zsh_without_a_writable_cache_runs_the_script_from_its_text(
        senv: dict[str, str], tmp_path: Path) -> None:
    cache = tmp_path / "not-a-folder"  # (a read-only folder would not stop root)
    cache.write_text("")
    env = dict(senv, XDG_CACHE_HOME=str(cache))
    sh = Shell("zsh", env, load_line("zsh", "source"))
    try:
        assert warnings(sh.startup) == []
        out, _ = sh.run("alias claude")
        assert "__claudewrap_claude" in out  # the function, as in scripts
        out, status = sh.run("claude logrun 5 'a b'")
        assert status == 5 and warnings(out) == []
        assert runs(env) == [{"args": ["a b"], "depth": "1"}]
        assert sh.run("command claude logrun 0 e")[1] == 0
        assert runs(env) == [{"args": ["e"], "depth": ""}]
    finally:
        sh.close()
