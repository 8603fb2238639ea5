"""Cases the product makes by itself when a call ends (SPEC §3: R11, R13–R16), end to end."""

from __future__ import annotations

from typing import TYPE_CHECKING

import pytest

from callrouter.testing import uis_bodies as uis

if TYPE_CHECKING:
    from tests.e2e.conftest import Desk

pytestmark = pytest.mark.e2e

# R11, R15 and R16 run on PostgreSQL too: a smoke test of the service on its other database.
both_databases = pytest.mark.parametrize("desk", ["sqlite", "postgresql"], indirect=True)


@both_databases
def test_r11_answered_call_staff_did_nothing(desk: Desk) -> None:
    """R11: an answered incoming call nobody acted on → `Входящий звонок с N`, open, assigned to
    the answering staff member, one call message from them, empty body, with the recording."""
    anna = desk.staff()
    phone, call_id = desk.new_phone(), desk.new_call_id()
    events = uis.incoming_answered(call_id, desk.when(), phone, anna.employee_id, talk_seconds=95)
    desk.post_call(events)

    [case] = desk.wait_for_cases(phone, 1)
    assert case["subject"] == f"Входящий звонок с {phone}"
    assert case["status"] == "open"
    assert case["channel"] == "calls"
    assert case["assignee_id"] == anna.id
    assert case["call_icon"] == "normal"
    assert case["closed_at"] is None
    message = desk.only_call_message(case)
    assert message["author_staff_id"] == anna.id
    assert message["body"] == ""
    assert message["call"]["call_session_id"] == call_id
    assert message["call"]["direction"] == "in"
    assert message["call"]["outcome"] == "answered"
    assert message["call"]["talk_seconds"] == 95
    assert message["call"]["recording_urls"] == desk.recording_links(events)
    # The caller was unknown: a user with only the phone now exists, owning the case.
    user = desk.user(case["user_id"])
    assert user["phones"] == [phone]
    call = desk.wait_finalized(call_id)
    assert call["outcome"] == "answered"
    assert call["case_ids"] == [case["id"]]
    assert call["user_id"] == case["user_id"]


def test_r4_flat_layout_and_loose_names(desk: Desk) -> None:
    """R4: the flat layout (no contact_info / employee_info / call_info nesting) and the six
    names with extra whitespace and another letter case give the same case as R11."""
    anna = desk.staff()
    phone, call_id = desk.new_phone(), desk.new_call_id()
    events = uis.incoming_answered(
        call_id, desk.when(), phone, anna.employee_id, talk_seconds=58, flat=True
    )
    for i, (_, doc) in enumerate(events):
        assert "call_info" not in doc and doc["call_session_id"] == call_id
        name = doc["notification_name"]
        doc["notification_name"] = f"  {name.upper()} " if i % 2 else f"\t{name.lower()}\n"
    desk.post_call(events)

    [case] = desk.wait_for_cases(phone, 1)
    assert case["subject"] == f"Входящий звонок с {phone}"
    assert case["status"] == "open"
    assert case["assignee_id"] == anna.id
    message = desk.only_call_message(case)
    assert message["author_staff_id"] == anna.id
    assert message["call"]["outcome"] == "answered"
    assert message["call"]["talk_seconds"] == 58
    assert message["call"]["recording_urls"] == [
        doc["file_link"] for _, doc in events if doc["file_link"] is not None
    ]


def test_r13_transfer_each_staff_gets_own_case(desk: Desk) -> None:
    """R13: a transfer E1 → E2 where nobody acted: E1's case closed, E2's open, each with
    the recording of its own part of the call."""
    first, second = desk.staff("Иван Петров"), desk.staff("Мария Кузнецова")
    phone, call_id = desk.new_phone(), desk.new_call_id()
    events = uis.transfer(call_id, desk.when(), phone, first.employee_id, second.employee_id)
    desk.post_call(events)

    cases = desk.wait_for_cases(phone, 2)
    by_assignee = {c["assignee_id"]: c for c in cases}
    assert set(by_assignee) == {first.id, second.id}
    link_first, link_second = desk.recording_links(events)
    for staff, status, link in ((first, "closed", link_first), (second, "open", link_second)):
        case = by_assignee[staff.id]
        assert case["subject"] == f"Входящий звонок с {phone}"
        assert case["status"] == status
        assert case["call_icon"] == "normal"
        message = desk.only_call_message(case)
        assert message["author_staff_id"] == staff.id
        assert message["body"] == ""
        assert message["call"]["call_session_id"] == call_id
        assert message["call"]["outcome"] == "answered"
        assert message["call"]["recording_urls"] == [link]
    assert by_assignee[first.id]["closed_at"] is not None
    assert by_assignee[second.id]["closed_at"] is None
    # Both parts belong to one user.
    assert by_assignee[first.id]["user_id"] == by_assignee[second.id]["user_id"]


