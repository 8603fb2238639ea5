"""The admin page's smart-routing section (issue 11 part 1) in a real browser.

On the service of test_routing_e2e ("routing", started once for the session): the admin turns
routing on with a fallback branch, sees the URL to put into UIS, types an operator's phones,
and gets a bad branch number explained in words; then the page in English. The route URL it
shows is asked like UIS asks it, and rings the phones typed. Screenshots:
`test-artifacts/admin-routing-*.png`.
"""

from __future__ import annotations

import asyncio
import json
import random
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import TYPE_CHECKING, Any

import aiohttp
import pytest

from callrouter.testing.uis_scenario import ask_route, fields

if TYPE_CHECKING:
    from tests.e2e.conftest import Desk, Launcher

pytestmark = [pytest.mark.e2e, pytest.mark.browser]

ARTIFACTS = Path(__file__).resolve().parents[2] / "test-artifacts"
LAPTOP = {"width": 1366, "height": 900}
TOKEN_KEY = "callrouter.admin_token"

try:  # the `browser` fixture skips when Playwright is missing
    from playwright.sync_api import expect as ui
except ImportError:  # pragma: no cover - the dev extra installs it
    pass


@pytest.fixture(scope="module")
def routing_desk(launcher: Launcher) -> Desk:
    return launcher.desk("routing")


def _page(browser: Any, desk: Desk, locale: str) -> Any:
    context = browser.new_context(viewport=LAPTOP, base_url=desk.service.base_url, locale=locale)
    context.set_default_timeout(10_000)
    token = json.dumps(desk.service.admin_token)
    context.add_init_script(f"localStorage.setItem({json.dumps(TOKEN_KEY)}, {token})")
    page = context.new_page()
    errors: list[str] = []
    page.on("pageerror", lambda exc: errors.append(str(exc)))
    page.errors = errors
    return page


def _shot(page: Any, name: str) -> None:
    ARTIFACTS.mkdir(exist_ok=True)
    section = page.get_by_test_id("routing")
    section.evaluate("(node) => node.scrollIntoView({block: 'start'})")
    page.screenshot(path=str(ARTIFACTS / f"admin-routing-{name}.png"))


def test_the_admin_sets_up_routing_from_the_page(browser: Any, routing_desk: Desk) -> None:
    desk = routing_desk
    olga = desk.staff("Ольга Маршрутова", operators=0)
    # An employee id of its own: this module's Desk counts ids from where test_routing_e2e's did.
    employee = random.randrange(10**8, 10**9)
    desk.admin.put(f"/api/v1/operators/{employee}", {"staff_id": olga.id})
    desk.admin.put("/api/v1/routing", {"enabled": False, "fallback_code": 1})
    page = _page(browser, desk, "ru-RU")
    page.goto("/admin#routing")
    section = page.get_by_test_id("routing")
    ui(page.get_by_test_id("routing-state")).to_have_text("Выключена")
    ui(page.get_by_test_id("routing-url")).to_have_value(
        f"{desk.service.base_url}{desk.webhook_path}/route"
    )
    ui(page.get_by_test_id("routing-view")).to_contain_text("Загружено клиентов")

    # A branch number out of range is explained under the field; nothing is saved.
    page.fill("#routing-fallback", "5000")
    section.get_by_role("button", name="Сохранить").first.click()
    ui(section.locator('.field-error[data-for="fallback_code"]')).to_have_text(
        "Введите целое число от 0 до 1000."
    )
    _shot(page, "error")
    page.fill("#routing-fallback", "4")
    page.check("#routing-enabled")
    section.get_by_role("button", name="Сохранить").first.click()
    ui(page.get_by_test_id("routing-state")).to_have_text("Включена")
    assert desk.admin.get("/api/v1/routing").json["fallback_code"] == 4

    # Olga's operator row: her phones, typed as people type them.
    row = page.locator(f'tr[data-employee="{employee}"]')
    row.locator("input").fill("+7 (495) 200-00-02, 8 495 200 00 03")
    row.get_by_role("button", name="Сохранить").click()
    ui(row.locator(".form-status")).to_have_text("Сохранено")
    operator = desk.admin.get("/api/v1/operators?limit=500").json["items"]
    [mine] = [o for o in operator if o["employee_id"] == employee]
    assert mine["phones"] == ["+7 (495) 200-00-02", "8 495 200 00 03"]
    _shot(page, "ru")
    assert page.errors == []

    # UIS asks the URL the page shows: an unknown caller goes on with branch 4.
    url = page.get_by_test_id("routing-url").input_value()

    async def ask() -> Any:
        async with aiohttp.ClientSession() as session:
            return await ask_route(session, url, fields(desk.new_phone(), "74950000000"))

    with ThreadPoolExecutor(1) as pool:  # Playwright's sync API holds this thread's loop
        assert pool.submit(asyncio.run, ask()).result().returned_code == 4

    english = _page(browser, desk, "en-GB")
    english.goto("/admin#routing")  # the browser's language: English
    ui(english.get_by_test_id("routing-state")).to_have_text("On")
    ui(english.get_by_test_id("routing")).to_contain_text("Smart routing")
    ui(english.get_by_test_id("routing")).to_contain_text("Operator phones")
    _shot(english, "en")
    assert english.errors == []

    # The statistics page shows the period's routed calls beside the six reports.
    stats = browser.new_context(viewport=LAPTOP, base_url=desk.service.base_url, locale="ru-RU")
    stats.add_init_script(f"localStorage.setItem('callrouter.token', {json.dumps(olga.token)})")
    page = stats.new_page()
    page.goto("/stats")
    panel = page.get_by_test_id("report-routing")
    ui(panel).to_be_visible()
    ui(panel).to_contain_text("Умная маршрутизация")
    today = desk.admin.get("/api/v1/routing/stats").json
    ui(page.get_by_test_id("fig-routing-routed")).to_have_attribute(
        "data-value", str(today["routed"])
    )
    panel.evaluate("(node) => node.scrollIntoView({block: 'start'})")
    page.screenshot(path=str(ARTIFACTS / "stats-routing.png"))
