"""Bounds on the shape of an accepted message, checked before any schema validator sees it.

The JSON Schema validator converts a document recursively and fails (with a crash, not a verdict) on
one nested a few hundred levels deep; PostgreSQL refuses NUL characters in text. Every limit here is
far above what any event type needs, so only hostile or broken messages ever meet one.
"""

from collections.abc import Iterable

MAX_DEPTH = 32  # nested objects and arrays; the deepest event type needs 3
MAX_STRING = 4096  # characters in any string or property name
MAX_ITEMS = 256  # elements of any array
MAX_PROPERTIES = 128  # properties of any object

Path = tuple[str | int, ...]
# A container's place: None for the document itself, else (its parent's trail, its key or index).
# Linked, so that the walk builds a path only for the one value that breaks a bound.
_Trail = tuple["_Trail", str | int] | None


def violation(document: object) -> tuple[Path, str] | None:
    """Where `document` first breaks a bound, and which, or None when it keeps them all.

    Runs on every message, so it builds no path until one is needed.
    """
    pending: list[tuple[object, int, _Trail]] = [(document, 1, None)]
    while pending:
        value, depth, trail = pending.pop()
        if isinstance(value, dict):
            if len(value) > MAX_PROPERTIES:
                return _path(trail), f"object has more than {MAX_PROPERTIES} properties"
            children: Iterable[tuple[str | int, object]] = value.items()
        elif isinstance(value, list):
            if len(value) > MAX_ITEMS:
                return _path(trail), f"array has more than {MAX_ITEMS} elements"
            children = enumerate(value)
        else:
            continue
        for key, item in children:
            if type(key) is str and (len(key) > MAX_STRING or "\x00" in key):
                return _path(trail), f"a property name {_broken(key)}"
            if isinstance(item, str):
                if len(item) > MAX_STRING or "\x00" in item:
                    return _path((trail, key)), f"string {_broken(item)}"
            elif isinstance(item, dict | list):
                if depth == MAX_DEPTH:
                    return _path((trail, key)), f"nested deeper than {MAX_DEPTH} levels"
                pending.append((item, depth + 1, (trail, key)))
    return None


def _path(trail: _Trail) -> Path:
    parts: list[str | int] = []
    while trail is not None:
        trail, key = trail
        parts.append(key)
    return tuple(reversed(parts))


def _broken(text: str) -> str:
    if len(text) > MAX_STRING:
        return f"is longer than {MAX_STRING} characters"
    return "contains a NUL character (U+0000)"
