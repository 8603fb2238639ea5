"""What staff do during a call (SPEC §2, §5: R7–R10, R12, R17, R21, R23), end to end.

Each test posts the first notifications of a call, waits until the service shows the call as
talking with the staff member in it, acts through the staff member's own token, then posts the
rest of the call and polls for the resulting cases.
"""

from __future__ import annotations

import urllib.parse
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

import pytest

from callrouter.testing import uis_bodies as uis

if TYPE_CHECKING:
    from tests.e2e.conftest import Desk, Staff

pytestmark = pytest.mark.e2e

PICK_UP = "Поднятие трубки"
RECORDING = "Записанный разговор"


def _until_answered(events: list[uis.Event]) -> tuple[list[uis.Event], list[uis.Event]]:
    """The notifications up to and including the (first) pick-up, and the rest."""
    before, rest = _split(events, PICK_UP)
    return before + rest[:1], rest[1:]


def _split(events: list[uis.Event], name: str) -> tuple[list[uis.Event], list[uis.Event]]:
    for i, (_, doc) in enumerate(events):
        if doc["notification_name"] == name:
            return events[:i], events[i:]
    raise AssertionError(f"no {name} in the scenario")


@dataclass
class Missed:
    """A caller with an open missed-call case, offered to `staff`."""

    staff: Staff
    phone: str
    case: dict[str, Any]


@pytest.fixture(scope="module")
def missed_pool(shared_desk: Desk) -> list[Missed]:
    """Callers with a missed-call case for the R23/R17 tests, made together (one wait)."""
    staff = shared_desk.staff("Ольга Новикова")
    return [Missed(staff, phone, case) for phone, case in shared_desk.missed_cases(staff, 3)]


def test_r8_r21_case_created_during_call(desk: Desk) -> None:
    """R8: "create a case" during the call from an unknown number → 201 case with a new user
    having only that phone, the typed subject, assignee = the staff member, first message
    from them with the summary, call in progress. R21: waiting at the end, the message
    answered; the recording is attached when it arrives."""
    anna = desk.staff()
    phone, call_id = desk.new_phone(), desk.new_call_id()
    events = uis.incoming_answered(call_id, desk.when(), phone, anna.employee_id, talk_seconds=80)
    talking, rest = _until_answered(events)
    until_end, recording = _split(rest, RECORDING)
    assert desk.user_by_phone(phone) is None
    desk.post_call(talking)
    desk.wait_call(call_id, "talking", anna)

    resp = anna.api.post(
        f"/api/v1/calls/{call_id}/case",
        {"subject": "Не работает интернет", "summary": "Роутер мигает красным"},
    )
    assert resp.status == 201, resp
    case = resp.json
    assert case["subject"] == "Не работает интернет"
    assert case["channel"] == "calls"
    assert case["assignee_id"] == anna.id
    assert case["status"] == "open"
    [message] = case["messages"]
    assert message["kind"] == "call"
    assert message["author_staff_id"] == anna.id
    assert message["body"] == "Роутер мигает красным"
    assert message["call"]["call_session_id"] == call_id
    assert message["call"]["direction"] == "in"
    assert message["call"]["outcome"] == "in_progress"
    assert message["call"]["recording_urls"] == []
    # The unknown caller became a user with only the phone.
    user = desk.user(case["user_id"])
    assert user == {
        "id": case["user_id"],
        "full_name": None,
        "email": None,
        "company": None,
        "phones": [phone],
        "note": None,
        "custom_fields": {},
    }
    assert desk.user_by_phone(phone) == user
    live = desk.call(call_id).json
    assert live["case_ids"] == [case["id"]] and live["user_id"] == user["id"]

    desk.post_call(until_end)
    done = desk.wait_case(
        case["id"],
        lambda c: c["messages"][0]["call"]["outcome"] == "answered",
        "the call message answered",
    )
    assert done["status"] == "waiting"
    [message] = done["messages"]
    assert message["body"] == "Роутер мигает красным"
    assert message["call"]["talk_seconds"] == 80
    assert message["call"]["recording_urls"] == []  # not recorded yet
    desk.wait_finalized(call_id)
    assert [c["id"] for c in desk.cases_of(user["id"])] == [case["id"]]  # no auto case

    desk.post_call(recording)
    done = desk.wait_case(
        case["id"],
        lambda c: bool(c["messages"][0]["call"]["recording_urls"]),
        "the recording attached",
    )
    assert done["messages"][0]["call"]["recording_urls"] == desk.recording_links(events)
    assert done["status"] == "waiting"
    assert len(done["messages"]) == 1


