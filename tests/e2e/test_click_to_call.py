"""Calling out from a case (SPEC §4: R17–R20, R22, R23c), end to end.

The shared service is pointed at a fake UIS Call API (`callrouter.testing.fake_uis`, a real
HTTP server in a thread of this process) for this module; the notifications UIS would then
send are posted to the webhook with the `external_id` the service gave UIS.
"""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

import pytest

from callrouter.testing import uis_bodies as uis
from callrouter.testing.fake_uis import FakeUisThread

if TYPE_CHECKING:
    from tests.e2e.conftest import Desk, Staff

pytestmark = pytest.mark.e2e

FAKE_KEY = "e2e-fake-uis-key"
PICK_UP = "Поднятие трубки"
RECORDING = "Записанный разговор"


@pytest.fixture(scope="module")
def uis_api(shared_desk: Desk) -> Iterator[FakeUisThread]:
    """The fake Call API, set as the integration's for this module (then set back)."""
    desk = shared_desk
    fake = FakeUisThread(FAKE_KEY)
    url = fake.url
    before = desk.admin.get("/api/v1/integrations/uis").json
    resp = desk.admin.put(
        "/api/v1/integrations/uis",
        {"api_key": FAKE_KEY, "virtual_phone_number": "74950000000", "call_api_url": url},
    )
    assert resp.status == 200, resp
    assert resp.json["webhook_path"] == desk.webhook_path  # the secret is kept
    try:
        yield fake
    finally:
        desk.admin.put(
            "/api/v1/integrations/uis",
            {
                "api_key": "e2e-key",
                "virtual_phone_number": before["virtual_phone_number"],
                "call_api_url": before["call_api_url"],
            },
        )
        fake.close()


@dataclass
class Missed:
    """A caller with an open missed-call case, offered to `staff`."""

    staff: Staff
    phone: str
    case: dict[str, Any]


@pytest.fixture(scope="module")
def missed_pool(shared_desk: Desk) -> list[Missed]:
    """Callers with a missed-call case for this module's tests, made together (one wait)."""
    staff = shared_desk.staff("Павел Фёдоров")
    return [Missed(staff, phone, case) for phone, case in shared_desk.missed_cases(staff, 3)]


def _dial(desk: Desk, uis_api: FakeUisThread, staff: Staff, case: dict[str, Any]) -> dict[str, Any]:
    """Click "call" in the case: 202, and UIS was asked to ring the staff member first."""
    asked = len(uis_api.fake.calls)
    resp = staff.api.post(f"/api/v1/cases/{case['id']}/calls", {})
    assert resp.status == 202, resp
    answer: dict[str, Any] = resp.json
    assert set(answer) == {"call_session_id", "external_id"}
    assert len(uis_api.fake.calls) == asked + 1
    call_session_id, params = uis_api.fake.calls[-1]
    assert answer["call_session_id"] == call_session_id
    user = desk.user(case["user_id"])
    assert params["access_token"] == FAKE_KEY
    assert params["first_call"] == "employee"
    assert params["virtual_phone_number"] == "74950000000"
    assert params["contact"] == user["phones"][0]
    assert params["employee"]["id"] == staff.employee_id
    assert params["external_id"] == answer["external_id"]
    return answer


