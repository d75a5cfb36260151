"""Retention as data: which rule governs a holding, from what trigger, and when it expires.

The policy is a TOML file (`LEDGER_RETENTION_POLICY`, default: `retention_policy.toml` shipped here)
validated by `schemas/retention-policy.v1.json`. Everything but loading is pure.
"""

import calendar
import re
import tomllib
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from importlib import resources
from pathlib import Path
from typing import Any

import jsonschema_rs

import schemas
from ledger.errors import ConfigError
from ledger.state import GRANTED, HELD, Holding, SubjectState, unconfirmed_recipients

SCHEDULED = "scheduled"  # expires at a known instant
AWAITING_TRIGGER = "awaiting_trigger"  # the trigger (e.g. account closure) has not happened yet
NO_RULE = "no_rule"  # nothing in the policy covers it: reported, never kept silently forever
SUSPENDED = "suspended"  # a legal hold suspends expiry
PURGE_ORDERED = "purge_ordered"  # expired and ordered purged; the owning system has not confirmed yet
# Retention arithmetic is total: a moment that would fall after the calendar's last instant (a stored
# event at 9999-12-31 plus seven years) is the end of time, never due, instead of an error that
# stops every sweep. The contract keeps event times far from it; this holds for whatever is stored.
END_OF_TIME = datetime.max.replace(tzinfo=UTC)
START_OF_TIME = datetime.min.replace(tzinfo=UTC)
_DURATION = re.compile(r"^P(?:(\d+)Y)?(?:(\d+)M)?(?:(\d+)D)?$")
_LONGEST = (10_000, 120_000, 3_660_000)  # years, months, days: each takes year 1 past year 9999


@dataclass(frozen=True)
class Rule:
    """One line of the policy."""

    id: str
    category: str
    duration: str
    trigger: str
    legal_basis: str | None = None
    purpose: str | None = None
    jurisdiction: str | None = None
    description: str | None = None

    def matches(self, holding: Holding) -> bool:
        """True when every field the rule names agrees with the holding."""
        return (
            self.category == holding.category
            and self.legal_basis in (None, holding.legal_basis)
            and (self.purpose is None or self.purpose in holding.purposes)
            and self.jurisdiction in (None, holding.jurisdiction)
        )

    @property
    def specificity(self) -> int:
        """How many optional fields narrow the rule; the most specific match wins."""
        return sum(field is not None for field in (self.legal_basis, self.purpose, self.jurisdiction))


@dataclass(frozen=True)
class Retention:
    """When a holding expires, under which rule, or why that cannot be said."""

    status: str
    expires_at: datetime | None
    rule: str | None
    note: str


def load_policy(path: Path | None) -> list[Rule]:
    """The rules of the policy file at `path` (default: the one shipped with the ledger)."""
    return parse_policy(policy_document(path), str(path or "retention_policy.toml"))


def policy_document(path: Path | None) -> dict[str, Any]:
    """The policy file at `path` (default: the shipped one), decoded but not yet validated."""
    try:
        text = (
            path.read_text()
            if path
            else resources.files("ledger").joinpath("retention_policy.toml").read_text()
        )
        return tomllib.loads(text)
    except OSError as error:
        raise ConfigError(f"cannot read LEDGER_RETENTION_POLICY {path}: {error.strerror}") from None
    except UnicodeDecodeError:
        raise ConfigError(f"retention policy {path} is not UTF-8 text: give a TOML file") from None
    except tomllib.TOMLDecodeError as error:
        raise ConfigError(f"retention policy {path} is not valid TOML: {error}") from None


def parse_policy(document: dict[str, Any], origin: str) -> list[Rule]:
    """Validate a decoded policy against its schema and turn it into rules."""
    vocabulary = schemas.load(schemas.VOCABULARY)
    validator = jsonschema_rs.validator_for(
        schemas.load(schemas.RETENTION_POLICY),
        registry=jsonschema_rs.Registry([(vocabulary["$id"], vocabulary)]),
    )
    error = next(iter(validator.iter_errors(document)), None)
    if error is not None:
        place = ".".join(str(part) for part in error.instance_path) or "the document"
        raise ConfigError(f"retention policy {origin}: {place}: {error.message}")
    rules = [Rule(**rule) for rule in document["rule"]]
    duplicates = {rule.id for rule in rules if [r.id for r in rules].count(rule.id) > 1}
    if duplicates:
        raise ConfigError(
            f"retention policy {origin}: rule ids must be unique, repeated: {', '.join(sorted(duplicates))}"
        )
    return rules


