"""The live wallboard (R31) and the statistics reports (R25–R30), end to end.

One service of this module's own (`python -m callrouter serve`, its own data dir and Ray): its
figures are exactly what this module did, and its last test stops it with SIGINT and starts it
again on the same data dir. Today's calls start a minute or so ago in the account's time
(Europe/Moscow), so they count for today on the wallboard; the statistics tests put their
calls on days of their own in the past, so each test's period holds its calls only.
"""

from __future__ import annotations

import asyncio
import time
import urllib.parse
from collections.abc import Callable, Iterator
from datetime import date, datetime, timedelta
from typing import TYPE_CHECKING, Any
from zoneinfo import ZoneInfo

import aiohttp
import pytest

from callrouter.testing import uis_bodies as uis

if TYPE_CHECKING:
    from tests.e2e.conftest import Api, Desk, Launcher, Staff

pytestmark = pytest.mark.e2e

MSK = ZoneInfo("Europe/Moscow")  # the default account time zone: notification_time is local
LIVE_DEADLINE = 1.0  # R31: updates reach open wallboards within a second
# This module's service decides a call once the event clock passed its end by BOARD_LATENESS;
# on a quiet line the clock moves on after a second of grace, at real-time pace.
BOARD_LATENESS = 3
SETTLE = BOARD_LATENESS + 1.0 + 0.5  # the lateness, the clock's grace, the shard's tick
WAIT = 15.0
SNAPSHOT_KEYS = {
    "ringing",
    "longest_wait_seconds",
    "talking",
    "staff",
    "today",
    "per_staff",
    "by_hour",
    "seq",
    "routed",
}
TODAY_KEYS = {"answered", "missed", "service_level", "avg_answer_seconds", "avg_talk_seconds"}
LOAD_KEYS = {"new_total", "new_from_users", "reopened", "in_work", "answered", "closed"}
TEAM_KEYS = LOAD_KEYS | {
    "staff_id",
    "replies",
    "replies_to_close",
    "close_time",
    "close_sla_breached",
}


# --- fixtures and helpers --------------------------------------------------------------------


@pytest.fixture(scope="module")
def board_desk(launcher: Launcher) -> Desk:
    """This module's own service (started on first use, stopped with the session)."""
    desk = launcher.desk("wallboard-stats")
    desk.settings(lateness_seconds=BOARD_LATENESS)
    return desk


def _name(kind: str) -> str:
    return uis.NAMES[kind]


def split_after(events: list[uis.Event], kind: str) -> tuple[list[uis.Event], list[uis.Event]]:
    """The events up to and including the first `kind`, and the rest."""
    for i, (_, doc) in enumerate(events):
        if doc["notification_name"] == _name(kind):
            return events[: i + 1], events[i + 1 :]
    raise AssertionError(f"no {kind} in the scenario")


def without(events: list[uis.Event], kind: str) -> tuple[list[uis.Event], list[uis.Event]]:
    """The events other than `kind`, and those of `kind`."""
    keep = [e for e in events if e[1]["notification_name"] != _name(kind)]
    return keep, [e for e in events if e[1]["notification_name"] == _name(kind)]


def the(events: list[uis.Event], kind: str) -> tuple[datetime, dict[str, Any]]:
    [found] = [e for e in events if e[1]["notification_name"] == _name(kind)]
    return found


def started_at(events: list[uis.Event]) -> datetime:
    """When the caller started waiting, as the service reads it: the first notification, or
    earlier when the call end's total duration says so (voice menu, queue)."""
    end_time, end = the(events, "call_end")
    total = end["call_info"]["total_time_duration"]
    return min(events[0][0], end_time - timedelta(seconds=total))


def wait_of(events: list[uis.Event]) -> float:
    """The speed of answer of an answered incoming scenario (seconds)."""
    answered, _ = the(events, "answer")
    return (answered - started_at(events)).total_seconds()


def call_id_of(events: list[uis.Event]) -> int:
    call_id: int = events[0][1]["call_info"]["call_session_id"]
    return call_id


def now_msk() -> datetime:
    return datetime.now(MSK).replace(tzinfo=None, microsecond=0)


