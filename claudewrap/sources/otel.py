"""Claude Code's own OpenTelemetry, received on a loopback port: exact usage, live.

While `claudewrap run` runs, a :class:`Receiver` listens on 127.0.0.1 for OTLP
over HTTP with JSON bodies (``/v1/logs``, ``/v1/metrics``) and the child is told
to export there (:meth:`Receiver.child_env`). When the user configured
OpenTelemetry themselves (:func:`user_configured`) and exports OTLP over HTTP
(:func:`pass_through`), only those signals' endpoints change: the receiver
takes them (JSON or protobuf, :mod:`claudewrap.sources.otlp_protobuf`) and forwards
each request unchanged to the user's collector (:mod:`claudewrap.sources.otel_forward`).
Otherwise (gRPC, say) nothing is changed.

* Each ``claude_code.api_request`` log event becomes one exact ``delta`` record
  (``source="otel"``) with the request id, model, token counts and cost. Only
  those numbers and names are read; prompt and response attributes never are.
* The ``claude_code.token.usage`` / ``claude_code.cost.usage`` metrics are
  tallied and used only for what the events did not cover (a lost log export):
  at the end, per Claude session, whatever the metrics count beyond the events
  becomes one ``delta`` per model, without a request id.

Launch-path cost: binding the socket (before the child starts, so its address
can go into the child's environment; with ``_socket``, not ``socket``, whose
import costs ~5 ms) and reading the settings files' bytes. The daemon thread
(:meth:`Receiver.start`, with ``threading``) starts once the child runs; the HTTP
server, JSON and the journal are imported in that thread once the child connects. At child exit :meth:`Receiver.close` waits (bounded) for the final
export Claude Code sends on its way out.
"""

from __future__ import annotations

import _socket
import _thread
import math
import os
import time

from claudewrap.sources.claude_dirs import config_dir_names

TYPE_CHECKING = False  # typing.TYPE_CHECKING without importing typing (launch path)
if TYPE_CHECKING:
    import threading
    from collections.abc import Mapping
    from typing import Any

    from claudewrap.sources.otel_forward import Forwarder
    from claudewrap.store.lazy_journal import LazyJournal
    from claudewrap.store.records import UsageEvent, UsageRecord

# The environment names that mean "the user set up OpenTelemetry": with any of
# them present, the child's environment is left exactly as it is.
USER_ENV_PREFIXES = ("OTEL_",)
USER_ENV_NAMES = ("CLAUDE_CODE_ENABLE_TELEMETRY",)
# Claude Code also takes environment variables from its settings files.
_SETTINGS_MARKERS = (b"OTEL_", b"CLAUDE_CODE_ENABLE_TELEMETRY")
_MANAGED_SETTINGS = ("/etc/claude-code/managed-settings.json",
                     "/Library/Application Support/ClaudeCode/managed-settings.json")

LOGS_INTERVAL_MS = 1000
METRICS_INTERVAL_MS = 5000
CLOSE_GRACE_SECONDS = 2.0
# The HTTP server (its modules: ~25 ms to import) is made this long after the
# child started, or at its first connection if that comes sooner: a child that
# ends at once pays nothing, and Claude Code (~300 ms to start) finds it ready.
# Made at the first connection, Claude Code waited for the import on its
# export at exit: `claude -p` took ~30 ms longer (bench/real_claude.py).
_SERVER_AFTER_SECONDS = 0.1
_MAX_BODY = 32 << 20

API_REQUEST_EVENT = "claude_code.api_request"
TOKEN_METRIC = "claude_code.token.usage"
COST_METRIC = "claude_code.cost.usage"
# token.usage ``type`` attribute -> index in a tally
_TOKEN_TYPES = {"input": 0, "output": 1, "cacheRead": 2, "cacheCreation": 3}
_CUMULATIVE = 2  # OTLP AggregationTemporality


def user_configured(env: Mapping[str, str], cwd: str | None = None,
                    home: str | None = None) -> bool:
    """True when the user has OpenTelemetry settings of their own for Claude Code.

    Looks at the environment, and (without parsing them) at the settings files
    Claude Code reads environment variables from (``settings.json`` in each of
    :func:`claudewrap.sources.claude_dirs.config_dirs`, the project's ``.claude`` and the
    managed settings): any mention of ``OTEL_`` or ``CLAUDE_CODE_ENABLE_TELEMETRY``
    there counts.
    """
    if any(k.startswith(USER_ENV_PREFIXES) or k in USER_ENV_NAMES for k in env):
        return True
    return _settings_mention_otel(env, cwd, home)


