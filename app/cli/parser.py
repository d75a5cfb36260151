"""The command line's parser: one-line errors, the `Command` each concern registers its subcommands
with, and the argument types commands share (times, days, vocabulary words)."""

import argparse
import sys
from collections.abc import Callable, Sequence
from datetime import datetime
from typing import NoReturn

from ledger import times
from ledger.settings import Settings
from projections import names

Handler = Callable[[argparse.Namespace, Settings], int]
MAX_DAYS = 36_500  # `--within`: a century


class Parser(argparse.ArgumentParser):
    """argparse, with its errors on one line (the usage block stays behind --help)."""

    def error(self, message: str) -> NoReturn:
        """Print `PROG: error: MESSAGE (see PROG --help)` and exit 2."""
        print(f"{self.prog}: error: {message} (see {self.prog} --help)", file=sys.stderr)
        sys.exit(2)


class Command:
    """Adds subcommands to `consent-ledger`: `command(name, handler, help)` returns the subcommand's
    parser for its own arguments; `who` adds the TENANT SUBJECT positionals, `json` the `--json` flag
    (every query takes it). `root` is the whole command line's parser."""

    def __init__(self, root: Parser) -> None:
        self.root = root
        self._sub = root.add_subparsers(dest="command", required=True, metavar="COMMAND")

    def __call__(
        self, name: str, handler: Handler, text: str, *, who: bool = False, json: bool = False
    ) -> Parser:
        """A new subcommand `name`, run by `handler`, described by `text` in --help."""
        cmd: Parser = self._sub.add_parser(name, help=text, description=text)
        cmd.set_defaults(handler=handler, parser=cmd)
        if who:
            cmd.add_argument("tenant")
            cmd.add_argument("subject")
        if json:
            cmd.add_argument("--json", action="store_true", help="print JSON")
        return cmd


def build(registers: Sequence[Callable[[Command], None]]) -> Parser:
    """The parser of `consent-ledger` with the subcommands each of `registers` adds, in that order."""
    parser = Parser(
        prog="consent-ledger",
        description="Event-sourced consent and retention ledger. Settings: LEDGER_* variables.",
    )
    parser.add_argument("--version", action=_Version, help="print the installed version and exit")
    command = Command(parser)
    for register in registers:
        register(command)
    return parser


class _Version(argparse.Action):
    """--version, looked up only when asked for (package metadata costs a query's start time)."""

    def __init__(self, option_strings: Sequence[str], dest: str, help: str) -> None:
        super().__init__(option_strings, dest, nargs=0, help=help)

    def __call__(self, parser: argparse.ArgumentParser, *_: object) -> NoReturn:
        from importlib.metadata import version

        print(f"{parser.prog} {version('consent-ledger')}")
        parser.exit()


def until_idle(cmd: Parser) -> Parser:
    """Add `--until-idle` to a long-running command."""
    cmd.add_argument("--until-idle", action="store_true", help="process what is there, then exit")
    return cmd


def known_at(cmd: Parser) -> Parser:
    """Add `--known-at` to a point-in-time question."""
    cmd.add_argument("--known-at", type=moment, help="counting only what was recorded by then (RFC 3339)")
    return cmd


def positive(text: str) -> int:
    """A count of at least one."""
    if not text.isdigit() or int(text) < 1:
        raise argparse.ArgumentTypeError(f"{text!r} is not a whole number of at least 1")
    return int(text)


def word(kind: str) -> Callable[[str], str]:
    """A value of the contract's vocabulary of `kind`, or a one-line "did you mean"."""

    def checked(text: str) -> str:
        if text not in names.vocabulary(kind):
            raise argparse.ArgumentTypeError(names.unknown(kind, text, names.vocabulary(kind)))
        return text

    checked.__name__ = kind  # what argparse calls the argument's type in its messages
    return checked


def days(text: str) -> int:
    """A number of days from 0 to a century."""
    if not text.isdigit() or int(text) > MAX_DAYS:
        raise argparse.ArgumentTypeError(f"{text!r} is not a number of days from 0 to {MAX_DAYS}")
    return int(text)


def moment(text: str) -> datetime:
    """An RFC 3339 time argument, as UTC, within the range the ledger accepts for event times."""
    try:
        return times.parse(text)
    except ValueError as error:
        raise argparse.ArgumentTypeError(f"{text!r} {error}") from None
