"""What every part must survive (SPEC §7: R32 duplicates, disorder, silence; R33 bad input),
end to end on the shared service. Crash recovery has its own module (its own service)."""

from __future__ import annotations

import random
import threading
import time
import uuid
from concurrent.futures import ThreadPoolExecutor
from typing import TYPE_CHECKING, Any

import pytest

from callrouter.testing import uis_bodies as uis

if TYPE_CHECKING:
    from tests.e2e.conftest import Desk, Response

pytestmark = pytest.mark.e2e

MAX_BODY = 64 * 1024


def _shape(case: dict[str, Any], phone: str) -> dict[str, Any]:
    """What a case says about its call, without ids, times and the number."""
    return {
        "subject": case["subject"].replace(phone, "N"),
        "status": case["status"],
        "assignee_id": case["assignee_id"],
        "call_icon": case["call_icon"],
        "messages": [
            {
                "kind": m["kind"],
                "author_staff_id": m["author_staff_id"],
                "body": m["body"],
                "outcome": m["call"]["outcome"],
                "direction": m["call"]["direction"],
                "talk_seconds": m["call"]["talk_seconds"],
                "recordings": len(m["call"]["recording_urls"]),
            }
            for m in case["messages"]
        ],
    }


def test_r32_duplicate_bodies_change_nothing(desk: Desk) -> None:
    """R32: every body posted twice → 200 both times, and the call has the effects of one."""
    anna = desk.staff()
    phone, call_id = desk.new_phone(), desk.new_call_id()
    events = uis.incoming_answered(call_id, desk.when(), phone, anna.employee_id, talk_seconds=30)
    for _, doc in events:
        for _attempt in range(2):
            resp = desk.post(doc)
            assert resp.status == 200 and resp.json == {"ok": True}, resp

    [case] = desk.wait_for_cases(phone, 1)
    case = desk.wait_recorded(case, events)
    message = desk.only_call_message(case)
    assert message["call"]["recording_urls"] == desk.recording_links(events)
    assert case["status"] == "open" and case["assignee_id"] == anna.id
    # Once more after the call was decided: still nothing new.
    desk.wait_finalized(call_id)
    desk.post_call(events)
    desk.post_call(events[-1:])
    assert desk.cases_of(case["user_id"]) == [{k: v for k, v in case.items() if k != "messages"}]
    assert desk.case(case["id"]) == case


def test_r32_out_of_order_gives_the_same_cases(desk: Desk) -> None:
    """R32: the notifications of a call posted out of order (the call end first, the pick-ups
    after it) give the same cases as the same call in order; for an answered call and for a
    transfer."""
    first, second = desk.staff(), desk.staff("Иван Петров")
    pairs = []
    for kind in ("answered", "transfer"):
        calls = []
        for _ in range(2):
            phone, call_id = desk.new_phone(), desk.new_call_id()
            # The same random stream for both calls: the same times, talk and ring durations.
            rng = random.Random(42)
            if kind == "answered":
                events = uis.incoming_answered(
                    call_id, desk.when(), phone, first.employee_id, talk_seconds=77, rng=rng
                )
            else:
                events = uis.transfer(
                    call_id, desk.when(), phone, first.employee_id, second.employee_id, rng=rng
                )
            calls.append((phone, events))
        (in_order_phone, in_order), (shuffled_phone, shuffled) = calls
        desk.post_call(in_order)
        # Call end first, then everything else shuffled (pick-ups after the end).
        call_end = [e for e in shuffled if e[1]["notification_name"] == "Завершение звонка"]
        others = [e for e in shuffled if e not in call_end]
        random.Random(7).shuffle(others)
        desk.post_call(call_end)
        time.sleep(1.6)  # a sender's hiccup (a loaded machine) between the end and the rest
        desk.post_call(others)
        pairs.append((kind, in_order_phone, shuffled_phone))

    def recorded(phone: str, count: int) -> list[dict[str, Any]] | None:
        """The cases once every conversation has its recording (a recording the writer had
        not applied at the decision completes the case after it)."""
        cases = desk.wait_for_cases(phone, count)
        shapes = [_shape(c, phone) for c in cases]
        done = all(m["recordings"] == 1 for c in shapes for m in c["messages"])
        return sorted(shapes, key=str) if done else None

    for kind, in_order_phone, shuffled_phone in pairs:
        count = 2 if kind == "transfer" else 1
        want = desk.wait(lambda p=in_order_phone, n=count: recorded(p, n), f"{kind}: recorded")
        got = desk.wait(lambda p=shuffled_phone, n=count: recorded(p, n), f"{kind}: shuffled")
        assert got == want, kind