def test_r8_only_staff_in_the_call_may_create_its_case(desk: Desk) -> None:
    """R8, R34: another staff member cannot create a case from someone else's call (403), and
    an unknown call is 404."""
    anna, ivan = desk.staff(), desk.staff("Иван Петров")
    phone, call_id = desk.new_phone(), desk.new_call_id()
    events = uis.incoming_answered(call_id, desk.when(), phone, anna.employee_id)
    talking, rest = _until_answered(events)
    desk.post_call(talking)
    desk.wait_call(call_id, "talking", anna)

    resp = ivan.api.post(f"/api/v1/calls/{call_id}/case", {"subject": "x", "summary": "y"})
    assert resp.status == 403, resp
    resp = anna.api.post(f"/api/v1/calls/{desk.new_call_id()}/case", {"subject": "x"})
    assert resp.status == 404, resp
    desk.post_call(rest)
    [case] = desk.wait_for_cases(phone, 1)
    assert case["assignee_id"] == anna.id and case["status"] == "open"  # R11 as if untouched


def test_r12_draft_used_when_nothing_saved(desk: Desk) -> None:
    """R10, R12: a draft saved during the call (after the pick-up, before the call end) and
    never turned into a case → the automatic case uses its subject and summary, `waiting`."""
    anna = desk.staff()
    phone, call_id = desk.new_phone(), desk.new_call_id()
    events = uis.incoming_answered(call_id, desk.when(), phone, anna.employee_id, talk_seconds=42)
    talking, rest = _until_answered(events)
    desk.post_call(talking)
    desk.wait_call(call_id, "talking", anna)

    resp = anna.api.put(f"/api/v1/calls/{call_id}/draft", {"subject": "Смена тарифа"})
    assert resp.status == 204, resp
    resp = anna.api.put(f"/api/v1/calls/{call_id}/draft", {"summary": "Хочет тариф «Макси»"})
    assert resp.status == 204, resp
    desk.post_call(rest)

    [case] = desk.wait_for_cases(phone, 1)
    assert case["subject"] == "Смена тарифа"
    assert case["status"] == "waiting"
    assert case["assignee_id"] == anna.id
    assert case["call_icon"] == "normal"
    message = desk.only_call_message(case)
    assert message["author_staff_id"] == anna.id
    assert message["body"] == "Хочет тариф «Макси»"
    assert message["call"]["outcome"] == "answered"
    assert message["call"]["talk_seconds"] == 42
    assert message["call"]["recording_urls"] == desk.recording_links(events)


