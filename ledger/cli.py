"""`consent-ledger`: the one entry point, and the composition root that wires each subcommand.

Exit codes: 0 ok, 1 a "no" answer (denied), 2 bad usage or input, with one line saying what to fix.
"""

from __future__ import annotations

import argparse
import contextlib
import json
import os
import signal
import sys
import threading
from collections.abc import Callable, Sequence
from dataclasses import asdict
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import TYPE_CHECKING, Any, NoReturn

import orjson
import psycopg
from eventsourcing.persistence import PersistenceError

from ledger import logs, stack, times
from ledger.crypto import MasterKey, master_key
from ledger.errors import ConfigError, ErasureRefused, LedgerError, ServiceUnavailable, UsageError
from ledger.horizon import Horizon, horizon
from ledger.private_files import write_private
from ledger.retention import PURGE_ORDERED, Rule, parse_policy, policy_document
from ledger.retry import Backoff, Skipped, Supervised, keep_alive
from ledger.settings import Settings
from ledger.signing import PublicKey, read_public_keys, signing_key
from ledger.store import Ledger
from projections import names, queries
from projections.policies import adoptions
from projections.timeline import may_contact_at, state_at

if TYPE_CHECKING:  # the rest load in the handlers that use them, so a query starts fast
    from ledger.checkpoints import Checkpointer
    from projections.projector import Projector

Handler = Callable[[argparse.Namespace, Settings], int]
MAX_DAYS = 36_500  # `--within`: a century


def main(argv: Sequence[str] | None = None, extra: Callable[[Command], None] | None = None) -> int:
    """Parse the command line, run the subcommand, and turn every failure into one line; `extra`
    adds commands defined outside this package (the HTTP server, API keys)."""
    try:
        parser = _parser(extra)
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
        print(f"consent-ledger: error: {_explain(error)}", file=sys.stderr)
        return 2


def _explain(error: Exception) -> str:
    """One line saying what went wrong and what to do about it."""
    if isinstance(error, LedgerError):
        return str(error)
    if isinstance(error, PersistenceError | psycopg.Error):
        return _database_failure(error)
    if isinstance(error, OSError):
        return f"{error.filename or 'a file'}: {error.strerror or type(error).__name__}"
    first = next(iter(str(error).strip().splitlines()), "")
    return f"unexpected {type(error).__name__} ({first}): please report it with the command that caused it"


def _database_failure(error: Exception) -> str:
    cause = error if isinstance(error, psycopg.Error) else error.__cause__
    first = next(iter(str(error).strip().splitlines()), type(error).__name__)
    if isinstance(cause, psycopg.errors.UndefinedTable):
        return "the database lacks the ledger's tables: run `consent-ledger migrate` (as its owner)"
    if isinstance(cause, psycopg.errors.InsufficientPrivilege | psycopg.errors.ReadOnlySqlTransaction):
        return (
            f"PostgreSQL refused ({first}): this command changes the ledger and needs a role with "
            "write access; queries need only SELECT"
        )
    return f"PostgreSQL failed ({first}): check LEDGER_DATABASE_URL or `consent-ledger status`"


class Parser(argparse.ArgumentParser):
    """argparse, with its errors on one line (the usage block stays behind --help)."""

    def error(self, message: str) -> NoReturn:
        """Print `PROG: error: MESSAGE (see PROG --help)` and exit 2."""
        print(f"{self.prog}: error: {message} (see {self.prog} --help)", file=sys.stderr)
        sys.exit(2)


def _parser(extra: Callable[[Command], None] | None = None) -> argparse.ArgumentParser:
    parser = Parser(
        prog="consent-ledger",
        description="Event-sourced consent and retention ledger. Settings: LEDGER_* variables.",
    )
    parser.add_argument("--version", action=_Version, help="print the installed version and exit")
    sub = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")

    def command(name: str, handler: Handler, text: str, *, who: bool = False, json: bool = False) -> Parser:
        cmd = sub.add_parser(name, help=text, description=text)
        cmd.set_defaults(handler=handler, parser=cmd)
        if who:
            cmd.add_argument("tenant")
            cmd.add_argument("subject")
        if json:
            cmd.add_argument("--json", action="store_true", help="print JSON")
        return cmd

    _operation_commands(command)
    _query_commands(command)
    _retention_commands(command)
    _audit_commands(command)
    if extra is not None:
        extra(command)
    shell = command(
        "completion", _completion, 'print a shell completion script: eval "$(consent-ledger completion bash)"'
    )
    shell.add_argument("shell", choices=["bash"])
    shell.set_defaults(parser=parser)
    return parser


class _Version(argparse.Action):
    """--version, looked up only when asked for (package metadata costs a query's start time)."""

    def __init__(self, option_strings: Sequence[str], dest: str, help: str) -> None:
        super().__init__(option_strings, dest, nargs=0, help=help)

    def __call__(self, parser: argparse.ArgumentParser, *_: object) -> NoReturn:
        from importlib.metadata import version

        print(f"{parser.prog} {version('consent-ledger')}")
        parser.exit()


def _completion(args: argparse.Namespace, settings: Settings) -> int:
    from ledger.completion import bash_script

    print(bash_script(args.parser, args.parser.prog), end="")
    return 0


