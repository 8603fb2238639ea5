"""The live wallboard page (API.md "Pages", SPEC R31) in a real browser, end to end.

Debian's chromium, driven by Playwright, opens `/wallboard?token=<admin>` on the shared service
at wall-screen size (1920×1080) while UIS notifications are posted to the webhook: a call rings,
is answered and ends, and the tiles and the staff table follow it live. Screenshots of each step
land in `test-artifacts/wallboard-*.png`. Other tests share the service, so live figures are
read as "what it was before, plus this call".
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
    """A fresh browser profile at wall-screen size on the shared service."""
    context = browser.new_context(viewport=WALL, base_url=desk.service.base_url)
    context.set_default_timeout(UI_TIMEOUT_MS)
    tab = Wall(context.new_page())
    try:
        yield tab
    finally:
        context.close()
    assert not tab.errors, f"uncaught errors in the wallboard page: {tab.errors}"


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
    """Without a token the page asks for one; a refused token says so; a good one shows the
    board and is remembered by this browser."""
    page = wall.page
    page.goto("/wallboard")
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
    page.goto(f"/wallboard?token={urllib.parse.quote(desk.service.admin_token)}")
    ui(page.get_by_test_id("conn")).to_have_attribute("data-state", "live")
    row = page.locator(f'tr[data-staff-id="{anna.id}"]')
    ui(row).to_contain_text("Анна Смирнова")  # the admin token shows names
    ui(row.locator(".state")).to_have_text("free")
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
    ui(row.locator(".state")).to_have_text("ringing")
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
    ui(row.locator(".state")).to_have_text("talking")
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
    ui(row.locator(".state")).to_have_text("free")
    cells = row.locator("td")
    ui(cells.nth(2)).to_have_text("1")  # answered
    ui(cells.nth(3)).to_have_text("0")  # missed
    ui(cells.nth(4)).to_have_text("0:40")  # talk time
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


def test_staff_token_shows_ids_on_a_small_screen(browser: Browser, desk: Desk) -> None:
    """A staff token may show the wallboard too (no names: those are the admin's); the layout
    still holds on a laptop screen."""
    anna = desk.staff("Анна Смирнова")
    context = browser.new_context(
        viewport={"width": 1366, "height": 768}, base_url=desk.service.base_url
    )
    context.set_default_timeout(UI_TIMEOUT_MS)
    try:
        page = context.new_page()
        errors: list[str] = []
        page.on("pageerror", lambda exc: errors.append(str(exc)))
        page.goto(f"/wallboard?token={urllib.parse.quote(anna.token)}")
        ui(page.get_by_test_id("conn")).to_have_attribute("data-state", "live")
        ui(page.locator("#staff-rows tr").first).to_contain_text("Staff #")
        ARTIFACTS.mkdir(exist_ok=True)
        page.screenshot(path=str(ARTIFACTS / "wallboard-05-staff-token-laptop.png"))
        assert not errors, errors
    finally:
        context.close()


def _busy_day() -> tuple[dict[str, Any], list[dict[str, Any]]]:
    """A busy afternoon: 30 staff in every state, calls waiting, a day of answered and missed
    calls per hour."""
    states = ["talking"] * 9 + ["ringing"] * 3 + ["free"] * 6 + ["offline"] * 12
    staff = [
        {"id": 100 + i, "full_name": name, "email": f"s{i}@example.test"}
        for i, name in enumerate(
            ["Александра Константиновна Преображенская"]
            + [f"{uis.operator_name(i)} {i}" for i in range(1, 30)]
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
        "talking": 9,
        "staff": {"free": 6, "ringing": 3, "talking": 9, "offline": 12},
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


def test_busy_day_fits_a_wall_screen(browser: Browser, desk: Desk) -> None:
    """The layout with a busy day's figures (the API answers are stood in for; the page and
    its files come from the service): every figure fits its tile, the staff table shows what
    fits and counts the rest, the chart draws both series."""
    snapshot, staff = _busy_day()
    context = browser.new_context(viewport=WALL, base_url=desk.service.base_url)
    context.set_default_timeout(UI_TIMEOUT_MS)
    api = {
        "/api/v1/wallboard": snapshot,
        "/api/v1/staff": {"items": staff, "total": len(staff)},
        "/api/v1/settings": {"timezone": "Europe/Moscow", "service_level_seconds": 20},
    }
    try:
        page = context.new_page()
        errors: list[str] = []
        page.on("pageerror", lambda exc: errors.append(str(exc)))
        for path, body in api.items():
            page.route(re.compile(rf".*{re.escape(path)}(\?.*)?$"), _answer_with(body))
        page.route_web_socket(
            re.compile(r".*/api/v1/wallboard/events.*"),
            lambda ws: ws.send(json.dumps({"type": "wallboard", **snapshot})),
        )
        page.goto("/wallboard?token=stand-in")
        ui(page.get_by_test_id("conn")).to_have_attribute("data-state", "live")
        ui(page.get_by_test_id("answered")).to_have_text(str(snapshot["today"]["answered"]))
        ui(page.locator("#staff-rows tr").first).not_to_contain_text("Staff #")  # names came
        ARTIFACTS.mkdir(exist_ok=True)
        page.screenshot(path=str(ARTIFACTS / "wallboard-06-busy-day.png"))
        ui(page.get_by_test_id("service-level")).to_have_text("73%")
        ui(page.get_by_test_id("tile-sl")).to_have_class(re.compile(r"\bfair\b"))
        ui(page.get_by_test_id("tile-wait")).to_have_class(re.compile(r"\balert\b"))
        ui(page.get_by_test_id("avg-talk")).to_have_text("3:34")
        ui(page.locator("#staff-rows tr.more")).to_have_text(re.compile(r"^\+ \d+ more$"))
        shown = page.locator("#staff-rows tr[data-staff-id]").count()
        more = int(page.locator("#staff-rows tr.more").inner_text().split()[1])
        assert shown >= 8 and shown + more == len(staff)
        # Busiest first: the talking staff lead the table.
        ui(page.locator("#staff-rows tr").first.locator(".state")).to_have_text("talking")
        assert page.locator("#chart rect.bar-answered").count() == sum(
            1 for h in snapshot["by_hour"] if h["answered"]
        )
        assert page.locator("#chart rect.bar-missed").count() == sum(
            1 for h in snapshot["by_hour"] if h["missed"]
        )
        # Nothing cut off: no figure wider than its place, no tile or table taller than its own.
        overflowing = page.evaluate(
            """() => [
                ...[...document.querySelectorAll('.value, .staff-count, .tile h2, .staff-table td')]
                    .filter((el) => el.scrollWidth > el.clientWidth + 1),
                ...[...document.querySelectorAll('.tile, .panel, .table-wrap')]
                    .filter((el) => el.scrollHeight > el.clientHeight + 1),
            ].map((el) => `${el.tagName}#${el.id}.${el.className}: ${el.textContent.trim()}`)"""
        )
        assert overflowing == [], overflowing
        assert page.evaluate("document.documentElement.scrollHeight") <= WALL["height"]
        assert not errors, errors
    finally:
        context.close()
