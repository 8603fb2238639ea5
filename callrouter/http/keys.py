"""Typed application keys (aiohttp `web.AppKey`) and the seams the handlers depend on."""

from __future__ import annotations

from typing import TYPE_CHECKING, Protocol

from aiohttp import ClientSession, web

from callrouter.domain.account import Account
from callrouter.storage.engine import Database

if TYPE_CHECKING:  # only for the keys' types: these modules import this one
    from callrouter.actors.cluster import Cluster
    from callrouter.http.live import Hub
    from callrouter.http.wallboard import WallboardFeed
    from callrouter.storage.inbox import InboxWriter


class ControlPlane(Protocol):
    """What handlers tell the live side (shard actors) when configuration changes."""

    async def config_changed(self) -> None:
        """Operators, fields, settings or the integration changed: reload them everywhere."""


class AccountBox:
    """The account settings as last loaded; the webhook reads them on every request."""

    def __init__(self, value: Account) -> None:
        self.value = value


DB = web.AppKey("db", Database)
CONTROL = web.AppKey("control", ControlPlane)
ADMIN_TOKEN = web.AppKey("admin_token", str)
ACCOUNT = web.AppKey("account", AccountBox)
CLUSTER: web.AppKey[Cluster] = web.AppKey("cluster")
INBOX: web.AppKey[InboxWriter] = web.AppKey("inbox")
HUB: web.AppKey[Hub] = web.AppKey("hub")
HTTP_CLIENT = web.AppKey("http_client", ClientSession)
WALLBOARD_FEED: web.AppKey[WallboardFeed] = web.AppKey("wallboard_feed")