Command = Callable[..., Parser]


def _until_idle(cmd: Parser) -> Parser:
    cmd.add_argument("--until-idle", action="store_true", help="process what is there, then exit")
    return cmd


def _known_at(cmd: Parser) -> Parser:
    cmd.add_argument("--known-at", type=_moment, help="counting only what was recorded by then (RFC 3339)")
    return cmd


def _operation_commands(command: Command) -> None:
    command("up", _up, "start the embedded PostgreSQL and Kafka broker (reuses running ones), migrate")
    command("migrate", _migrate, "create every table of the ledger that is missing (queries never do)")
    command("down", _down, "stop the embedded services")
    command("status", _status, "show the backing services and their URLs", json=True)
    publish = command("publish", _publish, "validate and publish a JSON-lines file of events")
    publish.add_argument("file", type=Path)
    publish.add_argument(
        "--unchecked", action="store_true", help="send lines as they are (test dead-lettering)"
    )
    consume = _until_idle(command("consume", _consume, "ingest events from Kafka into the event store"))
    consume.add_argument(
        "--processes", type=int, default=1, help="consumer processes in the group (default 1)"
    )
    _until_idle(command("project", _project, "bring the read model up to date with the event store"))
    rebuild_cmd = command(
        "rebuild", _rebuild, "replay a projection into fresh tables, compare them with the live ones, swap in"
    )
    rebuild_cmd.add_argument("--projection", choices=["subjects"], default="subjects", help="which one")
    rebuild_cmd.add_argument(
        "--processes", type=_positive, default=os.cpu_count() or 1, help="replay workers (default: cores)"
    )
    _until_idle(command("run", _run, "start the embedded stack and run every component in one process"))
    gen = command("generate", _generate, "write a realistic workload of events as JSON lines")
    gen.add_argument("--out", type=Path, required=True)
    gen.add_argument("--tenants", type=int, default=3)
    gen.add_argument("--subjects", type=int, default=1000, help="per tenant")
    gen.add_argument("--seed", type=int, default=7)
    gen.add_argument("--bad-out", type=Path, help="also write one malformed message of each kind here")
    rotate = command(
        "rotate-key", _rotate_key, "start a new key epoch: re-wrap every data key under a new epoch key"
    )
    rotate.add_argument("--new-key-file", type=Path, help="also wrap the epoch keys under this master key")
    rotate.add_argument(
        "--retire", action="store_true", help="destroy the old epochs' keys (erasures then reach old copies)"
    )


def _query_commands(command: Command) -> None:
    subject = command("subject", _subject, "show what the ledger knows about a subject", who=True, json=True)
    subject.add_argument("--as-of", type=_moment, help="state at this event time (RFC 3339)")
    _known_at(subject)
    check = command(
        "check", _check, "may this subject be contacted for a purpose on a channel now?", who=True, json=True
    )
    check.add_argument("--purpose", required=True, type=_word("purpose"))
    check.add_argument("--channel", required=True, type=_word("channel"))
    check.add_argument("--at", type=_moment, help="answer for this event time (RFC 3339) instead of now")
    _known_at(check)
    command(
        "history",
        _history,
        "every event of a subject, personal values opened unless erased",
        who=True,
        json=True,
    )
    exp = command(
        "export", _export, "write everything known about a subject as JSON (access, portability)", who=True
    )
    exp.add_argument("--out", type=Path, required=True, help="the file to write (mode 0600), or - for stdout")
    command("stats", _stats, "count stored events, subjects and dead letters", json=True)
    breach = command("breach", _breach, "whose data was exposed in a breach of these systems", json=True)
    breach.add_argument("tenant")
    breach.add_argument("--system", action="append", required=True, help="a breached system (repeatable)")
    breach.add_argument("--category", action="append", type=_word("category"), help="only these (repeatable)")
    breach.add_argument("--from", dest="window_from", type=_moment, required=True, help="window start")
    breach.add_argument("--to", dest="window_to", type=_moment, required=True, help="window end")
    breach.add_argument("--discovered-at", type=_moment, help="when it was discovered (default: now)")
    breach.add_argument("--subjects", action="store_true", help="also list each affected subject")


def _retention_commands(command: Command) -> None:
    purge = command("purge", _purge, "what the retention sweep would order purged now", json=True)
    purge.add_argument("--dry-run", action="store_true", required=True, help="list, order nothing")
    purge.add_argument("--at", type=_moment, help="as if it were this instant (RFC 3339)")
    purge.add_argument("--tenant", help="only this tenant")
    sched = _until_idle(
        command("scheduler", _scheduler, "sweep for expired data on a cron (LEDGER_SWEEP_CRON)")
    )
    sched.add_argument(
        "--dry-run",
        action="store_true",
        help="list what a sweep would order (as `purge --dry-run`); order nothing",
    )
    sched.add_argument("--at", type=_moment, help="with --dry-run: as if it were this instant")
    late = command("overdue", _overdue, "rights requests past or near their 30-day deadline", json=True)
    late.add_argument("tenant")
    late.add_argument("--within", type=_days, default=7, help="also list those due within this many days (7)")
    late.add_argument("--at", type=_moment, help="as if it were this instant (RFC 3339)")
    adopt = command("adopt-policy", _adopt_policy, "record that a retention policy applies from now on")
    adopt.add_argument(
        "--file", type=Path, help="the policy (default: LEDGER_RETENTION_POLICY or the shipped one)"
    )
    adopt.add_argument("--by", required=True, help="who adopts it")
    adopt.add_argument("--reason", required=True, help="why")
    policies = command(
        "policies", _policies, "every retention policy adopted, who, when, what changed", json=True
    )
    policies.add_argument("--at", type=_moment, help="only the policy in force at this instant")


