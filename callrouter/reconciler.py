"""The reconciliation job (issue 11 part 2): ask the UIS Data API what happened in a period,
compare with what arrived (`domain/reconcile.py`), and send what never came through the
writer's inbox like webhook bodies, so the cases end as if UIS had sent everything.

It lives in the writer actor (one per cluster, restarted by Ray: exactly one runner, no lease
to keep), which is also where its repairs are stored: `ingest` is the writer's own. Runs are
serialized; each is a row in `reconcile_runs` with its period, status, error in words, counts
per kind and the repairs. The periodic loop reads its settings and the integration every round,
so turning it off or changing the key needs no restart; without an integration it does nothing.
"""

from __future__ import annotations

import asyncio
import logging
from collections import Counter
from collections.abc import Awaitable, Callable
from datetime import UTC, datetime, timedelta
from typing import Any, Protocol
from zoneinfo import ZoneInfo

import aiohttp

from callrouter.callapi import CallApiError
from callrouter.dataapi import DataApiReports, data_api_url
from callrouter.domain.account import Integration
from callrouter.domain.notifications import Notification
from callrouter.domain.reconcile import ReportError, missing, parse_call, parse_leg
from callrouter.domain.uis import parse_body, parse_notification
from callrouter.storage import directory
from callrouter.storage import reconcile as store
from callrouter.storage.engine import Database
from callrouter.storage.inbox import body_hash

log = logging.getLogger("callrouter.reconcile")

LIMIT_BACKOFF = 5.0  # seconds before asking again after `limit_exceeded` (doubling)

Ingest = Callable[[list[tuple[bytes, Notification, datetime]]], Awaitable[list[int | None]]]
Run = Callable[..., Awaitable[Any]]  # `fn(session, *args)` in a writer transaction; its result


class Reports(Protocol):
    """The Data API's reports for a period (`dataapi.DataApiReports`, or test doubles)."""

    async def calls_report(
        self, start: datetime, end: datetime, tz: ZoneInfo
    ) -> list[dict[str, Any]]: ...

    async def call_legs_report(
        self, start: datetime, end: datetime, tz: ZoneInfo
    ) -> list[dict[str, Any]]: ...


ReportsFor = Callable[[Integration], Reports]


class HttpReports:
    """`Reports` from the real Data API (`dataapi.DataApiReports`), an HTTP session per report
    (a run asks twice, minutes apart at most: nothing to keep open between runs)."""

    def __init__(self, url: str, access_token: str, limit_backoff: float = LIMIT_BACKOFF) -> None:
        self.url, self.access_token, self.limit_backoff = url, access_token, limit_backoff

    async def calls_report(
        self, start: datetime, end: datetime, tz: ZoneInfo
    ) -> list[dict[str, Any]]:
        async with aiohttp.ClientSession() as session:
            return await self._client(session).calls_report(start, end, tz)

    async def call_legs_report(
        self, start: datetime, end: datetime, tz: ZoneInfo
    ) -> list[dict[str, Any]]:
        async with aiohttp.ClientSession() as session:
            return await self._client(session).call_legs_report(start, end, tz)

    def _client(self, session: aiohttp.ClientSession) -> DataApiReports:
        return DataApiReports(
            session, self.url, self.access_token, limit_backoff=self.limit_backoff
        )


def http_reports(url: str | None = None, limit_backoff: float = LIMIT_BACKOFF) -> ReportsFor:
    """Reports with the integration's key, at `url` (`serve --data-api-url`) or beside the
    integration's Call API URL."""
    return lambda i: HttpReports(url or data_api_url(i.call_api_url), i.api_key, limit_backoff)


