"""Running the ledger: the embedded stack, publishing, ingesting, projecting, and `run`, which does it all."""

import argparse
import os
import sys
import threading
from collections.abc import Callable
from contextlib import ExitStack, closing
from datetime import UTC, datetime
from pathlib import Path
from typing import TYPE_CHECKING

import orjson

from app import stack
from app.bootstrap import Services
from app.cli.output import print_json, read_text, stop_on_signal
from app.cli.parser import Command, positive, until_idle
from ledger.crypto import MasterKey, replace_key_file
from ledger.errors import UsageError
from ledger.retry import Backoff, Supervised, keep_alive
from ledger.settings import Settings

if TYPE_CHECKING:
    from app.http.server import Component


def register(command: Command) -> None:
    """up, migrate, down, status, publish, consume, project, rebuild, run, generate, rotate-key."""
    command("up", _up, "start the embedded PostgreSQL and Kafka broker (reuses running ones), migrate")
    command("migrate", _migrate, "create every table of the ledger that is missing (queries never do)")
    command("down", _down, "stop the embedded services")
    command("status", _status, "show the backing services and their URLs", json=True)
    publish = command("publish", _publish, "validate and publish a JSON-lines file of events")
    publish.add_argument("file", type=Path)
    publish.add_argument(
        "--unchecked", action="store_true", help="send lines as they are (test dead-lettering)"
    )
    consume = until_idle(command("consume", _consume, "ingest events from Kafka into the event store"))
    consume.add_argument(
        "--processes", type=int, default=1, help="consumer processes in the group (default 1)"
    )
    until_idle(command("project", _project, "bring the read model up to date with the event store"))
    rebuild_cmd = command(
        "rebuild", _rebuild, "replay a projection into fresh tables, compare them with the live ones, swap in"
    )
    rebuild_cmd.add_argument("--projection", choices=["subjects"], default="subjects", help="which one")
    rebuild_cmd.add_argument(
        "--processes", type=positive, default=os.cpu_count() or 1, help="replay workers (default: cores)"
    )
    run = until_idle(
        command(
            "run", _run, "start the embedded stack and run every component (and the HTTP API) in one process"
        )
    )
    run.add_argument(
        "--no-http",
        action="store_true",
        help="do not serve the HTTP API (else on LEDGER_HTTP_HOST:LEDGER_HTTP_PORT; never with --until-idle)",
    )
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


def _up(args: argparse.Namespace, settings: Settings) -> int:
    _start(settings).close()
    return _status(argparse.Namespace(json=False), settings)


def _start(settings: Settings) -> Services:
    """Start the stack, create the topics, the tables and, on first start, the embedded master key."""
    services = Services.started(settings)
    created = services.create_master_key()
    if created:
        print(
            f"generated a master key at {created}: back it up; without it no personal data "
            "in the ledger can be read"
        )
    services.migrate()
    return services


def _migrate(args: argparse.Namespace, settings: Settings) -> int:
    Services(settings).migrate().close()
    print("every table of the ledger is in place")
    return 0


def _down(args: argparse.Namespace, settings: Settings) -> int:
    stopped = stack.down(settings)
    print("stopped: " + (", ".join(stopped) if stopped else "nothing was running"))
    return 0


def _status(args: argparse.Namespace, settings: Settings) -> int:
    services = stack.status(settings)
    if args.json:
        print_json([vars(s) for s in services])
    else:
        for s in services:
            where = "embedded" if s.embedded else "external"
            state = "running" if s.running else "stopped"
            print(f"{s.name:<11} {state:<8} {where:<9} {s.url or '-'}")
    return 0 if all(s.running for s in services) else 1


def _publish(args: argparse.Namespace, settings: Settings) -> int:
    from consumers.publisher import Publisher

    with Publisher(Services(settings).kafka_bootstrap, settings) as publisher:
        report = publisher.publish_file(args.file, check=not args.unchecked)
    for line, reason in report.refused:
        print(f"{args.file}:{line}: refused: {reason}", file=sys.stderr)
    print(f"published {report.published}, refused {len(report.refused)}")
    return 2 if report.refused else 0


