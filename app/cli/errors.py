"""Every failure of a command as one line saying what went wrong and what to do about it."""

import psycopg
from eventsourcing.persistence import PersistenceError

from ledger.errors import LedgerError


def explain(error: Exception) -> str:
    """One line saying what went wrong and what to do about it."""
    if isinstance(error, LedgerError):
        return str(error)
    if isinstance(error, PersistenceError | psycopg.Error):
        return _database_failure(error)
    if isinstance(error, OSError):
        return f"{error.filename or 'a file'}: {error.strerror or type(error).__name__}"
    first = next(iter(str(error).strip().splitlines()), "")
    return f"unexpected {type(error).__name__} ({first}): please report it with the command that caused it"


def _database_failure(error: Exception) -> str:
    cause = error if isinstance(error, psycopg.Error) else error.__cause__
    first = next(iter(str(error).strip().splitlines()), type(error).__name__)
    if isinstance(cause, psycopg.errors.UndefinedTable):
        return "the database lacks the ledger's tables: run `consent-ledger migrate` (as its owner)"
    if isinstance(cause, psycopg.errors.InsufficientPrivilege | psycopg.errors.ReadOnlySqlTransaction):
        return (
            f"PostgreSQL refused ({first}): this command changes the ledger and needs a role with "
            "write access; queries need only SELECT"
        )
    return f"PostgreSQL failed ({first}): check LEDGER_DATABASE_URL or `consent-ledger status`"
