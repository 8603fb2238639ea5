"""Pages (API.md "Pages"): `GET /` the staff console, its files under `/static/`.

The console is plain HTML, CSS and JavaScript in `callrouter/web/` (no build step); it signs in
with a staff token in the browser and talks to the JSON API and the live events like any client.
"""

from __future__ import annotations

from pathlib import Path

from aiohttp import web

WEB_DIR = Path(__file__).resolve().parent.parent / "web"

routes = web.RouteTableDef()


@routes.get("/")
async def console(request: web.Request) -> web.FileResponse:
    """The staff console (popup, profile, create/attach/link, call from a case)."""
    response = web.FileResponse(WEB_DIR / "console.html")
    # A new release must reach the agents' open consoles on their next load.
    response.headers["Cache-Control"] = "no-cache"
    return response


routes.static("/static", WEB_DIR, append_version=False)
