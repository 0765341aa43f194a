"""The webhook per record: a wrapped run's usage POSTed as it is recorded.

Opt-in, in ``config.toml`` beside the budget alerts (same URL and headers)::

    [alerts]
    webhook_url = "https://example.invalid/hook"
    each_record = true

:func:`start` (called by the runner before ``claude`` starts) launches one
detached sender per wrapped run and keeps the write end of a pipe to it; the
wrapper writes the job to that pipe once, then never waits on the sender and
never touches the network. The sender follows the journal from where it ended when
the run began (:class:`claudewrap.store.tail.JournalTail`) and takes the run's
records, whichever source wrote them (the screen capture, OpenTelemetry, the
transcripts read at exit): what it sends is what the journal holds. It POSTs
what it has at most once a second (a second from the end of one POST to the
start of the next). When the pipe closes (the run is over, or
the wrapper died) it reads the journal a last time, sends the rest and exits;
the shell prompt does not wait for that.

A POST that fails (no answer in ``budget.WEBHOOK_TIMEOUT`` seconds, a refused
connection, a status other than 2xx) keeps its records: they go again, with
those recorded since, after 1, 2, 4 and 8 seconds; records sent
:data:`ATTEMPTS` times without success are dropped (the next body's
``tokens``/``cost`` still count them). A batch that got its 2xx is never sent
again. Each record carries an ``id`` (the run's session and its number in the
run) for a receiver that must not count one twice when an answer came too late.

The body (:func:`body`) keeps the seed's ``{"tokens": N, "cost": X}`` at the top:
what the batch adds to the run's usage as every report counts it (the summing
rule, claudewrap.usage.rule), so a receiver that adds up ``tokens`` and ``cost`` gets
the run's total. ``records`` lists the journal records themselves, without any
text from the conversation (there is none in the journal).
"""

from __future__ import annotations

import os
import sys

TYPE_CHECKING = False  # typing.TYPE_CHECKING without importing typing (launch path)
if TYPE_CHECKING:
    from pathlib import Path
    from typing import Any

    from claudewrap.store.records import UsageRecord

INTERVAL = 1.0  # seconds between the end of one POST and the start of the next, at least
POLL = 0.25  # seconds between looks at the journal
ATTEMPTS = 5  # POSTs of the same records before they are dropped (after 1+2+4+8 s)
MAX_RECORDS = 1000  # per body; more wait for the next second
LINGER = 120.0  # seconds the sender may go on after the run ended, at most


class Sender:
    """The wrapper's end of one run's sender: the pipe whose closing ends the run."""

    def __init__(self, pid: int, pipe: int) -> None:
        self.pid = pid
        self._pipe: int | None = pipe

    def close(self) -> None:
        """The run is over: the sender sends what is left, on its own."""
        if self._pipe is not None:
            os.close(self._pipe)
            self._pipe = None
        try:  # the process started has forked the sender and exited (_main): reap it
            os.waitpid(self.pid, os.WNOHANG)
        except ChildProcessError:
            pass


def start(config: str | os.PathLike[str] | None, *, session: str,
          journal: str | os.PathLike[str],
          offset: int) -> Sender | None:
    """The sender of this run's records when the config file mentions
    ``each_record``; else None, having read nothing but that file.

    The sender itself loads the config (``budget.load_config``) and exits at
    once unless ``[alerts] each_record = true``: the wrapper imports nothing
    for it and ``claude`` starts without waiting for it (a config that does not
    load is reported by the budget check at the end of the run).
    """
    from claudewrap.store.config import config_file

    path = os.fspath(config) if config is not None else config_file()
    try:
        with open(path, "rb") as fh:
            if b"each_record" not in fh.read():
                return None
    except OSError:
        return None
    from _json import encode_basestring_ascii as quote  # json.dumps' strings, without json

    job = (f'{{"config": {quote(path)}, "session": {quote(session)}, '
           f'"journal": {quote(os.fspath(journal))}, "offset": {int(offset)}}}')
    return _spawn(job.encode() + b"\n")


