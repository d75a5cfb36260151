"""The bulk check's statement against the single check, on the real PostgreSQL."""

import pytest

from ledger.contact import Decision
from ledger.state import PURPOSES
from ledger.store import Ledger, RecordFact
from projections import queries
from projections.projector import Projector
from tests.helpers import collected, consent, fact

pytestmark = pytest.mark.services
KINDS = ("granted", "withdrawn", "opted", "silent", "erased", "restricted", "lifted")


def _subject_of_each_kind() -> list[RecordFact]:
    """Consent on SMS for every purpose (withdrawn, opted out, or on email only for some kinds), then
    an erasure's data, a restriction of processing, or a restriction lifted."""
    facts = []
    for kind in KINDS:
        for n, purpose in enumerate(PURPOSES):
            channel = "email" if kind == "silent" else "sms"
            facts.append(fact("acme", kind, f"{kind}-{n}", minutes=1, data=consent(purpose, channel)))
            if kind == "withdrawn":
                facts.append(
                    fact("acme", kind, f"{kind}-w{n}", "consent.withdrawn", minutes=2, data=consent(purpose))
                )
    restriction = {"request_id": "r-1", "right": "restriction", "channel": "email"}
    data = collected()
    personal = {"personal_data": data.pop("personal_data")}
    return [
        *facts,
        fact("acme", "opted", "o1", "optout.received", minutes=3, data={"channel": "sms"}),
        fact("acme", "erased", "e1", "data.collected", minutes=3, data=data, personal=personal),
        fact("acme", "restricted", "r1", "rights.requested", minutes=3, data=restriction),
        fact("acme", "lifted", "l1", "rights.requested", minutes=3, data=restriction),
        fact("acme", "lifted", "l2", "rights.lifted", minutes=4, data={"request_id": "r-1"}),
        fact("globex", "foreign", "f1", minutes=1),
    ]


def test_the_bulk_check_answers_every_kind_of_subject_as_the_single_check(ledger: Ledger) -> None:
    """For every purpose, the bulk check allows exactly the subjects the single check allows (in the
    order asked, once each) and denies the others with the single check's reason and event; another
    tenant's subject and one nobody has are denied as unknown."""
    ledger.append(_subject_of_each_kind())
    assert ledger.erase("acme", "erased", "ticket 1") is not None
    Projector(ledger, 100).run(until_idle=True)
    asked = ["nobody", *reversed(KINDS), "granted", "foreign"]
    allowed_for = {}
    for purpose in PURPOSES:
        checked = queries.may_contact_many(ledger, "acme", asked, purpose, "sms")
        single = {kind: queries.may_contact(ledger, "acme", kind, purpose, "sms") for kind in KINDS}
        assert checked.allowed == [kind for kind in reversed(KINDS) if single[kind].allowed]
        assert checked.denied == {
            "nobody": Decision(False, queries.UNKNOWN),
            **{kind: single[kind] for kind in reversed(KINDS) if not single[kind].allowed},
            "foreign": Decision(False, queries.UNKNOWN),
        }
        allowed_for[purpose] = set(checked.allowed)
    # The kinds reach both answers: restriction keeps only storage-bound purposes, service needs no consent.
    assert allowed_for["legal_compliance"] == {"granted", "lifted", "restricted"}
    assert allowed_for["service"] == {"granted", "withdrawn", "opted", "silent", "lifted"}
    assert allowed_for["marketing"] == {"granted", "lifted"}
