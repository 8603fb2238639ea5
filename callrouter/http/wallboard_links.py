"""Read-only wallboard links (issue 9): the admin makes a URL for a wall screen that reads the
wallboard and the staff names and nothing else, and revokes it when the screen goes.

The link's secret is in the URL (`/wallboard?link=<secret>`), shown once; the database keeps
its SHA-256 only. `http.auth` accepts it on the "wallboard" endpoints alone.
"""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

from aiohttp import web

from callrouter.http.auth import hash_token, revoked
from callrouter.http.errors import path_id
from callrouter.http.keys import DB, PUBLIC_URL, STORE
from callrouter.http.operation import operation
from callrouter.http.render import iso, page
from callrouter.http.schemas import LinkIn, LinkOut, NewLink, Page, Paging
from callrouter.storage import access, directory

routes = web.RouteTableDef()


def _base(request: web.Request) -> str:
    # The same rule as the webhook URL: behind a proxy the request's host is not the address.
    base = request.app.get(PUBLIC_URL) or f"{request.scheme}://{request.host}"
    return base.rstrip("/")


@routes.post("/api/v1/wallboard/links")
@operation(auth="admin", tag="wallboard", body=LinkIn, answer=NewLink, status=201)
async def create_link(request: web.Request, body: LinkIn) -> dict[str, Any]:
    """A read-only wallboard link for a wall screen

    The answer's `url` (absolute, from `--public-url` or the request's host) carries the
    link's secret and is never shown again."""
    secret = access.new_secret()
    async with request.app[DB].sessions() as session:
        tz = (await directory.load_account(session)).tz
    link = await request.app[STORE].run(
        access.create_link, hash_token(secret), body.label, datetime.now(UTC)
    )
    return {
        **link,
        "created_at": iso(link["created_at"], tz),
        "url": f"{_base(request)}/wallboard?link={secret}",
    }


@routes.get("/api/v1/wallboard/links")
@operation(auth="admin", tag="wallboard", query=Paging, answer=Page[LinkOut])
async def list_links(request: web.Request, query: Paging) -> dict[str, Any]:
    """The wallboard links that work, newest first (without their secrets)"""
    async with request.app[DB].sessions() as session:
        tz = (await directory.load_account(session)).tz
        links, total = await access.list_links(session, query.limit, query.offset)
    items = [access.link_json(link) for link in links]
    return page([{**i, "created_at": iso(i["created_at"], tz)} for i in items], total)


@routes.delete("/api/v1/wallboard/links/{id}")
@operation(auth="admin", tag="wallboard", status=204, errors=(404,))
async def revoke_link(request: web.Request) -> web.Response:
    """Revoke a wallboard link: it stops working at once; 404 `link_not_found`"""
    await request.app[STORE].run(access.revoke_link, path_id(request, "id"))
    revoked(request.app)
    return web.Response(status=204)
