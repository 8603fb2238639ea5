"""Staff management for the admin (issue 9): change a member, deactivate them, give them a
password or a role, reset their token.

A password is hashed here (argon2id, `http.passwords`) and only its hash goes to the writer.
Whatever revokes a credential (deactivation, a new password, a new token) takes effect on this
frontend at once (`auth.revoked`) and on the others within `auth.CACHE_SECONDS`.
"""

from __future__ import annotations

from typing import Any

from aiohttp import web

from callrouter.http import passwords
from callrouter.http.auth import revoked
from callrouter.http.errors import path_id, unprocessable
from callrouter.http.keys import CONTROL, STORE
from callrouter.http.operation import operation
from callrouter.http.schemas import StaffChange, StaffOut, StaffToken
from callrouter.storage import directory

routes = web.RouteTableDef()


@routes.patch("/api/v1/staff/{id}")
@operation(auth="admin", tag="admin", body=StaffChange, answer=StaffOut, errors=(409, 422))
async def patch_staff(request: web.Request, body: StaffChange) -> Any:
    """Change a staff member: any of `full_name`, `email`, `active`, `password`, `role`

    409 `email_taken` when another member has the email; 422 `invalid_password` for a
    password shorter than 8 characters. `"active": false` revokes the member's token and ends
    their sessions at once (reactivating gives back the password sign-in; a token needs
    `POST /api/v1/staff/{id}/token`); a new password ends their sessions."""
    staff_id = path_id(request, "id")
    changes = body.model_dump(exclude_unset=True)
    if not changes:
        raise unprocessable(
            "missing_field", "Give at least one of full_name, email, active, password, role."
        )
    if "password" in changes:
        changes["password_hash"] = await passwords.hash_password(changes.pop("password"))
    answer = await request.app[STORE].run(directory.change_staff, staff_id, changes)
    revoked(request.app)  # a cached principal may carry the old role or activity
    if "active" in changes:
        await request.app[CONTROL].config_changed()  # the wallboard lists active staff only
    return answer


@routes.post("/api/v1/staff/{id}/token")
@operation(auth="admin", tag="admin", answer=StaffToken, errors=(404,))
async def reset_token(request: web.Request) -> Any:
    """A new API token for a staff member; the old one stops working

    The answer carries the token, which is never shown again."""
    staff_id = path_id(request, "id")
    answer = await request.app[STORE].run(directory.reset_staff_token, staff_id)
    revoked(request.app)
    return answer
