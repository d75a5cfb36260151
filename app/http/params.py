"""Parameter types shared by the routes: ids as the wire contract bounds them, closed vocabularies,
and times that carry an offset.

Ids are refused (422) when PostgreSQL could not store them as text (NUL, lone surrogates) or the
contract would not accept them, so no query ever fails on them.
"""

import re
from collections.abc import Callable
from typing import Annotated

from fastapi import Path
from pydantic import AfterValidator, AwareDatetime, Field, WithJsonSchema

from ledger import times
from ledger.state import CHANNELS, PURPOSES


def _one_of(allowed: tuple[str, ...], what: str) -> Callable[[str], str]:
    def check(value: str) -> str:
        if value not in allowed:
            raise ValueError(f"not a known {what}: use one of {', '.join(allowed)}")
        return value

    return check


_UNSTORABLE = re.compile(r"[\x00-\x1f\ud800-\udfff]")  # searched in C: a bulk check has 10,000 ids


def _storable(value: str) -> str:
    if _UNSTORABLE.search(value):
        raise ValueError("control characters and lone surrogates are not allowed")
    return value


Purpose = Annotated[
    str,
    AfterValidator(_one_of(PURPOSES, "purpose")),
    WithJsonSchema({"type": "string", "enum": list(PURPOSES)}),
]
# A channel of the vocabulary or one a tenant added (LEDGER_EXTRA_CHANNELS): the route checks which
# against its tenant (`names.require_channel`), since a parameter's type cannot know the tenant.
CHANNEL_NAME = r"^[a-z][a-z0-9_]{0,31}$"


def _channel_name(value: str) -> str:
    if not re.fullmatch(CHANNEL_NAME, value):
        raise ValueError(f"not a channel: use one of {', '.join(CHANNELS)} or one the tenant added")
    return value


Channel = Annotated[
    str,
    AfterValidator(_channel_name),
    WithJsonSchema({"type": "string", "pattern": CHANNEL_NAME, "examples": list(CHANNELS)}),
]
# With an offset (a time without one is refused, not guessed) and within the ledger's range, so no
# deadline or retention arithmetic on it can leave the calendar.
Moment = Annotated[AwareDatetime, AfterValidator(times.within_range)]
Text = Annotated[
    str, Field(min_length=1, max_length=200, pattern=r"^[^\x00-\x1f]+$"), AfterValidator(_storable)
]
TenantPath = Annotated[str, Path(pattern=r"^[A-Za-z0-9][A-Za-z0-9._-]{0,63}$", description="the tenant")]
SubjectPath = Annotated[
    str,
    Path(min_length=1, max_length=200, pattern=r"^[^\x00-\x1f]+$", description="the subject's id"),
    AfterValidator(_storable),
]
EventPath = Annotated[
    str,
    Path(min_length=1, max_length=200, pattern=r"^[^\x00-\x1f]+$", description="the event's id"),
    AfterValidator(_storable),
]
RequestPath = Annotated[
    str,
    Path(min_length=1, max_length=200, pattern=r"^[^\x00-\x1f]+$", description="a rights request's id"),
    AfterValidator(_storable),
]
System = Annotated[
    str, Field(pattern=r"^[a-z0-9][a-z0-9._-]{0,63}$", description="a system, as events name it")
]
KeyPath = Annotated[str, Path(pattern=r"^[0-9a-f]{1,64}$", description="an API key's id (not its text)")]
