"""The statistics page (`/stats`, API.md "Pages", SPEC R25–R30) in a real browser, end to end.

Debian's chromium, driven by Playwright, opens the page on the shared service after this
module's answered, missed and outgoing calls on a day of their own (45 days ago, in the
account's time zone), so that day's figures are exactly this module's. The page must show the
figures the JSON API gives for the same period, draw the peak charts, name the staff in a
sortable team table, download each report as CSV, switch periods, and speak English too.
Screenshots land in `test-artifacts/stats-*.png`.

The page signs in with a token kept in localStorage (`callrouter.token`, what the console
stores) or with the session cookie; these tests use the admin token.
"""

from __future__ import annotations

import json
import urllib.parse
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from datetime import date, datetime, timedelta
from pathlib import Path
from typing import TYPE_CHECKING, Any
from zoneinfo import ZoneInfo

import pytest

from callrouter.testing import uis_bodies as uis

if TYPE_CHECKING:
    from playwright.sync_api import ViewportSize

    from tests.e2e.conftest import Desk, Staff

pytestmark = [pytest.mark.e2e, pytest.mark.browser]

ROOT = Path(__file__).resolve().parents[2]
ARTIFACTS = ROOT / "test-artifacts"
LAPTOP: ViewportSize = {"width": 1440, "height": 900}
UI_TIMEOUT_MS = 15_000
WAIT = 60.0
REPORTS = ("load", "peak", "channels", "response", "sla", "team")
NA_RU = "не применимо к звонкам"
NA_EN = "not applicable for calls"

try:  # the `browser` fixture (e2e conftest) skips when Playwright is missing
    from playwright.sync_api import Browser, Page
    from playwright.sync_api import expect as ui
except ImportError:  # pragma: no cover - the dev extra installs it
    pass


@dataclass
class Day:
    """This module's calls: their day, their staff, and what the load report must say."""

    start: date
    olga: Staff
    petr: Staff
    load: dict[str, int]

    @property
    def end(self) -> date:
        return self.start + timedelta(days=1)


def account_zone(desk: Desk) -> ZoneInfo:
    return ZoneInfo(desk.admin.get("/api/v1/settings").json["timezone"])


def report(desk: Desk, name: str, start: date, end: date) -> Any:
    query = urllib.parse.urlencode({"from": start.isoformat(), "to": end.isoformat()})
    resp = desk.admin.get(f"/api/v1/stats/{name}?{query}")
    assert resp.status == 200, resp
    return resp.json


@pytest.fixture(scope="module")
def day(shared_desk: Desk) -> Day:
    """Five calls on a day 45 days ago: Olga answers two incoming calls and makes an answered
    outgoing one (a closed case), Petr answers one; a call rings both and is missed (Petr's
    case: the last to ring). Waits until the statistics count them all."""
    desk = shared_desk
    olga = desk.staff("Ольга Кузнецова")
    petr = desk.staff("Пётр Васильев")
    start = datetime.now(account_zone(desk)).date() - timedelta(days=45)

    def at(hours: int, minutes: int) -> datetime:
        return datetime.combine(start, datetime.min.time()) + timedelta(
            hours=hours, minutes=minutes
        )

    first_phone = desk.new_phone()
    calls = [
        uis.incoming_answered(desk.new_call_id(), at(9, 5), first_phone, olga.employee_id, 40),
        uis.incoming_answered(
            desk.new_call_id(), at(9, 40), desk.new_phone(), olga.employee_id, 70
        ),
        uis.outgoing_softphone(
            desk.new_call_id(), at(11, 0), desk.new_phone(), olga.employee_id, True
        ),
        uis.incoming_answered(
            desk.new_call_id(), at(14, 20), desk.new_phone(), petr.employee_id, 30
        ),
        uis.incoming_missed(
            desk.new_call_id(),
            at(18, 5),
            desk.new_phone(),
            [olga.employee_id, petr.employee_id],
        ),
    ]
    for events in calls:
        desk.post_call(events)
    for events in calls:
        desk.wait_finalized(events[0][1]["call_info"]["call_session_id"])
    load = {
        "new_total": 5,
        "new_from_users": 4,
        "reopened": 0,
        "in_work": 0,
        "answered": 4,  # the missed call has no conversation
        "closed": 1,  # the outgoing call's case, closed when made (R14)
    }
    end = start + timedelta(days=1)
    desk.wait(lambda: report(desk, "load", start, end) == load, "the day's load report", WAIT)
    team: dict[str, Any] = {"items": []}

    def both_in_team() -> bool:
        team.update(report(desk, "team", start, end))
        return {i["staff_id"] for i in team["items"]} == {olga.id, petr.id}

    desk.wait(both_in_team, "the day's team report", WAIT)

    # Olga closes the first call's case today, 45 days after it was made: work, a close with
    # its close time, over the close SLA — figures of today, not of that day.
    user = desk.user_by_phone(first_phone)
    assert user is not None
    [case] = desk.cases_of(user["id"])
    closed = olga.api.patch(f"/api/v1/cases/{case['id']}", {"status": "closed"})
    assert closed.status == 200, closed
    return Day(start, olga, petr, load)


