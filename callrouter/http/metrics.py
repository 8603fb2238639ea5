"""`GET /metrics`: the service in Prometheus text format, for the admin token, on the API's
port (API.md "Additions"). Names start with `callrouter_`.

Nearly everything is read when scraped, from what exists already: the actors' figures
(`Cluster.observe`: the shards' calls, the writer's decisions, batch times, shard restarts and
statistics feeds), the inbox backlog, this frontend's webhook counts and console connections.
Only the webhook's latency is measured as it happens, by `middleware`. Each app has a registry
of its own (tests run several apps in one process), never prometheus-client's global one.

Two scopes: `callrouter_notifications_*_total` (but `pending`), the webhook latency and the
consoles are this frontend's; the rest is the cluster's, the same on every frontend, so with
several frontends take one of them (or `max`) rather than a sum.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Iterator
from typing import Any

from aiohttp import web
from aiohttp.typedefs import Handler
from prometheus_client import CONTENT_TYPE_LATEST, CollectorRegistry, Histogram, generate_latest
from prometheus_client.core import (
    CounterMetricFamily,
    GaugeMetricFamily,
    HistogramMetricFamily,
    Metric,
)

from callrouter.http.keys import CLUSTER, DB, HUB
from callrouter.http.operation import operation
from callrouter.storage.inbox import count_pending

routes = web.RouteTableDef()

NOTIFICATIONS_WEBHOOK = "/webhooks/uis/{secret}"  # the route whose latency is measured
WEBHOOK_BUCKETS = (0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30)
ASK_TIMEOUT = 5.0  # seconds a part may take to answer a scrape before it is left out


class StateCollector:
    """Metric families made from the figures of one scrape (`figures`, set just before the
    registry is rendered, with no `await` in between)."""

    def __init__(self) -> None:
        self.figures: dict[str, Any] | None = None

    def collect(self) -> Iterator[Metric]:
        f = self.figures
        if f is None:
            return
        yield from _frontend(f)
        yield from _cluster(f)


class Metrics:
    """This app's registry: the webhook latency histogram and the state read at scrape time."""

    def __init__(self) -> None:
        self.registry = CollectorRegistry()
        self.webhook_seconds = Histogram(
            "callrouter_webhook_duration_seconds",
            "Seconds this frontend took to answer UIS notifications, by status class"
            " (2xx stored or repeated, 4xx refused or unknown address, 5xx retry later).",
            ["status"],
            buckets=WEBHOOK_BUCKETS,
            registry=self.registry,
        )
        self.state = StateCollector()
        self.registry.register(self.state)

    def render(self, figures: dict[str, Any]) -> bytes:
        """The text exposition with these figures (synchronous: scrapes never interleave)."""
        self.state.figures = figures
        try:
            return generate_latest(self.registry)
        finally:
            self.state.figures = None


METRICS = web.AppKey("metrics", Metrics)


@web.middleware
async def middleware(request: web.Request, handler: Handler) -> web.StreamResponse:
    """Time the notifications webhook, by the class of the status it answered."""
    route = request.match_info.route.resource
    if route is None or route.canonical != NOTIFICATIONS_WEBHOOK:
        return await handler(request)
    started = time.perf_counter()
    status = 500
    try:
        response = await handler(request)
        status = response.status
        return response
    except web.HTTPException as exc:
        status = exc.status
        raise
    finally:
        seconds = time.perf_counter() - started
        request.app[METRICS].webhook_seconds.labels(f"{status // 100}xx").observe(seconds)


@routes.get("/metrics")
@operation(auth="admin", tag="service", kind="text")
async def metrics(request: web.Request) -> web.Response:
    """The metrics in Prometheus text format (names prefixed `callrouter_`)"""
    figures = await _figures(request.app)
    body = request.app[METRICS].render(figures)
    return web.Response(body=body, headers={"Content-Type": CONTENT_TYPE_LATEST})


async def _figures(app: web.Application) -> dict[str, Any]:
    cluster = app[CLUSTER]
    figures: dict[str, Any] = {
        "received": cluster.received,
        "duplicates": cluster.duplicates,
        "rejected": dict(cluster.rejected),
        "consoles": len(app[HUB].sockets),
        "statistics_enabled": cluster.statistics is not None,
    }
    pending: int | None = None
    try:
        async with app[DB].sessions() as session:
            pending = await asyncio.wait_for(count_pending(session), ASK_TIMEOUT)
    except Exception:  # noqa: BLE001 - the database is down: `callrouter_up` says so
        pending = None
    figures["pending"] = pending
    figures.update(await cluster.observe(ASK_TIMEOUT))
    return figures


