"""The subject aggregate and its stored domain events.

Stored event topics are `ledger.subject:Subject.<Name>`: never rename or move these classes; evolve
them with `class_version` and `upcast_v1_v2`.
"""

from dataclasses import dataclass
from datetime import datetime
from typing import Any, ClassVar
from uuid import NAMESPACE_URL, UUID, uuid5

from eventsourcing.domain import Aggregate

from ledger.state import SubjectState, apply_erasure, apply_fact

_NAMESPACE = uuid5(NAMESPACE_URL, "urn:consent-ledger:subject")


def subject_id(tenant: str, subject: str) -> UUID:
    """The aggregate id of a tenant's subject: deterministic, so "get or create" needs no look-up."""
    return uuid5(_NAMESPACE, f"{tenant}/{subject}")


class Subject(Aggregate):
    """One data subject of one tenant: the facts recorded about them, folded into their state."""

    # Declared as dataclasses (the library would make them so anyway) so that type checkers see fields.
    @dataclass(frozen=True)
    class Registered(Aggregate.Created):
        """The ledger saw the first fact about this subject."""

        tenant: str
        subject: str

    @dataclass(frozen=True)
    class FactRecorded(Aggregate.Event):
        """A fact published by an upstream service, as received (data validated by its schema)."""

        wire_type: ClassVar[str] = ""
        tenant: str
        subject: str
        event_id: str
        source: str
        occurred_at: datetime
        schema_version: int
        data: dict[str, Any]
        sealed: str | None  # the personal fields, AES-256-GCM under the data key `key_id`
        key_id: str | None
        origin: str
        previous_hash: str

        def apply(self, aggregate: "Aggregate") -> None:
            assert isinstance(aggregate, Subject)
            apply_fact(
                aggregate.state,
                self.wire_type,
                self.event_id,
                self.occurred_at,
                self.data,
                recorded=self.timestamp,
                version=self.originator_version,
            )

    @dataclass(frozen=True)
    class Erased(Aggregate.Event):
        """The subject's data keys were destroyed: every personal value recorded so far is gone."""

        tenant: str
        subject: str
        reason: str
        destroyed_keys: list[str]
        previous_hash: str

        def apply(self, aggregate: "Aggregate") -> None:
            assert isinstance(aggregate, Subject)
            apply_erasure(aggregate.state, self.timestamp)

    class DataCollected(FactRecorded):
        wire_type = "data.collected"

    class ConsentGiven(FactRecorded):
        wire_type = "consent.given"

    class ConsentWithdrawn(FactRecorded):
        wire_type = "consent.withdrawn"

    class OptOutReceived(FactRecorded):
        wire_type = "optout.received"

    class DataShared(FactRecorded):
        wire_type = "data.shared"

    class DeletionRequested(FactRecorded):
        wire_type = "deletion.requested"

    class DeletionCompleted(FactRecorded):
        wire_type = "deletion.completed"

    class AccountClosed(FactRecorded):
        wire_type = "account.closed"

    class LegalHoldPlaced(FactRecorded):
        wire_type = "legalhold.placed"

    class LegalHoldReleased(FactRecorded):
        wire_type = "legalhold.released"

    class ContactMade(FactRecorded):
        wire_type = "contact.made"

    class RightsRequested(FactRecorded):
        wire_type = "rights.requested"

    class RightsVerified(FactRecorded):
        wire_type = "rights.verified"

    class RightsExtended(FactRecorded):
        wire_type = "rights.extended"

    class RightsFulfilled(FactRecorded):
        wire_type = "rights.fulfilled"

    class RightsRefused(FactRecorded):
        wire_type = "rights.refused"

    class RightsLifted(FactRecorded):
        wire_type = "rights.lifted"

    class KeywordReceived(FactRecorded):
        wire_type = "keyword.received"

    class AgeSignalled(FactRecorded):
        wire_type = "age.signalled"

    @dataclass(frozen=True)
    class RetentionExpired(Aggregate.Event):
        """The retention of these categories in this system ran out; a purge was ordered."""

        tenant: str
        subject: str
        system: str
        categories: list[str]
        rule: str
        expired_at: datetime
        order_id: str
        previous_hash: str

    def __init__(self, tenant: str, subject: str) -> None:
        self.state = SubjectState(tenant=tenant, subject=subject)


FACT_CLASSES: dict[str, type[Subject.FactRecorded]] = {
    cls.wire_type: cls
    for cls in vars(Subject).values()
    if isinstance(cls, type) and issubclass(cls, Subject.FactRecorded) and cls.wire_type
}