@pytest.fixture
def today_start() -> Callable[[], datetime]:
    """A start for a call of today that is over by now (its bodies are not in the future). A
    test starting in the last minutes of the day waits for the new day: today's figures must
    not roll over under it."""
    left = datetime.combine(now_msk().date() + timedelta(days=1), datetime.min.time()) - now_msk()
    if left < timedelta(minutes=3):
        time.sleep(left.total_seconds() + 2)

    def start() -> datetime:
        now = now_msk()
        midnight = datetime.combine(now.date(), datetime.min.time())
        return max(now - timedelta(seconds=95), midnight + timedelta(seconds=1))

    return start


def wallboard(desk: Desk) -> dict[str, Any]:
    snapshot: dict[str, Any] = desk.admin.get("/api/v1/wallboard").json
    return snapshot


def staff_row(snapshot: dict[str, Any], staff: Staff) -> dict[str, Any] | None:
    return next((r for r in snapshot["per_staff"] if r["staff_id"] == staff.id), None)


def wait_board(
    desk: Desk, check: Callable[[dict[str, Any]], bool], what: str, timeout: float = WAIT
) -> dict[str, Any]:
    def probe() -> dict[str, Any] | None:
        snapshot = wallboard(desk)
        return snapshot if check(snapshot) else None

    result: dict[str, Any] = desk.wait(probe, f"wallboard: {what}", timeout)
    return result


def quiet(desk: Desk) -> dict[str, Any]:
    """The wallboard once no call rings or talks (earlier tests' calls have settled)."""
    return wait_board(desk, lambda s: s["ringing"] == 0 and s["talking"] == 0, "no live call")


def report_path(report: str, start: date | datetime, end: date | datetime) -> str:
    query = urllib.parse.urlencode({"from": start.isoformat(), "to": end.isoformat()})
    return f"/api/v1/stats/{report}?{query}"


def report(api: Api, name: str, start: date | datetime, end: date | datetime) -> Any:
    resp = api.get(report_path(name, start, end))
    assert resp.status == 200, resp
    return resp.json


def wait_report(
    desk: Desk,
    name: str,
    start: date | datetime,
    end: date | datetime,
    expected: Any,
    pick: Callable[[Any], Any] = lambda body: body,
) -> Any:
    """Poll the report until `pick(body)` equals `expected`; fail showing the last body. Then
    read it once more a moment later: nothing may be counted twice after the fact."""
    last: list[Any] = [None]

    def probe() -> bool:
        last[0] = report(desk.admin, name, start, end)
        return bool(pick(last[0]) == expected)

    try:
        desk.wait(probe, f"{name} report", WAIT)
    except AssertionError:
        assert pick(last[0]) == expected, f"{name} {start}..{end}"
        raise
    time.sleep(0.6)  # the statistics actor reads the log every 0.5 s
    body = report(desk.admin, name, start, end)
    assert pick(body) == expected, f"{name} changed after it was right"
    return body


def team_item(body: dict[str, Any], staff: Staff) -> dict[str, Any] | None:
    return next((i for i in body["items"] if i["staff_id"] == staff.id), None)


# --- the live wallboard ----------------------------------------------------------------------


def test_r31_ringing_call_shows_on_the_wallboard(
    board_desk: Desk, today_start: Callable[[], datetime]
) -> None:
    """R31: while an operator's phone rings, the call is ringing, the wait counts up and the
    staff member is ringing; when the caller gives up it is today's missed call."""
    desk = board_desk
    anna = desk.staff("Анна Смирнова")
    before = quiet(desk)
    assert set(before) == SNAPSHOT_KEYS, before
    assert set(before["today"]) == TODAY_KEYS
    call_id = desk.new_call_id()
    events = uis.incoming_missed(call_id, today_start(), desk.new_phone(), [anna.employee_id])
    head, rest = split_after(events, "leg_start")
    desk.post_call(head)

    ringing = wait_board(
        desk,
        lambda s: s["ringing"] == 1 and s["longest_wait_seconds"] > 0,
        "one call ringing, its wait counting",
    )
    assert ringing["talking"] == 0
    assert staff_row(ringing, anna) == {
        "staff_id": anna.id,
        "state": "ringing",
        "answered": 0,
        "missed": 0,
        "talk_seconds": 0,
        "routed": 0,  # smart routing (issue 11) sent them no call
        "reached": 0,
    }
    assert ringing["staff"]["ringing"] == 1
    assert sum(ringing["staff"].values()) == len(ringing["per_staff"])
    time.sleep(1.1)
    later = wallboard(desk)
    assert later["longest_wait_seconds"] >= ringing["longest_wait_seconds"] + 0.9, (
        "the wait must keep counting while the call rings"
    )

    desk.post_call(rest)
    desk.wait_finalized(call_id)
    after = wait_board(
        desk, lambda s: s["today"]["missed"] == before["today"]["missed"] + 1, "missed +1"
    )
    assert (after["ringing"], after["longest_wait_seconds"], after["talking"]) == (0, 0, 0)
    assert after["today"]["answered"] == before["today"]["answered"]
    row = staff_row(after, anna)
    assert row is not None and (row["state"], row["missed"], row["answered"]) == ("offline", 1, 0)