def _audit_commands(command: Command) -> None:
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
    signing = command("signing-key", _signing_key, "show the checkpoint signing key's id and public key")
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


def _up(args: argparse.Namespace, settings: Settings) -> int:
    _start(settings).close()
    return _status(argparse.Namespace(json=False), settings)


def _start(settings: Settings) -> Ledger:
    """Start the stack, create the topics, the tables and, on first start, the embedded master key."""
    from consumers import kafka
    from projections import schema

    found = stack.up(settings)
    kafka.ensure_topics(found.kafka_bootstrap, settings)
    key, created = master_key(settings, create=True)
    if created:
        print(
            f"generated a master key at {created}: back it up; without it no personal data "
            "in the ledger can be read"
        )
    ledger = Ledger(found.database_url, key)
    schema.migrate(ledger)
    return ledger


def _migrate(args: argparse.Namespace, settings: Settings) -> int:
    _migrated(settings).close()
    print("every table of the ledger is in place")
    return 0


def _down(args: argparse.Namespace, settings: Settings) -> int:
    stopped = stack.down(settings)
    print("stopped: " + (", ".join(stopped) if stopped else "nothing was running"))
    return 0


def _status(args: argparse.Namespace, settings: Settings) -> int:
    services = stack.status(settings)
    if args.json:
        _print_json([vars(s) for s in services])
    else:
        for s in services:
            where = "embedded" if s.embedded else "external"
            state = "running" if s.running else "stopped"
            print(f"{s.name:<11} {state:<8} {where:<9} {s.url or '-'}")
    return 0 if all(s.running for s in services) else 1


def _ledger(settings: Settings) -> Ledger:
    """The event store as queries use it: PostgreSQL only (no broker), and no schema change, so
    a role that may only SELECT can ask every question."""
    return Ledger(stack.database_url(settings), master_key(settings, create=False)[0])


def _migrated(settings: Settings) -> Ledger:
    """The event store for a component that writes: every table created first where missing."""
    from projections import schema

    ledger = _ledger(settings)
    schema.migrate(ledger)
    return ledger


def _publish(args: argparse.Namespace, settings: Settings) -> int:
    from consumers.publisher import Publisher

    with Publisher(stack.kafka_bootstrap(settings), settings) as publisher:
        report = publisher.publish_file(args.file, check=not args.unchecked)
    for line, reason in report.refused:
        print(f"{args.file}:{line}: refused: {reason}", file=sys.stderr)
    print(f"published {report.published}, refused {len(report.refused)}")
    return 2 if report.refused else 0


def _consume(args: argparse.Namespace, settings: Settings) -> int:
    from consumers import ingest
    from consumers.parallel import consume_in_processes

    bootstrap = stack.kafka_bootstrap(settings)
    ledger = _migrated(settings)
    key = master_key(settings, create=False)[0]
    stop = _stop_on_signal()
    if args.processes == 1:
        totals = ingest.consume(settings, ledger, bootstrap, until_idle=args.until_idle, stop=stop)
    else:
        totals = consume_in_processes(
            settings,
            ledger.database_url,
            bootstrap,
            key,
            processes=args.processes,
            until_idle=args.until_idle,
            stop=stop,
        )
    print(totals.summary())
    return 0


def _project(args: argparse.Namespace, settings: Settings) -> int:
    ledger = _migrated(settings)
    projector = _projector(ledger, settings)
    backoff = Backoff.from_settings(settings, bounded=args.until_idle)
    progress = projector.run(until_idle=args.until_idle, stop=_stop_on_signal(), backoff=backoff)
    print(f"projected {progress.applied} events, position {progress.position}")
    return 0


def _rebuild(args: argparse.Namespace, settings: Settings) -> int:
    from projections.rebuild import rebuild

    ledger = _migrated(settings)
    report = rebuild(ledger, _progress_bar(f"rebuilding {args.projection}"), processes=args.processes)
    print(file=sys.stderr)
    rate = report.events / report.seconds if report.seconds else 0.0
    took = f"{report.seconds:.1f} s ({rate:,.0f} events/s)"
    print(f"rebuilt {args.projection} from {report.events} events in {took}")
    for table, count in report.differences.items():
        if count:
            print(f"  {table}: {count} row(s) differ from the tables it replaced")
    print(
        "identical to the tables it replaced" if report.identical else "DIFFERENT from the tables it replaced"
    )
    return 0 if report.identical else 1


