"""The command line through its real entry point: answers, exit codes, and errors that speak."""

import contextlib
import io
import json
import os
import subprocess
import sys
from pathlib import Path

import orjson
import pytest
from psycopg.conninfo import make_conninfo

from app.cli import main
from tests.helpers import Outcome, cli, collected, consent, event

pytestmark = pytest.mark.services


def _one_line_error(result: Outcome) -> str:
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
    assert allowed.stdout.strip().endswith(f"(event {lines[1]['id']})")  # the deciding event
    denied = cli(env, "check", "acme", "alice", "--purpose", "marketing", "--channel", "email", "--json")
    assert denied.returncode == 1
    assert json.loads(denied.stdout)["allowed"] is False

    stats = json.loads(cli(env, "stats", "--json").stdout)
    assert stats["tenants"]["acme"] == {"events": 3, "subjects": 1}


def test_query_before_any_event_names_no_tenant(env: dict[str, str]) -> None:
    """On a migrated database that holds nothing yet, a query says no tenant is known yet."""
    assert cli(env, "migrate").returncode == 0
    line = _one_line_error(cli(env, "check", "acme", "nobody", "--purpose", "service", "--channel", "sms"))
    assert "unknown tenant 'acme': none is known yet" in line


def test_query_on_a_database_never_migrated_says_to_migrate(env: dict[str, str]) -> None:
    """A query creates no table: on an empty database it says, in one line, to run `migrate`."""
    line = _one_line_error(cli(env, "subject", "acme", "nobody"))
    assert "run `consent-ledger migrate`" in line
    assert cli(env, "migrate").returncode == 0
    assert cli(env, "migrate").returncode == 0  # again: nothing to do, no error


def test_verify_before_any_projection_is_ok(env: dict[str, str]) -> None:
    """`verify` on a migrated database with nothing stored yet verifies nothing, and says so."""
    assert cli(env, "migrate").returncode == 0
    result = cli(env, "verify")
    assert result.returncode == 0, result.stderr
    assert result.stdout.startswith("ok: 0 events")


def test_bad_configuration_exits_2_with_one_line(env: dict[str, str]) -> None:
    """A malformed LEDGER_* value names the variable and what to set instead."""
    line = _one_line_error(cli({**env, "LEDGER_BATCH_SIZE": "lots"}, "stats"))
    assert "LEDGER_BATCH_SIZE" in line and "whole number" in line


def test_unreachable_database_exits_2_with_one_line(env: dict[str, str]) -> None:
    """A database that does not answer is reported in one line, not a traceback."""
    unreachable = {**env, "LEDGER_DATABASE_URL": "postgresql://postgres:s3cret@127.0.0.1:1/ledger"}
    line = _one_line_error(cli(unreachable, "subject", "acme", "alice"))
    assert "PostgreSQL at postgresql://postgres:***@127.0.0.1:1/ledger refused" in line
    assert "LEDGER_DATABASE_URL" in line and "s3cret" not in line


def test_missing_external_database_is_named(env: dict[str, str]) -> None:
    """A database that does not exist on a running server is reported as such, not as a stack to start."""
    missing = {**env, "LEDGER_DATABASE_URL": make_conninfo(env["LEDGER_DATABASE_URL"], dbname="no_such_db")}
    line = _one_line_error(cli(missing, "check", "acme", "a", "--purpose", "service", "--channel", "sms"))
    assert 'database "no_such_db" does not exist' in line and "consent-ledger up" not in line


def test_queries_need_no_broker(env: dict[str, str]) -> None:
    """With the broker down, queries answer from PostgreSQL (dead letters too, kept there); `stats`
    notes it cannot count the consumer lag."""
    assert cli(env, "migrate").returncode == 0
    no_broker = {**env, "LEDGER_KAFKA_BOOTSTRAP": "127.0.0.1:1"}
    assert cli(no_broker, "purge", "--dry-run").returncode == 0
    stats = cli(no_broker, "stats", "--json")
    assert stats.returncode == 0, stats.stderr
    document = json.loads(stats.stdout)
    assert (document["deadlettered"], document["consumer_lag"]) == (0, None)
    assert "127.0.0.1:1 does not answer" in document["note"]
    assert "unknown" in cli(no_broker, "stats").stdout


def test_status_masks_the_database_password(env: dict[str, str]) -> None:
    """`status`, as text and JSON, shows the database URL with its password masked."""
    url = make_conninfo(env["LEDGER_DATABASE_URL"], password="pw-s3cret")  # noqa: S106 - to look for
    secret = {**env, "LEDGER_DATABASE_URL": url}
    for args in (("status",), ("status", "--json")):
        shown = cli(secret, *args)
        assert shown.returncode == 0
        assert "pw-s3cret" not in shown.stdout and "***" in shown.stdout


CHECK = ["check", "acme", "alice", "--purpose", "service", "--channel", "sms"]
BREACH = [
    "breach",
    "acme",
    "--system",
    "crm",
    "--from",
    "2026-01-01T00:00:00Z",
    "--to",
    "2026-02-01T00:00:00Z",
]