class Tab:
    """One browser tab on the statistics page, and the errors its scripts threw."""

    def __init__(self, page: Page) -> None:
        self.page = page
        self.errors: list[str] = []
        page.on("pageerror", lambda exc: self.errors.append(str(exc)))

    def ready(self, start: date, end: date) -> None:
        """Wait until the page shows the period [start, end)."""
        period = f"{start.isoformat()}/{end.isoformat()}"
        ui(self.page.locator(f'body[data-state="ready"][data-period="{period}"]')).to_have_count(1)

    def value(self, testid: str) -> Any:
        raw = self.page.get_by_test_id(testid).get_attribute("data-value")
        assert raw is not None, testid
        return json.loads(raw)

    def text(self, testid: str) -> str:
        return self.page.get_by_test_id(testid).inner_text().strip()

    def shot(self, name: str) -> Path:
        ARTIFACTS.mkdir(exist_ok=True)
        path = ARTIFACTS / f"stats-{name}.png"
        self.page.evaluate("window.scrollTo(0, 0)")  # the sticky top bar at the top
        self.page.screenshot(path=str(path), full_page=True, animations="disabled")
        return path

    def team_ids(self) -> list[int]:
        rows = self.page.locator("#team-body tr[data-staff-id]")
        return [int(r) for r in rows.evaluate_all("rows => rows.map(r => r.dataset.staffId)")]

    def bars(self, chart: str) -> dict[tuple[int, str], int]:
        """(slot, series) -> value of every bar drawn in chart `chart` (hour, weekday)."""
        found = self.page.locator(f"#chart-{chart} rect.bar").evaluate_all(
            "bars => bars.map(b => [+b.dataset.slot, b.dataset.series, +b.dataset.value,"
            " b.getBBox().height])"
        )
        assert all(height > 0 for *_, height in found), found
        return {(slot, series): value for slot, series, value, _ in found}


@pytest.fixture
def tab(browser: Browser, shared_desk: Desk) -> Iterator[Tab]:
    """A Russian browser profile holding the admin token as the console keeps a token, at
    laptop size."""
    context = browser.new_context(
        viewport=LAPTOP,
        base_url=shared_desk.service.base_url,
        accept_downloads=True,
        locale="ru-RU",  # a Russian-speaking manager's browser
    )
    context.set_default_timeout(UI_TIMEOUT_MS)
    token = json.dumps(shared_desk.service.admin_token)
    context.add_init_script(f"localStorage.setItem('callrouter.token', {token});")
    page = Tab(context.new_page())
    try:
        yield page
    finally:
        context.close()
    assert not page.errors, f"uncaught errors in the statistics page: {page.errors}"


def open_day(tab: Tab, day: Day) -> None:
    """Open the page and pick the module's day with the custom range form."""
    page = tab.page
    page.goto("/stats")
    ui(page.locator('body[data-state="ready"]')).to_have_count(1)
    page.get_by_test_id("period-custom").click()
    ui(page.get_by_test_id("custom-form")).to_be_visible()
    page.get_by_test_id("custom-from").fill(day.start.isoformat())
    page.get_by_test_id("custom-to").fill(day.start.isoformat())  # inclusive: one day
    page.get_by_test_id("custom-show").click()
    tab.ready(day.start, day.end)


def nonzero_bars(rows: list[dict[str, Any]]) -> dict[tuple[int, str], int]:
    return {
        (i, key): row[key]
        for i, row in enumerate(rows)
        for key in ("new_and_reopened", "in_work")
        if row[key]
    }


# --- the tests -------------------------------------------------------------------------------


