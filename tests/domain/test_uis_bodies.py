"""The body builder renders the guide's templates exactly, and the scenarios follow UIS.md."""

from __future__ import annotations

import json
import re
from collections.abc import Callable
from datetime import datetime, timedelta
from pathlib import Path
from typing import Any

import orjson
import pytest

from callrouter.testing import uis_bodies as ub

START = datetime(2026, 11, 2, 9, 30, 0)
CALL = 237859081
PHONE = "79261234567"
TIME_FORMAT = re.compile(r"^\d{4}-\d{2}-\d{2} \d{2}:\d{2}:\d{2}\.\d{3}$")
LINK = re.compile(r"^https://media\.uiscom\.ru/(\d+)/[0-9a-f]{32}$")
KIND_OF = {name: kind for kind, name in ub.NAMES.items()}


def _seed_dir() -> Path | None:
    here = Path(__file__).resolve()
    for candidate in (here.parents[3] / "shared" / "seed", here.parents[2] / "docs" / "seed"):
        if candidate.is_dir():
            return candidate
    return None


def _seed_templates() -> dict[str, Any]:
    """notification name -> the seed's JSON template with every {{variable}} as null."""
    seed = _seed_dir()
    if seed is None:
        pytest.skip("the integration guide (seed) is not available")
    templates: dict[str, Any] = {}
    name = None
    for path in sorted(seed.glob("*.txt")):
        for line in path.read_text(encoding="utf-8").splitlines():
            if line.startswith("Название уведомления:"):
                name = line.split(":", 1)[1].strip()
            elif name is not None and line.lstrip().startswith("{"):
                templates[name] = json.loads(re.sub(r"\{\{\s*\w+\s*\}\}", "null", line))
                name = None
    return templates


def _shape(doc: dict[str, Any]) -> list[tuple[str, Any]]:
    """Keys in order, nested objects as their own shape, leaves as None."""
    return [(k, _shape(v) if isinstance(v, dict) else None) for k, v in doc.items()]


def _leaves(doc: dict[str, Any]) -> list[str]:
    keys: list[str] = []
    for key, value in doc.items():
        keys += _leaves(value) if isinstance(value, dict) else [key]
    return keys


def _full(kind: str, **extra: Any) -> dict[str, Any]:
    return ub.body(
        kind,
        call_session_id=CALL,
        time=START,
        phone=PHONE,
        employee_id=1001,
        employee_name="Анна Смирнова",
        leg_id=42,
        is_operator=True,
        is_lost=False,
        talk_seconds=61,
        total_seconds=75,
        wait_seconds=9,
        external_id="case-7",
        file_link=f"https://media.uiscom.ru/{CALL}/{'a' * 32}",
        record_file_links=[f"https://media.uiscom.ru/{CALL}/{'a' * 32}"],
        **extra,
    )


def test_the_six_names_are_the_seeds() -> None:
    assert set(ub.NAMES.values()) == set(_seed_templates())


@pytest.mark.parametrize("kind", list(ub.NAMES))
def test_nested_body_has_exactly_the_seed_keys_in_order(kind: str) -> None:
    seed = _seed_templates()[ub.NAMES[kind]]
    assert _shape(_full(kind)) == _shape(seed)
    assert _shape(ub.body(kind, call_session_id=CALL, time=START)) == _shape(seed)


@pytest.mark.parametrize("kind", list(ub.NAMES))
def test_flat_body_has_the_seed_leaves_at_top_level(kind: str) -> None:
    seed = _seed_templates()[ub.NAMES[kind]]
    flat = _full(kind, flat=True)
    assert list(flat) == _leaves(seed)
    assert not any(isinstance(v, dict) for v in flat.values())
    nested = _full(kind)
    assert flat["employee_id"] == nested["employee_info"]["employee_id"] == 1001
    assert flat["call_session_id"] == nested["call_info"]["call_session_id"] == CALL


def test_values_land_where_the_template_puts_them() -> None:
    leg_end = _full("leg_end")
    assert leg_end["notification_name"] == "Завершение плеча"
    assert leg_end["notification_time"] == "2026-11-02 09:30:00.000"
    assert leg_end["contact_info"]["contact_phone_number"] == PHONE
    assert leg_end["employee_info"] == {"employee_full_name": "Анна Смирнова", "employee_id": 1001}
    assert leg_end["call_info"]["is_operator"] is True
    assert leg_end["call_info"]["talk_time_duration"] == 61
    assert leg_end["leg_id"] == 42 and leg_end["leg_ids"] == [42]
    assert leg_end["external_id"] == "case-7"
    recording = _full("recording")
    record = recording["call_record_file_info"]
    assert record["call_record_duration"] == 61  # the seed's {{file_duration}}
    assert record["record_file_links"] == [record["file_link"]]


