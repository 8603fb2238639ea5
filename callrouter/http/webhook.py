"""`POST /webhooks/uis/<secret>`: UIS's notifications in (R4, R32, R33, R34)."""

from __future__ import annotations

import hmac
import logging
import traceback
from datetime import UTC, datetime

from aiohttp import web

from callrouter.domain.account import Account
from callrouter.domain.notifications import NotificationError
from callrouter.domain.uis import BodyError, body_text, parse_body, parse_notification
from callrouter.http.errors import ApiError, json_response, not_found
from callrouter.http.keys import ACCOUNT, CLUSTER, DB
from callrouter.http.operation import operation
from callrouter.http.schemas import Ok, UisNotification
from callrouter.storage import directory
from callrouter.storage.engine import Database
from callrouter.storage.inbox import Failure

log = logging.getLogger("callrouter.webhook")
routes = web.RouteTableDef()

MAX_BODY = 64 * 1024
MAX_QUEUE = 20_000  # bodies waiting for the disk: past this we shed load with a 503


def _opens(account: Account, secret: bytes) -> bool:
    integration = account.integration
    return integration is not None and hmac.compare_digest(
        secret, integration.webhook_secret.encode()
    )


async def webhook_account(request: web.Request) -> Account:
    """The account whose webhook secret the path carries (compared in constant time), else
    404. A secret this frontend does not know makes it read the settings again first: the
    integration may have been saved on another frontend a moment ago (each frontend also
    rereads them every few seconds), and its first notifications must not be refused."""
    secret = request.match_info["secret"].encode()
    box = request.app[ACCOUNT]
    if not _opens(box.value, secret):
        try:
            await box.reload(lambda: _load_account(request.app[DB]))
        except Exception:  # noqa: BLE001 - the database blinked: answer with what we know
            log.warning("reading the settings for an unknown webhook secret failed")
        if not _opens(box.value, secret):
            raise not_found("unknown_webhook", "No UIS integration has this webhook address.")
    return box.value


async def _load_account(db: Database) -> Account:
    async with db.sessions() as session:
        return await directory.load_account(session)


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
    account = await webhook_account(request)
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
