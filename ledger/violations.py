"""What counts as a violation, and how late an opt-out was obeyed: pure rules, no I/O.

The report (projections/violations.py) finds candidates with SQL over the read model; these rules
judge each one, so the same words and clocks apply whatever found it.
"""

from dataclasses import dataclass
from datetime import datetime, timedelta

from ledger.contact import STORAGE_BOUND, Restriction
from ledger.state import GRANTED, SERVICE
from ledger.times import rfc3339

FCC_BUSINESS_DAYS = 10  # the FCC's deadline for honouring a revocation of consent (47 CFR 64.1200)
CONTACT_NOT_ALLOWED = "contact_not_allowed"  # not allowed as the ledger knew it when the contact was made
CONTACT_LATE_OPT_OUT = "contact_late_opt_out"  # allowed then; not as known now (an opt-out came late)
OPT_OUT_OBEYED_LATE = "opt_out_obeyed_late"  # contacts went on past the FCC's 10 business days
COLLECTED_AFTER_ERASURE = "collected_after_erasure"
PURGE_UNCONFIRMED = "purge_unconfirmed"  # a purge order unconfirmed past its deadline
HELD_PAST_EXPIRY = "held_past_expiry"  # retention ran out and no purge was ordered
REQUEST_ANSWERED_LATE = "request_answered_late"
UNDECLARED_RECIPIENT = "undeclared_recipient"
KINDS = (
    CONTACT_NOT_ALLOWED,
    CONTACT_LATE_OPT_OUT,
    OPT_OUT_OBEYED_LATE,
    COLLECTED_AFTER_ERASURE,
    PURGE_UNCONFIRMED,
    HELD_PAST_EXPIRY,
    REQUEST_ANSWERED_LATE,
    UNDECLARED_RECIPIENT,
)


@dataclass(frozen=True)
class Word:
    """The consent fact that decided a contact: its state, when it took effect and was recorded."""

    event_id: str
    state: str
    at: datetime
    recorded: datetime


@dataclass(frozen=True)
class Verdict:
    """Why a contact broke the rules, and the events that show it."""

    kind: str
    reason: str
    event_ids: list[str]


def judge_contact(
    purpose: str,
    channel: str,
    at: datetime,
    *,
    erased_at: datetime | None,
    then: Word | None,
    now: Word | None,
    restricted: Restriction | None = None,
) -> Verdict | None:
    """A contact made at `at`, judged by the latest word on its purpose and channel as the ledger
    knew it when the contact was recorded (`then`) and as it knows it now (`now`), and by a
    restriction of processing in effect then; None if allowed.

    Transactional (`service`) messages need no consent and are never a violation.
    """
    if purpose == SERVICE:
        return None
    if erased_at is not None and erased_at <= at:
        return Verdict(CONTACT_NOT_ALLOWED, f"the subject had been erased at {rfc3339(erased_at)}", [])
    if restricted is not None and purpose not in STORAGE_BOUND:
        since = rfc3339(restricted.since)
        reason = f"processing was restricted since {since} by request {restricted.request_id} (GDPR Art. 18)"
        return Verdict(
            CONTACT_NOT_ALLOWED, reason, [] if restricted.event_id is None else [restricted.event_id]
        )
    if then is None or then.state != GRANTED:
        said = "no consent recorded" if then is None else f"consent {then.state} since {rfc3339(then.at)}"
        ids = [] if then is None else [then.event_id]
        return Verdict(CONTACT_NOT_ALLOWED, f"{said} for {purpose} on {channel} when it was sent", ids)
    if now is None or now.state == GRANTED:
        return None
    return Verdict(
        CONTACT_LATE_OPT_OUT,
        f"allowed as known when sent; consent {now.state} at {rfc3339(now.at)} reached the ledger "
        f"only at {rfc3339(now.recorded)}",
        [then.event_id, now.event_id],
    )


def business_days(start: datetime, end: datetime) -> int:
    """Weekdays (Monday to Friday) from `start`'s date to `end`'s, counting the end but not the start;
    public holidays are not known here, so this can only undercount the allowance."""
    first, last = start.date(), end.date()
    if last <= first:
        return 0
    whole_weeks, rest = divmod((last - first).days, 7)
    count = whole_weeks * 5
    for offset in range(1, rest + 1):
        if (first + timedelta(days=whole_weeks * 7 + offset)).weekday() < 5:
            count += 1
    return count