@pytest.mark.parametrize(
    ("args", "expected"),
    [
        (["check", "acme", "alice", "--channel", "sms"], "consent-ledger check: error: the following"),
        ([*CHECK[:3], "--purpose", "spam", "--channel", "sms"], "unknown purpose 'spam': known are"),
        ([], "consent-ledger: error: the following arguments are required: COMMAND"),
        (["no-such-command"], "invalid choice: 'no-such-command'"),
        (["purge", "--dry-run", "--tenat", "acme"], "consent-ledger purge: error: unrecognized arguments"),
        (["subject", "acme", "alice", "--as-of", "0001-01-01T00:00:00+01:00"], "from 1970-01-01T00:00:00Z"),
        ([*CHECK, "--at", "9999-12-31T23:59:59-01:00"], "is outside the accepted range"),
        (["subject", "acme", "alice", "--as-of", "20260131T093000Z"], "is not an RFC 3339 timestamp"),
        ([*BREACH, "--discovered-at", "9999-12-31T23:59:59Z"], "to before 2200-01-01T00:00:00Z"),
        (["subject", "acme", "alice", "--as-of", "2026-01-01T00:00:00"], "has no UTC offset"),
        (["overdue", "acme", "--within", "999999999999"], "is not a number of days from 0 to 36500"),
        (["generate", "--out", "/proc/no-such-dir/x"], "/proc/no-such-dir/x: No such file or directory"),
    ],
)  # fmt: skip
def test_usage_errors_are_one_line(env: dict[str, str], args: list[str], expected: str) -> None:
    """Bad arguments, times out of range and unwritable files: exit 2 and one line, no usage block."""
    line = _one_line_error(cli(env, *args))
    assert expected in line
    if any(
        kind in line for kind in ("error: the following", "invalid choice", "unknown purpose", "unrecognized")
    ):
        assert line.endswith("--help)")


def test_unreadable_key_and_policy_files_are_one_line(env: dict[str, str], tmp_path: Path) -> None:
    """`rotate-key` and `adopt-policy` given a binary or missing file say so in one line."""
    assert cli(env, "migrate").returncode == 0
    binary = tmp_path / "binary"
    binary.write_bytes(bytes(range(256)))
    for args in (["rotate-key", "--new-key-file"], ["adopt-policy", "--by", "me", "--reason", "r", "--file"]):
        assert "is not UTF-8 text" in _one_line_error(cli(env, *args, str(binary)))
        assert "cannot read" in _one_line_error(cli(env, *args, str(tmp_path / "missing")))


def test_output_to_a_closed_pipe_ends_quietly(env: dict[str, str], monkeypatch: pytest.MonkeyPatch) -> None:
    """When the reader of stdout goes away (`| head`), the command stops without a traceback."""

    class Closed(io.StringIO):
        def write(self, text: str) -> int:
            raise BrokenPipeError

    assert cli(env, "migrate").returncode == 0
    for name, value in env.items():
        monkeypatch.setenv(name, value)
    with contextlib.redirect_stdout(Closed()), contextlib.redirect_stderr(io.StringIO()) as err:
        code = main(["stats"])
    assert (code, err.getvalue()) == (0, "")


def test_the_installed_entry_point_runs(env: dict[str, str]) -> None:
    """The one subprocess test: the `consent-ledger` script migrates and answers with its exit codes."""
    script = Path(sys.executable).with_name("consent-ledger")
    run_env = {**os.environ, **env, "LEDGER_LOG_LEVEL": "warning"}
    done = subprocess.run([script, "migrate"], env=run_env, capture_output=True, text=True, check=False)
    assert (done.returncode, done.stderr) == (0, "")
    unknown = subprocess.run(
        [script, "subject", "acme", "nobody"], env=run_env, capture_output=True, text=True, check=False
    )
    assert unknown.returncode == 2 and len(unknown.stderr.splitlines()) == 1


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


def test_unknown_names_are_refused_with_the_nearest_known(env: dict[str, str], tmp_path: Path) -> None:
    """A typo in a tenant, system, category, purpose or channel is exit 2 with "did you mean", never a 0."""
    events = tmp_path / "events.jsonl"
    lines = [
        event("acme", "ann", "data.collected", collected("billing", "crm"), minutes=1),
        event("globex", "bob", "consent.given", consent(), minutes=2),
    ]
    events.write_bytes(b"".join(orjson.dumps(line) + b"\n" for line in lines))
    assert cli(env, "publish", str(events)).returncode == 0
    assert cli(env, "run", "--until-idle").returncode == 0
    window = ["--from", "2025-01-01T00:00:00Z", "--to", "2027-01-01T00:00:00Z"]
    cases = [
        (["breach", "acmee", "--system", "crm", *window], "unknown tenant 'acmee': did you mean acme?"),
        (["breach", "acme", "--system", "crn", *window], "system 'crn' of tenant 'acme': did you mean"),
        (["breach", "acme", "--system", "crm", "--category", "biling", *window], "did you mean billing?"),
        (["overdue", "globx"], "unknown tenant 'globx': did you mean globex?"),
        (["purge", "--dry-run", "--tenant", "nobody"], "unknown tenant 'nobody': known are acme, globex"),
        (["subject", "acm", "ann"], "did you mean acme?"),
        (["check", "acme", "ann", "--purpose", "marketting", "--channel", "sms"], "did you mean marketing?"),
        (["check", "acme", "ann", "--purpose", "service", "--channel", "e-mail"], "did you mean email?"),
        (["history", "glob", "bob"], "did you mean globex?"),
        (["subject", "acme", "nobody"], "tenant 'acme' has no subject 'nobody'"),
    ]  # fmt: skip
    for args, expected in cases:
        assert expected in _one_line_error(cli(env, *args)), args
    assert cli(env, "breach", "acme", "--system", "crm", *window).returncode == 0


