"""`stats` says how far ingest and projection are behind: messages not stored, events not projected."""

import json
from pathlib import Path
from typing import Any

import orjson
import pytest

from tests.helpers import cli, collected, consent, event

pytestmark = pytest.mark.services


def _stats(env: dict[str, str]) -> dict[str, Any]:
    done = cli(env, "stats", "--json")
    assert done.returncode == 0, done.stderr
    document: dict[str, Any] = json.loads(done.stdout)
    return document


def test_stats_reports_consumer_and_projection_lag(env: dict[str, str], tmp_path: Path) -> None:
    """Published and not consumed is consumer lag, stored and not projected is projection lag; each falls
    to 0 once its component has caught up."""
    lines = [
        event("acme", "alice", "data.collected", collected(), minutes=1),
        event("acme", "alice", "consent.given", consent("marketing", "sms"), minutes=2),
        event("acme", "bob", "data.collected", collected(), minutes=3),
    ]
    for number, line in enumerate(lines):
        # One publish each: Tansu counts a partition's end by batches, so one record per batch here.
        path = tmp_path / f"{number}.jsonl"
        path.write_bytes(orjson.dumps(line) + b"\n")
        assert cli(env, "publish", str(path)).returncode == 0
    assert cli(env, "migrate").returncode == 0
    published = _stats(env)
    assert (published["consumer_lag"], published["projection_lag"]) == (3, 0)

    assert cli(env, "consume", "--until-idle").returncode == 0
    stored = _stats(env)
    assert stored["consumer_lag"] == 0
    assert stored["projection_lag"] == 3  # the facts; events the projection does not apply do not count

    assert cli(env, "project", "--until-idle").returncode == 0
    projected = _stats(env)
    assert (projected["consumer_lag"], projected["projection_lag"]) == (0, 0)
    assert "projection lag          0" in cli(env, "stats").stdout
