"""Typed application keys (aiohttp `web.AppKey`) and the seams the handlers depend on."""

from __future__ import annotations

from typing import Protocol

from aiohttp import ClientSession, web

from callrouter.domain.account import Account
from callrouter.storage.engine import Database


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
CLUSTER = web.AppKey("cluster", "Cluster")
INBOX = web.AppKey("inbox", "InboxWriter")
HUB = web.AppKey("hub", "Hub")
HTTP_CLIENT = web.AppKey("http_client", ClientSession)
WALLBOARD_FEED = web.AppKey("wallboard_feed", "WallboardFeed")
