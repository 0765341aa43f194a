"""Claude Code's exact usage beside the screen capture of a wrapped run.

OpenTelemetry is received live (:mod:`claudewrap.sources.otel`); when the child has
exited, the session's transcript (:mod:`claudewrap.sources.transcripts`) supplies what
OpenTelemetry did not deliver. Used by :func:`claudewrap.api.run_claude`.
"""

from __future__ import annotations

import os
import time

TYPE_CHECKING = False  # typing.TYPE_CHECKING without importing typing (launch path)
if TYPE_CHECKING:
    from claudewrap.sources.otel import Receiver
    from claudewrap.wrap.capture import Capture


class ExactSources:
    """Claude Code's exact usage beside the screen capture: its OpenTelemetry,
    received live (claudewrap.sources.otel), and at the end the session's transcript
    (claudewrap.sources.transcripts) for whatever OpenTelemetry did not deliver."""

    def __init__(self, capture: Capture | None, journal_path: str | None,
                 use_otel: bool) -> None:
        self.capture = capture
        self.journal_path = journal_path
        self.receiver: Receiver | None = None
        self.started = time.time()
        if capture is None or not use_otel:
            return
        from claudewrap.sources import otel

        upstream: dict[str, str] | None = None
        otel_env: dict[str, str] | None = None
        if otel.user_configured(os.environ):
            # The user's own collector: forward to it what comes over OTLP/HTTP
            # (and record it); anything else (gRPC) is left alone.
            upstream, otel_env = otel.pass_through(os.environ)
            if not upstream:
                return
        try:
            self.receiver = otel.Receiver(session=capture.session, journal=journal_path,
                                          attribution=capture.attribution,
                                          upstream=upstream, env=otel_env)
        except OSError:
            self.receiver = None  # no loopback port: run on with the screen capture only

    def child_started(self) -> None:
        """The child runs: serve its exports (the port was bound, the thread waits
        till now, off the time before claude starts)."""
        if self.receiver is not None:
            self.receiver.start()

    def child_env(self) -> dict[str, str] | None:
        if self.receiver is None:
            return None
        return {**os.environ, **self.receiver.child_env()}

    def abort(self) -> None:
        if self.receiver is not None:
            self.receiver.close(grace=0)

    def finish(self) -> list[str]:
        """After the child exited: last OpenTelemetry export, then the transcript."""
        warnings: list[str] = []
        if self.capture is None:
            return warnings
        sessions: set[str] = set()
        known: set[str] = set()
        try:
            if self.receiver is not None:
                warning = self.receiver.close()
                if warning:
                    warnings.append(warning)
                sessions |= self.receiver.claude_sessions
                known |= self.receiver.request_ids
            sessions |= {r.claude_session for r in self.capture.records if r.claude_session}
            from claudewrap.sources import claude_dirs

            files = claude_dirs.run_transcripts(sessions, self.started)
            if files:  # else nothing to read: records and journal stay unloaded
                from claudewrap.sources import transcripts

                warning = transcripts.reconcile(
                    session=self.capture.session, attribution=self.capture.attribution,
                    journal=self.journal_path, claude_sessions=sessions,
                    known_request_ids=known, started=self.started, files=files)
                if warning:
                    warnings.append(warning)
        except Exception as exc:  # noqa: BLE001 - never turn claude's status into ours
            warnings.append(f"claudewrap: exact usage (OpenTelemetry/transcript) failed at "
                            f"exit: {type(exc).__name__}: {exc}")
        return warnings