def _frontend(f: dict[str, Any]) -> Iterator[Metric]:
    received = CounterMetricFamily(
        "callrouter_notifications_received",
        "Notification bodies that reached this frontend's webhook address (stored, repeated,"
        " refused or quarantined).",
    )
    received.add_metric([], f["received"])
    yield received
    rejected = CounterMetricFamily(
        "callrouter_notifications_rejected",
        "Notification bodies this frontend refused with a 4xx and kept for the admin (R33),"
        " by error code.",
        labels=["code"],
    )
    for code, count in sorted(f["rejected"].items()):
        rejected.add_metric([code], count)
    yield rejected
    duplicate = CounterMetricFamily(
        "callrouter_notifications_duplicate",
        "Notification bodies this frontend acknowledged as repeats of stored ones (no effect).",
    )
    duplicate.add_metric([], f["duplicates"])
    yield duplicate
    yield _gauge(
        "callrouter_live_consoles",
        "Staff console WebSocket connections open on this frontend.",
        f["consoles"],
    )


def _cluster(f: dict[str, Any]) -> Iterator[Metric]:
    parts = {
        "database": f["pending"] is not None,
        "shards": f["shards"] is not None,
        "writer": f["writer"] is not None,
    }
    if f["statistics_enabled"]:
        parts["statistics"] = f["statistics"] is not None
    up = GaugeMetricFamily(
        "callrouter_up",
        "1 when the part answered this scrape within 5 s, else 0 (its figures are left out).",
        labels=["part"],
    )
    for part, answered in parts.items():
        up.add_metric([part], 1.0 if answered else 0.0)
    yield up
    if f["pending"] is not None:
        yield _gauge(
            "callrouter_notifications_pending",
            "Notifications acknowledged to UIS whose effects are not durable yet (the inbox"
            " backlog, R32).",
            f["pending"],
        )
    if f["shards"] is not None:
        yield _gauge(
            "callrouter_live_calls",
            "Calls in progress on the shards (not finished yet).",
            sum(s["live_calls"] for s in f["shards"]),
        )
    if f["writer"] is not None:
        yield from _writer(f["writer"])
    statistics = f["statistics"]
    if f["writer"] is not None and statistics is not None:
        yield _gauge(
            "callrouter_statistics_lag_events",
            "Case history events the writer has committed that the statistics counters have"
            " not applied yet.",
            max(0, f["writer"]["history_max"] - statistics["max_id"]),
        )
    if f["lag_seconds"] is not None:
        yield _gauge(
            "callrouter_statistics_lag_seconds",
            "Seconds since the oldest committed case history the statistics have not applied"
            " was committed (0 when they are up to date; a lower bound past the writer's"
            " 4096 latest batches).",
            f["lag_seconds"],
        )


def _writer(w: dict[str, Any]) -> Iterator[Metric]:
    decisions = CounterMetricFamily(
        "callrouter_case_decisions",
        "Finished calls whose cases the writer decided and wrote (since the writer started).",
    )
    decisions.add_metric([], w["decisions"])
    yield decisions
    batches = w["batch_seconds"]
    cumulative, buckets = 0, []
    for bound, count in zip([*batches["bounds"], float("inf")], batches["counts"], strict=True):
        cumulative += count
        buckets.append(("+Inf" if bound == float("inf") else str(float(bound)), cumulative))
    histogram = HistogramMetricFamily(
        "callrouter_decision_batch_seconds",
        "Seconds the writer took to write one batch: the decisions of up to 200 calls, with"
        " recordings and late news (since the writer started).",
    )
    histogram.add_metric([], buckets, batches["sum"])
    yield histogram
    restarts = CounterMetricFamily(
        "callrouter_shard_restarts",
        "Shard actors Ray restarted (a new incarnation the writer met and re-sent their calls"
        " to), by shard, since the writer started.",
        labels=["shard"],
    )
    for shard, count in enumerate(w["shard_restarts"]):
        restarts.add_metric([str(shard)], count)
    yield restarts
    quarantined = CounterMetricFamily(
        "callrouter_quarantined",
        "Calls and bodies set aside in the quarantine with their error (since the writer started).",
    )
    quarantined.add_metric([], w["set_aside"])
    yield quarantined


def _gauge(name: str, documentation: str, value: float) -> GaugeMetricFamily:
    gauge = GaugeMetricFamily(name, documentation)
    gauge.add_metric([], value)
    return gauge
