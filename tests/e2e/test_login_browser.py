"""The sign-in page (`GET /login`, issue 9) in a real browser, on the shared service.

Debian's chromium, driven by Playwright: a staff member signs in with email and password and
lands on the console; the admin signs in with the admin token and lands on /admin; a wrong
password, a deactivated account and too many attempts are told in words; Russian is the
default and English comes by the switch or the browser's language; `?next=` goes back only
to a path of this site. Screenshots land in `test-artifacts/login-*.png`.
"""

from __future__ import annotations

import json
import re
import urllib.parse
from collections.abc import Iterator
from pathlib import Path
from typing import TYPE_CHECKING, Any

import pytest

if TYPE_CHECKING:
    from tests.e2e.conftest import Desk

pytestmark = [pytest.mark.e2e, pytest.mark.browser]

ROOT = Path(__file__).resolve().parents[2]
ARTIFACTS = ROOT / "test-artifacts"
UI_TIMEOUT_MS = 10_000
PASSWORD = "пароль-для-входа-1"

try:  # the `browser` fixture (e2e conftest) skips when Playwright is missing
    from playwright.sync_api import Browser, BrowserContext, Page, Route
    from playwright.sync_api import expect as ui
except ImportError:  # pragma: no cover - the dev extra installs it
    pass


class Tabs:
    """Fresh browser profiles on the shared service; the sign-in page's script errors."""

    def __init__(self, browser: Browser, base_url: str) -> None:
        self.browser = browser
        self.base_url = base_url
        self.contexts: list[BrowserContext] = []
        self.errors: list[str] = []

    def open(self, locale: str = "ru-RU") -> Page:
        context = self.browser.new_context(
            base_url=self.base_url, locale=locale, viewport={"width": 1280, "height": 800}
        )
        context.set_default_timeout(UI_TIMEOUT_MS)
        self.contexts.append(context)
        page = context.new_page()
        page.on(
            "pageerror",
            lambda exc: self.errors.append(str(exc)) if "/login" in page.url else None,
        )
        return page

    def close(self) -> None:
        for context in self.contexts:
            context.close()


@pytest.fixture
def tabs(browser: Browser, shared_desk: Desk) -> Iterator[Tabs]:
    made = Tabs(browser, shared_desk.service.base_url)
    try:
        yield made
    finally:
        made.close()
    assert not made.errors, f"uncaught errors in the sign-in page: {made.errors}"


def shot(page: Page, name: str) -> Path:
    ARTIFACTS.mkdir(exist_ok=True)
    path = ARTIFACTS / f"login-{name}.png"
    page.screenshot(path=str(path))
    return path


def member(desk: Desk, name: str, **change: Any) -> dict[str, Any]:
    """A staff member with a password (and `change` applied), and their email."""
    staff = desk.staff(name, operators=0)
    email = f"login{staff.id}@example.test"
    body = {"email": email, "password": PASSWORD, **change}
    resp = desk.admin.patch(f"/api/v1/staff/{staff.id}", body)
    assert resp.status == 200, resp
    return {"id": staff.id, "email": email, "full_name": name}


def sign_in(page: Page, email: str, password: str) -> None:
    page.get_by_test_id("email").fill(email)
    page.get_by_test_id("password").fill(password)
    page.get_by_test_id("submit").click()


def path_of(page: Page) -> str:
    """The page's path, without the query and the hash (the console sets `#/cases` as it
    loads, so the hash depends on when one looks)."""
    return urllib.parse.urlsplit(page.url).path


def me(page: Page) -> dict[str, Any]:
    """`GET /api/v1/me` from the page, with its cookie (as the other pages ask)."""
    result: dict[str, Any] = page.evaluate(
        """async () => {
            const resp = await fetch('/api/v1/me', {credentials: 'same-origin'});
            return {status: resp.status, body: await resp.json()};
        }"""
    )
    return result


def test_staff_sign_in_in_russian(tabs: Tabs, shared_desk: Desk) -> None:
    anna = member(shared_desk, "Анна Входова")
    page = tabs.open()
    page.goto("/login")
    ui(page.get_by_role("heading", name="Вход")).to_be_visible()
    ui(page).to_have_title("Вход · callrouter")
    ui(page.get_by_test_id("submit")).to_have_text("Войти")
    ui(page.get_by_test_id("use-token")).to_have_text("Войти с токеном администратора")
    shot(page, "ru")

    page.get_by_test_id("submit").click()  # nothing typed
    ui(page.get_by_test_id("error")).to_have_text("Введите почту и пароль.")

    sign_in(page, anna["email"], "не тот пароль")
    ui(page.get_by_test_id("error")).to_have_text("Неверная почта или пароль.")
    assert path_of(page) == "/login"
    shot(page, "wrong-password")

    sign_in(page, anna["email"].upper(), PASSWORD)
    page.wait_for_url(lambda url: not url.endswith("/login"))
    assert path_of(page) == "/"
    answer = me(page)
    assert answer["status"] == 200
    assert answer["body"] == {
        "staff_id": anna["id"],
        "full_name": "Анна Входова",
        "email": anna["email"],
        "role": "staff",
    }
    [cookie] = [c for c in page.context.cookies() if c["name"] == "callrouter_session"]
    assert cookie["httpOnly"] and cookie["sameSite"] == "Strict" and cookie["path"] == "/"
    assert "callrouter_session" not in page.evaluate("document.cookie")  # HttpOnly
    page.wait_for_load_state("networkidle")
    shot(page, "staff-landed")


