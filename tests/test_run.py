"""`run` serves the HTTP API beside its other components, in one process, and stops with them,
leaving nothing open."""

import contextlib
import os
import signal
import socket
import subprocess
import sys
import threading
from collections.abc import Iterator
from pathlib import Path

import httpx
import orjson
import psycopg
import pytest

from tests.conftest import _free_port
from tests.helpers import cli, consent, event, wait_for

pytestmark = pytest.mark.services


@contextlib.contextmanager
def _started(command: str, env: dict[str, str]) -> Iterator[subprocess.Popen[str]]:
    """`consent-ledger COMMAND` in a process of its own, killed on the way out if it still runs."""
    process = subprocess.Popen(
        [sys.executable, "-m", "app.cli", command],
        env={**os.environ, **env},
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )
    try:
        yield process
    finally:
        if process.poll() is None:
            process.kill()
            process.wait()


def _terminated(process: subprocess.Popen[str]) -> tuple[str, str]:
    """What the process printed to stdout and stderr, once SIGTERM has stopped it."""
    process.send_signal(signal.SIGTERM)
    return process.communicate(timeout=60)


def _allowed(client: httpx.Client) -> bool:
    try:
        answer = client.get("/v1/tenants/acme/subjects/alice/check?purpose=marketing&channel=sms")
    except httpx.TransportError:  # not listening yet
        return False
    return answer.status_code == 200 and answer.json()["allowed"] is True


def test_run_answers_over_http_what_it_consumed_and_stops_cleanly(
    env: dict[str, str], tmp_path: Path
) -> None:
    """An event published to Kafka is consumed, projected and answered over HTTP by one `run`
    process; on SIGTERM it stops serving, exits 0 and prints its totals."""
    port = _free_port()
    created = cli(env, "keys", "create", "--tenant", "acme", "--role", "checker")
    assert created.returncode == 0, created.stderr
    key = created.stdout.strip().splitlines()[-1]
    events = tmp_path / "events.jsonl"
    events.write_bytes(orjson.dumps(event("acme", "alice", "consent.given", consent())) + b"\n")
    assert cli(env, "publish", str(events)).returncode == 0
    with _started("run", {**env, "LEDGER_HTTP_PORT": str(port), "LEDGER_LOG_LEVEL": "warning"}) as process:
        with httpx.Client(
            base_url=f"http://127.0.0.1:{port}", headers={"Authorization": f"Bearer {key}"}, timeout=5
        ) as client:
            wait_for(lambda: process.poll() is not None or _allowed(client), 60, "run to answer over HTTP")
            assert process.poll() is None, process.communicate()
            assert client.get("/healthz").status_code == 200
        out, err = _terminated(process)
    assert process.returncode == 0, err
    assert f"serving the HTTP API on http://127.0.0.1:{port}" in out
    assert "stored 1" in out and "projected" in out
    with pytest.raises(OSError), socket.create_connection(("127.0.0.1", port), timeout=1):
        pass  # nothing listens any more


@pytest.mark.parametrize("command", ["run", "serve"])
def test_a_taken_port_is_refused_in_one_line(env: dict[str, str], command: str) -> None:
    """With LEDGER_HTTP_PORT taken, `run` and `serve` exit 2 before starting anything, saying how to
    fix it."""
    with socket.socket() as taken:
        taken.bind(("127.0.0.1", 0))
        taken.listen()
        port = taken.getsockname()[1]
        done = subprocess.run(
            [sys.executable, "-m", "app.cli", command],
            env={**os.environ, **env, "LEDGER_HTTP_PORT": str(port), "LEDGER_LOG_LEVEL": "warning"},
            capture_output=True,
            text=True,
            timeout=60,  # a `run` that did not refuse would serve on: fail, never hang
            check=False,
        )
    assert done.returncode == 2, done
    assert done.stderr.count("\n") == 1, done.stderr
    assert f"port {port} on 127.0.0.1 is taken" in done.stderr
    assert "LEDGER_HTTP_PORT" in done.stderr and ("--no-http" in done.stderr) == (command == "run")


def _healthy(client: httpx.Client) -> bool:
    try:
        return client.get("/healthz").status_code == 200
    except httpx.TransportError:  # not listening yet
        return False


def test_serve_writes_only_json_lines_to_stderr(env: dict[str, str]) -> None:
    """`serve` at log level info answers and stops on SIGTERM with every stderr line a JSON event:
    uvicorn's own plain-text lines (startup, shutdown) stay out of the log stream."""
    assert cli(env, "migrate").returncode == 0
    port = _free_port()
    with _started("serve", {**env, "LEDGER_HTTP_PORT": str(port), "LEDGER_LOG_LEVEL": "info"}) as process:
        with httpx.Client(base_url=f"http://127.0.0.1:{port}", timeout=5) as client:
            wait_for(lambda: process.poll() is not None or _healthy(client), 60, "serve to answer")
        assert process.poll() is None, process.communicate()
        out, err = _terminated(process)
    assert f"serving the HTTP API on http://127.0.0.1:{port}" in out
    for line in err.splitlines():
        assert isinstance(orjson.loads(line), dict), line


