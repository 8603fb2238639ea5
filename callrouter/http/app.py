"""The aiohttp application factory: one `create_app(settings)` taking its dependencies, every
resource owned by a cleanup context (STYLE: aiohttp-demos)."""

from __future__ import annotations

import asyncio
import logging
from collections.abc import AsyncIterator
from pathlib import Path

from aiohttp import web

from callrouter.actors.cluster import Cluster
from callrouter.config import Settings
from callrouter.http import (
    admin,
    calls,
    cases,
    dial,
    live,
    meta,
    metrics,
    openapi,
    operator_import,
    oplog,
    pages,
    quarantine,
    reconcile,
    routing,
    sessions,
    staff_admin,
    stats,
    uis_check,
    users,
    wallboard,
    wallboard_links,
    webhook,
    worklist,
)
from callrouter.http.errors import error_middleware
from callrouter.http.fanout import Fanout, LocalFanout, RedisFanout
from callrouter.http.keys import (
    ACCOUNT,
    ADMIN_TOKEN,
    CLUSTER,
    CONTROL,
    DATA_API_URL,
    DB,
    HUB,
    PUBLIC_URL,
    STORE,
    AccountBox,
)
from callrouter.http.live import Hub
from callrouter.storage import directory
from callrouter.storage.engine import Database

log = logging.getLogger("callrouter")

ACCOUNT_REFRESH_SECONDS = 5.0  # another frontend may have changed the settings


class LiveControl:
    """`ControlPlane`: configuration changes reach this frontend and every shard."""

    def __init__(self, app: web.Application) -> None:
        self.app = app

    async def reload_account(self) -> None:
        async with self.app[DB].sessions() as session:
            self.app[ACCOUNT].value = await directory.load_account(session)

    async def config_changed(self) -> None:
        await self.reload_account()
        await self.app[CLUSTER].config_changed()


def create_app(settings: Settings, admin_token: str) -> web.Application:
    middlewares = [metrics.middleware, oplog.middleware, error_middleware]
    app = web.Application(middlewares=middlewares, client_max_size=1 << 20)
    app[ADMIN_TOKEN] = admin_token
    app[metrics.METRICS] = metrics.Metrics()  # a registry per app, not prometheus' global one
    app[PUBLIC_URL] = settings.public_url
    app[DATA_API_URL] = settings.data_api_url
    app[HUB] = Hub()
    app.cleanup_ctx.append(_resources(settings))
    app.cleanup_ctx.append(wallboard.feed_ctx)
    app.cleanup_ctx.append(dial.http_client)
    app.cleanup_ctx.append(oplog.watch_writer)
    app.cleanup_ctx.append(routing.service_ctx(lambda a: a[CLUSTER]))  # issue 11 part 1
    modules = (
        meta,
        webhook,
        admin,
        users,
        calls,
        cases,
        dial,
        live,
        openapi,
        pages,
        wallboard,
        stats,
        quarantine,
        metrics,
        sessions,
        staff_admin,
        wallboard_links,
        uis_check,
        operator_import,
        worklist,
        routing,
        reconcile,
    )
    for module in modules:
        app.add_routes(module.routes)
    openapi.add_docs_page(app)
    return app


def _resources(settings: Settings):  # type: ignore[no-untyped-def]
    async def ctx(app: web.Application) -> AsyncIterator[None]:
        Path(settings.data_dir).mkdir(parents=True, exist_ok=True)
        db = Database(settings.database)  # this process only reads; the writer writes
        await db.create_schema()
        control = LiveControl(app)
        app[CONTROL] = control
        cluster = Cluster(
            settings.database,
            shards=settings.shards,
            ray_address=settings.ray_address,
            ray_node_ip=settings.ray_node_ip,
            prefix=settings.prefix,
            statistics=settings.statistics,
        )
        cluster.connect()
        fanout: Fanout = (
            RedisFanout(app[HUB], settings.redis_url)
            if settings.redis_url
            else LocalFanout(app[HUB])
        )
        await fanout.start()
        # Smart routing's view looks on: who answers whom, which calls were decided.
        await cluster.start(on_event=routing.tapped(app, fanout.publish))
        await cluster.run(directory.ensure_builtin_fields)
        await cluster.reconcile_configure(settings.data_api_url)  # issue 11 part 2
        async with db.sessions() as session:
            app[ACCOUNT] = AccountBox(await directory.load_account(session))
        app[DB] = db
        app[CLUSTER] = cluster
        app[STORE] = cluster
        refresher = asyncio.create_task(_refresh(control))
        log.info(
            "callrouter ready: %s shard(s), database %s",
            cluster.count,
            db.engine.url.render_as_string(),
        )
        yield
        refresher.cancel()
        await app[HUB].close_all()
        await cluster.stop()
        await fanout.stop()
        await db.dispose()

    return ctx


async def _refresh(control: LiveControl) -> None:
    while True:
        await asyncio.sleep(ACCOUNT_REFRESH_SECONDS)
        try:
            await control.reload_account()
        except Exception:
            log.exception("reloading the account settings failed")
