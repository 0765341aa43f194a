"""`claudewrap export`: the journal for other tools (Prometheus text, JSON lines, CSV)."""

from __future__ import annotations

import csv
import io
import sys
from pathlib import Path
from typing import Any

import click

from claudewrap.store.journal import JournalError, read_records, resolve_path
from claudewrap.store.records import UsageRecord
from claudewrap.usage.pricing import PriceFileError
from claudewrap.views.usage_view import (
    warn_skipped,
)

RECORD_FIELDS = ("ts", "session", "source", "kind", "model", "input_tokens", "output_tokens",
                 "cache_read_tokens", "cache_write_tokens", "cost_usd", "cost_estimated",
                 "approximate", "project", "cwd", "host", "tmux_pane", "tmux_session",
                 "screen_session", "pattern", "request_id", "claude_session", "tags", "v",
                 "agent", "command")


def _csv_value(rec: UsageRecord, name: str) -> Any:
    value = getattr(rec, name)
    if name == "tags":
        return ",".join(f"{k}={v}" for k, v in sorted(value.items()))
    if value is None:
        return ""
    if isinstance(value, bool):
        return "true" if value else "false"
    return value


@click.command("export")
@click.option("--format", "fmt", type=click.Choice(["prometheus", "json", "csv"]),
              default="prometheus", show_default=True,
              help="prometheus: counters for node_exporter's textfile collector;"
                   " json: the records as JSON lines; csv: the records as CSV.")
@click.option("--journal", type=click.Path(dir_okay=False, path_type=Path),
              help="The journal to read [default: $CLAUDEWRAP_JOURNAL or the user data dir].")
@click.option("--no-cache", is_flag=True, help="Read the whole journal; do not use the rollup.")
def export(fmt: str, journal: Path | None, no_cache: bool) -> None:
    """Print the journal for other tools (Prometheus text by default).

    \b
    claudewrap export > /var/lib/node_exporter/textfile/claude_tokens.prom
    """
    from claudewrap.store.journal import ReadStats

    stdout = sys.stdout.buffer  # (click.get_binary_stream is deprecated in click 8.5)
    try:
        path = resolve_path(journal)
        if fmt == "prometheus":
            from claudewrap.export.metrics import render_prometheus

            stdout.write(render_prometheus(path, use_cache=not no_cache))
            return
        stats = ReadStats()
        if fmt == "json":
            for rec in read_records(path, stats):
                stdout.write((rec.to_json() + "\n").encode("utf-8", "backslashreplace"))
        else:
            text = io.TextIOWrapper(stdout, encoding="utf-8", errors="backslashreplace",
                                    newline="", write_through=True)
            writer = csv.writer(text, lineterminator="\n")
            writer.writerow(RECORD_FIELDS)
            for rec in read_records(path, stats):
                writer.writerow([_csv_value(rec, f) for f in RECORD_FIELDS])
            text.detach()
        warn_skipped(stats.skipped, stats.first_bad_lines)
    except (JournalError, PriceFileError) as exc:
        raise click.ClickException(str(exc)) from None
    except BrokenPipeError:  # `claudewrap export | head`
        sys.stderr.close()
