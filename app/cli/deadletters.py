"""Dead letters kept in PostgreSQL (`deadletters list|show|replay|drop`) and the purge agent an
owning system runs (`purge-agent`)."""

import argparse
import importlib
from collections.abc import Callable
from datetime import UTC, datetime

from app.bootstrap import Services
from app.cli.output import print_json, shown, stop_on_signal
from app.cli.parser import Command, moment, positive, until_idle
from ledger.deadletters import REASON_CLASSES, STATUSES, DeadLetter, Selection
from ledger.errors import UsageError
from ledger.purges import PurgeOrder
from ledger.settings import Settings
from projections import deadletters


def register(command: Command) -> None:
    """deadletters (list, show, replay, drop), purge-agent."""
    letters = command("deadletters", _list, "dead letters kept in PostgreSQL: list, show, replay, drop")
    actions = letters.add_subparsers(dest="action", required=True, metavar="ACTION")
    listing = actions.add_parser("list", help="dead letters, oldest first, with counts per reason class")
    listing.set_defaults(handler=_list, parser=listing)
    listing.add_argument("--tenant", help="only this tenant's")
    listing.add_argument("--reason", choices=REASON_CLASSES, help="only this reason class")
    listing.add_argument("--since", type=moment, help="only those received since (RFC 3339)")
    listing.add_argument("--status", choices=STATUSES, help="only open, replayed or dropped ones")
    listing.add_argument("--limit", type=positive, default=100, help="list at most this many (default 100)")
    listing.add_argument("--json", action="store_true", help="print JSON")
    show = actions.add_parser(
        "show", help="one letter: origin, reason, status and its original bytes (logged)"
    )
    show.set_defaults(handler=_show, parser=show)
    show.add_argument("id", type=positive)
    show.add_argument("--json", action="store_true", help="print JSON")
    replay = actions.add_parser("replay", help="check open letters again and store those that now pass")
    replay.set_defaults(handler=_replay, parser=replay)
    replay.add_argument(
        "ids", nargs="*", type=positive, metavar="ID", help="these letters (default: every open one)"
    )
    replay.add_argument("--reason", choices=REASON_CLASSES, help="only letters of this reason class")
    replay.add_argument("--json", action="store_true", help="print JSON")
    drop = actions.add_parser("drop", help="record a decision to discard an open letter (its bytes go)")
    drop.set_defaults(handler=_drop, parser=drop)
    drop.add_argument("id", type=positive)
    drop.add_argument("--why", required=True, help="the reason for discarding it, recorded with the decision")
    drop.add_argument("--json", action="store_true", help="print JSON")
    agent = until_idle(
        command("purge-agent", _purge_agent, "carry out one system's purge orders and confirm them")
    )
    agent.add_argument("--system", required=True, help="the system whose orders to carry out")
    agent.add_argument(
        "--handler",
        dest="delete",  # `handler` is the subcommand's own (app/cli/parser.py)
        required=True,
        metavar="MODULE:FUNCTION",
        help="the system's delete function",
    )
    agent.add_argument(
        "--state", help="the file of orders executed (default $LEDGER_HOME/purge-agent-SYSTEM.sqlite)"
    )


def _list(args: argparse.Namespace, settings: Settings) -> int:
    selection = Selection(tenant=args.tenant, reason_class=args.reason, since=args.since, status=args.status)
    found = deadletters.listing(Services(settings).ledger, selection, args.limit)
    if args.json:
        print_json(found)
        return 0
    origins = max((len(letter["origin"]) for letter in found["letters"]), default=0)
    tenants = max((len(shown(letter["tenant"])) for letter in found["letters"]), default=0)
    for letter in found["letters"]:
        print(
            f"{letter['id']:>6}  {shown(letter['received_at'])}  {letter['origin']:<{origins}}  "
            f"{shown(letter['tenant']):<{tenants}}  {letter['status']:<8} "
            f"{letter['reason_class']}: {letter['reason']}"
        )
    counts = found["counts"]
    for reason, statuses in counts.items():
        print(f"{reason}: " + ", ".join(f"{n} {status}" for status, n in statuses.items()))
    total = sum(n for statuses in counts.values() for n in statuses.values())
    print(f"{len(found['letters'])} of {total} dead letter(s) listed")
    return 0


