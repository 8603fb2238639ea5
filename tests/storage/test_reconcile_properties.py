"""Issue 11 part 2 (R32 "may never send some") as a property of the whole path: notifications
dropped at random (any of the six kinds, whole calls too), the reconciliation running on its
schedule against what the Data API reports of the complete stream, end in the same cases as the
complete stream (`testing.fingerprint`); each drop is repaired once, and a last run repairs
nothing.

Runs in the in-process pipeline (`testing.pipeline`: parser, inbox, dispatch, shard hosts, the
case store on SQLite) in virtual time, with the real `Reconciler` (every INTERVAL seconds while
the traffic goes on, then after the last call) and an in-memory Data API.

A repair changes a case only if it reaches the call before its decision. At the default
lateness bound (30 s) that holds for what the call's own facts reveal (`CallState.gaps`: the
call is held for the run), for recordings, and for calls whose end never came (they stay live);
the first test drops only such notifications. Drops no call end can reveal (a whole leg of a
missed call, a whole call before the caller's next one) are repaired exactly only when the
lateness bound exceeds the run's interval and margin: the second test, at 1800 s.
"""

from __future__ import annotations

import asyncio
import random
import shutil
import tempfile
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any
from zoneinfo import ZoneInfo

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from callrouter.domain.call import CallState
from callrouter.domain.notifications import Kind
from callrouter.domain.templates import NAMES
from callrouter.domain.uis import parse_body, parse_notification
from callrouter.reconciler import Reconciler
from callrouter.storage import directory
from callrouter.storage import reconcile as store
from callrouter.storage.engine import Database
from callrouter.storage.local import LocalStore
from callrouter.testing import fingerprint
from callrouter.testing import uis_bodies as ub
from callrouter.testing.fake_uis import reports_from_stream
from callrouter.testing.pipeline import Pipeline

MSK = ZoneInfo("Europe/Moscow")
LONG_LATENESS = 1800.0
SILENT = 7200.0
MARGIN = 120
INTERVAL = 600
SETTINGS = store.ReconcileSettings(True, interval_seconds=INTERVAL, margin_seconds=MARGIN)
HOLD = store.hold_seconds(SETTINGS, True)
E1, E2, E9 = 1101, 1102, 1199  # E9 is not mapped
STAFF_OF = {E1: 1, E2: 2}
SCENARIOS = ("answered", "missed", "voice_menu", "transfer", "out_yes", "out_no", "dial")
KINDS = tuple(NAMES)  # the six notification kinds
START = datetime(2026, 11, 2, 9, 0)
PROPERTY = settings(max_examples=20, deadline=None, suppress_health_check=[HealthCheck.too_slow])


def call_events(
    kind: str, call_id: int, start: datetime, phone: str, rng: random.Random
) -> list[ub.Event]:
    return ub.scenario(kind, call_id, start, phone, (E1, E2, E9), rng)


def whole_seconds(events: list[ub.Event]) -> list[ub.Event]:
    """The stream with every time cut to the second: the Data API reports whole seconds, so
    only such a stream can be rebuilt exactly from it."""
    out = []
    for t, body in events:
        t = t.replace(microsecond=0)
        out.append((t, {**body, "notification_time": ub.format_time(t)}))
    return out


@st.composite
def traffic(draw: st.DrawFn) -> tuple[list[ub.Event], list[bool]]:
    """A few calls of two callers and which of their bodies are dropped."""
    rng = random.Random(draw(st.integers(0, 2**32)))
    events: list[ub.Event] = []
    start = START
    for i in range(draw(st.integers(2, 5))):
        start += timedelta(seconds=draw(st.integers(60, 400)))
        phone = draw(st.sampled_from(["79260000001", "79260000002"]))
        events += call_events(draw(st.sampled_from(SCENARIOS)), 1000 + i, start, phone, rng)
    events = whole_seconds(sorted(events, key=lambda e: e[0]))
    kinds = draw(st.sets(st.sampled_from(KINDS), min_size=1))
    rate = draw(st.sampled_from([0.3, 0.6, 1.0]))
    names = {NAMES[k] for k in kinds}
    drop_rng = random.Random(draw(st.integers(0, 2**32)))
    dropped = [b["notification_name"] in names and drop_rng.random() < rate for _, b in events]
    return events, dropped


