"""`POST /api/v1/cases/{id}/calls`: call the case's user from the case (R18–R20).

The dial is recorded before UIS is asked, so the call's first notifications — which may beat
UIS's answer here — already find their case through our `external_id`."""

from __future__ import annotations

import uuid
from datetime import UTC, datetime

from aiohttp import ClientSession, web

from callrouter.callapi import CallApiClient, CallApiError
from callrouter.http.auth import require_staff
from callrouter.http.errors import (
    ApiError,
    conflict,
    json_response,
    path_id,
)
from callrouter.http.keys import ACCOUNT, HTTP_CLIENT, STORE
from callrouter.storage import dials

routes = web.RouteTableDef()


@routes.post("/api/v1/cases/{id}/calls")
async def call_from_case(request: web.Request) -> web.Response:
    staff_id = await require_staff(request)
    case_id = path_id(request, "id")
    integration = request.app[ACCOUNT].value.integration
    if integration is None:
        raise conflict("integration_not_configured", "The UIS integration is not enabled.")
    external_id = f"cr-{uuid.uuid4().hex}"
    store = request.app[STORE]
    phone, employee_id = await store.run(
        dials.start_dial, case_id, staff_id, external_id, datetime.now(UTC)
    )
    client = CallApiClient(request.app[HTTP_CLIENT], integration.call_api_url, integration.api_key)
    try:
        call_session_id = await client.start_employee_call(
            virtual_phone_number=integration.virtual_phone_number,
            contact=phone,
            employee_id=employee_id,
            external_id=external_id,
        )
    except CallApiError as exc:
        await store.run(dials.drop_dial, external_id)
        raise ApiError(502, exc.code, exc.message) from None
    await store.run(dials.dial_started, external_id, call_session_id)
    return json_response(
        {"call_session_id": call_session_id, "external_id": external_id}, status=202
    )


async def http_client(app: web.Application):  # type: ignore[no-untyped-def]
    """The app's one outgoing HTTP session (the UIS Call API)."""
    async with ClientSession() as session:
        app[HTTP_CLIENT] = session
        yield
