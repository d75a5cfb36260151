"""`serve`: the HTTP API on LEDGER_HTTP_HOST:LEDGER_HTTP_PORT."""

import argparse

from app.bootstrap import Services
from app.cli.parser import Command
from ledger.errors import UsageError
from ledger.settings import Settings


def register(command: Command) -> None:
    """serve."""
    serve = command("serve", _serve, "answer the HTTP API on LEDGER_HTTP_HOST:LEDGER_HTTP_PORT")
    serve.add_argument("--workers", type=int, default=1, help="uvicorn worker processes (default 1)")


def _serve(args: argparse.Namespace, settings: Settings) -> int:
    if args.workers < 1:
        raise UsageError("--workers takes a number of processes, 1 or more")
    from app.http.server import listen, serve

    services = Services(settings)
    services.migrate().close()  # reachable, tables in place: fail here in one line, not in each worker
    listen(settings, "or stop what listens on it").close()  # uvicorn would say it in 7 lines, exit 3
    print(f"serving the HTTP API on http://{settings.http_host}:{settings.http_port} (docs at /docs)")
    serve(settings, args.workers)
    return 0
