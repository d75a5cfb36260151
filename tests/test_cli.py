"""The command line through its real entry point: answers, exit codes, and errors that speak."""

import json
import subprocess
from pathlib import Path

import orjson
import pytest

from tests.helpers import cli, collected, consent, event

pytestmark = pytest.mark.services


def _one_line_error(result: subprocess.CompletedProcess[str]) -> str:
    assert result.returncode == 2, result
    lines = result.stderr.strip().splitlines()
    assert len(lines) == 1, result.stderr
    assert "Traceback" not in result.stderr
    return lines[0]


def test_publish_run_subject_check(env: dict[str, str], tmp_path: Path) -> None:
    """publish -> consume -> project through the CLI; subject and check answer with exit codes."""
    events = tmp_path / "events.jsonl"
    lines = [
        event("acme", "alice", "data.collected", collected(), minutes=1),
        event("acme", "alice", "consent.given", consent("marketing", "sms"), minutes=2),
        event("acme", "alice", "optout.received", {"channel": "email", "signal": "GPC"}, minutes=3),
    ]
    events.write_bytes(b"".join(orjson.dumps(line) + b"\n" for line in lines) + b'{"broken": \n')

    published = cli(env, "publish", str(events))
    assert published.returncode == 2
    assert "published 3, refused 1" in published.stdout
    assert f"{events}:4: refused: not valid JSON" in published.stderr

    assert cli(env, "consume", "--until-idle").returncode == 0
    assert "projected 3 events" in cli(env, "project", "--until-idle").stdout  # the facts

    shown = cli(env, "subject", "acme", "alice", "--json")
    document = json.loads(shown.stdout)
    required = {
        "tenant",
        "subject",
        "erased",
        "holdings",
        "consent",
        "shares",
        "deletion_requests",
        "legal_holds",
    }
    assert required <= set(document)
    assert document["holdings"][0]["first_collected"] == "2026-01-01T00:01:00Z"
    assert "marketing on sms: granted" in cli(env, "subject", "acme", "alice").stdout

    allowed = cli(env, "check", "acme", "alice", "--purpose", "marketing", "--channel", "sms")
    assert (allowed.returncode, allowed.stdout.split(":")[0]) == (0, "allowed")
    denied = cli(env, "check", "acme", "alice", "--purpose", "marketing", "--channel", "email", "--json")
    assert denied.returncode == 1
    assert json.loads(denied.stdout)["allowed"] is False

    stats = json.loads(cli(env, "stats", "--json").stdout)
    assert stats["tenants"]["acme"] == {"events": 3, "subjects": 1}


def test_unknown_subject_exits_2_with_one_line(env: dict[str, str]) -> None:
    """An unknown subject is an error, not an empty object."""
    assert cli(env, "project", "--until-idle").returncode == 0
    line = _one_line_error(cli(env, "subject", "acme", "nobody", "--json"))
    assert "has no subject 'nobody'" in line


def test_query_before_any_projection_is_an_unknown_subject(env: dict[str, str]) -> None:
    """On a database nothing was projected into yet, a query says the subject is unknown, not that
    a table is missing."""
    line = _one_line_error(cli(env, "check", "acme", "nobody", "--purpose", "service", "--channel", "sms"))
    assert "has no subject 'nobody'" in line


def test_bad_configuration_exits_2_with_one_line(env: dict[str, str]) -> None:
    """A malformed LEDGER_* value names the variable and what to set instead."""
    line = _one_line_error(cli({**env, "LEDGER_BATCH_SIZE": "lots"}, "stats"))
    assert "LEDGER_BATCH_SIZE" in line and "whole number" in line


def test_unreachable_database_exits_2_with_one_line(env: dict[str, str]) -> None:
    """A database that does not answer is reported in one line, not a traceback."""
    unreachable = {**env, "LEDGER_DATABASE_URL": "postgresql://postgres@127.0.0.1:1/ledger"}
    line = _one_line_error(cli(unreachable, "subject", "acme", "alice"))
    assert "postgresql" in line.lower()


def test_bad_arguments_exit_2(env: dict[str, str]) -> None:
    """A purpose outside the vocabulary is refused by the parser with exit code 2."""
    result = cli(env, "check", "acme", "alice", "--purpose", "spam", "--channel", "sms")
    assert result.returncode == 2
    assert "invalid choice: 'spam'" in result.stderr


def test_status_reports_external_services(env: dict[str, str]) -> None:
    """With LEDGER_DATABASE_URL and LEDGER_KAFKA_BOOTSTRAP set, status shows them as external."""
    result = cli(env, "status", "--json")
    assert result.returncode == 0
    services = json.loads(result.stdout)
    assert [(s["name"], s["running"], s["embedded"]) for s in services] == [
        ("postgresql", True, False),
        ("kafka", True, False),
    ]


def test_subject_shows_retention_per_holding(env: dict[str, str], tmp_path: Path) -> None:
    """`subject --json` carries, per holding, when it expires and under which rule of the policy."""
    events = tmp_path / "events.jsonl"
    billing = collected("billing", "billing") | {"legal_basis": "contract"}
    lines = [
        event("acme", "rita", "data.collected", billing, minutes=1),
        event("acme", "rita", "account.closed", {}),
    ]
    events.write_bytes(b"".join(orjson.dumps(line) + b"\n" for line in lines))
    assert cli(env, "publish", str(events)).returncode == 0
    assert cli(env, "consume", "--until-idle").returncode == 0
    assert cli(env, "project", "--until-idle").returncode == 0
    holding = json.loads(cli(env, "subject", "acme", "rita", "--json").stdout)["holdings"][0]
    assert (holding["retention_rule"], holding["retention_status"]) == ("billing-records", "scheduled")
    assert holding["retention_expires_at"] == "2033-01-01T00:00:00Z"
    bad = cli({**env, "LEDGER_RETENTION_POLICY": str(tmp_path / "missing.toml")}, "subject", "acme", "rita")
    assert bad.returncode == 2 and "LEDGER_RETENTION_POLICY" in bad.stderr
