"""`GET /api/docs` in a real browser (issue 10): Swagger UI, served from the package with no
internet, renders the generated document — every tag and the admin's endpoints."""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING, Any

import pytest

if TYPE_CHECKING:
    from tests.e2e.conftest import ServiceProcess

pytestmark = [pytest.mark.e2e, pytest.mark.browser]

ARTIFACTS = Path(__file__).resolve().parents[2] / "test-artifacts"

try:  # the `browser` fixture (e2e conftest) skips when Playwright is missing
    from playwright.sync_api import expect as ui
except ImportError:  # pragma: no cover - the dev extra installs it
    pass


def test_the_docs_page_renders_the_document_offline(browser: Any, service: ServiceProcess) -> None:
    context = browser.new_context(
        viewport={"width": 1280, "height": 900}, base_url=service.base_url
    )
    context.set_default_timeout(15_000)
    outside: list[str] = []
    # Nothing may come from elsewhere: this network has no internet, nor will many customers'.
    context.route(
        lambda url: not url.startswith(service.base_url),
        lambda route: (outside.append(route.request.url), route.abort()),
    )
    try:
        page = context.new_page()
        errors: list[str] = []
        page.on("pageerror", lambda exc: errors.append(str(exc)))
        page.goto("/api/docs")
        ui(page.locator(".info .title")).to_contain_text("callrouter")
        for tag in ("admin", "webhook", "users", "calls", "cases", "statistics", "wallboard"):
            ui(page.locator(f"#operations-tag-{tag}")).to_be_visible()
        ui(page.locator("#operations-admin-put_integration")).to_be_visible()
        ui(page.get_by_role("button", name="Authorize")).to_be_visible()
        ARTIFACTS.mkdir(exist_ok=True)
        page.screenshot(path=str(ARTIFACTS / "api-docs.png"), full_page=False)
        assert not errors, errors
        assert outside == []
    finally:
        context.close()