class Reconciler:
    def __init__(
        self,
        db: Database,
        run: Run,
        ingest: Ingest,
        reports_for: ReportsFor,
        *,
        now: Callable[[], datetime] = lambda: datetime.now(UTC),
    ) -> None:
        """`run` writes (the writer's units of work), `ingest` stores repairs as webhook bodies,
        `reports_for(integration)` asks the Data API with its key, `now` is the clock."""
        self.db = db
        self._run = run
        self._ingest = ingest
        self._reports_for = reports_for
        self._now = now
        self._lock = asyncio.Lock()
        self._tasks: set[asyncio.Task[None]] = set()

    async def request(self, start: datetime, end: datetime, trigger: str = "admin") -> int:
        """Queue a run over calls that started in [start, end); its id at once."""
        run_id: int = await self._run(store.create_run, trigger, start, end, self._now())
        task = asyncio.create_task(self._guarded(run_id, start, end))
        self._tasks.add(task)
        task.add_done_callback(self._tasks.discard)
        return run_id

    @property
    def busy(self) -> bool:
        """A run is queued or going on."""
        return bool(self._tasks)

    def stop(self) -> None:
        """Cancel what is queued or running (its row is failed as interrupted next start)."""
        for task in list(self._tasks):
            task.cancel()

    async def wait(self) -> None:
        """Until every queued run is over (tests)."""
        while self._tasks:
            await asyncio.gather(*list(self._tasks), return_exceptions=True)

    async def _guarded(self, run_id: int, start: datetime, end: datetime) -> None:
        try:
            await self.execute(run_id, start, end)
        except Exception as exc:  # the run's row says what went wrong
            log.exception("reconciliation run %s failed", run_id)
            await self._finish(run_id, "failed", error_code="internal_error", error=str(exc))

    async def execute(self, run_id: int, start: datetime, end: datetime) -> None:
        """Do one run: read the reports, compare, store the repairs, record the outcome."""
        async with self._lock:
            await self._run(_set_running, run_id)
            async with self.db.sessions() as session:
                account = await directory.load_account(session)
                settings = await store.load_settings(session)
            integration = account.integration
            if integration is None:
                await self._finish(
                    run_id,
                    "failed",
                    error_code="integration_not_configured",
                    error="The UIS integration is not saved: the Data API is asked with its key.",
                )
                return
            tz = account.tz
            reports = self._reports_for(integration)
            try:
                call_rows = await reports.calls_report(start, end, tz)
                leg_rows = await reports.call_legs_report(start, end, tz)
                calls = [parse_call(r, tz) for r in call_rows]
                legs = [parse_leg(r, tz) for r in leg_rows]
            except CallApiError as exc:
                await self._finish(run_id, "failed", error_code=exc.code, error=exc.message)
                return
            except ReportError as exc:
                await self._finish(
                    run_id,
                    "failed",
                    error_code="uis_bad_response",
                    error=f"The UIS Data API answered a row this service cannot read: {exc}",
                )
                return
            cutoff = self._now() - timedelta(seconds=settings.margin_seconds)
            async with self.db.engine.connect() as conn:
                have = await store.arrived(conn, [c.id for c in calls], tz)
            repairs = missing(calls, legs, have, cutoff)
            now = self._now()
            items = [
                (r.body, parse_notification(parse_body(r.body), tz, now), now) for r in repairs
            ]
            ids = await self._ingest(items) if items else []
            counts = Counter(r.kind.value for r in repairs)
            whole = {r.call_session_id for r in repairs if r.whole_call}
            if whole:
                counts["whole_calls"] = len(whole)
            listed = [
                {
                    "kind": r.kind.value,
                    "call_session_id": r.call_session_id,
                    "leg_id": r.leg_id,
                    "at": r.time.isoformat(),
                    "whole_call": r.whole_call,
                    "stored": inbox_id is not None,
                }
                for r, inbox_id in zip(repairs, ids, strict=True)
            ]
            log.info(
                "reconciliation run %s: %s call(s) reported, %s repair(s)",
                run_id,
                len(calls),
                len(repairs),
                extra={"event": "reconcile", "run": run_id, "repairs": len(repairs)},
            )
            await self._finish(
                run_id,
                "done",
                calls_seen=len(calls),
                counts=dict(counts),
                repairs=listed,
                body_hashes=[body_hash(r.body) for r in repairs],
            )

    async def _finish(self, run_id: int, status: str, **values: Any) -> None:
        values |= {"status": status, "finished_at": self._now()}
        await self._run(store.update_run, run_id, values)

    async def prepare(self) -> int:
        """Fail the runs a stopped writer left queued or running; how many."""
        count: int = await self._run(store.interrupt_runs, self._now())
        return count

    async def loop(self) -> None:
        """Every `interval_seconds` (when enabled and the integration is saved), a run over
        the last `lookback_seconds`; a round that cannot even start is tried again later."""
        settings = store.ReconcileSettings()
        while True:
            try:
                async with self.db.sessions() as session:
                    settings = await store.load_settings(session)
                    integration = (await directory.load_account(session)).integration
                if settings.enabled and integration is not None and not self.busy:
                    end = self._now()
                    start = end - timedelta(seconds=settings.lookback_seconds)
                    await self.request(start, end, "schedule")
            except Exception:
                log.exception("starting a scheduled reconciliation failed")
            await asyncio.sleep(settings.interval_seconds)


async def _set_running(session: Any, run_id: int) -> None:
    await store.update_run(session, run_id, {"status": "running"})