def _progress_bar(title: str) -> Callable[[int, int, float], None]:
    """Redrawn in place on a terminal; a line every few seconds into a log."""
    terminal = sys.stderr.isatty()
    shown = [0.0]

    def show(done: int, total: int, seconds: float) -> None:
        if not terminal and 0 < seconds - shown[0] < 5 and done < total:
            return
        shown[0] = seconds
        rate = done / seconds if seconds else 0.0
        eta = (total - done) / rate if rate else 0.0
        filled = int(30 * done / total) if total else 30
        bar = "#" * filled + "-" * (30 - filled)
        line = f"{title} [{bar}] {done}/{total} {rate:,.0f} events/s ETA {eta:.0f} s"
        print(f"\r{line}" if terminal else line, end="" if terminal else "\n", file=sys.stderr)

    return show


def _run(args: argparse.Namespace, settings: Settings) -> int:
    from consumers import ingest
    from consumers.scheduler import Sweeper, cron_trigger, sweep_once
    from consumers.scheduler import run as run_scheduler

    ledger = _start(settings)
    found = stack.endpoints(settings)
    projector = _projector(ledger, settings)
    sweeper = Sweeper(ledger, settings, found.database_url, found.kafka_bootstrap)
    stop = _stop_on_signal()
    backoff = Backoff.from_settings(settings, bounded=args.until_idle)
    if args.until_idle:
        totals = ingest.consume(settings, ledger, found.kafka_bootstrap, until_idle=True, stop=stop)
        progress = projector.run(until_idle=True, stop=stop, backoff=backoff)
        sweep_once(sweeper, datetime.now(UTC), backoff, stop)
    else:
        trigger = cron_trigger(settings.sweep_cron)
        components: dict[str, Callable[[], object]] = {
            "projector": lambda: projector.run(until_idle=False, stop=stop, backoff=backoff),
            "scheduler": lambda: run_scheduler(sweeper, trigger, stop, backoff),
        }
        workers = [Supervised(name, start, stop, backoff) for name, start in components.items()]
        for worker in workers:
            worker.start()

        def consume() -> ingest.Totals:
            return ingest.consume(settings, ledger, found.kafka_bootstrap, until_idle=False, stop=stop)

        totals = keep_alive("consumer", consume, stop, backoff) or ingest.Totals()
        stop.set()
        for worker in workers:
            worker.finish()
        progress = projector.run(until_idle=True, backoff=Backoff.from_settings(settings, bounded=True))
    print(f"{totals.summary()}, projected {progress.applied}")
    return 0


def _scheduler(args: argparse.Namespace, settings: Settings) -> int:
    from consumers.scheduler import Sweeper, cron_trigger, sweep_once
    from consumers.scheduler import run as run_scheduler

    if args.dry_run:
        return _dry_run(_ledger(settings), settings, args.at, None, as_json=False)
    if args.at:  # a sweep records orders, sends them and appends to subjects' histories: only for real
        raise UsageError("--at only simulates: add --dry-run to see what a sweep at that instant would order")
    bootstrap = stack.kafka_bootstrap(settings)
    ledger = _migrated(settings)
    sweeper = Sweeper(ledger, settings, ledger.database_url, bootstrap)
    stop = _stop_on_signal()
    if not args.until_idle:
        backoff = Backoff.from_settings(settings, bounded=False)
        run_scheduler(sweeper, cron_trigger(settings.sweep_cron), stop, backoff)
        return 0
    done = sweep_once(sweeper, datetime.now(UTC), Backoff.from_settings(settings, bounded=True), stop)
    if done is None:
        print("another scheduler is sweeping; nothing done")
        return 0
    resent = sum(order.overdue for order in done.sent)
    print(
        f"ordered {len(done.ordered)}, sent {len(done.sent)} ({resent} overdue re-sends), "
        f"confirmed {len(done.confirmed)}, shredded {len(done.shredded)}, failed {len(done.skipped.subjects)}"
    )
    return 0


def _projector(ledger: Ledger, settings: Settings) -> Projector:
    from projections.projector import Projector

    return Projector(
        ledger, settings.projection_page, _checkpointer(ledger, settings), settings.awaits_recipients
    )


def _checkpointer(ledger: Ledger, settings: Settings) -> Checkpointer:
    from consumers.witness import FileWitness, TopicWitness
    from ledger.checkpoints import Checkpointer, Witness

    witnesses: list[Witness] = [TopicWitness(lambda: stack.kafka_bootstrap(settings), settings)]
    if settings.witness_file:
        witnesses.append(FileWitness(settings.witness_file))
    return Checkpointer(ledger, signing_key(settings, create=True), settings.checkpoint_every, witnesses)


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
    ledger = _ledger(settings)
    try:
        erased = _projector(ledger, settings).erase(args.tenant, args.subject, args.reason)
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
    found = _horizon(ledger, settings, queries.subject_state(ledger, args.tenant, args.subject).erased_at)
    assert found is not None  # projected before erase returned
    _print_horizon(found)
    return 0


def _print_horizon(found: Horizon) -> None:
    print("  erasure horizon:")
    for line in found.lines():
        print(f"    {line}")


def _horizon(ledger: Ledger, settings: Settings, erased_at: datetime | None) -> Horizon | None:
    return None if erased_at is None else horizon(erased_at, settings.topic_retention, ledger.key_epochs())


