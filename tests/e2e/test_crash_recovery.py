"""R32 crash recovery: acknowledged notifications survive a SIGKILL of the service and its Ray,
and count exactly once after the restart. One service of this module's own (the crash would
take the shared one down): started, fed, killed mid-way, restarted on the same data dir and
another port, then fed the rest of each call."""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

import pytest

from callrouter.testing import uis_bodies as uis

if TYPE_CHECKING:
    from tests.e2e.conftest import Desk, Launcher, Staff

pytestmark = pytest.mark.e2e

PICK_UP = "Поднятие трубки"
CALL_END = "Завершение звонка"


def _split_after(events: list[uis.Event], name: str) -> tuple[list[uis.Event], list[uis.Event]]:
    """The events up to and including the first `name`, and the rest."""
    for i, (_, doc) in enumerate(events):
        if doc["notification_name"] == name:
            return events[: i + 1], events[i + 1 :]
    raise AssertionError(f"no {name} in the scenario")


@dataclass
class Crash:
    desk: Desk
    anna: Staff
    calls: dict[str, tuple[str, int, list[uis.Event]]]  # name -> (phone, call id, events)
    staff_case: dict[str, Any]  # the case made during the "with_case" call before the crash


@pytest.fixture(scope="module")
def crash(launcher: Launcher) -> Iterator[Crash]:
    desk = launcher.desk("crash")
    svc = desk.service
    anna = desk.staff()
    calls = {}
    for name, talk in (("mid_call", 64), ("with_case", 51), ("ended", 47)):
        phone, call_id = desk.new_phone(), desk.new_call_id()
        events = uis.incoming_answered(call_id, desk.when(), phone, anna.employee_id, talk)
        calls[name] = (phone, call_id, events)

    # Before the crash: a call answered and given a case by staff; a call answered only; a
    # call up to its call end. The last acknowledged body is that call end: SIGKILL at once.
    _, with_case_id, with_case = calls["with_case"]
    head, _ = _split_after(with_case, PICK_UP)
    desk.post_call(head)
    desk.wait_call(with_case_id, "talking", anna)
    resp = anna.api.post(f"/api/v1/calls/{with_case_id}/case", {"subject": "До сбоя"})
    assert resp.status == 201, resp
    desk.post_call(_split_after(calls["mid_call"][2], PICK_UP)[0])
    desk.post_call(_split_after(calls["ended"][2], CALL_END)[0])
    # Within the settle window: the call end is stored, its cases are not decided yet.
    assert "outcome" not in desk.call(calls["ended"][1]).json
    svc.kill()

    svc.start()  # same data dir, a new port
    svc.wait_ready()
    desk.post_call(_split_after(calls["mid_call"][2], PICK_UP)[1])
    desk.post_call(_split_after(with_case, PICK_UP)[1])
    _, ended_rest = _split_after(calls["ended"][2], CALL_END)
    desk.post_call(ended_rest)  # the recording
    # UIS may resend the call end it had an answer for: still one effect.
    desk.post_call([e for e in calls["ended"][2] if e[1]["notification_name"] == CALL_END])
    yield Crash(desk, anna, calls, resp.json)
    launcher.retire("crash")


def _settled(crash: Crash) -> None:
    """Wait until every call of the module was decided, so counts are final."""
    for _, call_id, _ in crash.calls.values():
        crash.desk.wait_finalized(call_id)


def test_r32_crash_mid_call(crash: Crash) -> None:
    """R32: leg start and pick-up acknowledged, SIGKILL, restart, the rest posted → exactly
    one correct R11 case."""
    desk, anna = crash.desk, crash.anna
    phone, call_id, events = crash.calls["mid_call"]
    [case] = desk.wait_for_cases(phone, 1)
    _settled(crash)
    assert len(desk.cases_of(case["user_id"])) == 1
    assert case["subject"] == f"Входящий звонок с {phone}"
    assert case["status"] == "open"
    assert case["assignee_id"] == anna.id
    message = desk.only_call_message(case)
    assert message["author_staff_id"] == anna.id
    assert message["call"]["call_session_id"] == call_id
    assert message["call"]["outcome"] == "answered"
    assert message["call"]["talk_seconds"] == 64
    assert message["call"]["recording_urls"] == desk.recording_links(events)


def test_r32_crash_after_staff_made_a_case(crash: Crash) -> None:
    """R8, R21, R32: the case staff made during the call survives the crash; the call's end
    after the restart finishes its message and makes it `waiting`; no automatic case."""
    desk = crash.desk
    phone, _, events = crash.calls["with_case"]
    case_id = crash.staff_case["id"]
    done = desk.wait_case(
        case_id, lambda c: c["messages"][0]["call"]["outcome"] == "answered", "answered"
    )
    _settled(crash)
    done = desk.wait_case(
        case_id, lambda c: bool(c["messages"][0]["call"]["recording_urls"]), "recorded"
    )
    assert [c["id"] for c in desk.cases_of(done["user_id"])] == [case_id]
    assert done["subject"] == "До сбоя"
    assert done["status"] == "waiting"
    message = desk.only_call_message(done)
    assert message["call"]["talk_seconds"] == 51
    assert message["call"]["recording_urls"] == desk.recording_links(events)
    assert desk.user_by_phone(phone)["id"] == done["user_id"]


def test_r32_call_end_acknowledged_right_before_the_crash(crash: Crash) -> None:
    """R32: the call end was acknowledged and the service killed before its case was made →
    after the restart the case appears exactly once (also when UIS resends the call end),
    and the recording posted after the restart is attached."""
    desk, anna = crash.desk, crash.anna
    phone, call_id, events = crash.calls["ended"]
    [case] = desk.wait_for_cases(phone, 1)
    _settled(crash)
    case = desk.wait_case(
        case["id"], lambda c: bool(c["messages"][0]["call"]["recording_urls"]), "recorded"
    )
    assert len(desk.cases_of(case["user_id"])) == 1
    assert case["subject"] == f"Входящий звонок с {phone}"
    assert case["status"] == "open"
    assert case["assignee_id"] == anna.id
    message = desk.only_call_message(case)
    assert message["call"]["call_session_id"] == call_id
    assert message["call"]["outcome"] == "answered"
    assert message["call"]["talk_seconds"] == 47
    assert message["call"]["recording_urls"] == desk.recording_links(events)