def revealed_only(events: list[ub.Event], dropped: list[bool]) -> list[bool]:
    """The drops a reconciliation repairs exactly at the default lateness bound: recordings;
    a call's drops when its delivered facts show gaps (`CallState.gaps`: it is held for the
    run); a call whose end was dropped and that ends last of its caller's (it stays live, and no
    later-ending call of the caller is decided before it, R16). Every other call's drops are delivered."""
    notes = [
        parse_notification(parse_body(ub.encode(b)), MSK, datetime.fromtimestamp(epoch(t), UTC))
        for t, b in events
    ]
    by_call: dict[int, list[int]] = {}
    for i, n in enumerate(notes):
        by_call.setdefault(n.call_session_id, []).append(i)
    ends = {
        n.call_session_id: (n.time, n.call_session_id) for n in notes if n.kind is Kind.CALL_END
    }
    last_end = {}  # per caller, the call that ends last: R16 decides it last
    for call_id, idx in by_call.items():
        phone = notes[idx[0]].phone
        last_end[phone] = max(last_end.get(phone, ends[call_id]), ends[call_id])
    kept = list(dropped)
    for call_id, idx in by_call.items():
        state = CallState(call_id)
        lost = set()
        for i in idx:
            if not dropped[i]:
                state.apply(notes[i], epoch(events[i][0]))
            elif notes[i].kind is not Kind.RECORDING:
                lost.add(notes[i].kind)
        if not lost or state.gaps():
            continue
        if Kind.CALL_END in lost and last_end[notes[idx[0]].phone] == ends[call_id]:
            continue
        for i in idx:
            if notes[i].kind is not Kind.RECORDING:
                kept[i] = False
    return kept


def epoch(t: datetime) -> float:
    return t.replace(tzinfo=MSK).timestamp()


class Truth:
    """The Data API, answering from the complete stream's reports."""

    def __init__(self, events: list[ub.Event]) -> None:
        self.calls, self.legs = reports_from_stream([b for _, b in events], MSK)

    async def calls_report(
        self, start: datetime, end: datetime, tz: ZoneInfo
    ) -> list[dict[str, Any]]:
        return [c for c in self.calls if _within(c["start_time"], start, end, tz)]

    async def call_legs_report(
        self, start: datetime, end: datetime, tz: ZoneInfo
    ) -> list[dict[str, Any]]:
        ids = {c["id"] for c in await self.calls_report(start, end, tz)}
        return [g for g in self.legs if g["call_session_id"] in ids]


def _within(value: str, start: datetime, end: datetime, tz: ZoneInfo) -> bool:
    moment = datetime.fromisoformat(value).replace(tzinfo=tz)
    return start <= moment < end


async def prepare(path: Path) -> Database:
    db = Database(f"sqlite:///{path}")
    await db.create_schema()
    async with db.sessions() as session, session.begin():
        for name in ("Анна", "Борис"):
            await directory.create_staff(session, name, f"{name}@example.test")
        await directory.save_integration(session, "key", "74950000000")
    return db


async def deliver(pipeline: Pipeline, events: list[ub.Event]) -> float:
    """Every body, at its event time; the wall time after the last."""
    wall = epoch(events[0][0])
    for t, body in events:
        wall = epoch(t) + 0.01
        await pipeline.tick(wall)
        await pipeline.post(ub.encode(body), wall)
    return wall


class Clock:
    def __init__(self, at: float) -> None:
        self.at = at

    def __call__(self) -> datetime:
        return datetime.fromtimestamp(self.at, UTC)


