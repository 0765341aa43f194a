"""The usage record: one type, one JSON form, one schema version.

Every source (pty capture, manual entry, transcripts, OpenTelemetry, scrollback
scans) produces :class:`UsageRecord` objects; the journal stores them one JSON
object per line. Only counts, costs and names are ever stored, never text.
"""

from __future__ import annotations

import math
import time

from claudewrap.plain import field, fields, plain
from claudewrap.store import cjson

TYPE_CHECKING = False  # typing.TYPE_CHECKING without importing typing (3 ms a reader)
if TYPE_CHECKING:
    from datetime import datetime
    from typing import Any

SCHEMA_VERSION = 1

# What one plausible record holds (issue 13): whole, non-negative token counts of
# at most MAX_TOKENS per field, and a finite, non-negative cost of at most
# MAX_COST_USD. Both ceilings are generous on purpose: a running total of a
# whole session (kind "total") is the largest thing a record holds; the largest
# context windows are ~1-2M tokens a request, so 10^10 is thousands of full
# requests, and 10^10 tokens at the highest list rate ($75 per million) is
# $750,000, under the cost ceiling. Anything beyond is a printed line that only
# looks like usage (a file or log that claude displayed), or a bug: it is never
# written, and readers skip such a line and count it (`claudewrap journal check`
# lists it with the reason). The fast journal decoder (report._fast_decoder)
# holds its fields to the same bounds.
MAX_TOKENS = 10**10  # the messages below say 10^10 and $10^6
MAX_COST_USD = 10**6
COUNT_FIELDS = ("input_tokens", "output_tokens", "cache_read_tokens", "cache_write_tokens")

SOURCES = ("pty", "manual", "transcript", "otel", "scan", "statusline", "claude_json")
KINDS = ("delta", "total")


def count_value(name: str, value: Any) -> int:
    """``value`` as a plausible token count; ValueError saying why it is not one."""
    if isinstance(value, bool) or not isinstance(value, (int, float)):
        raise ValueError(f"{name} is not a number")  # noqa: TRY004 - bad data, one error type
    if isinstance(value, float):
        if not math.isfinite(value):
            raise ValueError(f"{name} is not a finite number ({value})")
        if not value.is_integer():
            raise ValueError(f"{name} is not a whole number ({value})")
    if value < 0:
        raise ValueError(f"{name} is negative ({_short(value)})")
    if value > MAX_TOKENS:
        raise ValueError(f"{name} is above 10^10 per record ({_short(value)})")
    return int(value)


def cost_value(value: Any) -> float:
    """``value`` as a plausible cost in USD; ValueError saying why it is not one."""
    if isinstance(value, bool) or not isinstance(value, (int, float)):
        raise ValueError("cost_usd is not a number")  # noqa: TRY004 - as above
    if isinstance(value, float) and not math.isfinite(value):
        raise ValueError(f"cost_usd is not a finite number ({value})")
    if value < 0:
        raise ValueError(f"cost_usd is negative ({_short(value)})")
    if value > MAX_COST_USD:
        raise ValueError(f"cost_usd is above $10^6 per record ({_short(value)})")
    return float(value)


def usage_problem(counts: tuple[int, int, int, int], cost: float | None) -> str | None:
    """Why these numbers cannot be one record (None when they can)."""
    try:
        for name, value in zip(COUNT_FIELDS, counts):
            count_value(name, value)
        if cost is not None:
            cost_value(cost)
    except ValueError as exc:
        return str(exc)
    return None


def _short(value: float) -> str:
    """A number for a message: a 300-digit count as ``1e+299``, not 300 digits."""
    try:
        return f"{value:g}" if abs(value) >= 1e15 else f"{value:,}"
    except OverflowError:  # an int beyond any float
        return "more than 1e+308"


def iso_utc(when: datetime) -> str:
    """An aware datetime as the journal writes times: UTC ISO-8601 with milliseconds
    and a ``Z`` suffix (``2026-11-30T18:22:24.801Z``; comparable as strings)."""
    from datetime import timezone

    when = when.astimezone(timezone.utc)
    return when.strftime("%Y-%m-%dT%H:%M:%S.") + f"{when.microsecond // 1000:03d}Z"


