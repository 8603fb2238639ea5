"""Pages (API.md "Pages"): `GET /` the staff console, `GET /wallboard` the live wallboard,
their files under `/static/`.

The console is plain HTML, CSS and JavaScript in `callrouter/web/` (no build step); it signs in
with a staff token in the browser and talks to the JSON API and the live events like any client.
"""

from __future__ import annotations

from pathlib import Path

from aiohttp import web

from callrouter.http.operation import operation

WEB_DIR = Path(__file__).resolve().parent.parent / "web"

routes = web.RouteTableDef()


@routes.get("/")
@operation(auth="none", tag="pages", kind="html")
async def console_page(request: web.Request) -> web.FileResponse:
    """The staff console (popup, profile, create/attach/link, call from a case)"""
    return _page("console")


@routes.get("/wallboard")
@operation(auth="none", tag="pages", kind="html")
async def wallboard_page(request: web.Request) -> web.FileResponse:
    """The live wallboard (R31), for a wall screen; signs in with any token"""
    return _page("wallboard")


def _page(name: str) -> web.FileResponse:
    response = web.FileResponse(WEB_DIR / f"{name}.html")
    # A new release must reach open pages on their next load.
    response.headers["Cache-Control"] = "no-cache"
    return response


@routes.get("/login")
@operation(auth="none", tag="pages", kind="html")
async def login_page(request: web.Request) -> web.FileResponse:
    """Sign-in for staff and admins (email and password, or the admin token)"""
    return _page("login")


@routes.get("/admin")
@operation(auth="none", tag="pages", kind="html")
async def admin_page(request: web.Request) -> web.FileResponse:
    """The admin's settings: integration, operators, staff, popup fields, rejected, quarantine"""
    return _page("admin")


@routes.get("/stats")
@operation(auth="none", tag="pages", kind="html")
async def stats_page(request: web.Request) -> web.FileResponse:
    """The guide's six reports for a period, with charts and CSV export"""
    return _page("stats")


routes.static("/static", WEB_DIR, append_version=False)
