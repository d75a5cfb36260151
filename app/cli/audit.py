"""Evidence: erasure by hand, verifying the log, signed tree heads, receipts and their offline check."""

import argparse
import json
from dataclasses import asdict
from pathlib import Path

from app.bootstrap import Services
from app.cli.output import print_horizon, print_json, read_json, shown, write_out
from app.cli.parser import Command, Parser
from ledger.errors import ConfigError, ErasureRefused
from ledger.settings import Settings
from ledger.signing import PublicKey, read_public_keys, signing_key
from projections import names, queries
from projections.timeline import erasure_horizon


def register(command: Command) -> None:
    """erase, verify, checkpoint, signing-key, receipt, tree-head, verify-receipt."""
    erase = command(
        "erase", _erase, "crypto-shred a subject by hand (refused while a legal hold stands)", who=True
    )
    erase.add_argument("--reason", required=True, help="why (recorded; put no personal data in it)")
    verify_cmd = _public_keys_option(
        command(
            "verify",
            _verify,
            "recompute every hash chain, the Merkle tree and each checkpoint; exit 1 on any break",
            json=True,
        ),
        "checked besides",
    )
    verify_cmd.add_argument(
        "--witness",
        type=Path,
        action="append",
        default=[],
        metavar="FILE",
        help="a witness file of tree heads (repeatable)",
    )
    verify_cmd.add_argument(
        "--witness-topic",
        nargs="?",
        const="",
        metavar="TOPIC",
        help="the Kafka topic of tree heads (default LEDGER_CHECKPOINT_TOPIC)",
    )
    command("checkpoint", _checkpoint, "sign a tree head of the log now (and hand it to the witnesses)")
    signing = command(
        "signing-key", _signing_key, "show the checkpoint signing key's id and public key", json=True
    )
    signing.add_argument("--public", action="store_true", help="print only the public key, to publish")
    rec = command(
        "receipt",
        _receipt,
        "a receipt (ISO/IEC TS 27560 shape) for a consent, withdrawal or opt-out, with its inclusion proof",
        json=True,
    )
    rec.add_argument("tenant")
    rec.add_argument("event_id")
    head = command(
        "tree-head", _tree_head, "the newest signed tree head, optionally with a consistency proof"
    )
    head.add_argument("--from-size", type=int, help="prove that the tree of this size is a prefix of it")
    head.add_argument("--out", type=Path, help="write it to this file (default, or `-`: print)")
    check = _public_keys_option(
        command(
            "verify-receipt", _verify_receipt, "check a receipt offline: record, inclusion proof, signature"
        ),
        "when none is given,",
    )
    check.add_argument("file", type=Path, help="the receipt (`receipt --json`)")
    check.add_argument(
        "--tree-head",
        type=Path,
        metavar="FILE",
        help="a later tree head (`tree-head --from-size N`) to check against",
    )


def _public_keys_option(cmd: Parser, configured: str) -> Parser:
    cmd.add_argument(
        "--public-key",
        type=Path,
        action="append",
        default=[],
        metavar="FILE",
        help=f"a published signing key (repeatable; {configured} the configured signing key's)",
    )
    return cmd


def _public_keys(args: argparse.Namespace, settings: Settings) -> list[PublicKey]:
    """The keys given with --public-key, and the configured signing key's (required when none is given)."""
    keys = read_public_keys(args.public_key)
    try:
        keys.append(signing_key(settings, create=False).public)
    except ConfigError:
        if not keys:
            raise
    return keys


def _erase(args: argparse.Namespace, settings: Settings) -> int:
    services = Services(settings)
    ledger = services.ledger
    try:
        erased = services.projector.erase(args.tenant, args.subject, args.reason)
    except ErasureRefused as refused:
        print(f"refused: {refused}")
        return 1
    if erased is None:
        print(f"subject {args.subject} of tenant {args.tenant} was already erased; nothing new to destroy")
    else:
        print(
            f"erased subject {args.subject} of tenant {args.tenant}: "
            f"{len(erased.destroyed_keys)} data key(s) destroyed"
        )
    erased_at = queries.subject_state(ledger, args.tenant, args.subject).erased_at
    found = erasure_horizon(ledger, erased_at, settings.topic_retention)
    assert found is not None  # projected before erase returned
    print_horizon(found)
    return 0


def _verify(args: argparse.Namespace, settings: Settings) -> int:
    from consumers.witness import read_file as read_witness_file
    from consumers.witness import read_topic as read_witness_topic
    from ledger.audit import verify

    services = Services(settings)
    ledger = services.evidence
    witnessed = [head for path in args.witness for head in read_witness_file(path)]
    if args.witness_topic is not None:
        topic = args.witness_topic or settings.checkpoint_topic
        witnessed += read_witness_topic(services.kafka_bootstrap, topic, settings)
    given = args.witness or args.witness_topic is not None
    report = verify(ledger, _public_keys(args, settings), witnessed if given else None)
    if args.json:
        print_json({**asdict(report), "ok": report.ok})
    else:
        for found in report.breaks:
            print(found.line())
        print(report.summary())
    return 0 if report.ok else 1


def _checkpoint(args: argparse.Namespace, settings: Settings) -> int:
    services = Services(settings)
    services.migrate()
    written = services.checkpointer.step(force=True)
    if not written:
        print("nothing new to checkpoint")
        return 0
    last = written[-1]
    print(
        f"checkpoint {last.sequence} at position {last.position}: tree size {last.tree_size}, "
        f"root {last.root_hash.hex()}, signed by key {last.key_id}"
    )
    return 0


def _signing_key(args: argparse.Namespace, settings: Settings) -> int:
    public = Services(settings).signing_key.public
    if args.json:
        print_json({"key_id": public.key_id, "public_key": public.text()})
    elif args.public:
        print(public.text())
    else:
        print(f"key id {public.key_id}, public key {public.text()}")
    return 0


def _receipt(args: argparse.Namespace, settings: Settings) -> int:
    from projections.receipts import receipt

    ledger = Services(settings).ledger
    names.require_tenant(ledger, args.tenant)
    document = queries.plain(asdict(receipt(ledger, args.tenant, args.event_id)))
    if args.json:
        print_json(document)
        return 0
    proof = document.pop("proof")
    document.pop("record")
    for name, value in document.items():
        print(f"{name:<18} {shown(value)}")
    print(
        f"{'proof':<18} leaf {proof['leaf_index']} of the tree of {proof['tree_size']} events, "
        f"tree head {proof['tree_head']['sequence']} signed by key {proof['key_id']} (--json for all of it)"
    )
    return 0


def _tree_head(args: argparse.Namespace, settings: Settings) -> int:
    from projections.receipts import tree_head

    text = json.dumps(tree_head(Services(settings).evidence, args.from_size), indent=2) + "\n"
    if write_out(args.out, text):
        print(f"wrote the tree head to {args.out}")
    return 0


def _verify_receipt(args: argparse.Namespace, settings: Settings) -> int:
    from projections.receipts import check_receipt

    later = None if args.tree_head is None else read_json(args.tree_head)
    # A receipt holder checks against the key the ledger published, not against whatever this
    # machine happens to hold: the configured key counts only when none is given.
    keys = read_public_keys(args.public_key) or [signing_key(settings, create=False).public]
    verdict = check_receipt(read_json(args.file), keys, later)
    for line in verdict.problems:
        print(f"FAILED: {line}")
    if verdict.ok:
        for line in verdict.established:
            print(f"ok: {line}")
    return 0 if verdict.ok else 1
