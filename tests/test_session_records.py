"""`cost --session` finds every record of a session however the journal's blocks
fall: ids cut by a block's end, lines longer than a block, a line still being
written, ids spelled with \\u escapes by another writer."""

from __future__ import annotations

import json
import os
from pathlib import Path

import pytest

from claudewrap import api
from claudewrap.store.journal import parse_line
from claudewrap.store.records import UsageRecord


def naive(path: Path, sid: str) -> list[UsageRecord]:
    out = []
    for line in path.read_bytes().split(b"\n")[:-1]:
        rec = parse_line(line)
        if rec is not None and sid in (rec.session, rec.claude_session):
            out.append(rec)
    return out


@pytest.mark.parametrize("block", [97, 250, 4096, 8 << 20])
def test_every_record_of_the_session_is_found_across_blocks(tmp_path: Path, block: int,
                                                            monkeypatch: pytest.MonkeyPatch
                                                            ) -> None:
    monkeypatch.setattr(api, "_SCAN_BLOCK", block)
    sid = "séance-1"
    lines = []
    for n in range(400):
        session = sid if n % 7 == 0 else f"other-{n % 5}"
        rec = UsageRecord(ts=f"2026-07-01T10:{n // 60:02d}:{n % 60:02d}.000Z", session=session,
                          source="pty", model="claude-sonnet-4-5", input_tokens=n,
                          claude_session=sid if n % 11 == 0 else None,
                          project="p" * (n % 3 * 150))  # some lines longer than a block
        text = rec.to_json()
        if n % 13 == 0:  # another writer: ASCII escapes
            text = json.dumps(json.loads(text), ensure_ascii=True, separators=(",", ":"))
        lines.append(text + "\n")
    lines.append("not json " + sid + "\n")
    path = tmp_path / "journal.jsonl"
    path.write_text("".join(lines) + UsageRecord(  # a line being written: no newline yet
        ts="2026-07-01T11:00:00.000Z", session=sid, source="pty").to_json())
    fd = os.open(path, os.O_RDONLY)
    try:
        found = api._session_records(fd, sid)
    finally:
        os.close(fd)
    assert found == naive(path, sid)
    assert len(found) == len([n for n in range(400) if n % 7 == 0 or n % 11 == 0])
