"""The subject read model in PostgreSQL: one table per part of `SubjectState`, keyed by tenant.

Columns follow the state dataclasses field for field, so the tables and the fold cannot drift apart.
"""

import dataclasses
import operator
import types
import typing
from collections.abc import Iterable, Iterator, Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Any

import psycopg
from psycopg.rows import DictRow
from psycopg.sql import SQL, Composed, Identifier

from ledger.state import (
    ChildSignal,
    Consent,
    ConsentChange,
    Contact,
    DeletionRequest,
    Holding,
    Interval,
    KeywordStop,
    LegalHold,
    Resubscribe,
    RightsChange,
    RightsRequest,
    Share,
    SubjectState,
    Violation,
)
from ledger.store import Ledger, retry_schema_change

_SQL_TYPES: dict[object, str] = {
    str: "text",
    bool: "boolean",
    int: "bigint",
    datetime: "timestamptz",
    list[str]: "text[]",
}
Cursor = psycopg.Cursor[DictRow]


@dataclass(frozen=True)
class Part:
    """A table holding one collection of `SubjectState`, with the dataclass of its rows."""

    table: str
    row: type[Any]
    attribute: str
    key: tuple[str, ...]

    def columns(self) -> list[tuple[str, str, bool]]:
        """(name, SQL type, nullable) for each column after tenant and subject."""
        hints = typing.get_type_hints(self.row)
        found = []
        for item in dataclasses.fields(self.row):
            hint = hints[item.name]
            args = typing.get_args(hint) if isinstance(hint, types.UnionType) else ()
            nullable = type(None) in args
            base = next((a for a in args if a is not type(None)), hint)
            found.append((item.name, _SQL_TYPES[base], nullable))
        return found

    def state_key(self, row: Any) -> Any:
        """The dictionary key of a row within its `SubjectState` collection."""
        values = tuple(getattr(row, name) for name in self.key)
        return values[0] if len(values) == 1 else values


PARTS = (
    Part("proj_holdings", Holding, "holdings", ("category", "system")),
    Part("proj_consents", Consent, "consent", ("purpose", "channel")),
    Part("proj_shares", Share, "shares", ("event_id",)),
    Part("proj_deletion_requests", DeletionRequest, "deletion_requests", ("request_id",)),
    Part("proj_legal_holds", LegalHold, "legal_holds", ("hold_id",)),
    Part("proj_violations", Violation, "violations", ("event_id",)),
    Part("proj_intervals", Interval, "intervals", ("opened_by",)),
    Part("proj_rights_requests", RightsRequest, "rights_requests", ("request_id",)),
    Part("proj_keyword_stops", KeywordStop, "keyword_stops", ("purpose", "channel")),
    Part("proj_resubscribes", Resubscribe, "resubscribes", ("channel",)),
    Part("proj_child_signals", ChildSignal, "child_signals", ("event_id",)),
)
# Logs: rows are only ever added (a fact does not change), so `load` leaves them out and `save` adds
# the rows a page folded, instead of reading a subject's every message back on each page.
LOGS = (
    Part("proj_consent_log", ConsentChange, "consent_log", ("event_id", "purpose")),
    Part("proj_contacts", Contact, "contacts", ("event_id",)),
    Part("proj_rights_log", RightsChange, "rights_log", ("event_id",)),
)
SUBJECT_COLUMN_TYPES = (
    ("first_seen", "timestamptz"),
    ("last_event_at", "timestamptz"),
    ("erased", "bool"),
    ("erased_at", "timestamptz"),
    ("account_closed_at", "timestamptz"),
)
SUBJECT_COLUMNS = tuple(name for name, _ in SUBJECT_COLUMN_TYPES)
SUBJECTS_TABLE = "proj_subjects"
SUBJECTS = Identifier(SUBJECTS_TABLE)
SHADOW = "rebuild_"  # the prefix of the tables a rebuild fills before swapping them in
POSITIONS = Identifier("proj_positions")
PROJECTION = "subjects"  # the name its position is tracked under


def create(curs: Cursor) -> None:
    """Create the read-model tables where missing."""
    _create_tables(curs, "")
    curs.execute(
        SQL("CREATE TABLE IF NOT EXISTS {} (name text PRIMARY KEY, position bigint NOT NULL)").format(
            POSITIONS
        )
    )
    _create_indexes(curs)


def create_shadow(curs: Cursor) -> None:
    """Empty tables beside the live ones, for a rebuild to fill and then swap in (`swap_in_shadow`)."""
    drop_shadow(curs)  # what a rebuild that was killed left behind
    _create_tables(curs, SHADOW)


