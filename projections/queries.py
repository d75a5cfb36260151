"""Questions answered from the read model; plain functions returning typed objects."""

from collections.abc import Mapping, Sequence
from dataclasses import asdict, dataclass
from datetime import UTC, datetime
from operator import itemgetter
from typing import Any

from eventsourcing.domain import DomainEvent
from psycopg.sql import SQL, Composed, Identifier

from ledger.contact import STORAGE_BOUND, Decision, Restriction, decide
from ledger.errors import UnknownSubject
from ledger.purges import HoldingKey, OpenOrder
from ledger.retention import PURGE_ORDERED, Rule, retention
from ledger.rights import clocks, deadline_rules
from ledger.state import GRANTED, SERVICE, Consent, SubjectState, recipients_to_confirm
from ledger.store import Ledger
from ledger.times import rfc3339
from projections import tables
from projections.changes import TOPICS


def subject_state(ledger: Ledger, tenant: str, subject: str) -> SubjectState:
    """The projected state of one subject of one tenant."""
    with ledger.writer.datastore.transaction() as curs:
        state = tables.load(curs, [(tenant, subject)]).get((tenant, subject))
    if state is None:
        raise UnknownSubject(
            f"tenant {tenant!r} has no subject {subject!r} (or it is not projected yet: "
            f"run `consent-ledger project --until-idle`)"
        )
    return state


def may_contact(ledger: Ledger, tenant: str, subject: str, purpose: str, channel: str) -> Decision:
    """May the tenant contact the subject for `purpose` on `channel` now?"""
    decision = _decisions(ledger, tenant, [subject], purpose, channel)[subject]
    if decision is None:
        raise UnknownSubject(f"tenant {tenant!r} has no subject {subject!r}: check both ids")
    return decision


UNKNOWN = "unknown subject: the tenant has no subject with this id"


@dataclass(frozen=True)
class Checked:
    """A bulk check's answer: the subjects that may be contacted, in the order asked, and those that may
    not with each decision (a subject the tenant does not have is denied as unknown)."""

    allowed: list[str]
    denied: dict[str, Decision]


def may_contact_many(
    ledger: Ledger, tenant: str, subjects: Sequence[str], purpose: str, channel: str
) -> Checked:
    """`may_contact` for many subjects of one tenant at once, in one statement outside any transaction;
    repeats are answered once."""
    with ledger.writer.datastore.get_connection() as conn:
        row = conn.execute(
            BULK, bulk_parameters(tenant, subjects, purpose, channel), prepare=False
        ).fetchone()
    assert row is not None  # an aggregate without GROUP BY returns one row
    return checked_of(row, purpose, channel)


def bulk_parameters(tenant: str, subjects: Sequence[str], purpose: str, channel: str) -> dict[str, Any]:
    """The parameters of `BULK` (and `keyed_bulk`, with the key's) for these subjects, without repeats.

    The words of `decide`'s rule come from ledger.contact, so the SQL names none of them."""
    return {
        "subjects": list(dict.fromkeys(subjects)),
        "tenant": tenant,
        "purpose": purpose,
        "channel": channel,
        "storage_bound": purpose in STORAGE_BOUND,
        "service": purpose == SERVICE,
        "granted": GRANTED,
    }


def checked_of(row: Mapping[str, Any], purpose: str, channel: str) -> Checked:
    """The answer a row of `BULK` or `keyed_bulk` gives: only the denied subjects cost a `decide`."""
    denied = {}
    for subject, *deciding in zip(*(row[column] or [] for column in _DENIED), strict=True):
        denied[subject] = _decision(purpose, channel, deciding) or Decision(False, UNKNOWN)
    return Checked(row["allowed"] or [], denied)


def _decisions(
    ledger: Ledger, tenant: str, subjects: Sequence[str], purpose: str, channel: str
) -> dict[str, Decision | None]:
    """Each subject's decision (None: the tenant has no such subject), from one statement outside any
    transaction: one round trip, whatever the number of subjects."""
    wanted = list(dict.fromkeys(subjects))
    # One subject: a prepared statement (planning would cost more than running it). Many: planned for
    # this array each time; PostgreSQL's generic plan for a prepared batch ran about 20x slower.
    parameters = (wanted, tenant, tenant, purpose, channel)
    with ledger.writer.datastore.get_connection() as conn:
        rows = conn.execute(DECISIONS, parameters, prepare=len(wanted) == 1).fetchall()
    found = {row["subject"]: decision_of(row, purpose, channel) for row in rows}
    return {subject: found[subject] for subject in wanted}