def _history(args: argparse.Namespace, settings: Settings) -> int:
    from projections.history import history

    ledger = _ledger(settings)
    names.require_tenant(ledger, args.tenant)
    entries = history(ledger, args.tenant, args.subject)
    if args.json:
        _print_json([queries.plain(asdict(entry)) for entry in entries])
        return 0
    for entry in entries:
        when = "" if entry.occurred_at is None else f"happened {queries.plain(entry.occurred_at)}, "
        print(f"v{entry.version} {entry.type} ({when}recorded {queries.plain(entry.recorded_at)})")
        print(
            f"    source {_shown(entry.source)}, event {_shown(entry.event_id)}, from {_shown(entry.origin)}"
        )
        print(f"    data {json.dumps(entry.data, default=str)}")
        if entry.personal is not None:
            personal = entry.personal if isinstance(entry.personal, str) else json.dumps(entry.personal)
            print(f"    personal {personal}")
    return 0


def _receipt(args: argparse.Namespace, settings: Settings) -> int:
    from projections.receipts import receipt

    ledger = _ledger(settings)
    names.require_tenant(ledger, args.tenant)
    document = queries.plain(asdict(receipt(ledger, args.tenant, args.event_id)))
    if args.json:
        _print_json(document)
        return 0
    proof = document.pop("proof")
    document.pop("record")
    for name, value in document.items():
        print(f"{name:<18} {_shown(value)}")
    print(
        f"{'proof':<18} leaf {proof['leaf_index']} of the tree of {proof['tree_size']} events, "
        f"tree head {proof['tree_head']['sequence']} signed by key {proof['key_id']} (--json for all of it)"
    )
    return 0


def _evidence(settings: Settings) -> Ledger:
    """The event store without the master key: the log, its tree and its heads are checked from
    stored bytes and the public signing key, so an auditor needs no secret."""
    return Ledger(stack.database_url(settings), None)


def _tree_head(args: argparse.Namespace, settings: Settings) -> int:
    from projections.receipts import tree_head

    ledger = _evidence(settings)
    text = json.dumps(tree_head(ledger, args.from_size), indent=2) + "\n"
    if _write_out(args.out, text):
        print(f"wrote the tree head to {args.out}")
    return 0


def _write_out(out: Path | None, text: str, *, private: bool = False) -> bool:
    """Write `text` to the file `out` (only its owner may read it when `private`), or to standard
    output when there is none or it is `-`; True when a file was written."""
    if out is None or str(out) == "-":
        sys.stdout.write(text)
        return False
    try:
        if private:
            write_private(out, text)
        else:
            out.write_text(text)
    except OSError as error:
        raise UsageError(f"cannot write {out}: {error.strerror}") from None
    return True


def _verify_receipt(args: argparse.Namespace, settings: Settings) -> int:
    from projections.receipts import check_receipt

    later = None if args.tree_head is None else _read_json(args.tree_head)
    # A receipt holder checks against the key the ledger published, not against whatever this
    # machine happens to hold: the configured key counts only when none is given.
    keys = read_public_keys(args.public_key) or [signing_key(settings, create=False).public]
    verdict = check_receipt(_read_json(args.file), keys, later)
    for line in verdict.problems:
        print(f"FAILED: {line}")
    if verdict.ok:
        for line in verdict.established:
            print(f"ok: {line}")
    return 0 if verdict.ok else 1


def _read_json(path: Path) -> Any:
    try:
        return orjson.loads(path.read_bytes())
    except OSError as error:
        raise UsageError(f"cannot read {path}: {error.strerror}") from None
    except orjson.JSONDecodeError:
        raise UsageError(f"{path} is not JSON: pass the file `receipt --json` or `tree-head` wrote") from None


def _export(args: argparse.Namespace, settings: Settings) -> int:
    from projections.export import export

    ledger = _ledger(settings)
    names.require_tenant(ledger, args.tenant)
    text = json.dumps(export(ledger, args.tenant, args.subject, _rules(ledger, settings)), indent=2) + "\n"
    if _write_out(args.out, text, private=True):
        print(f"wrote the export of subject {args.subject} of tenant {args.tenant} to {args.out}")
    return 0


def _breach(args: argparse.Namespace, settings: Settings) -> int:
    from projections.breach import breach_impact

    if args.window_from > args.window_to:
        raise UsageError("--from is after --to: give the window in order")
    ledger = _ledger(settings)
    names.require_tenant(ledger, args.tenant)
    names.require_systems(ledger, args.tenant, args.system)
    impact = breach_impact(
        ledger,
        args.tenant,
        args.system,
        (args.window_from, args.window_to),
        discovered_at=args.discovered_at or datetime.now(UTC),
        categories=args.category,
        list_subjects=args.subjects,
    )
    if args.json:
        _print_json(queries.plain(asdict(impact)))
        return 0
    print(f"{impact.subjects} subject(s) of tenant {impact.tenant} exposed in {', '.join(impact.systems)}")
    for category, count in sorted(impact.by_category.items()):
        print(f"  {category:<24} {count:>8} subjects")
    for deadline in impact.deadlines:
        due = "no fixed deadline" if deadline.deadline is None else f"by {queries.plain(deadline.deadline)}"
        where = f"  {deadline.jurisdiction:<8} {deadline.subjects:>8} subjects"
        print(f"{where}: {deadline.regime}, notify {deadline.notify}, {due}")
    for person in impact.affected or []:
        print(f"  {person.subject}: {', '.join(person.categories)} ({', '.join(person.jurisdictions)})")
    return 0


