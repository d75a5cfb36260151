"""API keys (`keys create|list|revoke`) and the access log of reads of personal data (`access-log`)."""

import argparse
from dataclasses import asdict

from app.bootstrap import Services
from app.cli.output import print_json
from app.cli.parser import Command
from ledger.access import ROLES
from ledger.settings import Settings
from projections import names
from projections.queries import plain


def register(command: Command) -> None:
    """keys (create, list, revoke), access-log."""
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


def _keys_create(args: argparse.Namespace, settings: Settings) -> int:
    key, text = Services(settings).migrate().create_api_key(args.tenant, args.role)
    print(
        f"created {key.role} key {key.key_id} for {key.tenant or 'every tenant'}; it is shown only this once:"
    )
    print(text)
    return 0


def _keys_list(args: argparse.Namespace, settings: Settings) -> int:
    keys = Services(settings).ledger.list_api_keys()
    if getattr(args, "json", False):
        print_json([asdict(key) for key in keys])
        return 0
    for key in keys:
        revoked = f"revoked {plain(key.revoked_at)}" if key.revoked_at else "live"
        holder = key.tenant or "(every tenant)"
        print(f"{key.key_id}  {key.role:<9} {holder:<16} created {plain(key.created_at)}  {revoked}")
    print(f"{len(keys)} key(s)")
    return 0


def _keys_revoke(args: argparse.Namespace, settings: Settings) -> int:
    key = Services(settings).ledger.revoke_api_key(args.key_id)
    print(f"revoked key {key.key_id} at {plain(key.revoked_at)}")
    return 0


def _access_log(args: argparse.Namespace, settings: Settings) -> int:
    ledger = Services(settings).ledger
    entries = ledger.accesses(args.tenant, args.subject)
    if not entries:  # a misspelt tenant is no "0 reads"; a tenant read only through its dead letters has some
        names.require_tenant(ledger, args.tenant)
    if args.json:
        print_json([asdict(entry) for entry in entries])
        return 0
    for entry in entries:
        print(
            f"{plain(entry.at)} key {entry.key_id} ({entry.role}) read {entry.subject} via {entry.endpoint}"
        )
    print(f"{len(entries)} read(s) of personal data recorded")
    return 0