def test_the_six_reports_show_what_the_api_says(tab: Tab, day: Day, shared_desk: Desk) -> None:
    """A custom range of one day: every figure of the six reports is the JSON API's for the
    same period, the peak charts have a bar per non-zero figure, the team table names the
    staff, and what does not apply to calls says so."""
    open_day(tab, day)
    page = tab.page
    api = {name: report(shared_desk, name, day.start, day.end) for name in REPORTS}
    assert api["load"] == day.load

    for key, value in api["load"].items():
        assert tab.value(f"fig-load-{key}") == value, key
        assert tab.page.get_by_test_id(f"fig-load-{key}").locator(".figure-value").inner_text() == (
            str(value)
        )
    for key, value in api["channels"]["calls"].items():
        assert tab.value(f"fig-channels-{key}") == value, key
    response = api["response"]
    assert tab.value("fig-response-replies_to_close") == response["replies_to_close"]
    close = response["close_time"]
    assert tab.value("fig-response-close_time-mean") == (close and close["mean_seconds"])
    assert tab.value("fig-response-close_time-median") == (close and close["median_seconds"])
    for key in ("first_response", "any_response", "reply_writing"):
        assert response[key] is None
        assert NA_RU in tab.text(f"fig-response-{key}"), key
    sla = api["sla"]
    assert tab.value("fig-sla-close_sla_breached") == sla["close_sla_breached"]
    for key in ("first_response_breached", "any_response_breached"):
        assert NA_RU in tab.text(f"fig-sla-{key}"), key
    assert tab.text("sla-threshold").startswith("SLA закрытия:")

    # Peak: one bar per non-zero figure, in its slot, of its height.
    peak = api["peak"]
    assert tab.bars("hour") == nonzero_bars(peak["by_hour"])
    assert tab.bars("weekday") == nonzero_bars(peak["by_weekday"])
    assert {slot for slot, _ in tab.bars("hour")} == {9, 11, 14, 18}
    assert {slot for slot, _ in tab.bars("weekday")} == {day.start.isoweekday() - 1}

    # Team: names, and each figure as the API has it.
    items = {item["staff_id"]: item for item in api["team"]["items"]}
    assert set(items) == {day.olga.id, day.petr.id}
    assert tab.team_ids() == [day.olga.id, day.petr.id]  # most new cases first
    for staff in (day.olga, day.petr):
        row = page.get_by_test_id(f"team-row-{staff.id}")
        assert row.locator('[data-col="name"]').inner_text().strip() == staff.full_name
        for key, value in items[staff.id].items():
            if key == "staff_id":
                continue
            cell = row.locator(f'[data-col="{key}"]')
            shown = json.loads(cell.get_attribute("data-value") or "null")
            expected = value["mean_seconds"] if key == "close_time" and value else value
            assert shown == expected, (staff.full_name, key)
    assert items[day.olga.id]["new_total"] == 3 and items[day.petr.id]["new_total"] == 2
    assert NA_RU in tab.text("team-na")
    assert page.title() == "Статистика · Звонки"
    ui(page.get_by_test_id("me-name")).to_have_text("Администратор")  # the admin token
    ui(page.locator("#nav-admin")).to_be_visible()
    tab.shot("01-day-ru")


def test_a_range_to_today_shows_close_times(tab: Tab, day: Day, shared_desk: Desk) -> None:
    """From the module's day to today: Olga's close counts, with its close time (as a
    duration) and the close SLA it broke; the page says what the API says."""
    today = datetime.now(account_zone(shared_desk)).date()
    end = today + timedelta(days=1)
    page = tab.page
    page.goto(f"/stats?from={day.start.isoformat()}&to={end.isoformat()}")
    tab.ready(day.start, end)
    ui(page.get_by_test_id("period-custom")).to_have_attribute("aria-pressed", "true")

    def olga_closed() -> bool:
        item = next(
            (
                i
                for i in report(shared_desk, "team", day.start, end)["items"]
                if i["staff_id"] == day.olga.id
            ),
            None,
        )
        return item is not None and item["closed"] == 2

    shared_desk.wait(olga_closed, "Olga's close in the team report", WAIT)
    shared_desk.wait(_same_as_api(tab, shared_desk, day.start, end), "the range's figures", 20)
    olga = page.get_by_test_id(f"team-row-{day.olga.id}")
    team = report(shared_desk, "team", day.start, end)
    [item] = [i for i in team["items"] if i["staff_id"] == day.olga.id]
    assert item["close_sla_breached"] == 1 and item["in_work"] == 1
    mean = item["close_time"]["mean_seconds"]
    cell = olga.locator('[data-col="close_time"]')
    assert json.loads(cell.get_attribute("data-value") or "null") == mean
    assert cell.inner_text().startswith(f"{int(mean // 86400)} д")  # 45 д 2 ч, say
    assert (
        json.loads(
            olga.locator('[data-col="close_sla_breached"]').get_attribute("data-value") or "0"
        )
        == 1
    )
    tab.shot("05-range-to-today")


