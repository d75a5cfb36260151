"""The auditor console in a real Chromium (Debian's, driven by Playwright) against a real uvicorn server,
over demo data that went through the real pipeline: generated, published to the broker, consumed,
projected, swept and checkpointed.

With LEDGER_SCREENSHOTS=DIR the tests also save the screenshots the README shows (DIR/*.png).
"""

import csv
import io
import os
import re
import threading
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path

import httpx
import orjson
import pytest
import uvicorn
from playwright.sync_api import Browser, BrowserContext, Page, expect, sync_playwright
from psycopg.sql import SQL

from app import stack
from app.bootstrap import Services
from app.console.render import when
from app.http.api import create_app
from ledger.access import ADMIN, AUDITOR, CHECKER
from ledger.deadletters import Selection
from ledger.settings import Settings
from projections import queries
from projections.breach import breach_impact
from projections.overview import overview
from projections.receipts import check_receipt
from projections.retention import sweeps
from projections.rights import open_requests
from projections.timeline import state_at
from tests.conftest import _free_port, fresh_database
from tests.helpers import T0, cli, fact, wait_for

pytestmark = pytest.mark.services
CHROMIUM = Path("/usr/bin/chromium")
SCREENSHOTS = os.environ.get("LEDGER_SCREENSHOTS")
TENANT, OTHER = "tenant-1", "tenant-2"
WINDOW = ("2020-01-01T00:00:00", "2030-01-01T00:00:00")


@dataclass
class Console:
    """A running server over demo data, and a key per (tenant, role)."""

    url: str
    services: Services
    keys: dict[tuple[str | None, str], str]

    def key(self, tenant: str | None, role: str) -> str:
        """The text of the key of `tenant` with `role`, made on first use."""
        if (tenant, role) not in self.keys:
            ledger = self.services.ledger
            with ledger.writer.datastore.transaction(commit=True) as curs:
                self.keys[(tenant, role)] = ledger.api_keys.create(curs, tenant, role)[1]
        return self.keys[(tenant, role)]


@pytest.fixture(scope="module")
def console(services: stack.Endpoints, tmp_path_factory: pytest.TempPathFactory) -> Iterator[Console]:
    """The API and console served by uvicorn in a thread, over two tenants of demo data."""
    with fresh_database(services) as env:
        demo = tmp_path_factory.mktemp("demo")
        events, bad = demo / "events.jsonl", demo / "bad.jsonl"
        generated = cli(env, "generate", "--out", str(events), "--tenants", "2", "--subjects", "40",
                        "--bad-out", str(bad))  # fmt: skip
        assert generated.returncode == 0, generated.stderr
        steps = (("publish", str(events)), ("publish", "--unchecked", str(bad)), ("run", "--until-idle"),
                 ("checkpoint",))  # fmt: skip
        for step in steps:
            outcome = cli(env, *step)
            assert outcome.returncode == 0, (step, outcome.stderr)
        settings = Settings.from_env(env | {"LEDGER_HTTP_RATE_LIMIT": "100000"})
        assert settings.database_url is not None
        built = Services(settings, stack.Endpoints(settings.database_url, services.kafka_bootstrap))
        built.migrate()
        port = _free_port()
        server = uvicorn.Server(
            uvicorn.Config(create_app(built), host="127.0.0.1", port=port, log_level="error")
        )
        thread = threading.Thread(target=server.run, daemon=True)
        thread.start()
        wait_for(lambda: server.started, 20, "uvicorn to start")
        yield Console(f"http://127.0.0.1:{port}", built, {})
        server.should_exit = True
        thread.join()
        built.close()


@pytest.fixture(scope="module")
def browser() -> Iterator[Browser]:
    """Debian's Chromium, headless; skipped only where it is not installed."""
    if not CHROMIUM.exists():
        pytest.skip(
            f"no Chromium at {CHROMIUM}: `apt-get install -y --no-install-recommends chromium` "
            "(make test installs it when run as root)"
        )
    with sync_playwright() as playwright:
        launched = playwright.chromium.launch(executable_path=str(CHROMIUM))
        yield launched
        launched.close()


@pytest.fixture
def context(browser: Browser) -> Iterator[BrowserContext]:
    """A fresh browser profile (no cookies) with a laptop-sized window."""
    made = browser.new_context(
        viewport={"width": 1280, "height": 800}, locale="en-GB", timezone_id="UTC", accept_downloads=True
    )
    yield made
    made.close()