async def _next(
    ws: aiohttp.ClientWebSocketResponse,
    check: Callable[[dict[str, Any]], bool],
    timeout: float,
    seen: list[dict[str, Any]] | None = None,
) -> dict[str, Any]:
    """The next wallboard message that passes `check`, within `timeout` seconds."""
    deadline = time.monotonic() + timeout
    while True:
        left = deadline - time.monotonic()
        if left <= 0:
            raise AssertionError(f"no matching wallboard message within {timeout} s")
        msg = await ws.receive(timeout=left)
        assert msg.type == aiohttp.WSMsgType.TEXT, msg
        data: dict[str, Any] = msg.json()
        assert data["type"] == "wallboard", data
        if seen is not None:
            seen.append(data)
        if check(data):
            return data


def _ws_url(desk: Desk, path: str, token: str) -> str:
    base = desk.service.base_url.replace("http://", "ws://")
    return f"{base}{path}?{urllib.parse.urlencode({'token': token})}"


async def test_r31_websocket_full_snapshot_then_changes_within_a_second(
    board_desk: Desk, today_start: Callable[[], datetime]
) -> None:
    """R31: the stream sends the whole snapshot on connect; each webhook's change reaches it
    within a second (measured from sending the webhook); while a call rings a snapshot comes
    at least every second; a console opened or closed turns its staff free or offline."""
    desk = board_desk
    anna = desk.staff("Анна Смирнова")
    base = await asyncio.to_thread(quiet, desk)
    call_id = desk.new_call_id()
    events = uis.incoming_answered(call_id, today_start(), desk.new_phone(), anna.employee_id, 40)
    ring, rest = split_after(events, "leg_start")
    answer, rest = split_after(rest, "answer")

    def mine(s: dict[str, Any]) -> dict[str, Any]:
        row = staff_row(s, anna)
        assert row is not None, "every staff member is on the board"
        return row

    async def post_and_wait(
        ws: aiohttp.ClientWebSocketResponse,
        bodies: list[uis.Event],
        check: Callable[[dict[str, Any]], bool],
    ) -> tuple[dict[str, Any], float]:
        sent = time.monotonic()
        await asyncio.to_thread(desk.post_call, bodies)
        got = await _next(ws, check, 5.0)
        return got, time.monotonic() - sent

    async with aiohttp.ClientSession() as http:
        with pytest.raises(aiohttp.WSServerHandshakeError) as refused:
            await http.ws_connect(_ws_url(desk, "/api/v1/wallboard/events", "not-a-token"))
        assert refused.value.status == 401

        url = _ws_url(desk, "/api/v1/wallboard/events", desk.service.admin_token)
        async with http.ws_connect(url) as ws:
            first = await _next(ws, lambda s: True, 5.0)
            assert set(first) == SNAPSHOT_KEYS | {"type"}
            assert set(first["today"]) == TODAY_KEYS
            assert set(first["staff"]) == {"free", "ringing", "talking", "offline"}
            assert len(first["by_hour"]) == 24
            assert first["today"] == base["today"] and first["seq"] >= base["seq"]
            assert mine(first)["state"] == "offline"

            # Anna opens her console: she is free (the frontend reports who is connected).
            console = await http.ws_connect(_ws_url(desk, "/api/v1/events", anna.token))
            free = await _next(ws, lambda s: mine(s)["state"] == "free", 5.0)
            assert free["staff"]["free"] >= 1

            ringing, ring_latency = await post_and_wait(
                ws, ring, lambda s: mine(s)["state"] == "ringing"
            )
            assert ringing["ringing"] == 1 and ringing["seq"] > free["seq"]
            # While the caller waits, a snapshot at least every second, the wait rising.
            ticks: list[dict[str, Any]] = []
            started = time.monotonic()
            while time.monotonic() - started < 2.5:
                ticks.append(await _next(ws, lambda s: True, 1.5))
            waits = [t["longest_wait_seconds"] for t in ticks]
            assert len(ticks) >= 2 and waits == sorted(waits) and waits[-1] > waits[0], waits

            talking, answer_latency = await post_and_wait(
                ws, answer, lambda s: mine(s)["state"] == "talking"
            )
            assert (talking["ringing"], talking["talking"]) == (0, 1)
            assert talking["staff"]["talking"] == 1

            # The call's end counts once it settled (R32's settle window), so: settle + 1 s.
            done, done_latency = await post_and_wait(ws, rest, lambda s: mine(s)["answered"] == 1)
            assert done["today"]["answered"] == base["today"]["answered"] + 1
            assert (done["ringing"], done["talking"], mine(done)["state"]) == (0, 0, "free")
            assert mine(done)["talk_seconds"] == 40

            await console.close()
            await _next(ws, lambda s: mine(s)["state"] == "offline", 5.0)

    print(
        f"wallboard latency: ringing {ring_latency:.3f} s, answered {answer_latency:.3f} s, "
        f"finished (with the settle window) {done_latency:.3f} s"
    )
    assert ring_latency < LIVE_DEADLINE, f"ringing reached the wallboard in {ring_latency:.3f} s"
    assert answer_latency < LIVE_DEADLINE, f"answer reached the wallboard in {answer_latency:.3f} s"
    assert done_latency < SETTLE + LIVE_DEADLINE, f"the end counted after {done_latency:.3f} s"


