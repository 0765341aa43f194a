"""`claudewrap metrics` (print, textfile, Pushgateway) and `claudewrap serve` (HTTP exporter)."""

from __future__ import annotations

import os
import sys
from pathlib import Path

import click

from claudewrap.journal import JournalError, resolve_path
from claudewrap.pricing import PriceFileError

_JOURNAL_HELP = "The journal to read [default: $CLAUDEWRAP_JOURNAL or the user data dir]."
_WINDOW_HELP = ("The recent window of claude_tokens_per_minute and"
                " claude_cost_per_hour_dollars: 15m, 1h, ... (1m to 24h).")


def _window(ctx: click.Context, param: click.Parameter, value: str) -> float:
    from claudewrap.metrics import parse_window

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
@click.option("--window", default="15m", show_default=True, callback=_window,
              help=_WINDOW_HELP)
@click.option("--journal", type=click.Path(dir_okay=False, path_type=Path),
              help=_JOURNAL_HELP)
@click.option("--no-cache", is_flag=True, help="Read the whole journal; do not use its caches.")
def metrics(textfile: Path | None, push_url: str | None, job: str, window: float,
            journal: Path | None, no_cache: bool) -> None:
    """Print the Prometheus metrics of the journal (or write/push them).

    \b
    claudewrap metrics
    claudewrap metrics --textfile /var/lib/prometheus/node-exporter/claude.prom
    claudewrap metrics --push http://pushgateway.example:9091
    """
    from claudewrap import metrics as m

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


def _use_state_dir(folder: Path) -> None:
    """Make ``folder`` (created if missing) where the metrics keep their files."""
    from claudewrap.metrics import STATE_DIR_ENV

    try:
        folder.mkdir(mode=0o700, parents=True, exist_ok=True)
    except OSError as exc:
        raise click.ClickException(f"cannot create --state-dir {folder}:"
                                   f" {exc.strerror or exc}; give a writable folder") from None
    if not os.access(folder, os.W_OK | os.X_OK):
        raise click.ClickException(f"--state-dir {folder} is not writable; give a writable"
                                   f" folder (in a container: an emptyDir or a volume)")
    os.environ[STATE_DIR_ENV] = str(folder.absolute())


@click.command("serve")
@click.option("--host", default="127.0.0.1", show_default=True,
              help="Address to listen on (0.0.0.0 or a LAN/VPN address lets other machines"
                   " scrape: there is no authentication).")
@click.option("--port", default=9404, show_default=True, type=click.IntRange(0, 65535),
              help="Port to listen on.")
@click.option("--window", default="15m", show_default=True, callback=_window,
              help=_WINDOW_HELP)
@click.option("--journal", type=click.Path(dir_okay=False, path_type=Path),
              help=_JOURNAL_HELP)
@click.option("--no-cache", is_flag=True, help="Do not use the journal's state cache.")
@click.option("--state-dir", type=click.Path(file_okay=False, path_type=Path),
              envvar="CLAUDEWRAP_STATE_DIR", show_envvar=True,
              help="Keep the state cache and the exported counters in this folder instead"
                   " of beside the journal (a journal on a read-only volume).")
def serve(host: str, port: int, window: float, journal: Path | None, no_cache: bool,
          state_dir: Path | None) -> None:
    """Serve the metrics over HTTP for Prometheus (/metrics, /healthz).

    Each scrape reads only what was appended to the journal since the last one.
    Stops cleanly on SIGTERM or Ctrl-C.
    """
    from claudewrap import exporter

    if state_dir is not None:
        _use_state_dir(state_dir)
    try:
        path = resolve_path(journal)
        exporter.serve(path, host=host, port=port, window=window, use_cache=not no_cache,
                       announce=lambda line: click.echo(line, err=True))
    except (exporter.ExporterError, JournalError) as exc:
        raise click.ClickException(str(exc)) from None
