"""`claudewrap serve`: an HTTP exporter of the journal's metrics for Prometheus.

``/metrics`` reads the lines appended since the previous scrape
(claudewrap.export.metrics.JournalMetrics) and answers in the format the scraper asks
for (prometheus_client's content negotiation, gzip when accepted);
``/healthz`` answers ``ok``. SIGTERM and SIGINT stop the server cleanly: the
listening socket is closed, the state cache saved.

Under load (issue 13 item 10: with a backlog of 5 and a thread per connection,
200 concurrent scrapes lost 13 to timeouts and slow clients were never timed
out) the server is one asyncio loop that only moves bytes, so a connection
costs a few KiB and never a thread:

* the listen backlog is the system's (``socket.SOMAXCONN``);
* a client has :data:`HEAD_TIMEOUT` seconds to send its whole request head
  (a slowloris connection that trickles it is dropped) and
  :data:`WRITE_TIMEOUT` seconds to take the answer;
* the work runs in a pool of two threads, and scrapes that arrive while one is
  being rendered share the next render (:class:`Renders`), so a burst of N
  scrapes costs about two renders, not N; each format (text, OpenMetrics, gzip)
  of a render is encoded once (:class:`Exposition`), and a render whose
  snapshot equals the previous one reuses its encodings.
  ``bench/exporter_load.py`` (20,000 records, a 250 KB exposition, 2 busy
  cores): 200 concurrent scrapes went from 183 answered (17 timed out at 30 s,
  the slowest answer after 28 s) to all 200, the slowest after 0.4-0.7 s; a
  scrape of an unchanged journal from 73 ms to about 30 ms (encodings reused).
"""

from __future__ import annotations

import asyncio
import errno
import gzip
import signal
import socket
import threading
import traceback
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any, Generic, TypeVar
from urllib.parse import parse_qs, urlsplit

from claudewrap.export.metrics import DEFAULT_WINDOW, JournalMetrics, Snapshot, exposition, registry
from claudewrap.store.journal import JournalError

DEFAULT_HOST = "127.0.0.1"
DEFAULT_PORT = 9404

HEAD_TIMEOUT = 5.0  # seconds to send the request line and headers, all of them
WRITE_TIMEOUT = 10.0  # seconds to take the answer
MAX_HEAD = 16 * 1024  # bytes of request line and headers
MAX_CONNECTIONS = 512  # open at once; more are closed at once (file descriptors)
BACKLOG = max(128, socket.SOMAXCONN)
WORKERS = 2

T = TypeVar("T")


class ExporterError(Exception):
    """The exporter cannot start; the message says what to do, in one line."""


class Exposition:
    """One render: a snapshot and its encodings, each made once (thread-safe)."""

    def __init__(self, snap: Snapshot) -> None:
        self.snapshot = snap
        self.registry = registry(snap)
        self._bodies: dict[tuple[str, bool], bytes] = {}
        self._lock = threading.Lock()

    def _plain(self, registry: object) -> bytes:
        """generate_latest's bytes (metrics.exposition; a filtered registry: the library)."""
        if registry is self.registry:
            return exposition(self.snapshot)
        from prometheus_client import generate_latest

        return generate_latest(registry)  # type: ignore[arg-type]

    def body(self, accept: str, accept_encoding: str, names: list[str] | None = None
             ) -> tuple[list[tuple[str, str]], bytes]:
        """(headers, body) for a scrape with these ``Accept`` headers and ``name[]``."""
        from prometheus_client.exposition import choose_encoder, generate_latest, gzip_accepted

        encoder, content_type = choose_encoder(accept)
        if encoder is generate_latest:  # the plain text format: written as `metrics` writes it
            encoder = self._plain
        zipped = gzip_accepted(accept_encoding)
        headers = [("Content-Type", content_type)]
        if zipped:
            headers.append(("Content-Encoding", "gzip"))
        if names:  # a filtered scrape is rare: not kept
            data = encoder(self.registry.restricted_registry(names))
            return headers, gzip.compress(data) if zipped else data
        with self._lock:
            key = (content_type, zipped)
            if key not in self._bodies:
                plain = self._bodies.get((content_type, False))
                if plain is None:
                    plain = self._bodies[(content_type, False)] = encoder(self.registry)
                self._bodies[key] = gzip.compress(plain) if zipped else plain
            return headers, self._bodies[key]


