"""Files only their owner may read: the ledger's keys and exports that hold personal data."""

import os
from pathlib import Path


def write_private(path: Path, text: str, *, new: bool = False) -> None:
    """Write `text` to `path`, created 0600 so it is never readable by others, not even for a moment.

    An existing file is narrowed to 0600 before anything goes into it; with `new`, one is refused
    (FileExistsError), so a key is never overwritten by another process creating it at the same time.
    """
    flags = os.O_WRONLY | os.O_CREAT | (os.O_EXCL if new else os.O_TRUNC)
    descriptor = os.open(path, flags, 0o600)
    with os.fdopen(descriptor, "w") as out:
        os.fchmod(out.fileno(), 0o600)
        out.write(text)
