"""Stored states are deflated over a fixed dictionary; states stored before that still read."""

import zlib
from dataclasses import asdict

import pytest

from ledger.audit import verify
from ledger.checkpoints import Checkpointer
from ledger.compression import DICTIONARY_1, UnreadableState, deflate, inflate
from ledger.signing import SigningKey
from ledger.store import Ledger
from projections import queries
from projections.projector import Projector
from projections.rebuild import rebuild
from projections.receipts import check_receipt, receipt
from tests.helpers import fact

DOCUMENT = (
    b'{"timestamp":{"_type_":"datetime_iso","_data_":"2026-11-26T06:36:48.264021+00:00"},"tenant":"acme",'
    b'"subject":"ann","event_id":"g1","source":"urn:service:consent","occurred_at":{"_type_":"datetime_iso",'
    b'"_data_":"2025-08-23T17:42:00+00:00"},"schema_version":1,"data":{"purpose":"marketing","channel":"sms",'
    b'"method":"double_opt_in","notice_version":"2025-04","jurisdiction":"GB"},"sealed":null,"key_id":null,'
    b'"origin":"events/0/0","previous_hash":""}'
)


def test_a_document_deflates_to_well_under_half_and_back() -> None:
    """A consent's state stores in less than a third of its JSON and inflates to the same bytes."""
    stored = deflate(DOCUMENT)
    assert len(stored) < len(DOCUMENT) / 3
    assert inflate(stored) == DOCUMENT


def test_a_state_stored_before_compression_reads_as_is() -> None:
    """JSON stored by an earlier version (it starts with a brace) is returned unchanged."""
    assert inflate(DOCUMENT) is DOCUMENT


def test_the_dictionary_never_changes() -> None:
    """Stored states name the dictionary by its Adler-32: editing it would make them unreadable."""
    assert zlib.adler32(DICTIONARY_1) == 0x36E8A59A


def test_an_unknown_dictionary_or_damaged_state_is_named() -> None:
    """A stream over another dictionary says which and what to do; a damaged or plain one says so."""
    writer = zlib.compressobj(6, zlib.DEFLATED, 15, 9, zlib.Z_DEFAULT_STRATEGY, b"another dictionary")
    other = writer.compress(DOCUMENT) + writer.flush()
    with pytest.raises(
        UnreadableState, match=f"dictionary {zlib.adler32(b'another dictionary'):08x}.*upgrade"
    ):
        inflate(other)
    stored = deflate(DOCUMENT)
    with pytest.raises(UnreadableState, match="not one whole zlib stream"):
        inflate(stored[:-8])
    with pytest.raises(UnreadableState, match="neither JSON nor zlib"):
        inflate(zlib.compress(DOCUMENT))


def test_a_state_that_would_inflate_past_the_limit_is_refused() -> None:
    """A small stream written to inflate to far more than any stored event (a bomb planted by
    someone with database access) stops at the limit instead of filling memory."""
    bomb = deflate(b"{" + b" " * 10_000_000 + b"}")
    assert len(bomb) < 20_000
    assert len(inflate(bomb, limit=10_000_002)) == 10_000_002
    with pytest.raises(UnreadableState, match="inflates past 1000000 bytes"):
        inflate(bomb, limit=1_000_000)
    assert inflate(deflate(DOCUMENT), limit=len(DOCUMENT)) == DOCUMENT


@pytest.mark.services
def test_a_store_written_before_compression_keeps_working_as_it_grows(ledger: Ledger) -> None:
    """Subjects whose first events were stored as plain JSON (as before compression) and their later
    ones deflated: they fold, project and rebuild alike, their chains and tree verify, and receipts
    for events of either kind check offline."""
    compressor = ledger.mapper.compressor
    ledger.mapper.compressor = None  # what an earlier version stored
    ledger.append([fact("acme", "ann", "g1", minutes=1), fact("acme", "bob", "g2", minutes=2)])
    ledger.mapper.compressor = compressor
    ledger.append(
        [fact("acme", "ann", "w1", "consent.withdrawn", minutes=3), fact("acme", "cy", "g3", minutes=4)]
    )
    states = [event.state[:1] for event in ledger.stored_subject_events("acme", "ann")]
    assert states[0] == b"{" and states[-1] != b"{"  # both formats in one chain
    Projector(ledger, page=100).run(until_idle=True)
    allowed = {
        subject: queries.may_contact(ledger, "acme", subject, "marketing", "sms").allowed
        for subject in ("ann", "bob", "cy")
    }
    assert allowed == {"ann": False, "bob": True, "cy": True}
    assert rebuild(ledger, lambda *_: None).identical
    key = SigningKey.generate()
    Checkpointer(ledger, key, every=1000).step(force=True)
    assert verify(ledger, [key.public]).ok
    for event_id in ("g1", "w1"):
        document = queries.plain(asdict(receipt(ledger, "acme", event_id)))
        assert check_receipt(document, [key.public]).ok, event_id
