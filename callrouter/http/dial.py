"""`POST /api/v1/cases/{id}/calls`: call the case's user from the case (R18–R20).

The dial is recorded before UIS is asked, so the call's first notifications — which may beat
UIS's answer here — already find their case through our `external_id`."""

from __future__ import annotations

import uuid
from datetime import UTC, datetime

from aiohttp import ClientSession, web

from callrouter.callapi import CallApiClient, CallApiError
from callrouter.http.errors import ApiError, conflict, path_id
from callrouter.http.keys import ACCOUNT, HTTP_CLIENT, STORE
from callrouter.http.operation import operation
from callrouter.http.schemas import Dialed
from callrouter.storage import dials

routes = web.RouteTableDef()


# UIS may have started the call although its answer never came (or made no sense): the dial
# stays, so the call's notifications still find their case.
MAY_HAVE_STARTED = frozenset({"uis_timeout", "uis_bad_response"})


@routes.post("/api/v1/cases/{id}/calls")
@operation(auth="staff", tag="cases", answer=Dialed, status=202, errors=(409, 422, 502))
async def call_from_case(request: web.Request, staff_id: int) -> dict[str, object]:
    """Call the case's user back through the UIS Call API (R18–R20)

    The staff member's phone rings first, then the user's. 502 with UIS's error mnemonic as
    `code` when UIS refuses (or cannot be reached: `uis_unreachable`, `uis_timeout`,
    `uis_bad_response`)."""
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
        if exc.code not in MAY_HAVE_STARTED:
            await store.run(dials.drop_dial, external_id)
        raise ApiError(502, exc.code, exc.message) from None
    await store.run(dials.dial_started, external_id, call_session_id)
    return {"call_session_id": call_session_id, "external_id": external_id}


async def http_client(app: web.Application):  # type: ignore[no-untyped-def]
    """The app's one outgoing HTTP session (the UIS Call API)."""
    async with ClientSession() as session:
        app[HTTP_CLIENT] = session
        yield