class App:
    """What the server answers; the journal is read by one render at a time."""

    def __init__(self, metrics: JournalMetrics) -> None:
        self.metrics = metrics
        self.lock = threading.Lock()
        self.last: Exposition | None = None

    def scrape(self) -> Exposition:
        """Read new journal lines and add up. Raises JournalError."""
        with self.lock:
            self.metrics.update()
            snap = self.metrics.snapshot()
            if self.last is None or self.last.snapshot != snap:
                self.last = Exposition(snap)
            return self.last


class Renders(Generic[T]):
    """Scrapes that arrive while a render runs wait for the next one and share it.

    Each render starts after every scrape it answers has arrived, so no scrape
    sees the journal older than when it asked; a burst costs two renders.
    """

    def __init__(self, render: Callable[[], T], executor: ThreadPoolExecutor) -> None:
        self._render = render
        self._executor = executor
        self._waiting: list[asyncio.Future[T]] = []
        self._task: asyncio.Task[None] | None = None

    async def get(self) -> T:
        loop = asyncio.get_running_loop()
        future: asyncio.Future[T] = loop.create_future()
        self._waiting.append(future)
        if self._task is None:
            self._task = loop.create_task(self._run())
        return await future

    async def _run(self) -> None:
        loop = asyncio.get_running_loop()
        try:
            while self._waiting:
                batch, self._waiting = self._waiting, []
                try:
                    result = await loop.run_in_executor(self._executor, self._render)
                except Exception as exc:  # noqa: BLE001 - each scrape says what went wrong
                    for future in batch:
                        if not future.done():
                            future.set_exception(exc)
                else:
                    for future in batch:
                        if not future.done():
                            future.set_result(result)
        finally:
            self._task = None


class _BadRequest(Exception):
    pass


def _parse_head(head: bytes) -> tuple[str, str, dict[str, str]]:
    """(method, target, headers with lower-case names) of a request head."""
    lines = head.decode("latin-1").split("\r\n")
    parts = lines[0].split()
    if len(parts) != 3 or not parts[2].startswith("HTTP/"):
        raise _BadRequest
    headers: dict[str, str] = {}
    for line in lines[1:]:
        if not line:
            continue
        name, sep, value = line.partition(":")
        if not sep:
            raise _BadRequest
        headers[name.strip().lower()] = value.strip()
    return parts[0], parts[1], headers


def _response(status: str, headers: list[tuple[str, str]], body: bytes,
              send_body: bool = True) -> bytes:
    lines = [f"HTTP/1.1 {status}", *(f"{k}: {v}" for k, v in headers),
             f"Content-Length: {len(body)}", "Connection: close", "", ""]
    return "\r\n".join(lines).encode("latin-1") + (body if send_body else b"")


def _text(status: str, body: str, send_body: bool = True) -> bytes:
    return _response(status, [("Content-Type", "text/plain; charset=utf-8")], body.encode(),
                     send_body)


