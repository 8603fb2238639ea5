"""User endpoints (API.md "Users"; staff or admin): create, read, change, search (R7).

Shapes are checked by `schemas.UserIn`; the rules that need the database (known custom field
keys, numbers with digits) live in `storage.directory`, which every writer of users goes through.
"""

from __future__ import annotations

from typing import Any

from aiohttp import web

from callrouter.http.errors import not_found, path_id
from callrouter.http.keys import DB, STORE
from callrouter.http.operation import operation
from callrouter.http.render import page
from callrouter.http.schemas import Page, UserIn, UserOut, UserQuery
from callrouter.storage import directory

routes = web.RouteTableDef()


@routes.post("/api/v1/users")
@operation(auth="any", tag="users", body=UserIn, answer=UserOut, status=201, errors=(422,))
async def post_user(request: web.Request, body: UserIn) -> Any:
    """A new user from any of the user fields"""
    return await request.app[STORE].run(directory.add_user, body.model_dump(exclude_unset=True))


@routes.get("/api/v1/users/{id}")
@operation(auth="any", tag="users", answer=UserOut, errors=(404,))
async def get_user(request: web.Request) -> dict[str, Any]:
    """One user; 404 `user_not_found`"""
    user_id = path_id(request, "id")
    async with request.app[DB].snapshot() as session:
        user = await directory.get_user(session, user_id)
        if user is None:
            raise not_found("user_not_found", f"No user {user_id}.")
        return await directory.user_view(session, user)


@routes.patch("/api/v1/users/{id}")
@operation(auth="any", tag="users", body=UserIn, answer=UserOut, errors=(404, 422))
async def patch_user(request: web.Request, body: UserIn) -> Any:
    """Change any of the user fields

    `phones` replaces the list; `custom_fields` merges, a null value removing that field."""
    user_id = path_id(request, "id")
    changes = body.model_dump(exclude_unset=True)
    return await request.app[STORE].run(directory.change_user, user_id, changes)


@routes.get("/api/v1/users")
@operation(auth="any", tag="users", query=UserQuery, answer=Page[UserOut])
async def search_users(request: web.Request, query: UserQuery) -> dict[str, Any]:
    """Users matching `q` (name, email, company, phone, note, custom field values)

    Newest first; every user without `q`."""
    async with request.app[DB].snapshot() as session:
        users, total = await directory.search_users(session, query.q, query.limit, query.offset)
        phones = await directory.phones_of(session, [u.id for u in users])
    return page([directory.user_json(u, phones[u.id]) for u in users], total)
