"""Receipts shaped after ISO/IEC TS 27560 and the Kantara Consent Receipt, provable without the ledger.

A receipt for a consent, a withdrawal or an opt-out (an SMS STOP is the record a regulator asks for)
carries the stored record it describes (ciphertext only, never personal data in clear), that
record's hash, and an RFC 6962 inclusion proof of the hash in the log's Merkle tree up to a signed
tree head. `check_receipt` needs only the receipt and the published signing key: it recomputes the
record hash from the record, checks that the record says what the receipt says, walks the proof to
the root and checks the head's signature. A later tree head with a consistency proof shows that the
log the receipt was proven against is a prefix of today's log, i.e. was not rewritten since.
"""

import base64
import binascii
from collections.abc import Sequence
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any
from uuid import NAMESPACE_URL, UUID, uuid5

import orjson
from eventsourcing.persistence import Notification
from eventsourcing.utils import get_topic

from ledger import merkle
from ledger import vocabularies as words
from ledger.chain import notification_hash, record_hash
from ledger.checkpoints import TreeHead, latest_head, leaf_index, tree_nodes
from ledger.compression import inflate
from ledger.errors import AlteredLog, UnknownEvent, UsageError
from ledger.signing import PublicKey, WrongSigningKey
from ledger.state import GRANTED, OPTED_OUT, WITHDRAWN, opted_out_purposes
from ledger.store import Ledger
from ledger.subject import FACT_CLASSES, Subject

FORMAT = "urn:consent-ledger:receipt:v2"
_KINDS = {get_topic(cls): kind for kind, cls in FACT_CLASSES.items()}
STATES = {"consent.given": GRANTED, "consent.withdrawn": WITHDRAWN, "optout.received": OPTED_OUT}


class NotCheckpointed(UsageError):
    """The event is newer than the newest signed tree head: nothing can prove it yet."""


@dataclass(frozen=True)
class InclusionProof:
    """Where the record sits in the log's Merkle tree, and the signed tree head the path leads to."""

    leaf_index: int
    tree_size: int
    inclusion_path: list[str]
    tree_head: dict[str, Any]
    key_id: str


@dataclass(frozen=True)
class ConsentReceipt:
    """What was consented to, withdrawn or opted out of, by whom, when, how, and the proof it was logged."""

    format: str
    receipt_id: str
    record_id: str
    event_type: str
    controller: str
    subject_id: str
    event_time: datetime
    recorded_at: datetime
    purposes: list[str]
    channel: str
    state: str
    notice_version: str | None
    collection_method: str | None
    jurisdiction: str | None
    source: str
    position: int
    version: int
    record_hash: str
    previous_hash: str
    record: dict[str, Any]
    proof: InclusionProof
    dpv: dict[str, Any]  # the same consent in W3C DPV terms (derived from the record, checked with it)


def receipt(ledger: Ledger, tenant: str, event_id: str) -> ConsentReceipt:
    """The receipt for the tenant's consent, withdrawal or opt-out `event_id`, proven against the newest
    tree head; NotCheckpointed when no head covers it yet."""
    for notification in ledger.writer.located(tenant, event_id):
        event = ledger.mapper.to_domain_event(notification)
        if not isinstance(event, Subject.FactRecorded) or event.event_id != event_id:
            continue
        if event.wire_type not in STATES:
            raise UsageError(
                f"event {event_id!r} is a {event.wire_type}: receipts are for consent events and opt-outs"
            )
        data = event.data
        return ConsentReceipt(
            format=FORMAT,
            receipt_id=str(uuid5(NAMESPACE_URL, f"{FORMAT}:{tenant}/{event_id}")),
            record_id=event_id,
            event_type=event.wire_type,
            controller=tenant,
            subject_id=event.subject,
            event_time=event.occurred_at,
            recorded_at=event.timestamp,
            purposes=_purposes(data),
            channel=data["channel"],
            state=STATES[event.wire_type],
            notice_version=data.get("notice_version"),
            collection_method=data.get("method") or data.get("keyword") or data.get("signal"),
            jurisdiction=data.get("jurisdiction"),
            source=event.source,
            position=notification.id,
            version=event.originator_version,
            record_hash=notification_hash(notification),
            previous_hash=event.previous_hash,
            record={
                "originator_id": str(notification.originator_id),
                "version": notification.originator_version,
                "topic": notification.topic,
                "state": base64.b64encode(notification.state).decode(),
            },
            proof=_inclusion(ledger, notification),
            dpv=_dpv(event.wire_type, data),
        )
    raise UnknownEvent(f"tenant {tenant!r} has no event {event_id!r}: check both ids")


