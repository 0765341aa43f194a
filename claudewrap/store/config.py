"""Where claudewrap's files are, and the user's own usage patterns.

The paths of the config file and the journal, and the ``[[patterns]]`` of the
config file. Kept apart from patterns.py (whose built-in regexes take a while
to compile) and from journal.py and records.py so that `claudewrap run` can
find its files and check the config before `claude` starts, with nothing but
this light module loaded; the parser loads once output arrives.
"""

from __future__ import annotations

import os
import sys

TYPE_CHECKING = False  # typing.TYPE_CHECKING without importing typing (launch path)
if TYPE_CHECKING:
    import re
    from pathlib import Path
    from typing import Any


CONFIG_ENV = "CLAUDEWRAP_CONFIG"
JOURNAL_ENV = "CLAUDEWRAP_JOURNAL"
KINDS = ("delta", "total")  # as records.KINDS, without importing it
USER_GROUPS = ("input", "output", "cache_read", "cache_write", "cost", "model")
NUMERIC_GROUPS = ("input", "output", "cache_read", "cache_write", "cost")


class PatternError(ValueError):
    """A user pattern or config problem; the message says what to fix."""


class UserPattern:
    """A pattern from the user's config: a regex with named groups.

    ``regex`` is compiled with :mod:`re` to check it at start-up; the parser
    runs it with a time limit (patterns.py). ``where`` names the config file
    (and line) it comes from; ``switched_off`` says why the parser stopped
    using it for the rest of the session ("" while it is in use).
    """

    __slots__ = ("kind", "name", "regex", "switched_off", "where")

    def __init__(self, name: str, regex: re.Pattern[str], kind: str = "delta",
                 where: str = "") -> None:
        self.name = name
        self.regex = regex
        self.kind = kind
        self.where = where
        self.switched_off = ""

    def __repr__(self) -> str:
        return f"UserPattern(name={self.name!r}, regex={self.regex.pattern!r}, kind={self.kind!r})"


APP = "claudewrap"
# platformdirs' Unix (XDG) user folders: (variable, the default under $HOME).
_XDG = {"config": ("XDG_CONFIG_HOME", "/.config"), "data": ("XDG_DATA_HOME", "/.local/share"),
        "cache": ("XDG_CACHE_HOME", "/.cache"), "state": ("XDG_STATE_HOME", "/.local/state")}


def user_dir(kind: str) -> str:
    """``platformdirs.user_{kind}_dir("claudewrap", appauthor=False)`` (``kind``:
    config, data, cache, state), without importing platformdirs where its answer
    is plain XDG: on Linux (not Android), with ``$XDG_..._HOME`` absolute, or
    unset or empty and ``$HOME`` absolute. Importing platformdirs (it loads
    tempfile, shutil, bz2, lzma, ...) cost ~10 ms of every wrapped `claude`'s
    start. Anything else (another OS, a relative or padded value, no ``$HOME``:
    where platformdirs' versions differ or look further) asks platformdirs.
    tests/test_config_paths.py compares the two answers."""
    var, default = _XDG[kind]
    env = os.environ
    if (sys.platform.startswith("linux") and not hasattr(sys, "getandroidapilevel")
            and (env.get("ANDROID_DATA") != "/data" or env.get("ANDROID_ROOT") != "/system")):
        base = env.get(var, "")
        if base.startswith("/") and base == base.strip():
            return os.path.join(base, APP)
        home = env.get("HOME", "")
        if not base and home.startswith("/"):
            # os.path.expanduser("~/.config"), as platformdirs calls it: HOME
            # without its trailing slashes, then the rest.
            return os.path.join(home.rstrip("/") + default, APP)
    import platformdirs

    answer: str = getattr(platformdirs, f"user_{kind}_dir")(APP, appauthor=False)
    return answer


def config_file() -> str:
    """:func:`default_config_path` as a string (the launch path: no pathlib)."""
    env = os.environ.get(CONFIG_ENV)
    if env:
        return os.path.expanduser(env)
    return os.path.join(user_dir("config"), "config.toml")


def journal_file(option: str | os.PathLike[str] | None = None) -> str:
    """:func:`journal_path` as a string (the launch path: no pathlib)."""
    if option is not None and os.fspath(option) != "":
        return os.path.expanduser(os.fspath(option))
    env = os.environ.get(JOURNAL_ENV)
    if env:
        return os.path.expanduser(env)
    return os.path.join(user_dir("data"), "journal.jsonl")


def default_config_path() -> Path:
    """``$CLAUDEWRAP_CONFIG``, else ``config.toml`` in the platform's user config dir."""
    from pathlib import Path

    return Path(config_file())