def _show(args: argparse.Namespace, settings: Settings) -> int:
    ledger = Services(settings).migrate()
    letter = deadletters.letter(ledger, args.id)
    opened = None
    if letter.sealed:  # the operator holds the master key: the bytes are shown, and the reading logged
        opened = deadletters.original(ledger, args.id, deadletters.operator(), "cli deadletters show")
    if args.json:
        print_json(deadletters.as_json(letter) if opened is None else deadletters.opened_json(opened))
        return 0
    _describe(letter)
    if opened is None:
        print("original: (discarded when it was dropped)")
        return 0
    print(f"key: {_text(opened.key)}")
    print(f"value: {_text(opened.value)}")
    return 0


def _replay(args: argparse.Namespace, settings: Settings) -> int:
    from consumers.replay import replay

    services = Services(settings)
    ledger = services.migrate()
    deadletters.replayable(ledger, args.ids)
    done = replay(
        ledger,
        services.contract,
        Selection(ids=tuple(args.ids), reason_class=args.reason),
        datetime.now(UTC),
    )
    if args.json:
        print_json(done.as_json())
    else:
        for letter_id, event_id in done.stored:
            print(f"{letter_id}: stored as event {event_id}")
        for letter_id, reason in done.refused:
            print(f"{letter_id}: still refused: {reason}")
        by = f" (replay {done.replay})" if done.replay is not None else ""
        print(f"tried {done.tried}, stored {len(done.stored)}, still refused {len(done.refused)}{by}")
    return 1 if done.refused else 0


def _drop(args: argparse.Namespace, settings: Settings) -> int:
    letter = deadletters.drop(Services(settings).migrate(), args.id, args.why)
    if args.json:
        print_json(deadletters.as_json(letter))
    else:
        print(f"dropped dead letter {letter.id} at {shown(letter.dropped_at)}: {letter.dropped_why}")
    return 0


def _purge_agent(args: argparse.Namespace, settings: Settings) -> int:
    from pathlib import Path

    from consumers.purge_agent import PurgeAgent

    handler = _handler(args.delete)
    state = Path(args.state) if args.state else None
    bootstrap = Services(settings).kafka_bootstrap
    agent = PurgeAgent(args.system, handler, settings, state=state, bootstrap=bootstrap)
    totals = agent.run(until_idle=args.until_idle, stop=stop_on_signal())
    print(f"purge agent for {args.system}: {totals.summary()}")
    return 0


def _handler(name: str) -> Callable[[PurgeOrder], None]:
    """The function `module:function` names, or a usage error saying what is wrong."""
    module_name, _, function = name.partition(":")
    if not module_name or not function:
        raise UsageError(
            f"--handler {name!r} is not MODULE:FUNCTION, as in consumers.sample_purge_handler:delete"
        )
    try:
        module = importlib.import_module(module_name)
    except ImportError:
        raise UsageError(f"--handler: no module {module_name!r} can be imported (check PYTHONPATH)") from None
    found = getattr(module, function, None)
    if not callable(found):
        raise UsageError(f"--handler: module {module_name!r} has no function {function!r}")
    handler: Callable[[PurgeOrder], None] = found
    return handler


def _describe(letter: DeadLetter) -> None:
    print(
        f"dead letter {letter.id}: {letter.status}, received {shown(letter.received_at)} from {letter.origin}"
    )
    kept = " (only the first part kept)" if letter.cut else ""
    print(f"tenant: {shown(letter.tenant)}; {letter.value_bytes} bytes{kept}")
    print(f"reason ({letter.reason_class}): {letter.reason}")
    if letter.replay is not None:
        print(f"stored by replay {letter.replay} as event {letter.event_id}")
    if letter.dropped_at is not None:
        print(f"dropped {shown(letter.dropped_at)}: {letter.dropped_why}")


def _text(part: bytes | None) -> str:
    if part is None:
        return "(none)"
    try:
        return part.decode()
    except UnicodeDecodeError:
        return f"({len(part)} bytes, not UTF-8: --json gives them in base64)"