def _sign_in(context: BrowserContext, console: Console, key: str) -> Page:
    """Sign in through the form, by keyboard only: the key field has the focus, Enter sends it."""
    page = context.new_page()
    page.goto(f"{console.url}/console/")
    expect(page).to_have_url(re.compile(r"/console/sign-in$"))
    page.keyboard.type(key)
    with page.expect_navigation():
        page.keyboard.press("Enter")
    return page


def _utc(text: str) -> datetime:
    return datetime.fromisoformat(text).replace(tzinfo=UTC)


def _shot(page: Page, name: str) -> None:
    if SCREENSHOTS:
        Path(SCREENSHOTS).mkdir(parents=True, exist_ok=True)
        page.screenshot(path=str(Path(SCREENSHOTS) / f"{name}.png"), full_page=True)


def _consented(console: Console) -> tuple[str, str, str, str]:
    """A subject of TENANT, not erased, with a share and a consent given or withdrawn (not opted out of
    as a whole) after it was first seen:
    (subject, purpose, channel, deciding event id)."""
    with console.services.ledger.writer.datastore.transaction() as curs:
        curs.execute(
            SQL(
                "SELECT c.subject, c.purpose, c.channel, c.event_id FROM proj_consents c "
                "JOIN proj_subjects s USING (tenant, subject) WHERE c.tenant = %s AND NOT s.erased "
                "AND c.since > s.first_seen AND c.state <> 'opted_out' "
                "AND EXISTS (SELECT 1 FROM proj_shares h "
                "WHERE h.tenant = c.tenant AND h.subject = c.subject) "
                "ORDER BY c.subject, c.since DESC LIMIT 1"
            ),
            (TENANT,),
        )
        row = curs.fetchone()
    assert row is not None, "the demo workload has consents"
    return row["subject"], row["purpose"], row["channel"], row["event_id"]


def test_sign_in_shows_the_tenant_overview(console: Console, context: BrowserContext) -> None:
    """An auditor key signs in by keyboard and lands on its tenant's overview, whose figures are the
    ledger's; the session cookie is HttpOnly and SameSite=Strict, and the key itself is not stored."""
    key = console.key(TENANT, AUDITOR)
    page = _sign_in(context, console, key)
    expect(page).to_have_url(re.compile(rf"/console/t/{TENANT}$"))
    counts = queries.counts(console.services.ledger)[TENANT]
    figures = page.get_by_role("region", name="figures")
    expect(figures).to_contain_text(f"{counts['subjects']} subjects")
    expect(figures).to_contain_text(f"{counts['events']} events stored")
    expect(page.get_by_text("checkpoint 1:")).to_be_visible()
    ledger = console.services.ledger
    requests = open_requests(ledger, TENANT, datetime.now(UTC))
    expect(figures).to_contain_text(
        f"{len(requests)} rights requests open, {sum(c.overdue for c in requests)} overdue"
    )
    with ledger.writer.datastore.transaction() as curs:
        letters = ledger.deadletters.counts(curs, Selection(tenant=TENANT))
    assert letters, "the demo's malformed messages of this tenant are dead-lettered"
    table = page.get_by_role("table").filter(has_text="Reason class")
    for reason, counted in letters.items():
        expect(table.locator("tr", has_text=reason)).to_contain_text(str(counted["open"]))
    cookies = {cookie["name"]: cookie for cookie in context.cookies()}
    session = cookies["ledger_console"]
    assert session["httpOnly"] and session["sameSite"] == "Strict" and session["path"] == "/console"
    assert key not in str(context.cookies())
    _shot(page, "overview")


