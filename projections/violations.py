"""The violations report: every kind of breach of the rules the ledger can see in one tenant's facts.

Candidates come from SQL over the read model (a big tenant is scanned by PostgreSQL, not loaded
into Python); `ledger.violations` judges them. Each entry names the events that show it.
"""

from collections import Counter
from collections.abc import Sequence
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import Any, cast

from psycopg.sql import SQL

from ledger import violations as kinds
from ledger.contact import STORAGE_BOUND, Restriction
from ledger.retention import Rule
from ledger.rights import RightsClock
from ledger.state import DIRECT_MARKETING, GRANTED, OPTED_OUT
from ledger.store import Ledger
from ledger.violations import Word, business_days, judge_contact
from projections.expiry import held_past_expiry
from projections.queries import plain
from projections.retention import unconfirmed_orders
from projections.rights import late_requests

# The latest word on the contact's purpose and channel by event time, among all (now) or among what
# was stored before the contact in the subject's log (then). Ties go to the later stored, as in the fold.
_LATEST = """
LEFT JOIN LATERAL (SELECT event_id, state, at, recorded FROM proj_consent_log l
  WHERE l.tenant = c.tenant AND l.subject = c.subject AND l.purpose = c.purpose
  AND l.channel = c.channel AND l.at <= c.time {}
  ORDER BY l.at DESC, l.version DESC LIMIT 1) {} ON true
"""
# A restriction of processing in effect when the contact was made: requested by then, not lifted or
# refused by then (ledger.state.restriction_in_effect at the contact's instant), among every fact (now)
# or among the facts stored before the contact (then); from the rights log, as the consent words are.
_RESTRICTED = """
LEFT JOIN LATERAL (SELECT q.request_id, q.at, q.event_id FROM proj_rights_log q
  WHERE q.tenant = c.tenant AND q.subject = c.subject AND q.step = 'requested'
  AND q."right" = 'restriction' AND q.at <= c.time {0}
  AND NOT EXISTS (SELECT FROM proj_rights_log e WHERE e.tenant = q.tenant AND e.subject = q.subject
    AND e.request_id = q.request_id AND e.step IN ('lifted', 'refused') AND e.at <= c.time {1})
  ORDER BY q.at, q.request_id LIMIT 1) {2} ON c.purpose <> ALL(%(storage_bound)s)
"""
# The latest word an objection naming the contact's purpose said on it, on every channel: direct
# marketing stops on receipt (Art. 21(3)), any other purpose once the objection is upheld (fulfilled).
_OBJECTED = """
LEFT JOIN LATERAL (SELECT o.event_id, o.at, o.recorded, q.request_id FROM proj_rights_log q
  JOIN proj_rights_log o ON o.tenant = q.tenant AND o.subject = q.subject AND o.request_id = q.request_id
  WHERE q.tenant = c.tenant AND q.subject = c.subject AND q.step = 'requested'
  AND q."right" = 'objection' AND c.purpose = ANY(q.purposes) AND o.at <= c.time {0}
  AND (o.step = 'fulfilled' OR o.step = 'requested' AND c.purpose = ANY(%(direct_marketing)s))
  ORDER BY o.at DESC, o.version DESC LIMIT 1) {1} ON true
"""
_BEFORE = "AND {0}.version < c.version"
_CONTACTS = SQL(
    "SELECT c.subject, c.event_id, c.purpose, c.channel, c.message_id, c.campaign, c.time, c.recorded, "
    "s.erased_at, now.event_id AS now_id, now.state AS now_state, now.at AS now_at, "
    "now.recorded AS now_recorded, then_.event_id AS then_id, then_.state AS then_state, "
    "then_.at AS then_at, then_.recorded AS then_recorded, "
    "r_now.request_id AS r_now_id, r_now.at AS r_now_at, r_now.event_id AS r_now_event, "
    "r_then.request_id AS r_then_id, r_then.at AS r_then_at, r_then.event_id AS r_then_event, "
    "o_now.event_id AS o_now_id, o_now.at AS o_now_at, o_now.recorded AS o_now_recorded, "
    "o_now.request_id AS o_now_request, o_then.event_id AS o_then_id, o_then.at AS o_then_at, "
    "o_then.recorded AS o_then_recorded, o_then.request_id AS o_then_request "
    "FROM proj_contacts c JOIN proj_subjects s ON s.tenant = c.tenant AND s.subject = c.subject "
    + _LATEST.format("", "now")
    + _LATEST.format("AND l.version < c.version", "then_")
    + _RESTRICTED.format("", "", "r_now")
    + _RESTRICTED.format(_BEFORE.format("q"), _BEFORE.format("e"), "r_then")
    + _OBJECTED.format("", "o_now")
    + _OBJECTED.format(f"{_BEFORE.format('q')} {_BEFORE.format('o')}", "o_then")
    + "WHERE c.tenant = %(tenant)s AND c.purpose <> 'service' "
    "AND c.time >= %(start)s AND c.time < %(end)s "
    "AND (s.erased_at <= c.time OR now.state IS DISTINCT FROM 'granted' "
    "OR then_.state IS DISTINCT FROM 'granted' OR r_now.request_id IS NOT NULL "
    "OR r_then.request_id IS NOT NULL OR o_now.event_id IS NOT NULL) ORDER BY c.time, c.subject"
)
_COLLECTED = SQL(
    "SELECT subject, event_id, category, system, time, reason FROM proj_violations "
    "WHERE tenant = %(tenant)s AND time >= %(start)s AND time < %(end)s ORDER BY time, subject"
)
_SHARES = SQL(
    "SELECT subject, event_id, recipient, recipient_type, time FROM proj_shares "
    "WHERE tenant = %(tenant)s AND time >= %(start)s AND time < %(end)s "
    "AND NOT recipient = ANY(%(declared)s) ORDER BY time, subject"
)