def test_r31_today_answered_missed_service_level_asa(
    board_desk: Desk, today_start: Callable[[], datetime]
) -> None:
    """R31: two answered calls and a missed one make today's answered, missed, service level,
    speed of answer, talk time, per-staff figures and the hour chart."""
    desk = board_desk
    anna, ivan = desk.staff("Анна Смирнова"), desk.staff("Иван Петров")
    sl_seconds = desk.admin.get("/api/v1/settings").json["service_level_seconds"]
    before = quiet(desk)
    start = today_start()
    calls = {
        "anna": uis.incoming_answered(
            desk.new_call_id(), start, desk.new_phone(), anna.employee_id, 40
        ),
        "ivan": uis.incoming_answered(
            desk.new_call_id(), start, desk.new_phone(), ivan.employee_id, 100
        ),
        "missed": uis.incoming_missed(
            desk.new_call_id(), start, desk.new_phone(), [anna.employee_id, ivan.employee_id]
        ),
    }
    for events in calls.values():
        desk.post_call(events)
    for events in calls.values():
        desk.wait_finalized(call_id_of(events))
    after = wait_board(
        desk,
        lambda s: (
            s["today"]["answered"] == before["today"]["answered"] + 2
            and s["today"]["missed"] == before["today"]["missed"] + 1
        ),
        "two more answered, one more missed",
    )

    waits = [wait_of(calls["anna"]), wait_of(calls["ivan"])]
    n0 = before["today"]["answered"]
    n1 = n0 + 2
    t0 = before["today"]
    within0 = round((t0["service_level"] or 0) * n0)
    within1 = within0 + sum(w <= sl_seconds for w in waits)
    assert after["today"]["service_level"] == round(within1 / n1, 4)
    # The earlier averages come rounded to 0.1 s: the new ones are known to that much.
    asa = ((t0["avg_answer_seconds"] or 0) * n0 + sum(waits)) / n1
    talk = ((t0["avg_talk_seconds"] or 0) * n0 + 40 + 100) / n1
    assert after["today"]["avg_answer_seconds"] == pytest.approx(asa, abs=0.1)
    assert after["today"]["avg_talk_seconds"] == pytest.approx(talk, abs=0.1)
    if n0 == 0:  # alone on the service: exact
        assert after["today"]["avg_answer_seconds"] == round(sum(waits) / 2, 1)
        assert after["today"]["avg_talk_seconds"] == 70.0

    # Missed per staff = offered and not answered by them: both were rung for the lost call.
    assert staff_row(after, anna) == {
        "staff_id": anna.id,
        "state": "offline",
        "answered": 1,
        "missed": 1,
        "talk_seconds": 40,
        "routed": 0,  # smart routing (issue 11) sent them no call
        "reached": 0,
    }
    assert staff_row(after, ivan) == {
        "staff_id": ivan.id,
        "state": "offline",
        "answered": 1,
        "missed": 1,
        "talk_seconds": 100,
        "routed": 0,  # smart routing (issue 11) sent them no call
        "reached": 0,
    }
    # The hour chart: each call in the hour it started, in the account's time.
    delta = {
        h["hour"]: (h["answered"] - b["answered"], h["missed"] - b["missed"])
        for h, b in zip(after["by_hour"], before["by_hour"], strict=True)
    }
    expected = {h: (0, 0) for h in range(24)}
    for key, events in calls.items():
        hour = started_at(events).hour
        a, m = expected[hour]
        expected[hour] = (a, m + 1) if key == "missed" else (a + 1, m)
    assert delta == expected


