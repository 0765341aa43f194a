"""The usage record: one type, one JSON form, one schema version.

Every source (pty capture, manual entry, transcripts, OpenTelemetry, scrollback
scans) produces :class:`UsageRecord` objects; the journal stores them one JSON
object per line. Only counts, costs and names are ever stored, never text.
"""

from __future__ import annotations

import json
from dataclasses import asdict, dataclass, field, fields
from datetime import datetime, timezone
from typing import Any

SCHEMA_VERSION = 1

SOURCES = ("pty", "manual", "transcript", "otel", "scan")
KINDS = ("delta", "total")


def utc_now_iso() -> str:
    """UTC ISO-8601 with milliseconds and a ``Z`` suffix."""
    now = datetime.now(timezone.utc)
    return now.strftime("%Y-%m-%dT%H:%M:%S.") + f"{now.microsecond // 1000:03d}Z"


@dataclass
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


@dataclass
class UsageRecord:
    """One line of the journal (schema v1, see DESIGN.md)."""

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
        )
        for key, value in (attribution or {}).items():
            if key == "tags":
                rec.tags = dict(value)
            elif key in _FIELD_NAMES:
                setattr(rec, key, value)
        return rec

    def to_dict(self) -> dict[str, Any]:
        d = asdict(self)
        # Keep lines short: drop empty optional fields, keep counts and flags.
        return {k: v for k, v in d.items() if v is not None and v != {}}

    def to_json(self) -> str:
        """The journal line for this record, without the newline."""
        return json.dumps(self.to_dict(), ensure_ascii=False, separators=(",", ":"))

    @classmethod
    def from_dict(cls, d: dict[str, Any]) -> UsageRecord:
        """Tolerant parse: unknown fields are ignored, missing ones defaulted.

        Raises ValueError when the object is not a usage record at all.
        """
        if not isinstance(d, dict):
            raise ValueError("not a JSON object")  # noqa: TRY004 - bad data, one error type for callers
        if not isinstance(d.get("ts"), str) or not isinstance(d.get("session"), str):
            raise ValueError("missing ts or session")  # noqa: TRY004 - as above
        kwargs: dict[str, Any] = {}
        for f in fields(cls):
            if f.name not in d:
                continue
            value = d[f.name]
            if f.name in _INT_FIELDS:
                if isinstance(value, bool) or not isinstance(value, (int, float)):
                    raise ValueError(f"{f.name} is not a number")
                value = int(value)
            elif f.name == "cost_usd" and value is not None:
                if isinstance(value, bool) or not isinstance(value, (int, float)):
                    raise ValueError("cost_usd is not a number")
                value = float(value)
            elif f.name == "tags":
                value = {str(k): str(v) for k, v in value.items()} if isinstance(value, dict) else {}
            kwargs[f.name] = value
        kwargs.setdefault("source", "pty")
        if kwargs.get("kind") not in KINDS:
            kwargs["kind"] = "delta"
        return cls(**kwargs)

    @classmethod
    def from_json(cls, line: str | bytes) -> UsageRecord:
        return cls.from_dict(json.loads(line))


_FIELD_NAMES = {f.name for f in fields(UsageRecord)}
_INT_FIELDS = {"input_tokens", "output_tokens", "cache_read_tokens", "cache_write_tokens", "v"}
