"""Every table of the ledger, created in one place: by `migrate`, `up`, and the long-running
components (consumer, projector, scheduler) as they start; never by a query, so that a role that
may only SELECT can ask every question.
"""

from ledger import audit, checkpoints
from ledger.store import Ledger, retry_schema_change
from projections import tables


def migrate(ledger: Ledger) -> None:
    """Create what is missing: the event store (events, receipts, data keys, purge orders), the
    checkpoints and the record of verifications, and the read model with its positions. Safe to run
    again, and concurrently."""
    ledger.create_tables()
    retry_schema_change(lambda: checkpoints.create_tables(ledger))
    retry_schema_change(lambda: audit.create_tables(ledger))
    tables.ensure(ledger)