def _purge(args: argparse.Namespace, settings: Settings) -> int:
    return _dry_run(_ledger(settings), settings, args.at, args.tenant, as_json=args.json)


def _dry_run(
    ledger: Ledger, settings: Settings, at: datetime | None, tenant: str | None, *, as_json: bool
) -> int:
    """What a sweep at `at` (default: now) would order purged, and what is ordered already; orders nothing."""
    from projections.retention import due_for_purge

    if tenant is not None:
        names.require_tenant(ledger, tenant)
    now = at or datetime.now(UTC)
    skipped = Skipped()
    rules = _rules(ledger, settings, now)
    due = due_for_purge(ledger, rules, now, settings.purge_confirm_days, tenant=tenant, skipped=skipped)
    failed = len(skipped.subjects)
    if failed:
        print(
            f"consent-ledger: warning: {failed} subject(s) failed and are not listed "
            "(sweep.subject_failed in the log names them)",
            file=sys.stderr,
        )
    if as_json:
        _print_json([item.as_json() for item in due])
        return 0
    for item in due:
        when = queries.plain(item.due.expires_at)
        what = f"{item.due.category} in {item.due.system}"
        ordered = "" if item.order is None else f"; {item.order.note()}"
        print(f"{item.due.tenant}/{item.due.subject}: {what} expired {when} (rule {item.due.rule}){ordered}")
    waiting = sum(item.order is not None for item in due)
    print(f"{len(due)} holding(s) due for purge ({waiting} ordered, awaiting confirmation), failed {failed}")
    return 0


def _overdue(args: argparse.Namespace, settings: Settings) -> int:
    from projections.retention import overdue, unconfirmed_orders

    ledger = _ledger(settings)
    names.require_tenant(ledger, args.tenant)
    now = args.at or datetime.now(UTC)
    clocks = overdue(ledger, args.tenant, now, timedelta(days=args.within))
    orders = unconfirmed_orders(ledger, args.tenant, now, settings.purge_confirm_days)
    if args.json:
        _print_json(
            {"requests": [queries.plain(asdict(c)) for c in clocks], "purge_orders": queries.plain(orders)}
        )
        return 0
    for clock in clocks:
        state = "OVERDUE since" if clock.overdue else "due"
        print(f"{clock.subject}: request {clock.request_id} {state} {queries.plain(clock.deadline)}")
    for order in orders:
        what = f"purge order {order['order_id']} to {order['system']}"
        print(f"{order['subject']}: {what} unconfirmed since {queries.plain(order['sent_at'])}")
    print(f"{len(clocks)} request(s) past or near their deadline, {len(orders)} purge order(s) unconfirmed")
    return 0


def _rules(ledger: Ledger, settings: Settings, at: datetime | None = None) -> list[Rule]:
    from projections.retention import rules_in_force

    return rules_in_force(ledger, settings.retention_policy, at or datetime.now(UTC))


def _adopt_policy(args: argparse.Namespace, settings: Settings) -> int:
    path = args.file or settings.retention_policy
    document = policy_document(path)
    parse_policy(
        document, str(path or "retention_policy.toml")
    )  # refuse an invalid policy before recording it
    ledger = _ledger(settings)
    adopted = ledger.adopt_policy(document, args.by, args.reason)
    if adopted is None:
        print("that policy is already in force; nothing recorded")
    else:
        print(f"adopted retention policy {adopted.digest[:16]} at {queries.plain(adopted.timestamp)}")
    return 0


def _policies(args: argparse.Namespace, settings: Settings) -> int:
    ledger = _ledger(settings)
    rows = adoptions(ledger, args.at)
    if args.json:
        _print_json(rows)
        return 0
    if not rows:
        print("no retention policy adopted" + (" by then" if args.at else ""))
    for row in rows:
        print(f"{row['adopted_at']} by {row['adopted_by']} ({row['reason']}): policy {row['digest'][:16]}")
        for kind, ids in row["changes"].items():
            if ids:
                print(f"    {kind}: {', '.join(ids)}")
    return 0


def _verify(args: argparse.Namespace, settings: Settings) -> int:
    from consumers.witness import read_file as read_witness_file
    from consumers.witness import read_topic as read_witness_topic
    from ledger.audit import verify

    ledger = _evidence(settings)
    witnessed = [head for path in args.witness for head in read_witness_file(path)]
    if args.witness_topic is not None:
        bootstrap = stack.kafka_bootstrap(settings)
        witnessed += read_witness_topic(bootstrap, args.witness_topic or settings.checkpoint_topic, settings)
    given = args.witness or args.witness_topic is not None
    report = verify(ledger, _public_keys(args, settings), witnessed if given else None)
    if args.json:
        _print_json({**asdict(report), "ok": report.ok})
    else:
        for found in report.breaks:
            print(found.line())
        print(report.summary())
    return 0 if report.ok else 1


