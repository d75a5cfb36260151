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
    """The consent fact that decided a contact: its state, when it took effect and was recorded, and
    the objection request it came from, if it was one (an objection opts out on every channel)."""

    event_id: str
    state: str
    at: datetime
    recorded: datetime
    objection: str | None = None

    def said(self) -> str:
        """What this word was, for a reason."""
        if self.objection is not None:
            return f"objected to by request {self.objection} since {rfc3339(self.at)}"
        return f"consent {self.state} since {rfc3339(self.at)}"


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
    restricted_then: Restriction | None = None,
    restricted_now: Restriction | None = None,
) -> Verdict | None:
    """A contact made at `at`, judged by the latest word on its purpose and channel (an objection's
    included) and by a restriction of processing in effect at `at`, each as the ledger knew it when the
    contact was recorded (`then`) and as it knows it now (`now`); None if allowed.

    Transactional (`service`) messages need no consent and are never a violation.
    """
    if purpose == SERVICE:
        return None
    if erased_at is not None and erased_at <= at:
        return Verdict(CONTACT_NOT_ALLOWED, f"the subject had been erased at {rfc3339(erased_at)}", [])
    if purpose in STORAGE_BOUND:  # a restriction still allows these (Art. 18(2))
        restricted_then = restricted_now = None
    if restricted_then is not None:
        return Verdict(
            CONTACT_NOT_ALLOWED, f"processing was {_restricted(restricted_then)}", _shown(restricted_then)
        )
    if then is None or then.state != GRANTED:
        said = "no consent recorded" if then is None else then.said()
        ids = [] if then is None else [then.event_id]
        return Verdict(CONTACT_NOT_ALLOWED, f"{said} for {purpose} on {channel} when it was sent", ids)
    return _learned_late(then, now, restricted_now)


def _learned_late(then: Word, now: Word | None, restricted_now: Restriction | None) -> Verdict | None:
    """A contact allowed as known when sent, judged by what the ledger learned after it."""
    if restricted_now is not None:
        return Verdict(
            CONTACT_LATE_OPT_OUT,
            f"allowed as known when sent; processing {_restricted(restricted_now)}, which reached the "
            "ledger only after the contact",
            [then.event_id, *_shown(restricted_now)],
        )
    if now is None or now.state == GRANTED:
        return None
    word = "consent " + now.state if now.objection is None else f"objection by request {now.objection}"
    return Verdict(
        CONTACT_LATE_OPT_OUT,
        f"allowed as known when sent; {word} at {rfc3339(now.at)} reached the ledger "
        f"only at {rfc3339(now.recorded)}",
        [then.event_id, now.event_id],
    )


def _restricted(restriction: Restriction) -> str:
    return f"restricted since {rfc3339(restriction.since)} by request {restriction.request_id} (GDPR Art. 18)"


def _shown(restriction: Restriction) -> list[str]:
    return [] if restriction.event_id is None else [restriction.event_id]


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
