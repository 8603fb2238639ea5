"""Smart routing over HTTP (issue 11 part 1): UIS's interactive call processing asks
`/webhooks/uis/<secret>/route` where to send a caller, and the admin sets the rules.

The answer comes from memory only: each frontend keeps a `RoutingService` whose view is kept
current in the background — the staff states from the wallboard actor (long-polled), the rules,
active staff and operator phones (re-read every couple of seconds), and the callers' affinity
(`domain.routing.Affinity`: loaded at start, then deltas every second; a talk is seen at once
from the live events this frontend pumps anyway). The request path reads these and calls the
pure `domain.routing.decide`; no database, no Ray call. Whatever goes wrong — bad input, a view
not loaded, stale staff states, a bug — the answer is the scenario's fallback branch, at once.
Decisions are logged one line each and written in batches by the writer afterwards.
"""

from __future__ import annotations

import asyncio
import gc
import logging
import time
import urllib.parse
from collections import Counter
from collections.abc import AsyncIterator, Awaitable, Callable, Mapping
from datetime import UTC, datetime, timedelta
from typing import Any, Protocol

import orjson
from aiohttp import web

from callrouter.domain.phones import normalize_phone
from callrouter.domain.routing import (
    Affinity,
    Decision,
    RoutingRules,
    decide,
    fallback,
    tally,
)
from callrouter.http.keys import ACCOUNT, DB, PUBLIC_URL, STORE
from callrouter.http.operation import operation
from callrouter.http.schemas import (
    Period,
    RouteAnswer,
    RouteQuery,
    RouteRequest,
    RoutingIn,
    RoutingOut,
    RoutingStats,
)
from callrouter.http.stats import period
from callrouter.http.webhook import webhook_account
from callrouter.storage import routing as store
from callrouter.storage.engine import Database

log = logging.getLogger("callrouter.routing")
routes = web.RouteTableDef()

MAX_BODY = 16 * 1024  # UIS sends a handful of short fields
STALE_SECONDS = 5.0  # staff states older than this: fall through rather than ring a busy agent
STATES_TIMEOUT = 1.0  # the board's long-poll: an answer at least this often, changed or not
STATES_EVERY = 0.1  # at most this often: a busy line changes the board constantly
CONFIG_EVERY = 2.0  # rules, active staff and operator phones
DELTA_EVERY = 1.0  # cases, numbers, decided calls
FULL_EVERY = 3600.0  # the whole index again: drops what deltas cannot see (a removed phone)
FLUSH_EVERY = 0.2  # decisions to the writer and the wallboard
HISTORY = timedelta(days=90)  # how far back "who last talked" looks at a full load
MAX_PENDING = 100_000  # decisions held while the writer is away; the oldest go beyond


class RoutingSource(Protocol):
    """What routing needs of the cluster (`actors.cluster.Cluster`; a fake in tests)."""

    async def staff_states(self, after: int, timeout: float) -> tuple[int, dict[int, str]]: ...

    async def run(self, fn: Callable[..., Awaitable[Any]], *args: Any) -> Any: ...

    async def routed(self, items: list[tuple[int, int, datetime]]) -> None: ...


