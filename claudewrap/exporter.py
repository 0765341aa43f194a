"""`claudewrap serve`: an HTTP exporter of the journal's metrics for Prometheus.

``/metrics`` reads the lines appended since the previous scrape
(claudewrap.metrics.JournalMetrics) and answers in the format the scraper asks
for (prometheus_client's content negotiation, gzip when accepted);
``/healthz`` answers ``ok``. Scrapes are serialised; each runs in its own
thread so a slow client never blocks another. SIGTERM and SIGINT stop the
server cleanly: the listening socket is closed, the state cache saved.
"""

from __future__ import annotations

import errno
import signal
import socket
import sys
import threading
from collections.abc import Callable, Iterable
from pathlib import Path
from socketserver import ThreadingMixIn
from types import FrameType
from typing import Any
from wsgiref.simple_server import WSGIRequestHandler, WSGIServer

from claudewrap.journal import JournalError
from claudewrap.metrics import DEFAULT_WINDOW, JournalMetrics, registry

DEFAULT_HOST = "127.0.0.1"
DEFAULT_PORT = 9404

StartResponse = Callable[..., Any]


class ExporterError(Exception):
    """The exporter cannot start; the message says what to do, in one line."""


class _Server(ThreadingMixIn, WSGIServer):
    daemon_threads = True
    allow_reuse_address = True  # a restart right after a stop must not find the port "in use"

    def handle_error(self, request: Any, client_address: Any) -> None:
        exc = sys.exc_info()[1]
        if isinstance(exc, (ConnectionError, TimeoutError)):
            return  # the scraper went away
        super().handle_error(request, client_address)


class _QuietHandler(WSGIRequestHandler):
    def log_message(self, format: str, *args: Any) -> None:
        pass


class App:
    """The WSGI application: ``/metrics``, ``/healthz`` and a short index."""

    def __init__(self, metrics: JournalMetrics) -> None:
        self.metrics = metrics
        self.lock = threading.Lock()
        self.error: str | None = None

    def scrape(self) -> Any:
        """Read new journal lines and add up; the registry of the result."""
        with self.lock:
            self.metrics.update()
            return registry(self.metrics.snapshot())

    def __call__(self, environ: dict[str, Any], start_response: StartResponse) -> Iterable[bytes]:
        path = environ.get("PATH_INFO", "/")
        if path == "/metrics":
            try:
                reg = self.scrape()
            except JournalError as exc:
                self.error = str(exc)
                return _text(start_response, "503 Service Unavailable", f"{exc}\n")
            self.error = None
            from prometheus_client import make_wsgi_app

            return make_wsgi_app(reg)(environ, start_response)  # type: ignore[no-any-return]
        if path == "/healthz":
            return _text(start_response, "200 OK", "ok\n")
        if path == "/":
            return _text(start_response, "200 OK",
                         "claudewrap exporter: metrics at /metrics, health at /healthz\n")
        return _text(start_response, "404 Not Found", "not found: try /metrics\n")


def _text(start_response: StartResponse, status: str, body: str) -> list[bytes]:
    data = body.encode()
    start_response(status, [("Content-Type", "text/plain; charset=utf-8"),
                            ("Content-Length", str(len(data)))])
    return [data]


def bind(host: str, port: int, app: App) -> _Server:
    """A server listening on ``host:port`` (not yet serving). Raises ExporterError."""
    try:
        infos = socket.getaddrinfo(host, port, type=socket.SOCK_STREAM, flags=socket.AI_PASSIVE)
    except socket.gaierror as exc:
        raise ExporterError(f"cannot listen on {host!r}: {exc.strerror}; give --host an"
                            f" address of this machine, e.g. 127.0.0.1") from None
    family, _, _, _, sockaddr = infos[0]

    class Server(_Server):
        address_family = family

    try:
        server = Server((str(sockaddr[0]), int(sockaddr[1])), _QuietHandler)
    except OSError as exc:
        where = f"{host}:{port}" if ":" not in host else f"[{host}]:{port}"
        if exc.errno == errno.EADDRINUSE:
            raise ExporterError(f"cannot listen on {where}: the port is in use (another"
                                f" `claudewrap serve`?); stop it or choose another --port"
                                ) from None
        if exc.errno == errno.EACCES:
            raise ExporterError(f"cannot listen on {where}: permission denied; use a port"
                                f" above 1023") from None
        if exc.errno == errno.EADDRNOTAVAIL:
            raise ExporterError(f"cannot listen on {where}: not an address of this machine;"
                                f" check --host") from None
        raise ExporterError(f"cannot listen on {where}: {exc.strerror or exc}") from None
    server.set_app(app)
    return server


def serve(journal: Path, *, host: str = DEFAULT_HOST, port: int = DEFAULT_PORT,
          window: float = DEFAULT_WINDOW, use_cache: bool = True,
          announce: Callable[[str], None] | None = None) -> None:
    """Serve until SIGTERM or SIGINT. Raises ExporterError when it cannot start."""
    metrics = JournalMetrics(journal, window=window, use_cache=use_cache)
    app = App(metrics)
    server = bind(host, port, app)
    stop = threading.Event()

    def on_signal(signum: int, frame: FrameType | None) -> None:
        stop.set()

    old = {sig: signal.signal(sig, on_signal) for sig in (signal.SIGTERM, signal.SIGINT)}
    thread = threading.Thread(target=server.serve_forever, kwargs={"poll_interval": 0.2},
                              name="claudewrap-serve", daemon=True)
    try:
        try:
            app.scrape()  # read the journal now, not on the first scrape
        except JournalError as exc:
            app.error = str(exc)  # /metrics answers 503 until it is readable
        thread.start()
        if announce is not None:
            name, bound = str(server.server_address[0]), server.server_address[1]
            shown = f"[{name}]" if ":" in name else name
            announce(f"claudewrap serve: http://{shown}:{bound}/metrics"
                     f" (journal {journal})")
        while not stop.wait(1.0):
            pass
    finally:
        if thread.is_alive():
            server.shutdown()
        server.server_close()
        for sig, handler in old.items():
            signal.signal(sig, handler)
        with app.lock:
            metrics.save()


__all__ = ["DEFAULT_HOST", "DEFAULT_PORT", "App", "ExporterError", "bind", "serve"]
