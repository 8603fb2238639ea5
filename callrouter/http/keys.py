"""Typed application keys (aiohttp `web.AppKey`) and the seams the handlers depend on."""

from __future__ import annotations

from typing import Protocol

from aiohttp import web

from callrouter.storage.engine import Database


class ControlPlane(Protocol):
    """What handlers tell the live side (shard actors) when configuration changes."""

    async def config_changed(self) -> None:
        """Operators, fields, settings or the integration changed: reload them everywhere."""


DB = web.AppKey("db", Database)
CONTROL = web.AppKey("control", ControlPlane)
ADMIN_TOKEN = web.AppKey("admin_token", str)