def drop_shadow(curs: Cursor) -> None:
    """Drop a rebuild's tables, if any."""
    for name in table_names():
        curs.execute(SQL("DROP TABLE IF EXISTS {}").format(Identifier(SHADOW + name)))


def swap_in_shadow(curs: Cursor) -> None:
    """Replace every live table by its shadow, indexes and all, in the caller's transaction."""
    for name in table_names():
        curs.execute(SQL("DROP TABLE {}").format(Identifier(name)))
        curs.execute(SQL("ALTER TABLE {} RENAME TO {}").format(Identifier(SHADOW + name), Identifier(name)))
        curs.execute(
            SQL("ALTER INDEX {} RENAME TO {}").format(
                Identifier(f"{SHADOW}{name}_pkey"), Identifier(f"{name}_pkey")
            )
        )
    _create_indexes(curs)


def _create_tables(curs: Cursor, prefix: str) -> None:
    curs.execute(
        SQL(
            "CREATE TABLE IF NOT EXISTS {} (tenant text NOT NULL, subject text NOT NULL, "
            "first_seen timestamptz, last_event_at timestamptz, erased boolean NOT NULL, "
            "erased_at timestamptz, account_closed_at timestamptz, PRIMARY KEY (tenant, subject))"
        ).format(Identifier(prefix + SUBJECTS_TABLE))
    )
    for part in (*PARTS, *LOGS):
        columns = SQL(", ").join(
            SQL("{} {}").format(Identifier(name), SQL(sql_type + ("" if nullable else " NOT NULL")))
            for name, sql_type, nullable in part.columns()
        )
        key = SQL(", ").join(Identifier(name) for name in ("tenant", "subject", *part.key))
        curs.execute(
            SQL(
                "CREATE TABLE IF NOT EXISTS {} (tenant text NOT NULL, subject text NOT NULL, "
                "{}, PRIMARY KEY ({}))"
            ).format(Identifier(prefix + part.table), columns, key)
        )


def _create_indexes(curs: Cursor) -> None:
    # Breach impact asks "who was held in system S during a window": this index carries every column
    # it reads, in subject order, so a large breach is one index-only scan that aggregates as it goes.
    curs.execute("DROP INDEX IF EXISTS proj_intervals_window")  # superseded by proj_intervals_exposure
    curs.execute("DROP INDEX IF EXISTS proj_shares_recipient")  # shares reach a breach as intervals now
    curs.execute(
        "CREATE INDEX IF NOT EXISTS proj_intervals_exposure ON proj_intervals (tenant, system, subject) "
        "INCLUDE (held_from, held_until, category, jurisdiction)"
    )


def ensure(ledger: Ledger) -> None:
    """Create the read model (and its position row) where missing, racing other processes safely."""

    def create_all() -> None:
        with ledger.writer.datastore.transaction(commit=True) as curs:
            create(curs)
            curs.execute(
                SQL("INSERT INTO {} VALUES (%s, 0) ON CONFLICT DO NOTHING").format(POSITIONS), (PROJECTION,)
            )

    retry_schema_change(create_all)


def _matching(keys: Sequence[tuple[str, str]]) -> tuple[Composed, tuple[list[str], list[str]]]:
    clause = SQL("(tenant, subject) IN (SELECT * FROM unnest(%s::text[], %s::text[]))").format()
    return clause, ([k[0] for k in keys], [k[1] for k in keys])


def load(curs: Cursor, keys: Sequence[tuple[str, str]]) -> dict[tuple[str, str], SubjectState]:
    """The stored state of each of these (tenant, subject) pairs that has any."""
    clause, params = _matching(keys)
    curs.execute(SQL("SELECT * FROM {} WHERE {}").format(SUBJECTS, clause), params)
    states = {
        (row["tenant"], row["subject"]): SubjectState(
            tenant=row["tenant"], subject=row["subject"], **{c: row[c] for c in SUBJECT_COLUMNS}
        )
        for row in curs.fetchall()
    }
    for part in PARTS:
        names = [name for name, _, _ in part.columns()]
        curs.execute(SQL("SELECT * FROM {} WHERE {}").format(Identifier(part.table), clause), params)
        for row in curs.fetchall():
            item = part.row(**{name: row[name] for name in names})
            collection = getattr(states[(row["tenant"], row["subject"])], part.attribute)
            collection[part.state_key(item)] = item
    return states


