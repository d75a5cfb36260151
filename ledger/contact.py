"""The hot question: may this subject be contacted for a purpose on a channel?"""

from dataclasses import dataclass
from datetime import datetime

from ledger.state import GRANTED, SERVICE, Consent, SubjectState, restriction_in_effect
from ledger.times import rfc3339

# What a restriction of processing (GDPR Art. 18(2)) still allows: keeping the data for legal claims and
# obligations. Every other purpose, transactional messages included, is denied until it is lifted.
STORAGE_BOUND = ("legal_compliance",)


@dataclass(frozen=True)
class Restriction:
    """A restriction of processing in effect: the request that asked for it, and since when."""

    request_id: str
    since: datetime
    event_id: str | None


def restriction_of(state: SubjectState) -> Restriction | None:
    """The restriction in effect on the subject, if any."""
    request = restriction_in_effect(state)
    if request is None or request.requested_at is None:
        return None
    return Restriction(request.request_id, request.requested_at, request.event_id)


@dataclass(frozen=True)
class Decision:
    """An answer with the reason a sender (or an auditor) can read."""

    allowed: bool
    reason: str
    event_id: str | None = None


def decide(
    erased: bool, purpose: str, channel: str, consent: Consent | None, restriction: Restriction | None = None
) -> Decision:
    """Transactional (`service`) messages need no consent; every other purpose needs a live grant; while
    processing is restricted, only storage-bound purposes are decided so."""
    if erased:
        return Decision(False, "the subject has been erased")
    if restriction is not None and purpose not in STORAGE_BOUND:
        return Decision(
            False,
            f"processing is restricted since {rfc3339(restriction.since)} by request "
            f"{restriction.request_id} (GDPR Art. 18): only {', '.join(STORAGE_BOUND)} until it is lifted",
            restriction.event_id,
        )
    if purpose == SERVICE:
        return Decision(True, "transactional (service) messages need no consent")
    if consent is None:
        return Decision(False, f"no consent recorded for {purpose} on {channel}")
    since = rfc3339(consent.since)
    if consent.state == GRANTED:
        return Decision(True, f"consent granted for {purpose} on {channel} since {since}", consent.event_id)
    return Decision(
        False,
        f"consent for {purpose} on {channel} is {consent.state} since {since}",
        consent.event_id,
    )
