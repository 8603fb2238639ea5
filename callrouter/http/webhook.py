"""`POST /webhooks/uis/<secret>`: UIS's notifications in (R4, R32, R33, R34)."""

from __future__ import annotations

import hmac
import traceback
from datetime import UTC, datetime

from aiohttp import web

from callrouter.domain.notifications import NotificationError
from callrouter.domain.uis import BodyError, body_text, parse_body, parse_notification
from callrouter.http.errors import ApiError, json_response, not_found
from callrouter.http.keys import ACCOUNT, CLUSTER
from callrouter.http.operation import operation
from callrouter.http.schemas import Ok, UisNotification
from callrouter.storage.inbox import Failure

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


async def _reject(
    request: web.Request, status: int, code: str, message: str, raw: bytes, size: int, at: datetime
) -> ApiError:
    """Keep a refused body for inspection (R33); the error to answer with."""
    row = {
        "received_at": at,
        "status": status,
        "code": code,
        "message": message,
        "body": body_text(raw),
        "size": size,
    }
    await request.app[CLUSTER].keep(row)
    return ApiError(status, code, message)


@routes.post("/webhooks/uis/{secret}")
@operation(
    auth="none",
    tag="webhook",
    body=UisNotification,
    own_body=True,
    answer=Ok,
    errors=(400, 404, 413, 422, 503),
)
async def webhook(request: web.Request) -> web.Response:
    """A UIS notification (R4, R32–R34)

    200 once stored durably (a duplicate also gets 200 and changes nothing). 400 for a body
    that is not JSON, 422 for JSON that is not a usable notification: both are kept for
    inspection at `GET /api/v1/rejected`."""
    account = request.app[ACCOUNT].value
    integration = account.integration
    secret = request.match_info["secret"]
    if integration is None or not hmac.compare_digest(
        secret.encode(), integration.webhook_secret.encode()
    ):
        raise not_found("unknown_webhook", "No UIS integration has this webhook address.")
    received_at = datetime.now(UTC)
    raw, size = await _read_limited(request)
    cluster = request.app[CLUSTER]
    if size > MAX_BODY:
        message = f"The notification is {size} bytes; the limit is {MAX_BODY}."
        raise await _reject(
            request, 413, "body_too_large", message, raw[:MAX_BODY], size, received_at
        )
    try:
        notification = parse_notification(parse_body(raw), account.tz, received_at)
    except BodyError as exc:
        raise await _reject(
            request, 400, "invalid_json", str(exc), raw, size, received_at
        ) from None
    except NotificationError as exc:
        raise await _reject(request, 422, exc.code, exc.message, raw, size, received_at) from None
    except Exception:  # noqa: BLE001 - a parser bug: keep the body for a retry after a fix
        error = traceback.format_exc(limit=6)
        await cluster.keep(Failure(None, "parse", error, (), body_text(raw)))
        return json_response({"ok": True})
    if cluster.depth > MAX_QUEUE:
        raise ApiError(
            503,
            "overloaded",
            "Too many notifications at once; retry shortly.",
            headers={"Retry-After": "1"},
        )
    try:
        await cluster.ingest((raw, notification, received_at))
    except Exception:  # noqa: BLE001 - whatever failed in storage, UIS must resend later
        raise ApiError(
            503,
            "storage_unavailable",
            "The notification could not be stored; retry.",
            headers={"Retry-After": "1"},
        ) from None
    return json_response({"ok": True})