def default_journal_path() -> Path:
    """``$CLAUDEWRAP_JOURNAL`` if set, else ``journal.jsonl`` in the user data dir."""
    from pathlib import Path

    return Path(journal_file(None))


def journal_path(option: str | os.PathLike[str] | None = None) -> Path:
    """The journal to use: the ``--journal`` option if given, else :func:`default_journal_path`."""
    from pathlib import Path

    return Path(journal_file(option))


def journal_source(option: str | os.PathLike[str] | None = None) -> str:
    """Where :func:`journal_path` takes the journal from: ``"option"`` (``--journal``),
    ``"env"`` (``$CLAUDEWRAP_JOURNAL``) or ``"default"``."""
    if option is not None and os.fspath(option) != "":
        return "option"
    return "env" if os.environ.get(JOURNAL_ENV) else "default"


def journal_directory_fix(path: Path, source: str) -> str:
    """What to do when the journal ``path`` is a directory, for where it was named
    (``source``, as :func:`journal_source` says, or ``""`` when unknown)."""
    example = path / "journal.jsonl"
    if source == "option":
        return f"pass --journal a file path (e.g. {example})"
    if source == "env":
        return f"set {JOURNAL_ENV} to a file path (e.g. {example})"
    if source == "default":
        return f"move that folder away, or set {JOURNAL_ENV} to a file path (e.g. {example})"
    return f"choose a file with --journal or ${JOURNAL_ENV} (e.g. {example})"


def journal_is_directory(path: Path, source: str) -> str:
    """The one line that says the journal ``path`` is a directory, and the fix."""
    return f"the journal {path} is a directory: {journal_directory_fix(path, source)}"


FALLBACK_STEM = "journal-unsaved"


def fallback_folder(create: bool = True) -> Path | None:
    """The private folder of the fallback files (``$TMPDIR/claudewrap-UID``,
    0700), made when ``create``; None when it is not safely ours (or, without
    ``create``, not there)."""
    import stat
    import tempfile
    from pathlib import Path

    folder = Path(tempfile.gettempdir()) / f"claudewrap-{os.getuid()}"
    try:
        if create:
            try:
                os.mkdir(folder, 0o700)
            except FileExistsError:
                pass
        st = os.lstat(folder)
        # In a shared /tmp someone else may have made that name first.
        if not stat.S_ISDIR(st.st_mode) or st.st_uid != os.getuid():
            return None
        if create and stat.S_IMODE(st.st_mode) & 0o077:
            os.chmod(folder, 0o700)
    except OSError:
        return None
    return folder


def fallback_journal(index: int = 0) -> Path | None:
    """The private file where a run keeps records its journal cannot take
    (``$TMPDIR/claudewrap-UID/journal-unsaved.jsonl``, folder 0700), or None
    when that folder is not safely ours.

    ``index`` 1, 2, ... names the next files (``journal-unsaved-2.jsonl``, ...),
    used when a file-size limit (``ulimit -f``) leaves no room in the ones before.
    """
    folder = fallback_folder()
    if folder is None:
        return None
    return folder / (f"{FALLBACK_STEM}.jsonl" if index == 0
                     else f"{FALLBACK_STEM}-{index + 1}.jsonl")


def fallback_files() -> list[Path]:
    """The fallback files there are now, in the order they are filled (none made)."""
    import re

    folder = fallback_folder(create=False)
    if folder is None:
        return []
    found: list[tuple[int, Path]] = []
    try:
        names = os.listdir(folder)
    except OSError:
        return []
    for name in names:
        match = re.fullmatch(rf"{FALLBACK_STEM}(?:-([1-9][0-9]{{0,5}}))?\.jsonl", name)
        if match:
            found.append((int(match[1] or 1), folder / name))
    return [path for _, path in sorted(found)]


def recover_advice(journal: Path) -> str:
    """The command that moves the fallback files' records into ``journal`` once
    (``--journal`` named only when a plain ``claudewrap journal recover`` would
    choose another file)."""
    import shlex

    command = "claudewrap journal recover"
    try:
        same = os.path.abspath(journal) == os.path.abspath(journal_path(None))
    except Exception:  # noqa: BLE001 - platformdirs failing only means: name the file
        same = False
    return command if same else f"{command} --journal {shlex.quote(str(journal))}"


