"""Structured logging: where the lines go."""

import io
import sys

import pytest
import structlog

from ledger import logs
from ledger.settings import Settings


def test_lines_follow_sys_stderr_after_configure(monkeypatch: pytest.MonkeyPatch) -> None:
    """A logger cached on first use still writes to `sys.stderr` as it is now, so a caller that swapped
    and closed the stream it had (a test capturing `main`) does not break every later log line."""
    logs.configure(Settings.from_env({}))
    log = structlog.get_logger("probe")
    first = io.StringIO()
    monkeypatch.setattr(sys, "stderr", first)
    log.warning("probe.first")
    assert "probe.first" in first.getvalue()
    second = io.StringIO()
    monkeypatch.setattr(sys, "stderr", second)
    first.close()
    log.warning("probe.second")  # into the closed stream, this raised "I/O operation on closed file"
    assert "probe.second" in second.getvalue()
