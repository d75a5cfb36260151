"""Compliance reports on a large tenant: violations and the record of processing over the read model.

    python -m bench.compliance [--subjects 200000]

Builds each subject's state in Python (a marketing-by-SMS consent, an account and a content holding,
five marketing messages over two months, one in ten opting out after the second message, one in
fifty of those opt-outs reaching the ledger after the messages it should have stopped, one in ten
sharing with a sub-processor) and writes it by the projector's COPY. Then times `violations` (contacts
judged then and now, and every other kind), the part of it that finds holdings past their expiry (in
SQL), `purge --dry-run`, which finds the same in Python, and `record_of_processing`, beside a ceiling
measured in the same run: one scan of the tenant's contacts joined to their latest word on consent.
Never run by CI.
"""

import argparse
import time
from datetime import UTC, datetime, timedelta

from bench.common import fresh_database, run, services
from ledger.crypto import MasterKey
from ledger.retention import load_policy
from ledger.state import GRANTED, HELD, OPTED_OUT, ConsentChange, Contact, Holding, Share, SubjectState
from ledger.store import Ledger
from projections import tables
from projections.expiry import held_past_expiry
from projections.retention import due_for_purge
from projections.ropa import record_of_processing
from projections.violations import Period, violations

T0 = datetime(2025, 1, 1, tzinfo=UTC)
DAY = timedelta(days=1)
CEILING = (
    "SELECT count(*) AS n FROM proj_contacts c LEFT JOIN LATERAL (SELECT state FROM proj_consent_log l "
    "WHERE l.tenant = c.tenant AND l.subject = c.subject AND l.purpose = c.purpose AND l.channel = c.channel "
    "AND l.at <= c.time ORDER BY l.at DESC LIMIT 1) w ON true WHERE c.tenant = 'big' AND w.state = 'granted'"
)


def main() -> None:
    """Load, time the reports, print."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--subjects", type=int, default=200_000)
    args = parser.parse_args()
    _, found = services()
    with fresh_database(found.database_url) as url:
        ledger = Ledger(url, MasterKey.generate())
        began = time.perf_counter()
        contacts = _load(ledger, args.subjects)
        print(f"loaded {args.subjects} subjects, {contacts} contacts in {time.perf_counter() - began:.0f} s")
        with ledger.writer.datastore.transaction(commit=True) as curs:
            curs.execute("ANALYZE")
            began = time.perf_counter()
            curs.execute(CEILING)
            ceiling = time.perf_counter() - began
        now = T0 + 400 * DAY
        rules = load_policy(None)
        began = time.perf_counter()
        report = violations(ledger, "big", Period(T0 - DAY, now, now), rules, confirm_days=7)
        judged = time.perf_counter() - began
        with ledger.writer.datastore.transaction() as curs:
            began = time.perf_counter()
            held_past_expiry(curs, ledger.orders.table, "big", rules, now=now, within=(T0 - DAY, now))
            expiry = time.perf_counter() - began
        began = time.perf_counter()
        due_for_purge(ledger, rules, now, 7, tenant="big")
        retention = time.perf_counter() - began
        began = time.perf_counter()
        record = record_of_processing(ledger, "big", T0 - DAY, now, rules)
        recorded = time.perf_counter() - began
        counts = {kind: n for kind, n in report.counts().items() if n}
        rows = (
            ("ceiling: contacts joined to their latest word", ceiling, ""),
            ("violations (every kind)", judged, f"({judged / ceiling:.1f}x the ceiling) found {counts}"),
            ("  of which held past expiry (SQL)", expiry, "(every held holding's expiry)"),
            ("purge --dry-run, the same in Python", retention, "(every held holding, a subject at a time)"),
            ("record of processing", recorded, f"({len(record.purposes)} purposes)"),
        )
        for label, seconds, note in rows:
            print(f"{label:<46} {seconds:7.2f} s  {note}")
        ledger.close()


def _load(ledger: Ledger, subjects: int) -> int:
    states = []
    contacts = 0
    for n in range(subjects):
        state = SubjectState(tenant="big", subject=f"s{n:07d}", first_seen=T0, last_event_at=T0 + 60 * DAY)
        given = T0 + timedelta(seconds=n % 86_400)
        state.consent_log[(f"g{n}", "marketing")] = ConsentChange(
            f"g{n}", "marketing", "sms", GRANTED, given, given, 2
        )
        for category, system, basis, purpose in (
            ("account_contact", "crm", "contract", "service"),
            ("content", "messaging", "consent", "marketing"),
        ):
            state.holdings[(category, system)] = Holding(
                category, system, basis, [purpose], "processor", "EU", given, given, HELD
            )
        stops = n % 10 == 0
        late = stops and n % 500 == 0
        for k in range(5):
            at = given + (k + 1) * 12 * DAY
            version = 3 + k + (1 if stops and not late and k >= 2 else 0)
            state.contacts[f"m{n}-{k}"] = Contact(
                f"m{n}-{k}", "marketing", "sms", f"msg-{n}-{k}", "spring", at, at, version
            )
            contacts += 1
        if stops:
            at = given + 30 * DAY
            version = 9 if late else 5
            state.consent_log[(f"o{n}", "marketing")] = ConsentChange(
                f"o{n}", "marketing", "sms", OPTED_OUT, at, at, version
            )
        if n % 10 == 3:
            state.shares[f"h{n}"] = Share(
                "aws-storage",
                "subprocessor",
                ["account_contact"],
                "service",
                "contract",
                "US",
                "scc",
                given,
                f"h{n}",
            )
        states.append(state)
        if len(states) == 10_000:
            _write(ledger, states)
            states = []
    _write(ledger, states)
    return contacts


def _write(ledger: Ledger, states: list[SubjectState]) -> None:
    with ledger.writer.datastore.transaction(commit=True) as curs:
        tables.write(curs, states)


if __name__ == "__main__":
    run(main)
