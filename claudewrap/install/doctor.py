"""`claudewrap doctor`: is everything set up? One check per line, each with its fix.

Every check is a function of the environment (``env``) that returns a
:class:`Check`; none changes anything (the journal check writes a temporary
file in the journal's folder and removes it at once).
"""

from __future__ import annotations

import os
import shutil
import socket
import stat
import subprocess
import tempfile
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

OK, FAIL, INFO = "ok", "fail", "info"
MARKS = {OK: "\u2713", FAIL: "\u2717", INFO: "\u00b7"}
SHELL_TIMEOUT = 10.0
EXPORTER_ENV = "CLAUDEWRAP_EXPORTER_URL"
DEFAULT_EXPORTER_URL = "http://127.0.0.1:9404/metrics"  # `claudewrap serve`


@dataclass
class Check:
    name: str
    status: str  # OK, FAIL or INFO (not applicable / for your information)
    detail: str
    fix: str = ""

    def to_json(self) -> dict[str, Any]:
        return {"name": self.name, "ok": self.status != FAIL, "status": self.status,
                "detail": self.detail, "fix": self.fix}


def _journal(env: Mapping[str, str], journal: str | None) -> Path:
    if journal:
        return Path(journal).expanduser()
    if env.get("CLAUDEWRAP_JOURNAL"):
        return Path(env["CLAUDEWRAP_JOURNAL"]).expanduser()
    from claudewrap.store.config import default_journal_path

    return default_journal_path()


def check_claude(env: Mapping[str, str]) -> Check:
    """The real `claude` is found, and it is not claudewrap itself."""
    from claudewrap.wrap import launcher

    try:
        path = launcher.find_claude(None, dict(env))
    except launcher.LaunchError as exc:
        return Check("claude", FAIL, str(exc).removeprefix("claudewrap: "),
                     "install Claude Code (npm install -g @anthropic-ai/claude-code), or set "
                     "CLAUDEWRAP_CLAUDE=/path/to/claude")
    first = shutil.which("claude", path=env.get("PATH"))
    note = ""
    if env.get(launcher.CLAUDE_ENV):
        note = f" (from ${launcher.CLAUDE_ENV})"
    elif first and os.path.abspath(first) != path:
        note = f" (skipping {first}, which is claudewrap's own shim)"
    return Check("claude", OK, f"{path}{note}")


def _probe_write(folder: Path) -> str | None:
    """None when a file can be created in ``folder``, else the reason."""
    try:
        fd, name = tempfile.mkstemp(prefix=".claudewrap-doctor.", dir=folder)
    except OSError as exc:
        return exc.strerror or str(exc)
    os.close(fd)
    os.unlink(name)
    return None


def check_journal(env: Mapping[str, str], journal: str | None = None) -> Check:
    """The journal's folder is writable and private (0700), the file 0600."""
    path = _journal(env, journal)
    if path.is_dir():
        from claudewrap.store.config import journal_directory_fix

        source = "option" if journal else "env" if env.get("CLAUDEWRAP_JOURNAL") else "default"
        return Check("journal", FAIL, f"{path} is a directory",
                     journal_directory_fix(path, source))
    folder = path.parent
    other = "or choose another journal with CLAUDEWRAP_JOURNAL=/path/journal.jsonl"
    existing = folder
    while not existing.exists() and existing != existing.parent:
        existing = existing.parent
    if not existing.is_dir():
        return Check("journal", FAIL, f"{path}: {existing} is not a folder",
                     f"remove or rename {existing}, {other}")
    reason = _probe_write(existing)
    if reason is not None:
        return Check("journal", FAIL, f"cannot write in {existing}: {reason}",
                     f"chmod u+w {existing} (or fix its owner), {other}")
    if existing != folder:
        return Check("journal", OK, f"{path} (its folder is made, mode 0700, on the first "
                     "record)")
    mode = stat.S_IMODE(folder.stat().st_mode)
    if mode & 0o077:
        return Check("journal", FAIL, f"folder {folder} is open to others (mode {mode:04o})",
                     f"chmod 700 {folder}")
    if path.exists():
        st = path.stat()
        if not stat.S_ISREG(st.st_mode):
            return Check("journal", FAIL, f"{path} is not a regular file",
                         f"move it away, {other}")
        fmode = stat.S_IMODE(st.st_mode)
        if not os.access(path, os.R_OK | os.W_OK):
            return Check("journal", FAIL, f"{path} is not readable and writable for you",
                         f"chmod 600 {path} (or fix its owner)")
        if fmode & 0o077:
            return Check("journal", FAIL, f"{path} is open to others (mode {fmode:04o})",
                         f"chmod 600 {path}")
        return Check("journal", OK, f"{path} ({st.st_size:,} bytes, private)")
    return Check("journal", OK, f"{path} (no records yet; folder private and writable)")