def test_the_team_table_sorts_by_any_column(tab: Tab, day: Day) -> None:
    open_day(tab, day)
    page = tab.page
    olga, petr = day.olga.id, day.petr.id
    header = page.locator('th:has([data-testid="sort-new_total"])')
    ui(header).to_have_attribute("aria-sort", "descending")
    page.get_by_test_id("sort-new_total").click()
    ui(header).to_have_attribute("aria-sort", "ascending")
    assert tab.team_ids() == [petr, olga]
    page.get_by_test_id("sort-name").click()  # by name, А to Я: Ольга, Пётр
    ui(page.locator('th:has([data-testid="sort-name"])')).to_have_attribute(
        "aria-sort", "ascending"
    )
    ui(header).to_have_attribute("aria-sort", "none")
    assert tab.team_ids() == [olga, petr]
    page.get_by_test_id("sort-name").click()
    assert tab.team_ids() == [petr, olga]
    page.get_by_test_id("sort-answered").click()  # Olga 2, Petr 1: most first
    assert tab.team_ids() == [olga, petr]
    page.get_by_test_id("sort-closed").click()
    assert tab.team_ids() == [olga, petr]
    page.get_by_test_id("sort-closed").click()
    assert tab.team_ids() == [petr, olga]
    page.set_viewport_size({"width": 1024, "height": 768})  # a small laptop
    page.get_by_test_id("refresh").click()  # the charts are drawn for the new width
    tab.ready(day.start, day.end)
    assert tab.team_ids() == [petr, olga]  # a refresh keeps the order
    tab.shot("02-team-sorted-1024")


def _named_periods(today: date) -> dict[str, tuple[date, date]]:
    monday = today - timedelta(days=today.weekday())
    first = today.replace(day=1)
    next_first = (first + timedelta(days=32)).replace(day=1)
    return {
        "today": (today, today + timedelta(days=1)),
        "yesterday": (today - timedelta(days=1), today),
        "week": (monday, monday + timedelta(days=7)),
        "month": (first, next_first),
    }


def _same_as_api(tab: Tab, desk: Desk, start: date, end: date) -> Callable[[], bool]:
    """Whether the page's figures (load, channels, response, SLA) are the API's for [start,
    end); refreshes the page's figures when not (other tests' calls may still be counted on a
    shared service)."""

    def probe() -> bool:
        load = report(desk, "load", start, end)
        response = report(desk, "response", start, end)
        close = response["close_time"] or {}
        expected = {f"fig-load-{key}": value for key, value in load.items()} | {
            f"fig-channels-{key}": value
            for key, value in report(desk, "channels", start, end)["calls"].items()
        }
        expected |= {
            "fig-response-replies_to_close": response["replies_to_close"],
            "fig-response-close_time-mean": close.get("mean_seconds"),
            "fig-response-close_time-median": close.get("median_seconds"),
            "fig-sla-close_sla_breached": report(desk, "sla", start, end)["close_sla_breached"],
        }
        if all(tab.value(testid) == value for testid, value in expected.items()):
            return True
        tab.page.get_by_test_id("refresh").click()
        tab.ready(start, end)
        return False

    return probe


