"""Alive, ready, and the metrics: what an orchestrator and a scraper ask, without a key."""

import socket
from typing import Any

from fastapi import APIRouter, Request
from prometheus_client import CONTENT_TYPE_LATEST, generate_latest
from starlette.responses import Response

from app.http.json import Json
from ledger.errors import ServiceUnavailable
from projections import queries

router = APIRouter(tags=["health"])


@router.get(
    "/healthz",
    summary="the process is alive",
    responses={200: {"content": {"application/json": {"example": {"status": "ok"}}}}},
)
async def healthz() -> Json:
    """Always ok while the server answers."""
    return Json({"status": "ok"})


@router.get(
    "/readyz",
    summary="PostgreSQL and the broker reachable, projection lag under LEDGER_HTTP_READY_LAG",
    responses={
        200: {
            "content": {
                "application/json": {
                    "example": {"ready": True, "postgresql": "ok", "broker": "ok", "projection_lag": 0}
                }
            }
        },
        503: {"description": "not ready: the body says which check failed"},
    },
)
def readyz(request: Request) -> Json:
    """503 until every dependency answers and the read model is close enough to the log."""
    services = request.app.state.services
    checks: dict[str, Any] = {"postgresql": "ok", "broker": "ok", "projection_lag": None}
    try:
        checks["projection_lag"] = queries.progress(services.ledger).lag
    except Exception as error:  # any failure to reach the database means "not ready"
        checks["postgresql"] = f"unreachable ({type(error).__name__})"
    try:
        checks["broker"] = _broker(services.kafka_bootstrap)
    except ServiceUnavailable:
        checks["broker"] = "unreachable"
    lag_ok = (
        checks["projection_lag"] is not None and checks["projection_lag"] <= services.settings.http_ready_lag
    )
    ready = checks["postgresql"] == "ok" and checks["broker"] == "ok" and lag_ok
    return Json({"ready": ready, **checks}, 200 if ready else 503)


def _broker(bootstrap: str) -> str:
    """'ok' when any bootstrap server accepts a TCP connection within a second."""
    for server in bootstrap.split(","):
        host, _, port = server.strip().rpartition(":")
        try:
            with socket.create_connection((host or "localhost", int(port)), timeout=1):
                return "ok"
        except (OSError, ValueError):
            continue
    return "unreachable"


@router.get("/metrics", summary="Prometheus metrics", response_class=Response)
def metrics(request: Request) -> Response:
    """The text exposition format."""
    return Response(generate_latest(request.app.state.metrics.registry), media_type=CONTENT_TYPE_LATEST)
