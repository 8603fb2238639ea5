"""The live wallboard page (API.md "Pages", SPEC R31) in a real browser, end to end.

Debian's chromium, driven by Playwright, opens `/wallboard?token=<admin>` on the shared service
at wall-screen size (1920×1080) while UIS notifications are posted to the webhook: a call rings,
is answered and ends, and the tiles and the staff table follow it live. A wall screen opens the
read-only link an admin made (`?link=`); names come from the staff directory; a large team's
table turns its pages. The page is Russian by default: tests reading English text open an
"en-US" browser. Screenshots of each step land in `test-artifacts/wallboard-*.png`. Other tests
share the service, so live figures are read as "what it was before, plus this call".
"""

from __future__ import annotations

import json
import re
import time
import urllib.parse
from collections.abc import Callable, Iterator
from datetime import datetime, timedelta
from pathlib import Path
from typing import TYPE_CHECKING, Any
from zoneinfo import ZoneInfo

import pytest

from callrouter.testing import uis_bodies as uis

if TYPE_CHECKING:
    from tests.e2e.conftest import Desk, Staff

pytestmark = [pytest.mark.e2e, pytest.mark.browser]

ROOT = Path(__file__).resolve().parents[2]
ARTIFACTS = ROOT / "test-artifacts"
MSK = ZoneInfo("Europe/Moscow")  # the default account time zone: notification_time is local
WALL = {"width": 1920, "height": 1080}
UI_TIMEOUT_MS = 10_000
# The shared service holds every test's staff: the table turns pages (`?rotate=2`), so a given
# member's row shows within a few turns.
TURNING_MS = 30_000

try:  # the `browser` fixture (e2e conftest) skips when Playwright is missing
    from playwright.sync_api import Browser, Page, Route, WebSocketRoute
    from playwright.sync_api import expect as ui
except ImportError:  # pragma: no cover - the dev extra installs it
    pass


class Wall:
    """One wallboard tab: the page, the WebSocket routes it opened (to cut them), its errors."""

    def __init__(self, page: Page) -> None:
        self.page = page
        self.sockets: list[WebSocketRoute] = []
        self.errors: list[str] = []
        page.on("pageerror", lambda exc: self.errors.append(str(exc)))
        page.route_web_socket(re.compile(r".*/api/v1/wallboard/events.*"), self._socket)

    def _socket(self, route: WebSocketRoute) -> None:
        route.connect_to_server()  # pass everything through, but keep a handle to cut it
        self.sockets.append(route)

    def text(self, testid: str) -> str:
        return self.page.get_by_test_id(testid).inner_text().strip()

    def shot(self, name: str) -> Path:
        ARTIFACTS.mkdir(exist_ok=True)
        path = ARTIFACTS / f"wallboard-{name}.png"
        self.page.screenshot(path=str(path))
        return path


@pytest.fixture
def wall(browser: Browser, desk: Desk) -> Iterator[Wall]:
    """A fresh browser profile at wall-screen size on the shared service, in English."""
    context = browser.new_context(viewport=WALL, base_url=desk.service.base_url, locale="en-US")
    context.set_default_timeout(UI_TIMEOUT_MS)
    tab = Wall(context.new_page())
    try:
        yield tab
    finally:
        context.close()
    assert not tab.errors, f"uncaught errors in the wallboard page: {tab.errors}"


def expect(resp: Any, status: int) -> Any:
    """The JSON of `resp`, after asserting its status."""
    assert resp.status == status, f"expected HTTP {status}, got {resp}"
    return resp.json


def _board(desk: Desk) -> dict[str, Any]:
    snapshot: dict[str, Any] = desk.admin.get("/api/v1/wallboard").json
    return snapshot


def _baseline(desk: Desk) -> dict[str, Any]:
    """The wallboard once earlier tests' calls have settled (or as it is after 10 s)."""
    deadline = time.monotonic() + 10
    snapshot = _board(desk)
    while (snapshot["ringing"] or snapshot["talking"]) and time.monotonic() < deadline:
        time.sleep(0.2)
        snapshot = _board(desk)
    return snapshot


