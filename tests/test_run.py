"""`run` serves the HTTP API beside its other components, in one process, and stops with them."""

import os
import signal
import socket
import subprocess
import sys
from pathlib import Path

import httpx
import orjson
import pytest

from tests.conftest import _free_port
from tests.helpers import cli, consent, event, wait_for

pytestmark = pytest.mark.services


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
    child_env = {**os.environ, **env, "LEDGER_HTTP_PORT": str(port), "LEDGER_LOG_LEVEL": "warning"}
    process = subprocess.Popen(
        [sys.executable, "-m", "app.cli", "run"],
        env=child_env,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )
    try:
        with httpx.Client(
            base_url=f"http://127.0.0.1:{port}", headers={"Authorization": f"Bearer {key}"}, timeout=5
        ) as client:
            wait_for(lambda: process.poll() is not None or _allowed(client), 60, "run to answer over HTTP")
            assert process.poll() is None, process.communicate()
            assert client.get("/healthz").status_code == 200
        process.send_signal(signal.SIGTERM)
        out, err = process.communicate(timeout=60)
    finally:
        if process.poll() is None:
            process.kill()
            process.wait()
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
    process = subprocess.Popen(
        [sys.executable, "-m", "app.cli", "serve"],
        env={**os.environ, **env, "LEDGER_HTTP_PORT": str(port), "LEDGER_LOG_LEVEL": "info"},
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )
    try:
        with httpx.Client(base_url=f"http://127.0.0.1:{port}", timeout=5) as client:
            wait_for(lambda: process.poll() is not None or _healthy(client), 60, "serve to answer")
        assert process.poll() is None, process.communicate()
        process.send_signal(signal.SIGTERM)
        out, err = process.communicate(timeout=60)
    finally:
        if process.poll() is None:
            process.kill()
            process.wait()
    assert f"serving the HTTP API on http://127.0.0.1:{port}" in out
    for line in err.splitlines():
        assert isinstance(orjson.loads(line), dict), line