def test_r32_late_notifications_after_the_case_change_nothing(desk: Desk) -> None:
    """R32: the pick-up and the leg end arrive only after the call's case was made (late):
    the case is already the R11 one (the call end names who talked), and the late bodies are
    acknowledged and change nothing."""
    anna = desk.staff()
    phone, call_id = desk.new_phone(), desk.new_call_id()
    events = uis.incoming_answered(call_id, desk.when(), phone, anna.employee_id, talk_seconds=71)
    late_names = ("Поднятие трубки", "Завершение плеча")
    late = [e for e in events if e[1]["notification_name"] in late_names]
    assert len(late) == 2
    desk.post_call([e for e in events if e not in late])
    [case] = desk.wait_for_cases(phone, 1)
    desk.wait_finalized(call_id)
    case = desk.wait_recorded(case, events)
    desk.post_call(late)

    assert case["subject"] == f"Входящий звонок с {phone}"
    assert case["status"] == "open" and case["assignee_id"] == anna.id
    message = desk.only_call_message(case)
    assert message["author_staff_id"] == anna.id
    assert message["call"]["outcome"] == "answered"
    assert message["call"]["talk_seconds"] == 71
    assert message["call"]["recording_urls"] == desk.recording_links(events)
    # Something posted after the late bodies is decided, so they were handled by now.
    later_phone = desk.new_phone()
    desk.post_call(uis.voice_menu_hangup(desk.new_call_id(), desk.when(), later_phone))
    desk.wait_for_cases(later_phone, 1)
    assert desk.cases_of(case["user_id"]) == [{k: v for k, v in case.items() if k != "messages"}]
    assert desk.case(case["id"]) == case


def test_r32_silent_call_closed_by_the_sweeper(desk: Desk) -> None:
    """R32: a call whose call end never comes is closed after the silent-call timeout and
    gets its case (leg start and pick-up only, the timeout set to its minimum, a minute, for
    this test)."""
    anna = desk.staff()
    phone, call_id = desk.new_phone(), desk.new_call_id()
    events = uis.incoming_answered(call_id, desk.when(), phone, anna.employee_id)
    started = [
        e for e in events if e[1]["notification_name"] in ("Исходящее плечо", "Поднятие трубки")
    ]
    assert len(started) == 2
    before = desk.settings()["silent_call_timeout_seconds"]
    assert desk.settings(silent_call_timeout_seconds=60)["silent_call_timeout_seconds"] == 60
    try:
        desk.post_call(started)
        [case] = desk.wait_for_cases(phone, 1, timeout=120)
    finally:
        desk.settings(silent_call_timeout_seconds=before)
    assert case["subject"] == f"Входящий звонок с {phone}"
    assert case["status"] == "open"
    assert case["assignee_id"] == anna.id
    message = desk.only_call_message(case)
    assert message["author_staff_id"] == anna.id
    assert message["call"]["outcome"] == "answered"
    call = desk.wait_finalized(call_id)
    assert call["state"] == "ended" and call["case_ids"] == [case["id"]]


# --- R33 -------------------------------------------------------------------------------------


def _valid_leg_start(desk: Desk, marker: str) -> dict[str, Any]:
    """A valid leg start, marked so its stored copy can be found."""
    doc = uis.body(
        "leg_start",
        call_session_id=desk.new_call_id(),
        time=desk.when(),
        phone=desk.new_phone(),
        employee_id=desk.map_operator(None),
        leg_id=1,
    )
    # An extra constant field, as admins add (UIS.md); first, so a truncated copy keeps it.
    return {"marker": marker} | doc