def test_human_output_shows_no_none_and_every_time_in_z(env: dict[str, str], tmp_path: Path) -> None:
    """Over a workload with every event type, no text output says `None`, and no output (text or
    JSON) writes a time with `+00:00`: every time is RFC 3339 with `Z`."""
    events = tmp_path / "events.jsonl"
    assert cli(env, "generate", "--out", str(events), "--tenants", "1", "--subjects", "40").returncode == 0
    assert cli(env, "publish", str(events)).returncode == 0
    assert cli(env, "run", "--until-idle").returncode == 0
    assert cli(env, "checkpoint").returncode == 0  # receipts prove inclusion up to a signed tree head
    subjects = sorted({orjson.loads(line)["subject"] for line in events.read_bytes().splitlines()})
    tenant = orjson.loads(events.read_bytes().splitlines()[0])["tenant"]
    consent_ids = [
        orjson.loads(line)["id"] for line in events.read_bytes().splitlines() if b'"consent.given"' in line
    ][:3]
    window = ["--from", "2020-01-01T00:00:00Z", "--to", "2030-01-01T00:00:00Z"]
    commands = [
        *(["subject", tenant, subject] for subject in subjects),
        *(["history", tenant, subject] for subject in subjects[:10]),
        *(["receipt", tenant, event_id] for event_id in consent_ids),
        ["check", tenant, subjects[0], "--purpose", "marketing", "--channel", "email"],
        ["breach", tenant, "--system", "crm", "--subjects", *window],
        ["overdue", tenant, "--at", "2031-01-01T00:00:00Z"],
        ["purge", "--dry-run", "--at", "2040-01-01T00:00:00Z"],
        ["policies"],
        ["stats"],
    ]
    for args in commands:
        for shown in (cli(env, *args), cli(env, *args, "--json")):
            assert shown.returncode in (0, 1) and shown.stderr == "", (args, shown.stderr)
            assert "+00:00" not in shown.stdout, args
        assert "None" not in cli(env, *args).stdout, args


def test_export_is_private_and_can_go_to_stdout(env: dict[str, str], tmp_path: Path) -> None:
    """`export` creates its file readable by its owner only (0600), and `--out -` writes to stdout."""
    events = tmp_path / "events.jsonl"
    events.write_bytes(orjson.dumps(event("acme", "eve", "data.collected", collected())) + b"\n")
    assert cli(env, "publish", str(events)).returncode == 0
    assert cli(env, "run", "--until-idle").returncode == 0
    out = tmp_path / "eve.json"
    assert cli(env, "export", "acme", "eve", "--out", str(out)).returncode == 0
    assert out.stat().st_mode & 0o777 == 0o600
    loose = tmp_path / "loose.json"
    loose.write_text("")
    loose.chmod(0o644)
    assert cli(env, "export", "acme", "eve", "--out", str(loose)).returncode == 0
    assert loose.stat().st_mode & 0o777 == 0o600
    cwd = Path.cwd()
    os.chdir(tmp_path)
    try:
        shown = cli(env, "export", "acme", "eve", "--out", "-")
    finally:
        os.chdir(cwd)
    assert json.loads(shown.stdout)["subject"] == "eve"
    assert not (tmp_path / "-").exists()


def test_check_on_a_channel_the_tenant_added(env: dict[str, str], tmp_path: Path) -> None:
    """A WhatsApp consent of a tenant that added the channel is checked like an SMS one; a tenant that did
    not add it is told, in one line, which channels it has."""
    added = env | {"LEDGER_EXTRA_CHANNELS": "acme:whatsapp"}
    events = tmp_path / "events.jsonl"
    lines = [
        event("acme", "alice", "consent.given", consent("marketing", "whatsapp"), minutes=1),
        event("globex", "carol", "consent.given", consent("marketing", "sms"), minutes=1),
    ]
    events.write_bytes(b"".join(orjson.dumps(line) + b"\n" for line in lines))
    assert cli(added, "publish", str(events)).returncode == 0
    assert cli(added, "run", "--until-idle").returncode == 0
    allowed = cli(added, "check", "acme", "alice", "--purpose", "marketing", "--channel", "whatsapp")
    assert (allowed.returncode, allowed.stdout.split(":")[0]) == (0, "allowed")
    asked = ["check", "globex", "carol", "--purpose", "marketing", "--channel", "whatsapp"]
    line = _one_line_error(cli(added, *asked))
    assert "unknown channel 'whatsapp'" in line