def _broker_sockets(bootstrap: str) -> set[int]:
    """The inodes of this process's TCP connections to the broker."""
    port = int(bootstrap.rpartition(":")[2])
    held = set()
    for fd in Path("/proc/self/fd").iterdir():
        with contextlib.suppress(OSError):  # closed meanwhile
            target = str(fd.readlink())
            if target.startswith("socket:["):
                held.add(int(target[8:-1]))
    connected = set()
    for table in ("/proc/self/net/tcp", "/proc/self/net/tcp6"):
        for row in Path(table).read_text().splitlines()[1:]:
            fields = row.split()
            if int(fields[2].rpartition(":")[2], 16) == port:
                connected.add(int(fields[9]))
    return held & connected


def _connections(env: dict[str, str]) -> int:
    """Connections to this test's database, other than the one asking."""
    with psycopg.connect(env["LEDGER_DATABASE_URL"]) as conn:
        row = conn.execute(
            "SELECT count(*) FROM pg_stat_activity WHERE datname = current_database() "
            "AND pid <> pg_backend_pid()"
        ).fetchone()
    assert row is not None
    return int(row[0])


def _signed(env: dict[str, str]) -> bool:
    """Whether a tree head was signed (and handed to the topic witness) in this test's database."""
    with psycopg.connect(env["LEDGER_DATABASE_URL"]) as conn:
        try:
            row = conn.execute("SELECT count(*) FROM ledger_events_tree_heads").fetchone()
        except psycopg.errors.UndefinedTable:  # not migrated yet
            return False
    return row is not None and row[0] > 0


@pytest.fixture
def busy(env: dict[str, str], tmp_path: Path) -> dict[str, str]:
    """An event published, and a tree head signed at every event, so that `run` opens every kind of
    client it has: consumer, projector and its wake-up, checkpoint witness, sweeper."""
    events = tmp_path / "events.jsonl"
    events.write_bytes(orjson.dumps(event("acme", "alice", "consent.given", consent())) + b"\n")
    assert cli(env, "publish", str(events)).returncode == 0
    return env | {"LEDGER_CHECKPOINT_EVERY": "1", "LEDGER_HTTP_PORT": str(_free_port())}


def test_run_until_idle_leaves_nothing_open(busy: dict[str, str]) -> None:
    """`run --until-idle`, called in-process, closes every connection it opened before it returns:
    PostgreSQL counts none to the database, and the process holds no more broker sockets than before."""
    before = _broker_sockets(busy["LEDGER_KAFKA_BOOTSTRAP"])
    done = cli(busy, "run", "--until-idle")
    assert done.returncode == 0, done.stderr
    assert "stored 1" in done.stdout and _signed(busy)
    # no gc.collect(): what is closed must be closed by `run`, not by a finalizer
    assert _connections(busy) == 0
    assert _broker_sockets(busy["LEDGER_KAFKA_BOOTSTRAP"]) <= before


def test_run_stopped_by_a_signal_leaves_nothing_open(busy: dict[str, str]) -> None:
    """`run` with the HTTP API, called in-process and stopped by SIGTERM once it has answered,
    scraped and signed, closes its own services and the API's before it returns: no connection to
    the database, no broker socket more than before, nothing listening on its port."""
    port = int(busy["LEDGER_HTTP_PORT"])
    before = _broker_sockets(busy["LEDGER_KAFKA_BOOTSTRAP"])
    failures: list[BaseException] = []

    def stop_once_busy() -> None:
        try:
            with httpx.Client(base_url=f"http://127.0.0.1:{port}", timeout=5) as client:
                wait_for(lambda: _healthy(client) and _signed(busy), 60, "run to serve and sign")
                assert client.get("/metrics").status_code == 200  # opens the API's broker client
        except BaseException as failure:  # reported by the test, after `run` has stopped
            failures.append(failure)
        finally:
            os.kill(os.getpid(), signal.SIGTERM)  # `run`'s handler: stop every component

    handlers = {signum: signal.getsignal(signum) for signum in (signal.SIGINT, signal.SIGTERM)}
    stopper = threading.Thread(target=stop_once_busy)
    stopper.start()
    try:
        done = cli(busy, "run")
    finally:
        stopper.join()
        for signum, handler in handlers.items():
            signal.signal(signum, handler)
    assert failures == []
    assert done.returncode == 0, done.stderr
    # no gc.collect(): what is closed must be closed by `run`, not by a finalizer
    assert _connections(busy) == 0
    assert _broker_sockets(busy["LEDGER_KAFKA_BOOTSTRAP"]) <= before
    with pytest.raises(OSError), socket.create_connection(("127.0.0.1", port), timeout=1):
        pass