def iso_of_epoch(epoch: float) -> str:
    """Unix seconds in the journal's time form (see :func:`iso_utc`): the same
    text as ``iso_utc(datetime.fromtimestamp(epoch, timezone.utc))`` (microseconds
    rounded half to even first, as datetime does), without importing datetime
    (2.4 ms of a status-line call)."""
    frac, whole = math.modf(epoch)
    micro = round(frac * 1e6)
    seconds = int(whole)
    if micro >= 1_000_000:
        seconds, micro = seconds + 1, micro - 1_000_000
    elif micro < 0:
        seconds, micro = seconds - 1, micro + 1_000_000
    return time.strftime("%Y-%m-%dT%H:%M:%S", time.gmtime(seconds)) + f".{micro // 1000:03d}Z"


def utc_now_iso() -> str:
    """Now in the journal's time form (see :func:`iso_utc`)."""
    return iso_of_epoch(time.time())


@plain
class UsageEvent:
    """What a pattern found in the output: counts and cost, no attribution.

    ``kind`` is ``delta`` (add it up) or ``total`` (a running total of the
    session for ``model``). ``approximate`` is true when the counts were printed
    rounded (``1.2k``). ``cost_usd`` is None when the output printed no cost.
    """

    kind: str = "delta"
    model: str | None = None
    input_tokens: int = 0
    output_tokens: int = 0
    cache_read_tokens: int = 0
    cache_write_tokens: int = 0
    cost_usd: float | None = None
    approximate: bool = False
    pattern: str = ""
    request_id: str | None = None
    claude_session: str | None = None
    agent: str | None = None  # see UsageRecord
    command: str | None = None

    def values_key(self) -> tuple[Any, ...]:
        """The numbers that make two events 'the same' (a TUI redraw)."""
        return (
            self.kind,
            self.model,
            self.input_tokens,
            self.output_tokens,
            self.cache_read_tokens,
            self.cache_write_tokens,
            self.cost_usd,
            self.request_id,
        )

    def problem(self) -> str | None:
        """Why this event cannot be recorded (see MAX_TOKENS), or None."""
        return usage_problem((self.input_tokens, self.output_tokens, self.cache_read_tokens,
                              self.cache_write_tokens), self.cost_usd)