def _today_start() -> datetime:
    """A start for a call of today whose bodies are all in the past by the time they are sent."""
    now = datetime.now(MSK).replace(tzinfo=None, microsecond=0)
    midnight = datetime.combine(now.date(), datetime.min.time())
    return max(now - timedelta(seconds=95), midnight + timedelta(seconds=1))


def _split(events: list[uis.Event], kind: str) -> tuple[list[uis.Event], list[uis.Event]]:
    for i, (_, doc) in enumerate(events):
        if doc["notification_name"] == uis.NAMES[kind]:
            return events[: i + 1], events[i + 1 :]
    raise AssertionError(f"no {kind} in the scenario")


def _console_open(wall: Wall, staff: Staff) -> Page:
    """Another tab holding `staff`'s live events open, as their console does: they are online."""
    tab = wall.page.context.new_page()
    tab.goto("/healthz")
    query = urllib.parse.urlencode({"token": staff.token})
    tab.evaluate(
        """(query) => new Promise((resolve, reject) => {
            const ws = new WebSocket(`ws://${location.host}/api/v1/events?${query}`);
            ws.onopen = () => { window.liveEvents = ws; resolve(); };
            ws.onerror = () => reject(new Error('live events refused'));
        })""",
        query,
    )
    return tab


def _wait_seconds(text: str) -> int:
    """ "1:05" → 65."""
    parts = [int(p) for p in text.split(":")]
    seconds = 0
    for p in parts:
        seconds = seconds * 60 + p
    return seconds


def test_sign_in_box_and_refused_token(wall: Wall, desk: Desk) -> None:
    """The token box (`?signin=token`) asks for a token; a refused token says so; a good one
    shows the board and is remembered by this browser."""
    page = wall.page
    page.goto("/wallboard?signin=token")
    ui(page.get_by_test_id("signin")).to_be_visible()
    ui(page.get_by_test_id("board")).to_be_hidden()
    page.locator("#signin-token").fill("not-a-token")
    page.locator("#signin-submit").click()
    ui(page.locator("#signin-error")).to_contain_text("refused")
    wall.shot("00-sign-in-refused")
    page.locator("#signin-token").fill(desk.service.admin_token)
    page.locator("#signin-submit").click()
    ui(page.get_by_test_id("board")).to_be_visible()
    ui(page.get_by_test_id("conn")).to_have_attribute("data-state", "live")
    page.goto("/wallboard")  # no token in the URL: the browser kept it
    ui(page.get_by_test_id("conn")).to_have_attribute("data-state", "live")
    page.locator("#signout").click()
    ui(page.get_by_test_id("signin")).to_be_visible()


