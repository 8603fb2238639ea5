"""The reproductions of the issue "Nothing lost, whatever arrives", each end to end on the shared
service (R32, R33, STYLE habit 11): a body UIS could never send is refused and kept, and costs
no other call its case; a caller number without digits is an unknown caller; a late repeat
does not revive a decided call; a huge id is a 422; a quarantined call goes through again."""

from __future__ import annotations

import asyncio
import json
import sqlite3
from datetime import UTC, datetime
from typing import TYPE_CHECKING, Any

import aiohttp
import pytest

from callrouter.testing import uis_bodies as uis

if TYPE_CHECKING:
    from tests.e2e.conftest import Desk

pytestmark = pytest.mark.e2e

UNKNOWN = "Пропущенный звонок с неизвестного номера"


def _kept(desk: Desk, marker: str) -> list[dict[str, Any]]:
    items: list[dict[str, Any]] = desk.admin.get("/api/v1/rejected?limit=200").json["items"]
    return [r for r in items if marker in r["body"]]


def _poisons(desk: Desk, employee: int, marker: str) -> list[tuple[str, dict[str, Any]]]:
    """Bodies the webhook accepted before (each cost other calls their cases or their time),
    now each refused by a bound of the parser."""
    out = []
    call_end = uis.body(
        "call_end",
        call_session_id=desk.new_call_id(),
        time=desk.when(),
        phone=desk.new_phone(),
        employee_id=employee,
        is_lost=False,
        talk_seconds=30,
        total_seconds=10**12,
    )
    out.append(("total_time_duration 10^12", {"marker": marker} | call_end))
    for label, when in (
        ("year 1", "0001-01-01 00:00:00.000"),
        ("year 9999", "9999-12-31 23:59:00.000"),
    ):
        doc = uis.body(
            "leg_start",
            call_session_id=desk.new_call_id(),
            time=desk.when(),
            phone=desk.new_phone(),
            employee_id=employee,
            leg_id=1,
        )
        doc["notification_time"] = when
        out.append((label, {"marker": marker} | doc))
    long_number = uis.body(
        "call_end",
        call_session_id=desk.new_call_id(),
        time=desk.when(),
        phone="7" * 80,
        is_lost=True,
    )
    out.append(("a number of 80 digits", {"marker": marker} | long_number))
    return out


def test_poison_bodies_are_refused_and_cost_nobody_a_case(desk: Desk) -> None:
    """#1, #2: a call end with a duration of 10^12 s, times in year 1 or 9999, an 80-digit
    number — each a clear 422, kept; the calls around them (normal ones before and after each)
    all get their cases."""
    anna = desk.staff()
    marker = f"poison-{desk.new_call_id()}"
    phones = []
    for label, poison in _poisons(desk, anna.employee_id, marker):
        phone = desk.new_phone()
        phones.append(phone)
        desk.post_call(
            uis.incoming_answered(desk.new_call_id(), desk.when(), phone, anna.employee_id)
        )
        resp = desk.post(poison)
        assert resp.status == 422, (label, resp)
        assert resp.json["error"]["code"] == "invalid_field", (label, resp)
    after = desk.new_phone()
    desk.post_call(uis.incoming_answered(desk.new_call_id(), desk.when(), after, anna.employee_id))
    for phone in [*phones, after]:
        [case] = desk.wait_for_cases(phone, 1)
        assert case["status"] == "open" and case["assignee_id"] == anna.id
    assert len(_kept(desk, marker)) == 4
    # The statistics took nothing of them: a whole-day report answers at once (#2).
    resp = desk.admin.get("/api/v1/stats/peak")
    assert resp.status == 200, resp


def test_callers_without_digits_are_unknown_callers(desk: Desk) -> None:
    """#3: hidden and SIP callers are not bad input: each call gets the case of an unknown
    caller, and two of them are never grouped into one."""
    ivan = desk.staff("Иван Петров")
    calls = []
    for number in ("anonymous", "+", "sip:operator@pbx", "٧٩٢٦١٢٣٤٥٦٧"):
        call_id = desk.new_call_id()
        calls.append(call_id)
        desk.post_call(uis.incoming_missed(call_id, desk.when(), number, [ivan.employee_id]))
    decided = [desk.wait_finalized(call_id) for call_id in calls]
    case_ids = [d["case_ids"] for d in decided]
    assert all(len(ids) == 1 for ids in case_ids) and len({i[0] for i in case_ids}) == 4
    for [case_id] in case_ids:
        case = desk.case(case_id)
        assert (case["subject"], case["user_id"], case["assignee_id"]) == (UNKNOWN, None, ivan.id)
    assert desk.admin.get("/api/v1/system").json["inbox_pending"] == 0