def _spawn(job: bytes) -> Sender | None:
    """``python -m claudewrap.export.record_hook`` in a session of its own, the job and
    then the open pipe on its stdin, nothing on its stdout and stderr.
    posix_spawn: subprocess would add its import to the launch path."""
    if not sys.executable:
        return None
    from claudewrap import child_env

    env = child_env()
    read_end, write_end = os.pipe()  # neither is inherited by claude (O_CLOEXEC)
    try:
        null = os.open(os.devnull, os.O_RDWR)
        try:
            pid = os.posix_spawn(
                sys.executable, [sys.executable, "-m", "claudewrap.export.record_hook"], env,
                file_actions=[(os.POSIX_SPAWN_DUP2, read_end, 0),
                              (os.POSIX_SPAWN_DUP2, null, 1),
                              (os.POSIX_SPAWN_DUP2, null, 2)],
                setsid=True)
        finally:
            os.close(null)
    except OSError:
        os.close(write_end)
        return None
    finally:
        os.close(read_end)
    try:
        os.write(write_end, job)  # a few hundred bytes: fits the pipe
    except OSError:
        pass
    return Sender(pid, write_end)


# --- the sender process ------------------------------------------------------------------


def record_json(rec: UsageRecord, rid: str) -> dict[str, Any]:
    """One record of a body: counts, cost, names; never text from the conversation."""
    from claudewrap.usage.pricing import cost_of

    cost, estimated = cost_of(rec)
    out: dict[str, Any] = {
        "id": rid, "ts": rec.ts, "model": rec.model, "kind": rec.kind, "source": rec.source,
        "input_tokens": rec.input_tokens, "output_tokens": rec.output_tokens,
        "cache_read_tokens": rec.cache_read_tokens,
        "cache_write_tokens": rec.cache_write_tokens,
        "cost_usd": cost,
        "cost_estimated": estimated, "session": rec.session,
        "claude_session": rec.claude_session, "project": rec.project, "host": rec.host,
        "agent": rec.agent, "command": rec.command, "request_id": rec.request_id,
    }
    if rec.tags:
        out["tags"] = dict(rec.tags)
    return out


def body(records: list[dict[str, Any]], *, run: list[UsageRecord], before: tuple[int, float],
         session: str, seq: int) -> dict[str, Any]:
    """The JSON body of one POST.

    ``run``: all the run's records so far; ``before``: the run's (tokens, cost)
    as the last successful POST said. ``tokens``/``cost`` are the difference.
    """
    from claudewrap.store.records import utc_now_iso
    from claudewrap.usage.report import summarize

    total = summarize(run).total
    # 10 places: exact for list prices (per million tokens), without float noise
    # such as 0.30000000000000004; 6 would drop what a cache read costs.
    run_cost = round(total.cost_usd, 10)
    first = run[0] if run else None
    return {
        "event": "usage",
        "tokens": total.tokens - before[0],
        "cost": round(run_cost - before[1], 10),
        "run_tokens": total.tokens,
        "run_cost": run_cost,
        # Part of run_cost priced by claudewrap from list prices, not printed by Claude Code.
        "run_cost_estimated": round(total.cost_estimated_usd, 10),
        # Records of models without a price: run_cost leaves them out (a lower bound).
        "run_unpriced_records": total.unpriced_records,
        "session": session,
        "project": first.project if first else None,
        "host": first.host if first else None,
        "seq": seq,
        "ts": utc_now_iso(),
        "records": records,
    }


class _Follower:
    """The run's records as the journal gets them, each once (a journal replaced
    while the run goes on is read again from its start: known lines are skipped)."""

    def __init__(self, journal: Path, offset: int, session: str) -> None:
        from claudewrap.store.tail import JournalTail, quoted_forms

        self.tail = JournalTail(journal, start=offset)
        self.session = session
        self._needles = quoted_forms(session)
        self._seen: set[bytes] = set()
        self.records: list[UsageRecord] = []

    def poll(self) -> list[tuple[int, UsageRecord]]:
        """The run's records appended since the last poll, each with its number
        in the run (1, 2, ...: the journal's order)."""
        from claudewrap.store.journal import parse_line

        try:
            data = self.tail.poll().data
        except OSError:
            return []
        fresh = []
        for line in data.splitlines():
            if not any(n in line for n in self._needles) or line in self._seen:
                continue
            rec = parse_line(line)
            if rec is not None and rec.session == self.session:
                self._seen.add(line)
                self.records.append(rec)
                fresh.append((len(self.records), rec))
        return fresh