def test_r31_wallboard_follows_a_call_live(wall: Wall, desk: Desk) -> None:
    """R31 on a wall screen: ring → one more call waiting, the wait ticking, the staff member
    ringing; answer → in conversation; end → answered today +1, with talk time. The stream is
    cut once and the page reconnects by itself."""
    page = wall.page
    anna = desk.staff("Анна Смирнова")
    console = _console_open(wall, anna)  # Anna is at her desk: free, then busy, then free
    base = _baseline(desk)
    # By the end of a whole run the shared service holds dozens of staff: the table turns its
    # pages, so Anna's row is looked for over a turn of them (busiest first: page 1 mostly).
    page.goto(f"/wallboard?token={urllib.parse.quote(desk.service.admin_token)}&rotate=2")
    ui(page.get_by_test_id("conn")).to_have_attribute("data-state", "live")
    row = page.locator(f'tr[data-staff-id="{anna.id}"]')

    def anna_shows(cell: Any, text: str) -> None:
        ui(cell).to_have_text(text, timeout=TURNING_MS)

    anna_shows(row.locator(".c-name"), "Анна Смирнова")  # from the directory
    anna_shows(row.locator(".state"), "free")
    ui(page.get_by_test_id("answered")).to_have_text(str(base["today"]["answered"]))
    ui(page.get_by_test_id("ringing")).to_have_text(str(base["ringing"]))
    assert len(page.locator("#chart svg rect.now-band").all()) == 1
    wall.shot("01-signed-in")

    call_id = desk.new_call_id()
    events = uis.incoming_answered(call_id, _today_start(), desk.new_phone(), anna.employee_id, 40)
    ring, rest = _split(events, "leg_start")
    answer, rest = _split(rest, "answer")

    desk.post_call(ring)
    ui(page.get_by_test_id("ringing")).to_have_text(str(base["ringing"] + 1))
    anna_shows(row.locator(".state"), "ringing")
    ui(page.get_by_test_id("staff-ringing")).not_to_have_text("0")
    ui(page.get_by_test_id("tile-ringing")).to_have_class(re.compile(r"\bon\b"))
    # The longest wait ticks on the screen, a second at a time.
    ui(page.get_by_test_id("longest-wait")).not_to_have_text("0:00")
    first = _wait_seconds(wall.text("longest-wait"))
    page.wait_for_timeout(2200)
    assert _wait_seconds(wall.text("longest-wait")) >= first + 2
    wall.shot("02-ringing")

    desk.post_call(answer)
    ui(page.get_by_test_id("talking")).to_have_text(str(base["talking"] + 1))
    ui(page.get_by_test_id("ringing")).to_have_text(str(base["ringing"]))
    anna_shows(row.locator(".state"), "talking")
    ui(page.get_by_test_id("staff-talking")).not_to_have_text("0")
    wall.shot("03-talking")

    # The stream breaks (a proxy restarts, the network blinks): the page says so and comes back.
    assert len(wall.sockets) == 1
    wall.sockets[0].close()
    ui(page.get_by_test_id("conn")).to_have_attribute("data-state", "offline")
    ui(page.get_by_test_id("conn")).to_contain_text("Reconnecting")
    ui(page.get_by_test_id("board")).to_have_class(re.compile(r"\bstale\b"))
    ui(page.get_by_test_id("conn")).to_have_attribute("data-state", "live", timeout=5000)
    assert len(wall.sockets) == 2

    desk.post_call(rest)
    ui(page.get_by_test_id("answered")).to_have_text(str(base["today"]["answered"] + 1))
    ui(page.get_by_test_id("talking")).to_have_text(str(base["talking"]))
    anna_shows(row.locator(".state"), "free")
    cells = row.locator("td")
    anna_shows(cells.nth(2), "1")  # answered
    anna_shows(cells.nth(3), "0")  # missed
    anna_shows(cells.nth(4), "0:40")  # talk time
    ui(page.get_by_test_id("service-level")).to_have_text(re.compile(r"^\d+%$"))
    ui(page.get_by_test_id("asa")).to_have_text(re.compile(r"^\d+:\d\d$"))
    # The hour chart: one more answered call in the hour (account time) the call started.
    [(end, end_doc)] = [e for e in events if e[1]["notification_name"] == uis.NAMES["call_end"]]
    total = end_doc["call_info"]["total_time_duration"]
    hour = min(events[0][0], end - timedelta(seconds=total)).hour
    answered_then = base["by_hour"][hour]["answered"] + 1
    bar = page.locator("#chart rect.bar-answered title", has_text=f"{hour:02d}:00 answered ")
    ui(bar).to_have_text(f"{hour:02d}:00 answered {answered_then}")
    wall.shot("04-answered")
    console.close()


