"""A bound on request bodies, enforced as they arrive, declared length or not."""

from starlette.exceptions import HTTPException
from starlette.types import ASGIApp, Message, Receive, Scope, Send


class BodyLimit:
    """ASGI middleware: a body over `limit` bytes is refused with 413 before it is all read.

    It raises an HTTPException from `receive`, which FastAPI passes through body parsing (anything
    else it turns into a 400) to the problem-document handler.
    """

    def __init__(self, app: ASGIApp, limit: int) -> None:
        self.app = app
        self.limit = limit

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        declared = dict(scope["headers"]).get(b"content-length", b"0")
        received = 0

        async def limited() -> Message:
            nonlocal received
            message = await receive()
            received += len(message.get("body", b""))
            if received > self.limit or (declared.isdigit() and int(declared) > self.limit):
                raise HTTPException(
                    413, f"the body exceeds the limit of {self.limit} bytes (LEDGER_HTTP_MAX_BODY_BYTES)"
                )
            return message

        await self.app(scope, limited, send)
