"""The `deadletters` and `purge-agent` commands, through `main(argv)`, on the real broker and database."""

import json
from datetime import timedelta
from pathlib import Path
from typing import Any

import orjson
import pytest

from consumers.publisher import Publisher
from consumers.scheduler import Sweeper
from ledger.settings import Settings
from ledger.store import Ledger
from projections.projector import Projector
from tests.helpers import T0, cli, collected, consent, event, fact

pytestmark = pytest.mark.services


def _letters(env: dict[str, str], *args: str) -> dict[str, Any]:
    listed = cli(env, "deadletters", "list", "--json", *args)
    assert listed.returncode == 0, listed.stderr
    document: dict[str, Any] = json.loads(listed.stdout)
    return document


def test_list_show_replay_and_drop(env: dict[str, str], settings: Settings) -> None:
    """Refused messages are listed with counts per class, in aligned columns; `show` prints the
    original bytes and the access log records the operator reading them; `replay` answers 1 while
    letters stay refused; `drop` records the decision (a dropped letter named to `replay` or to `drop`
    again exits 2 in one line naming it, and nothing is tried);
    `stats` counts the letters from PostgreSQL."""
    assert settings.kafka_bootstrap is not None
    wrong = orjson.dumps(event("acme", "ann", "consent.given", consent(purpose="spam")))
    with Publisher(settings.kafka_bootstrap, settings) as publisher:
        publisher.publish_unchecked(b"acme/ann", wrong)
        publisher.publish_unchecked(None, b"not json")
    assert cli(env, "consume", "--until-idle").returncode == 0

    listed = _letters(env)
    assert listed["counts"] == {
        "json": {"open": 1, "replayed": 0, "dropped": 0},
        "vocabulary": {"open": 1, "replayed": 0, "dropped": 0},
    }
    letters = {letter["reason_class"]: letter["id"] for letter in listed["letters"]}
    acme = _letters(env, "--tenant", "acme")["letters"]
    assert [letter["id"] for letter in acme] == [letters["vocabulary"]]
    text = cli(env, "deadletters", "list").stdout
    assert "vocabulary: 1 open, 0 replayed, 0 dropped" in text and "2 of 2 dead letter(s) listed" in text
    rows = text.splitlines()[:2]  # a letter naming no tenant shows `-`, in the same column as `acme`
    assert rows[0].index(" open ") == rows[1].index(" open "), rows

    shown = cli(env, "deadletters", "show", str(letters["vocabulary"]))
    assert shown.returncode == 0, shown.stderr
    assert (
        f"value: {wrong.decode()}" in shown.stdout and "reason (vocabulary): schema violation" in shown.stdout
    )
    log = json.loads(cli(env, "access-log", "acme", "--json").stdout)
    assert [(entry["subject"], entry["role"]) for entry in log] == [
        (f"deadletter/{letters['vocabulary']}", "operator")
    ]

    replayed = cli(env, "deadletters", "replay", "--json")
    assert replayed.returncode == 1 and json.loads(replayed.stdout)["tried"] == 2
    dropped = cli(env, "deadletters", "drop", str(letters["json"]), "--why", "garbage from a test")
    assert dropped.returncode == 0 and "garbage from a test" in dropped.stdout
    dropped_again = cli(env, "deadletters", "drop", str(letters["json"]), "--why", "again")
    assert (dropped_again.returncode, dropped_again.stderr) == (
        2,
        f"consent-ledger: error: dead letter {letters['json']} (dropped) is not open: "
        "only open letters can be dropped\n",
    )
    replayed_again = cli(env, "deadletters", "replay", str(letters["vocabulary"]), str(letters["json"]))
    assert (replayed_again.returncode, replayed_again.stdout, replayed_again.stderr) == (
        2,
        "",
        f"consent-ledger: error: dead letter {letters['json']} (dropped) is not open: "
        "only open letters can be replayed\n",
    )
    again = cli(env, "deadletters", "show", str(letters["json"]), "--json")
    assert json.loads(again.stdout)["status"] == "dropped" and "value" not in json.loads(again.stdout)
    stats = json.loads(cli(env, "stats", "--json").stdout)
    assert (stats["deadlettered"], stats["deadletters_open"]) == (2, 1)


def test_bad_arguments_are_refused_in_one_line(env: dict[str, str]) -> None:
    """An unknown reason class, a letter that does not exist (to show or to replay), an unknown
    tenant's access log and a handler that cannot be imported each exit 2 with one line saying what
    to fix."""
    assert cli(env, "migrate").returncode == 0
    cases = [
        (["deadletters", "replay", "--reason", "nonsense"], "invalid choice"),
        (["deadletters", "show", "12345"], "no dead letter 12345"),
        (["deadletters", "replay", "12345"], "no dead letter 12345"),
        (["access-log", "acmee"], "unknown tenant 'acmee'"),
        (["purge-agent", "--system", "crm", "--handler", "no_such_module:delete"], "no module"),
        (
            ["purge-agent", "--system", "crm", "--handler", "consumers.sample_purge_handler"],
            "MODULE:FUNCTION",
        ),
        (["purge-agent", "--system", "CRM", "--handler", "consumers.sample_purge_handler:delete"], "system"),
    ]
    for args, expected in cases:
        outcome = cli(env, *args)
        lines = outcome.stderr.strip().splitlines()
        assert outcome.returncode == 2 and len(lines) == 1 and expected in lines[0], (args, outcome.stderr)


def _billing(system: str) -> dict[str, Any]:
    data = collected("billing", system) | {"legal_basis": "contract"}
    del data["personal_data"]
    return data


def test_purge_agent_command_confirms_with_the_sample_handler(
    env: dict[str, str], settings: Settings, ledger: Ledger, tmp_path: Path
) -> None:
    """`purge-agent --system crm --handler consumers.sample_purge_handler:delete --until-idle` executes
    the crm order (the sample notes it in LEDGER_HOME) and confirms it: `run` stores the confirmation
    and the order closes, while the billing order nobody executed stays unconfirmed."""
    held = [
        fact("acme", "ola", f"o-{system}", "data.collected", data=_billing(system))
        for system in ("crm", "billing")
    ]
    ledger.append([*held, fact("acme", "ola", "closed", "account.closed", minutes=10 * 24 * 60)])
    Projector(ledger, page=100).run(until_idle=True)
    assert settings.database_url is not None and settings.kafka_bootstrap is not None
    sweeper = Sweeper(ledger, settings, settings.database_url, settings.kafka_bootstrap)
    due = (T0 + timedelta(days=10)).replace(year=T0.year + 7)
    assert sweeper.sweep(due) is not None
    home = {**env, "LEDGER_HOME": str(tmp_path)}

    agent = cli(
        home,
        "purge-agent",
        "--system",
        "crm",
        "--handler",
        "consumers.sample_purge_handler:delete",
        "--until-idle",
    )
    assert agent.returncode == 0, agent.stderr
    assert "executed 1, confirmed 1" in agent.stdout
    noted = [json.loads(line) for line in (tmp_path / "sample-purges.jsonl").read_text().splitlines()]
    assert [(line["subject"], line["system"]) for line in noted] == [("ola", "crm")]
    assert cli(env, "consume", "--until-idle").returncode == 0
    Projector(ledger, page=100).run(until_idle=True)
    assert sweeper.sweep(due + timedelta(days=1)) is not None
    late = cli(env, "overdue", "acme", "--at", (due + timedelta(days=8)).isoformat(), "--json")
    assert [order["system"] for order in json.loads(late.stdout)["purge_orders"]] == ["billing"]
