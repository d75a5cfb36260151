"""Stored event states compressed: zlib (RFC 1950) with a preset dictionary of the stored JSON's
field names and the contract's vocabulary, so a document of about 500 bytes stores in about 200.

PostgreSQL compresses nothing below its 2 kB TOAST threshold, and plain zlib has too little to
work with in one small document: the dictionary gives it what every document repeats. The format
is told by its first byte: a state that starts with `{` is JSON as stored before compression (read
as is), anything else is a zlib stream that names its dictionary by Adler-32 (DICTID, RFC 1950
§2.2). The hash chain and the Merkle leaves cover the stored (compressed) bytes; a receipt carries
them, and anyone can inflate them with zlib and DICTIONARY_1 below.
"""

import zlib

from eventsourcing.persistence import Compressor

# Never change these bytes: stored states name them by their Adler-32. A better dictionary is a new
# constant added to DICTIONARIES and made the one `compress` uses; the old one stays readable.
# Only field names, the library's datetime envelope and the contract's vocabulary: no personal data.
# Deflate reaches back at most 32 kB and codes near matches shorter, so the commonest strings come last.
DICTIONARY_1 = (
    b'"account_contact","billing","content","usage_metadata","visitor_data","integration_data",'
    b'"marketing_preferences","special_category","children","consent","contract","legal_obligation",'
    b'"legitimate_interest","vital_interest","public_task","security","analytics","product_improvement",'
    b'"advertising","legal_compliance","voice","email","web_chat","push","web","controller","processor",'
    b'"subprocessor","third_party","affiliate","authority","account_holder","authorized_user","contact",'
    b'"visitor","destroyed_keys":["reason":"document":{"digest":"adopted_by":"declared_by":'
    b'"request_id":"right":"regime":"deadline":"note":"keyword":"signal":"recipient":"hold_id":'
    b'"data":{"purpose":"marketing","channel":"sms","method":"double_opt_in","notice_version":"'
    b'"category":"account_contact","system":"","legal_basis":"contract","purposes":["service","support"],'
    b'"role":"processor","jurisdiction":"EU"},"sealed":"'
    b'{"timestamp":{"_type_":"datetime_iso","_data_":"2026-11-26T00:00:00.000000+00:00"},'
    b'"originator_topic":"ledger.subject:Subject","tenant":"'
    b'","subject":"","event_id":"","source":"urn:service:","occurred_at":{"_type_":"datetime_iso","_data_":"20'
    b':00+00:00"},"schema_version":1,"data":{"'
    b'"},"sealed":null,"key_id":"","origin":"","previous_hash":"'
)
DICTIONARIES = {zlib.adler32(DICTIONARY_1): DICTIONARY_1}
CURRENT = DICTIONARY_1
_FDICT = 0x20  # the zlib header's flag for a preset dictionary
# Deflate reaches about 1000:1, so a few stored megabytes written by someone with database access
# could inflate to gigabytes in `verify` or the projector: nothing stored legitimately is larger than
# the biggest event the contract can be set to admit (LEDGER_MAX_MESSAGE_BYTES, at most 10^8 bytes)
# with its envelope, so inflating stops there.
MAX_DOCUMENT = 2 * 10**8


class UnreadableState(ValueError):
    """A stored state that is neither JSON nor a zlib stream over a dictionary this version knows."""


def inflate(state: bytes, limit: int = MAX_DOCUMENT) -> bytes:
    """The JSON document of a stored state, compressed or stored before compression; a stream that
    would inflate past `limit` bytes is refused as unreadable."""
    if state[:1] == b"{":
        return state
    if len(state) < 6 or not state[1] & _FDICT:
        raise UnreadableState("a stored state is neither JSON nor zlib with a preset dictionary")
    dictid = int.from_bytes(state[2:6], "big")
    dictionary = DICTIONARIES.get(dictid)
    if dictionary is None:
        raise UnreadableState(
            f"a stored state was compressed with dictionary {dictid:08x}, which this version does not "
            "know: upgrade consent-ledger"
        )
    reader = zlib.decompressobj(zdict=dictionary)
    try:
        document = reader.decompress(state, limit)
    except zlib.error as error:
        raise UnreadableState(f"a stored state does not inflate ({error})") from None
    if reader.unconsumed_tail:
        raise UnreadableState(f"a stored state inflates past {limit} bytes: no stored event is that large")
    if not reader.eof or reader.unused_data:
        raise UnreadableState("a stored state is not one whole zlib stream")
    return document


def deflate(document: bytes) -> bytes:
    """The stored form of a JSON document: zlib over the current dictionary."""
    writer = zlib.compressobj(6, zlib.DEFLATED, 15, 9, zlib.Z_DEFAULT_STRATEGY, CURRENT)
    return writer.compress(document) + writer.flush()


class StateCompressor(Compressor):
    """The library's compressor hook: every event the mapper stores is deflated, and it reads both
    formats back."""

    def compress(self, data: bytes) -> bytes:
        """Deflate a transcoded event."""
        return deflate(data)

    def decompress(self, data: bytes) -> bytes:
        """The transcoded event of a stored state, in either format."""
        return inflate(data)