def erasure_candidates(curs: Cursor) -> list[tuple[str, str]]:
    """Subjects with a completed verified request for everything since their last erasure (if any)
    and no legal hold: those whose erasure may be due (`ledger.state.erasure_due` decides)."""
    curs.execute(
        SQL(
            "SELECT DISTINCT r.tenant, r.subject FROM proj_deletion_requests r JOIN {} s "
            "ON s.tenant = r.tenant AND s.subject = r.subject WHERE r.verified AND r.categories IS NULL "
            "AND r.completed_at IS NOT NULL AND (s.erased_at IS NULL OR r.completed_at > s.erased_at) "
            "AND NOT EXISTS (SELECT 1 FROM proj_legal_holds h "
            "WHERE h.tenant = r.tenant AND h.subject = r.subject)"
        ).format(SUBJECTS)
    )
    return [(row["tenant"], row["subject"]) for row in curs.fetchall()]


Row = tuple[Any, ...]
Rows = dict[str, set[Row]]  # per table name, every row of some subjects, comparable (lists as tuples)


def rows(states: Iterable[SubjectState]) -> Rows:
    """What the tables hold for these subjects, to tell `save` later what changed since."""
    return {
        name: {_comparable(row) for row in table_rows} for name, _, _, table_rows in _tables(list(states))
    }


def save(curs: Cursor, states: Iterable[SubjectState], before: Rows) -> None:
    """Bring the stored rows of these subjects from `before` (what `rows` said as they were loaded) to
    their current state, deleting and writing only the rows that changed.

    Rewriting every row of a subject on each of its events left a dead row version of each behind
    until vacuum came by: most of the read model's size on disk (bench/capacity.py).
    """
    for name, columns, key, table_rows in _tables(list(states)):
        current = {_comparable(row): row for row in table_rows}
        old = before.get(name, set())
        gone = [row for row in old if row not in current]
        if gone:
            typed = [columns[position] for position in key]
            matching = SQL("({}) IN (SELECT * FROM unnest({}))").format(
                SQL(", ").join(Identifier(column) for column, _ in typed),
                SQL(", ").join(SQL("%s::" + sql_type + "[]") for _, sql_type in typed),
            )
            curs.execute(
                SQL("DELETE FROM {} WHERE {}").format(Identifier(name), matching),
                [[row[position] for row in gone] for position in key],
            )
        new = [row for comparable, row in current.items() if comparable not in old]
        if new:
            _copy(curs, Identifier(name), columns, new)


def write(curs: Cursor, states: Sequence[SubjectState], prefix: str = "") -> None:
    """Add the rows of these subjects, which the tables named `prefix` + name do not hold yet."""
    for name, columns, _, table_rows in _tables(states):
        _copy(curs, Identifier(prefix + name), columns, table_rows)


def _tables(
    states: Sequence[SubjectState],
) -> Iterator[tuple[str, list[tuple[str, str]], list[int], Iterable[Row]]]:
    """Per table: its name, its columns with their SQL types, the positions of its key columns, and
    the rows of these subjects."""
    # attrgetter builds each row's tuple in C: per-field getattr in a generator cost more than the COPY.
    subject_row = operator.attrgetter("tenant", "subject", *SUBJECT_COLUMNS)
    subject_columns = [("tenant", "text"), ("subject", "text"), *SUBJECT_COLUMN_TYPES]
    yield SUBJECTS_TABLE, subject_columns, [0, 1], map(subject_row, states)
    for part in (*PARTS, *LOGS):
        columns = [(name, sql_type) for name, sql_type, _ in part.columns()]
        item_row = operator.attrgetter(*(name for name, _ in columns))
        keyed = [("tenant", "text"), ("subject", "text"), *columns]
        key = [0, 1, *(2 + [name for name, _ in columns].index(name) for name in part.key)]
        yield (
            part.table,
            keyed,
            key,
            (
                (state.tenant, state.subject, *item_row(item))
                for state in states
                for item in getattr(state, part.attribute).values()
            ),
        )


def _comparable(row: Row) -> Row:
    """The row with its lists as tuples: hashable, and no longer shared with the state it came from."""
    return tuple(tuple(value) if isinstance(value, list) else value for value in row)


def _copy(
    curs: Cursor, table: Identifier, columns: Sequence[tuple[str, str]], rows: Iterable[Sequence[Any]]
) -> None:
    """Binary COPY: no per-value text quoting, which dominated saving a page."""
    statement = SQL("COPY {} ({}) FROM STDIN (FORMAT BINARY)").format(
        table, SQL(", ").join(Identifier(name) for name, _ in columns)
    )
    with curs.copy(statement) as copy:
        copy.set_types([sql_type for _, sql_type in columns])
        for row in rows:
            copy.write_row(row)


def table_names() -> list[str]:
    """Every read-model table that holds subject state (not the positions)."""
    return [SUBJECTS_TABLE, *(part.table for part in (*PARTS, *LOGS))]