class RoutingService:
    """One frontend's routing view, its background feeds and its decision log."""

    def __init__(self) -> None:
        self.rules: RoutingRules | None = None
        self.active: frozenset[int] = frozenset()
        self.phones: dict[int, tuple[str, ...]] = {}
        self.affinity: Affinity | None = None
        self.states: dict[int, str] = {}
        self.states_at: float | None = None  # monotonic time of the last board answer
        self.pending: list[dict[str, Any]] = []
        self.decided: set[int] = set()  # calls the writer decided: who talked in them
        self.rule_changes = 0  # `set_rules` calls: a read older than the last one is ignored
        self.talks: list[tuple[str, int, float]] | None = None  # seen during a full load
        self.cursors = store.Cursors()
        self.reasons: Counter[str] = Counter()
        self.dropped = 0
        self.stopping = asyncio.Event()  # the database feed ends between steps, not inside one

    # -- the request path (memory only) ----------------------------------------------------

    def decide(self, numa: str | None) -> Decision:
        """The decision for a caller from the view as it is now."""
        rules = self.rules
        if rules is None or self.affinity is None:
            return fallback("not_ready", rules)
        if rules.enabled and (
            self.states_at is None or time.monotonic() - self.states_at > STALE_SECONDS
        ):
            return fallback("stale_view", rules)
        return decide(rules, self.affinity.caller(numa), self.states, self.active, self.phones)

    def record(self, decision: Decision, fields: Mapping[str, Any], elapsed_ms: float) -> None:
        """Log the decision (one line, no numbers) and queue it for the writer."""
        call_id = fields.get("call_session_id")
        self.reasons[decision.reason] += 1
        log.info(
            "routing call %s: %s → %s",
            call_id,
            decision.reason,
            f"staff {decision.staff_id}" if decision.routed else decision.answer(),
            extra={
                "event": "routing_decision",
                "call_session_id": call_id,
                "reason": decision.reason,
                "staff_id": decision.staff_id,
                "returned_code": decision.returned_code,
                "elapsed_ms": round(elapsed_ms, 2),
            },
        )
        details: dict[str, Any] = {"skipped": [list(s) for s in decision.skipped]}
        if (problem := fields.get("problem")) is not None:
            details["problem"] = problem
        if len(self.pending) >= MAX_PENDING:
            self.pending.pop(0)
            self.dropped += 1
        self.pending.append(
            {
                "call_session_id": call_id,
                "at": datetime.now(UTC),
                "caller": normalize_phone(fields.get("numa")),
                "numb": normalize_phone(fields.get("numb")),
                "reason": decision.reason,
                "staff_id": decision.staff_id,
                "case_id": decision.case_id,
                "phones": list(decision.phones),
                "returned_code": decision.returned_code,
                "details": details,
            }
        )

    # -- live events this frontend receives anyway -----------------------------------------

    def observe(self, staff_id: int, event: dict[str, Any]) -> None:
        """A staff member answered (they talk with that number now), or the writer decided a
        call (who talked in it is stored: read it with the next delta). Never raises."""
        try:
            kind = event.get("type")
            if kind == "call.answered" and (digits := normalize_phone(event.get("phone"))):
                now = time.time()
                if self.affinity is not None:
                    self.affinity.talk(digits, staff_id, now)
                if self.talks is not None:
                    self.talks.append((digits, staff_id, now))
            elif kind == "call.decided" and isinstance(event.get("call_session_id"), int):
                self.decided.add(event["call_session_id"])
        except Exception:
            log.exception("routing could not take a live event")

    # -- background ----------------------------------------------------------------------

    async def load(self, db: Database) -> None:
        """The whole view from the database (at start, and every FULL_EVERY)."""
        changes = self.rule_changes
        self.talks = []
        try:
            async with db.sessions() as session:
                staff = await store.load_staff(session)
                affinity, cursors = await store.load_affinity(session, datetime.now(UTC) - HISTORY)
            for digits, staff_id, at in self.talks:
                affinity.talk(digits, staff_id, at)
        finally:
            self.talks = None
        self.active, self.phones = staff.active, staff.phones
        self._read_rules(staff.rules, changes)
        self.affinity, self.cursors = affinity, cursors
        # The index is a few hundred thousand long-lived objects: a full collection that walks
        # them all stalls the event loop ~0.1 s, and at 1,000 requests/s it ran every few
        # seconds (bench_routing's p99). Frozen, the collector leaves them alone; the index
        # holds no cycles, so a replaced one is still freed by reference counting.
        gc.freeze()
        log.info(
            "routing view loaded: %s callers, %s staff with phones", len(affinity), len(self.phones)
        )

    async def refresh_config(self, db: Database) -> None:
        changes = self.rule_changes
        async with db.sessions() as session:
            staff = await store.load_staff(session)
        self.active, self.phones = staff.active, staff.phones
        self._read_rules(staff.rules, changes)

    def set_rules(self, rules: RoutingRules) -> None:
        """This frontend's admin changed them: at once, whatever a read on its way says."""
        self.rule_changes += 1
        self.rules = rules

    def _read_rules(self, rules: RoutingRules, changes: int) -> None:
        """Rules read from the database, unless `set_rules` came while the read was on its
        way (the read may predate the change: it would undo it for seconds)."""
        if changes == self.rule_changes:
            self.rules = rules

    async def refresh_delta(self, db: Database) -> None:
        if self.affinity is None:
            return
        calls, self.decided = sorted(self.decided), set()
        try:
            async with db.sessions() as session:
                await store.apply_delta(session, self.affinity, self.cursors)
                await store.apply_calls(session, self.affinity, calls)
        except BaseException:
            self.decided.update(calls)  # read them next time
            raise

    async def flush(self, source: RoutingSource) -> None:
        """Write the queued decisions (one unit of work) and tell the wallboard the routed
        ones. A failed write keeps them for the next flush."""
        if not self.pending:
            return
        rows, self.pending = self.pending, []
        try:
            await source.run(store.save_decisions, rows)
        except BaseException:
            self.pending[:0] = rows
            raise
        routed = [
            (r["call_session_id"], r["staff_id"], r["at"])
            for r in rows
            if r["staff_id"] is not None and r["call_session_id"] is not None
        ]
        if routed:
            await source.routed(routed)

    async def follow_states(self, source: RoutingSource) -> None:
        loop = asyncio.get_running_loop()
        seq = -1
        while True:
            started = loop.time()
            try:
                seq, states = await source.staff_states(seq, STATES_TIMEOUT)
                self.states, self.states_at = states, time.monotonic()
            except asyncio.CancelledError:
                raise
            except Exception:
                log.exception("routing: the staff states did not come")
                await asyncio.sleep(1.0)
            await asyncio.sleep(max(0.0, started + STATES_EVERY - loop.time()))

    async def follow_database(self, db: Database, source: RoutingSource) -> None:
        """The load, config, delta and flush steps, each on its own period; a step that fails
        is logged and tried again a second later."""
        loop = asyncio.get_running_loop()
        steps: list[tuple[float, Callable[[], Awaitable[None]]]] = [
            (FULL_EVERY, lambda: self.load(db)),
            (CONFIG_EVERY, lambda: self.refresh_config(db)),
            (DELTA_EVERY, lambda: self.refresh_delta(db)),
            (FLUSH_EVERY, lambda: self.flush(source)),
        ]
        due = [0.0] * len(steps)
        while not self.stopping.is_set():
            for i, (every, step) in enumerate(steps):
                if loop.time() < due[i]:
                    continue
                try:
                    await step()
                    due[i] = loop.time() + every
                    if i == 0:  # a full load is also a config read and a delta
                        due[1], due[2] = loop.time() + CONFIG_EVERY, loop.time() + DELTA_EVERY
                except asyncio.CancelledError:
                    raise
                except Exception:
                    log.exception("routing: a background step failed; it runs again shortly")
                    due[i] = loop.time() + max(1.0, every)
                    if self.affinity is None:
                        break  # nothing else works before the first load
            try:
                await asyncio.wait_for(self.stopping.wait(), FLUSH_EVERY / 2)
            except TimeoutError:
                pass

    def status(self) -> dict[str, Any]:
        age = None if self.states_at is None else round(time.monotonic() - self.states_at, 3)
        return {
            "loaded": self.affinity is not None and self.rules is not None,
            "callers": len(self.affinity) if self.affinity is not None else 0,
            "states_age_seconds": age,
        }