def _checkpoint(args: argparse.Namespace, settings: Settings) -> int:
    ledger = _migrated(settings)
    written = _checkpointer(ledger, settings).step(force=True)
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
    public = signing_key(settings, create=True).public
    if args.public:
        print(public.text())
    else:
        print(f"key id {public.key_id}, public key {public.text()}")
    return 0


def _rotate_key(args: argparse.Namespace, settings: Settings) -> int:
    ledger = _ledger(settings)
    new = (
        None
        if args.new_key_file is None
        else MasterKey.parse(_read_text(args.new_key_file), str(args.new_key_file))
    )
    done = ledger.rotate_keys(new, retire=args.retire)
    print(f"started key epoch {done.epoch}: re-wrapped {done.rewrapped} data key(s) under it")
    if args.retire:
        retired = ", ".join(map(str, done.retired)) or "none"
        print(f"retired epochs: {retired} (old copies of keys they wrapped can no longer be opened)")
        if new is None and done.retired:
            print(
                "backups older than this still hold those epochs' keys under this master key: "
                "rotate it too (--new-key-file) and destroy the old one to put them out of reach"
            )
    if new is None:
        return 0
    print(f"epoch keys are now wrapped by master key {new.key_id}")
    embedded = settings.home / "master.key"
    if not settings.master_key and not settings.master_key_file:
        embedded.replace(settings.home / "master.key.previous")
        write_private(embedded, new.text() + "\n", new=True)
        print(f"{embedded} now holds the new key (the old one is in master.key.previous)")
    else:
        print("now point LEDGER_MASTER_KEY / LEDGER_MASTER_KEY_FILE at the new key")
    return 0


def _subject(args: argparse.Namespace, settings: Settings) -> int:
    from projections.retention import open_orders

    ledger = _ledger(settings)
    names.require_tenant(ledger, args.tenant)
    if args.as_of or args.known_at:
        as_of = args.as_of or datetime.now(UTC)
        state = state_at(ledger, args.tenant, args.subject, as_of, args.known_at)
        orders = None  # orders are what stands now, not what stood then
    else:
        state = queries.subject_state(ledger, args.tenant, args.subject)
        now = datetime.now(UTC)
        orders = open_orders(ledger, now, settings.purge_confirm_days, args.tenant, args.subject)
    found = _horizon(ledger, settings, state.erased_at)
    document = queries.as_json(state, _rules(ledger, settings), orders)
    document["erasure_horizon"] = None if found is None else found.as_json()
    if args.json:
        _print_json(document)
        return 0
    print(f"subject {document['subject']} of tenant {document['tenant']}")
    print(f"  erased: {'yes, since ' + _shown(document['erased_at']) if document['erased'] else 'no'}")
    if found is not None:
        _print_horizon(found)
    print(f"  first seen {_shown(document['first_seen'])}, last event {_shown(document['last_event_at'])}")
    if document["account_closed_at"]:
        print(f"  account closed {document['account_closed_at']}")
    for holding in document["holdings"]:
        holding["retention"] = _retention(holding)
    _section(
        "holdings",
        document["holdings"],
        "{category} in {system}: {status}, {legal_basis} for {purposes}, "
        "collected {first_collected} .. {last_collected}; retention {retention}",
    )
    _section("consent", document["consent"], "{purpose} on {channel}: {state} since {since} ({event_id})")
    _section(
        "shares",
        document["shares"],
        "{time} to {recipient} ({recipient_type}): {categories} for {purpose}",
    )
    _section("deletion requests", document["deletion_requests"],
             "{request_id}: {status}, categories {categories}, requested {requested_at}")  # fmt: skip
    if document["recipients_unconfirmed"]:
        print(f"  recipients yet to confirm deletion: {', '.join(document['recipients_unconfirmed'])}")
    _section("legal holds", document["legal_holds"], "{hold_id}: {reason}, since {placed_at}")
    _section("violations", document["violations"], "{time} {category} in {system}: {reason} ({event_id})")
    return 0


def _section(title: str, rows: list[dict[str, Any]], line: str) -> None:
    print(f"  {title}: {'none' if not rows else ''}")
    for row in rows:
        print("    " + line.format(**{key: _shown(value, key) for key, value in row.items()}))


def _retention(holding: dict[str, Any]) -> str:
    """`STATUS [EXPIRES] (RULE: NOTE)`, leaving out what a holding does not have."""
    expires = holding.get("retention_expires_at")
    rule, note = holding.get("retention_rule"), holding.get("retention_note")
    why = f"{rule}: {note}" if rule and note else rule or note
    status = holding.get("retention_status")
    if status == PURGE_ORDERED:  # the note says "purge ordered <when>, awaiting confirmation"
        status = "expired"
    return " ".join(part for part in (status, expires, why and f"({why})") if part) or "unknown"


def _shown(value: Any, key: str = "") -> str:
    """A value as a person reads it: lists joined, times in RFC 3339, and never `None`."""
    if value is None:
        return "all" if key == "categories" else "-"  # absent categories mean every category
    if isinstance(value, list):
        return ", ".join(_shown(item) for item in value)
    return str(queries.plain(value))


