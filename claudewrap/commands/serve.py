"""`claudewrap serve`: the journal's metrics over HTTP for Prometheus (claudewrap.export.exporter)."""

from __future__ import annotations

import os
from pathlib import Path

import click

from claudewrap.commands.metrics import READ_JOURNAL_HELP, WINDOW_HELP, window_callback
from claudewrap.store.journal import JournalError, resolve_path


def _use_state_dir(folder: Path) -> None:
    """Make ``folder`` (created if missing) where the metrics keep their files."""
    from claudewrap.export.metrics import STATE_DIR_ENV

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
@click.option("--window", default="15m", show_default=True, callback=window_callback,
              help=WINDOW_HELP)
@click.option("--journal", type=click.Path(dir_okay=False, path_type=Path),
              help=READ_JOURNAL_HELP)
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
    from claudewrap.export import exporter

    if state_dir is not None:
        _use_state_dir(state_dir)
    try:
        path = resolve_path(journal)
        exporter.serve(path, host=host, port=port, window=window, use_cache=not no_cache,
                       announce=lambda line: click.echo(line, err=True))
    except (exporter.ExporterError, JournalError) as exc:
        raise click.ClickException(str(exc)) from None
