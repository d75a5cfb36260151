"""`consent-ledger`: the ledger's commands plus those of this package (serve, keys, access-log)."""

import argparse
import json
import sys
from collections.abc import Sequence
from dataclasses import asdict

from ledger import cli
from ledger.access import ROLES
from ledger.errors import UsageError
from ledger.settings import Settings
from projections.queries import plain


def main(argv: Sequence[str] | None = None) -> int:
    """The console entry point."""
    return cli.main(argv, extra=_commands)


def _commands(command: cli.Command) -> None:
    serve = command("serve", _serve, "answer the HTTP API on LEDGER_HTTP_HOST:LEDGER_HTTP_PORT")
    serve.add_argument("--workers", type=int, default=1, help="uvicorn worker processes (default 1)")
    keys = command("keys", _keys_list, "create, list and revoke API keys")
    actions = keys.add_subparsers(dest="action", required=True, metavar="ACTION")
    create = actions.add_parser("create", help="a new key, shown once (only its hash is stored)")
    create.set_defaults(handler=_keys_create)
    create.add_argument("--tenant", help="the key's tenant (leave out for an admin key)")
    create.add_argument("--role", required=True, choices=ROLES)
    listing = actions.add_parser("list", help="every key: id, tenant, role, created, revoked")
    listing.set_defaults(handler=_keys_list)
    listing.add_argument("--json", action="store_true", help="print JSON")
    revoke = actions.add_parser("revoke", help="refuse a key from its next request on")
    revoke.set_defaults(handler=_keys_revoke)
    revoke.add_argument("key_id")
    log = command("access-log", _access_log, "who read which subject's personal data, when", json=True)
    log.add_argument("tenant")
    log.add_argument("subject", nargs="?")


def _serve(args: argparse.Namespace, settings: Settings) -> int:
    if args.workers < 1:
        raise UsageError("--workers takes a number of processes, 1 or more")
    from app.bootstrap import Services
    from app.http.server import serve

    services = Services(settings)
    services.migrate().close()  # reachable, tables in place: fail here in one line, not in each worker
    print(f"serving the HTTP API on http://{settings.http_host}:{settings.http_port} (docs at /docs)")
    serve(settings, args.workers)
    return 0


def _keys_create(args: argparse.Namespace, settings: Settings) -> int:
    from app.bootstrap import Services

    ledger = Services(settings).migrate()
    with ledger.writer.datastore.transaction(commit=True) as curs:
        key, text = ledger.api_keys.create(curs, args.tenant, args.role)
    print(
        f"created {key.role} key {key.key_id} for {key.tenant or 'every tenant'}; it is shown only this once:"
    )
    print(text)
    return 0


def _keys_list(args: argparse.Namespace, settings: Settings) -> int:
    from app.bootstrap import Services

    ledger = Services(settings).ledger
    with ledger.writer.datastore.transaction() as curs:
        keys = ledger.api_keys.all(curs)
    if getattr(args, "json", False):
        _print_json([plain(asdict(key)) for key in keys])
        return 0
    for key in keys:
        revoked = f"revoked {plain(key.revoked_at)}" if key.revoked_at else "live"
        holder = key.tenant or "(every tenant)"
        print(f"{key.key_id}  {key.role:<9} {holder:<16} created {plain(key.created_at)}  {revoked}")
    print(f"{len(keys)} key(s)")
    return 0


def _keys_revoke(args: argparse.Namespace, settings: Settings) -> int:
    from app.bootstrap import Services

    ledger = Services(settings).ledger
    with ledger.writer.datastore.transaction(commit=True) as curs:
        key = ledger.api_keys.revoke(curs, args.key_id)
    print(f"revoked key {key.key_id} at {plain(key.revoked_at)}")
    return 0


def _access_log(args: argparse.Namespace, settings: Settings) -> int:
    from app.bootstrap import Services

    ledger = Services(settings).ledger
    with ledger.writer.datastore.transaction() as curs:
        entries = ledger.access_log.read(curs, args.tenant, args.subject)
    if args.json:
        _print_json([plain(asdict(entry)) for entry in entries])
        return 0
    for entry in entries:
        print(
            f"{plain(entry.at)} key {entry.key_id} ({entry.role}) read {entry.subject} via {entry.endpoint}"
        )
    print(f"{len(entries)} read(s) of personal data recorded")
    return 0


def _print_json(document: object) -> None:
    json.dump(document, sys.stdout, indent=2)
    print()


if __name__ == "__main__":
    sys.exit(main())
