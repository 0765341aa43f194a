"""The user's own OpenTelemetry collector, kept fed while the wrapper records.

A person whose Claude Code already exports OTLP over HTTP (``http/json`` or
``http/protobuf``) to their own collector would otherwise give the wrapper no
live usage: it leaves their settings alone. Instead, :func:`targets` reads
where each signal (logs, metrics) would go, the wrapper's receiver takes the
child's exports of those signals (only their endpoints change in the child's
environment: ``OTEL_EXPORTER_OTLP_{LOGS,METRICS}_ENDPOINT``), records usage
from them, and a :class:`Forwarder` sends every request on unchanged: the
same body bytes, content type and encoding, and the headers Claude Code sent
(which are the user's ``OTEL_EXPORTER_OTLP_[SIGNAL_]HEADERS``).

Forwarding runs in worker threads, never in the thread that answers Claude
Code; requests wait in a bounded queue and are retried with a short backoff
while the collector is down or busy (the OTLP spec's retryable answers: 429,
502, 503, 504, or no answer). At exit they get what is left of the
receiver's close grace; what could not be delivered by then is counted and
said once on stderr. gRPC (``grpc``) is not forwarded: its settings stay as
they are and the transcripts supply the usage at exit, as before.

The spec: https://opentelemetry.io/docs/specs/otel/protocol/exporter/ ;
Claude Code's settings: https://code.claude.com/docs/en/monitoring-usage .
"""

from __future__ import annotations

import threading
import time
from collections import deque

TYPE_CHECKING = False  # typing.TYPE_CHECKING without importing typing (launch path)
if TYPE_CHECKING:
    from collections.abc import Iterable, Mapping
    from typing import Any

# signal path (as Claude Code posts it) -> the spec's name for the signal
SIGNALS = {"/v1/logs": "LOGS", "/v1/metrics": "METRICS"}
HTTP_PROTOCOLS = ("http/json", "http/protobuf")
# The spec's default when no protocol is set; Claude Code 2.1.332 follows it
# (2.1.197 exports nothing then: nothing to forward either).
DEFAULT_PROTOCOL = "http/protobuf"
DEFAULT_ENDPOINT = "http://localhost:4318"
DEFAULT_TIMEOUT_MS = 10_000

# How long the receiver holds Claude Code's request for the collector's own
# answer before it answers 200 itself (the request stays queued and retried).
REPLY_WAIT_SECONDS = 0.5
WORKERS = 4
MAX_QUEUED = 1024
MAX_QUEUED_BYTES = 64 << 20
BACKOFF_FIRST, BACKOFF_MAX = 0.1, 5.0
RETRYABLE = frozenset({429, 502, 503, 504})
# Connection-level headers belong to each hop; everything else goes on as sent.
HOP_BY_HOP = frozenset({"connection", "keep-alive", "proxy-connection", "transfer-encoding",
                        "te", "trailer", "upgrade", "host", "content-length", "expect"})


def _setting(env: Mapping[str, str], name: str) -> str | None:
    value = env.get(name, "").strip()
    return value or None  # an empty variable counts as unset, as in the OTel SDKs


def signal_url(env: Mapping[str, str], signal: str) -> str:
    """Where the user's OTLP/HTTP exporter sends ``signal`` (``/v1/logs``):
    the per-signal endpoint as it is, else the base endpoint with the signal's
    path appended, else the spec's default."""
    own = _setting(env, f"OTEL_EXPORTER_OTLP_{SIGNALS[signal]}_ENDPOINT")
    if own is not None:
        return own
    base = _setting(env, "OTEL_EXPORTER_OTLP_ENDPOINT") or DEFAULT_ENDPOINT
    return (base if base.endswith("/") else base + "/") + signal[1:]


def targets(env: Mapping[str, str]) -> dict[str, str]:
    """Signal path -> the user's URL, for each signal the user exports with
    ``otlp`` over ``http/json`` or ``http/protobuf`` to an http(s) URL. Empty
    when there is none (gRPC, ``prometheus``/``console`` only, no exporter)."""
    found: dict[str, str] = {}
    for signal, name in SIGNALS.items():
        exporters = (_setting(env, f"OTEL_{name}_EXPORTER") or "").lower().split(",")
        if "otlp" not in (e.strip() for e in exporters):
            continue
        protocol = (_setting(env, f"OTEL_EXPORTER_OTLP_{name}_PROTOCOL")
                    or _setting(env, "OTEL_EXPORTER_OTLP_PROTOCOL") or DEFAULT_PROTOCOL)
        if protocol.lower() not in HTTP_PROTOCOLS:
            continue
        url = signal_url(env, signal)
        if url.lower().startswith(("http://", "https://")):
            found[signal] = url
    return found