@dataclass(frozen=True)
class Entry:
    """One violation: what kind, whose, when, why, and the events that show it."""

    kind: str
    subject: str
    time: datetime
    reason: str
    event_ids: list[str]
    details: dict[str, Any] = field(default_factory=dict)

    def as_json(self) -> dict[str, Any]:
        """A row of `violations --json`."""
        return {
            "kind": self.kind,
            "subject": self.subject,
            "time": plain(self.time),
            "reason": self.reason,
            "event_ids": self.event_ids,
            **plain(self.details),
        }


@dataclass(frozen=True)
class Report:
    """Every violation of one tenant in [start, end), with counts per kind."""

    tenant: str
    start: datetime
    end: datetime
    entries: list[Entry]
    opt_outs: list[dict[str, Any]]  # every opt-out followed by contacts: how long they went on
    notes: list[str]

    def counts(self) -> dict[str, int]:
        """Entries per kind, every kind listed."""
        found = Counter(entry.kind for entry in self.entries)
        return {kind: found[kind] for kind in kinds.KINDS}

    def as_json(self) -> dict[str, Any]:
        """The `violations --json` document."""
        return {
            "tenant": self.tenant,
            "from": plain(self.start),
            "to": plain(self.end),
            "counts": self.counts(),
            "notes": self.notes,
            "violations": [entry.as_json() for entry in self.entries],
            "opt_outs_followed_by_contacts": plain(self.opt_outs),
        }


@dataclass(frozen=True)
class Period:
    """The window a report covers, and the instant it is judged at (clocks run to `now`)."""

    start: datetime
    end: datetime
    now: datetime