def test_a_late_repeat_does_not_revive_a_decided_call(desk: Desk) -> None:
    """#6: a leg start re-sent after the call was decided (not byte-identical: one extra
    constant field) pops no popup, is not a live call, leaves the case alone."""
    anna = desk.staff()
    phone, call_id = desk.new_phone(), desk.new_call_id()
    events = uis.incoming_answered(call_id, desk.when(), phone, anna.employee_id)
    desk.post_call(events)
    [case] = desk.wait_for_cases(phone, 1)
    desk.wait_finalized(call_id)
    case = desk.wait_recorded(case, events)  # the case to compare with is the complete one
    leg_start = next(doc for _, doc in events if doc["notification_name"] == uis.NAMES["leg_start"])
    received = asyncio.run(
        _events_while(desk, anna.token, lambda: desk.post({"resent": 1} | leg_start))
    )
    assert [e for e in received if e.get("call_session_id") == call_id] == []
    active = desk.admin.get("/api/v1/calls?active=true").json["items"]
    assert call_id not in [c["call_session_id"] for c in active]
    assert desk.case(case["id"]) == case


async def _events_while(desk: Desk, token: str, action: Any, quiet: float = 3.0) -> list[Any]:
    """The live events a staff member's console gets during `action` and `quiet` s after."""
    url = desk.service.base_url.replace("http", "ws") + f"/api/v1/events?token={token}"
    got: list[Any] = []
    async with aiohttp.ClientSession() as session, session.ws_connect(url) as ws:
        await asyncio.sleep(0.5)
        await asyncio.get_running_loop().run_in_executor(None, action)
        deadline = asyncio.get_running_loop().time() + quiet
        while (left := deadline - asyncio.get_running_loop().time()) > 0:
            try:
                msg = await ws.receive(timeout=left)
            except TimeoutError:
                break
            if msg.type == aiohttp.WSMsgType.TEXT:
                got.append(json.loads(msg.data))
    return got


def test_a_huge_user_id_is_a_422_not_a_500(desk: Desk) -> None:
    """#7: link-user with a user id past 64 bits."""
    anna = desk.staff()
    phone, call_id = desk.new_phone(), desk.new_call_id()
    ring = uis.incoming_answered(call_id, desk.when(), phone, anna.employee_id)[:2]
    desk.post_call(ring)
    desk.wait(lambda: desk.call(call_id).status == 200, "the live call")
    for user_id in (9223372036854775808, -1, 0, "1", True):
        resp = anna.api.post(f"/api/v1/calls/{call_id}/link-user", {"user_id": user_id})
        assert resp.status == 422, (user_id, resp)


def test_a_quarantined_call_goes_through_again_on_retry(desk: Desk) -> None:
    """A call set aside with its error (here: as the writer would, straight in the database)
    is listed at /api/v1/quarantine and decided on retry; its notifications wait meanwhile."""
    anna = desk.staff()
    phone, call_id = desk.new_phone(), desk.new_call_id()
    db_path = desk.service.data_dir / "callrouter.sqlite3"
    held = uis.voice_menu_hangup(call_id, desk.when(), phone)
    # The notification is stored, then the call is quarantined before anything decides it.
    with sqlite3.connect(db_path, timeout=30) as db:
        now = datetime.now(UTC).replace(tzinfo=None).isoformat(sep=" ")
        cur = db.execute(
            "INSERT INTO inbox (body_hash, call_session_id, received_at, body, done)"
            " VALUES (?, ?, ?, ?, 1)",
            (f"test-{call_id}", call_id, now, uis.encode(held[0][1]).decode()),
        )
        db.execute(
            "INSERT INTO quarantine (call_session_id, stage, error, inbox_ids, status, attempts,"
            " created_at, updated_at) VALUES (?, 'decide', 'RuntimeError: a bug', ?, 'open', 1,"
            " ?, ?)",
            (call_id, json.dumps([cur.lastrowid]), now, now),
        )
    listed = desk.admin.get("/api/v1/quarantine?status=open").json["items"]
    [entry] = [q for q in listed if q["call_session_id"] == call_id]
    assert entry["stage"] == "decide" and "a bug" in entry["error"]
    assert desk.anonymous.post(f"/api/v1/quarantine/{entry['id']}/retry").status == 401
    assert anna.api.post(f"/api/v1/quarantine/{entry['id']}/retry").status == 403
    resp = desk.admin.post(f"/api/v1/quarantine/{entry['id']}/retry")
    assert resp.status == 202, resp
    [case] = desk.wait_for_cases(phone, 1)
    assert case["subject"] == f"Пропущенный звонок с {phone}"
    again = desk.admin.post(f"/api/v1/quarantine/{entry['id']}/retry")
    assert again.status == 404
