"""Reconciliation with the UIS Data API over HTTP (issue 11 part 2): run it now for a period,
list the runs with their repairs, and the periodic job's settings. Admin only.

The job itself lives in the writer actor (`reconciler.py`, one per cluster); a request here
queues a run there and answers 202 with its id at once: a period of a day reads a few pages of
the Data API, longer ones many more.
"""

from __future__ import annotations

from dataclasses import asdict
from datetime import datetime, timedelta
from typing import Any

from aiohttp import web

from callrouter.domain.account import Account
from callrouter.http.errors import conflict, unprocessable
from callrouter.http.keys import CLUSTER, CONTROL, DATA_API_URL, DB, STORE
from callrouter.http.operation import operation
from callrouter.http.render import iso
from callrouter.http.schemas import (
    Paging,
    ReconcileIn,
    ReconcileQueued,
    ReconcileRuns,
    ReconcileSettingsIn,
    ReconcileSettingsOut,
)
from callrouter.http.stats import parse_moment
from callrouter.storage import directory
from callrouter.storage import reconcile as store

routes = web.RouteTableDef()

MAX_PERIOD = timedelta(days=92)  # a quarter: the Data API is asked in pieces of 90 days


def reconcile_period(raw_from: str, raw_to: str, tz: Any) -> tuple[datetime, datetime]:
    """[from, to) of a run; 422 `invalid_period` (unreadable, `from` not before `to`) or
    `period_too_long`."""
    start, end = parse_moment(raw_from, tz, "from"), parse_moment(raw_to, tz, "to")
    if end <= start:
        raise unprocessable(
            "invalid_period", "`from` must be before `to` (the period is [from, to))."
        )
    if end - start > MAX_PERIOD:
        raise unprocessable(
            "period_too_long",
            f"A reconciliation covers at most {MAX_PERIOD.days} days; run it for shorter periods.",
        )
    return start, end


@routes.post("/api/v1/reconcile")
@operation(
    auth="admin",
    tag="reconcile",
    body=ReconcileIn,
    answer=ReconcileQueued,
    status=202,
    errors=(409, 422),
)
async def reconcile_now(request: web.Request, body: ReconcileIn) -> dict[str, Any]:
    """Run the reconciliation with the UIS Data API now, for calls that started in [from, to)

    Asks `get.calls_report` and `get.call_legs_report` for the period and stores every
    notification UIS never sent, so the calls end in the cases they would have had; what it
    repaired is listed at `GET /api/v1/reconcile`. Works whether or not the periodic run is on.
    409 `integration_not_configured` before the integration (its API key) is saved; 422
    `invalid_period` or `period_too_long` (over 92 days)."""
    account = await _account(request)
    start, end = reconcile_period(body.from_, body.to, account.tz)
    if account.integration is None:
        raise conflict(
            "integration_not_configured",
            "Save the UIS integration (its API key) first: the Data API is asked with it.",
        )
    run_id = await request.app[CLUSTER].reconcile(start, end, request.app.get(DATA_API_URL))
    return {"id": run_id, "status": "queued"}


@routes.get("/api/v1/reconcile")
@operation(auth="admin", tag="reconcile", query=Paging, answer=ReconcileRuns)
async def reconcile_runs(request: web.Request, query: Paging) -> dict[str, Any]:
    """The reconciliation runs, newest first, with their repairs

    Each run: its period, trigger (`schedule` / `admin`), status (`queued`, `running`, `done`,
    `failed` with `error_code` and `error` in words), calls the Data API reported, repairs per
    kind and the repairs themselves. `held_calls`: ended calls waiting past the lateness bound
    for the run that repairs them."""
    async with request.app[DB].sessions() as session:
        tz = (await directory.load_account(session)).tz
        rows, total = await store.list_runs(session, query.limit, query.offset)
    held = await request.app[CLUSTER].reconcile_held()
    return {"items": [_run(r, tz) for r in rows], "total": total, "held_calls": held}


async def _account(request: web.Request) -> Account:
    async with request.app[DB].sessions() as session:
        return await directory.load_account(session)


def _run(row: Any, tz: Any) -> dict[str, Any]:
    repairs = [{**r, "at": iso(datetime.fromisoformat(r["at"]), tz)} for r in row.repairs or []]
    return {
        "id": row.id,
        "trigger": row.trigger,
        "from": iso(row.period_from, tz),
        "to": iso(row.period_to, tz),
        "started_at": iso(row.started_at, tz),
        "finished_at": iso(row.finished_at, tz),
        "status": row.status,
        "error_code": row.error_code,
        "error": row.error,
        "calls_seen": row.calls_seen or 0,
        "counts": dict(row.counts or {}),
        "repairs": repairs,
    }


@routes.get("/api/v1/reconcile/settings")
@operation(auth="admin", tag="reconcile", answer=ReconcileSettingsOut)
async def get_reconcile_settings(request: web.Request) -> dict[str, Any]:
    """The periodic reconciliation's settings"""
    async with request.app[DB].sessions() as session:
        settings = await store.load_settings(session)
    return _settings(settings, (await _account(request)).integration is not None)


@routes.put("/api/v1/reconcile/settings")
@operation(
    auth="admin",
    tag="reconcile",
    body=ReconcileSettingsIn,
    answer=ReconcileSettingsOut,
    errors=(422,),
)
async def put_reconcile_settings(request: web.Request, body: ReconcileSettingsIn) -> dict[str, Any]:
    """Change the periodic reconciliation's settings (any of them)

    `enabled` turns the periodic run on or off (it also decides whether calls with gaps are
    held for it); the shards take the new hold at once, the job at its next round."""
    changes = body.model_dump(exclude_none=True)
    settings = await request.app[STORE].run(_save, changes)
    await request.app[CONTROL].config_changed()
    return _settings(settings, (await _account(request)).integration is not None)


async def _save(session: Any, changes: dict[str, Any]) -> store.ReconcileSettings:
    """A unit of work in the writer (its own transaction)."""
    return await store.save_settings(session, **changes)


def _settings(settings: store.ReconcileSettings, integrated: bool) -> dict[str, Any]:
    return asdict(settings) | {"hold_seconds": int(store.hold_seconds(settings, integrated))}
