"""How fast the journal appends and reads, on this machine.

    python bench/journal_bench.py [N]
"""

from __future__ import annotations

import sys
import tempfile
import time
from pathlib import Path

from claudewrap.store.journal import JournalWriter, append_records, check, read_records
from claudewrap.store.records import UsageRecord


def record(i: int) -> UsageRecord:
    return UsageRecord(ts="2025-01-02T03:04:05.678Z", session="bench", source="pty",
                       model="claude-sonnet-4-5", input_tokens=i, output_tokens=i // 3,
                       cost_usd=0.01, project="claudewrap", cwd="/home/u/src/claudewrap",
                       host="box", tmux_pane="%1", pattern="status-line")


def rate(label: str, count: int, seconds: float) -> None:
    print(f"{label:<40} {count / seconds:>12,.0f} /s   ({count:,} in {seconds:.2f} s)")


def main() -> None:
    n = int(sys.argv[1]) if len(sys.argv) > 1 else 20_000
    with tempfile.TemporaryDirectory() as tmp:
        path = Path(tmp) / "journal.jsonl"
        records = [record(i) for i in range(n)]

        t = time.perf_counter()
        for r in records:
            append_records(path, [r])
        rate("append_records, 1 record per call", n, time.perf_counter() - t)

        writer = JournalWriter(path)
        t = time.perf_counter()
        for r in records:
            writer.append([r])
        rate("JournalWriter.append, 1 record per call", n, time.perf_counter() - t)

        t = time.perf_counter()
        for i in range(0, n, 100):
            append_records(path, records[i:i + 100])
        rate("append_records, 100 records per call", n, time.perf_counter() - t)

        total = 3 * n
        t = time.perf_counter()
        got = sum(1 for _ in read_records(path))
        rate("read_records", got, time.perf_counter() - t)
        assert got == total and check(path).skipped == 0
        print(f"journal: {path.stat().st_size / total:.0f} bytes per record")


if __name__ == "__main__":
    main()
