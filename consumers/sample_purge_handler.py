"""A sample owning system's delete function, for the demo's purge agent (`--handler
consumers.sample_purge_handler:delete`): the sample system keeps no data of its own, so deleting
means noting, in `<LEDGER_HOME>/sample-purges.jsonl`, what it was ordered to delete. A real handler
deletes in its own store, and succeeds when there is nothing left to delete.
"""

import os

import orjson

from ledger.purges import PurgeOrder
from ledger.settings import Settings


def delete(order: PurgeOrder) -> None:
    """Note the deletion of the order's categories of its subject (ids only, never personal data)."""
    line = {
        "order_id": str(order.order_id),
        "tenant": order.tenant,
        "subject": order.subject,
        "system": order.system,
        "categories": order.categories,
    }
    path = Settings.from_env().home / "sample-purges.jsonl"
    with os.fdopen(os.open(path, os.O_WRONLY | os.O_CREAT | os.O_APPEND, 0o600), "ab") as out:
        out.write(orjson.dumps(line) + b"\n")