async def scenario(
    events: list[ub.Event], dropped: list[bool], work: Path, lateness: float, hold: float
) -> tuple[fingerprint.Fingerprint, fingerprint.Fingerprint, list[dict[str, int]]]:
    """(complete stream's cases, cases after drops and reconciliations, each run's counts)."""
    complete_path, dropped_path = work / "complete.sqlite3", work / "dropped.sqlite3"
    db = await prepare(complete_path)
    try:
        pipeline = Pipeline(db, STAFF_OF, lateness=lateness, silent_timeout=SILENT)
        last = await deliver(pipeline, events)
        await pipeline.settle(last + 1.0, step=60.0)
        assert pipeline.set_aside == []
    finally:
        await db.dispose()
    db = await prepare(dropped_path)
    counts = []
    try:
        pipeline = Pipeline(db, STAFF_OF, lateness=lateness, silent_timeout=SILENT, hold=hold)
        clock = Clock(epoch(events[0][0]))

        async def ingest(items: list[Any]) -> list[int | None]:
            return await pipeline.post_many([raw for raw, _, _ in items], clock.at)

        truth = Truth(events)
        reconciler = Reconciler(db, LocalStore(db).run, ingest, lambda _i: truth, now=clock)

        async def reconcile() -> dict[str, int]:
            await pipeline.tick(clock.at)
            run_id = await reconciler.request(START.replace(tzinfo=MSK), clock())
            await reconciler.wait()
            async with db.sessions() as session:
                [run], _ = await store.list_runs(session, 1, 0)
            assert run.id == run_id and run.status == "done", run.error
            return dict(run.counts)

        # The scheduled runs, every INTERVAL seconds while the traffic goes on (what a held
        # call's deadline counts on), then one after the last call, then one more that must
        # find nothing left to repair.
        next_run = clock.at + INTERVAL
        for (t, body), drop in zip(events, dropped, strict=True):
            while next_run <= epoch(t):
                clock.at = next_run
                counts.append(await reconcile())
                next_run += INTERVAL
            clock.at = epoch(t) + 0.01
            if not drop:
                await pipeline.tick(clock.at)
                await pipeline.post(ub.encode(body), clock.at)
        clock.at += MARGIN + 10
        for _ in range(2):
            counts.append(await reconcile())
            await pipeline.settle(clock.at, step=60.0)
            clock.at += 60.0
        assert pipeline.set_aside == []
    finally:
        await db.dispose()
    return (
        await fingerprint.from_database(complete_path),
        await fingerprint.from_database(dropped_path),
        counts,
    )


def check(events: list[ub.Event], dropped: list[bool], lateness: float, hold: float) -> None:
    work = Path(tempfile.mkdtemp())
    try:
        expected, got, counts = asyncio.run(scenario(events, dropped, work, lateness, hold))
        assert got == expected, fingerprint.diff(expected, got)
        repaired = sum(v for run in counts for k, v in run.items() if k != "whole_calls")
        assert repaired == sum(dropped)  # each drop repaired once, by one run or another
        assert counts[-1] == {}  # idempotent: nothing left to repair
    finally:
        shutil.rmtree(work, ignore_errors=True)


@PROPERTY
@given(case=traffic())
def test_r32_at_the_default_lateness_held_calls_end_as_the_complete_stream(
    case: tuple[list[ub.Event], list[bool]],
) -> None:
    """Default lateness (30 s), reconciliation on: calls with gaps are held for the run."""
    events, dropped = case
    check(events, revealed_only(events, dropped), 30.0, HOLD)


@PROPERTY
@given(case=traffic())
def test_r32_drops_no_call_end_reveals_need_a_lateness_beyond_interval_and_margin(
    case: tuple[list[ub.Event], list[bool]],
) -> None:
    """Any drops, whole legs and whole calls too: exact with a lateness bound of 1800 s (the
    documented gap at the default bound: reconcile-docs "when repairs count")."""
    events, dropped = case
    check(events, dropped, LONG_LATENESS, 0.0)