def violations(
    ledger: Ledger,
    tenant: str,
    period: Period,
    retention_rules: list[Rule],
    confirm_days: int,
) -> Report:
    """Every violation of `tenant` whose time falls in the period."""
    params = {
        "tenant": tenant,
        "start": period.start,
        "end": period.end,
        "now": period.now,
        "storage_bound": list(STORAGE_BOUND),
        "direct_marketing": list(DIRECT_MARKETING),
    }
    notes: list[str] = []
    with ledger.writer.datastore.transaction() as curs:
        curs.execute(_CONTACTS, params)
        entries, opt_outs = _contacts(curs.fetchall())
        curs.execute(_COLLECTED, params)
        entries += [
            Entry(
                kinds.COLLECTED_AFTER_ERASURE,
                row["subject"],
                row["time"],
                row["reason"],
                [row["event_id"]],
                {"category": row["category"], "system": row["system"]},
            )
            for row in curs.fetchall()
        ]
        late = late_requests(ledger, tenant, period.now, period.start, period.end)
        entries += [_late_request(clock, period.now) for clock in late]
        entries += _undeclared(curs, ledger, tenant, params, notes)
        entries += _retention(curs, ledger, tenant, period, rules=retention_rules, confirm_days=confirm_days)
    entries.sort(key=lambda entry: (entry.time, entry.subject, entry.kind))
    return Report(tenant, period.start, period.end, entries, opt_outs, notes)


def _contacts(rows: Sequence[dict[str, Any]]) -> tuple[list[Entry], list[dict[str, Any]]]:
    """Contacts made without consent, and for each opt-out (or withdrawal) followed by contacts,
    how long they went on; those past the FCC's deadline are violations of their own."""
    entries = []
    after_opt_out: dict[str, list[dict[str, Any]]] = {}
    for row in rows:
        then = _later(_word(row, "then_"), _objection(row, "o_then_"))
        now = _later(_word(row, "now_"), _objection(row, "o_now_"))
        verdict = judge_contact(
            row["purpose"],
            row["channel"],
            row["time"],
            erased_at=row["erased_at"],
            restricted_then=_restriction(row, "r_then_"),
            restricted_now=_restriction(row, "r_now_"),
            then=then,
            now=now,
        )
        if verdict is None:
            continue
        details = {
            "purpose": row["purpose"],
            "channel": row["channel"],
            "message_id": row["message_id"],
            "campaign": row["campaign"],
            "recorded": row["recorded"],
        }
        if verdict.kind == kinds.CONTACT_LATE_OPT_OUT and now is not None and now.state != GRANTED:
            details |= {"opted_out_at": now.at, "opt_out_recorded": now.recorded}
        shown_by = [row["event_id"], *verdict.event_ids]
        entries.append(Entry(verdict.kind, row["subject"], row["time"], verdict.reason, shown_by, details))
        if now is not None and now.state != GRANTED and now.objection is None:
            after_opt_out.setdefault(now.event_id, []).append(row)
    measured = [_measure(contacts) for contacts in after_opt_out.values()]
    entries += [_obeyed_late(measure) for measure in measured if not measure["within_fcc"]]
    return entries, measured


def _word(row: dict[str, Any], prefix: str) -> Word | None:
    if row[f"{prefix}id"] is None:
        return None
    return Word(row[f"{prefix}id"], row[f"{prefix}state"], row[f"{prefix}at"], row[f"{prefix}recorded"])


def _objection(row: dict[str, Any], prefix: str) -> Word | None:
    if row[f"{prefix}id"] is None:
        return None
    at, recorded = row[f"{prefix}at"], row[f"{prefix}recorded"]
    return Word(row[f"{prefix}id"], OPTED_OUT, at, recorded, objection=row[f"{prefix}request"])


def _later(word: Word | None, objection: Word | None) -> Word | None:
    """The word in force: the later by event time (an objection wins a tie, as it folds over every
    channel's word of that instant)."""
    if objection is not None and (word is None or objection.at >= word.at):
        return objection
    return word


def _restriction(row: dict[str, Any], prefix: str) -> Restriction | None:
    if row[f"{prefix}id"] is None:
        return None
    return Restriction(row[f"{prefix}id"], row[f"{prefix}at"], row[f"{prefix}event"])


def _measure(contacts: list[dict[str, Any]]) -> dict[str, Any]:
    """An opt-out and the contacts after it: from its event time to the last of them."""
    first = contacts[0]
    last = max(row["time"] for row in contacts)
    days = business_days(first["now_at"], last)
    return {
        "subject": first["subject"],
        "event_id": first["now_id"],
        "purpose": first["purpose"],
        "channel": first["channel"],
        "opted_out_at": first["now_at"],
        "recorded": first["now_recorded"],
        "last_contact": last,
        "contacts": len(contacts),
        "contact_ids": [row["event_id"] for row in contacts],
        "business_days": days,
        "within_fcc": days <= kinds.FCC_BUSINESS_DAYS,
    }


