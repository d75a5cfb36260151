"""An auditor's role that may only SELECT: every query answers, nothing it runs changes the schema."""

from collections.abc import Iterator
from pathlib import Path
from uuid import uuid4

import psycopg
import pytest
from psycopg.conninfo import make_conninfo

from ledger.checkpoints import Checkpointer
from ledger.settings import Settings
from ledger.signing import signing_key
from ledger.store import Ledger
from projections.projector import Projector
from tests.helpers import cli, collected, fact

pytestmark = pytest.mark.services

# What the README tells an administrator to grant an auditor (run as the role that migrates).
GRANTS = (
    "GRANT USAGE ON SCHEMA public TO {role}",
    "GRANT SELECT ON ALL TABLES IN SCHEMA public TO {role}",
    "ALTER DEFAULT PRIVILEGES IN SCHEMA public GRANT SELECT ON TABLES TO {role}",
)


@pytest.fixture
def auditor(env: dict[str, str]) -> Iterator[dict[str, str]]:
    """The test's LEDGER_* variables, connecting as a fresh role granted only what the README says."""
    role = f"auditor_{uuid4().hex[:8]}"
    with psycopg.connect(env["LEDGER_DATABASE_URL"], autocommit=True) as admin:
        admin.execute(f"CREATE ROLE {role} LOGIN")
        for grant in GRANTS:
            admin.execute(grant.format(role=role))
    yield {**env, "LEDGER_DATABASE_URL": make_conninfo(env["LEDGER_DATABASE_URL"], user=role)}
    with psycopg.connect(env["LEDGER_DATABASE_URL"], autocommit=True) as admin:
        admin.execute(f"DROP OWNED BY {role}")
        admin.execute(f"DROP ROLE {role}")


def test_auditor_role_answers_every_query_and_writes_nothing(
    ledger: Ledger, settings: Settings, auditor: dict[str, str], tmp_path: Path
) -> None:
    """With USAGE on the schema and SELECT on its tables, every query command works; a command that
    writes fails with one line saying it needs write access."""
    ledger.append(
        [
            fact("acme", "ann", "c1", "data.collected", minutes=1, data=collected(), personal={"n": "Ann"}),
            fact("acme", "ann", "g1", minutes=2),
        ]
    )
    Projector(ledger, page=100).run(until_idle=True)
    Checkpointer(ledger, signing_key(settings, create=False), every=1000).step(force=True)  # for the receipt
    later = ["--at", "2026-06-01T12:00:00Z"]
    window = ["--from", "2025-01-01T00:00:00Z", "--to", "2027-01-01T00:00:00Z"]
    queries = [
        (["subject", "acme", "ann", "--json"], 0),
        (["subject", "acme", "ann", "--as-of", "2026-01-01T00:01:30Z"], 0),
        (["check", "acme", "ann", "--purpose", "marketing", "--channel", "sms"], 0),
        (["check", "acme", "ann", "--purpose", "marketing", "--channel", "voice", *later], 1),
        (["history", "acme", "ann"], 0),
        (["export", "acme", "ann", "--out", str(tmp_path / "ann.json")], 0),
        (["receipt", "acme", "g1"], 0),
        (["breach", "acme", "--system", "crm", *window], 0),
        (["overdue", "acme"], 0),
        (["purge", "--dry-run"], 0),
        (["policies"], 0),
        (["violations", "acme", "--json"], 0),
        (["ropa", "acme", "--format", "fides"], 0),
        (["stats"], 0),
        (["verify"], 0),
        (["tree-head"], 0),
        (["access-log", "acme"], 0),
        (["status"], 0),
    ]  # fmt: skip
    for args, code in queries:
        result = cli(auditor, *args)
        assert (result.returncode, result.stderr) == (code, ""), args
    refused = cli(auditor, "erase", "acme", "ann", "--reason", "test")
    assert refused.returncode == 2
    (line,) = refused.stderr.splitlines()
    assert "permission denied" in line and "needs a role with write access" in line
    assert "needs a role with write access" in cli(auditor, "migrate").stderr


def test_auditor_on_a_database_never_migrated_is_told_to_migrate(auditor: dict[str, str]) -> None:
    """Before any migration a query says in one line to run `migrate`, instead of trying to create tables."""
    result = cli(auditor, "check", "acme", "ann", "--purpose", "service", "--channel", "sms")
    assert result.returncode == 2
    (line,) = result.stderr.splitlines()
    assert "run `consent-ledger migrate`" in line