ROUTING: web.AppKey[RoutingService] = web.AppKey("routing", RoutingService)


def tapped(
    app: web.Application, publish: Callable[[int, dict[str, Any]], Awaitable[None]]
) -> Callable[[int, dict[str, Any]], Awaitable[None]]:
    """The live-event sink with this frontend's routing view looking on."""

    async def sink(staff_id: int, event: dict[str, Any]) -> None:
        if (service := app.get(ROUTING)) is not None:
            service.observe(staff_id, event)
        await publish(staff_id, event)

    return sink


def service_ctx(
    source_of: Callable[[web.Application], RoutingSource],
) -> Callable[[web.Application], AsyncIterator[None]]:
    """A cleanup context running the routing feeds; `source_of(app)` once the app started."""

    async def ctx(app: web.Application) -> AsyncIterator[None]:
        service = app.get(ROUTING) or RoutingService()
        app[ROUTING] = service
        source = source_of(app)
        states = asyncio.create_task(service.follow_states(source))
        database = asyncio.create_task(service.follow_database(app[DB], source))
        yield
        states.cancel()
        service.stopping.set()
        try:  # a statement cut off mid-way would answer into a closed loop
            await asyncio.wait_for(asyncio.shield(database), 5.0)
        except TimeoutError:
            database.cancel()
        await asyncio.gather(states, database, return_exceptions=True)
        try:  # what was decided last still reaches the database
            await asyncio.wait_for(service.flush(source), 5.0)
        except Exception:
            log.exception("routing: the last decisions could not be written")

    return ctx