def forwarded_headers(items: Iterable[tuple[str, str]]) -> list[tuple[str, str]]:
    """The request's headers minus the connection-level ones."""
    return [(k, v) for k, v in items if k.lower() not in HOP_BY_HOP]


class Job:
    """One request to forward, and the collector's first answer to it."""

    __slots__ = ("answer", "answered", "body", "headers", "signal", "url")

    def __init__(self, signal: str, url: str, body: bytes,
                 headers: list[tuple[str, str]]) -> None:
        self.signal = signal
        self.url = url
        self.body = body
        self.headers = headers
        self.answered = threading.Event()
        # (status, content type, body) once the collector gave a final answer;
        # None when the first try failed and the job waits for another.
        self.answer: tuple[int, str, bytes] | None = None

    def settle(self, answer: tuple[int, str, bytes] | None) -> None:
        if not self.answered.is_set():
            self.answer = answer
            self.answered.set()


class Forwarder:
    """Sends jobs to the user's collector from up to :data:`WORKERS` threads."""

    def __init__(self, urls: Mapping[str, str], env: Mapping[str, str]) -> None:
        self.urls = dict(urls)
        self._env = dict(env)
        lock = threading.Lock()
        self._cond = threading.Condition(lock)     # work queued, a job done
        self._backoff = threading.Condition(lock)  # the close deadline was set
        self._queue: deque[Job] = deque()
        self._queued_bytes = 0
        self._workers = 0
        self._idle = 0
        self._busy = 0
        self._stopping = False
        self._deadline: float | None = None
        self.sent = 0        # the collector took it (2xx)
        self.refused: dict[int, int] = {}  # final non-2xx answers, by status
        self.dropped = 0     # never delivered: the queue was full, or time ran out
        self._openers: dict[str, Any] = {}

    def submit(self, signal: str, body: bytes, headers: Iterable[tuple[str, str]]) -> Job | None:
        """Queue ``body`` for the user's URL of ``signal``; None if it has none."""
        url = self.urls.get(signal)
        if url is None:
            return None
        job = Job(signal, url, body, forwarded_headers(headers))
        with self._cond:
            if self._stopping:
                self.dropped += 1
                job.settle(None)
                return job
            self._queue.append(job)
            self._queued_bytes += len(body)
            while (len(self._queue) > MAX_QUEUED or self._queued_bytes > MAX_QUEUED_BYTES) \
                    and len(self._queue) > 1:
                old = self._queue.popleft()  # the oldest goes first: the newest matter most
                self._queued_bytes -= len(old.body)
                self.dropped += 1
                old.settle(None)
            if self._idle:
                self._cond.notify_all()  # close() may wait on it too
            elif self._workers < WORKERS:
                self._workers += 1
                threading.Thread(target=self._work, name="claudewrap-otel-forward",
                                 daemon=True).start()
        return job

    # -- the workers ---------------------------------------------------------

    def _next(self) -> Job | None:
        with self._cond:
            while not self._queue:
                if self._stopping:
                    return None
                self._idle += 1
                self._cond.wait(1.0)
                self._idle -= 1
            job = self._queue.popleft()
            self._queued_bytes -= len(job.body)
            self._busy += 1
            return job

    def _work(self) -> None:
        while True:
            job = self._next()
            if job is None:
                return
            status: int | None = None
            try:
                status = self._deliver(job)
            except Exception:  # noqa: BLE001 - one bad job must not stop the others
                status = None
            finally:
                job.settle(None)  # no-op when it was answered
                with self._cond:  # one step, so close() never counts a job twice
                    self._busy -= 1
                    if status is None:
                        self.dropped += 1
                    elif 200 <= status < 300:
                        self.sent += 1
                    else:
                        self.refused[status] = self.refused.get(status, 0) + 1
                    self._cond.notify_all()

    def _deliver(self, job: Job) -> int | None:
        """Try until the collector gives a final answer (its status) or the
        close deadline passes (None)."""
        backoff = BACKOFF_FIRST
        while True:
            timeout = self._timeout(job.signal)
            if timeout is None:
                return None
            answer = self._post(job, timeout)
            if answer is not None and answer[0] not in RETRYABLE:
                job.settle(answer)
                return answer[0]
            job.settle(None)  # Claude Code gets its 200 now; the job is ours to retry
            with self._cond:
                left = (None if self._deadline is None
                        else self._deadline - time.monotonic())
                if left is not None and left <= 0:
                    return None
                self._backoff.wait(backoff if left is None else min(backoff, left))
            backoff = min(backoff * 2, BACKOFF_MAX)

    def _timeout(self, signal: str) -> float | None:
        """The user's export timeout, cut to what is left of the close grace."""
        name = SIGNALS[signal]
        raw = (_setting(self._env, f"OTEL_EXPORTER_OTLP_{name}_TIMEOUT")
               or _setting(self._env, "OTEL_EXPORTER_OTLP_TIMEOUT"))
        try:
            timeout = max(0.1, float(raw) / 1000) if raw else DEFAULT_TIMEOUT_MS / 1000
        except ValueError:
            timeout = DEFAULT_TIMEOUT_MS / 1000
        if self._deadline is not None:
            left = self._deadline - time.monotonic()
            if left <= 0.01:
                return None
            timeout = min(timeout, left)
        return timeout

    def _post(self, job: Job, timeout: float) -> tuple[int, str, bytes] | None:
        """One try: the collector's (status, content type, body), or None when
        it could not be reached or did not answer in time."""
        import urllib.error
        import urllib.request

        request = urllib.request.Request(job.url, data=job.body, method="POST")
        for key, value in job.headers:
            request.add_header(key, value)
        try:
            with self._opener(job.signal, job.url).open(request, timeout=timeout) as resp:
                return resp.status, resp.headers.get("Content-Type", ""), resp.read(1 << 20)
        except urllib.error.HTTPError as err:
            try:
                body = err.read(1 << 20)
            except OSError:
                body = b""
            return err.code, err.headers.get("Content-Type", "") if err.headers else "", body
        except (OSError, ValueError):  # refused, reset, timed out, bad URL
            return None

    def _opener(self, signal: str, url: str) -> Any:
        """urllib's opener for ``signal``: the proxies of the environment (as
        Claude Code's exporter), the user's TLS settings, and no redirects (urllib
        would follow one as a GET without the body: the collector's 30x is
        its answer instead)."""
        if signal not in self._openers:
            import urllib.request

            class NoRedirect(urllib.request.HTTPRedirectHandler):
                def redirect_request(self, *args: Any, **kwargs: Any) -> None:
                    return None

            handlers: list[Any] = [NoRedirect()]
            context = self._tls(signal, url)
            if context is not None:
                handlers.append(urllib.request.HTTPSHandler(context=context))
            self._openers[signal] = urllib.request.build_opener(*handlers)
        return self._openers[signal]

    def _tls(self, signal: str, url: str) -> Any:
        """The TLS context the user's settings ask for (their CA file and client
        certificate: ``OTEL_EXPORTER_OTLP_[SIGNAL_]CERTIFICATE``, ``CLIENT_KEY``,
        ``CLIENT_CERTIFICATE``); None for http or the system's defaults."""
        if not url.lower().startswith("https://"):
            return None
        name = SIGNALS[signal]

        def pick(what: str) -> str | None:
            return (_setting(self._env, f"OTEL_EXPORTER_OTLP_{name}_{what}")
                    or _setting(self._env, f"OTEL_EXPORTER_OTLP_{what}"))

        ca, cert, key = pick("CERTIFICATE"), pick("CLIENT_CERTIFICATE"), pick("CLIENT_KEY")
        if not (ca or cert):
            return None
        import ssl

        context = ssl.create_default_context(cafile=ca)
        if cert:
            context.load_cert_chain(cert, key)
        return context

    # -- the end -------------------------------------------------------------

    def close(self, deadline: float) -> str | None:
        """Let the workers deliver until ``deadline`` (monotonic), then stop.
        One line when something did not reach the collector, else None."""
        with self._cond:
            self._deadline = deadline
            self._backoff.notify_all()  # a worker in its backoff looks at the deadline
            while (self._queue or self._busy) and time.monotonic() < deadline:
                self._cond.wait(max(0.0, min(0.05, deadline - time.monotonic())))
            self._stopping = True
            # Whatever is still queued or on its way now will not be confirmed.
            lost = self.dropped + len(self._queue) + self._busy
            for job in self._queue:
                job.settle(None)
            self._queue.clear()
            self._queued_bytes = 0
            self._cond.notify_all()
            refused = sum(self.refused.values())
            total = self.sent + refused + lost
        return self._report(lost, refused, total)

    def _report(self, lost: int, refused: int, total: int) -> str | None:
        if not lost and not refused:
            return None
        where = ", ".join(sorted(set(self.urls.values())))
        parts = []
        if lost:
            parts.append(f"{lost} of {total} OpenTelemetry exports could not be delivered to "
                         f"your collector ({where}) before the end: it was down or too slow")
        if refused:
            codes = ", ".join(f"HTTP {code}" for code in sorted(self.refused))
            parts.append(f"it refused {refused} of {total} ({codes})")
        return ("claudewrap: " + "; ".join(parts)
                + " \N{EM DASH} their usage is in claudewrap's journal all the same")