# --- statistics ------------------------------------------------------------------------------


def test_r25_r30_reports_over_a_period(board_desk: Desk) -> None:
    """R25–R30: four calls on a day of their own give exactly the API.md bodies; `answered`
    comes with the recording; staff closing and reopening a case is work, a close with its
    time and SLA, and a reopen."""
    desk = board_desk
    anna, ivan = desk.staff("Анна Смирнова"), desk.staff("Иван Петров")
    day = datetime.now(MSK).date() - timedelta(days=10)
    next_day = day + timedelta(days=1)

    def at(hours: int, minutes: int) -> datetime:
        return datetime.combine(day, datetime.min.time()) + timedelta(hours=hours, minutes=minutes)

    phones = [desk.new_phone() for _ in range(4)]
    a = uis.incoming_answered(desk.new_call_id(), at(9, 0), phones[0], anna.employee_id, 40)
    b = uis.incoming_missed(
        desk.new_call_id(), at(9, 30), phones[1], [anna.employee_id, ivan.employee_id]
    )
    c = uis.outgoing_softphone(desk.new_call_id(), at(10, 15), phones[2], ivan.employee_id, True)
    d = uis.incoming_answered(desk.new_call_id(), at(11, 0), phones[3], ivan.employee_id, 70)

    # A: the call is over, its recording not here yet: a new case, not answered yet (R25).
    a_call, a_recording = without(a, "recording")
    desk.post_call(a_call)
    desk.wait_finalized(call_id_of(a))
    zero = dict.fromkeys(LOAD_KEYS, 0)
    wait_report(desk, "load", day, next_day, zero | {"new_total": 1, "new_from_users": 1})
    desk.post_call(a_recording)
    wait_report(
        desk, "load", day, next_day, zero | {"new_total": 1, "new_from_users": 1, "answered": 1}
    )

    # B missed (its case is Ivan's, the last rung), C an answered softphone call (a closed
    # case, R14), D answered by Ivan.
    for events in (b, c, d):
        desk.post_call(events)
    for events in (b, c, d):
        desk.wait_finalized(call_id_of(events))
    load = wait_report(
        desk,
        "load",
        day,
        next_day,
        {
            "new_total": 4,
            "new_from_users": 3,
            "reopened": 0,
            "in_work": 0,  # nothing staff did: the cases were made by the product
            "answered": 3,  # A, C and D were recorded
            "closed": 1,  # C, closed when made, with its conversation
        },
    )
    assert set(load) == LOAD_KEYS

    # Only the morning: [09:00, 10:00) holds A and B; a datetime period in the account's zone.
    assert report(desk.admin, "load", at(9, 0), at(10, 0)) == zero | {
        "new_total": 2,
        "new_from_users": 2,
        "answered": 1,
    }

    created_hours = [the(e, "call_end")[0].hour for e in (a, b, c, d)]
    peak = report(desk.admin, "peak", day, next_day)
    assert set(peak) == {"by_hour", "by_weekday"}
    assert [h["hour"] for h in peak["by_hour"]] == list(range(24))
    assert [w["weekday"] for w in peak["by_weekday"]] == list(range(1, 8))
    assert all(set(h) == {"hour", "new_and_reopened", "in_work"} for h in peak["by_hour"])
    assert {h["hour"]: h["new_and_reopened"] for h in peak["by_hour"] if h["new_and_reopened"]} == {
        h: created_hours.count(h) for h in created_hours
    }
    assert all(h["in_work"] == 0 for h in peak["by_hour"])
    assert {
        w["weekday"]: w["new_and_reopened"] for w in peak["by_weekday"] if w["new_and_reopened"]
    } == {day.isoweekday(): 4}

    assert report(desk.admin, "channels", day, next_day) == {
        "calls": {"new_and_reopened": 4, "in_work": 0, "closed": 1}
    }
    assert report(desk.admin, "response", day, next_day) == {
        "first_response": None,
        "any_response": None,
        "reply_writing": None,
        "replies_to_close": 1.0,  # C: one recorded conversation
        "close_time": None,  # C was closed when it was made: no close time to count
    }
    assert report(desk.admin, "sla", day, next_day) == {
        "first_response_breached": None,
        "any_response_breached": None,
        "close_sla_breached": 0,
    }
    team = report(desk.admin, "team", day, next_day)
    assert set(team) == {"items"}
    assert all(set(item) == TEAM_KEYS for item in team["items"])
    assert team_item(team, anna) == {
        "staff_id": anna.id,
        "new_total": 1,
        "new_from_users": 1,
        "reopened": 0,
        "in_work": 0,
        "answered": 1,
        "replies": 1,
        "replies_to_close": None,
        "closed": 0,
        "close_time": None,
        "close_sla_breached": 0,
    }
    assert team_item(team, ivan) == {
        "staff_id": ivan.id,
        "new_total": 3,
        "new_from_users": 2,
        "reopened": 0,
        "in_work": 0,
        "answered": 2,
        "replies": 2,
        "replies_to_close": 1.0,
        "closed": 1,
        "close_time": None,
        "close_sla_breached": 0,
    }

    # Anna closes A now, ten days after it was made: work, a close, over the close SLA (R29).
    [case_a] = desk.cases_of(desk.user_by_phone(phones[0])["id"])  # type: ignore[index]
    closed = anna.api.patch(f"/api/v1/cases/{case_a['id']}", {"status": "closed"})
    assert closed.status == 200, closed
    seconds = (
        datetime.fromisoformat(closed.json["closed_at"])
        - datetime.fromisoformat(closed.json["created_at"])
    ).total_seconds()
    sla = desk.admin.get("/api/v1/settings").json["close_sla_seconds"]
    assert seconds > sla
    tomorrow = datetime.now(MSK).date() + timedelta(days=1)
    anna_figures = {
        "staff_id": anna.id,
        "new_total": 1,
        "new_from_users": 1,
        "reopened": 0,
        "in_work": 1,
        "answered": 1,
        "replies": 1,
        "replies_to_close": 1.0,
        "closed": 1,
        "close_time": {"mean_seconds": seconds, "median_seconds": seconds},
        "close_sla_breached": 1,
    }
    wait_report(desk, "team", day, tomorrow, anna_figures, lambda body: team_item(body, anna))
    # Reopened: made before the period, reopened in it (R24, R25).
    reopened = anna.api.patch(f"/api/v1/cases/{case_a['id']}", {"status": "open"})
    assert reopened.status == 200, reopened
    today = datetime.now(MSK).date()
    item = wait_report(
        desk,
        "team",
        today,
        tomorrow,
        1,
        lambda body: (team_item(body, anna) or {}).get("reopened"),
    )
    assert team_item(item, anna) == anna_figures | {
        "new_total": 0,
        "new_from_users": 0,
        "reopened": 1,
        "answered": 0,
        "replies": 0,
    }
    # The ten-days-ago day has not changed.
    assert report(desk.admin, "load", day, next_day) == load