# The columns of a `DECISIONS` row that `decision_of` reads; in `BULK`'s row, the denied subjects' ones
# are arrays in the order asked, after the array of those subjects (`denied`).
_DECIDING = ("erased", "state", "since", "event_id", "restricted_by", "restricted_since", "restriction_event")
_DENIED = ("denied", *_DECIDING)
_deciding = itemgetter(*_DECIDING)


def decision_of(row: Mapping[str, Any], purpose: str, channel: str) -> Decision | None:
    """The decision a row of `DECISIONS` or `KEYED_DECISION` gives (None: no such subject)."""
    return _decision(purpose, channel, _deciding(row))


def _decision(purpose: str, channel: str, deciding: Sequence[Any]) -> Decision | None:
    """The decision from the values of the `_DECIDING` columns, in their order (None: no such subject)."""
    erased, state, since, event_id, restricted_by, restricted_since, restriction_event = deciding
    if erased is None:
        return None
    consent = None if state is None else Consent(purpose, channel, state, since, event_id)
    restriction = (
        None if restricted_by is None else Restriction(restricted_by, restricted_since, restriction_event)
    )
    return decide(erased, purpose, channel, consent, restriction)


# The restriction of processing in effect on a subject, as ledger.state.restriction_in_effect picks it:
# the oldest one received, neither refused nor lifted.
_RESTRICTION_COLUMNS = SQL(
    "request_id AS restricted_by, requested_at AS restricted_since, event_id AS restriction_event"
)
_IN_EFFECT = SQL(
    "\"right\" = 'restriction' AND requested_at IS NOT NULL AND status <> 'refused' AND lifted_at IS NULL"
)
_RIGHTS = Identifier("proj_rights_requests")
RESTRICTION = SQL(  # on subject `s`
    "LEFT JOIN LATERAL (SELECT {} FROM {} WHERE tenant = s.tenant AND subject = s.subject "
    "AND {} ORDER BY requested_at, request_id LIMIT 1) r ON true"
).format(_RESTRICTION_COLUMNS, _RIGHTS, _IN_EFFECT)
DECISIONS = SQL(
    "SELECT q.subject, s.erased, c.state, c.since, c.event_id, r.* "
    "FROM unnest(%s::text[]) AS q(subject) "
    "LEFT JOIN {} s ON s.tenant = %s AND s.subject = q.subject "
    "LEFT JOIN {} c ON c.tenant = %s AND c.subject = q.subject AND c.purpose = %s AND c.channel = %s {}"
).format(tables.SUBJECTS, Identifier("proj_consents"), RESTRICTION)


def keyed_decision(keys: Identifier) -> Composed:
    """One statement for a check over HTTP: the live API key whose hash is %(hash)s and, only if the
    key may see %(tenant)s in one of the %(roles)s, the subject's decision row (as `DECISIONS`).

    The key is read in the same statement as the answer, so a revocation refuses the next check."""
    return SQL(
        "SELECT k.key_id, k.tenant, k.role, k.created_at, k.revoked_at, "
        "s.erased, c.state, c.since, c.event_id, r.* FROM {keys} k "
        "LEFT JOIN {subjects} s ON (k.tenant IS NULL OR k.tenant = %(tenant)s) AND k.role = ANY(%(roles)s) "
        "AND s.tenant = %(tenant)s AND s.subject = %(subject)s "
        "LEFT JOIN {consents} c ON c.tenant = s.tenant AND c.subject = s.subject "
        "AND c.purpose = %(purpose)s AND c.channel = %(channel)s {restriction} "
        "WHERE k.hash = %(hash)s AND k.revoked_at IS NULL"
    ).format(
        keys=keys, subjects=tables.SUBJECTS, consents=Identifier("proj_consents"), restriction=RESTRICTION
    )