def test_period_buttons_pick_the_account_days(tab: Tab, day: Day, shared_desk: Desk) -> None:
    """Today, yesterday, this week and this month are the account's days; each shows the API's
    figures for that period; the choice survives a reload (it is in the address)."""
    page = tab.page
    page.goto("/stats")
    today = datetime.now(account_zone(shared_desk)).date()
    periods = _named_periods(today)
    tab.ready(*periods["today"])  # the default
    ui(page.get_by_test_id("period-today")).to_have_attribute("aria-pressed", "true")
    for name in ("yesterday", "week", "month", "today"):
        page.get_by_test_id(f"period-{name}").click()
        start, end = periods[name]
        tab.ready(start, end)
        ui(page.get_by_test_id(f"period-{name}")).to_have_attribute("aria-pressed", "true")
        shared_desk.wait(_same_as_api(tab, shared_desk, start, end), f"{name} figures", 20)
        href = page.get_by_test_id("csv-load").get_attribute("href") or ""
        query = urllib.parse.parse_qs(urllib.parse.urlsplit(href).query)
        assert query == {"from": [start.isoformat()], "to": [end.isoformat()], "lang": ["ru"]}
    page.get_by_test_id("period-week").click()
    tab.ready(*periods["week"])
    tab.shot("03-this-week")
    page.reload()
    tab.ready(*periods["week"])
    ui(page.get_by_test_id("period-week")).to_have_attribute("aria-pressed", "true")

    # A custom range that ends before it starts is refused in the page, before any request.
    page.get_by_test_id("period-custom").click()
    page.get_by_test_id("custom-from").fill("2026-03-10")
    page.get_by_test_id("custom-to").fill("2026-03-01")
    page.get_by_test_id("custom-show").click()
    ui(page.locator("#custom-error")).to_be_visible()
    tab.ready(*periods["week"])


def test_csv_links_download_each_report(tab: Tab, day: Day, shared_desk: Desk) -> None:
    """Each report's link downloads its CSV: the API's file name, a BOM, the staff names."""
    open_day(tab, day)
    page = tab.page
    for name in REPORTS:
        with page.expect_download() as info:
            page.get_by_test_id(f"csv-{name}").click()
        download = info.value
        expected = f"{name}-{day.start.isoformat()}-{day.end.isoformat()}.csv"
        assert download.suggested_filename == expected
        path = download.path()
        assert path is not None
        raw = Path(path).read_bytes()
        assert raw.startswith(b"\xef\xbb\xbf"), name
        text = raw.decode("utf-8-sig")
        if name == "load":
            assert text.splitlines()[1] == f"Всего новых обращений;{day.load['new_total']}"
        if name == "team":
            assert f"Ольга Кузнецова;{day.olga.id};3;" in text
            assert f"Пётр Васильев;{day.petr.id};2;" in text
        if name == "response":
            assert NA_RU in text
    # The same file straight from the API, as a link with the session cookie fetches it.
    href = page.get_by_test_id("csv-team").get_attribute("href") or ""
    resp = shared_desk.admin.get(href)
    assert resp.status == 200 and "Ольга Кузнецова" in resp.text, resp


def test_english(tab: Tab, day: Day) -> None:
    """The language switch: every label in English, the CSV links ask for English files; the
    two catalogues have the same keys."""
    open_day(tab, day)
    page = tab.page
    page.get_by_test_id("lang-switch").select_option("en")
    page.wait_for_load_state()
    tab.ready(day.start, day.end)
    assert page.locator("html").get_attribute("lang") == "en"
    ui(page.locator("h1")).to_have_text("Statistics")
    assert page.title() == "Statistics · Calls"
    assert NA_EN in tab.text("fig-response-first_response")
    assert NA_EN in tab.text("fig-sla-any_response_breached")
    assert NA_EN in tab.text("team-na")
    ui(page.locator("#h-load")).to_have_text("General load")
    ui(page.get_by_test_id("period-month")).to_have_text("This month")
    weekdays: list[str] = page.locator("#chart-weekday text.axis-label").evaluate_all(
        "labels => labels.map(l => l.textContent)"
    )
    assert [w for w in weekdays if not w.isdigit()] == [
        "Mon",
        "Tue",
        "Wed",
        "Thu",
        "Fri",
        "Sat",
        "Sun",
    ]
    assert "lang=en" in (page.get_by_test_id("csv-peak").get_attribute("href") or "")
    with page.expect_download() as info:
        page.get_by_test_id("csv-sla").click()
    path = info.value.path()
    assert path is not None
    assert Path(path).read_text("utf-8-sig").splitlines()[0] == "Figure,Value"
    missing = page.evaluate(
        """() => import('/static/stats-strings.js').then(({STRINGS}) => {
            const ru = Object.keys(STRINGS.ru), en = Object.keys(STRINGS.en);
            return [ru.filter(k => !en.includes(k)), en.filter(k => !ru.includes(k))];
        })"""
    )
    assert missing == [[], []]
    # Nothing on the page is a bare key or an empty label.
    body = page.locator("main").inner_text()
    assert "fig." not in body and "team." not in body and "period." not in body
    tab.shot("04-day-en")


