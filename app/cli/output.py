"""What commands print and read: JSON, values as a person reads them, files named on the command
line, and the signals that stop a long-running command."""

import json
import signal
import sys
import threading
from pathlib import Path
from typing import Any

import orjson

from ledger.errors import UsageError
from ledger.horizon import Horizon
from ledger.private_files import write_private
from projections.queries import plain


def print_json(document: object) -> None:
    """The `--json` answer: datetimes as RFC 3339, indented."""
    print(json.dumps(plain(document), indent=2, default=str))


def shown(value: Any, key: str = "") -> str:
    """A value as a person reads it: lists joined, times in RFC 3339, and never `None`."""
    if value is None:
        return "all" if key == "categories" else "-"  # absent categories mean every category
    if isinstance(value, list):
        return ", ".join(shown(item) for item in value)
    return str(plain(value))


def print_horizon(found: Horizon) -> None:
    """How far an erasure reaches, indented under the subject."""
    print("  erasure horizon:")
    for line in found.lines():
        print(f"    {line}")


def write_out(out: Path | None, text: str, *, private: bool = False) -> bool:
    """Write `text` to the file `out` (only its owner may read it when `private`), or to standard
    output when there is none or it is `-`; True when a file was written."""
    if out is None or str(out) == "-":
        sys.stdout.write(text)
        return False
    try:
        if private:
            write_private(out, text)
        else:
            out.write_text(text)
    except OSError as error:
        raise UsageError(f"cannot write {out}: {error.strerror}") from None
    return True


def read_text(path: Path) -> str:
    """A small text file given on the command line."""
    try:
        return path.read_text()
    except OSError as error:
        raise UsageError(f"cannot read {path}: {error.strerror}") from None
    except UnicodeDecodeError:
        raise UsageError(f"{path} is not UTF-8 text: give the file that holds the key in base64") from None


def read_json(path: Path) -> Any:
    """A JSON file given on the command line (a receipt, a tree head)."""
    try:
        return orjson.loads(path.read_bytes())
    except OSError as error:
        raise UsageError(f"cannot read {path}: {error.strerror}") from None
    except orjson.JSONDecodeError:
        raise UsageError(f"{path} is not JSON: pass the file `receipt --json` or `tree-head` wrote") from None


def stop_on_signal() -> threading.Event:
    """An event set by SIGINT or SIGTERM: long-running components finish their step and stop."""
    stop = threading.Event()
    for signum in (signal.SIGINT, signal.SIGTERM):
        signal.signal(signum, lambda *_: stop.set())
    return stop