def test_r14_outgoing_softphone_staff_did_nothing(desk: Desk) -> None:
    """R14: an outgoing softphone call staff did nothing with → a closed case assigned to the
    caller, with the recording (answered) or the attempt (not answered)."""
    anna = desk.staff()
    calls = {}
    for answered in (True, False):
        phone, call_id = desk.new_phone(), desk.new_call_id()
        events = uis.outgoing_softphone(call_id, desk.when(), phone, anna.employee_id, answered)
        desk.post_call(events)
        calls[answered] = (phone, events)

    for answered, (phone, events) in calls.items():
        [case] = desk.wait_for_cases(phone, 1)
        # The guide names no subject for outgoing calls; this one is the product's decision.
        assert case["subject"] == f"Исходящий звонок на {phone}"
        assert case["status"] == "closed"
        assert case["closed_at"] is not None
        assert case["assignee_id"] == anna.id
        assert case["call_icon"] == "normal"
        message = desk.only_call_message(case)
        assert message["author_staff_id"] == anna.id
        assert message["body"] == ""
        assert message["call"]["direction"] == "out"
        if answered:
            end = next(d for _, d in events if d["notification_name"] == "Завершение звонка")
            assert message["call"]["outcome"] == "answered"
            assert message["call"]["talk_seconds"] == end["call_info"]["talk_time_duration"]
            assert message["call"]["recording_urls"] == desk.recording_links(events)
        else:
            assert message["call"]["outcome"] == "attempt"
            assert message["call"]["talk_seconds"] == 0
            assert message["call"]["recording_urls"] == []


@both_databases
def test_r15_r2_missed_calls(desk: Desk) -> None:
    """R15: a missed call after ringing E1 then E2 → `Пропущенный звонок с N`, open, missed
    icon, assigned to E2's staff member, one missed-call message (E1 when E2 is not mapped:
    the last mapped operator offered); a hang-up in the voice menu
    (nobody rung) → the same with no assignee. R2: a call offered only to an operator not
    mapped to staff creates nothing, not even a user."""
    first, second = desk.staff("Иван Петров"), desk.staff("Мария Кузнецова")
    unmapped = desk.map_operator(None)
    rung_phone, rung_call = desk.new_phone(), desk.new_call_id()
    menu_phone, menu_call = desk.new_phone(), desk.new_call_id()
    ignored_phone, ignored_call = desk.new_phone(), desk.new_call_id()
    last_mapped_phone, last_mapped_call = desk.new_phone(), desk.new_call_id()
    desk.post_call(
        uis.incoming_missed(
            rung_call, desk.when(), rung_phone, [first.employee_id, second.employee_id]
        )
    )
    desk.post_call(
        uis.incoming_missed(
            last_mapped_call, desk.when(), last_mapped_phone, [first.employee_id, unmapped]
        )
    )
    desk.post_call(uis.voice_menu_hangup(menu_call, desk.when(), menu_phone))
    desk.post_call(uis.incoming_missed(ignored_call, desk.when(), ignored_phone, [unmapped]))

    for phone, call_id, assignee in (
        (rung_phone, rung_call, second.id),
        (menu_phone, menu_call, None),
        (last_mapped_phone, last_mapped_call, first.id),  # the last *mapped* one offered
    ):
        [case] = desk.wait_for_cases(phone, 1)
        assert case["subject"] == f"Пропущенный звонок с {phone}"
        assert case["status"] == "open"
        assert case["call_icon"] == "missed"
        assert case["assignee_id"] == assignee
        message = desk.only_call_message(case)
        assert message["author_staff_id"] is None
        assert message["body"] == ""
        assert message["call"]["call_session_id"] == call_id
        assert message["call"]["direction"] == "in"
        assert message["call"]["outcome"] == "missed"
        assert message["call"]["talk_seconds"] == 0
        assert message["call"]["recording_urls"] == []

    call = desk.wait_finalized(ignored_call)
    assert call["case_ids"] == []
    assert call["outcome"] == "ignored"
    assert desk.user_by_phone(ignored_phone) is None


@both_databases
def test_r16_missed_calls_grouped_until_a_conversation(desk: Desk) -> None:
    """R16: two missed calls from one user → one case with two messages; after an answered
    call, the next missed call opens a new missed case."""
    anna = desk.staff()
    phone = desk.new_phone()
    first, second = desk.new_call_id(), desk.new_call_id()
    desk.post_call(uis.incoming_missed(first, desk.when(), phone, [anna.employee_id]))
    [missed] = desk.wait_for_cases(phone, 1)
    desk.post_call(uis.incoming_missed(second, desk.when(), phone, [anna.employee_id]))

    missed = desk.wait_case(missed["id"], lambda c: len(c["messages"]) == 2, "two messages")
    assert [m["call"]["call_session_id"] for m in missed["messages"]] == [first, second]
    assert all(m["call"]["outcome"] == "missed" for m in missed["messages"])
    assert missed["status"] == "open" and missed["call_icon"] == "missed"
    desk.wait_finalized(second)
    assert len(desk.cases_of(missed["user_id"])) == 1

    talked = desk.new_call_id()
    desk.post_call(uis.incoming_answered(talked, desk.when(), phone, anna.employee_id))
    _, answered_case = desk.wait_for_cases(phone, 2)
    assert answered_case["subject"] == f"Входящий звонок с {phone}"

    again = desk.new_call_id()
    desk.post_call(uis.incoming_missed(again, desk.when(), phone, [anna.employee_id]))
    cases = desk.wait_for_cases(phone, 3)
    new_missed = cases[2]
    assert new_missed["subject"] == f"Пропущенный звонок с {phone}"
    assert new_missed["call_icon"] == "missed"
    assert new_missed["status"] == "open"
    assert new_missed["assignee_id"] == anna.id
    assert [m["call"]["call_session_id"] for m in new_missed["messages"]] == [again]
    # The first missed case kept its two messages.
    assert len(desk.case(missed["id"])["messages"]) == 2