def check_saved(env: Mapping[str, str], journal: str | None = None) -> Check:
    """No records wait in the fallback files, where a run that could not write
    its journal saved them (in this process's temp folder)."""
    from claudewrap.store.config import recover_advice
    from claudewrap.store.journal import saved_in, saved_records
    from claudewrap.views.display import count

    lines, files = saved_records()
    if not lines:
        return Check("saved records", OK, "none waiting: every run could write its journal")
    return Check("saved records", FAIL,
                 f"{count(lines)} record{'' if lines == 1 else 's'} that runs could not write to a"
                 f" journal wait in {saved_in(files)}",
                 f"add them once with: {recover_advice(_journal(env, journal))}")


def _rc_file(shell: str, env: Mapping[str, str]) -> str:
    home = env.get("HOME", "~")
    if shell == "zsh":
        return os.path.join(env.get("ZDOTDIR") or home, ".zshrc")
    return os.path.join(home, ".bashrc")


def check_shell(env: Mapping[str, str]) -> Check:
    """In a new interactive shell of the user's kind, `claude` goes through claudewrap."""
    shell = os.path.basename(env.get("SHELL", ""))
    if shell not in ("bash", "zsh"):
        return Check("shell", INFO, f"{shell or 'unknown shell'}: no integration for it; use "
                     "`claudewrap run -- ARGS` (bash and zsh have `claudewrap shell-init`)")
    rc = _rc_file(shell, env)
    line = f'command -v claudewrap >/dev/null && eval "$(claudewrap shell-init {shell})"'
    fix = f"add this line at the end of {rc}: {line}"
    if env.get("CLAUDEWRAP_DISABLE", "") not in ("", "0"):
        return Check("shell", FAIL, "CLAUDEWRAP_DISABLE is set: `claude` runs untracked",
                     "unset CLAUDEWRAP_DISABLE")
    probe = "type claude" if shell == "bash" else "whence -v claude; whence -f claude"
    program = shutil.which(shell, path=env.get("PATH")) or shell
    try:
        # A session of its own: no controlling terminal, so the interactive shell
        # can never take over the terminal doctor runs in.
        done = subprocess.run([program, "-ic", probe], env=dict(env), capture_output=True,
                              stdin=subprocess.DEVNULL, timeout=SHELL_TIMEOUT, check=False,
                              start_new_session=True)
    except subprocess.TimeoutExpired:
        return Check("shell", FAIL, f"a new interactive {shell} did not finish in "
                     f"{SHELL_TIMEOUT:g} s", f"check what {rc} runs")
    except OSError as exc:
        return Check("shell", FAIL, f"cannot start {shell}: {exc.strerror or exc}", fix)
    out = done.stdout.decode("utf-8", "replace")
    if "__claudewrap_claude" in out:
        return Check("shell", OK, f"`claude` in a new {shell} runs through claudewrap ({rc})")
    what = out.strip().splitlines()[0] if out.strip() else "claude is not defined"
    return Check("shell", FAIL, f"in a new {shell}: {what[:100]}", fix)


def check_multiplexer(env: Mapping[str, str]) -> Check:
    """tmux / GNU screen, for per-pane attribution."""
    from claudewrap.wrap import context

    if env.get("TMUX"):
        pane = env.get("TMUX_PANE") or "?"
        name = context.tmux_session_name(dict(env))
        if name is None:
            return Check("tmux", FAIL, f"inside tmux (pane {pane}) but its server does not "
                         "answer `tmux display-message`", "check that `tmux` on PATH is the "
                         "tmux that runs this pane")
        return Check("tmux", OK, f"pane {pane} of session {name}")
    if env.get("STY"):
        return Check("screen", OK, f"GNU screen {context.screen_label(env.get('STY'), env.get('WINDOW'))}")
    return Check("tmux/screen", INFO, "not inside tmux or GNU screen (inside one, usage "
                 "is attributed to its pane)")