def _bulk(gate: SQL) -> Composed:
    """The bulk check over the subjects %(subjects)s of %(tenant)s (`bulk_parameters`), for rows passing
    `gate`: one row holding the allowed subjects and, column by column, the denied ones' decision rows.

    Whether `decide` would allow a subject is asked in SQL, so that allowed subjects (most of a
    campaign) cost no Python: not erased, not restricted unless the purpose is storage-bound, and a
    service message or a live grant (tests/test_bulk.py pins this to `decide` for every kind of
    subject). Restrictions in effect are read once for the tenant and joined, not looked up per
    subject. The subjects go as a binary array: psycopg dumps that 4x faster than text, and
    PostgreSQL, knowing its length, plans hash joins for large batches and index look-ups for small
    ones (a JSON array, counted as 100 rows, made it pick index look-ups for 10,000)."""
    denied = SQL(", ").join(
        SQL("array_agg({} ORDER BY n) FILTER (WHERE NOT allowed) AS {}").format(
            Identifier("subject" if column == "denied" else column), Identifier(column)
        )
        for column in _DENIED
    )
    return SQL(
        "SELECT array_agg(subject ORDER BY n) FILTER (WHERE allowed) AS allowed, {denied} FROM ("
        "SELECT q.n, q.subject, s.erased, c.state, c.since, c.event_id, r.restricted_by, r.restricted_since, "
        "r.restriction_event, coalesce(NOT s.erased AND (r.restricted_by IS NULL OR %(storage_bound)s) "
        "AND (%(service)s OR c.state = %(granted)s), false) AS allowed "
        "FROM unnest(%(subjects)b::text[]) WITH ORDINALITY AS q(subject, n) "
        "LEFT JOIN {subjects} s ON s.tenant = %(tenant)s AND s.subject = q.subject "
        "LEFT JOIN {consents} c ON c.tenant = %(tenant)s AND c.subject = q.subject "
        "AND c.purpose = %(purpose)s AND c.channel = %(channel)s "
        "LEFT JOIN (SELECT DISTINCT ON (subject) subject, {columns} FROM {rights} "
        "WHERE tenant = %(tenant)s AND {in_effect} ORDER BY subject, requested_at, request_id) r "
        "ON r.subject = q.subject {gate}) d"
    ).format(
        denied=denied,
        subjects=tables.SUBJECTS,
        consents=Identifier("proj_consents"),
        columns=_RESTRICTION_COLUMNS,
        rights=_RIGHTS,
        in_effect=_IN_EFFECT,
        gate=gate,
    )


BULK = _bulk(SQL(""))


def keyed_bulk(keys: Identifier) -> Composed:
    """`BULK` over HTTP: the live API key whose hash is %(hash)s and, only if the key may see %(tenant)s
    in one of the %(roles)s, the bulk check's row (as `keyed_decision` does for one subject)."""
    return SQL(
        "SELECT k.key_id, k.tenant, k.role, k.created_at, k.revoked_at, b.* FROM {keys} k "
        "CROSS JOIN LATERAL ({bulk}) b WHERE k.hash = %(hash)s AND k.revoked_at IS NULL"
    ).format(
        keys=keys,
        bulk=_bulk(SQL("WHERE (k.tenant IS NULL OR k.tenant = %(tenant)s) AND k.role = ANY(%(roles)s)")),
    )


@dataclass(frozen=True)
class Progress:
    """How far the read model has come: the newest stored event's position, the projected one, and
    the events after it that the projection still has to apply."""

    newest: int
    projected: int
    lag: int


def progress(ledger: Ledger) -> Progress:
    """The projection's progress through the log, read from PostgreSQL.

    Lag counts only events the projection applies: the projector moves its position on the facts it
    folds, so events it never reads (purge orders' `RetentionExpired`, policy adoptions) stay after
    the position without anything being behind.
    """
    newest = ledger.writer.max_notification_id() or 0
    with ledger.writer.datastore.transaction() as curs:
        projected = _projected(curs)
        curs.execute(
            SQL("SELECT count(*) AS n FROM {} WHERE notification_id > %s AND topic = ANY(%s)").format(
                ledger.writer.events
            ),
            (projected, TOPICS),
        )
        pending = curs.fetchone()
    return Progress(newest, projected, pending["n"] if pending else 0)