def test_r18_r19_r23c_r17_call_from_missed_case_answered(
    desk: Desk, uis_api: FakeUisThread, missed_pool: list[Missed]
) -> None:
    """R18: "call" in a missed-call case starts a Call API call (staff first); R19: the user
    answers, the summary the staff member typed becomes a message from them, the recording
    is attached; R23c: the case is `waiting` at the end; R17: once recorded, the icon is
    normal again. No other case is made for the call."""
    given = missed_pool.pop()
    anna, phone, case = given.staff, given.phone, given.case
    dial = _dial(desk, uis_api, anna, case)
    call_id = dial["call_session_id"]
    events = uis.outgoing_from_case(
        call_id, desk.when(), phone, anna.employee_id, dial["external_id"], answered=True
    )
    user_pick_up = [i for i, (_, d) in enumerate(events) if d["notification_name"] == PICK_UP][1]
    recording_at = next(i for i, (_, d) in enumerate(events) if d["notification_name"] == RECORDING)
    desk.post_call(events[: user_pick_up + 1])
    desk.wait_call(call_id, "talking", anna)
    resp = anna.api.put(f"/api/v1/calls/{call_id}/draft", {"summary": "Договорились о замене"})
    assert resp.status == 204, resp
    desk.post_call(events[user_pick_up + 1 : recording_at])

    done = desk.wait_case(case["id"], lambda c: len(c["messages"]) == 2, "the call's message")
    # The whole case on failure: which call the second message records says why.
    assert done["messages"][1]["call"]["call_session_id"] == call_id, done
    assert done["messages"][1]["call"]["outcome"] == "answered", done
    assert done["status"] == "waiting", done
    message = done["messages"][1]
    assert message["kind"] == "call"
    assert message["author_staff_id"] == anna.id
    assert message["body"] == "Договорились о замене"
    assert message["call"]["call_session_id"] == call_id
    assert message["call"]["direction"] == "out"
    assert message["call"]["outcome"] == "answered"
    assert done["call_icon"] == "missed"  # not recorded yet

    desk.post_call(events[recording_at:])
    done = desk.wait_case(case["id"], lambda c: c["call_icon"] == "normal", "the normal icon")
    assert done["messages"][1]["call"]["recording_urls"] == desk.recording_links(events)
    assert done["status"] == "waiting"
    call = desk.wait_finalized(call_id)
    assert call["case_ids"] == [case["id"]]
    assert [c["id"] for c in desk.cases_of(case["user_id"])] == [case["id"]]


def test_r20_r22_call_from_case_not_answered(
    desk: Desk, uis_api: FakeUisThread, missed_pool: list[Missed]
) -> None:
    """R20, R22: the user does not answer the call from the case → a "call attempt" message
    from the staff member; the status stays `open`, the icon `missed`."""
    given = missed_pool.pop()
    anna, phone, case = given.staff, given.phone, given.case
    dial = _dial(desk, uis_api, anna, case)
    call_id = dial["call_session_id"]
    desk.post_call(
        uis.outgoing_from_case(
            call_id, desk.when(), phone, anna.employee_id, dial["external_id"], answered=False
        )
    )

    done = desk.wait_case(case["id"], lambda c: len(c["messages"]) == 2, "the attempt")
    attempt = done["messages"][1]
    assert attempt["kind"] == "call"
    assert attempt["author_staff_id"] == anna.id
    assert attempt["call"]["call_session_id"] == call_id
    assert attempt["call"]["outcome"] == "attempt"
    assert attempt["call"]["talk_seconds"] == 0
    assert attempt["call"]["recording_urls"] == []
    assert done["status"] == "open"
    assert done["call_icon"] == "missed"
    desk.wait_finalized(call_id)
    assert [c["id"] for c in desk.cases_of(case["user_id"])] == [case["id"]]


def test_r18_uis_refusal_is_a_502_with_the_mnemonic(
    desk: Desk, uis_api: FakeUisThread, missed_pool: list[Missed]
) -> None:
    """R18, API.md: UIS refuses the call → 502 with the UIS mnemonic as `code` and a message
    for staff; nothing is dialled; a staff member not mapped to an operator gets a 422."""
    given = missed_pool.pop()
    anna, case = given.staff, given.case
    asked = len(uis_api.fake.calls)
    uis_api.apply(lambda fake: fake.fail_next("employee_not_found"))
    resp = anna.api.post(f"/api/v1/cases/{case['id']}/calls", {})
    assert resp.status == 502, resp
    assert resp.json["error"]["code"] == "employee_not_found"
    assert resp.json["error"]["message"]
    assert len(uis_api.fake.calls) == asked

    unmapped = desk.staff("Олег Без Оператора", operators=0)
    resp = unmapped.api.post(f"/api/v1/cases/{case['id']}/calls", {})
    assert resp.status == 422, resp
    assert resp.json["error"]["code"] == "staff_not_mapped"
    assert len(uis_api.fake.calls) == asked
