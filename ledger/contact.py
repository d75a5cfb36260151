"""The hot question: may this subject be contacted for a purpose on a channel?"""

from dataclasses import dataclass

from ledger.state import GRANTED, SERVICE, Consent
from ledger.times import rfc3339


@dataclass(frozen=True)
class Decision:
    """An answer with the reason a sender (or an auditor) can read."""

    allowed: bool
    reason: str
    event_id: str | None = None


def decide(erased: bool, purpose: str, channel: str, consent: Consent | None) -> Decision:
    """Transactional (`service`) messages need no consent; every other purpose needs a live grant."""
    if erased:
        return Decision(False, "the subject has been erased")
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