def load_user_patterns(path: str | os.PathLike[str] | None = None) -> list[UserPattern]:
    """The ``[[patterns]]`` of the config file.

    A missing default file means no patterns; a missing file that was asked
    for (``path`` or ``$CLAUDEWRAP_CONFIG``) is an error. Raises
    :class:`PatternError` for anything the user must fix.
    """
    import re

    explicit = path is not None or bool(os.environ.get(CONFIG_ENV))
    if path is None:
        path = config_file()
    try:
        with open(path, "rb") as fh:
            raw = fh.read()
    except FileNotFoundError:
        if explicit:
            raise PatternError(f"{path}: config file not found; create it or fix the path") from None
        return []
    except OSError as e:
        raise PatternError(f"{path}: cannot read config file: {e.strerror or e}") from None
    try:
        text = raw.decode("utf-8")
    except UnicodeDecodeError:
        raise PatternError(f"{path}: not UTF-8 text; save it as UTF-8") from None
    data = parse_toml(text, path, PatternError, _FIX)
    entries = data.get("patterns", [])
    if not isinstance(entries, list):
        raise PatternError(f"{path}: 'patterns' must be an array of tables ([[patterns]]){_FIX}")
    lines = [text.count("\n", 0, m.start()) + 1
             for m in re.finditer(_PATTERNS_HEADER, text, re.MULTILINE)]
    if len(lines) != len(entries):  # written as an inline array: no line per pattern
        lines = []
    return [_user_pattern(f"{path}: line {lines[i - 1]}" if lines else str(path), i, entry)
            for i, entry in enumerate(entries, 1)]


# What every problem in the file's contents ends with (issue 12: the message a
# `claude` typed in the shell shows, in one line).
_FIX = " \N{EM DASH} fix or move the file"
# Compiled when used, not at import: this module is on the launch path.
_TOML_AT = r"\s*\(at line (?P<line>\d+), column \d+\)|\s*\(at end of document\)"
_PATTERNS_HEADER = r"^[ \t]*\[\[[ \t]*patterns[ \t]*\]\]"


def _one_line(text: str) -> str:
    return " ".join(text.split())


def parse_toml(text: str, path: str | os.PathLike[str], error: type[Exception] = ValueError,
               fix: str = "") -> dict[str, Any]:
    """The TOML document ``text`` (of the file ``path``), for every TOML file
    claudewrap reads (config.toml, prices.toml). Raises ``error`` with one line
    that leads with the file and line: ``PATH: line 3: bad TOML: Invalid value``
    and then ``fix``."""
    if sys.version_info >= (3, 11):
        import tomllib
    else:  # pragma: no cover - Python 3.10
        import tomli as tomllib
    try:
        data: dict[str, Any] = tomllib.loads(text)
    except tomllib.TOMLDecodeError as e:
        # tomllib says "Invalid value (at line 3, column 9)": lead with the line.
        message = _one_line(str(e))
        import re

        at = re.search(_TOML_AT, message)
        where = f"{path}: line {at['line']}" if at and at["line"] else str(path)
        detail = message[:at.start()].rstrip() if at else message
        raise error(f"{where}: bad TOML: {detail}{fix}") from None
    return data


def _user_pattern(file: str, index: int, entry: Any) -> UserPattern:
    """One ``[[patterns]]`` entry; ``file`` is the path (and line) to name in errors."""
    import re

    if not isinstance(entry, dict):
        raise PatternError(f"{file}: pattern #{index}: must be a table ([[patterns]]){_FIX}")
    name = entry.get("name")
    if not isinstance(name, str) or not name.strip():
        raise PatternError(f"{file}: pattern #{index}: needs a name = \"...\"{_FIX}")
    where = f"{file}: pattern {name!r}"
    unknown = sorted(set(entry) - {"name", "regex", "kind"})
    if unknown:
        raise PatternError(f"{where}: unknown key {unknown[0]!r} (allowed: name, regex, kind){_FIX}")
    source = entry.get("regex")
    if not isinstance(source, str) or not source:
        raise PatternError(f"{where}: needs a regex = '...'{_FIX}")
    kind = entry.get("kind", "delta")
    if kind not in KINDS:
        raise PatternError(f"{where}: kind must be \"delta\" or \"total\", not {kind!r}{_FIX}")
    try:
        regex = re.compile(source, re.IGNORECASE)
    except re.error as e:
        raise PatternError(f"{where}: bad regex: {_one_line(str(e))}{_FIX}") from None
    groups = set(regex.groupindex)
    bad = sorted(groups - set(USER_GROUPS))
    if bad:
        raise PatternError(
            f"{where}: unknown group {bad[0]!r} (allowed: {', '.join(USER_GROUPS)}){_FIX}"
        )
    if not groups & set(NUMERIC_GROUPS):
        raise PatternError(
            f"{where}: needs at least one of the groups (?P<input>...), (?P<output>...), "
            f"(?P<cache_read>...), (?P<cache_write>...), (?P<cost>...){_FIX}"
        )
    return UserPattern(name=name, regex=regex, kind=kind, where=file)