def test_subject_page_links_a_consent_to_its_deciding_event(
    console: Console, context: BrowserContext
) -> None:
    """From the subject list, a subject's consent matrix links each cell to the event that decided it,
    and that event's page shows its type and both times."""
    subject, purpose, channel, event_id = _consented(console)
    page = _sign_in(context, console, console.key(TENANT, AUDITOR))
    page.get_by_role("link", name="Subjects", exact=True).click()
    page.get_by_label("Subjects from id").fill(subject)
    page.get_by_role("button", name="Go").click()
    page.get_by_role("link", name=subject, exact=True).click()
    expect(page.get_by_role("heading", level=1)).to_contain_text(subject)
    matrix = page.locator("table.matrix")
    row = matrix.locator("tr", has=page.get_by_role("rowheader", name=purpose, exact=True))
    header = matrix.locator("thead th").all_inner_texts()
    cell = row.locator("td").nth(header.index(channel) - 1)
    expect(cell.get_by_role("link")).to_have_attribute("href", re.compile(f"/events/{event_id}$"))
    expect(page.locator("table.timeline tbody tr").first).to_be_visible()
    expect(page.get_by_text("sealed").first).to_be_visible()
    _shot(page, "subject")
    cell.get_by_role("link").click()
    expect(page.get_by_role("heading", level=1)).to_contain_text(event_id)
    facts = page.locator("dl.facts")
    # A grant may be restored by START (keyword.received) now, besides consent.given or withdrawn.
    expect(facts).to_contain_text(re.compile(r"(consent\.(given|withdrawn)|keyword\.received)"))
    expect(facts).to_contain_text("Recorded")
    expect(page.locator("table")).to_contain_text(purpose)
    with page.expect_download() as caught:
        page.get_by_role("link", name="Download its receipt").click()
    document = orjson.loads(Path(caught.value.path()).read_bytes())
    verdict = check_receipt(document, console.services.public_keys)
    assert verdict.ok, verdict


def test_replay_as_of_a_past_date(console: Console, context: BrowserContext) -> None:
    """The "state as of" picker replays the subject: a second before its deciding consent, the matrix
    shows what the event store held then, not the current word."""
    subject, purpose, channel, event_id = _consented(console)
    ledger = console.services.ledger
    since = queries.subject_state(ledger, TENANT, subject).consent[(purpose, channel)].since
    before = since - timedelta(seconds=1)
    then = state_at(ledger, TENANT, subject, before).consent.get((purpose, channel))
    page = _sign_in(context, console, console.key(TENANT, AUDITOR))
    page.goto(f"{console.url}/console/t/{TENANT}/subjects/{subject}")
    page.get_by_label("State as of").fill(before.strftime("%Y-%m-%dT%H:%M:%S"))
    page.get_by_role("button", name="Replay").click()
    expect(page.get_by_role("status")).to_contain_text("Replayed from the event store")
    expect(page).to_have_url(re.compile(r"as_of="))
    links = page.locator("table.matrix a").evaluate_all("links => links.map(a => a.href)")
    assert not any(link.endswith(f"/events/{event_id}") for link in links)
    if then is not None:
        assert any(link.endswith(f"/events/{then.event_id}") for link in links)


def test_opening_personal_values_is_recorded(console: Console, context: BrowserContext) -> None:
    """Personal values are sealed on the page until "open", which the access log records under the
    key first; the opened page shows them."""
    subject = _consented(console)[0]
    ledger = console.services.ledger
    page = _sign_in(context, console, console.key(TENANT, AUDITOR))
    page.goto(f"{console.url}/console/t/{TENANT}/subjects/{subject}")
    assert "+1555" not in page.content()

    def opened() -> int:
        with ledger.writer.datastore.transaction() as curs:
            entries = ledger.access_log.read(curs, TENANT, subject)
        return sum(entry.endpoint == "console.open" and entry.role == AUDITOR for entry in entries)

    before = opened()
    page.get_by_role("button", name=re.compile("Open personal values")).click()
    expect(page.get_by_role("status")).to_contain_text("recorded in the access log")
    expect(page.locator(".personal").first).to_contain_text("+1555")
    assert opened() == before + 1
    page.get_by_role("link", name="Access log").click()
    newest = page.locator("table tbody tr").first
    expect(newest).to_contain_text(subject)
    expect(newest).to_contain_text("console.open")