def retention(holding: Holding, state: SubjectState, rules: list[Rule]) -> Retention:
    """The retention of one holding of a subject under the policy `rules`."""
    matching = [rule for rule in rules if rule.matches(holding)]
    if not matching:
        return Retention(
            NO_RULE, None, None, f"no rule covers {holding.category} under {holding.legal_basis}"
        )
    rule = max(matching, key=lambda r: (r.specificity, -rules.index(r)))
    anchor = _trigger_time(rule.trigger, holding, state)
    if anchor is None:
        return Retention(
            AWAITING_TRIGGER, None, rule.id, f"expires {rule.duration} after {rule.trigger}, not yet"
        )
    expires = add_duration(anchor, rule.duration)
    hold = next(
        (h for h in state.legal_holds.values() if h.categories is None or holding.category in h.categories),
        None,
    )
    if hold is not None:
        return Retention(SUSPENDED, expires, rule.id, f"suspended by legal hold {hold.hold_id}")
    never = ", beyond the calendar: never due" if expires == END_OF_TIME else ""
    return Retention(SCHEDULED, expires, rule.id, f"{rule.duration} after {rule.trigger}{never}")


EARLIER, LATER, UNCHANGED = "earlier", "later", "unchanged"


def shift(before: Retention, after: Retention) -> str:
    """Whether a holding expires earlier, later or no differently under `after` than under `before`;
    a holding without an expiry (no rule, trigger not yet) counts as expiring at the end of time."""
    was, will = before.expires_at or END_OF_TIME, after.expires_at or END_OF_TIME
    return EARLIER if will < was else LATER if will > was else UNCHANGED


def add_duration(start: datetime, duration: str) -> datetime:
    """`start` plus an ISO 8601 calendar duration; the 29th of February falls back to the 28th, and
    anything after the calendar's end is END_OF_TIME."""
    years, months, days = duration_parts(duration)
    total = start.month - 1 + months + 12 * (start.year + years)
    year, month = divmod(total, 12)
    if year > END_OF_TIME.year:
        return END_OF_TIME
    day = min(start.day, calendar.monthrange(year, month + 1)[1])
    return shifted(start.replace(year=year, month=month + 1, day=day), timedelta(days=days))


def duration_parts(duration: str) -> tuple[int, int, int]:
    """The years, months and days of an ISO 8601 calendar duration (P1Y2M3D), each at most what
    carries any instant past the calendar's end: P9999999999D means never, and does not overflow
    `timedelta` (or a PostgreSQL interval) on its way there."""
    found = _DURATION.match(duration)
    if found is None:
        raise ConfigError(f"duration {duration!r} is not ISO 8601 years/months/days, such as P7Y or P30D")
    years, months, days = (
        min(int(part or 0), most) for part, most in zip(found.groups(), _LONGEST, strict=True)
    )
    return years, months, days


def shifted(moment: datetime, span: timedelta) -> datetime:
    """`moment + span`, held within the calendar (END_OF_TIME or START_OF_TIME where it would leave it)."""
    try:
        return moment + span
    except OverflowError:
        return END_OF_TIME if span > timedelta(0) else START_OF_TIME


def _trigger_time(trigger: str, holding: Holding, state: SubjectState) -> datetime | None:
    if trigger == "collected":
        return holding.first_collected
    if trigger == "last_activity":
        return state.last_event_at
    if trigger == "account_closed":
        return state.account_closed_at
    consents = [c for c in state.consent.values() if c.purpose in holding.purposes]
    if not consents or any(c.state == GRANTED for c in consents):
        return None
    return max(c.since for c in consents)


@dataclass(frozen=True)
class Due:
    """A holding whose retention has run out: what a purge order names."""

    tenant: str
    subject: str
    system: str
    category: str
    rule: str
    expires_at: datetime


def due_purges(state: SubjectState, rules: list[Rule], now: datetime) -> list[Due]:
    """The subject's holdings still held whose retention expired by `now` and that no hold covers,
    and the copies of the same categories that recipients have not confirmed deleting."""
    due: dict[tuple[str, str], Due] = {}
    for holding in state.holdings.values():
        if holding.status != HELD:
            continue
        kept = retention(holding, state, rules)
        if kept.status == SCHEDULED and kept.expires_at is not None and kept.expires_at <= now:
            assert kept.rule is not None
            for system in [holding.system, *unconfirmed_recipients(state, [holding.category])]:
                found = due.get((system, holding.category))
                # A recipient's copy of two holdings: the later expiry, then the later rule id (not the
                # order the holdings were read in), as projections.expiry picks it.
                if found is None or (found.expires_at, found.rule) < (kept.expires_at, kept.rule):
                    due[(system, holding.category)] = Due(
                        state.tenant, state.subject, system, holding.category, kept.rule, kept.expires_at
                    )
    return list(due.values())


RIGHTS_DEADLINE = timedelta(days=30)  # GDPR Art. 12(3): one month, here counted as 30 days