def test_stats_bad_requests(board_desk: Desk) -> None:
    """A bad period is 422, an unknown report 404, no token 401."""
    api = board_desk.admin
    for query, what in (
        ("from=2026-13-01&to=2026-11-02", "not a date"),
        ("from=yesterday", "not a date"),
        ("from=2026-11-02&to=2026-11-02", "empty period"),
        ("from=2026-11-03&to=2026-11-02", "backwards period"),
    ):
        resp = api.get(f"/api/v1/stats/load?{query}")
        assert resp.status == 422, (what, resp)
        assert resp.json["error"]["code"] == "invalid_period", resp
    resp = api.get("/api/v1/stats/nonsense?from=2026-11-01&to=2026-11-02")
    assert resp.status == 404 and resp.json["error"]["code"] == "unknown_report", resp
    resp = api.get("/api/v1/stats/load?from=2026-11-01&to=2026-11-02", auth=False)
    assert resp.status == 401, resp
    resp = api.get("/api/v1/wallboard", auth=False)
    assert resp.status == 401, resp


# --- a restart -------------------------------------------------------------------------------


@pytest.fixture
def restarted_at_the_end(board_desk: Desk) -> Iterator[Desk]:
    """The module's service, for a test that restarts it: whatever happens, it runs after."""
    yield board_desk
    svc = board_desk.service
    if svc.proc is None:
        svc.start()
        svc.wait_ready()