def test_staff_token_shows_names_on_a_small_screen(browser: Browser, desk: Desk) -> None:
    """A staff token may show the wallboard too, with everyone's names (the directory is for
    staff as well); the layout still holds on a laptop screen."""
    anna = desk.staff("Анна Смирнова")
    context = browser.new_context(
        viewport={"width": 1366, "height": 768}, base_url=desk.service.base_url, locale="en-US"
    )
    context.set_default_timeout(UI_TIMEOUT_MS)
    try:
        page = context.new_page()
        errors: list[str] = []
        page.on("pageerror", lambda exc: errors.append(str(exc)))
        page.goto(f"/wallboard?token={urllib.parse.quote(anna.token)}&rotate=2")
        ui(page.get_by_test_id("conn")).to_have_attribute("data-state", "live")
        ui(page.locator(f'tr[data-staff-id="{anna.id}"] .c-name')).to_have_text(
            "Анна Смирнова", timeout=TURNING_MS
        )
        names = page.locator("#staff-rows .c-name").all_inner_texts()
        assert names and not [n for n in names if re.fullmatch(r"#\d+", n)], names
        ARTIFACTS.mkdir(exist_ok=True)
        page.screenshot(path=str(ARTIFACTS / "wallboard-05-staff-token-laptop.png"))
        assert not errors, errors
    finally:
        context.close()