def test_r9_r21_attach_to_earlier_case(desk: Desk) -> None:
    """R9: attaching the call to one of the user's earlier cases adds a message from the staff
    member with the summary (recording attached when ready); R21: `waiting` at the end."""
    anna = desk.staff()
    phone = desk.new_phone()
    first = uis.incoming_answered(desk.new_call_id(), desk.when(), phone, anna.employee_id)
    desk.post_call(first)
    [earlier] = desk.wait_for_cases(phone, 1)
    assert earlier["status"] == "open"

    call_id = desk.new_call_id()
    events = uis.incoming_answered(call_id, desk.when(), phone, anna.employee_id, talk_seconds=61)
    talking, rest = _until_answered(events)
    desk.post_call(talking)
    live = desk.wait_call(call_id, "talking", anna)
    assert live["user_id"] == earlier["user_id"]  # a known caller

    resp = anna.api.post(
        f"/api/v1/calls/{call_id}/attach", {"case_id": earlier["id"], "summary": "Перезвонил"}
    )
    assert resp.status == 200, resp
    attached = resp.json
    assert attached["id"] == earlier["id"]
    assert len(attached["messages"]) == 2
    new = attached["messages"][1]
    assert new["kind"] == "call"
    assert new["author_staff_id"] == anna.id
    assert new["body"] == "Перезвонил"
    assert new["call"]["call_session_id"] == call_id
    assert new["call"]["outcome"] == "in_progress"

    desk.post_call(rest)
    done = desk.wait_case(
        earlier["id"],
        lambda c: (
            c["messages"][1]["call"]["outcome"] == "answered"
            and c["messages"][1]["call"]["recording_urls"] != []
        ),
        "the second message answered and recorded",
    )
    assert done["status"] == "waiting", done  # the whole case: its history says why not
    assert done["messages"][1]["call"]["outcome"] == "answered"
    assert done["messages"][1]["call"]["talk_seconds"] == 61
    assert done["messages"][1]["call"]["recording_urls"] == desk.recording_links(events)
    # The first message kept its own recording only.
    assert done["messages"][0]["call"]["recording_urls"] == desk.recording_links(first)
    desk.wait_finalized(call_id)
    assert len(desk.cases_of(earlier["user_id"])) == 1  # no automatic case for this call


def test_r7_link_unknown_caller_and_user_search(desk: Desk) -> None:
    """R7: linking an unknown caller to an existing user adds the number to the user's phones
    (and the call's case goes to that user); user search matches name, email, company, phone,
    note and custom field values."""
    anna = desk.staff()
    key = f"contract{desk.new_call_id()}"
    resp = desk.admin.post("/api/v1/fields", {"key": key, "title": "Договор"})
    assert resp.status == 201, resp
    tag = desk.new_call_id()  # makes every searched value unique to this test
    old_phone, phone = desk.new_phone(), desk.new_phone()
    made = anna.api.post(
        "/api/v1/users",
        {
            "full_name": f"Пётр Сидоров {tag}",
            "email": f"petr{tag}@example.test",
            "company": f"ООО Ромашка {tag}",
            "phones": [old_phone],
            "note": f"Любит звонить по утрам {tag}",
            "custom_fields": {key: f"Д-{tag}"},
        },
    )
    assert made.status == 201, made
    user = made.json

    call_id = desk.new_call_id()
    events = uis.incoming_answered(call_id, desk.when(), phone, anna.employee_id)
    talking, rest = _until_answered(events)
    desk.post_call(talking)
    assert desk.wait_call(call_id, "talking", anna)["user_id"] is None

    resp = anna.api.post(f"/api/v1/calls/{call_id}/link-user", {"user_id": user["id"]})
    assert resp.status == 200, resp
    linked = resp.json
    assert linked["id"] == user["id"]
    assert linked["phones"] == [old_phone, phone]
    assert desk.user(user["id"])["phones"] == [old_phone, phone]
    assert desk.call(call_id).json["user_id"] == user["id"]

    for q in (
        f"Сидоров {tag}",
        f"сидоров {tag}",  # case-insensitive, Cyrillic too
        f"petr{tag}@example",
        f"ромашка {tag}",
        phone,
        old_phone,
        f"по утрам {tag}",
        f"Д-{tag}",
    ):
        found = [u["id"] for u in desk.users_matching(q)]
        assert found == [user["id"]], f"search {q!r} found {found}"
    assert desk.users_matching(f"{tag}-nothing") == []
    query = urllib.parse.urlencode({"q": f"Сидоров {tag}"})
    assert anna.api.get(f"/api/v1/users?{query}").json["total"] == 1  # staff may search

    desk.post_call(rest)
    [case] = desk.wait_for_cases(user["id"], 1)
    assert case["subject"] == f"Входящий звонок с {phone}"
    assert case["assignee_id"] == anna.id