def _bad_bodies(desk: Desk, marker: str) -> list[tuple[str, bytes, int, str]]:
    """(name, raw body, expected status, expected code) for each kind of bad input."""
    valid = _valid_leg_start(desk, marker)
    raw = uis.encode(valid).decode()
    employee = valid["employee_info"]["employee_id"]
    assert f'"employee_id":{employee}' in raw
    placeholder = raw.replace(f'"employee_id":{employee}', '"employee_id":{{employee_id}}')
    unknown = dict(valid, notification_name="Звонок завершён")
    missing_id = dict(valid, call_info=dict(valid["call_info"], call_session_id=None))
    wrong_type = dict(valid, call_info=dict(valid["call_info"], call_session_id="abc"))
    wrong_flag = uis.body(
        "leg_end",
        call_session_id=desk.new_call_id(),
        time=desk.when(),
        phone=desk.new_phone(),
        is_operator=True,
    )
    wrong_flag["call_info"]["is_operator"] = "maybe"
    wrong_flag = {"marker": marker} | wrong_flag
    huge = dict(valid, padding="x" * (MAX_BODY + 10))
    return [
        ("truncated JSON", raw[: len(raw) // 2].encode(), 400, "invalid_json"),
        ("unquoted placeholder", placeholder.encode(), 400, "invalid_json"),
        ("not an object", f'["{marker}"]'.encode(), 422, "not_an_object"),
        ("unknown name", uis.encode(unknown), 422, "unknown_notification"),
        ("no call_session_id", uis.encode(missing_id), 422, "missing_call_session_id"),
        ("call_session_id a word", uis.encode(wrong_type), 422, "invalid_field"),
        ("is_operator a word", uis.encode(wrong_flag), 422, "invalid_field"),
        ("over 64 KiB", uis.encode(huge), 413, "body_too_large"),
    ]


def _assert_error(resp: Response, status: int, code: str, what: str) -> None:
    assert resp.status == status, f"{what}: {resp}"
    body = resp.json
    assert set(body) == {"error"}, f"{what}: {resp}"
    assert body["error"]["code"] == code, f"{what}: {resp}"
    assert body["error"]["message"], f"{what}: {resp}"


def test_r33_bad_bodies_get_4xx_and_are_kept(desk: Desk) -> None:
    """R33: invalid JSON (also an unquoted {{placeholder}}) → 400, an unknown name, a missing
    call_session_id or wrong types → 422, over 64 KiB → 413; each is kept at
    GET /api/v1/rejected with its status and code. A wrong secret → 404."""
    marker = uuid.uuid4().hex
    bad = _bad_bodies(desk, marker)
    for what, raw, status, code in bad:
        _assert_error(desk.post_raw(raw), status, code, what)

    wrong = desk.post_raw(uis.encode(_valid_leg_start(desk, marker)), path="/webhooks/uis/nope")
    _assert_error(wrong, 404, "unknown_webhook", "wrong secret")

    answer = desk.admin.get("/api/v1/rejected?limit=200").json
    mine = [r for r in answer["items"] if marker in r["body"]]
    assert sorted((r["status"], r["code"]) for r in mine) == sorted(
        (status, code) for _, _, status, code in bad
    )
    for row in mine:
        assert row["message"] and row["received_at"] and row["size"] > 0
    [huge] = [r for r in mine if r["status"] == 413]
    assert huge["size"] > MAX_BODY
    # Only the admin may read them.
    anna = desk.staff()
    assert anna.api.get("/api/v1/rejected").status == 403
    assert desk.anonymous.get("/api/v1/rejected").status == 401


def test_r33_quoted_placeholder_is_a_missing_value(desk: Desk) -> None:
    """UIS.md: a quoted leftover "{{variable}}" keeps the JSON valid and counts as missing, so
    the notification is used: a voice-menu hang-up with one still gives its missed case."""
    phone, call_id = desk.new_phone(), desk.new_call_id()
    [(_, doc)] = uis.voice_menu_hangup(call_id, desk.when(), phone)
    doc["employee_info"]["employee_full_name"] = "{{employee_full_name}}"
    doc["call_info"]["tag_names"] = "{{tag_names}}"
    resp = desk.post(doc)
    assert resp.status == 200, resp
    [case] = desk.wait_for_cases(phone, 1)
    assert case["subject"] == f"Пропущенный звонок с {phone}"


def test_r33_bad_bodies_do_not_disturb_a_concurrent_call(desk: Desk) -> None:
    """R33: a stream of bad bodies posted while a good call is in progress: every bad one gets
    its 4xx, the good call gets exactly its case, and the service stays healthy."""
    anna = desk.staff()
    phone, call_id = desk.new_phone(), desk.new_call_id()
    events = uis.incoming_answered(call_id, desk.when(), phone, anna.employee_id, talk_seconds=33)
    bad = _bad_bodies(desk, uuid.uuid4().hex)
    stop = threading.Event()

    def flood() -> list[str]:
        problems = []
        rounds = 0
        while not stop.is_set() or rounds < 2:
            rounds += 1
            for what, raw, status, _code in bad:
                resp = desk.post_raw(raw)
                if resp.status != status:
                    problems.append(f"{what}: {resp}")
        return problems

    with ThreadPoolExecutor(2) as pool:
        floods = [pool.submit(flood) for _ in range(2)]
        try:
            desk.post_call(events)
            [case] = desk.wait_for_cases(phone, 1)
        finally:
            stop.set()
        problems = [p for f in floods for p in f.result()]
    assert problems == []
    assert case["subject"] == f"Входящий звонок с {phone}"
    assert case["status"] == "open" and case["assignee_id"] == anna.id
    message = desk.only_call_message(case)
    assert message["call"]["talk_seconds"] == 33
    assert message["call"]["recording_urls"] == desk.recording_links(events)
    assert desk.anonymous.get("/healthz").status == 200
