"""The embedded stack: `up` starts real services, reuses them when running, and `down` stops them."""

import socket
from pathlib import Path

import psycopg
import pytest

from app import stack
from ledger.errors import ServiceUnavailable
from ledger.settings import Settings

pytestmark = pytest.mark.services
HOME = Path(__file__).resolve().parent.parent / ".ledger" / "test-stack"


def test_up_is_idempotent_and_down_stops_everything() -> None:
    """Two `up`s give the same running services; commands without `up`'s LEDGER_BROKER_PORT find the
    broker where it runs, not whatever listens on their port; after `down`, both are stopped."""
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    settings = Settings.from_env({"LEDGER_HOME": str(HOME), "LEDGER_BROKER_PORT": str(port)})
    try:
        first = stack.up(settings)
        pid = (HOME / "broker.pid").read_text()
        second = stack.up(settings)
        assert first == second
        assert (HOME / "broker.pid").read_text() == pid
        assert all(service.running and service.embedded for service in stack.status(settings))
        with psycopg.connect(first.database_url) as conn:
            assert conn.execute("SELECT current_database()").fetchone() == ("ledger",)
        assert stack.endpoints(settings) == first
        with socket.socket() as decoy:  # another program on the port a later command is configured with
            decoy.bind(("127.0.0.1", 0))
            decoy.listen()
            elsewhere = Settings.from_env(
                {"LEDGER_HOME": str(HOME), "LEDGER_BROKER_PORT": str(decoy.getsockname()[1])}
            )
            assert stack.endpoints(elsewhere) == first
            assert stack.status(elsewhere)[1].url == first.kafka_bootstrap
            assert stack.up(elsewhere) == first
            assert (HOME / "broker.pid").read_text() == pid
    finally:
        stopped = stack.down(settings)
    assert sorted(stopped) == ["kafka", "postgresql"]
    assert not any(service.running for service in stack.status(settings))
    with pytest.raises(ServiceUnavailable, match="consent-ledger up"):
        stack.endpoints(settings)