def projection_delay(ledger: Ledger, now: datetime) -> float:
    """Seconds since the oldest stored event the projection has yet to apply was stored (0: none)."""
    with ledger.writer.datastore.transaction() as curs:
        projected = _projected(curs)
    pending = ledger.recorder.select_notifications(
        start=projected, limit=1, topics=TOPICS, inclusive_of_start=False
    )
    if not pending:
        return 0.0
    event = ledger.mapper.to_domain_event(pending[0])
    assert isinstance(event, DomainEvent)  # every stored event is; the mapper is typed by a protocol
    return max(0.0, (now - event.timestamp).total_seconds())


def _projected(curs: tables.Cursor) -> int:
    """The position the projection has reached."""
    curs.execute(
        SQL("SELECT position FROM {} WHERE name = %s").format(tables.POSITIONS), (tables.PROJECTION,)
    )
    row = curs.fetchone()
    return int(row["position"]) if row else 0


def counts(ledger: Ledger) -> dict[str, dict[str, int]]:
    """Per tenant: facts stored and subjects projected."""
    stored = ledger.writer.counts()
    with ledger.writer.datastore.transaction() as curs:
        curs.execute(SQL("SELECT tenant, count(*) AS n FROM {} GROUP BY tenant").format(tables.SUBJECTS))
        subjects = {row["tenant"]: row["n"] for row in curs.fetchall()}
    return {
        tenant: {"events": stored.get(tenant, 0), "subjects": subjects.get(tenant, 0)}
        for tenant in sorted(set(stored) | set(subjects))
    }


def as_json(
    state: SubjectState,
    rules: list[Rule] | None = None,
    orders: Mapping[HoldingKey, OpenOrder] | None = None,
    now: datetime | None = None,
) -> dict[str, Any]:
    """The subject as a JSON-ready document (the `subject --json` contract); with a retention
    policy's `rules`, each holding also says when it expires and under which rule, and with the
    subject's open purge `orders`, that its purge is ordered and awaits confirmation. Rights requests
    are on their clocks as of `now` (default: the present)."""

    def ordered(collection: dict[Any, Any]) -> list[Any]:
        return [item for _, item in sorted(collection.items(), key=lambda kv: str(kv[0]))]

    def rows(collection: dict[Any, Any]) -> list[dict[str, Any]]:
        return [plain(asdict(item)) for item in ordered(collection)]

    shares = sorted((asdict(s) for s in state.shares.values()), key=lambda s: (s["time"], s["event_id"]))
    holdings = []
    for holding in ordered(state.holdings):
        row = plain(asdict(holding))
        if rules is not None:
            kept = retention(holding, state, rules)
            row |= {
                "retention_expires_at": plain(kept.expires_at),
                "retention_rule": kept.rule,
                "retention_status": kept.status,
                "retention_note": kept.note,
            }
            order = (orders or {}).get((state.tenant, state.subject, holding.system, holding.category))
            row |= order_fields(order)
            if order is not None:
                row |= {"retention_status": PURGE_ORDERED, "retention_note": order.note()}
        holdings.append(row)
    return {
        "tenant": state.tenant,
        "subject": state.subject,
        "erased": state.erased,
        "erased_at": plain(state.erased_at),
        "first_seen": plain(state.first_seen),
        "last_event_at": plain(state.last_event_at),
        "account_closed_at": plain(state.account_closed_at),
        "holdings": holdings,
        "consent": rows(state.consent),
        "shares": [plain(s) for s in shares],
        "deletion_requests": rows(state.deletion_requests),
        "rights_requests": [
            plain(asdict(c)) for c in clocks(state, now or datetime.now(UTC), deadline_rules())
        ],
        "child_signals": rows(state.child_signals),
        "legal_holds": rows(state.legal_holds),
        "violations": rows(state.violations),
        "recipients_unconfirmed": recipients_to_confirm(state),
    }


def order_fields(order: OpenOrder | None) -> dict[str, Any]:
    """The JSON fields saying whether a holding's purge is ordered and awaiting confirmation."""
    return {
        "purge_ordered_at": None if order is None else plain(order.ordered_at),
        "purge_overdue": None if order is None else order.overdue,
    }


def plain(value: Any) -> Any:
    """Datetimes as RFC 3339 UTC text, recursively; everything else as it is."""
    if isinstance(value, datetime):
        return rfc3339(value)
    if isinstance(value, dict):
        return {str(key): plain(item) for key, item in value.items()}
    if isinstance(value, list | tuple):
        return [plain(item) for item in value]
    return value