# -- the endpoint UIS calls --------------------------------------------------------------------


async def _fields(request: web.Request) -> dict[str, Any]:
    """The query's fields with a POST body's over them (form or JSON); `problem` names what
    made them unusable."""
    fields: dict[str, Any] = dict(request.query)
    if request.method == "POST":
        raw = await request.content.read(MAX_BODY + 1)
        if len(raw) > MAX_BODY:
            return fields | {"problem": "body_too_large"}
        body: Any = None
        text = raw.decode("utf-8", "replace").strip()
        if text.startswith("{"):
            try:
                body = orjson.loads(raw)
            except orjson.JSONDecodeError:
                return fields | {"problem": "invalid_json"}
        elif text:
            body = dict(urllib.parse.parse_qsl(text, keep_blank_values=True))
        if isinstance(body, dict):
            fields |= {k: v for k, v in body.items() if isinstance(k, str)}
    return _checked(fields)


def _checked(fields: dict[str, Any]) -> dict[str, Any]:
    """`call_session_id` as an int and `numa` present, or a `problem` saying which is not."""
    raw_id = fields.get("call_session_id")
    if raw_id is not None and raw_id != "":
        try:
            call_id = int(str(raw_id).strip())
        except ValueError:
            call_id = 0
        if not 0 < call_id < 1 << 63 or isinstance(raw_id, bool):
            return fields | {"call_session_id": None, "problem": "invalid_call_session_id"}
        fields["call_session_id"] = call_id
    else:
        fields["call_session_id"] = None
    numa = fields.get("numa")
    if numa is None or (isinstance(numa, str) and not numa.strip()):
        return fields | {"problem": "missing_numa"}
    fields["numa"] = str(numa)
    if fields.get("numb") is not None:
        fields["numb"] = str(fields["numb"])
    return fields


@routes.post("/webhooks/uis/{secret}/route")
@operation(
    auth="none",
    tag="webhook",
    body=RouteRequest,
    own_body=True,
    answer=RouteAnswer,
    errors=(404,),
)
async def route(request: web.Request) -> web.Response:
    """UIS interactive call processing: where to send this caller (issue 11)

    Form fields, a JSON object or a query (GET or POST) with `call_session_id`, `numa` (the
    caller), `numb`, `cdr_id`, `start_time`, `input_result`. Answers `{"phones": [...]}` — the
    operator phones of the free assignee of the caller's open or waiting case, else of the free
    staff member who last talked with them — or `{"returned_code": N}`, the scenario branch the
    admin set, for everything else: routing off, an unknown caller, nobody free, bad input, a
    view not loaded yet or any failure. Always 200 and at once, from memory; 404 only for a
    wrong address."""
    return await _route(request)