def test_without_a_sign_in_the_page_goes_to_the_login(browser: Browser, shared_desk: Desk) -> None:
    context = browser.new_context(viewport=LAPTOP, base_url=shared_desk.service.base_url)
    context.set_default_timeout(UI_TIMEOUT_MS)
    try:
        page = context.new_page()
        page.goto("/stats?period=month")
        page.wait_for_url("**/login?next=*")
        next_ = urllib.parse.parse_qs(urllib.parse.urlsplit(page.url).query)["next"]
        assert next_ == ["/stats?period=month"]
    finally:
        context.close()


def test_a_refused_token_falls_back_to_the_session(browser: Browser, shared_desk: Desk) -> None:
    """A token the server refuses (revoked, say) is not a dead end: the page asks once more
    without it (the session cookie), then goes to the sign-in."""
    context = browser.new_context(viewport=LAPTOP, base_url=shared_desk.service.base_url)
    context.set_default_timeout(UI_TIMEOUT_MS)
    context.add_init_script("localStorage.setItem('callrouter.token', 'revoked-token');")
    asked: list[str | None] = []
    context.on(
        "request",
        lambda req: (
            asked.append(req.headers.get("authorization"))
            if "/api/v1/settings" in req.url
            else None
        ),
    )
    try:
        page = context.new_page()
        page.goto("/stats")
        page.wait_for_url("**/login?next=*")
        assert asked[:2] == ["Bearer revoked-token", None]
    finally:
        context.close()


def test_a_signed_in_staff_member_with_the_session_cookie(
    browser: Browser, day: Day, shared_desk: Desk
) -> None:
    """Signed in with email and password (the session cookie, no token in the browser): a
    staff member sees the reports with names from the staff directory, a CSV link downloads
    as a plain link, and "Sign out" ends the session."""
    desk = shared_desk
    email = f"manager{day.olga.id}@example.test"
    made = desk.admin.post("/api/v1/staff", {"full_name": "Мария Белова", "email": email})
    assert made.status == 201, made
    password = "correct horse battery"
    changed = desk.admin.patch(f"/api/v1/staff/{made.json['id']}", {"password": password})
    assert changed.status == 200, changed
    context = browser.new_context(
        viewport=LAPTOP, base_url=desk.service.base_url, accept_downloads=True, locale="ru-RU"
    )
    context.set_default_timeout(UI_TIMEOUT_MS)
    tab = Tab(context.new_page())
    try:
        signed_in = context.request.post(
            "/api/v1/auth/login", data={"email": email, "password": password}
        )
        assert signed_in.status == 200, signed_in.text()
        api_paths: list[tuple[str, str | None]] = []
        context.on(
            "request",
            lambda req: (
                api_paths.append((req.url, req.headers.get("authorization")))
                if "/api/v1/" in req.url
                else None
            ),
        )
        open_day(tab, day)
        page = tab.page
        assert api_paths and all(auth is None for _, auth in api_paths)  # the cookie only
        assert any("/api/v1/directory/staff" in url for url, _ in api_paths)
        for staff in (day.olga, day.petr):
            name = page.get_by_test_id(f"team-row-{staff.id}").locator('[data-col="name"]')
            ui(name).to_have_text(staff.full_name)
        ui(page.get_by_test_id("me-name")).to_have_text("Мария Белова")
        ui(page.locator("#nav-admin")).to_be_hidden()  # the admin pages are not hers
        with page.expect_download() as info:
            page.get_by_test_id("csv-team").click()
        download = info.value
        assert download.suggested_filename == (
            f"team-{day.start.isoformat()}-{day.end.isoformat()}.csv"
        )
        path = download.path()
        assert path is not None
        assert "Ольга Кузнецова;" in Path(path).read_text("utf-8-sig")
        tab.shot("06-signed-in-staff")

        page.get_by_role("button", name="Выйти").click()
        page.wait_for_url("**/login?next=*")
        gone = context.request.get("/api/v1/stats/load", headers={"X-Requested-With": "callrouter"})
        assert gone.status == 401
        page.goto("/stats")
        page.wait_for_url("**/login?next=*")
    finally:
        context.close()
    assert not tab.errors, tab.errors