def test_missing_values_are_json_null_as_uis_renders_them() -> None:
    doc = ub.body("call_end", call_session_id=CALL, time=START)
    assert doc["employee_info"] == {"employee_full_name": None, "employee_id": None}
    assert doc["external_id"] is None and doc["leg_id"] is None and doc["leg_ids"] is None
    assert doc["call_record_file_info"] == {"file_link": None, "call_record_duration": None}
    assert b'"external_id":null' in ub.encode(doc)


def test_notification_time_has_milliseconds_and_no_zone() -> None:
    doc = ub.body("answer", call_session_id=CALL, time=START + timedelta(microseconds=123_987))
    assert doc["notification_time"] == "2026-11-02 09:30:00.123"


def test_encode_is_utf8_json_with_key_order_kept() -> None:
    doc = _full("call_end")
    raw = ub.encode(doc)
    assert "Завершение звонка".encode() in raw
    assert list(orjson.loads(raw)) == list(doc)


def test_unknown_kind_is_rejected() -> None:
    with pytest.raises(KeyError):
        ub.body("hangup", call_session_id=CALL, time=START)


# --- scenarios --------------------------------------------------------------------------------


def _flow(events: list[ub.Event]) -> list[tuple[str, int | None]]:
    return [(KIND_OF[d["notification_name"]], d["employee_info"]["employee_id"]) for _, d in events]


def _last(events: list[ub.Event], kind: str) -> dict[str, Any]:
    return [d for _, d in events if d["notification_name"] == ub.NAMES[kind]][-1]


SCENARIOS: dict[str, Callable[[], list[ub.Event]]] = {
    "answered": lambda: ub.incoming_answered(CALL, START, PHONE, 1001),
    "missed": lambda: ub.incoming_missed(CALL, START, PHONE, [1001, 1002]),
    "voice_menu": lambda: ub.voice_menu_hangup(CALL, START, PHONE),
    "transfer": lambda: ub.transfer(CALL, START, PHONE, 1001, 1002),
    "soft_answered": lambda: ub.outgoing_softphone(CALL, START, PHONE, 1001, answered=True),
    "soft_unanswered": lambda: ub.outgoing_softphone(CALL, START, PHONE, 1001, answered=False),
    "case_answered": lambda: ub.outgoing_from_case(CALL, START, PHONE, 1001, "c-1", True),
    "case_unanswered": lambda: ub.outgoing_from_case(CALL, START, PHONE, 1001, "c-1", False),
}


def test_incoming_answered_order_and_figures() -> None:
    events = ub.incoming_answered(CALL, START, PHONE, 1001, talk_seconds=95)
    assert _flow(events) == [
        ("leg_start", 1001),
        ("answer", 1001),
        ("leg_end", 1001),
        ("call_end", 1001),
        ("recording", 1001),
    ]
    end = _last(events, "call_end")["call_info"]
    assert end["is_lost"] is False and end["talk_time_duration"] == 95
    assert end["direction"] == "in" and end["call_source"] == "va"
    assert _last(events, "leg_end")["call_info"]["is_operator"] is True


def test_incoming_missed_rings_each_operator_in_turn() -> None:
    events = ub.incoming_missed(CALL, START, PHONE, [1001, 1002])
    assert _flow(events) == [
        ("leg_start", 1001),
        ("leg_end", 1001),
        ("leg_start", 1002),
        ("leg_end", 1002),
        ("call_end", None),
    ]
    end = _last(events, "call_end")["call_info"]
    assert end["is_lost"] is True and end["talk_time_duration"] == 0


def test_voice_menu_hangup_is_a_lone_lost_call_end() -> None:
    events = ub.voice_menu_hangup(CALL, START, PHONE)
    assert _flow(events) == [("call_end", None)]
    doc = events[0][1]
    assert doc["call_info"]["is_lost"] is True and doc["leg_id"] is None


def test_transfer_order_and_one_recording_per_part() -> None:
    events = ub.transfer(CALL, START, PHONE, 1001, 1002)
    assert _flow(events) == [
        ("leg_start", 1001),
        ("answer", 1001),
        ("leg_start", 1002),
        ("answer", 1002),
        ("leg_end", 1001),
        ("leg_end", 1002),
        ("call_end", 1002),
        ("recording", 1001),
        ("recording", 1002),
    ]
    recordings = [d for _, d in events if d["notification_name"] == ub.NAMES["recording"]]
    links = {d["call_record_file_info"]["file_link"] for d in recordings}
    assert len(links) == 2
    assert [d["leg_id"] for d in recordings] == [events[0][1]["leg_id"], events[2][1]["leg_id"]]


