"""The one composition root: every service built from `Settings`, in one place, for every entry point.

Each service is built on first use and then shared, so a process that only answers queries never
connects to the broker, and one that only publishes never loads the retention policy.
"""

from datetime import UTC, datetime
from functools import cached_property

from kafka import KafkaProducer

from consumers import kafka
from consumers.contract import Contract
from consumers.scheduler import Sweeper
from consumers.witness import FileWitness, TopicWitness
from ledger import stack
from ledger.checkpoints import Checkpointer, Witness
from ledger.crypto import MasterKey, master_key
from ledger.retention import Rule
from ledger.settings import Settings
from ledger.signing import PublicKey, SigningKey, signing_key
from ledger.store import Ledger
from projections import schema
from projections.projector import Projector
from projections.retention import rules_in_force


class Services:
    """What the ledger's adapters (CLI, HTTP, consumers) need, wired from one `Settings`."""

    def __init__(self, settings: Settings, endpoints: stack.Endpoints | None = None) -> None:
        self.settings = settings
        if endpoints is not None:  # already known to answer
            self.__dict__.update(
                database_url=endpoints.database_url, kafka_bootstrap=endpoints.kafka_bootstrap
            )

    @cached_property
    def database_url(self) -> str:
        """A PostgreSQL that answers (queries need nothing else)."""
        return stack.database_url(self.settings)

    @cached_property
    def kafka_bootstrap(self) -> str:
        """A broker that answers."""
        return stack.kafka_bootstrap(self.settings)

    @cached_property
    def master_key(self) -> MasterKey:
        """The key that wraps every data key (never created here: `up` does that)."""
        return master_key(self.settings, create=False)[0]

    @cached_property
    def public_keys(self) -> list[PublicKey]:
        """The keys tree heads are checked with: the configured signing key's (never created here)."""
        return [signing_key(self.settings, create=False).public]

    @cached_property
    def signing_key(self) -> SigningKey:
        """The key tree heads are signed with (generated in LEDGER_HOME on first use when none is set)."""
        return signing_key(self.settings, create=True)

    @cached_property
    def ledger(self) -> Ledger:
        """The event store; no schema change, so a role that may only SELECT can ask every question."""
        return Ledger(self.database_url, self.master_key)

    def migrate(self) -> Ledger:
        """The event store with every table of the ledger created where missing (for writers)."""
        schema.migrate(self.ledger)
        return self.ledger

    @cached_property
    def checkpointer(self) -> Checkpointer:
        """Signs checkpoints of the log every `LEDGER_CHECKPOINT_EVERY` events."""
        witnesses: list[Witness] = [TopicWitness(lambda: self.kafka_bootstrap, self.settings)]
        if self.settings.witness_file:
            witnesses.append(FileWitness(self.settings.witness_file))
        return Checkpointer(self.ledger, self.signing_key, self.settings.checkpoint_every, witnesses)

    @cached_property
    def projector(self) -> Projector:
        """Keeps the read model up to date with the event store."""
        return Projector(
            self.ledger, self.settings.projection_page, self.checkpointer, self.settings.awaits_recipients
        )

    @cached_property
    def sweeper(self) -> Sweeper:
        """Orders the purge of what outlived its retention."""
        return Sweeper(self.ledger, self.settings, self.database_url, self.kafka_bootstrap)

    @cached_property
    def contract(self) -> Contract:
        """The wire contract every event is validated against."""
        return Contract(self.settings.max_message_bytes, self.settings.extra_channels)

    @cached_property
    def producer(self) -> KafkaProducer:
        """A producer to the ledger's topics, which exist once it is built."""
        kafka.ensure_topics(self.kafka_bootstrap, self.settings)
        return kafka.open_producer(self.kafka_bootstrap, self.settings)

    def rules(self, at: datetime | None = None) -> list[Rule]:
        """The retention rules in force at `at` (default: now)."""
        return rules_in_force(self.ledger, self.settings.retention_policy, at or datetime.now(UTC))

    def close(self) -> None:
        """Flush and close what was opened."""
        if "producer" in self.__dict__:
            self.producer.flush()
            self.producer.close()
        if "ledger" in self.__dict__:
            self.ledger.close()
