"""User endpoints (API.md "Users"; staff or admin): create, read, change, search (R7).

Content checks live in `storage.directory`, so the calls endpoints that create or link users
apply exactly the same rules.
"""

from __future__ import annotations

from aiohttp import web

from callrouter.http.auth import require_any
from callrouter.http.errors import json_response, not_found, paging, path_id, read_json
from callrouter.http.keys import DB, STORE
from callrouter.http.render import page
from callrouter.storage import directory

routes = web.RouteTableDef()


@routes.post("/api/v1/users")
async def post_user(request: web.Request) -> web.Response:
    """A new user from any of the user fields."""
    await require_any(request)
    body = await read_json(request)
    answer = await request.app[STORE].run(directory.add_user, body)
    return json_response(answer, status=201)


@routes.get("/api/v1/users/{id}")
async def get_user(request: web.Request) -> web.Response:
    """One user; 404 `user_not_found`."""
    await require_any(request)
    user_id = path_id(request, "id")
    async with request.app[DB].sessions() as session:
        user = await directory.get_user(session, user_id)
        if user is None:
            raise not_found("user_not_found", f"No user {user_id}.")
        answer = await directory.user_view(session, user)
    return json_response(answer)


@routes.patch("/api/v1/users/{id}")
async def patch_user(request: web.Request) -> web.Response:
    """Change any of the user fields (`phones` replaces the list; `custom_fields` merges, a
    null value removing that field)."""
    await require_any(request)
    user_id = path_id(request, "id")
    body = await read_json(request)
    answer = await request.app[STORE].run(directory.change_user, user_id, body)
    return json_response(answer)


@routes.get("/api/v1/users")
async def search_users(request: web.Request) -> web.Response:
    """Users matching `q` (name, email, company, phone, note, custom field values), newest
    first; every user without `q`."""
    await require_any(request)
    limit, offset = paging(request)
    q = request.query.get("q", "")
    async with request.app[DB].sessions() as session:
        users, total = await directory.search_users(session, q, limit, offset)
        phones = await directory.phones_of(session, [u.id for u in users])
    return json_response(page([directory.user_json(u, phones[u.id]) for u in users], total))
