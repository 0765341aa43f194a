"""`claudewrap cost`'s line (or JSON) for one session, without click: the click
command (claudewrap.commands.cost) and main.py's fast path both print this."""

from __future__ import annotations

import json

from claudewrap.views.display import row_money, short_count


def cost_text(which: str | None, as_json: bool, journal_path: str | None) -> str:
    """The line (no newline) for session ``which`` (an id, ``last`` or ``current``;
    None: the one running here, else the last one). Raises api.SessionNotFound
    and JournalError, each with the one line to show."""
    from claudewrap import api

    if which is None:
        try:
            found = api.session_usage("current", journal_path)
        except api.SessionNotFound:
            found = api.session_usage("last", journal_path)
    else:
        found = api.session_usage(which, journal_path)
    if as_json:
        return json.dumps(found.to_json(), sort_keys=False)
    u = found.usage
    money = row_money(u, places=4)
    models = ", ".join(sorted(found.by_model)) or "no usage yet"
    state = "running, " if found.running else ""
    project = f", project {found.project}" if found.project else ""
    return (f"{money} {short_count(u.input_tokens)} in, {short_count(u.output_tokens)} out, "
            f"{short_count(u.cache_read_tokens)} cache read, {short_count(u.cache_write_tokens)} "
            f"cache write ({models}; {state}session {found.session}{project})")


def parse_args(args: list[str]) -> tuple[str | None, bool, str | None] | None:
    """``cost``'s options as main.py's fast path takes them: ``--session X``,
    ``--json``, ``--journal P`` (also ``--opt=value``), each at most once; None for
    anything else (help, an unknown or repeated option, a value that looks like
    an option), which click then says what to do about."""
    values: dict[str, str | None] = {}
    i = 0
    while i < len(args):
        arg = args[i]
        name, eq, value = arg.partition("=")
        if name in values:
            return None
        if name == "--json" and not eq:
            values[name] = None
        elif name in ("--session", "--journal"):
            if not eq:
                i += 1
                if i >= len(args):
                    return None
                value = args[i]
            if not value or value.startswith("-"):
                return None
            values[name] = value
        else:
            return None
        i += 1
    return values.get("--session"), "--json" in values, values.get("--journal")


__all__ = ["cost_text", "parse_args"]
