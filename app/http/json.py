"""JSON responses rendered by orjson (datetimes as RFC 3339), bypassing response-model validation on
hot paths; the OpenAPI document still declares their models."""

from typing import Any

import orjson
from starlette.responses import JSONResponse


class Json(JSONResponse):
    """`application/json` through orjson."""

    def render(self, content: Any) -> bytes:
        return orjson.dumps(content, option=orjson.OPT_UTC_Z)
