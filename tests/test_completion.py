"""`consent-ledger --version` and the completion scripts, which bash, zsh and fish themselves run here."""

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


def _shell(name: str) -> str:
    path = shutil.which(name)
    if path is None:
        pytest.skip(f"{name} is not installed (Debian package {name})")
    return path


def test_fish_completion_offers_commands_options_and_actions() -> None:
    """fish, with the script `completion fish` prints loaded, offers the commands, a command's long
    options and a nested command's actions."""
    fish = _shell("fish")
    script = cli({}, "completion", "fish").stdout
    program = (
        f"{script}\n"
        'complete -C "consent-ledger su"; echo ---; complete -C "consent-ledger check --pu"; echo ---; '
        'complete -C "consent-ledger keys cr"'
    )
    done = subprocess.run([fish, "--no-config", "-c", program], capture_output=True, text=True, check=True)
    commands, options, actions = (part.split() for part in done.stdout.split("---"))
    assert (commands, options, actions) == (["subject"], ["--purpose"], ["create"])


def test_zsh_completion_runs_the_bash_script_through_bashcompinit() -> None:
    """zsh loads the script `completion zsh` prints, registers it for the command, and it offers a
    command's own words (zsh filters them by what is typed)."""
    zsh = _shell("zsh")
    script = cli({}, "completion", "zsh").stdout
    program = (
        f"{script}\n"
        "print -r -- ${_comps[consent-ledger]}; setopt ksharrays\n"
        "COMP_WORDS=(consent-ledger keys cr); COMP_CWORD=2; _consent_ledger; print -r -- ${COMPREPLY[@]}"
    )
    done = subprocess.run([zsh, "-f", "-c", program], capture_output=True, text=True, check=True)
    registered, offered = done.stdout.splitlines()
    assert registered == "_bash_complete -o filenames -F _consent_ledger"
    assert "create" in offered.split() and "--purpose" not in offered.split()
