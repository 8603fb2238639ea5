"""Typed application keys (aiohttp `web.AppKey`) and the seams the handlers depend on."""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable
from typing import TYPE_CHECKING, Any, Protocol

from aiohttp import ClientSession, web

from callrouter.domain.account import Account
from callrouter.storage.engine import Database

if TYPE_CHECKING:  # only for the keys' types: these modules import this one
    from callrouter.actors.cluster import Cluster
    from callrouter.http.live import Hub
    from callrouter.http.wallboard import WallboardFeed


class ControlPlane(Protocol):
    """What handlers tell the live side (shard actors) when configuration changes."""

    async def config_changed(self) -> None:
        """Operators, fields, settings or the integration changed: reload them everywhere."""


class Store(Protocol):
    """Where writes happen: the writer actor (one writing process), or this process in tests."""

    async def run(self, fn: Callable[..., Awaitable[Any]], *args: Any) -> Any:
        """`fn(session, *args)` in a transaction of its own; its result."""


class AccountBox:
    """The account settings as last loaded; the webhook reads them on every request."""

    RELOAD_SPACING = 1.0  # seconds between reloads asked for by unknown webhook secrets

    def __init__(self, value: Account) -> None:
        self.value = value
        self._reload: asyncio.Future[None] | None = None
        self._reloaded_at = float("-inf")

    async def reload(self, load: Callable[[], Awaitable[Account]]) -> Account:
        """The settings read again — one read shared by everyone asking at once, and at most
        one a second (an unknown secret asks: a stream of wrong ones must not hammer the
        database)."""
        loop = asyncio.get_running_loop()
        if self._reload is None or (
            self._reload.done() and loop.time() - self._reloaded_at >= self.RELOAD_SPACING
        ):
            self._reloaded_at = loop.time()
            self._reload = asyncio.ensure_future(self._load(load))
        await asyncio.shield(self._reload)
        return self.value

    async def _load(self, load: Callable[[], Awaitable[Account]]) -> None:
        self.value = await load()


DB = web.AppKey("db", Database)
CONTROL = web.AppKey("control", ControlPlane)
ADMIN_TOKEN = web.AppKey("admin_token", str)
ACCOUNT = web.AppKey("account", AccountBox)
CLUSTER: web.AppKey[Cluster] = web.AppKey("cluster")
STORE = web.AppKey("store", Store)
HUB: web.AppKey[Hub] = web.AppKey("hub")
HTTP_CLIENT = web.AppKey("http_client", ClientSession)
WALLBOARD_FEED: web.AppKey[WallboardFeed] = web.AppKey("wallboard_feed")
PUBLIC_URL: web.AppKey[str | None] = web.AppKey("public_url")  # the base UIS posts to
# The Data API URL when set by `serve --data-api-url`; else derived from the Call API URL.
DATA_API_URL: web.AppKey[str | None] = web.AppKey("data_api_url")
# Seconds before asking again after `limit_exceeded` (doubling); tests make it short.
DATA_API_LIMIT_BACKOFF = web.AppKey("data_api_limit_backoff", float)
