"""`consent-ledger`: the console entry point (`app.cli:main`), its commands split by concern.

Exit codes: 0 ok, 1 a "no" answer (denied), 2 bad usage or input, with one line saying what to fix.

Adding commands: write a module `app/cli/<concern>.py` with

    def register(command: Command) -> None:
        \"\"\"the commands it adds, by name.\"\"\"
        cmd = command("name", _handler, "one line for --help", who=False, json=True)
        cmd.add_argument(...)

    def _handler(args: argparse.Namespace, settings: Settings) -> int:
        services = Services(settings)  # app.bootstrap: every service is built there, nowhere else
        ...  # parse, call a function of projections/ or ledger/, print; return the exit code

and add the module to `CONCERNS` below (the order is the order of `consent-ledger --help`).
`command(...)` (app/cli/parser.py) returns an argparse parser with one-line errors; `who=True` adds
the TENANT SUBJECT positionals, `json=True` the `--json` flag every query takes. Shared argument
types (`moment`, `days`, `word`, `positive`) are in parser.py, output helpers (`print_json`, `shown`,
`write_out`) in output.py. Import what only a handler needs (Kafka, the scheduler, uvicorn) inside
that handler, so a query starts fast (bench/cli.py); raise a `LedgerError` with one line to refuse.
"""

import contextlib
import os
import sys
from collections.abc import Sequence

from app.cli import audit, completion, compliance, deadletters, keys, operations, queries, retention, serve
from app.cli.errors import explain
from app.cli.parser import Command, Handler, build
from ledger import logs
from ledger.settings import Settings

__all__ = ["CONCERNS", "Command", "main"]

CONCERNS = (operations, queries, retention, compliance, deadletters, audit, serve, keys, completion)


def main(argv: Sequence[str] | None = None) -> int:
    """Parse the command line, run the subcommand, and turn every failure into one line."""
    try:
        parser = build([concern.register for concern in CONCERNS])
        args, unknown = parser.parse_known_args(argv)
        if unknown:  # said by the subcommand's parser, so the line points at its own --help
            getattr(args, "parser", parser).error(f"unrecognized arguments: {' '.join(unknown)}")
        settings = Settings.from_env()
        logs.configure(settings)
        handler: Handler = args.handler
        return handler(args, settings)
    except SystemExit as done:  # argparse, after --help or its one-line error
        return done.code if isinstance(done.code, int) else 2
    except BrokenPipeError:  # the reader (`head`) has seen enough: nothing is wrong
        with contextlib.suppress(OSError, ValueError):  # keep the exit-time flush from failing again
            os.dup2(os.open(os.devnull, os.O_WRONLY), sys.stdout.fileno())
        return 0
    except KeyboardInterrupt:
        return 130
    except Exception as error:  # every failure leaves as one line, never a traceback
        print(f"consent-ledger: error: {explain(error)}", file=sys.stderr)
        return 2
