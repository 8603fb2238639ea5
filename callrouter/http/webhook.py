"""`POST /webhooks/uis/<secret>`: UIS's notifications in (R4, R32, R33, R34)."""

from __future__ import annotations

import hmac
from datetime import UTC, datetime

from aiohttp import web

from callrouter.actors.host import Inbound
from callrouter.domain.notifications import NotificationError
from callrouter.domain.uis import BodyError, parse_body, parse_notification
from callrouter.http.errors import ApiError, json_response, not_found
from callrouter.http.keys import ACCOUNT, CLUSTER, DB, INBOX
from callrouter.storage.inbox import Incoming, reject

routes = web.RouteTableDef()

MAX_BODY = 64 * 1024
MAX_QUEUE = 20_000  # bodies waiting for the disk: past this we shed load with a 503


async def _read_limited(request: web.Request) -> tuple[bytes, int]:
    """The body up to MAX_BODY + 1 bytes, and its declared or read size."""
    declared = request.content_length or 0
    chunks: list[bytes] = []
    size = 0
    while size <= MAX_BODY:
        chunk = await request.content.read(MAX_BODY + 1 - size)
        if not chunk:
            break
        chunks.append(chunk)
        size += len(chunk)
    return b"".join(chunks), max(size, declared)


@routes.post("/webhooks/uis/{secret}")
async def webhook(request: web.Request) -> web.Response:
    account = request.app[ACCOUNT].value
    integration = account.integration
    secret = request.match_info["secret"]
    if integration is None or not hmac.compare_digest(
        secret.encode(), integration.webhook_secret.encode()
    ):
        raise not_found("unknown_webhook", "No UIS integration has this webhook address.")
    received_at = datetime.now(UTC)
    raw, size = await _read_limited(request)
    db = request.app[DB]
    if size > MAX_BODY:
        message = f"The notification is {size} bytes; the limit is {MAX_BODY}."
        await reject(
            db,
            status=413,
            code="body_too_large",
            message=message,
            raw=raw[:MAX_BODY],
            size=size,
            received_at=received_at,
        )
        raise ApiError(413, "body_too_large", message)
    try:
        notification = parse_notification(parse_body(raw), account.tz, received_at)
    except BodyError as exc:
        await reject(
            db,
            status=400,
            code="invalid_json",
            message=str(exc),
            raw=raw,
            size=size,
            received_at=received_at,
        )
        raise ApiError(400, "invalid_json", str(exc)) from None
    except NotificationError as exc:
        await reject(
            db,
            status=422,
            code=exc.code,
            message=exc.message,
            raw=raw,
            size=size,
            received_at=received_at,
        )
        raise ApiError(422, exc.code, exc.message) from None
    inbox = request.app[INBOX]
    if inbox.depth > MAX_QUEUE:
        raise ApiError(
            503,
            "overloaded",
            "Too many notifications at once; retry shortly.",
            headers={"Retry-After": "1"},
        )
    try:
        inbox_id = await inbox.store(Incoming(raw, notification.call_session_id, received_at))
    except Exception:  # noqa: BLE001 - whatever failed in storage, UIS must resend later
        raise ApiError(
            503,
            "storage_unavailable",
            "The notification could not be stored; retry.",
            headers={"Retry-After": "1"},
        ) from None
    if inbox_id is not None:
        request.app[CLUSTER].submit([Inbound(inbox_id, received_at.timestamp(), notification)])
    return json_response({"ok": True})