def test_breach_query_and_csv_download(console: Console, context: BrowserContext) -> None:
    """The breach form answers with the ledger's counts, a chart, deadlines with time left, and a CSV
    of exactly the affected subjects."""
    page = _sign_in(context, console, console.key(TENANT, AUDITOR))
    page.get_by_role("link", name="Breach impact").click()
    page.get_by_label("crm").check()
    page.get_by_label("Exposed from").fill(WINDOW[0])
    page.get_by_label("Exposed until").fill(WINDOW[1])
    page.get_by_label("Discovered at").fill("2026-06-01T08:00:00")
    page.get_by_role("button", name="Assess impact").click()
    expected = breach_impact(
        console.services.ledger,
        TENANT,
        ["crm"],
        (_utc(WINDOW[0]), _utc(WINDOW[1])),
        discovered_at=_utc("2026-06-01T08:00:00"),
        list_subjects=True,
    )
    assert expected.subjects > 0
    impact = page.get_by_role("region", name="impact")
    expect(impact.get_by_role("heading", level=2).first).to_contain_text(f"{expected.subjects} subject(s)")
    expect(impact.locator("figure.chart svg rect")).to_have_count(
        len(expected.by_jurisdiction) + len(expected.by_category)
    )
    deadlines = impact.locator("table tbody tr")
    expect(deadlines).to_have_count(len(expected.deadlines))
    for row, deadline in zip(deadlines.all(), expected.deadlines, strict=True):
        expect(row.locator("td").first).to_have_text(deadline.jurisdiction)
        expect(row.locator("td").last).to_have_text(re.compile(r"overdue by|left|no fixed deadline"))
    _shot(page, "breach")
    with page.expect_download() as caught:
        page.get_by_role("link", name=re.compile("Download the affected subjects")).click()
    rows = list(csv.DictReader(io.StringIO(Path(caught.value.path()).read_text())))
    assert sorted(row["subject"] for row in rows) == sorted(a.subject for a in expected.affected or [])


def test_a_key_of_another_tenant_sees_nothing(console: Console, context: BrowserContext) -> None:
    """Signed in with tenant-2's auditor key, every page of tenant-1 answers 404 as if it did not exist,
    and the console's home leads to tenant-2 only."""
    subject, _, _, event_id = _consented(console)
    page = _sign_in(context, console, console.key(OTHER, AUDITOR))
    expect(page).to_have_url(re.compile(rf"/console/t/{OTHER}$"))
    for path in (
        "",
        "/subjects",
        f"/subjects/{subject}",
        f"/subjects/{subject}/events/{event_id}",
        "/breach?system=crm&from=2020-01-01T00:00:00&to=2030-01-01T00:00:00",
        "/breach.csv?system=crm&from=2020-01-01T00:00:00&to=2030-01-01T00:00:00",
        "/retention",
        "/access-log",
        f"/receipts/{event_id}.json",
    ):
        answer = page.request.get(f"{console.url}/console/t/{TENANT}{path}")
        assert answer.status == 404, path
        assert subject not in answer.text() and "contact-" not in answer.text()
    opened = page.request.post(f"{console.url}/console/t/{TENANT}/subjects/{subject}/open")
    assert opened.status in (403, 404)


def test_a_form_without_its_token_is_refused(console: Console, context: BrowserContext) -> None:
    """A POST without the session's form token (what another site could forge) is refused with 403,
    opens nothing and records nothing; the sign-in form needs its own token too."""
    subject = _consented(console)[0]
    ledger = console.services.ledger
    page = _sign_in(context, console, console.key(TENANT, AUDITOR))
    with ledger.writer.datastore.transaction() as curs:
        before = len(ledger.access_log.read(curs, TENANT, subject))
    target = f"{console.url}/console/t/{TENANT}/subjects/{subject}/open"
    forms: list[dict[str, str | float | bool]] = [{}, {"csrf": "forged"}]
    for form in forms:
        answer = page.request.post(target, form=form)
        assert answer.status == 403
        assert "form token" in answer.text() and "+1555" not in answer.text()
    with ledger.writer.datastore.transaction() as curs:
        assert len(ledger.access_log.read(curs, TENANT, subject)) == before
    assert page.request.post(f"{console.url}/console/sign-out", form={}).status == 403
    forged = httpx.post(f"{console.url}/console/sign-in", data={"key": console.key(TENANT, AUDITOR)})
    assert forged.status_code == 403 and "ledger_console=" not in forged.headers.get("set-cookie", "")


def test_only_auditor_and_admin_keys_sign_in_and_revocation_signs_out(
    console: Console, context: BrowserContext
) -> None:
    """A checker key is refused at sign-in, saying why; an auditor's session ends as soon as its key
    is revoked; signing out ends the session."""
    page = _sign_in(context, console, console.key(TENANT, CHECKER))
    expect(page.get_by_role("alert")).to_contain_text("a checker key cannot sign in")
    ledger = console.services.ledger
    with ledger.writer.datastore.transaction(commit=True) as curs:
        key, text = ledger.api_keys.create(curs, TENANT, AUDITOR)
    page = _sign_in(context, console, text)
    expect(page).to_have_url(re.compile(rf"/console/t/{TENANT}$"))
    with ledger.writer.datastore.transaction(commit=True) as curs:
        ledger.api_keys.revoke(curs, key.key_id)
    page.reload()
    expect(page).to_have_url(re.compile(r"/console/sign-in$"))
    page = _sign_in(context, console, console.key(TENANT, AUDITOR))
    page.get_by_role("button", name="Sign out").click()
    expect(page).to_have_url(re.compile(r"/console/sign-in$"))
    assert page.request.get(f"{console.url}/console/t/{TENANT}", max_redirects=0).status == 303