def test_outgoing_softphone_answered_and_not() -> None:
    answered = ub.outgoing_softphone(CALL, START, PHONE, 1001, answered=True)
    assert [k for k, _ in _flow(answered)] == [
        "outgoing_call",
        "leg_start",
        "answer",
        "leg_end",
        "call_end",
        "recording",
    ]
    missed = ub.outgoing_softphone(CALL, START, PHONE, 1001, answered=False)
    assert [k for k, _ in _flow(missed)] == ["outgoing_call", "leg_start", "leg_end", "call_end"]
    end = _last(missed, "call_end")["call_info"]
    assert end["is_lost"] is True and end["talk_time_duration"] == 0
    assert all(d["call_info"]["direction"] == "out" for _, d in answered + missed)
    assert _last(answered, "leg_end")["call_info"]["is_operator"] is False


def test_outgoing_from_case_staff_leg_first_and_external_id_everywhere() -> None:
    events = ub.outgoing_from_case(CALL, START, PHONE, 1001, "case-9", answered=True)
    assert [k for k, _ in _flow(events)] == [
        "leg_start",
        "answer",
        "leg_start",
        "answer",
        "leg_end",
        "leg_end",
        "call_end",
        "recording",
    ]
    docs = [d for _, d in events]
    assert all(d["external_id"] == "case-9" for d in docs)
    assert all(d["call_info"]["call_source"] == "callapi" for d in docs)
    staff_leg, user_leg = docs[0]["leg_id"], docs[2]["leg_id"]
    ends = {d["leg_id"]: d["call_info"]["is_operator"] for d in docs[4:6]}
    assert ends == {staff_leg: True, user_leg: False}
    unanswered = ub.outgoing_from_case(CALL, START, PHONE, 1001, "case-9", answered=False)
    assert [k for k, _ in _flow(unanswered)] == [
        "leg_start",
        "answer",
        "leg_start",
        "leg_end",
        "leg_end",
        "call_end",
    ]
    assert _last(unanswered, "call_end")["call_info"]["is_lost"] is True


@pytest.mark.parametrize("name", list(SCENARIOS))
def test_scenario_invariants(name: str) -> None:
    events = SCENARIOS[name]()
    times = [t for t, _ in events]
    assert times == sorted(times) and len(set(times)) == len(times)
    assert times[0] >= START
    legs: dict[int, int | None] = {}
    for at, doc in events:
        assert doc["notification_time"] == ub.format_time(at)
        assert TIME_FORMAT.match(doc["notification_time"])
        assert doc["call_info"]["call_session_id"] == CALL
        assert doc["contact_info"]["contact_phone_number"] == PHONE
        if doc["notification_name"] == ub.NAMES["leg_start"]:
            assert doc["leg_id"] not in legs  # one leg start per leg
            legs[doc["leg_id"]] = doc["employee_info"]["employee_id"]
        if doc["notification_name"] == ub.NAMES["leg_end"]:
            assert legs[doc["leg_id"]] == doc["employee_info"]["employee_id"]
    end_time = next(t for t, d in events if d["notification_name"] == ub.NAMES["call_end"])
    for at, doc in events:
        if doc["notification_name"] == ub.NAMES["recording"]:
            record = doc["call_record_file_info"]
            match = LINK.match(record["file_link"])
            assert match and int(match.group(1)) == CALL
            assert record["record_file_links"] == [record["file_link"]]
            assert timedelta(seconds=1) < at - end_time < timedelta(seconds=30)


@pytest.mark.parametrize("name", list(SCENARIOS))
def test_scenarios_are_deterministic(name: str) -> None:
    assert SCENARIOS[name]() == SCENARIOS[name]()


def test_answered_talk_time_is_realistic_and_rings_are_seconds() -> None:
    for call in range(CALL, CALL + 50):
        events = ub.incoming_answered(call, START, PHONE, 1001)
        talk = _last(events, "call_end")["call_info"]["talk_time_duration"]
        assert 30 <= talk <= 300
        ring = events[1][0] - events[0][0]
        assert timedelta(seconds=1) <= ring <= timedelta(seconds=15)


def test_leg_ids_are_distinct_across_calls() -> None:
    legs = [
        d["leg_id"]
        for call in (CALL, CALL + 1)
        for _, d in ub.transfer(call, START, PHONE, 1001, 1002)
        if d["notification_name"] == ub.NAMES["leg_start"]
    ]
    assert len(legs) == len(set(legs)) == 4


def test_flat_scenario_uses_the_flat_layout() -> None:
    events = ub.incoming_answered(CALL, START, PHONE, 1001, flat=True)
    assert all("call_info" not in d and d["call_session_id"] == CALL for _, d in events)
    assert events[0][1]["employee_id"] == 1001