def pass_through(env: Mapping[str, str], cwd: str | None = None, home: str | None = None
                 ) -> tuple[dict[str, str], dict[str, str]]:
    """Where the user's own OpenTelemetry goes, for the receiver to forward it.

    Returns (signal path (``/v1/logs``, ``/v1/metrics``) -> the user's collector
    URL, for each signal exported over OTLP/HTTP; the environment Claude Code
    will export with). That environment is ``env`` with the ``env`` of Claude
    Code's settings files laid over it, as Claude Code does (user, project,
    local project, managed: the later wins). A signal whose own endpoint is
    set in a settings file is not taken (the file would override the child's
    environment); nor is anything when a settings file that mentions OTel
    cannot be read. No signals: OTel is left alone (gRPC, for one).
    """
    from claudewrap.sources.otel_forward import SIGNALS, targets

    layers = _settings_env_layers(env, cwd, home)
    if layers is None:
        return {}, dict(env)
    effective = dict(env)
    for layer in layers:
        effective.update(layer)
    fixed = {key for layer in layers for key in layer}
    urls = {signal: url for signal, url in targets(effective).items()
            if f"OTEL_EXPORTER_OTLP_{SIGNALS[signal]}_ENDPOINT" not in fixed}
    return urls, effective


def _settings_files(env: Mapping[str, str], cwd: str | None, home: str | None) -> list[str]:
    """Claude Code's settings files, lowest precedence first."""
    cwd = cwd or os.getcwd()
    dirs_env = env if home is None else {**env, "HOME": home}
    # config_dirs lists the most specific folder first: it wins, so it goes last.
    files = [os.path.join(d, "settings.json") for d in reversed(config_dir_names(dirs_env))]
    files += [os.path.join(cwd, ".claude", name)
              for name in ("settings.json", "settings.local.json")]
    return files + list(_MANAGED_SETTINGS)


def _settings_mention_otel(env: Mapping[str, str], cwd: str | None,
                           home: str | None) -> bool:
    for path in _settings_files(env, cwd, home):
        try:
            with open(path, "rb") as fh:
                data = fh.read(1 << 20)
        except OSError:
            continue
        if any(marker in data for marker in _SETTINGS_MARKERS):
            return True
    return False


def _settings_env_layers(env: Mapping[str, str], cwd: str | None,
                         home: str | None) -> list[dict[str, str]] | None:
    """The OTel part of each settings file's ``env``, lowest precedence first;
    None when a file that mentions OTel is no JSON object Claude Code could use."""
    layers: list[dict[str, str]] = []
    for path in _settings_files(env, cwd, home):
        try:
            with open(path, "rb") as fh:
                data = fh.read(1 << 20)
        except OSError:
            continue
        if not any(marker in data for marker in _SETTINGS_MARKERS):
            continue  # the usual case: no JSON parsed on the launch path
        import json

        try:
            settings = json.loads(data)
        except ValueError:
            return None
        variables = settings.get("env") if isinstance(settings, dict) else None
        if variables is None:
            continue  # the marker is elsewhere (a hook's command line, say)
        if not isinstance(variables, dict):
            return None
        layers.append({str(k): v if isinstance(v, str) else json.dumps(v)
                       for k, v in variables.items()
                       if str(k).startswith(USER_ENV_PREFIXES) or k in USER_ENV_NAMES})
    return layers


# --------------------------------------------------------------------------
# Parsing OTLP/JSON (pure functions: a payload in, events out)


def _value(v: Any) -> Any:
    """The Python value of an OTLP ``AnyValue`` (int64s may come as strings)."""
    if not isinstance(v, dict):
        return None
    for key in ("stringValue", "boolValue", "doubleValue"):
        if key in v:
            return v[key]
    if "intValue" in v:
        try:
            return int(v["intValue"])
        except (TypeError, ValueError):
            return None
        except OverflowError:  # Infinity: kept, so that _int refuses the record
            return v["intValue"]
    return None


def _attrs(items: Any, wanted: frozenset[str]) -> dict[str, Any]:
    """The attributes named in ``wanted`` (nothing else is ever read)."""
    out: dict[str, Any] = {}
    if isinstance(items, list):
        for item in items:
            if isinstance(item, dict) and item.get("key") in wanted:
                out[item["key"]] = _value(item.get("value"))
    return out


def _int(value: Any) -> int:
    """A count as OTLP JSON sends it (a number, or an intValue string); 0 when
    missing. A value that is no finite number (``Infinity``, ``NaN``, ``1e400``)
    becomes one above every plausible count, so the record is refused
    (records.usage_problem) instead of raising here."""
    if isinstance(value, bool):
        return 0
    number = _float(value)
    if number is None:
        return 0
    if not math.isfinite(number):
        from claudewrap.store.records import MAX_TOKENS

        return MAX_TOKENS + 1
    return max(0, round(number))