class Server:
    """The HTTP side: reads request heads under a deadline, writes answers."""

    def __init__(self, app: App, sock: socket.socket) -> None:
        self.app = app
        self.sock = sock
        self.executor = ThreadPoolExecutor(WORKERS, thread_name_prefix="claudewrap-serve")
        self.renders: Renders[Exposition] = Renders(app.scrape, self.executor)
        self.open = 0

    async def handle(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        self.open += 1
        sent = False
        try:
            if self.open > MAX_CONNECTIONS:
                return
            try:
                head = await asyncio.wait_for(reader.readuntil(b"\r\n\r\n"), HEAD_TIMEOUT)
            except (asyncio.TimeoutError, asyncio.IncompleteReadError, ConnectionError):
                return  # too slow, or gone: drop it
            except asyncio.LimitOverrunError:
                answer = _text("431 Request Header Fields Too Large", "request head too large\n")
            else:
                answer = await self.answer(head)
            writer.transport.set_write_buffer_limits(0)  # drain() returns once all is sent
            writer.write(answer)
            await asyncio.wait_for(writer.drain(), WRITE_TIMEOUT)
            sent = True
        except (asyncio.TimeoutError, ConnectionError):
            pass
        finally:
            self.open -= 1
            if sent:
                writer.close()
            else:
                writer.transport.abort()  # nothing it holds is worth waiting for

    async def answer(self, head: bytes) -> bytes:
        try:
            method, target, headers = _parse_head(head)
        except _BadRequest:
            return _text("400 Bad Request", "bad request\n")
        if method not in ("GET", "HEAD"):
            return _response("405 Method Not Allowed", [("Allow", "GET, HEAD")], b"")
        send = method == "GET"
        url = urlsplit(target)
        if url.path == "/metrics":
            try:
                exposition = await self.renders.get()
            except JournalError as exc:
                return _text("503 Service Unavailable", f"{exc}\n", send)
            except Exception:  # noqa: BLE001 - a bug answers 500; the server goes on
                traceback.print_exc()
                return _text("500 Internal Server Error", "internal error\n", send)
            names = parse_qs(url.query).get("name[]")
            loop = asyncio.get_running_loop()
            out_headers, body = await loop.run_in_executor(
                self.executor, exposition.body, headers.get("accept", ""),
                headers.get("accept-encoding", ""), names)
            return _response("200 OK", out_headers, body, send)
        if url.path == "/healthz":
            return _text("200 OK", "ok\n", send)
        if url.path == "/":
            return _text("200 OK", "claudewrap exporter: metrics at /metrics, health at /healthz\n",
                         send)
        return _text("404 Not Found", "not found: try /metrics\n", send)

    async def run(self, stop: asyncio.Event) -> None:
        server = await asyncio.start_server(self.handle, sock=self.sock, limit=MAX_HEAD,
                                            backlog=BACKLOG)
        async with server:
            await stop.wait()
        # Connections still open are dropped, not left to a closed loop.
        tasks = [t for t in asyncio.all_tasks() if t is not asyncio.current_task()]
        for task in tasks:
            task.cancel()
        await asyncio.gather(*tasks, return_exceptions=True)


def bind(host: str, port: int) -> socket.socket:
    """A socket listening on ``host:port``. Raises ExporterError."""
    try:
        infos = socket.getaddrinfo(host, port, type=socket.SOCK_STREAM, flags=socket.AI_PASSIVE)
    except socket.gaierror as exc:
        raise ExporterError(f"cannot listen on {host!r}: {exc.strerror}; give --host an"
                            f" address of this machine, e.g. 127.0.0.1") from None
    family, _, _, _, sockaddr = infos[0]
    sock = socket.socket(family, socket.SOCK_STREAM)
    # a restart right after a stop must not find the port "in use"
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    try:
        sock.bind(sockaddr)
        sock.listen(BACKLOG)
    except OSError as exc:
        sock.close()
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
    sock.setblocking(False)
    return sock


def serve(journal: Path, *, host: str = DEFAULT_HOST, port: int = DEFAULT_PORT,
          window: float = DEFAULT_WINDOW, use_cache: bool = True,
          announce: Callable[[str], None] | None = None) -> None:
    """Serve until SIGTERM or SIGINT. Raises ExporterError when it cannot start."""
    metrics = JournalMetrics(journal, window=window, use_cache=use_cache)
    app = App(metrics)
    sock = bind(host, port)
    server = Server(app, sock)
    loop = asyncio.new_event_loop()
    stop = asyncio.Event()
    old: dict[int, Any] = {}
    try:
        for sig in (signal.SIGTERM, signal.SIGINT):
            old[sig] = signal.getsignal(sig)
            loop.add_signal_handler(sig, stop.set)
        try:
            # Read the journal now, not on the first scrape; no snapshot yet: that
            # would export (and save) the counters, and a series new since the saved
            # ones would show its 0 to no one (the first scrape then has its value).
            metrics.update()
        except JournalError:
            pass  # /metrics answers 503 until it is readable
        if announce is not None:
            name, bound = str(sock.getsockname()[0]), sock.getsockname()[1]
            shown = f"[{name}]" if ":" in name else name
            announce(f"claudewrap serve: http://{shown}:{bound}/metrics (journal {journal})")
        loop.run_until_complete(server.run(stop))
    finally:
        sock.close()
        server.executor.shutdown(wait=True, cancel_futures=True)
        for signum, handler in old.items():
            loop.remove_signal_handler(signum)
            signal.signal(signum, handler)
        loop.close()
        with app.lock:
            metrics.save()


__all__ = ["DEFAULT_HOST", "DEFAULT_PORT", "App", "ExporterError", "Exposition", "Renders",
           "Server", "bind", "serve"]