def _busy_day(
    count: int = 30, inactive: frozenset[int] = frozenset()
) -> tuple[dict[str, Any], list[dict[str, Any]]]:
    """A busy afternoon: `count` staff in every state (those at the indexes in `inactive`
    deactivated, offline), calls waiting, a day of answered and missed calls per hour."""
    cycle = ["talking"] * 9 + ["ringing"] * 3 + ["free"] * 6 + ["offline"] * 12
    states = ["offline" if i in inactive else cycle[i % len(cycle)] for i in range(count)]
    staff = [
        {"id": 100 + i, "full_name": name, "active": i not in inactive}
        for i, name in enumerate(
            ["Александра Константиновна Преображенская"]
            + [f"{uis.operator_name(i)} {i}" for i in range(1, count)]
        )
    ]
    per_staff = [
        {
            "staff_id": s["id"],
            "state": state,
            "answered": (i * 7) % 23,
            "missed": i % 4,
            "talk_seconds": ((i * 7) % 23) * 173,
        }
        for i, (s, state) in enumerate(zip(staff, states, strict=True))
    ]
    shape = [0, 0, 0, 0, 0, 0, 0, 1, 4, 19, 31, 36, 28, 22, 33, 35, 29, 18, 9, 3, 1, 0, 0, 0]
    by_hour = [
        {"hour": h, "answered": n, "missed": (n * 3) // 20 + (1 if n > 30 else 0)}
        for h, n in enumerate(shape)
    ]
    snapshot = {
        "ringing": 4,
        "longest_wait_seconds": 83.4,
        "talking": states.count("talking"),
        "staff": {k: states.count(k) for k in ("free", "ringing", "talking", "offline")},
        "today": {
            "answered": sum(shape),
            "missed": sum(h["missed"] for h in by_hour),
            "service_level": 0.7342,
            "avg_answer_seconds": 17.6,
            "avg_talk_seconds": 214.3,
        },
        "per_staff": per_staff,
        "by_hour": by_hour,
        "seq": 4242,
    }
    return snapshot, staff


def _answer_with(body: Any) -> Callable[[Route], None]:
    def answer(route: Route) -> None:
        route.fulfill(json=body)

    return answer


def _stood_in(page: Page, snapshot: dict[str, Any], staff: list[dict[str, Any]]) -> None:
    """The API answers of a busy day stood in for (the page and its files still come from
    the service)."""
    api = {
        "/api/v1/wallboard": snapshot,
        "/api/v1/directory/staff": {"items": staff, "total": len(staff)},
        "/api/v1/settings": {"timezone": "Europe/Moscow", "service_level_seconds": 20},
    }
    for path, body in api.items():
        page.route(re.compile(rf".*{re.escape(path)}(\?.*)?$"), _answer_with(body))
    page.route_web_socket(
        re.compile(r".*/api/v1/wallboard/events.*"),
        lambda ws: ws.send(json.dumps({"type": "wallboard", **snapshot})),
    )


# Nothing cut off: no figure wider than its place, no tile or table taller than its own.
OVERFLOWING = """() => [
    ...[...document.querySelectorAll('.value, .staff-count, .tile h2, .staff-table th, .staff-table td')]
        .filter((el) => el.scrollWidth > el.clientWidth + 1),
    ...[...document.querySelectorAll('.tile, .panel, .table-wrap')]
        .filter((el) => el.scrollHeight > el.clientHeight + 1),
].map((el) => `${el.tagName}#${el.id}.${el.className}: ${el.textContent.trim()}`)"""


def _pages_seen(page: Page) -> list[list[int]]:
    """The staff ids on each page of the table, as the pages turn by themselves."""
    mark = page.get_by_test_id("staff-page")
    pages = int(mark.get_attribute("data-pages") or 1)
    seen: dict[int, list[int]] = {}
    deadline = time.monotonic() + pages * 4 + 10
    while len(seen) < pages and time.monotonic() < deadline:
        # The page number and its rows in one look: read apart, the page may turn in between.
        number, ids = page.evaluate(
            """() => [
                Number(document.querySelector('[data-testid="staff-page"]').dataset.page || 1),
                [...document.querySelectorAll("#staff-rows tr[data-staff-id]")].map(
                    (r) => Number(r.dataset.staffId)),
            ]"""
        )
        if number not in seen:
            seen[number] = ids
            assert page.evaluate(OVERFLOWING) == [], f"page {number} overflows"
        page.wait_for_timeout(250)
    assert sorted(seen) == list(range(1, pages + 1)), f"pages seen: {sorted(seen)} of {pages}"
    return [seen[n] for n in sorted(seen)]


@pytest.mark.parametrize(("locale", "talking"), [("en-US", "talking"), ("ru-RU", "разговор")])
def test_busy_day_fits_a_wall_screen(
    browser: Browser, desk: Desk, locale: str, talking: str
) -> None:
    """The layout with a busy day's figures (the API answers are stood in for), in English
    and in Russian (longer words): every figure fits its tile, the staff table shows what fits
    and turns pages for the rest, the chart draws both series."""
    snapshot, staff = _busy_day()
    context = browser.new_context(viewport=WALL, base_url=desk.service.base_url, locale=locale)
    context.set_default_timeout(UI_TIMEOUT_MS)
    try:
        page = context.new_page()
        errors: list[str] = []
        page.on("pageerror", lambda exc: errors.append(str(exc)))
        _stood_in(page, snapshot, staff)
        page.goto("/wallboard?token=stand-in&rotate=2")
        ui(page.get_by_test_id("conn")).to_have_attribute("data-state", "live")
        ui(page.get_by_test_id("answered")).to_have_text(str(snapshot["today"]["answered"]))
        ui(page.locator("#staff-rows tr").first.locator(".c-name")).not_to_have_text(
            re.compile(r"^#\d+$")
        )  # names came
        ARTIFACTS.mkdir(exist_ok=True)
        page.screenshot(path=str(ARTIFACTS / f"wallboard-06-busy-day-{locale}.png"))
        ui(page.get_by_test_id("service-level")).to_have_text("73%")
        ui(page.get_by_test_id("tile-sl")).to_have_class(re.compile(r"\bfair\b"))
        ui(page.get_by_test_id("tile-wait")).to_have_class(re.compile(r"\balert\b"))
        ui(page.get_by_test_id("avg-talk")).to_have_text("3:34")
        ui(page.get_by_test_id("staff-page")).to_have_text(re.compile(r"^1 / \d+$"))
        shown = page.locator("#staff-rows tr[data-staff-id]").count()
        pages = _pages_seen(page)
        assert shown >= 8 and len(pages[0]) == shown
        everyone = [i for ids in pages for i in ids]
        assert sorted(everyone) == sorted(s["id"] for s in staff)  # each once, none left out
        # Busiest first: the talking staff lead the table.
        first = page.locator(f'#staff-rows tr[data-staff-id="{pages[0][0]}"]')
        ui(first.locator(".state")).to_have_text(talking, timeout=UI_TIMEOUT_MS)
        assert page.locator("#chart rect.bar-answered").count() == sum(
            1 for h in snapshot["by_hour"] if h["answered"]
        )
        assert page.locator("#chart rect.bar-missed").count() == sum(
            1 for h in snapshot["by_hour"] if h["missed"]
        )
        assert page.evaluate(OVERFLOWING) == []
        assert page.evaluate("document.documentElement.scrollHeight") <= WALL["height"]
        assert not errors, errors
    finally:
        context.close()


def test_sixty_staff_turn_pages_without_the_deactivated(browser: Browser, desk: Desk) -> None:
    """A team of 60, 5 of them deactivated: compact rows, pages turning every `rotate`
    seconds, every active member on exactly one page, the deactivated on none (and not in the
    offline count), nothing cut off."""
    inactive = frozenset({3, 17, 29, 41, 58})
    snapshot, staff = _busy_day(60, inactive)
    active = [s["id"] for s in staff if s["active"]]
    gone = [s["id"] for s in staff if not s["active"]]
    context = browser.new_context(viewport=WALL, base_url=desk.service.base_url, locale="en-US")
    context.set_default_timeout(UI_TIMEOUT_MS)
    try:
        page = context.new_page()
        errors: list[str] = []
        page.on("pageerror", lambda exc: errors.append(str(exc)))
        _stood_in(page, snapshot, staff)
        page.goto("/wallboard?token=stand-in&rotate=2")
        ui(page.get_by_test_id("conn")).to_have_attribute("data-state", "live")
        ui(page.get_by_test_id("staff-page")).to_have_text(re.compile(r"^1 / [2-9]$"))
        assert "compact" in (page.locator(".staff-table").get_attribute("class") or "")
        ARTIFACTS.mkdir(exist_ok=True)
        page.screenshot(path=str(ARTIFACTS / "wallboard-07-sixty-staff-page-1.png"))
        pages = _pages_seen(page)
        page.screenshot(path=str(ARTIFACTS / "wallboard-08-sixty-staff-page-n.png"))
        everyone = [i for ids in pages for i in ids]
        assert sorted(everyone) == sorted(active), "each active member once"
        assert not set(everyone) & set(gone)
        assert len(pages[0]) >= 15  # compact rows: a good part of the team at once
        offline = snapshot["staff"]["offline"] - len(gone)  # the deactivated are offline
        ui(page.get_by_test_id("staff-offline")).to_have_text(str(offline))
        assert page.evaluate("document.documentElement.scrollHeight") <= WALL["height"]
        assert not errors, errors
    finally:
        context.close()


def test_read_only_link_shows_the_board_and_nothing_more(browser: Browser, desk: Desk) -> None:
    """The admin's read-only link (API.md "Additions"): the wall screen opens its URL and shows
    the live board with names; the secret goes to the WebSocket as `?link=` and is never kept
    in the browser; there is nothing to sign out of; revoking the link ends the board."""
    anna = desk.staff("Анна Смирнова")
    link = expect(desk.admin.post("/api/v1/wallboard/links", {"label": "Зал 1"}), 201)
    url = urllib.parse.urlsplit(link["url"])
    assert url.path == "/wallboard" and url.query.startswith("link=")
    secret = urllib.parse.parse_qs(url.query)["link"][0]
    context = browser.new_context(viewport=WALL, base_url=desk.service.base_url, locale="ru-RU")
    context.set_default_timeout(UI_TIMEOUT_MS)
    try:
        page = context.new_page()
        errors: list[str] = []
        page.on("pageerror", lambda exc: errors.append(str(exc)))
        sockets: list[str] = []
        page.on("websocket", lambda ws: sockets.append(ws.url))
        page.goto(f"{url.path}?{url.query}&rotate=2")
        ui(page.get_by_test_id("conn")).to_have_attribute("data-state", "live")
        ui(page.locator(f'tr[data-staff-id="{anna.id}"] .c-name')).to_have_text(
            "Анна Смирнова", timeout=TURNING_MS
        )
        assert sockets and all(f"link={secret}" in u for u in sockets), sockets
        stored = page.evaluate("JSON.stringify(Object.entries(localStorage))")
        assert secret not in stored, stored
        ui(page.locator("#signout")).to_be_hidden()
        ui(page.get_by_test_id("conn")).to_have_text("В эфире")
        ARTIFACTS.mkdir(exist_ok=True)
        page.screenshot(path=str(ARTIFACTS / "wallboard-09-read-only-link-ru.png"))

        expect(desk.admin.request("DELETE", f"/api/v1/wallboard/links/{link['id']}"), 204)
        ui(page.get_by_test_id("signin")).to_be_visible(timeout=20_000)  # the socket is closed
        ui(page.locator("#signin-error")).to_contain_text("ссылка на табло больше не действует")
        assert not errors, errors
    finally:
        context.close()


def test_russian_by_default_and_signed_in_by_session(browser: Browser, desk: Desk) -> None:
    """A Russian browser gets the Russian board; a signed-in staff member sees it by the
    session cookie alone; without a session or a token the page goes to `/login`."""
    vera = desk.staff("Вера Соколова")
    email = f"{vera.id}-{int(time.time())}@example.test"
    expect(
        desk.admin.patch(f"/api/v1/staff/{vera.id}", {"email": email, "password": "пароль-123"}),
        200,
    )
    context = browser.new_context(viewport=WALL, base_url=desk.service.base_url, locale="ru-RU")
    context.set_default_timeout(UI_TIMEOUT_MS)
    try:
        page = context.new_page()
        errors: list[str] = []
        page.on("pageerror", lambda exc: errors.append(str(exc)))
        page.goto("/wallboard")
        page.wait_for_url(re.compile(r"/login\?next=%2Fwallboard$"))
        answer = page.request.post(
            "/api/v1/auth/login", data={"email": email, "password": "пароль-123"}
        )
        assert answer.status == 200, answer.text()
        page.goto("/wallboard?rotate=2")
        ui(page.get_by_test_id("conn")).to_have_attribute("data-state", "live")
        assert page.evaluate("document.documentElement.lang") == "ru"
        ui(page.locator("#tile-ringing h2")).to_have_text("Ждут ответа")
        ui(page.locator("#tile-missed h2")).to_have_text("Пропущено сегодня")
        ui(page.locator(".panel-staff h2 span").first).to_have_text("Сотрудники сегодня")
        row = page.locator(f'tr[data-staff-id="{vera.id}"]')
        ui(row.locator(".c-name")).to_have_text("Вера Соколова", timeout=TURNING_MS)
        ui(row.locator(".state")).to_have_text(
            re.compile(r"^(свободен|не в сети|звонок|разговор)$"), timeout=TURNING_MS
        )
        ui(page.locator("#conn-text")).to_have_text("В эфире")
        page.screenshot(path=str(ARTIFACTS / "wallboard-10-session-ru.png"))
        assert page.evaluate(OVERFLOWING) == []  # the longer Russian words fit too
        page.locator("#lang-slot").get_by_test_id("lang-switch").select_option("en")
        ui(page.locator("#tile-ringing h2")).to_have_text("Calls waiting")
        with page.expect_request("**/api/v1/auth/logout") as logout:
            page.locator("#signout").click()
        assert logout.value.headers["x-requested-with"] == "callrouter"
        page.wait_for_url(re.compile(r"/login\?next="))
        assert not errors, errors
    finally:
        context.close()
