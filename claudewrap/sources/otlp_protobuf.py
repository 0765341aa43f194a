"""OTLP protobuf bodies (``http/protobuf``) read into the OTLP/JSON shapes that
:func:`claudewrap.sources.otel.parse_logs` and :func:`claudewrap.sources.otel.parse_metrics` read.

Claude Code exports ``http/protobuf`` when its user asks for it (and by
default from 2.1.332 on, when no protocol is set). The wrapper receives those
bodies when it forwards them to the user's own collector (issue 18) and reads
the usage from them as from JSON.

A hand decoder of the few messages and fields those two functions look at
(``opentelemetry-proto`` would add the ``protobuf`` runtime to the install and
~100 generated classes for these dozen fields). Field numbers are those of
opentelemetry-proto v1 (``opentelemetry/proto/{logs,metrics,common}/v1/*.proto``);
everything else (resources, scopes, exemplars, histograms, array and map values)
is skipped unread. A truncated or malformed body raises ValueError.
"""

from __future__ import annotations

import struct

TYPE_CHECKING = False
if TYPE_CHECKING:
    from collections.abc import Iterator
    from typing import Any

# Wire types
_VARINT, _I64, _LEN, _I32 = 0, 1, 2, 5


def _varint(buf: bytes, pos: int) -> tuple[int, int]:
    result = shift = 0
    while True:
        if pos >= len(buf):
            raise ValueError("truncated varint")
        b = buf[pos]
        pos += 1
        result |= (b & 0x7F) << shift
        if not b & 0x80:
            return result, pos
        shift += 7
        if shift > 63:
            raise ValueError("varint too long")


def _fields(buf: bytes) -> Iterator[tuple[int, int, Any]]:
    """(field number, wire type, value) of each field of one message: varints as
    int, fixed64 and fixed32 as their raw bytes, length-delimited as bytes."""
    pos, end = 0, len(buf)
    while pos < end:
        key, pos = _varint(buf, pos)
        number, wire = key >> 3, key & 7
        if number == 0:
            raise ValueError("field number 0")
        value: Any
        if wire == _VARINT:
            value, pos = _varint(buf, pos)
        elif wire == _I64:
            value, pos = buf[pos:pos + 8], pos + 8
        elif wire == _LEN:
            size, pos = _varint(buf, pos)
            value, pos = buf[pos:pos + size], pos + size
        elif wire == _I32:
            value, pos = buf[pos:pos + 4], pos + 4
        else:
            raise ValueError(f"wire type {wire}")
        if pos > end:
            raise ValueError("truncated field")
        yield number, wire, value


def _signed64(value: int) -> int:
    return value - (1 << 64) if value >= 1 << 63 else value


def _fixed64(raw: Any) -> int:
    return int(struct.unpack("<Q", raw)[0])


def _double(raw: Any) -> float:
    return float(struct.unpack("<d", raw)[0])


def _text(raw: Any) -> str:
    return bytes(raw).decode("utf-8", "replace")


def _any_value(buf: bytes) -> dict[str, Any]:
    """common.v1.AnyValue: string 1, bool 2, int64 3, double 4 (others skipped)."""
    for number, wire, value in _fields(buf):
        if number == 1 and wire == _LEN:
            return {"stringValue": _text(value)}
        if number == 2 and wire == _VARINT:
            return {"boolValue": bool(value)}
        if number == 3 and wire == _VARINT:
            return {"intValue": _signed64(value)}
        if number == 4 and wire == _I64:
            return {"doubleValue": _double(value)}
    return {}


def _key_value(buf: bytes) -> dict[str, Any]:
    """common.v1.KeyValue: key 1, value 2."""
    out: dict[str, Any] = {"key": "", "value": {}}
    for number, wire, value in _fields(buf):
        if number == 1 and wire == _LEN:
            out["key"] = _text(value)
        elif number == 2 and wire == _LEN:
            out["value"] = _any_value(value)
    return out


def _log_record(buf: bytes) -> dict[str, Any]:
    """logs.v1.LogRecord: time_unix_nano 1 (fixed64), body 5, attributes 6."""
    out: dict[str, Any] = {"attributes": []}
    for number, wire, value in _fields(buf):
        if number == 1 and wire == _I64:
            out["timeUnixNano"] = str(_fixed64(value))
        elif number == 5 and wire == _LEN:
            out["body"] = _any_value(value)
        elif number == 6 and wire == _LEN:
            out["attributes"].append(_key_value(value))
    return out


def _repeated(buf: bytes, number: int, read: Any) -> list[Any]:
    return [read(value) for n, wire, value in _fields(buf) if n == number and wire == _LEN]


def logs_request(body: bytes) -> dict[str, Any]:
    """An ``ExportLogsServiceRequest`` as the OTLP/JSON dict with the fields
    :func:`claudewrap.sources.otel.parse_logs` reads (resource_logs 1 > scope_logs 2 >
    log_records 2)."""
    return {"resourceLogs": _repeated(body, 1, lambda rl: {
        "scopeLogs": _repeated(rl, 2, lambda sl: {
            "logRecords": _repeated(sl, 2, _log_record)})})}


def _number_point(buf: bytes) -> dict[str, Any]:
    """metrics.v1.NumberDataPoint: start 2, time 3 (fixed64), as_double 4,
    as_int 6 (sfixed64), attributes 7."""
    out: dict[str, Any] = {"attributes": []}
    for number, wire, value in _fields(buf):
        if number == 2 and wire == _I64:
            out["startTimeUnixNano"] = str(_fixed64(value))
        elif number == 3 and wire == _I64:
            out["timeUnixNano"] = str(_fixed64(value))
        elif number == 4 and wire == _I64:
            out["asDouble"] = _double(value)
        elif number == 6 and wire == _I64:
            out["asInt"] = str(_signed64(_fixed64(value)))
        elif number == 7 and wire == _LEN:
            out["attributes"].append(_key_value(value))
    return out


def _number_data(buf: bytes) -> dict[str, Any]:
    """metrics.v1.Sum or Gauge: data_points 1, aggregation_temporality 2 (Sum)."""
    out: dict[str, Any] = {"dataPoints": []}
    for number, wire, value in _fields(buf):
        if number == 1 and wire == _LEN:
            out["dataPoints"].append(_number_point(value))
        elif number == 2 and wire == _VARINT:
            out["aggregationTemporality"] = value
    return out


def _metric(buf: bytes) -> dict[str, Any]:
    """metrics.v1.Metric: name 1, gauge 5, sum 7 (histograms etc. skipped)."""
    out: dict[str, Any] = {}
    for number, wire, value in _fields(buf):
        if number == 1 and wire == _LEN:
            out["name"] = _text(value)
        elif number == 5 and wire == _LEN:
            out["gauge"] = _number_data(value)
        elif number == 7 and wire == _LEN:
            out["sum"] = _number_data(value)
    return out


def metrics_request(body: bytes) -> dict[str, Any]:
    """An ``ExportMetricsServiceRequest`` as the OTLP/JSON dict with the fields
    :func:`claudewrap.sources.otel.parse_metrics` reads (resource_metrics 1 >
    scope_metrics 2 > metrics 2)."""
    return {"resourceMetrics": _repeated(body, 1, lambda rm: {
        "scopeMetrics": _repeated(rm, 2, lambda sm: {
            "metrics": _repeated(sm, 2, _metric)})})}
