"""How far an erasure reaches, and by when: the ledger at once, Kafka's copies and old key copies later.

Crypto-shredding makes a subject's values unreadable in the ledger the moment the key is destroyed.
Two kinds of copies outlive that moment: the original messages on the Kafka topics, until their
retention deletes them, and old copies of the wrapped key (WAL, backups, old table pages), until the
key epoch that wrapped it is retired.
"""

from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

from ledger.keys import Epoch
from ledger.times import rfc3339

_DAY = timedelta(days=1)


def segment_roll(retention: timedelta) -> timedelta:
    """How long a topic segment stays open: Kafka deletes only closed segments, so a short roll keeps
    "deleted by" close to the retention itself."""
    return min(retention, _DAY)


@dataclass(frozen=True)
class Horizon:
    """When the last copies of an erased subject's values become unreadable."""

    erased_at: datetime
    retention: timedelta
    kafka_gone_by: datetime
    epochs_to_retire: list[int]  # live epochs that may have wrapped old copies of the destroyed key

    def as_json(self) -> dict[str, Any]:
        """The `erasure_horizon` of `subject --json`."""
        return {
            "kafka_gone_by": rfc3339(self.kafka_gone_by),
            "key_copies_unreadable": not self.epochs_to_retire,
            "epochs_to_retire": self.epochs_to_retire,
        }

    def lines(self) -> list[str]:
        """The horizon in words, one line per kind of copy."""
        kafka = rfc3339(self.kafka_gone_by)
        keys = (
            "unreadable now: every key epoch of its time is retired"
            if not self.epochs_to_retire
            else "unreadable after the next `rotate-key --retire` (epochs "
            f"{', '.join(map(str, self.epochs_to_retire))} still live)"
        )
        return [
            "in the ledger: unreadable now",
            f"on Kafka topics the ledger created: deleted by {kafka} (retention {self.retention.days} days)",
            f"old copies of its key (WAL, backups, old table pages): {keys}",
        ]


def horizon(erased_at: datetime, retention: timedelta, epochs: Sequence[Epoch]) -> Horizon:
    """The horizon of an erasure at `erased_at`, with topics kept for `retention` and these live epochs."""
    return Horizon(
        erased_at=erased_at,
        retention=retention,
        kafka_gone_by=erased_at + retention + segment_roll(retention),
        epochs_to_retire=[epoch.number for epoch in epochs if epoch.created_at <= erased_at],
    )
