"""Evidence anyone can check without trusting the server: the newest signed tree head (with a proof
that an older tree is a prefix of it) and the check of a consent receipt, as `tree-head` and
`verify-receipt` do."""

from typing import Annotated, Any

from fastapi import APIRouter, Body, Query, Request
from pydantic import BaseModel, Field

from app.http.auth import Key, gate
from app.http.json import Json
from ledger.access import AUDITOR
from ledger.errors import ConfigError, UsageError
from ledger.signing import PublicKey
from projections.receipts import check_receipt, tree_head

router = APIRouter(prefix="/v1", tags=["evidence"])
HEAD_EXAMPLE = {
    "tree_head": {
        "format": "urn:consent-ledger:tree-head:v1",
        "sequence": 3,
        "tree_size": 3000,
        "root_hash": "9f2c0c4ad1e1b5a0d7c6e3f4a8b9c0d1e2f3a4b5c6d7e8f9a0b1c2d3e4f5a6b7",
        "position": 3000,
        "timestamp": 1795660000,
        "previous": "1c0a6d3b2e4f5a6b7c8d9e0f1a2b3c4d5e6f7a8b9c0d1e2f3a4b5c6d7e8f9a0b",
        "key_id": "5e0c2a1b9d8f7e6a",
        "signature": "ab" * 64,
    },
    "consistency": {"from_size": 2000, "proof": ["3d4e" * 16]},
}


class ReceiptCheck(BaseModel):
    """A receipt (`GET .../receipts/{event_id}`), optionally a later tree head with a consistency proof
    from the receipt's tree size (`GET /v1/tree-head?from_size=N`), and the ledger's published public
    keys (default: the key this server signs with)."""

    receipt: dict[str, Any]
    tree_head: dict[str, Any] | None = None
    public_keys: list[Annotated[str, Field(max_length=200)]] | None = Field(default=None, max_length=16)


class Verdict(BaseModel):
    """`ok` when the receipt holds; what failed, and what was established."""

    ok: bool
    problems: list[str]
    established: list[str]


@router.get(
    "/tree-head",
    summary="the newest signed tree head, and a consistency proof from an older size (`tree-head`)",
    responses={200: {"content": {"application/json": {"example": HEAD_EXAMPLE}}}},
)
def latest_tree_head(
    request: Request,
    *,
    from_size: Annotated[
        int | None, Query(ge=1, le=2**62, description="prove that the tree of this size is a prefix")
    ] = None,
    credentials: Key,
) -> Json:
    """The head every receipt is proven against; 400 when none is signed yet or `from_size` is past it."""
    gate(request, credentials, None, AUDITOR)
    return Json(tree_head(request.app.state.services.ledger, from_size))


@router.post(
    "/receipts/verify",
    response_model=Verdict,
    summary="check a consent receipt without the database (`verify-receipt`)",
    responses={
        200: {
            "content": {
                "application/json": {
                    "example": {
                        "ok": True,
                        "problems": [],
                        "established": [
                            "record evt-1 is leaf 41 of the log's tree of 3000 events, tree head 3 "
                            "signed by key 5e0c2a1b9d8f7e6a"
                        ],
                    }
                }
            }
        }
    },
)
def verify_receipt(
    request: Request,
    *,
    body: Annotated[
        ReceiptCheck,
        Body(
            openapi_examples={
                "receipt": {
                    "summary": "a receipt checked against the published key",
                    "value": {
                        "receipt": {"format": "urn:consent-ledger:receipt:v2", "record_id": "evt-1"},
                        "public_keys": ["ed25519:" + "A" * 43 + "="],
                    },
                }
            }
        ),
    ],
    credentials: Key,
) -> Json:
    """The receipt's record, inclusion proof and signed head, and with `tree_head` that the log was not
    rewritten since; 200 with `ok` false when it does not hold, 400 when it is not a receipt."""
    gate(request, credentials, None, AUDITOR)
    try:
        keys = [PublicKey.parse(text, f"public_keys[{n}]") for n, text in enumerate(body.public_keys or [])]
        verdict = check_receipt(body.receipt, keys or request.app.state.services.public_keys, body.tree_head)
    except ConfigError as error:  # a key that is not one, or no key given signed the head: the input's
        raise UsageError(str(error)) from None
    except (TypeError, ValueError, KeyError, IndexError, AttributeError):  # any other malformed part
        raise UsageError("the receipt or tree head is malformed: pass them as the ledger gave them") from None
    return Json({"ok": verdict.ok, "problems": verdict.problems, "established": verdict.established})