def test_r23a_new_case_closes_missed_case(desk: Desk, missed_pool: list[Missed]) -> None:
    """R23a: the user has an open missed-call case, calls again, staff answers and creates a
    new case → the missed-call case is closed; the new case is `waiting` at the end (R21)."""
    given = missed_pool.pop()
    anna, phone, missed = given.staff, given.phone, given.case

    call_id = desk.new_call_id()
    events = uis.incoming_answered(call_id, desk.when(), phone, anna.employee_id)
    talking, rest = _until_answered(events)
    desk.post_call(talking)
    desk.wait_call(call_id, "talking", anna)
    resp = anna.api.post(f"/api/v1/calls/{call_id}/case", {"subject": "Перезвон", "summary": ""})
    assert resp.status == 201, resp
    new_case = resp.json
    assert new_case["user_id"] == missed["user_id"]
    desk.post_call(rest)

    desk.wait_case(new_case["id"], lambda c: c["status"] == "waiting", "waiting")
    old = desk.case(missed["id"])
    assert old["status"] == "closed"
    assert old["closed_at"] is not None
    desk.wait_finalized(call_id)
    assert [c["id"] for c in desk.cases_of(missed["user_id"])] == [missed["id"], new_case["id"]]


def test_r17_r23e_softphone_call_attached_to_missed_case(
    desk: Desk, missed_pool: list[Missed]
) -> None:
    """R23e: staff calls the user back from the softphone, the user answers, staff attaches the
    call to the missed case → `waiting` at the end; R17: once the conversation is recorded the
    case's icon turns back to normal."""
    given = missed_pool.pop()
    anna, phone, missed = given.staff, given.phone, given.case

    call_id = desk.new_call_id()
    events = uis.outgoing_softphone(call_id, desk.when(), phone, anna.employee_id, answered=True)
    talking, rest = _until_answered(events)
    until_end, recording = _split(rest, RECORDING)
    desk.post_call(talking)
    desk.wait_call(call_id, "talking", anna)
    resp = anna.api.post(
        f"/api/v1/calls/{call_id}/attach", {"case_id": missed["id"], "summary": "Перезвонили"}
    )
    assert resp.status == 200, resp
    desk.post_call(until_end)

    done = desk.wait_case(missed["id"], lambda c: c["status"] == "waiting", "waiting")
    assert done["call_icon"] == "missed"  # not recorded yet
    message = done["messages"][-1]
    assert message["author_staff_id"] == anna.id
    assert message["body"] == "Перезвонили"
    assert message["call"]["direction"] == "out"
    assert message["call"]["outcome"] == "answered"

    desk.post_call(recording)
    done = desk.wait_case(missed["id"], lambda c: c["call_icon"] == "normal", "normal icon")
    assert done["status"] == "waiting"
    assert done["messages"][-1]["call"]["recording_urls"] == desk.recording_links(events)
    desk.wait_finalized(call_id)
    assert len(desk.cases_of(missed["user_id"])) == 1  # no automatic outgoing case


def test_r23d_softphone_call_new_case_closes_missed_case(
    desk: Desk, missed_pool: list[Missed]
) -> None:
    """R23d: staff calls from the softphone, the user answers, staff creates a new case → the
    missed-call case is closed; the new case is `waiting` at the end."""
    given = missed_pool.pop()
    anna, phone, missed = given.staff, given.phone, given.case

    call_id = desk.new_call_id()
    events = uis.outgoing_softphone(call_id, desk.when(), phone, anna.employee_id, answered=True)
    talking, rest = _until_answered(events)
    desk.post_call(talking)
    desk.wait_call(call_id, "talking", anna)
    resp = anna.api.post(f"/api/v1/calls/{call_id}/case", {"subject": "Обратный звонок"})
    assert resp.status == 201, resp
    new_case = resp.json
    desk.post_call(rest)

    desk.wait_case(new_case["id"], lambda c: c["status"] == "waiting", "waiting")
    assert desk.case(missed["id"])["status"] == "closed"
    assert new_case["user_id"] == missed["user_id"]
