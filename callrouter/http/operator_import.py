"""Import of operators from UIS (issue 11, part 3): the admin sees the account's employees
(`get.employees` at the Data API) with their groups and phones, each with its mapping here and
the staff member it probably is, and applies many mappings at once.

`POST /api/v1/operators/import` writes every mapping in one writer transaction and tells the
shards once: mapping one by one with `PUT /api/v1/operators/{id}` makes every shard reload the
whole operator map per mapping, which is quadratic for an account of thousands.
"""

from __future__ import annotations

from typing import Any

from aiohttp import web

from callrouter.callapi import CallApiError
from callrouter.dataapi import DataApiClient, data_api_url
from callrouter.domain.operator_match import Matcher, StaffRef
from callrouter.http.errors import ApiError, conflict, unprocessable
from callrouter.http.keys import (
    CONTROL,
    DATA_API_LIMIT_BACKOFF,
    DATA_API_URL,
    DB,
    HTTP_CLIENT,
    STORE,
)
from callrouter.http.operation import operation
from callrouter.http.schemas import EmployeeList, OperatorImported, OperatorImportIn
from callrouter.storage import directory

routes = web.RouteTableDef()

# Waiting on `limit_exceeded` (per minute at UIS) first 2 s, then 4 and 8: the admin waits
# with the page open, so a longer wait is worse than the clear message.
LIMIT_BACKOFF = 2.0


@routes.get("/api/v1/operators/import")
@operation(auth="admin", tag="admin", answer=EmployeeList, errors=(409, 502))
async def get_employees(request: web.Request) -> dict[str, Any]:
    """The UIS account's employees, each with its mapping and a proposed staff member

    Reads every page of the Data API's `get.employees` with the integration's API key. 409
    `integration_not_configured` before the integration is saved; 502 with UIS's mnemonic (or
    `uis_unreachable`, `uis_timeout`, `uis_bad_response`) and a message saying what to fix when
    UIS refuses or cannot be asked. Timeouts and internal errors are asked again, and
    `limit_exceeded` after a growing wait."""
    async with request.app[DB].sessions() as session:
        integration = (await directory.load_account(session)).integration
    if integration is None:
        raise conflict(
            "integration_not_configured",
            "Save the UIS integration (its API key) first: the employees are read with it.",
        )
    url = request.app.get(DATA_API_URL) or data_api_url(integration.call_api_url)
    client = DataApiClient(
        request.app[HTTP_CLIENT],
        url,
        integration.api_key,
        limit_backoff=request.app.get(DATA_API_LIMIT_BACKOFF, LIMIT_BACKOFF),
    )
    try:
        employees = await client.employees()
    except CallApiError as exc:
        raise ApiError(502, exc.code, exc.message) from None
    async with request.app[DB].sessions() as session:
        current = await directory.all_operators(session)
        staff = await directory.all_staff(session)
    matcher = Matcher(StaffRef(s.id, s.full_name, s.email, s.active) for s in staff)
    items = []
    for e in employees:
        proposal = matcher.propose(e.full_name, e.email)
        items.append(
            {
                "employee_id": e.id,
                "full_name": e.full_name,
                "email": e.email,
                "groups": list(e.groups),
                "phones": list(e.phones),
                "extension": e.extension,
                "mapped": e.id in current,
                "staff_id": current.get(e.id),
                "proposed_staff_id": proposal.staff_id if proposal else None,
                "proposed_by": proposal.reason if proposal else None,
            }
        )
    return {"items": items, "total": len(items)}


@routes.post("/api/v1/operators/import")
@operation(auth="admin", tag="admin", body=OperatorImportIn, answer=OperatorImported, errors=(422,))
async def post_import(request: web.Request, body: OperatorImportIn) -> Any:
    """Apply many operator mappings at once (R2)

    One transaction (all or nothing: 422 `unknown_staff` writes none) and one reload of the
    operators on every shard. `full_name` and `phones`, as `GET /api/v1/operators/import`
    showed them, are kept with the operator (phones for routing callers to their own agent);
    left out, the ones kept stay. 422 `duplicate_employee` when an employee comes twice."""
    seen: set[int] = set()
    rows = []
    for m in body.mappings:
        if m.employee_id in seen:
            raise unprocessable(
                "duplicate_employee", f"Employee {m.employee_id} is in 'mappings' twice."
            )
        seen.add(m.employee_id)
        rows.append((m.employee_id, m.staff_id, m.full_name, m.phones))
    answer = await request.app[STORE].run(directory.import_operators, rows)
    await request.app[CONTROL].config_changed()
    return answer
