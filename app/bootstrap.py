"""The one composition root: every service built from `Settings`, in one place, for every entry point.

Each service is built on first use and then shared, so a process that only answers queries never
connects to the broker, and one that only publishes never loads the retention policy. The modules
behind the broker, the projector and the scheduler are imported when their service is first built,
for the same reason: a CLI query starts without paying for them (bench/cli.py).
"""

from datetime import UTC, datetime
from functools import cached_property
from pathlib import Path
from typing import TYPE_CHECKING

from app import stack
from ledger.crypto import MasterKey, master_key
from ledger.retention import Rule
from ledger.settings import Settings
from ledger.signing import PublicKey, SigningKey, signing_key
from ledger.store import Ledger
from projections.retention import rules_in_force

if TYPE_CHECKING:
    from kafka import KafkaProducer

    from consumers.contract import Contract
    from consumers.scheduler import Sweeper
    from consumers.witness import TopicWitness
    from ledger.checkpoints import Checkpointer
    from projections.projector import Projector


class Services:
    """What the ledger's adapters (CLI, HTTP, consumers) need, wired from one `Settings`."""

    def __init__(self, settings: Settings, endpoints: stack.Endpoints | None = None) -> None:
        self.settings = settings
        if endpoints is not None:  # already known to answer
            self.__dict__.update(
                database_url=endpoints.database_url, kafka_bootstrap=endpoints.kafka_bootstrap
            )

    @classmethod
    def started(cls, settings: Settings) -> "Services":
        """The services over the embedded stack, started where needed (`up`), with the ledger's topics."""
        from consumers import kafka

        services = cls(settings, stack.up(settings))
        kafka.ensure_topics(services.kafka_bootstrap, settings)
        return services

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

    def create_master_key(self) -> Path | None:
        """Generate the embedded master key if there is none yet; its path when it was generated, so
        the operator can be told to back it up."""
        key, created = master_key(self.settings, create=True)
        self.__dict__["master_key"] = key
        return created

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

    @cached_property
    def evidence(self) -> Ledger:
        """The event store without the master key: the log, its tree and its heads are checked from
        stored bytes and the public signing key, so an auditor needs no secret."""
        return Ledger(self.database_url, None)

    def migrate(self) -> Ledger:
        """The event store with every table of the ledger created where missing (for writers)."""
        from projections import schema

        schema.migrate(self.ledger)
        return self.ledger

    @cached_property
    def checkpointer(self) -> "Checkpointer":
        """Signs checkpoints of the log every `LEDGER_CHECKPOINT_EVERY` events."""
        from consumers.witness import FileWitness
        from ledger.checkpoints import Checkpointer, Witness

        witnesses: list[Witness] = [self.topic_witness]
        if self.settings.witness_file:
            witnesses.append(FileWitness(self.settings.witness_file))
        return Checkpointer(self.ledger, self.signing_key, self.settings.checkpoint_every, witnesses)

    @cached_property
    def topic_witness(self) -> "TopicWitness":
        """Publishes every tree head on LEDGER_CHECKPOINT_TOPIC (its producer opens at the first)."""
        from consumers.witness import TopicWitness

        return TopicWitness(lambda: self.kafka_bootstrap, self.settings)

    @cached_property
    def projector(self) -> "Projector":
        """Keeps the read model up to date with the event store."""
        from projections.projector import Projector

        return Projector(
            self.ledger, self.settings.projection_page, self.checkpointer, self.settings.awaits_recipients
        )

    @cached_property
    def sweeper(self) -> "Sweeper":
        """Orders the purge of what outlived its retention."""
        from consumers.scheduler import Sweeper

        return Sweeper(self.ledger, self.settings, self.database_url, self.kafka_bootstrap)

    @cached_property
    def contract(self) -> "Contract":
        """The wire contract every event is validated against."""
        from consumers.contract import Contract

        return Contract(self.settings.max_message_bytes, self.settings.extra_channels, self.settings.keywords)

    @cached_property
    def producer(self) -> "KafkaProducer":
        """A producer to the ledger's topics, which exist once it is built."""
        from consumers import kafka

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
        if "topic_witness" in self.__dict__:
            self.topic_witness.close()
        for name in ("ledger", "evidence"):
            if name in self.__dict__:
                self.__dict__[name].close()
