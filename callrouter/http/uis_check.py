"""The admin page's UIS helpers: checking the API key against UIS, and the six notifications
of the guide to set up in UIS (issue 9).

`POST /api/v1/integrations/uis/check` asks the UIS Call API for `list.calls` — it starts no
call, but needs the same key, IP allow list and URL as a click-to-call (decisions.md) — and
answers 200 with the verdict in words: UIS's refusals and transport problems are findings of
the check, not errors of this endpoint.
"""

from __future__ import annotations

from typing import Any
from urllib.parse import urlsplit

from aiohttp import web
from yarl import URL

from callrouter.callapi import CallApiClient, CallApiError, admin_message, refused_ip
from callrouter.domain.account import DEFAULT_CALL_API_URL
from callrouter.domain.templates import GUIDE_ORDER, NAMES, template_text
from callrouter.http.errors import conflict, unprocessable
from callrouter.http.keys import DB, HTTP_CLIENT
from callrouter.http.operation import operation
from callrouter.http.render import page
from callrouter.http.schemas import Page, UisCheck, UisCheckIn, UisNotificationOut
from callrouter.storage import directory

routes = web.RouteTableDef()

# The admin waits for the answer with the page open; UIS answers in well under a second.
CHECK_TIMEOUT = 10.0


@routes.post("/api/v1/integrations/uis/check")
@operation(auth="admin", tag="admin", body=UisCheckIn, answer=UisCheck, errors=(409, 422))
async def check_uis(request: web.Request, body: UisCheckIn) -> dict[str, Any]:
    """Check the UIS API key from this server, without placing a call

    Fields left out of the body are taken from the saved integration (409
    `integration_not_configured` when there is none to take them from). `ok` false comes with
    UIS's mnemonic as `code` and a `message` saying what to fix; `ip` is the address UIS saw
    when it refused it (`ip_not_whitelisted`)."""
    async with request.app[DB].sessions() as session:
        saved = (await directory.load_account(session)).integration
    api_key, number, url = body.api_key, body.virtual_phone_number, body.call_api_url
    if saved is not None:
        api_key = api_key or saved.api_key
        number = number or saved.virtual_phone_number
        url = url or saved.call_api_url
    url = url or DEFAULT_CALL_API_URL
    if not api_key or not number:
        raise conflict(
            "integration_not_configured",
            "Nothing to check yet: give the API key and the virtual phone number, or save the "
            "integration first.",
        )
    if not _http_url(url):
        raise unprocessable("invalid_url", "Field 'call_api_url' must be an http(s) URL.")
    client = CallApiClient(request.app[HTTP_CLIENT], url, api_key, timeout=CHECK_TIMEOUT, retries=0)
    verdict: dict[str, Any] = {"call_api_url": url, "virtual_phone_number": number}
    try:
        found = await client.check_access(number)
    except CallApiError as exc:
        return verdict | {
            "ok": False,
            "code": exc.code,
            "message": admin_message(exc),
            "ip": refused_ip(exc),
            "active_calls": None,
        }
    return verdict | {
        "ok": True,
        "code": "ok",
        "message": "UIS accepted the API key and the virtual phone number from this server: "
        f"calls from cases can start. Calls in progress on the account: {found.active_calls}.",
        "ip": None,
        "active_calls": found.active_calls,
    }


def _http_url(url: str) -> bool:
    """Whether `url` is an http(s) URL the HTTP client can send to (host, valid port)."""
    try:
        parts = urlsplit(url)
        parsed = URL(url)
        _ = parts.port  # out of range: ValueError
    except ValueError:
        return False
    return parts.scheme in ("http", "https") and bool(parts.hostname) and parsed.host is not None


@routes.get("/api/v1/integrations/uis/notifications")
@operation(auth="admin", tag="admin", answer=Page[UisNotificationOut])
async def uis_notifications(request: web.Request) -> dict[str, Any]:
    """The six notifications to add in UIS, in the guide's order: name and text to paste

    The text is the guide's template (nested layout), one `{{variable}}` per value."""
    items = [
        {"kind": kind, "name": NAMES[kind], "body": template_text(kind)} for kind in GUIDE_ORDER
    ]
    return page(items, len(items))