def _obeyed_late(measure: dict[str, Any]) -> Entry:
    """An opt-out after which contacts went on for longer than the FCC allows."""
    return Entry(
        kinds.OPT_OUT_OBEYED_LATE,
        measure["subject"],
        measure["opted_out_at"],
        f"{measure['contacts']} contact(s) after the opt-out, the last {measure['business_days']} business "
        f"days later (the FCC allows {kinds.FCC_BUSINESS_DAYS})",
        [measure["event_id"], *measure["contact_ids"]],
        {
            "channel": measure["channel"],
            "purpose": measure["purpose"],
            "last_contact": measure["last_contact"],
        },
    )


def _late_request(clock: RightsClock, now: datetime) -> Entry:
    """A request answered after its deadline under its jurisdiction's rule, or still open past it."""
    answered = clock.answered_at
    said = "still open" if answered is None else f"{clock.status} at {plain(answered)}"
    return Entry(
        kinds.REQUEST_ANSWERED_LATE,
        clock.subject,
        clock.deadline,
        f"{clock.right} request {clock.request_id} {said}, past its deadline of {plain(clock.deadline)} "
        f"({clock.regime})",
        [] if clock.event_id is None else [clock.event_id],
        {
            "request_id": clock.request_id,
            "right": clock.right,
            "regime": clock.regime,
            "requested_at": clock.requested_at,
            "answered_at": answered,
            "days_late": round(((answered or now) - clock.deadline) / timedelta(days=1), 1),
        },
    )


def _undeclared(
    curs: Any, ledger: Ledger, tenant: str, params: dict[str, Any], notes: list[str]
) -> list[Entry]:
    """Shares with a recipient the tenant's current declaration omits (a notice names today's
    sub-processors; shares from before it was recorded are judged by it too)."""
    history = ledger.declarations(tenant).declarations
    if not history:
        notes.append(f"no declaration recorded for {tenant}: recipients not judged (see `declare`)")
        return []
    declared = [entry["name"] for entry in history[-1].document.get("recipient", [])]
    curs.execute(_SHARES, params | {"declared": declared})
    return [
        Entry(
            kinds.UNDECLARED_RECIPIENT,
            row["subject"],
            row["time"],
            f"shared with {row['recipient']} ({row['recipient_type']}), not a declared recipient",
            [row["event_id"]],
            {"recipient": row["recipient"]},
        )
        for row in curs.fetchall()
    ]


def _retention(
    curs: Any, ledger: Ledger, tenant: str, period: Period, *, rules: list[Rule], confirm_days: int
) -> list[Entry]:
    """Purge orders unconfirmed past their deadline, and holdings kept past expiry with no order."""
    deadline = timedelta(days=confirm_days)
    entries = []
    for row in unconfirmed_orders(ledger, tenant, period.now, confirm_days):
        sent_at, categories = cast(datetime, row["sent_at"]), cast(list[str], row["categories"])
        if period.start <= sent_at + deadline < period.end:
            entries.append(
                Entry(
                    kinds.PURGE_UNCONFIRMED,
                    str(row["subject"]),
                    sent_at + deadline,
                    f"purge of {', '.join(categories)} in {row['system']} unconfirmed {confirm_days} days "
                    f"after it was sent",
                    [str(row["order_id"])],
                    {"system": row["system"], "categories": categories, "ordered_at": row["ordered_at"]},
                )
            )
    expired = held_past_expiry(
        curs, ledger.orders.table, tenant, rules, now=period.now, within=(period.start, period.end)
    )
    entries += [
        Entry(
            kinds.HELD_PAST_EXPIRY,
            held.subject,
            held.expires_at,
            f"{held.category} in {held.system} held past its expiry (rule {held.rule}), no purge ordered",
            held.opened_by,
            {"system": held.system, "category": held.category, "rule": held.rule},
        )
        for held in expired
    ]
    return entries