def _consume(args: argparse.Namespace, settings: Settings) -> int:
    from consumers import ingest
    from consumers.parallel import consume_in_processes

    services = Services(settings)
    bootstrap = services.kafka_bootstrap
    ledger = services.migrate()
    stop = stop_on_signal()
    if args.processes == 1:
        totals = ingest.consume(settings, ledger, bootstrap, until_idle=args.until_idle, stop=stop)
    else:
        totals = consume_in_processes(
            settings,
            ledger.database_url,
            bootstrap,
            services.master_key,
            processes=args.processes,
            until_idle=args.until_idle,
            stop=stop,
        )
    print(totals.summary())
    return 0


def _project(args: argparse.Namespace, settings: Settings) -> int:
    services = Services(settings)
    services.migrate()
    backoff = Backoff.from_settings(settings, bounded=args.until_idle)
    progress = services.projector.run(until_idle=args.until_idle, stop=stop_on_signal(), backoff=backoff)
    print(f"projected {progress.applied} events, position {progress.position}")
    return 0


def _rebuild(args: argparse.Namespace, settings: Settings) -> int:
    from projections.rebuild import rebuild

    ledger = Services(settings).migrate()
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
    from consumers.scheduler import cron_trigger, sweep_once
    from consumers.scheduler import run as run_scheduler

    # Closed however `run` ends (the API's services first, then the components'), so that a caller of
    # `main` (a test, an embedding program) is left with no connection, pool or socket of this run.
    with ExitStack() as opened:
        services = _start(settings)
        opened.callback(services.close)
        ledger, bootstrap = services.ledger, services.kafka_bootstrap
        projector, sweeper = services.projector, services.sweeper
        stop = stop_on_signal()
        backoff = Backoff.from_settings(settings, bounded=args.until_idle)
        if args.until_idle:
            totals = ingest.consume(settings, ledger, bootstrap, until_idle=True, stop=stop)
            progress = projector.run(until_idle=True, stop=stop, backoff=backoff)
            sweep_once(sweeper, datetime.now(UTC), backoff, stop)
        else:
            trigger = cron_trigger(settings.sweep_cron)
            components: dict[str, Callable[[], object]] = {
                "projector": lambda: projector.run(until_idle=False, stop=stop, backoff=backoff),
                "scheduler": lambda: run_scheduler(sweeper, trigger, stop, backoff),
            }
            if not args.no_http:
                components["http"] = opened.enter_context(closing(_api(services, stop)))
            workers = [Supervised(name, start, stop, backoff) for name, start in components.items()]
            for worker in workers:
                worker.start()

            def consume() -> ingest.Totals:
                return ingest.consume(settings, ledger, bootstrap, until_idle=False, stop=stop)

            try:
                totals = keep_alive("consumer", consume, stop, backoff) or ingest.Totals()
            finally:  # nothing is closed under a component still running
                stop.set()
                for worker in workers:
                    worker.join()
            for worker in workers:
                worker.finish()
            progress = projector.run(until_idle=True, backoff=Backoff.from_settings(settings, bounded=True))
    print(f"{totals.summary()}, projected {progress.applied}")
    return 0


def _api(services: Services, stop: threading.Event) -> "Component":
    """The HTTP API as a component of `run`, over services of its own (its own connections, so a
    burst of requests never waits for the consumer's, closed with it); the port is taken now, or
    `run` stops here."""
    from app.http.server import Component

    settings = services.settings
    endpoints = stack.Endpoints(services.database_url, services.kafka_bootstrap)
    api = Component(Services(settings, endpoints), stop)
    print(
        f"serving the HTTP API on http://{settings.http_host}:{settings.http_port} (docs at /docs)",
        flush=True,
    )
    return api


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


def _rotate_key(args: argparse.Namespace, settings: Settings) -> int:
    ledger = Services(settings).ledger
    new = (
        None
        if args.new_key_file is None
        else MasterKey.parse(read_text(args.new_key_file), str(args.new_key_file))
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
    replaced = replace_key_file(settings, new)
    if replaced is not None:
        print(f"{replaced} now holds the new key (the old one is in master.key.previous)")
    else:
        print("now point LEDGER_MASTER_KEY / LEDGER_MASTER_KEY_FILE at the new key")
    return 0
