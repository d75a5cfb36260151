"""JSON responses rendered by orjson (datetimes as RFC 3339), bypassing response-model validation on
hot paths; the OpenAPI document still declares their models."""

from typing import Any

import orjson
from starlette.responses import JSONResponse


class Json(JSONResponse):
    """`application/json` through orjson."""

    def render(self, content: Any) -> bytes:
        return dumps(content)


def dumps(content: Any) -> bytes:
    """The body `Json` sends for `content`."""
    return orjson.dumps(content, option=orjson.OPT_UTC_Z)