@plain
class UsageRecord:
    """One line of the journal (schema v1, see DESIGN.md).

    ``agent`` and ``command`` say where in Claude Code the tokens went (exact
    sources only: OpenTelemetry and transcripts). ``agent``: the subagent that
    made the request (``general-purpose``, a custom agent's name), or one of
    Claude Code's own side requests by its ``query_source`` (``compact``,
    ``generate_session_title``, ...); None for the main thread, which readers
    show as ``main``. ``command``: the slash command or skill whose turn the
    request belongs to (``review`` for ``/review``); None for a typed prompt.
    Both are optional fields of schema v1: older lines without them read as
    ``main`` and no command, and older readers ignore them.
    """

    ts: str
    session: str
    source: str
    kind: str = "delta"
    model: str | None = None
    input_tokens: int = 0
    output_tokens: int = 0
    cache_read_tokens: int = 0
    cache_write_tokens: int = 0
    cost_usd: float | None = None
    cost_estimated: bool = False
    approximate: bool = False
    project: str | None = None
    cwd: str | None = None
    host: str | None = None
    tmux_pane: str | None = None
    tmux_session: str | None = None
    screen_session: str | None = None
    pattern: str | None = None
    request_id: str | None = None
    claude_session: str | None = None
    agent: str | None = None
    command: str | None = None
    tags: dict[str, str] = field(default_factory=dict)
    v: int = SCHEMA_VERSION

    @classmethod
    def from_event(cls, event: UsageEvent, *, session: str, source: str,
                   attribution: dict[str, Any] | None = None,
                   ts: str | None = None) -> UsageRecord:
        """A record for ``event``, attributed with ``attribution`` (see context.py)."""
        rec = cls(
            ts=ts or utc_now_iso(),
            session=session,
            source=source,
            kind=event.kind,
            model=event.model,
            input_tokens=event.input_tokens,
            output_tokens=event.output_tokens,
            cache_read_tokens=event.cache_read_tokens,
            cache_write_tokens=event.cache_write_tokens,
            cost_usd=event.cost_usd,
            approximate=event.approximate,
            pattern=event.pattern or None,
            request_id=event.request_id,
            claude_session=event.claude_session,
            agent=event.agent,
            command=event.command,
        )
        for key, value in (attribution or {}).items():
            if key == "tags":
                rec.tags = dict(value)
            elif key in _FIELD_NAMES:
                setattr(rec, key, value)
        return rec

    def to_dict(self) -> dict[str, Any]:
        # Not asdict(): its deep copy was 2/3 of `claudewrap import` (bench/import_bench.py,
        # 27 of 40 s for 104,072 records); the only mutable field is tags, of strings.
        d = {name: getattr(self, name) for name in _FIELD_ORDER}
        d["tags"] = dict(self.tags)
        # Keep lines short: drop empty optional fields, keep counts and flags.
        return {k: v for k, v in d.items() if v is not None and v != {}}

    def problem(self) -> str | None:
        """Why this record is not plausible (see MAX_TOKENS), or None."""
        return usage_problem((self.input_tokens, self.output_tokens, self.cache_read_tokens,
                              self.cache_write_tokens), self.cost_usd)

    def to_json(self) -> str:
        """The journal line for this record, without the newline.

        ValueError for a record that readers would skip (:meth:`problem`): a
        line every reader skips is never written, and no line holds NaN or
        Infinity, which are not JSON.
        """
        problem = self.problem()
        if problem is not None:
            raise ValueError(f"not a plausible record: {problem}")
        return cjson.dumps(self.to_dict(), ensure_ascii=False, separators=(",", ":"),
                           allow_nan=False)

    @classmethod
    def from_dict(cls, d: dict[str, Any]) -> UsageRecord:
        """Tolerant parse: unknown fields are ignored, missing ones defaulted.

        Raises ValueError, saying why, when the object is not a usage record at
        all or not a plausible one (see MAX_TOKENS): every reader skips and
        counts such a line, whoever wrote it.
        """
        if not isinstance(d, dict):
            raise ValueError("not a JSON object")  # noqa: TRY004 - bad data, one error type for callers
        if not isinstance(d.get("ts"), str) or not isinstance(d.get("session"), str):
            raise ValueError("missing ts or session")  # noqa: TRY004 - as above
        kwargs: dict[str, Any] = {}
        for name in _FIELD_ORDER:
            if name not in d:
                continue
            value = d[name]
            if name in _COUNT_FIELDS:
                value = count_value(name, value)
            elif name == "v":
                if isinstance(value, bool) or not isinstance(value, (int, float)) or (
                        isinstance(value, float) and not value.is_integer()):
                    raise ValueError("v is not a whole number")
                value = int(value)
            elif name == "cost_usd" and value is not None:
                value = cost_value(value)
            elif name == "tags":
                value = {str(k): str(v) for k, v in value.items()} if isinstance(value, dict) else {}
            elif name in _NAME_FIELDS:
                value = value if isinstance(value, str) and value else None
            kwargs[name] = value
        kwargs.setdefault("source", "pty")
        if kwargs.get("kind") not in KINDS:
            kwargs["kind"] = "delta"
        return cls(**kwargs)

    @classmethod
    def from_json(cls, line: str | bytes) -> UsageRecord:
        return cls.from_dict(cjson.loads(line))


_FIELD_ORDER = fields(UsageRecord)
_FIELD_NAMES = set(_FIELD_ORDER)
_COUNT_FIELDS = frozenset(COUNT_FIELDS)
_NAME_FIELDS = frozenset(("agent", "command"))
MAIN_AGENT = "main"  # what a record without an agent is shown as