def _stdin_closed(timeout: float) -> bool:
    """Wait up to ``timeout`` for the wrapper's pipe; True once it is closed."""
    import select

    ready, _, _ = select.select([0], [], [], max(0.0, timeout))
    if not ready:
        return False
    try:
        return not os.read(0, 4096)
    except OSError:
        return True


def serve(job: dict[str, Any]) -> int:
    """The sender's loop: follow the journal, POST at most once per INTERVAL,
    retry failed batches, flush and return when stdin closes (0: all sent)."""
    import time
    from pathlib import Path

    from claudewrap.export.budget import WEBHOOK_TIMEOUT, post

    now = time.monotonic
    session = job["session"]
    follower = _Follower(Path(job["journal"]), int(job["offset"]), session)
    # (record json, its number in the run, failed attempts), in the journal's order
    pending: list[tuple[dict[str, Any], int, int]] = []
    sent = (0, 0.0)  # the run's tokens and cost as the last successful body said
    next_post = 0.0
    seq = 0
    dropped = 0
    ended_at: float | None = None
    while True:
        if ended_at is None:
            wait = POLL if not pending else min(POLL, max(0.0, next_post - now()))
            if _stdin_closed(wait):
                ended_at = now()
        pending += [(record_json(rec, f"{session}:{n}"), n, 0) for n, rec in follower.poll()]
        if ended_at is not None:
            if not pending or now() - ended_at > LINGER:
                return 0 if not dropped and not pending else 1
            time.sleep(max(0.0, next_post - now()))
        if not pending or now() < next_post:
            continue
        batch = pending[:MAX_RECORDS]
        seq += 1
        # The run's usage up to this batch's last record (records dropped before count).
        payload = body([r for r, _, _ in batch], run=follower.records[:batch[-1][1]],
                       before=sent, session=session, seq=seq)
        if post(job["url"], job.get("headers") or {}, payload, timeout=WEBHOOK_TIMEOUT,
                retries=0):
            del pending[:len(batch)]
            sent = (payload["run_tokens"], payload["run_cost"])
            next_post = now() + INTERVAL
            continue
        seq -= 1  # the next body takes this one's number: receivers see 1, 2, 3 ...
        failures = batch[0][2] + 1
        pending[:len(batch)] = [(r, n, tries + 1) for r, n, tries in batch]
        if failures >= ATTEMPTS:
            kept = [p for p in pending if p[2] < ATTEMPTS]
            dropped += len(pending) - len(kept)
            pending = kept
            failures = 0
        # 1, 2, 4, 8 s after the 1st..4th failure; a fresh batch after a drop: INTERVAL.
        next_post = now() + (max(INTERVAL, 2.0 ** (failures - 1)) if failures else INTERVAL)


def _main() -> int:
    """``python -m claudewrap.export.record_hook``: the job as a JSON line on stdin, then
    stdin stays open for as long as the run goes on."""
    import json

    # Detach: the wrapper reaps this process at the end of the run (Sender.close),
    # the sender goes on as init's child and leaves no zombie in a long-lived
    # program that runs claude many times (claudewrap.api.run_claude).
    if os.fork():
        os._exit(0)
    os.chdir("/")
    line = b""
    while not line.endswith(b"\n"):
        chunk = os.read(0, 4096)
        if not chunk:
            return 1
        line += chunk
    job = json.loads(line)
    from claudewrap.export.budget import BudgetError, load_config

    try:
        cfg = load_config(job["config"])
    except BudgetError:
        return 1  # the budget check at the end of the run says what to fix
    if not cfg.each_record or not cfg.webhook_url:
        return 0
    return serve({**job, "url": cfg.webhook_url, "headers": cfg.headers})


if __name__ == "__main__":
    sys.exit(_main())


__all__ = ["ATTEMPTS", "INTERVAL", "Sender", "body", "record_json", "serve", "start"]