def test_r25_r31_figures_survive_a_restart(
    restarted_at_the_end: Desk, today_start: Callable[[], datetime]
) -> None:
    """Statistics and today's wallboard are kept across SIGINT and a new start on the same
    data dir: the same figures after, and one more call counts once."""
    desk = restarted_at_the_end
    svc = desk.service
    anna = desk.staff("Анна Смирнова")
    day = datetime.now(MSK).date() - timedelta(days=20)
    next_day = day + timedelta(days=1)
    at = datetime.combine(day, datetime.min.time()) + timedelta(hours=14)
    past = [
        uis.incoming_answered(desk.new_call_id(), at, desk.new_phone(), anna.employee_id, 30),
        uis.incoming_answered(
            desk.new_call_id(), at + timedelta(minutes=20), desk.new_phone(), anna.employee_id, 50
        ),
        uis.incoming_missed(
            desk.new_call_id(), at + timedelta(minutes=40), desk.new_phone(), [anna.employee_id]
        ),
    ]
    today_call = uis.incoming_answered(
        desk.new_call_id(), today_start(), desk.new_phone(), anna.employee_id, 25
    )
    for events in [*past, today_call]:
        desk.post_call(events)
    for events in [*past, today_call]:
        desk.wait_finalized(call_id_of(events))
    load = wait_report(
        desk,
        "load",
        day,
        next_day,
        {
            "new_total": 3,
            "new_from_users": 3,
            "reopened": 0,
            "in_work": 0,
            "answered": 2,
            "closed": 0,
        },
    )
    team = report(desk.admin, "team", day, next_day)
    board = wait_board(
        desk,
        lambda s: (staff_row(s, anna) or {}).get("answered") == 1,
        "today's call on the board",
    )

    svc.stop()  # SIGINT, as Ctrl+C
    svc.start()
    svc.wait_ready()

    assert report(desk.admin, "load", day, next_day) == load
    assert report(desk.admin, "team", day, next_day) == team
    again = wallboard(desk)
    assert again["today"] == board["today"]
    assert again["by_hour"] == board["by_hour"]
    assert staff_row(again, anna) == staff_row(board, anna)

    # One more call of each kind after the restart: +1, not +1 and the old ones again.
    more_past = uis.incoming_answered(
        desk.new_call_id(), at + timedelta(hours=1), desk.new_phone(), anna.employee_id, 45
    )
    more_today = uis.incoming_answered(
        desk.new_call_id(), today_start(), desk.new_phone(), anna.employee_id, 35
    )
    desk.post_call(more_past)
    desk.post_call(more_today)
    wait_report(
        desk,
        "load",
        day,
        next_day,
        load | {"new_total": 4, "new_from_users": 4, "answered": 3},
    )
    after = wait_board(
        desk,
        lambda s: s["today"]["answered"] == board["today"]["answered"] + 1,
        "today's answered +1",
    )
    assert after["today"]["missed"] == board["today"]["missed"]
    row = staff_row(after, anna)
    assert row is not None and (row["answered"], row["talk_seconds"]) == (2, 25 + 35)
    time.sleep(1.0)
    assert wallboard(desk)["today"] == after["today"]
