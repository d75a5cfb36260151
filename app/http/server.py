"""`consent-ledger serve`: uvicorn running the API, in one process or several workers; and the API as
a component of `run`, served from a thread of its process."""

import errno
import socket
import threading

import structlog
import uvicorn
from fastapi import FastAPI

from app.bootstrap import Services
from app.http.api import create_app
from ledger import logs
from ledger.errors import ConfigError, ServiceUnavailable
from ledger.settings import Settings

log = structlog.get_logger()
GRACE_SECONDS = 10  # requests under way when `run` stops get this long to finish


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
        log_config=None,  # as in `run`: stderr carries only JSON lines; `serve` says where it listens
        log_level=settings.log_level,
        access_log=False,  # requests are counted and timed in /metrics; per-request lines would name subjects
    )


class Component:
    """The API as a component of `run`: its port is bound when this is built, so a taken port stops
    `run` in one line before anything starts; each call then serves in the calling thread until
    `stop` is set (a call after a failure binds the port again). It owns `services`: `close` closes
    them, and the port if it was never served on."""

    def __init__(self, services: Services, stop: threading.Event) -> None:
        self.services, self.stop = services, stop
        self.socket: socket.socket | None = listen(services.settings)

    def __call__(self) -> None:
        """Serve until `stop` is set; raise if the server ends before that (to be started again)."""
        sock, self.socket = self.socket or listen(self.services.settings), None
        config = uvicorn.Config(
            create_app(self.services),  # a new one each time: the old one closed its pool as it stopped
            log_config=None,  # leave the process's logging as it is; our own lines say what matters
            log_level=self.services.settings.log_level,
            access_log=False,
            timeout_graceful_shutdown=GRACE_SECONDS,
        )
        host, port = sock.getsockname()[:2]
        log.info("http.serving", host=host, port=port)
        try:
            _Server(config, self.stop).run(sockets=[sock])
        except SystemExit:  # uvicorn's way of saying its startup failed
            raise ServiceUnavailable("the HTTP API failed to start") from None
        if not self.stop.is_set():
            raise ServiceUnavailable("the HTTP API stopped by itself")
        log.info("http.stopped", host=host, port=port)

    def close(self) -> None:
        """Release the port (if no server took it) and the API's connections; once stopped."""
        if self.socket is not None:
            self.socket.close()
            self.socket = None
        self.services.close()


class _Server(uvicorn.Server):
    """uvicorn, stopped by `run`'s stop event instead of signals (it does not run in the main thread)."""

    def __init__(self, config: uvicorn.Config, stop: threading.Event) -> None:
        super().__init__(config)
        self.stop = stop

    async def on_tick(self, counter: int) -> bool:
        """True once the server should exit (checked ten times a second)."""
        return self.stop.is_set() or await super().on_tick(counter)


def listen(settings: Settings, otherwise: str = "or run with --no-http") -> socket.socket:
    """A socket bound to LEDGER_HTTP_HOST:LEDGER_HTTP_PORT, or one line saying why it cannot be and,
    after setting LEDGER_HTTP_PORT, what `otherwise` can be done."""
    host, port = settings.http_host, settings.http_port
    try:
        family = socket.getaddrinfo(host, port, type=socket.SOCK_STREAM)[0][0]
    except socket.gaierror:
        raise ConfigError(f"LEDGER_HTTP_HOST {host!r} is not an address of this machine") from None
    sock = socket.socket(family, socket.SOCK_STREAM)
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)  # as uvicorn does: restart at once
    try:
        sock.bind((host, port))
    except OSError as error:
        sock.close()
        taken = error.errno == errno.EADDRINUSE
        why = "is taken by another program" if taken else f"cannot be bound ({error.strerror})"
        raise ConfigError(
            f"port {port} on {host} {why}: set LEDGER_HTTP_PORT to a free port, {otherwise}"
        ) from None
    return sock