def _purposes(data: dict[str, Any]) -> list[str]:
    if "purpose" in data:
        return [data["purpose"]]
    return opted_out_purposes(data)


def _dpv(wire_type: str, data: dict[str, Any]) -> dict[str, Any]:
    """The consent's status, purposes and legal basis as DPV terms, with the prefixes they use."""
    return {
        "prefixes": words.DPV_PREFIXES,
        "status": words.DPV_CONSENT_STATES[STATES[wire_type]],
        "purposes": [words.DPV_PURPOSES[purpose] for purpose in _purposes(data)],
        "legal_basis": words.DPV_LEGAL_BASES["consent"],
    }


def _inclusion(ledger: Ledger, notification: Notification) -> InclusionProof:
    """The record's path to the newest head's root, checked before it is given out: the lower nodes
    are recomputed from the events, so an altered neighbour shows here rather than in the receipt."""
    head = latest_head(ledger)
    index = leaf_index(ledger, notification.id)
    if head is None or index is None or index >= head.tree_size:
        raise NotCheckpointed(
            f"the event at log position {notification.id} is newer than the last signed tree head: "
            "take a checkpoint (`consent-ledger checkpoint`) and ask again"
        )
    path = merkle.inclusion_path(index, head.tree_size, tree_nodes(ledger))
    leaf = merkle.leaf_hash(bytes.fromhex(notification_hash(notification)))
    if not merkle.verify_inclusion(leaf, index, head.tree_size, path, head.root_hash):
        raise AlteredLog(
            f"the event at log position {notification.id} or one near it no longer hashes to the tree "
            f"head {head.sequence} signed: run `consent-ledger verify` to name the break"
        )
    return InclusionProof(index, head.tree_size, [node.hex() for node in path], head.document(), head.key_id)


def tree_head(ledger: Ledger, from_size: int | None) -> dict[str, Any]:
    """The newest signed tree head and, from `from_size`, the proof that the tree then is a prefix of it."""
    head = latest_head(ledger)
    if head is None:
        raise UsageError("no tree head signed yet: take a checkpoint (`consent-ledger checkpoint`) first")
    document: dict[str, Any] = {"tree_head": head.document()}
    if from_size is not None:
        if not 0 < from_size <= head.tree_size:
            raise UsageError(f"--from-size {from_size} is not between 1 and the tree size {head.tree_size}")
        proof = merkle.consistency_proof(from_size, head.tree_size, tree_nodes(ledger))
        document["consistency"] = {"from_size": from_size, "proof": [node.hex() for node in proof]}
    return document


@dataclass
class Verdict:
    """What checking a receipt found: the problems (none when it holds) and what was established."""

    problems: list[str] = field(default_factory=list)
    established: list[str] = field(default_factory=list)

    @property
    def ok(self) -> bool:
        """True when the receipt holds."""
        return not self.problems


def check_receipt(document: Any, keys: Sequence[PublicKey], later: Any = None) -> Verdict:
    """Check a receipt with no database: its record, its inclusion proof and its signed tree head, and
    (given a later tree head document with a consistency proof) that the log was not rewritten since.

    UsageError for a file that is not a receipt; WrongSigningKey when no key given signed its head.
    """
    verdict = Verdict()
    receipt_doc, proof, head = _parse_receipt(document)
    _check_record(receipt_doc, verdict)
    _check_head(head, keys, "the receipt's tree head", verdict)
    leaf = merkle.leaf_hash(bytes.fromhex(receipt_doc["record_hash"]))
    path = [_hex(node, "an inclusion path entry") for node in proof["inclusion_path"]]
    if proof["tree_size"] != head.tree_size:
        verdict.problems.append(
            f"the proof is for tree size {proof['tree_size']}, the head's is {head.tree_size}"
        )
    elif not merkle.verify_inclusion(leaf, proof["leaf_index"], head.tree_size, path, head.root_hash):
        verdict.problems.append(
            "the inclusion proof does not lead from the record hash to the signed root: "
            "the receipt or its proof was altered"
        )
    else:
        verdict.established.append(
            f"record {receipt_doc['record_id']} is leaf {proof['leaf_index']} of the log's tree of "
            f"{head.tree_size} events, tree head {head.sequence} signed by key {head.key_id}"
        )
    if later is not None:
        _check_later(head, later, keys, verdict)
    return verdict


