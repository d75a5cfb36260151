"""Property-based hostile input through the real broker and consumer: nothing halts, nothing is lost."""

import threading

import pytest

from consumers.ingest import Totals, consume
from ledger.settings import Settings
from ledger.store import Ledger
from projections.projector import Projector
from tests import hostile

pytestmark = pytest.mark.services

COUNT = 300
MAX_BYTES = 16 * 1024  # small, so oversized messages are cheap to make


def _consume_within(settings: Settings, ledger: Ledger, seconds: float) -> Totals:
    """Run the real consumer until idle, failing if it has not got there in `seconds`."""
    stop, outcome = threading.Event(), list[Totals]()

    def run(bootstrap: str) -> None:
        outcome.append(consume(settings, ledger, bootstrap, until_idle=True, stop=stop))

    worker = threading.Thread(target=run, args=(settings.kafka_bootstrap,))
    worker.start()
    worker.join(seconds)
    if worker.is_alive():
        stop.set()
        worker.join(30)
        pytest.fail(f"the consumer did not reach idle within {seconds} s")
    assert outcome, "the consumer stopped with an error (see the captured log)"
    return outcome[0]


def test_generated_hostile_messages_never_halt_ingest(env: dict[str, str], ledger: Ledger) -> None:
    """A few hundred generated messages, about half valid and half hostile (deep, huge, odd unicode,
    NUL, wrong types, nulls, extreme times, unknown types, oversized, not JSON, duplicate keys, lone
    surrogates, redelivered and conflicting ids): the consumer reaches idle, each valid event is
    stored once, each hostile one is stored or dead-lettered, and the queries and the sweep answer."""
    env = {**env, "LEDGER_MAX_MESSAGE_BYTES": str(MAX_BYTES)}
    settings = Settings.from_env(env)
    assert settings.kafka_bootstrap is not None
    messages = hostile.generate(COUNT, MAX_BYTES)
    positions = hostile.publish(settings.kafka_bootstrap, settings.events_topic, messages)
    totals = _consume_within(settings, ledger, 120)

    letters = hostile.deadlettered(settings.kafka_bootstrap, settings.deadletter_topic)
    assert totals.received == len(messages)
    assert totals.received == totals.stored + totals.duplicates + totals.deadlettered
    assert hostile.problems(ledger, messages, positions, letters) == []
    Projector(ledger, settings.projection_page).run(until_idle=True)
    assert hostile.failing_queries(env, ledger, messages) == []
