"""The record of adopted retention policies: who adopted which, when, why, and what changed."""

from datetime import datetime
from typing import Any

from ledger.policy import changes
from ledger.store import Ledger
from projections.queries import plain


def adoptions(ledger: Ledger, at: datetime | None = None) -> list[dict[str, Any]]:
    """Every adopted policy, oldest first, with the rules added, removed or changed by each (with
    `at`: only the one in force then, if any)."""
    history = ledger.policy()
    chosen = history.adoptions
    if at is not None:
        in_force = history.at(at)
        chosen = [] if in_force is None else [in_force]
    rows = []
    for adoption in chosen:
        before = history.adoptions.index(adoption)
        previous = history.adoptions[before - 1].document if before else None
        rows.append(
            {
                "adopted_at": plain(adoption.timestamp),
                "adopted_by": adoption.adopted_by,
                "reason": adoption.reason,
                "digest": adoption.digest,
                "changes": changes(previous, adoption.document),
                "rules": [rule["id"] for rule in adoption.document["rule"]],
            }
        )
    return rows