def test_retention_page_and_what_if(console: Console, context: BrowserContext, tmp_path: Path) -> None:
    """The retention page shows the rules in force and what a sweep would order; a proposed policy
    that keeps contact data one day instead of two years makes holdings expire earlier."""
    page = _sign_in(context, console, console.key(TENANT, AUDITOR))
    page.get_by_role("link", name="Retention").click()
    expect(page.locator("table").first).to_contain_text("account-data")
    shipped = (Path(__file__).resolve().parent.parent / "ledger" / "retention_policy.toml").read_text()
    proposed = tmp_path / "proposed.toml"
    proposed.write_text(shipped.replace('duration = "P2Y"', 'duration = "P1D"'))
    page.get_by_label("Proposed policy").set_input_files(proposed)
    page.get_by_role("button", name="Compare").click()
    whatif = page.get_by_role("region", name="what-if")
    expect(whatif).to_contain_text("proposed.toml")
    earlier = int(whatif.locator("li").first.locator(".figure").inner_text())
    assert earlier > 0
    expect(whatif.locator("table").first).to_contain_text("account_contact")
    _shot(page, "retention")


def test_verify_is_for_admins_and_passes(console: Console, context: BrowserContext) -> None:
    """An admin picks a tenant, runs verify and sees it pass, after which the overview says so; the
    latest tree head downloads; an auditor may not run verify."""
    auditor = _sign_in(context, console, console.key(TENANT, AUDITOR))
    assert auditor.request.get(f"{console.url}/console/verify").status == 403
    auditor.get_by_role("button", name="Sign out").click()
    page = _sign_in(context, console, console.key(None, ADMIN))
    expect(page.get_by_role("heading", level=1)).to_have_text("Tenants")
    page.get_by_role("link", name=TENANT).click()
    page.get_by_role("link", name="Verify", exact=True).click()
    page.get_by_role("button", name="Run verify now").click()
    result = page.get_by_role("region", name="verify result")
    expect(result).to_contain_text("Passed")
    expect(result).to_contain_text("ok:")
    with page.expect_download() as caught:
        page.get_by_role("link", name="Download the latest signed tree head").click()
    assert '"tree_head"' in Path(caught.value.path()).read_text()
    page.goto(f"{console.url}/console/t/{TENANT}")
    integrity = page.locator("dl.facts", has_text="Last checkpoint")  # not the sweeps' facts
    expect(integrity).to_contain_text("passed")
    with _tampered(console, position=2):
        page.goto(f"{console.url}/console/verify")
        page.get_by_role("button", name="Run verify now").click()
        expect(result).to_contain_text("Failed")
        expect(result.locator("li").first).to_contain_text(re.compile(r"break at position \d+ .*altered"))
        _shot(page, "verify")
        page.goto(f"{console.url}/console/t/{TENANT}")
        expect(integrity).to_contain_text(re.compile(r"FAILED: \d+ break\(s\)"))


@contextmanager
def _tampered(console: Console, position: int) -> Iterator[None]:
    """One byte of the stored event at `position` changed directly in PostgreSQL, then put back."""
    with console.services.ledger.writer.datastore.transaction(commit=True) as curs:
        curs.execute("SELECT state FROM ledger_events WHERE notification_id = %s", (position,))
        row = curs.fetchone()
        assert row is not None
        curs.execute(
            "UPDATE ledger_events SET state = set_byte(state, 40, 88) WHERE notification_id = %s",
            (position,),
        )
    try:
        yield
    finally:
        with console.services.ledger.writer.datastore.transaction(commit=True) as curs:
            curs.execute(
                "UPDATE ledger_events SET state = %s WHERE notification_id = %s", (row["state"], position)
            )


def test_pages_work_by_keyboard_and_print_without_navigation(
    console: Console, context: BrowserContext
) -> None:
    """The first Tab reaches "Skip to content", which moves the focus past the navigation; printed, a
    page leaves out the navigation and forms and keeps the content (the print stylesheet)."""
    page = _sign_in(context, console, console.key(TENANT, AUDITOR))
    page.keyboard.press("Tab")
    expect(page.get_by_role("link", name="Skip to content")).to_be_focused()
    page.keyboard.press("Enter")
    expect(page.locator("main")).to_be_focused()
    page.emulate_media(media="print")
    expect(page.locator("header.bar")).to_be_hidden()
    expect(page.get_by_role("region", name="figures")).to_be_visible()