def _float(value: Any) -> float | None:
    if isinstance(value, bool):
        return None
    if isinstance(value, (int, float)):
        return float(value)
    if isinstance(value, str):
        try:
            return float(value)
        except (ValueError, OverflowError):
            return None
    return None


def _str(value: Any) -> str | None:
    return value if isinstance(value, str) and value else None


def _iso_from_nanos(value: Any) -> str | None:
    try:
        nanos = int(value)
    except (TypeError, ValueError):
        return None
    if nanos <= 0:
        return None
    from claudewrap.store.records import iso_of_epoch

    return iso_of_epoch(nanos / 1e9)


_EVENT_ATTRS = frozenset({
    "event.name", "event.timestamp", "session.id", "model", "input_tokens", "output_tokens",
    "cache_read_tokens", "cache_creation_tokens", "cost_usd", "request_id", "event.sequence",
    "query_source", "agent.name", "skill.name", "prompt.id", "command_name",
})
USER_PROMPT_EVENT = "claude_code.user_prompt"
# query_source of the main thread: "repl_main_thread" (interactive, 2.1.x: with
# ":..." suffixes too), "sdk" (-p); the metrics say "main".
_MAIN_THREAD = ("sdk", "main")
# user_prompt's command_name when Claude Code hides a custom command's name
# (2.1.332); the requests' skill.name still gives it.
_HIDDEN_COMMAND = "custom"
# prompt.id -> the slash command of that user_prompt. A module-level memo, not
# per receiver: prompt ids are UUIDs, and a prompt's requests may come in a later
# export than the prompt itself (a /compact that takes longer than the export
# interval). Bounded; the oldest half goes first.
_PROMPT_COMMANDS: dict[str, str] = {}
_PROMPT_COMMANDS_MAX = 4096


def agent_of(query_source: str | None, agent_name: str | None) -> str | None:
    """The ``agent`` of an ``api_request``: its ``agent.name`` (a subagent);
    None on the main thread; else Claude Code's own side request by its
    ``query_source`` (``compact``, ``generate_session_title``, ...)."""
    if agent_name:
        return agent_name
    if (query_source is None or query_source in _MAIN_THREAD
            or query_source.startswith("repl_main_thread")):
        return None
    if query_source.startswith("agent:"):  # "agent:builtin:general-purpose"
        return query_source.rsplit(":", 1)[-1] or "subagent"
    return query_source