def check_otel(env: Mapping[str, str]) -> Check:
    """Claude Code's OpenTelemetry can be received on the loopback interface."""
    from claudewrap.sources import otel

    home = env.get("HOME")
    if otel.user_configured(env, home=home):
        urls, _ = otel.pass_through(env, home=home)
        if urls:
            return Check("opentelemetry", OK, "your own collector keeps getting Claude Code's"
                         f" telemetry ({', '.join(sorted(set(urls.values())))}); the wrapper"
                         " records exact usage on the way")
        return Check("opentelemetry", INFO, "your OpenTelemetry (gRPC, or no OTLP exporter) is"
                     " left alone; exact usage then comes from the transcripts at the end of a"
                     " run")
    try:
        with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
            sock.bind(("127.0.0.1", 0))
            sock.listen(1)
    except OSError as exc:
        return Check("opentelemetry", FAIL, f"cannot listen on 127.0.0.1: "
                     f"{exc.strerror or exc}", "allow loopback sockets; until then usage "
                     "comes from the screen and the transcripts only")
    return Check("opentelemetry", OK, "exact per-request usage via a loopback receiver "
                 "during each run")


def check_config(env: Mapping[str, str]) -> Check:
    """The config file (patterns, budgets, alerts) reads."""
    from claudewrap.export import budget
    from claudewrap.store.config import PatternError, default_config_path, load_user_patterns

    path = Path(env["CLAUDEWRAP_CONFIG"]) if env.get("CLAUDEWRAP_CONFIG") else \
        default_config_path()
    try:
        patterns = load_user_patterns(path) if path.exists() else []
        cfg = budget.load_config(path, env=dict(env))
    except (PatternError, budget.BudgetError) as exc:
        return Check("config", FAIL, str(exc), f"edit {path}")
    parts = [f"{len(patterns)} pattern{'s' if len(patterns) != 1 else ''}"]
    for b in cfg.budgets:
        parts.append(f"{b.label()} ${b.usd:g}")
    if cfg.webhook_url:
        parts.append("budget webhook set")
    where = str(path) if path.exists() else f"{path} (none: defaults)"
    return Check("config", OK, f"{where}: {', '.join(parts)}")


def check_prices(env: Mapping[str, str], journal: str | None = None) -> Check:
    """Every model in the journal whose cost was not printed has a price (a list
    price, or rates learned from the journal). Records that name no model are
    not a price problem (the seed's ``Tokens: N input, M output`` line has none):
    an informational note says how to give them one."""
    from claudewrap.store.journal import JournalError
    from claudewrap.usage.price_fit import learn_prices, unpriced_usage
    from claudewrap.usage.pricing import PriceFileError, default_table, user_prices_path
    from claudewrap.usage.rollup import load_state

    path = _journal(env, journal)
    if path.is_dir():
        return Check("prices", INFO, "not checked: the journal is a directory (see above)")
    try:
        table = default_table()
        state = load_state(path)
    except (JournalError, PriceFileError) as exc:
        return Check("prices", FAIL, str(exc), "fix the file it names")
    table = learn_prices(state, table)
    models = {row[0] for _, row in state.buckets() if row[0]}
    per_model = unpriced_usage(state, table)
    no_model = per_model.pop(None, 0)
    unpriced = {m: n for m, n in per_model.items() if m is not None}
    bad = f"; {state.stats.skipped} unreadable journal lines (claudewrap journal check)" \
        if state.stats.skipped else ""
    learned = sorted(m for m in table.learned if m in models)
    taught = f"; {', '.join(learned)} priced with rates learned from the journal" \
        f" (claudewrap prices)" if learned else ""
    anonymous = f"; {_records(no_model)} without a model: unpriced" if no_model else ""
    if unpriced:
        names = ", ".join(f"{m} ({_records(n)})" for m, n in sorted(unpriced.items()))
        example = next(iter(sorted(unpriced)))
        return Check("prices", FAIL, f"no price for {names}{anonymous}{bad}",
                     f"add [models.\"{example}\"] with input = ..., output = ... (USD per "
                     f"million tokens) to {user_prices_path()}")
    if not models and not no_model:
        return Check("prices", OK, f"no usage recorded yet{bad}")
    known = f"known for all {len(models)} model{'s' if len(models) != 1 else ''} in the" \
        f" journal{taught}" if models else "no record names a model"
    if no_model:
        return Check("prices", INFO, f"{known}{anonymous}{bad}",
                     "to price such records, give their model: claudewrap log --model ID,"
                     " or a `model` group in your pattern")
    return Check("prices", OK, f"{known}{bad}")


