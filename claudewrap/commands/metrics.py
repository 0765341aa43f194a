"""`claudewrap metrics`: the journal's metrics printed, written for node_exporter or pushed."""

from __future__ import annotations

import sys
from pathlib import Path

import click

from claudewrap.store.journal import JournalError, resolve_path
from claudewrap.usage.pricing import PriceFileError

READ_JOURNAL_HELP = "The journal to read [default: $CLAUDEWRAP_JOURNAL or the user data dir]."
WINDOW_HELP = ("The recent window of claude_tokens_per_minute and"
                " claude_cost_per_hour_dollars: 15m, 1h, ... (1m to 24h).")


def window_callback(ctx: click.Context, param: click.Parameter, value: str) -> float:
    from claudewrap.export.metrics import parse_window

    try:
        return parse_window(value)
    except ValueError as exc:
        raise click.BadParameter(str(exc)) from None


@click.command("metrics")
@click.option("--textfile", type=click.Path(dir_okay=False, path_type=Path), metavar="PATH",
              help="Write to PATH atomically (for node_exporter's textfile collector)"
                   " instead of printing.")
@click.option("--push", "push_url", metavar="URL",
              help="Push to the Prometheus Pushgateway at URL, one group per host.")
@click.option("--job", default="claudewrap", show_default=True,
              help="The Pushgateway job name (with --push).")
@click.option("--window", default="15m", show_default=True, callback=window_callback,
              help=WINDOW_HELP)
@click.option("--journal", type=click.Path(dir_okay=False, path_type=Path),
              help=READ_JOURNAL_HELP)
@click.option("--no-cache", is_flag=True, help="Read the whole journal; do not use its caches.")
def metrics(textfile: Path | None, push_url: str | None, job: str, window: float,
            journal: Path | None, no_cache: bool) -> None:
    """Print the Prometheus metrics of the journal (or write/push them).

    \b
    claudewrap metrics
    claudewrap metrics --textfile /var/lib/prometheus/node-exporter/claude.prom
    claudewrap metrics --push http://pushgateway.example:9091
    """
    from claudewrap.export import metrics as m

    try:
        path = resolve_path(journal)
        snap = m.collect(path, window=window, use_cache=not no_cache)
    except (JournalError, PriceFileError) as exc:
        raise click.ClickException(str(exc)) from None
    if push_url:
        try:
            hosts = m.push(snap, push_url, job=job)
        except (OSError, ValueError) as exc:
            reason = getattr(exc, "reason", None) or exc
            raise click.ClickException(f"cannot push to {push_url}: {reason}; is the"
                                       f" Pushgateway running there?") from None
        click.echo(f"pushed to {push_url} (job {job}, host {', '.join(hosts)})", err=True)
    if textfile is not None:
        try:
            m.write_textfile(snap, textfile)
        except OSError as exc:
            raise click.ClickException(f"cannot write {textfile}: {exc.strerror or exc};"
                                       f" check that its folder exists and is writable"
                                       ) from None
    if textfile is None and not push_url:
        out = sys.stdout.buffer  # (click.get_binary_stream is deprecated in click 8.5)
        try:
            out.write(m.exposition(snap))
            out.flush()
        except BrokenPipeError:  # `claudewrap metrics | head`
            sys.stderr.close()