def _remember_command(prompt_id: str | None, command: str | None) -> None:
    if not prompt_id or not command or command == _HIDDEN_COMMAND:
        return
    if len(_PROMPT_COMMANDS) >= _PROMPT_COMMANDS_MAX:
        for key in list(_PROMPT_COMMANDS)[:_PROMPT_COMMANDS_MAX // 2]:
            del _PROMPT_COMMANDS[key]
    _PROMPT_COMMANDS[prompt_id] = command.lstrip("/")


class ApiRequest:
    """One ``claude_code.api_request`` event: what a record needs, nothing more.

    (Plain classes here, not dataclasses: this module is on the launch path.)
    """

    __slots__ = ("event", "sequence", "ts")

    def __init__(self, ts: str | None, event: UsageEvent, sequence: int | None = None) -> None:
        self.ts = ts
        self.event = event
        self.sequence = sequence

    def __repr__(self) -> str:
        return f"ApiRequest(ts={self.ts!r}, event={self.event!r}, sequence={self.sequence!r})"


def parse_logs(payload: Any) -> list[ApiRequest]:
    """The ``api_request`` events of an OTLP ``ExportLogsServiceRequest`` (JSON form),
    each attributed: ``agent`` (:func:`agent_of`) and ``command`` (the request's
    ``skill.name``, else the ``command_name`` of its ``user_prompt``, matched by
    ``prompt.id``: built-in commands such as ``/compact`` have no skill.name)."""
    from claudewrap.parse.patterns import normalise_model
    from claudewrap.store.records import UsageEvent

    found: list[ApiRequest] = []
    if not isinstance(payload, dict):
        return found
    for rl in payload.get("resourceLogs") or ():
        for sl in (rl.get("scopeLogs") or ()) if isinstance(rl, dict) else ():
            for lr in (sl.get("logRecords") or ()) if isinstance(sl, dict) else ():
                if not isinstance(lr, dict):
                    continue
                a = _attrs(lr.get("attributes"), _EVENT_ATTRS)
                body = _value(lr.get("body"))
                if body == USER_PROMPT_EVENT or a.get("event.name") == "user_prompt":
                    _remember_command(_str(a.get("prompt.id")), _str(a.get("command_name")))
                    continue
                if body != API_REQUEST_EVENT and a.get("event.name") not in (
                        "api_request", API_REQUEST_EVENT):
                    continue
                model = _str(a.get("model"))
                prompt_id = _str(a.get("prompt.id"))
                event = UsageEvent(
                    kind="delta",
                    model=normalise_model(model) if model else None,
                    input_tokens=_int(a.get("input_tokens")),
                    output_tokens=_int(a.get("output_tokens")),
                    cache_read_tokens=_int(a.get("cache_read_tokens")),
                    cache_write_tokens=_int(a.get("cache_creation_tokens")),
                    cost_usd=_float(a.get("cost_usd")),
                    pattern="otel:api_request",
                    request_id=_str(a.get("request_id")),
                    claude_session=_str(a.get("session.id")),
                    agent=agent_of(_str(a.get("query_source")), _str(a.get("agent.name"))),
                    command=_str(a.get("skill.name")) or (
                        _PROMPT_COMMANDS.get(prompt_id) if prompt_id else None),
                )
                ts = _str(a.get("event.timestamp"))
                if ts is None or len(ts) != 24 or not ts.endswith("Z"):
                    ts = _iso_from_nanos(lr.get("timeUnixNano"))
                seq = a.get("event.sequence")
                found.append(ApiRequest(ts, event, seq if isinstance(seq, int) else None))
    return found


_METRIC_ATTRS = frozenset({"session.id", "model", "type"})


class MetricPoint:
    """One data point of ``token.usage`` (``index`` 0-3) or ``cost.usage`` (``index`` 4)."""

    __slots__ = ("claude_session", "cumulative", "index", "model", "series", "value")

    def __init__(self, *, claude_session: str, model: str, index: int, value: float,
                 cumulative: bool, series: tuple[Any, ...]) -> None:
        self.claude_session = claude_session
        self.model = model
        self.index = index
        self.value = value
        self.cumulative = cumulative
        self.series = series

    def __repr__(self) -> str:
        return (f"MetricPoint({self.claude_session!r}, {self.model!r}, index={self.index}, "
                f"value={self.value!r}, cumulative={self.cumulative})")


def parse_metrics(payload: Any) -> list[MetricPoint]:
    """The usage data points of an OTLP ``ExportMetricsServiceRequest`` (JSON form)."""
    from claudewrap.parse.patterns import normalise_model

    points: list[MetricPoint] = []
    if not isinstance(payload, dict):
        return points
    for rm in payload.get("resourceMetrics") or ():
        for sm in (rm.get("scopeMetrics") or ()) if isinstance(rm, dict) else ():
            for metric in (sm.get("metrics") or ()) if isinstance(sm, dict) else ():
                if not isinstance(metric, dict):
                    continue
                name = metric.get("name")
                if name not in (TOKEN_METRIC, COST_METRIC):
                    continue
                data = metric.get("sum") or metric.get("gauge") or {}
                if not isinstance(data, dict):
                    continue
                cumulative = data.get("aggregationTemporality") in (
                    _CUMULATIVE, "AGGREGATION_TEMPORALITY_CUMULATIVE")
                for dp in data.get("dataPoints") or ():
                    if not isinstance(dp, dict):
                        continue
                    a = _attrs(dp.get("attributes"), _METRIC_ATTRS)
                    if name == TOKEN_METRIC:
                        index = _TOKEN_TYPES.get(str(a.get("type")))
                        if index is None:
                            continue
                    else:
                        index = 4
                    value = _float(dp.get("asDouble"))
                    if value is None:
                        value = float(_int(dp.get("asInt")))
                    if not (math.isfinite(value) and 0 <= value <= 1e12):
                        continue  # no usage is that: a hostile or broken point
                    model = _str(a.get("model"))
                    points.append(MetricPoint(
                        claude_session=_str(a.get("session.id")) or "",
                        model=normalise_model(model) if model else "",
                        index=index, value=value, cumulative=cumulative,
                        series=(name, a.get("session.id"), model, a.get("type"),
                                dp.get("startTimeUnixNano"),
                                tuple(sorted(str(x.get("key")) + "=" + str(x.get("value"))
                                             for x in dp.get("attributes") or ()
                                             if isinstance(x, dict)))),
                    ))
    return points


class Tally:
    """Usage per (Claude session, model): input, output, cache read, cache write, cost."""

    def __init__(self) -> None:
        self.sums: dict[tuple[str, str], list[float]] = {}
        self._cumulative: dict[tuple[Any, ...], tuple[tuple[str, str], int, float]] = {}

    def add(self, key: tuple[str, str], index: int, value: float) -> None:
        self.sums.setdefault(key, [0.0] * 5)[index] += value

    def add_point(self, p: MetricPoint) -> None:
        if p.cumulative:
            # A cumulative series reports its running total: keep the newest.
            self._cumulative[p.series] = ((p.claude_session, p.model), p.index, p.value)
        else:
            self.add((p.claude_session, p.model), p.index, p.value)

    def empty(self) -> bool:
        return not (self.sums or self._cumulative)

    def totals(self) -> dict[tuple[str, str], list[float]]:
        out = {k: list(v) for k, v in self.sums.items()}
        for key, index, value in self._cumulative.values():
            out.setdefault(key, [0.0] * 5)[index] += value
        return out


def missing_usage(events: Tally, metrics: Tally) -> list[UsageEvent]:
    """What the metrics counted beyond the events, per Claude session and model.

    A session whose events cover its metric totals (all models together: the
    two may name a model differently) yields nothing.
    """
    from claudewrap.store.records import UsageEvent

    ev = events.totals()
    out: list[UsageEvent] = []
    by_session: dict[str, list[tuple[str, list[float]]]] = {}
    for (session, model), values in metrics.totals().items():
        by_session.setdefault(session, []).append((model, values))
    for session, rows in by_session.items():
        seen = [sum(v[i] for (s, _), v in ev.items() if s == session) for i in range(5)]
        counted = [sum(values[i] for _, values in rows) for i in range(5)]
        if all(round(counted[i]) <= round(seen[i]) for i in range(4)) and (
                counted[4] <= seen[4] + 1e-6):
            continue
        for model, values in rows:
            have = ev.get((session, model), [0.0] * 5)
            extra = [max(0.0, values[i] - have[i]) for i in range(5)]
            tokens = [round(x) for x in extra[:4]]
            if not any(tokens) and extra[4] <= 1e-6:
                continue
            out.append(UsageEvent(
                kind="delta", model=model or None, input_tokens=tokens[0],
                output_tokens=tokens[1], cache_read_tokens=tokens[2],
                cache_write_tokens=tokens[3],
                cost_usd=round(extra[4], 10) if extra[4] > 1e-6 else None,
                pattern="otel:metrics", claude_session=session or None))
    return out


# --------------------------------------------------------------------------
# The receiver


def _read_body(rfile: Any, headers: Any) -> bytes:
    """The request body as sent (still compressed if it is): Content-Length, or
    chunked (Claude Code 2.1.197 sends chunked)."""
    if "chunked" in (headers.get("Transfer-Encoding") or "").lower():
        parts: list[bytes] = []
        size = 0
        while True:
            line = rfile.readline(1024)
            if not line:
                break
            try:
                n = int(line.split(b";", 1)[0].strip() or b"0", 16)
            except ValueError:
                raise ValueError("bad chunk size") from None
            if n == 0:
                while rfile.readline(1024) not in (b"\r\n", b"\n", b""):
                    pass  # trailers
                break
            size += n
            if size > _MAX_BODY:
                raise ValueError("body too large")
            parts.append(rfile.read(n))
            rfile.readline(1024)
        data = b"".join(parts)
    else:
        length = int(headers.get("Content-Length") or 0)
        if length > _MAX_BODY:
            raise ValueError("body too large")
        data = rfile.read(length) if length > 0 else b""
    return data


def _decoded(data: bytes, headers: Any) -> bytes:
    """The body without its Content-Encoding (gzip, deflate); ValueError if broken."""
    encoding = (headers.get("Content-Encoding") or "").lower()
    if encoding in ("gzip", "deflate"):
        import zlib

        d = zlib.decompressobj(zlib.MAX_WBITS | 32)  # gzip or zlib header
        try:
            data = d.decompress(data, _MAX_BODY)
        except zlib.error as exc:
            raise ValueError(f"bad {encoding} body") from exc
    return data


class Receiver:
    """A loopback OTLP/HTTP (JSON) receiver that writes exact usage records.

    ``Receiver(...)`` binds the socket; :meth:`start` serves from a daemon
    thread; :meth:`close` waits for the last export and returns warnings.
    With ``upstream`` (:func:`pass_through`: signal path -> the user's URL) it
    takes those signals in JSON or protobuf, records from them and forwards
    each request unchanged to the user's collector (:mod:`claudewrap.sources.otel_forward`,
    whose settings come from ``env``).
    """

    def __init__(self, *, session: str, journal: str | None = None,
                 attribution: dict[str, Any] | None = None, write: bool = True,
                 upstream: Mapping[str, str] | None = None,
                 env: Mapping[str, str] | None = None) -> None:
        self.session = session
        self.attribution = attribution or {}
        self.records: list[UsageRecord] = []
        self.claude_sessions: set[str] = set()
        self.request_ids: set[str] = set()
        self.rejected = 0  # requests we could not read (bad body, protobuf, ...)
        self._journal: LazyJournal | None = None
        if write:
            from claudewrap.store.lazy_journal import LazyJournal

            self._journal = LazyJournal(journal)
        self._token = os.urandom(6).hex()  # a path only the child knows
        self._lock = _thread.allocate_lock()  # threading.Lock, without threading
        self._seen: set[tuple[Any, ...]] = set()
        self._events = Tally()
        self._metrics = Tally()
        self._server: Any = None
        self._thread: threading.Thread | None = None
        self._ready: threading.Event | None = None  # made by start()
        self._connections = 0
        self._closed = False
        self._forwarder: Forwarder | None = None
        if upstream:
            from claudewrap.sources.otel_forward import Forwarder

            self._forwarder = Forwarder(upstream, os.environ if env is None else env)
        # _socket's socket: bind, listen, select and close are all it needs
        # before the HTTP server (_make_server) takes a socket.socket of it.
        self._sock = _socket.socket(_socket.AF_INET, _socket.SOCK_STREAM)
        try:
            self._sock.setsockopt(_socket.SOL_SOCKET, _socket.SO_REUSEADDR, 1)
            self._sock.bind(("127.0.0.1", 0))
            self._sock.listen(32)
        except OSError:
            self._sock.close()
            raise
        os.set_inheritable(self._sock.fileno(), False)
        self.port: int = self._sock.getsockname()[1]
        self._server_sock: Any = None  # the socket.socket the HTTP server accepts on

    @property
    def endpoint(self) -> str:
        return f"http://127.0.0.1:{self.port}/{self._token}"

    def child_env(self) -> dict[str, str]:
        """What the child's environment gets so that it exports here. When
        forwarding, only the endpoints of the forwarded signals: the user's
        other settings (protocol, headers, intervals, exporters) stay theirs."""
        if self._forwarder is not None:
            from claudewrap.sources.otel_forward import SIGNALS

            return {f"OTEL_EXPORTER_OTLP_{SIGNALS[signal]}_ENDPOINT": self.endpoint + signal
                    for signal in self._forwarder.urls}
        return {
            "CLAUDE_CODE_ENABLE_TELEMETRY": "1",
            "OTEL_METRICS_EXPORTER": "otlp",
            "OTEL_LOGS_EXPORTER": "otlp",
            "OTEL_EXPORTER_OTLP_PROTOCOL": "http/json",
            "OTEL_EXPORTER_OTLP_ENDPOINT": self.endpoint,
            "OTEL_EXPORTER_OTLP_METRICS_TEMPORALITY_PREFERENCE": "delta",
            "OTEL_LOGS_EXPORT_INTERVAL": str(LOGS_INTERVAL_MS),
            "OTEL_METRIC_EXPORT_INTERVAL": str(METRICS_INTERVAL_MS),
        }

    # -- serving -------------------------------------------------------------

    def start(self) -> Receiver:
        """Serve from a daemon thread (call it once the child runs: importing
        threading is ~3 ms; connections wait in the listen queue till then)."""
        import threading

        if self._thread is not None or self._closed:
            return self
        self._ready = threading.Event()
        self._thread = threading.Thread(target=self._serve, name="claudewrap-otel",
                                        daemon=True)
        self._thread.start()
        return self

    def _serve(self) -> None:
        import select

        # The HTTP server's modules load once the child connects or has run
        # for _SERVER_AFTER_SECONDS, whichever comes first.
        try:
            select.select([self._sock], [], [], _SERVER_AFTER_SECONDS)
        except (OSError, ValueError):
            return
        if self._closed:
            return
        assert self._ready is not None
        try:
            server = self._make_server()
        except Exception:  # noqa: BLE001 - never hurt the session; close() sees no server
            self._sock.close()  # the child's exporter is refused at once, never left hanging
            if self._server_sock is not None:
                self._server_sock.close()
            self._ready.set()
            return
        server.timeout = 0.05
        self._server = server
        self._ready.set()
        # handle_request() rather than serve_forever(): close() stops the loop
        # with a flag, whether or not the loop had started.
        while not self._closed:
            server.handle_request()

    def _make_server(self) -> Any:
        import socket
        from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

        receiver = self
        prefix = f"/{self._token}"

        class Handler(BaseHTTPRequestHandler):
            protocol_version = "HTTP/1.1"
            # The headers and the body of an answer are two writes: with Nagle,
            # a keep-alive client's delayed ACK held the body back, 44 ms per
            # export instead of 0.8 ms (measured with a keep-alive sender as
            # in bench/otel_forward.py; Claude Code keeps its connection alive).
            disable_nagle_algorithm = True

            def log_message(self, format: str, *args: Any) -> None:
                pass

            def _answer(self, status: int, body: bytes = b"{}",
                        content_type: str = "application/json") -> None:
                self.send_response(status)
                self.send_header("Content-Type", content_type)
                self.send_header("Content-Length", str(len(body)))
                self.end_headers()
                self.wfile.write(body)

            def do_POST(self) -> None:
                path = self.path.split("?", 1)[0]
                try:
                    body = _read_body(self.rfile, self.headers)
                except (ValueError, OSError, EOFError):
                    receiver.rejected += 1
                    self.close_connection = True
                    self._answer(400, b'{"message":"unreadable body"}')
                    return
                if not path.startswith(prefix + "/"):
                    self._answer(404, b'{"message":"not found"}')
                    return
                signal = path[len(prefix):]
                protobuf = "protobuf" in (self.headers.get("Content-Type") or "")
                if receiver._forwarder is not None:
                    self._forward(signal, body, protobuf)
                    return
                if protobuf:
                    # We ask for http/json; protobuf means someone else's settings.
                    receiver.rejected += 1
                    self._answer(415, b'{"message":"send OTLP as http/json"}')
                    return
                try:
                    receiver.ingest(signal, _decoded(body, self.headers))
                except ValueError:
                    receiver.rejected += 1
                    self._answer(400, b'{"message":"not OTLP JSON"}')
                    return
                self._answer(200)

            def _forward(self, signal: str, body: bytes, protobuf: bool) -> None:
                """Queue the request as it came for the user's collector, record
                from it, and answer with the collector's own answer if it comes
                soon, else 200 (the request is queued, and retried)."""
                from claudewrap.sources.otel_forward import REPLY_WAIT_SECONDS

                assert receiver._forwarder is not None
                job = receiver._forwarder.submit(signal, body, self.headers.items())
                if job is None:
                    self._answer(404, b'{"message":"not found"}')
                    return
                try:
                    receiver.ingest(signal, _decoded(body, self.headers), protobuf=protobuf)
                except ValueError:
                    receiver.rejected += 1  # the collector still gets it, as it was
                job.answered.wait(REPLY_WAIT_SECONDS)
                if job.answer is not None:
                    status, content_type, answer = job.answer
                    self._answer(status, answer, content_type or "application/json")
                elif protobuf:
                    self._answer(200, b"", "application/x-protobuf")
                else:
                    self._answer(200)

        class Server(ThreadingHTTPServer):
            daemon_threads = True
            block_on_close = False

            def get_request(self) -> Any:
                # Counted before accept() takes it off the listening socket:
                # from its arrival to shutdown_request() a connection is always
                # either pending there or counted, so close() never misses one.
                with receiver._lock:
                    receiver._connections += 1
                try:
                    return super().get_request()
                except BaseException:
                    with receiver._lock:
                        receiver._connections -= 1
                    raise

            def shutdown_request(self, request: Any) -> None:
                try:
                    super().shutdown_request(request)
                finally:
                    with receiver._lock:
                        receiver._connections -= 1

            def handle_error(self, request: Any, client_address: Any) -> None:
                pass  # a broken connection is not worth a traceback on the user's screen

        server = Server(("127.0.0.1", self.port), Handler, bind_and_activate=False)
        server.socket.close()
        # The same listening socket as a socket.socket (accept() is its own),
        # on an fd of its own: close() closes both.
        self._server_sock = socket.socket(fileno=os.dup(self._sock.fileno()))
        os.set_inheritable(self._server_sock.fileno(), False)
        server.socket = self._server_sock
        server.server_address = self._sock.getsockname()
        return server

    # -- turning payloads into records --------------------------------------

    def ingest(self, signal: str, body: bytes, protobuf: bool = False) -> list[UsageRecord]:
        """Handle one export (``/v1/logs`` or ``/v1/metrics``, OTLP JSON or with
        ``protobuf`` OTLP protobuf); the new records. ValueError if unreadable."""
        payload: Any
        if protobuf:
            from claudewrap.sources import otlp_protobuf

            read = {"/v1/logs": otlp_protobuf.logs_request,
                    "/v1/metrics": otlp_protobuf.metrics_request}.get(signal)
            payload = read(body) if read is not None else {}
        else:
            import json

            try:
                payload = json.loads(body) if body.strip() else {}
            except (ValueError, RecursionError):
                raise ValueError("not JSON") from None
        if signal == "/v1/logs":
            events = parse_logs(payload)
            # A number no record can hold (Infinity, 1e400, NaN) costs only its event.
            return self._add_events([e for e in events if e.event.problem() is None])
        if signal == "/v1/metrics":
            points = parse_metrics(payload)
            with self._lock:
                for p in points:
                    self._metrics.add_point(p)
                    if p.claude_session:
                        self.claude_sessions.add(p.claude_session)
        return []

    def _add_events(self, found: list[ApiRequest]) -> list[UsageRecord]:
        from claudewrap.store.records import UsageRecord

        fresh: list[UsageRecord] = []
        with self._lock:
            for item in found:
                e = item.event
                # An export retried after a timeout repeats its events.
                key: tuple[Any, ...] = (("rid", e.request_id) if e.request_id else
                                        ("seq", e.claude_session, item.sequence,
                                         *e.values_key()))
                if key in self._seen:
                    continue
                self._seen.add(key)
                if e.request_id:
                    self.request_ids.add(e.request_id)
                if e.claude_session:
                    self.claude_sessions.add(e.claude_session)
                k = (e.claude_session or "", e.model or "")
                for i, v in enumerate((e.input_tokens, e.output_tokens, e.cache_read_tokens,
                                       e.cache_write_tokens, e.cost_usd or 0.0)):
                    self._events.add(k, i, float(v))
                fresh.append(UsageRecord.from_event(
                    e, session=self.session, source="otel", attribution=self.attribution,
                    ts=item.ts))
            self._store(fresh)
        return fresh

    def _store(self, fresh: list[UsageRecord]) -> None:
        """Keep and write ``fresh`` (the caller holds the lock)."""
        if not fresh:
            return
        self.records.extend(fresh)
        if self._journal is not None:
            self._journal.append(fresh)

    # -- the end -------------------------------------------------------------

    def _connection_pending(self) -> bool:
        import select

        try:
            return bool(select.select([self._sock], [], [], 0)[0])
        except (OSError, ValueError):
            return False

    def close(self, grace: float = CLOSE_GRACE_SECONDS) -> str | None:
        """Wait (at most ``grace`` seconds) for the child's last export, stop,
        record what only the metrics saw. Returns the warning lines (one string) or None."""
        import select

        deadline = time.monotonic() + grace
        if self._ready is not None and (self._server is not None or self._connection_pending()):
            self._ready.wait(max(0.0, deadline - time.monotonic()))
        while self._server is not None and time.monotonic() < deadline:
            try:
                pending, _, _ = select.select([self._sock], [], [], 0)
            except (OSError, ValueError):
                break
            if not pending and self._connections <= 0:
                break
            time.sleep(0.002)
        self._closed = True
        if self._thread is not None and self._thread.is_alive():
            # Wake the loop now rather than at its next timeout. A plain connect:
            # create_connection() would resolve the address and load the idna codec.
            wake = _socket.socket(_socket.AF_INET, _socket.SOCK_STREAM)
            try:
                wake.settimeout(0.2)
                wake.connect(("127.0.0.1", self.port))
            except OSError:
                pass
            finally:
                wake.close()
            self._thread.join(0.5)
        self._sock.close()
        if self._server_sock is not None:
            self._server_sock.close()
        warnings: list[str] = []
        if self._forwarder is not None:
            # The forwarded requests get what is left of the same grace.
            warning = self._forwarder.close(deadline)
            if warning:
                warnings.append(warning)
        # Forwarding metrics without the log events: the metrics would only
        # repeat, without request ids, what the transcript gives per request.
        no_events = self._forwarder is not None and "/v1/logs" not in self._forwarder.urls
        with self._lock:
            missing = [] if self._metrics.empty() or no_events else missing_usage(
                self._events, self._metrics)
            if missing:
                from claudewrap.store.records import UsageRecord

                self._store([UsageRecord.from_event(e, session=self.session, source="otel",
                                                    attribution=self.attribution)
                             for e in missing])
        warning = self._journal.close() if self._journal is not None else None
        if warning:
            warnings.append(warning)
        return "\n".join(warnings) or None
