"""`POST /api/v1/cases/{id}/calls`: call the case's user from the case (R18–R20).

The dial is recorded before UIS is asked, so the call's first notifications — which may beat
UIS's answer here — already find their case through our `external_id`."""

from __future__ import annotations

import uuid
from datetime import UTC, datetime

from aiohttp import ClientSession, web
from sqlalchemy import delete, select, update

from callrouter.callapi import CallApiClient, CallApiError
from callrouter.http.auth import require_staff
from callrouter.http.errors import (
    ApiError,
    conflict,
    json_response,
    not_found,
    path_id,
    unprocessable,
)
from callrouter.http.keys import ACCOUNT, DB, HTTP_CLIENT
from callrouter.storage import directory
from callrouter.storage.models import Case, Dial, Operator

routes = web.RouteTableDef()


@routes.post("/api/v1/cases/{id}/calls")
async def call_from_case(request: web.Request) -> web.Response:
    staff_id = await require_staff(request)
    case_id = path_id(request, "id")
    integration = request.app[ACCOUNT].value.integration
    if integration is None:
        raise conflict("integration_not_configured", "The UIS integration is not enabled.")
    external_id = f"cr-{uuid.uuid4().hex}"
    async with request.app[DB].sessions() as session, session.begin():
        case = await session.get(Case, case_id)
        if case is None:
            raise not_found("case_not_found", f"No case {case_id}.")
        phones = (
            (await directory.phones_of(session, [case.user_id]))[case.user_id]
            if case.user_id
            else []
        )
        if not phones:
            raise unprocessable("no_phone", "The case's user has no phone number to call.")
        employee_id = await session.scalar(
            select(Operator.employee_id).where(Operator.staff_id == staff_id).limit(1)
        )
        if employee_id is None:
            raise unprocessable(
                "staff_not_mapped", "You are not mapped to a UIS operator; ask the admin."
            )
        session.add(
            Dial(
                external_id=external_id,
                case_id=case_id,
                staff_id=staff_id,
                created_at=datetime.now(UTC),
            )
        )
    client = CallApiClient(request.app[HTTP_CLIENT], integration.call_api_url, integration.api_key)
    try:
        call_session_id = await client.start_employee_call(
            virtual_phone_number=integration.virtual_phone_number,
            contact=phones[0],
            employee_id=employee_id,
            external_id=external_id,
        )
    except CallApiError as exc:
        async with request.app[DB].sessions() as session, session.begin():
            await session.execute(delete(Dial).where(Dial.external_id == external_id))
        raise ApiError(502, exc.code, exc.message) from None
    async with request.app[DB].sessions() as session, session.begin():
        await session.execute(
            update(Dial)
            .where(Dial.external_id == external_id)
            .values(call_session_id=call_session_id)
        )
    return json_response(
        {"call_session_id": call_session_id, "external_id": external_id}, status=202
    )


async def http_client(app: web.Application):  # type: ignore[no-untyped-def]
    """The app's one outgoing HTTP session (the UIS Call API)."""
    async with ClientSession() as session:
        app[HTTP_CLIENT] = session
        yield