def _records(n: int) -> str:
    return f"{n:,} record{'s' if n != 1 else ''}"


def check_live(env: Mapping[str, str], journal: str | None = None) -> Check:
    from claudewrap import api

    path = _journal(env, journal)
    if path.is_dir():
        return Check("sessions", INFO, "not checked: the journal is a directory (see above)")
    running = api.running_sessions(path)
    if not running:
        return Check("sessions", INFO, "no wrapped claude session running now")
    names = ", ".join(f"{s.session[:8]} ({s.project or '-'})" for s in running[:5])
    return Check("sessions", INFO, f"{len(running)} wrapped session"
                 f"{'s' if len(running) != 1 else ''} running: {names}")


def check_exporter(env: Mapping[str, str]) -> Check:
    """The Prometheus exporter (`claudewrap serve`) answers: the one named by
    ``$CLAUDEWRAP_EXPORTER_URL``, else one on the default address, if running."""
    import urllib.error
    import urllib.request

    url = env.get(EXPORTER_ENV)
    configured = bool(url)
    url = url or DEFAULT_EXPORTER_URL
    try:
        with urllib.request.urlopen(url, timeout=3 if configured else 0.5) as resp:
            body = resp.read(1 << 20)
    except (urllib.error.URLError, OSError, ValueError) as exc:
        if not configured:
            return Check("exporter", INFO, f"none running at {url} (`claudewrap serve` "
                         f"starts one; set {EXPORTER_ENV} to check another)")
        reason = getattr(exc, "reason", exc)
        return Check("exporter", FAIL, f"{url} does not answer: {reason}",
                     f"start it (claudewrap serve, or examples/systemd), or fix {EXPORTER_ENV}")
    if b"claude_" not in body:
        return Check("exporter", FAIL, f"{url} answers, but with no claude metrics",
                     f"point {EXPORTER_ENV} at claudewrap's exporter (.../metrics)")
    return Check("exporter", OK, f"{url} answers with claude metrics")


def run_checks(env: Mapping[str, str] | None = None, journal: str | None = None
               ) -> list[Check]:
    """All checks, in the order they are shown; a check that crashes is a failed check."""
    env = dict(os.environ if env is None else env)
    checks: list[tuple[str, Callable[[], Check]]] = [
        ("claude", lambda: check_claude(env)),
        ("journal", lambda: check_journal(env, journal)),
        ("saved records", lambda: check_saved(env, journal)),
        ("config", lambda: check_config(env)),
        ("prices", lambda: check_prices(env, journal)),
        ("shell", lambda: check_shell(env)),
        ("tmux/screen", lambda: check_multiplexer(env)),
        ("opentelemetry", lambda: check_otel(env)),
        ("exporter", lambda: check_exporter(env)),
        ("sessions", lambda: check_live(env, journal)),
    ]
    out = []
    for name, fn in checks:
        try:
            out.append(fn())
        except Exception as exc:  # noqa: BLE001 - a doctor that crashes helps nobody
            out.append(Check(name, FAIL, f"the check itself failed: {type(exc).__name__}: "
                             f"{exc}", "please report this"))
    return out


def render(checks: list[Check]) -> str:
    width = max(len(c.name) for c in checks)
    lines = []
    for c in checks:
        lines.append(f"{MARKS[c.status]} {c.name.ljust(width)}  {c.detail}")
        if c.fix:
            lines.append(f"  {' ' * width}  fix: {c.fix}")
    return "\n".join(lines)


__all__ = ["Check", "check_claude", "check_config", "check_exporter", "check_journal",
           "check_live", "check_multiplexer", "check_otel", "check_prices", "check_saved",
           "check_shell", "render", "run_checks"]
