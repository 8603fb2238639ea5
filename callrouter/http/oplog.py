"""The operator's log lines this frontend writes about events handled elsewhere.

- A configuration change (`config_changed`): which kind, the method, path and status; never
  a value (the body is not read here).
- What the writer did: the recovery at its start (how many notifications it re-routed), its
  own restart, and shard restarts. The writer logs them too, but in its Ray worker's log
  file; the frontend's stderr is where whoever runs `callrouter serve` looks, so the frontend
  reads the writer's figures every `WATCH_SECONDS` (one Ray call) and logs what changed.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import AsyncIterator
from datetime import UTC, datetime
from typing import Any

from aiohttp import web
from aiohttp.typedefs import Handler

from callrouter.http.keys import CLUSTER

log = logging.getLogger("callrouter.events")

WATCH_SECONDS = 5.0
# Admin routes that change the configuration, by path prefix, and the kind each one logs.
CONFIG_KINDS = (
    ("/api/v1/integrations/", "integration"),
    ("/api/v1/settings", "settings"),
    ("/api/v1/staff", "staff"),
    ("/api/v1/operators/", "operator"),
    ("/api/v1/fields", "popup_field"),
    ("/api/v1/wallboard/links", "wallboard_link"),
)
WRITES = frozenset({"POST", "PUT", "PATCH", "DELETE"})


def config_kind(method: str, path: str) -> str | None:
    """The kind of configuration a request changes, or None when it changes none."""
    if method not in WRITES:
        return None
    for prefix, kind in CONFIG_KINDS:
        if path.startswith(prefix):
            return kind
    return None


@web.middleware
async def middleware(request: web.Request, handler: Handler) -> web.StreamResponse:
    """Log each configuration change that succeeded."""
    response = await handler(request)
    kind = config_kind(request.method, request.path)
    if kind is not None and response.status < 400:
        log.info(
            "config changed: %s (%s %s, %s)",
            kind,
            request.method,
            request.path,
            response.status,
            extra={
                "event": "config_changed",
                "kind": kind,
                "method": request.method,
                "path": request.path,
                "status": response.status,
            },
        )
    return response


class WriterWatch:
    """What was last seen of the writer; `see` logs what changed since."""

    def __init__(self) -> None:
        self.incarnation: int | None = None
        self.recovered: int | None = None
        self.restarts: list[int] = []

    def see(self, figures: dict[str, Any]) -> None:
        incarnation = figures["incarnation"]
        if incarnation != self.incarnation:
            if self.incarnation is not None:
                log.warning("the writer restarted", extra={"event": "writer_restart"})
            self.incarnation, self.recovered = incarnation, None
            self.restarts = [0] * len(figures["shard_restarts"])
        if self.recovered is None and figures["recovered"] is not None:
            self.recovered = figures["recovered"]
            started = datetime.fromtimestamp(incarnation / 1e9, UTC).isoformat(timespec="seconds")
            log.info(
                "recovery at the writer's start (%s): %s notification(s) not done re-routed",
                started,
                self.recovered,
                extra={"event": "recovery", "replayed": self.recovered, "writer_started": started},
            )
        for shard, (seen, now) in enumerate(
            zip(self.restarts, figures["shard_restarts"], strict=False)
        ):
            if now > seen:
                log.warning(
                    "shard %s restarted (%s time(s) since the writer started): its calls'"
                    " pending notifications were sent again",
                    shard,
                    now,
                    extra={"event": "shard_restart", "shard": shard, "restarts": now},
                )
        self.restarts = list(figures["shard_restarts"])


async def watch_writer(app: web.Application) -> AsyncIterator[None]:
    """Cleanup context (after the cluster's): log the writer's events while the app runs."""
    task = asyncio.create_task(_watch(app))
    yield
    task.cancel()
    await asyncio.gather(task, return_exceptions=True)


async def _watch(app: web.Application) -> None:
    watch = WriterWatch()
    while True:
        try:
            figures = await asyncio.wait_for(app[CLUSTER].writer_metrics(), WATCH_SECONDS)
            watch.see(figures)
        except asyncio.CancelledError:
            raise
        except Exception:  # a writer restarting: the next look tells
            log.debug("the writer's figures did not come", exc_info=True)
        await asyncio.sleep(WATCH_SECONDS)