def _parse_receipt(document: Any) -> tuple[dict[str, Any], dict[str, Any], TreeHead]:
    if not isinstance(document, dict) or document.get("format") != FORMAT:
        raise UsageError(
            f"not a receipt (expected format {FORMAT}): make one with `consent-ledger receipt --json`"
        )
    proof = document.get("proof")
    try:
        assert isinstance(proof, dict)
        head = TreeHead.from_document(proof["tree_head"])
        assert isinstance(proof["inclusion_path"], list)
        assert isinstance(proof["leaf_index"], int) and isinstance(proof["tree_size"], int)
        _hex(document["record_hash"], "record_hash")
    except (AssertionError, KeyError, ValueError) as error:
        raise UsageError(f"the receipt's proof is incomplete or malformed ({error})") from None
    return document, proof, head


def _hex(text: Any, what: str) -> bytes:
    try:
        found = bytes.fromhex(str(text))
    except ValueError:
        found = b""
    if len(found) != 32:
        raise UsageError(f"{what} is not a SHA-256 hash in hex")
    return found


def _check_record(document: dict[str, Any], verdict: Verdict) -> None:
    """The record must hash to the record hash, and say what the receipt says."""
    record = document.get("record")
    try:
        assert isinstance(record, dict)
        state = base64.b64decode(str(record["state"]), validate=True)
        found = record_hash(
            UUID(str(record["originator_id"])), int(record["version"]), str(record["topic"]), state
        )
        stored = orjson.loads(inflate(state))  # an UnreadableState is a ValueError
    except (AssertionError, KeyError, ValueError, binascii.Error, orjson.JSONDecodeError):
        verdict.problems.append("the receipt's record is missing or malformed")
        return
    if found != document["record_hash"]:
        verdict.problems.append(
            "the record does not hash to the receipt's record hash: one of them was altered"
        )
        return
    data = stored.get("data") if isinstance(stored, dict) else None
    claimed = {
        "controller": stored.get("tenant"),
        "subject_id": stored.get("subject"),
        "record_id": stored.get("event_id"),
        "channel": data.get("channel") if isinstance(data, dict) else None,
        "purposes": _purposes(data) if isinstance(data, dict) else None,
    }
    kind = _KINDS.get(str(record["topic"]))
    if "dpv" in document:  # receipts made before DPV terms were added carry none
        claimed["dpv"] = _dpv(kind, data) if kind in STATES and isinstance(data, dict) else None
    differing = sorted(name for name, value in claimed.items() if document.get(name) != value)
    if differing:
        verdict.problems.append(f"the receipt's {', '.join(differing)} differ from the record it proves")


def _check_head(head: TreeHead, keys: Sequence[PublicKey], what: str, verdict: Verdict) -> None:
    key = next((key for key in keys if key.key_id == head.key_id), None)
    if key is None:
        given = ", ".join(key.key_id for key in keys) or "none"
        raise WrongSigningKey(
            f"{what} is signed by key {head.key_id} but the key given is {given}: "
            "pass the ledger's published public key with --public-key FILE"
        )
    if not head.signed_by(key):
        verdict.problems.append(f"{what}'s signature is not valid: it was altered or forged")


def _check_later(head: TreeHead, document: Any, keys: Sequence[PublicKey], verdict: Verdict) -> None:
    try:
        later = TreeHead.from_document(document["tree_head"])
        consistency = document["consistency"]
        old = int(consistency["from_size"])
        proof = [_hex(node, "a consistency proof entry") for node in consistency["proof"]]
    except (TypeError, KeyError, ValueError):
        raise UsageError(
            "the tree head file lacks a tree head with a consistency proof: make it with "
            f"`consent-ledger tree-head --from-size {head.tree_size} --out FILE`"
        ) from None
    if old != head.tree_size:
        raise UsageError(
            f"the tree head file proves consistency from size {old}, the receipt's has {head.tree_size}: "
            f"make it with `consent-ledger tree-head --from-size {head.tree_size}`"
        )
    _check_head(later, keys, "the later tree head", verdict)
    if merkle.verify_consistency(old, later.tree_size, head.root_hash, later.root_hash, proof):
        verdict.established.append(
            f"tree head {later.sequence} ({later.tree_size} events) extends the receipt's tree head: "
            "the log it was proven against was not rewritten since"
        )
    else:
        verdict.problems.append(
            f"tree head {later.sequence} ({later.tree_size} events) is not consistent with the receipt's "
            f"tree head {head.sequence} ({head.tree_size} events): the log was rewritten (a fork)"
        )
