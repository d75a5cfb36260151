"""Tamper evidence: each subject's events form a hash chain; a Merkle tree covers the whole log.

An event's hash is SHA-256 over a canonical encoding of its stored record (aggregate id, version,
topic and the stored state bytes, which hold ciphertext, never plaintext), so the chain verifies
the same before and after a subject's data key is destroyed. Each event after the first stores the
hash of its predecessor; the same hash is the event's leaf in the log's Merkle tree (ledger/merkle.py,
ledger/checkpoints.py).
"""

import hashlib
from uuid import UUID

from eventsourcing.persistence import Notification

GENESIS = ""


def record_hash(originator_id: UUID, version: int, topic: str, state: bytes) -> str:
    """SHA-256 (hex) of one stored event record in its canonical encoding."""
    digest = hashlib.sha256()
    digest.update(originator_id.bytes)
    digest.update(version.to_bytes(8, "big"))
    digest.update(len(topic).to_bytes(4, "big"))
    digest.update(topic.encode())
    digest.update(state)
    return digest.hexdigest()


def notification_hash(notification: Notification) -> str:
    """The record hash of a row as the library reads it back."""
    originator_id = notification.originator_id
    if not isinstance(originator_id, UUID):
        originator_id = UUID(originator_id)
    return record_hash(originator_id, notification.originator_version, notification.topic, notification.state)