def _check(args: argparse.Namespace, settings: Settings) -> int:
    ledger = _ledger(settings)
    names.require_tenant(ledger, args.tenant)
    if args.at or args.known_at:
        at = args.at or datetime.now(UTC)
        decision = may_contact_at(
            ledger, args.tenant, args.subject, args.purpose, args.channel, at=at, known_at=args.known_at
        )
    else:
        decision = queries.may_contact(ledger, args.tenant, args.subject, args.purpose, args.channel)
    if args.json:
        _print_json({"allowed": decision.allowed, "reason": decision.reason, "event_id": decision.event_id})
    else:
        deciding = "" if decision.event_id is None else f" (event {decision.event_id})"
        print(f"{'allowed' if decision.allowed else 'denied'}: {decision.reason}{deciding}")
    return 0 if decision.allowed else 1


def _stats(args: argparse.Namespace, settings: Settings) -> int:
    ledger = _ledger(settings)
    tenants = queries.counts(ledger)
    projection_lag = queries.progress(ledger).lag
    deadlettered, consumer_lag, note = _from_broker(settings)
    if args.json:
        _print_json(
            {
                "tenants": tenants,
                "deadlettered": deadlettered,
                "consumer_lag": consumer_lag,
                "projection_lag": projection_lag,
                "note": note,
            }
        )
        return 0
    for tenant, numbers in tenants.items():
        print(f"{tenant:<16} events {numbers['events']:>8}  subjects {numbers['subjects']:>7}")
    print(f"dead-lettered    {'unknown' if deadlettered is None else deadlettered:>8}")
    print(
        f"consumer lag     {'unknown' if consumer_lag is None else consumer_lag:>8}  messages not yet stored"
    )
    print(f"projection lag   {projection_lag:>8}  stored events not yet projected")
    if note:
        print(f"note: {note}")
    return 0


def _from_broker(settings: Settings) -> tuple[int | None, int | None, str | None]:
    """Messages on the dead-letter topic and the consumer group's lag; None, and why, when the broker
    cannot say (the rest of `stats` comes from PostgreSQL and needs no broker)."""
    from consumers import kafka

    try:
        bootstrap = stack.kafka_bootstrap(settings)
    except ServiceUnavailable as error:
        return None, None, f"dead letters and consumer lag not counted: {error}"
    deadlettered = len(kafka.read_all(bootstrap, settings.deadletter_topic, settings))
    return deadlettered, kafka.consumer_lag(bootstrap, settings), None


def _generate(args: argparse.Namespace, settings: Settings) -> int:
    from consumers.workload import bad_messages, generate

    if args.tenants < 1 or args.subjects < 1:
        raise UsageError("--tenants and --subjects must be at least 1")
    count = 0
    with args.out.open("wb") as out:
        for event in generate(args.tenants, args.subjects, args.seed):
            out.write(orjson.dumps(event) + b"\n")
            count += 1
    print(f"wrote {count} events to {args.out}")
    if args.bad_out:
        args.bad_out.write_bytes(b"".join(raw + b"\n" for raw in bad_messages()))
        print(f"wrote {len(bad_messages())} malformed messages to {args.bad_out}")
    return 0


def _positive(text: str) -> int:
    """A count of at least one."""
    if not text.isdigit() or int(text) < 1:
        raise argparse.ArgumentTypeError(f"{text!r} is not a whole number of at least 1")
    return int(text)


def _word(kind: str) -> Callable[[str], str]:
    """A value of the contract's vocabulary of `kind`, or a one-line "did you mean"."""

    def checked(text: str) -> str:
        if text not in names.vocabulary(kind):
            raise argparse.ArgumentTypeError(names.unknown(kind, text, names.vocabulary(kind)))
        return text

    checked.__name__ = kind  # what argparse calls the argument's type in its messages
    return checked


def _days(text: str) -> int:
    """A number of days from 0 to a century."""
    if not text.isdigit() or int(text) > MAX_DAYS:
        raise argparse.ArgumentTypeError(f"{text!r} is not a number of days from 0 to {MAX_DAYS}")
    return int(text)


def _moment(text: str) -> datetime:
    """An RFC 3339 time argument, as UTC, within the range the ledger accepts for event times."""
    try:
        return times.parse(text)
    except ValueError as error:
        raise argparse.ArgumentTypeError(f"{text!r} {error}") from None


def _read_text(path: Path) -> str:
    """A small text file given on the command line."""
    try:
        return path.read_text()
    except OSError as error:
        raise UsageError(f"cannot read {path}: {error.strerror}") from None
    except UnicodeDecodeError:
        raise UsageError(f"{path} is not UTF-8 text: give the file that holds the key in base64") from None


def _print_json(document: object) -> None:
    print(json.dumps(queries.plain(document), indent=2, default=str))


def _stop_on_signal() -> threading.Event:
    stop = threading.Event()
    for signum in (signal.SIGINT, signal.SIGTERM):
        signal.signal(signum, lambda *_: stop.set())
    return stop


if __name__ == "__main__":
    sys.exit(main())