def test_overview_clocks_are_the_rights_clocks(console: Console) -> None:
    """The overview's open and overdue rights requests, read from the requests and holdings alone, are
    those `open_requests` finds from whole subject states, deadlines and order included."""
    ledger = console.services.ledger
    now = datetime.now(UTC)
    recent = int((now - T0).total_seconds() // 60) - 5 * 24 * 60
    ledger.append(
        [
            fact(
                OTHER,
                subject,
                f"console-dr-{n}",
                "deletion.requested",
                minutes=minutes,
                data={"request_id": f"console-dr-{n}", "verified": True},
            )
            for n, (subject, minutes) in enumerate((("contact-000001", 10), ("contact-000002", recent)))
        ]
    )
    console.services.projector.run(until_idle=True)
    expected = open_requests(ledger, OTHER, now)
    found = overview(ledger, OTHER, now, console.services.settings.purge_confirm_days)
    assert found.soonest_requests == expected[:10]
    assert found.requests_open == len(expected) >= 2
    assert 1 <= found.requests_overdue == sum(c.overdue for c in expected) < len(expected)


def test_overview_says_when_the_sweep_last_ran_and_last_ordered(console: Console) -> None:
    """The overview names the last sweep, even one that ordered nothing for the tenant, with the
    tenant's orders, apart from the last sweep that ordered a purge of the tenant's data."""
    services = console.services
    piped = sweeps(services.ledger, TENANT).last_ordered
    assert piped is not None and piped.orders[TENANT] > 0, "the pipeline's sweep ordered demo purges"
    swept = services.sweeper.sweep(piped.at + timedelta(seconds=1))  # ordered already: nothing new
    assert swept is not None and [o for o in swept.ordered if o.tenant == TENANT] == []
    last = sweeps(services.ledger, TENANT).last
    assert last is not None
    with httpx.Client(base_url=console.url) as browser:
        form = browser.get("/console/sign-in")
        token = re.search(r'name="csrf" value="([^"]+)"', form.text)
        assert token is not None
        signed_in = browser.post(
            "/console/sign-in", data={"key": console.key(TENANT, AUDITOR), "csrf": token[1]}
        )
        assert signed_in.status_code == 303
        page = browser.get(f"/console/t/{TENANT}").text
    assert f"<dt>Last sweep</dt>\n  <dd>{when(last.at)}, ordered 0 purge(s) of this tenant" in page
    ordered = (
        f"<dt>Last sweep that ordered</dt>\n  <dd>{when(piped.at)}, {piped.orders[TENANT]} purge(s)</dd>"
    )
    assert ordered in page


def test_a_rights_request_shows_on_its_clock(console: Console, context: BrowserContext) -> None:
    """An open access request extended too late shows on the overview and the subject page with its
    right, regime, deadline, why its extension does not count, and how long it is overdue."""
    tenant, subject = "tenant-rights", "contact-r1"
    asked = {"request_id": "r-clock", "right": "access", "channel": "email", "jurisdiction": "EU"}
    ledger = console.services.ledger
    ledger.append(
        [
            fact(tenant, subject, "rc-1", "rights.requested", minutes=0, data=asked),
            fact(
                tenant,
                subject,
                "rc-2",
                "rights.extended",
                minutes=40 * 24 * 60,
                data={"request_id": "r-clock", "reason": "complexity"},
            ),
        ]
    )
    console.services.projector.run(until_idle=True)
    [clock] = open_requests(ledger, tenant, datetime.now(UTC))
    assert clock.overdue and not clock.extended and clock.extension_note
    page = _sign_in(context, console, console.key(tenant, AUDITOR))
    row = page.locator("tr", has_text="r-clock")
    for text in ("access", clock.regime, when(clock.deadline), clock.extension_note, "overdue by"):
        expect(row).to_contain_text(text)
    expect(row).to_have_class("late")
    page.goto(f"{console.url}/console/t/{tenant}/subjects/{subject}")
    item = page.locator("li", has_text="r-clock")
    for text in ("Access request", clock.regime, when(clock.deadline), clock.extension_note, "overdue by"):
        expect(item).to_contain_text(text)
    expect(item).to_have_class("late")