def test_admin_token_sign_in(tabs: Tabs, shared_desk: Desk) -> None:
    page = tabs.open()
    page.goto("/login")
    page.get_by_test_id("use-token").click()
    ui(page.get_by_test_id("token-form")).to_be_visible()
    ui(page.get_by_test_id("password-form")).to_be_hidden()
    ui(page.get_by_role("heading", name="Вход администратора")).to_be_visible()
    page.get_by_test_id("admin-token").fill("not-the-admin-token")
    page.get_by_test_id("token-submit").click()
    ui(page.get_by_test_id("token-error")).to_contain_text("Это не токен администратора")
    shot(page, "admin-token-wrong")

    page.get_by_test_id("admin-token").fill(shared_desk.service.admin_token)
    page.get_by_test_id("token-submit").click()
    page.wait_for_url("**/admin")
    answer = me(page)
    assert answer["body"] == {"staff_id": None, "full_name": None, "email": None, "role": "admin"}
    page.wait_for_load_state("networkidle")
    shot(page, "admin-landed")

    # Back to email and password.
    page = tabs.open()
    page.goto("/login")
    page.get_by_test_id("use-token").click()
    page.get_by_test_id("use-password").click()
    ui(page.get_by_test_id("password-form")).to_be_visible()


def test_an_admin_member_lands_on_admin_and_next_is_kept_on_site(
    tabs: Tabs, shared_desk: Desk
) -> None:
    boss = member(shared_desk, "Борис Админов", role="admin")
    page = tabs.open()
    page.goto("/login")
    sign_in(page, boss["email"], PASSWORD)
    page.wait_for_url("**/admin")
    assert me(page)["body"]["role"] == "admin"

    anna = member(shared_desk, "Анна Далее")
    page = tabs.open()
    page.goto("/login?next=%2Fstats%3Ffrom%3D2026-11-01")
    sign_in(page, anna["email"], PASSWORD)
    page.wait_for_url("**/stats?from=2026-11-01")

    for evil in ("//evil.example/x", "https://evil.example/", "/\\evil.example", "/login"):
        page = tabs.open()
        page.goto("/login?next=" + urllib.parse.quote(evil, safe=""))
        sign_in(page, anna["email"], PASSWORD)
        page.wait_for_url(lambda url: "/login" not in url)
        assert page.url == shared_desk.service.base_url + "/", evil


def test_deactivated_and_too_many_attempts_in_words(tabs: Tabs, shared_desk: Desk) -> None:
    gone = member(shared_desk, "Олег Отключённый", active=False)
    page = tabs.open()
    page.goto("/login")
    sign_in(page, gone["email"], PASSWORD)
    ui(page.get_by_test_id("error")).to_have_text(
        "Эта учётная запись отключена. Обратитесь к администратору."
    )
    shot(page, "deactivated")

    # The service's 429 (after 5 failures for an email, 20 from an address) is answered here
    # by the browser itself: the shared service's counters stay for the other tests.
    def throttled(route: Route) -> None:
        route.fulfill(
            status=429,
            headers={"Retry-After": "840", "Content-Type": "application/json"},
            body=json.dumps({"error": {"code": "too_many_attempts", "message": "wait"}}),
        )

    page.route("**/api/v1/auth/login", throttled)
    sign_in(page, "someone@example.test", "guess")
    ui(page.get_by_test_id("error")).to_have_text(
        "Слишком много неудачных попыток входа. Попробуйте снова через 14 мин."
    )
    ui(page.get_by_test_id("submit")).to_be_disabled()
    shot(page, "throttled")


def test_english_by_the_switch_and_by_the_browser(tabs: Tabs, shared_desk: Desk) -> None:
    page = tabs.open()
    page.goto("/login")
    ui(page.get_by_role("heading", name="Вход")).to_be_visible()
    page.get_by_test_id("lang-switch").select_option("en")
    ui(page.get_by_role("heading", name="Sign in")).to_be_visible()  # reloaded in English
    ui(page).to_have_title("Sign in · callrouter")
    ui(page.get_by_test_id("use-token")).to_have_text("Sign in with the admin token")
    sign_in(page, "nobody@example.test", "wrong password")
    ui(page.get_by_test_id("error")).to_have_text("Wrong email or password.")
    shot(page, "en-wrong-password")
    page.get_by_test_id("use-token").click()
    ui(page.get_by_role("heading", name="Admin sign-in")).to_be_visible()
    shot(page, "en-admin-token")

    page = tabs.open(locale="en-US")
    page.goto("/login")
    ui(page.get_by_role("heading", name="Sign in")).to_be_visible()
    ui(page.get_by_test_id("email")).to_have_attribute("placeholder", "name@company.com")
    page.get_by_test_id("submit").click()
    ui(page.get_by_test_id("error")).to_have_text("Enter your email and password.")


def test_every_string_has_both_languages() -> None:
    """The page's catalogue: the same keys in Russian and English, none empty."""
    source = (ROOT / "callrouter" / "web" / "login.strings.js").read_text()
    ru, en = source.split("\n  en: {", 1)
    keys = [_keys(ru), _keys(en)]
    assert keys[0] == keys[1] and len(keys[0]) > 20
    page = (ROOT / "callrouter" / "web" / "login.html").read_text()
    used = set(re.findall(r'data-i18n(?:-[a-z]+)?="([^"]+)"', page))
    assert used <= keys[0], used - keys[0]


def _keys(block: str) -> set[str]:
    return set(re.findall(r"^\s+'?([\w.]+)'?: '", block, re.MULTILINE))
