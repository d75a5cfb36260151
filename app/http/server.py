"""`consent-ledger serve`: uvicorn running the API, in one process or several workers."""

import uvicorn
from fastapi import FastAPI

from app.bootstrap import Services
from app.http.api import create_app
from ledger import logs
from ledger.settings import Settings


def create() -> FastAPI:
    """The application of one worker process, wired from the environment."""
    settings = Settings.from_env()
    logs.configure(settings)
    return create_app(Services(settings))


def serve(settings: Settings, workers: int) -> None:
    """Answer on LEDGER_HTTP_HOST:LEDGER_HTTP_PORT until interrupted."""
    uvicorn.run(
        "app.http.server:create",
        factory=True,
        host=settings.http_host,
        port=settings.http_port,
        workers=workers,
        log_level=settings.log_level,
        access_log=False,  # requests are counted and timed in /metrics; per-request lines would name subjects
    )