@routes.get("/webhooks/uis/{secret}/route")
@operation(auth="none", tag="webhook", query=RouteQuery, answer=RouteAnswer, errors=(404,))
async def route_query(request: web.Request) -> web.Response:
    """UIS interactive call processing, the same fields in the query (issue 11)

    As the POST: UIS may be set up to send either."""
    return await _route(request)


async def _route(request: web.Request) -> web.Response:
    started = time.perf_counter()
    await webhook_account(request)
    service = request.app.get(ROUTING)
    fields: dict[str, Any] = {}
    try:
        fields = await _fields(request)
        if service is None:
            decision = fallback("not_ready")
        elif fields.get("problem"):
            decision = fallback("bad_request", service.rules)
        else:
            decision = service.decide(fields["numa"])
    except Exception:
        log.exception("routing failed; answering the fallback")
        decision = fallback("error", service.rules if service else None)
        fields.setdefault("problem", "error")
    if service is not None:
        service.record(decision, fields, (time.perf_counter() - started) * 1000)
    return web.Response(body=orjson.dumps(decision.answer()), content_type="application/json")


# -- admin -------------------------------------------------------------------------------------


def _route_url(request: web.Request) -> str | None:
    integration = request.app[ACCOUNT].value.integration
    if integration is None:
        return None
    base = request.app.get(PUBLIC_URL) or f"{request.scheme}://{request.host}"
    return f"{base.rstrip('/')}/webhooks/uis/{integration.webhook_secret}/route"


def _answer(request: web.Request, rules: Mapping[str, Any]) -> dict[str, Any]:
    service = request.app.get(ROUTING)
    view = (
        service.status() if service else {"loaded": False, "callers": 0, "states_age_seconds": None}
    )
    return dict(rules) | {"route_url": _route_url(request), "view": view}


@routes.get("/api/v1/routing")
@operation(auth="admin", tag="routing", answer=RoutingOut)
async def get_routing(request: web.Request) -> dict[str, Any]:
    """Smart routing's settings, the URL for UIS and this frontend's view"""
    async with request.app[DB].sessions() as session:
        rules = await store.load_rules(session)
    return _answer(request, rules.json())


@routes.put("/api/v1/routing")
@operation(auth="admin", tag="routing", body=RoutingIn, answer=RoutingOut, errors=(422,))
async def put_routing(request: web.Request, body: RoutingIn) -> dict[str, Any]:
    """Change any of smart routing's settings

    Other frontends take the change within a few seconds; this one at once."""
    rules = await request.app[STORE].run(store.save_rules, body.model_dump(exclude_unset=True))
    if (service := request.app.get(ROUTING)) is not None:
        service.set_rules(RoutingRules.from_json(rules))
    return _answer(request, rules)


@routes.get("/api/v1/routing/stats")
@operation(auth="any", tag="routing", query=Period, answer=RoutingStats, errors=(422,))
async def routing_stats(request: web.Request) -> dict[str, Any]:
    """Calls routed in a period and how many reached their own agent

    By when they were routed, per staff member; `by_reason` counts every decision."""
    tz = request.app[ACCOUNT].value.tz
    start, end = period(request.query, tz, datetime.now(tz))
    async with request.app[DB].sessions() as session:
        routed, talked, reasons = await store.routed_between(session, start, end)
    counts = tally(routed, talked)
    return {
        "from": start.isoformat(),
        "to": end.isoformat(),
        "routed": sum(r for r, _ in counts.values()),
        "reached": sum(r for _, r in counts.values()),
        "by_reason": reasons,
        "per_staff": [
            {"staff_id": s, "routed": r, "reached": h} for s, (r, h) in sorted(counts.items())
        ],
    }
