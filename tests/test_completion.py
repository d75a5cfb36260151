"""`consent-ledger --version` and the bash completion script, which bash itself runs here."""

import shutil
import subprocess

import pytest

from tests.helpers import cli


def test_version_prints_the_installed_version() -> None:
    """--version prints the package's version and exits 0, before any setting is read."""
    done = cli({"LEDGER_TOPIC_PARTITIONS": "not a number"}, "--version")
    assert (done.returncode, done.stdout) == (0, "consent-ledger 0.1.0\n")


def _complete(script: str, *words: str) -> list[str]:
    """What bash offers for the command line `words` (the last one being typed) with `script` loaded."""
    line = " ".join(words)
    program = (
        f"{script}\nCOMP_WORDS=({line}); COMP_CWORD={len(words) - 1}\n"
        '_consent_ledger; printf "%s\\n" "${COMPREPLY[@]}"'
    )
    bash = shutil.which("bash")
    assert bash is not None
    done = subprocess.run([bash, "--norc", "-c", program], capture_output=True, text=True, check=True)
    return done.stdout.split()


@pytest.fixture(scope="module")
def script() -> str:
    """The script `consent-ledger completion bash` prints."""
    done = cli({}, "completion", "bash")
    assert done.returncode == 0
    return done.stdout


def test_completion_offers_the_commands_that_exist(script: str) -> None:
    """At the first word bash offers the real commands (those of app/ too) that start with what is typed."""
    assert _complete(script, "consent-ledger", "su") == ["subject"]
    assert {"serve", "keys", "migrate", "completion"} <= set(_complete(script, "consent-ledger", "''"))


def test_completion_offers_a_commands_options_and_subcommands(script: str) -> None:
    """After a command bash offers its own options, and a nested command's actions."""
    assert "--purpose" in _complete(script, "consent-ledger", "check", "--")
    assert _complete(script, "consent-ledger", "keys", "cr") == ["create"]
