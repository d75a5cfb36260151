"""How the ledger writes a time for people and for JSON: one format everywhere."""

from datetime import UTC, datetime


def rfc3339(moment: datetime) -> str:
    """RFC 3339 in UTC with `Z`, as in 2026-01-31T09:30:00Z (fractions of a second kept)."""
    return moment.astimezone(UTC).isoformat().replace("+00:00", "Z")
