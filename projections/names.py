"""Names a question may use, checked before it is answered: a typo gets "did you mean", never a 0.

Tenants and systems are known from the data (the read model and the receipts of stored events);
categories, purposes and channels from the contract's closed vocabulary (schemas/vocabulary.v1.json).
"""

from collections.abc import Iterable, Sequence

from psycopg.sql import SQL, Identifier

import schemas
from ledger.errors import UnknownName
from ledger.spelling import nearest
from ledger.store import Ledger
from projections import tables

SHOWN = 5  # known names listed when none is close


def vocabulary(kind: str) -> list[str]:
    """The closed list of `kind` (category, purpose, channel, ...) in the contract."""
    return list(schemas.load(schemas.VOCABULARY)["$defs"][kind]["enum"])


def require_vocabulary(kind: str, given: Iterable[str]) -> None:
    """Refuse any of `given` that is not a `kind` of the vocabulary."""
    known = vocabulary(kind)
    for name in given:
        if name not in known:
            raise UnknownName(unknown(kind, name, known))


def require_channel(channel: str, added: Iterable[str] = ()) -> None:
    """Refuse a channel that is neither the vocabulary's nor one the tenant `added`
    (LEDGER_EXTRA_CHANNELS), so a tenant's WhatsApp can be asked about like its SMS."""
    known = [*vocabulary("channel"), *sorted(added)]
    if channel not in known:
        raise UnknownName(unknown("channel", channel, known))


def require_tenant(ledger: Ledger, tenant: str) -> None:
    """Refuse a tenant with neither a stored event nor a projected subject."""
    with ledger.writer.datastore.transaction() as curs:
        curs.execute(
            SQL(
                "SELECT EXISTS (SELECT 1 FROM {} WHERE tenant = %s) "
                "OR EXISTS (SELECT 1 FROM {} WHERE tenant = %s) AS known"
            ).format(tables.SUBJECTS, ledger.writer.receipts),
            (tenant, tenant),
        )
        row = curs.fetchone()
        if row is not None and row["known"]:
            return
        known = set(_distinct(curs, tables.SUBJECTS, "tenant"))
        known |= set(_distinct(curs, ledger.writer.receipts, "tenant"))
    raise UnknownName(unknown("tenant", tenant, sorted(known)))


def systems(ledger: Ledger, tenant: str) -> list[str]:
    """Every system (or recipient) in which the tenant ever held anything, sorted."""
    with ledger.writer.datastore.transaction() as curs:
        return _distinct(curs, Identifier("proj_intervals"), "system", tenant)


def require_systems(ledger: Ledger, tenant: str, given: Sequence[str]) -> None:
    """Refuse a system (or recipient) in which the tenant never held anything."""
    known = systems(ledger, tenant)
    for system in given:
        if system not in known:
            raise UnknownName(unknown("system", system, known, where=f" of tenant {tenant!r}"))


def unknown(kind: str, name: str, known: Sequence[str], where: str = "") -> str:
    """`unknown KIND 'NAME'WHERE: did you mean ...?` naming the nearest known values."""
    what = f"unknown {kind} {name!r}{where}"
    close = nearest(name, known)
    if close:
        return f"{what}: did you mean {' or '.join(close)}?"
    if not known:
        return f"{what}: none is known yet"
    listed = ", ".join(sorted(known)[:SHOWN]) + (", ..." if len(known) > SHOWN else "")
    return f"{what}: known are {listed}"


def _distinct(curs: tables.Cursor, table: Identifier, column: str, tenant: str | None = None) -> list[str]:
    """Distinct values of an indexed leading column (after the tenant, if given), by one index probe
    per value (a loose index scan) rather than a pass over every row."""
    scope = SQL("") if tenant is None else SQL("tenant = %(tenant)s AND ")
    curs.execute(
        SQL(
            "WITH RECURSIVE found(name) AS ("
            "SELECT min({column}) FROM {table} WHERE {scope}true "
            "UNION ALL SELECT (SELECT min({column}) FROM {table} WHERE {scope}{column} > found.name) "
            "FROM found WHERE found.name IS NOT NULL) "
            "SELECT name FROM found WHERE name IS NOT NULL"
        ).format(column=Identifier(column), table=table, scope=scope),
        {"tenant": tenant},
    )
    return [row["name"] for row in curs.fetchall()]
