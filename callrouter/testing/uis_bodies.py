"""Realistic UIS notification bodies, for tests, the traffic generator and end-to-end runs.

`body()` renders one notification exactly as UIS renders the guide's templates (seed, step 2):
the same keys in the same nesting, every variable present, a missing value as JSON `null`.
`flat=True` gives the flat layout many accounts use instead (R4): the same leaves, top level.

The scenario helpers return whole calls as `(time, body)` pairs in the typical orders of
UIS.md. Everything random (ring and talk times, recording links) comes from `rng`, which
defaults to one seeded by the call id, so the same inputs always give the same bodies.
"""

from __future__ import annotations

import random
from datetime import datetime, timedelta
from typing import Any

import orjson

from callrouter.domain.templates import NAMES, TEMPLATES

Body = dict[str, Any]
Event = tuple[datetime, Body]

DEFAULT_PHONE = "79260000000"
DEFAULT_VIRTUAL_NUMBER = "74950000000"
MEDIA_URL = "https://media.uiscom.ru"

# What the PBX plays before it dials anyone, as UIS reports it for calls to the virtual number.
_INCOMING_SCENARIO = "Основной сценарий"

_OPERATOR_NAMES = (
    "Анна Смирнова",
    "Иван Петров",
    "Мария Кузнецова",
    "Дмитрий Соколов",
    "Елена Попова",
    "Сергей Лебедев",
    "Ольга Новикова",
    "Алексей Морозов",
    "Наталья Волкова",
    "Павел Фёдоров",
    "Татьяна Михайлова",
    "Андрей Козлов",
)


def format_time(time: datetime) -> str:
    """`notification_time` as UIS writes it: "YYYY-MM-DD hh:mm:ss.fff", local, no zone."""
    return time.strftime("%Y-%m-%d %H:%M:%S.") + f"{time.microsecond // 1000:03d}"


def operator_name(employee_id: int) -> str:
    """A stable Russian full name for a UIS employee id."""
    return _OPERATOR_NAMES[employee_id % len(_OPERATOR_NAMES)]


def _render(template: dict[str, Any], values: dict[str, Any]) -> Body:
    return {
        key: _render(var, values) if isinstance(var, dict) else values[var]
        for key, var in template.items()
    }


def _flatten(template: dict[str, Any], values: dict[str, Any]) -> Body:
    flat: Body = {}
    for key, var in template.items():
        if isinstance(var, dict):
            flat |= _flatten(var, values)
        else:
            flat[key] = values[var]
    return flat


def body(
    kind: str,
    *,
    call_session_id: int,
    time: datetime,
    phone: str = DEFAULT_PHONE,
    virtual_phone_number: str = DEFAULT_VIRTUAL_NUMBER,
    direction: str = "in",
    employee_id: int | None = None,
    employee_name: str | None = None,
    leg_id: int | None = None,
    is_operator: bool | None = None,
    is_lost: bool | None = None,
    talk_seconds: int | None = None,
    total_seconds: int | None = None,
    wait_seconds: int | None = None,
    external_id: str | None = None,
    call_source: str | None = "va",
    file_link: str | None = None,
    record_file_links: list[str] | None = None,
    flat: bool = False,
    leg_ids: list[int] | None = None,
) -> Body:
    """One notification of `kind` (a key of NAMES) rendered from its seed template.

    Unknown values are null, as UIS renders them; `leg_ids` defaults to `[leg_id]`, and the
    recording's duration to `talk_seconds` when there is a file. Raises KeyError for an
    unknown kind.
    """
    values: dict[str, Any] = {
        "notification_name": NAMES[kind],
        "virtual_phone_number": virtual_phone_number,
        "notification_time": format_time(time),
        "external_id": external_id,
        "contact_phone_number": phone,
        # The number the call went through: the virtual number, both ways.
        "communication_number": virtual_phone_number,
        "contact_id": None,
        "contact_full_name": None,
        "employee_full_name": employee_name,
        "employee_id": employee_id,
        "call_source": call_source,
        "direction": direction,
        "call_session_id": call_session_id,
        "scenario_name": _INCOMING_SCENARIO if direction == "in" else None,
        "is_operator": is_operator,
        "talk_time_duration": talk_seconds,
        "total_time_duration": total_seconds,
        "wait_time_duration": wait_seconds,
        "tag_names": None,
        "is_lost": is_lost,
        "file_link": file_link,
        "file_duration": talk_seconds if file_link is not None else None,
        "record_file_links": record_file_links,
        "leg_id": leg_id,
        "leg_ids": leg_ids if leg_ids is not None else ([leg_id] if leg_id is not None else None),
        "last_scenario_operation_name": None,
        "group_ids": None,
    }
    template = TEMPLATES[kind]
    return _flatten(template, values) if flat else _render(template, values)


def encode(doc: Any) -> bytes:
    """A body (or any JSON value) as UTF-8 JSON bytes, key order kept."""
    return orjson.dumps(doc)


class _Call:
    """One call being written: a clock that moves forward and the bodies emitted so far."""

    def __init__(
        self,
        call_session_id: int,
        start: datetime,
        phone: str,
        *,
        direction: str,
        call_source: str,
        rng: random.Random | None,
        virtual_phone_number: str,
        flat: bool,
        external_id: str | None = None,
    ) -> None:
        self.id = call_session_id
        self.start = start
        self.now = start
        self.rng = rng if rng is not None else random.Random(call_session_id)
        self.events: list[Event] = []
        self.legs: list[int] = []
        self._common: dict[str, Any] = {
            "call_session_id": call_session_id,
            "phone": phone,
            "virtual_phone_number": virtual_phone_number,
            "direction": direction,
            "call_source": call_source,
            "external_id": external_id,
            "flat": flat,
        }
        self.origin_leg = self.new_leg()  # the caller's own leg into the PBX: never dialled out

    def new_leg(self) -> int:
        """A leg id unique across calls (the call id times ten plus the leg's number)."""
        leg = self.id * 10 + len(self.legs)
        self.legs.append(leg)
        return leg

    def wait(self, low: float, high: float) -> datetime:
        """Move the clock forward by a random whole number of milliseconds in [low, high] s."""
        millis = round(self.rng.uniform(low, high) * 1000)
        self.now += timedelta(milliseconds=max(millis, 1))
        return self.now

    def wait_exactly(self, seconds: int) -> datetime:
        """Move the clock forward by `seconds` (a talk time the caller chose)."""
        self.now += timedelta(seconds=seconds)
        return self.now

    def seconds_since(self, then: datetime) -> int:
        """Whole seconds from `then` to now, the way UIS reports durations."""
        return round((self.now - then).total_seconds())

    def emit(self, kind: str, employee_id: int | None = None, **fields: Any) -> None:
        """Append a `kind` body at the current time, naming `employee_id` when given."""
        if employee_id is not None:
            fields.setdefault("employee_name", operator_name(employee_id))
        doc = body(kind, time=self.now, employee_id=employee_id, **self._common, **fields)
        self.events.append((self.now, doc))

    def talk_time(self, talk_seconds: int | None) -> int:
        """The given talk time, else a realistic one (30–300 s)."""
        return talk_seconds if talk_seconds is not None else self.rng.randint(30, 300)

    def call_end(self, employee_id: int | None, *, talk: int, answered_at: datetime | None) -> None:
        """The call end after a short pause, lost iff nobody talked."""
        self.wait(0.1, 1.5)
        waited = answered_at if answered_at is not None else self.now
        self.emit(
            "call_end",
            employee_id,
            is_lost=talk == 0,
            talk_seconds=talk,
            total_seconds=self.seconds_since(self.start),
            wait_seconds=round((waited - self.start).total_seconds()),
            leg_ids=list(self.legs),
        )

    def recording(self, employee_id: int | None, *, talk: int, leg_id: int | None) -> None:
        """A recording of one conversation, ready a few seconds after what came before."""
        self.wait(2.0, 10.0)
        link = f"{MEDIA_URL}/{self.id}/{self.rng.getrandbits(128):032x}"
        self.emit(
            "recording",
            employee_id,
            is_lost=False,
            talk_seconds=talk,
            total_seconds=self.seconds_since(self.start),
            file_link=link,
            record_file_links=[link],
            leg_id=leg_id,
        )


def _incoming(
    call_session_id: int,
    start: datetime,
    phone: str,
    rng: random.Random | None,
    virtual_phone_number: str,
    flat: bool,
) -> _Call:
    return _Call(
        call_session_id,
        start,
        phone,
        direction="in",
        call_source="va",
        rng=rng,
        virtual_phone_number=virtual_phone_number,
        flat=flat,
    )


def _ring_and_answer(call: _Call, employee_id: int) -> tuple[int, datetime]:
    """Dial an operator, ring a few seconds, pick up; returns the leg and the answer time."""
    leg = call.new_leg()
    call.emit("leg_start", employee_id, leg_id=leg)
    call.wait(2.0, 12.0)
    call.emit("answer", employee_id, leg_id=leg)
    return leg, call.now


def incoming_answered(
    call_session_id: int,
    start: datetime,
    phone: str,
    employee_id: int,
    talk_seconds: int | None = None,
    *,
    virtual_phone_number: str = DEFAULT_VIRTUAL_NUMBER,
    flat: bool = False,
    rng: random.Random | None = None,
) -> list[Event]:
    """Incoming call answered by `employee_id`: leg out, pick-up, leg end, call end, recording."""
    call = _incoming(call_session_id, start, phone, rng, virtual_phone_number, flat)
    talk = call.talk_time(talk_seconds)
    call.wait(2.0, 12.0)  # voice menu and queue before the PBX dials the operator
    leg_started = call.now
    leg, answered_at = _ring_and_answer(call, employee_id)
    call.wait_exactly(talk)
    call.emit(
        "leg_end",
        employee_id,
        leg_id=leg,
        is_operator=True,
        talk_seconds=talk,
        total_seconds=call.seconds_since(leg_started),
        wait_seconds=round((answered_at - leg_started).total_seconds()),
    )
    call.call_end(employee_id, talk=talk, answered_at=answered_at)
    call.recording(employee_id, talk=talk, leg_id=leg)
    return call.events


def incoming_missed(
    call_session_id: int,
    start: datetime,
    phone: str,
    employee_ids: list[int],
    *,
    virtual_phone_number: str = DEFAULT_VIRTUAL_NUMBER,
    flat: bool = False,
    rng: random.Random | None = None,
) -> list[Event]:
    """Incoming call that rings each operator in turn, unanswered; call end with is_lost true.

    The call end names no employee: who was offered the call is told by the legs.
    """
    call = _incoming(call_session_id, start, phone, rng, virtual_phone_number, flat)
    call.wait(2.0, 12.0)
    for employee_id in employee_ids:
        leg = call.new_leg()
        leg_started = call.now
        call.emit("leg_start", employee_id, leg_id=leg)
        call.wait(8.0, 20.0)  # the queue's ring timeout for one operator
        ringing = call.seconds_since(leg_started)
        call.emit(
            "leg_end",
            employee_id,
            leg_id=leg,
            is_operator=True,
            talk_seconds=0,
            total_seconds=ringing,
            wait_seconds=ringing,
        )
        call.wait(0.5, 2.0)
    call.call_end(None, talk=0, answered_at=None)
    return call.events


def voice_menu_hangup(
    call_session_id: int,
    start: datetime,
    phone: str,
    *,
    virtual_phone_number: str = DEFAULT_VIRTUAL_NUMBER,
    flat: bool = False,
    rng: random.Random | None = None,
) -> list[Event]:
    """The caller hangs up in the voice menu: a call end only, lost, no employee, no leg."""
    call = _incoming(call_session_id, start, phone, rng, virtual_phone_number, flat)
    call.wait(3.0, 40.0)
    call.call_end(None, talk=0, answered_at=None)
    return call.events


def transfer(
    call_session_id: int,
    start: datetime,
    phone: str,
    first_employee: int,
    second_employee: int,
    *,
    virtual_phone_number: str = DEFAULT_VIRTUAL_NUMBER,
    flat: bool = False,
    rng: random.Random | None = None,
) -> list[Event]:
    """Incoming call answered by the first operator and transferred to the second.

    leg out(E1), pick-up(E1), leg out(E2), pick-up(E2), leg end(E1), leg end(E2), call end,
    then one recording per part, each naming the operator of its part.
    """
    call = _incoming(call_session_id, start, phone, rng, virtual_phone_number, flat)
    call.wait(2.0, 12.0)
    first_started = call.now
    first_leg, first_answered = _ring_and_answer(call, first_employee)
    call.wait(20.0, 120.0)  # E1 talks, then dials E2 while the caller holds
    second_started = call.now
    second_leg, second_answered = _ring_and_answer(call, second_employee)
    call.wait(1.0, 5.0)  # E1 hands over and drops out
    first_talk = round((call.now - first_answered).total_seconds())
    call.emit(
        "leg_end",
        first_employee,
        leg_id=first_leg,
        is_operator=True,
        talk_seconds=first_talk,
        total_seconds=call.seconds_since(first_started),
        wait_seconds=round((first_answered - first_started).total_seconds()),
    )
    call.wait(20.0, 180.0)
    second_talk = call.seconds_since(second_answered)
    call.emit(
        "leg_end",
        second_employee,
        leg_id=second_leg,
        is_operator=True,
        talk_seconds=second_talk,
        total_seconds=call.seconds_since(second_started),
        wait_seconds=round((second_answered - second_started).total_seconds()),
    )
    call.call_end(second_employee, talk=first_talk + second_talk, answered_at=first_answered)
    call.recording(first_employee, talk=first_talk, leg_id=first_leg)
    call.recording(second_employee, talk=second_talk, leg_id=second_leg)
    return call.events


def _user_leg(call: _Call, employee_id: int, answered: bool) -> tuple[int, datetime | None]:
    """Dial the user for `employee_id`'s outgoing call; the leg ends after talk or no answer."""
    leg = call.new_leg()
    started = call.now
    call.emit("leg_start", employee_id, leg_id=leg)
    if not answered:
        call.wait(20.0, 40.0)  # rings out
        ringing = call.seconds_since(started)
        call.emit(
            "leg_end",
            employee_id,
            leg_id=leg,
            is_operator=False,
            talk_seconds=0,
            total_seconds=ringing,
            wait_seconds=ringing,
        )
        return 0, None
    call.wait(3.0, 20.0)
    answered_at = call.now
    call.emit("answer", employee_id, leg_id=leg)
    talk = call.talk_time(None)
    call.wait_exactly(talk)
    call.emit(
        "leg_end",
        employee_id,
        leg_id=leg,
        is_operator=False,
        talk_seconds=talk,
        total_seconds=call.seconds_since(started),
        wait_seconds=round((answered_at - started).total_seconds()),
    )
    return talk, answered_at


def outgoing_softphone(
    call_session_id: int,
    start: datetime,
    phone: str,
    employee_id: int,
    answered: bool,
    *,
    virtual_phone_number: str = DEFAULT_VIRTUAL_NUMBER,
    flat: bool = False,
    rng: random.Random | None = None,
) -> list[Event]:
    """Outgoing call from `employee_id`'s softphone to `phone`.

    outgoing call, leg out(user), pick-up(user), leg end, call end, recording; when the user
    does not answer: no pick-up, no recording, call end lost with talk time 0.
    """
    call = _Call(
        call_session_id,
        start,
        phone,
        direction="out",
        call_source="sip",
        rng=rng,
        virtual_phone_number=virtual_phone_number,
        flat=flat,
    )
    call.emit("outgoing_call", employee_id, leg_id=call.origin_leg)
    call.wait(0.3, 1.5)
    talk, answered_at = _user_leg(call, employee_id, answered)
    call.call_end(employee_id, talk=talk, answered_at=answered_at)
    if answered:
        call.recording(employee_id, talk=talk, leg_id=call.legs[-1])
    return call.events


def outgoing_from_case(
    call_session_id: int,
    start: datetime,
    phone: str,
    employee_id: int,
    external_id: str,
    answered: bool,
    *,
    virtual_phone_number: str = DEFAULT_VIRTUAL_NUMBER,
    flat: bool = False,
    rng: random.Random | None = None,
) -> list[Event]:
    """Call API call from a case, staff's phone first; every body carries `external_id`.

    leg out(staff), pick-up(staff), leg out(user), [pick-up(user)], leg end(user),
    leg end(staff), call end, [recording].
    """
    call = _Call(
        call_session_id,
        start,
        phone,
        direction="out",
        call_source="callapi",
        rng=rng,
        virtual_phone_number=virtual_phone_number,
        flat=flat,
        external_id=external_id,
    )
    call.wait(0.5, 2.0)  # UIS accepted start.employee_call and dials the staff phone
    staff_started = call.now
    staff_leg, staff_answered = _ring_and_answer(call, employee_id)
    call.wait(0.3, 1.5)
    talk, answered_at = _user_leg(call, employee_id, answered)
    user_leg = call.legs[-1]
    call.wait(0.1, 1.0)
    call.emit(
        "leg_end",
        employee_id,
        leg_id=staff_leg,
        is_operator=True,
        talk_seconds=call.seconds_since(staff_answered),
        total_seconds=call.seconds_since(staff_started),
        wait_seconds=round((staff_answered - staff_started).total_seconds()),
    )
    call.call_end(employee_id, talk=talk, answered_at=answered_at)
    if answered:
        call.recording(employee_id, talk=talk, leg_id=user_leg)
    return call.events


def scenario(
    kind: str,
    call_id: int,
    start: datetime,
    phone: str,
    employees: tuple[int, int, int],
    rng: random.Random,
) -> list[Event]:
    """One call of a named kind, for property tests that draw calls: `answered`, `missed`,
    `voice_menu`, `transfer`, `unmapped` (missed, offered to an operator nobody is mapped to),
    `dial` (click-to-call), `out_yes` / `out_no` (from the softphone, answered or not).
    `employees` are the first and second operators and the unmapped one."""
    first, second, unmapped = employees
    if kind == "answered":
        return incoming_answered(call_id, start, phone, first, rng=rng)
    if kind == "missed":
        return incoming_missed(call_id, start, phone, [first, second], rng=rng)
    if kind == "unmapped":
        return incoming_missed(call_id, start, phone, [unmapped], rng=rng)
    if kind == "voice_menu":
        return voice_menu_hangup(call_id, start, phone, rng=rng)
    if kind == "transfer":
        return transfer(call_id, start, phone, first, second, rng=rng)
    if kind == "dial":
        return outgoing_from_case(call_id, start, phone, first, f"case-{call_id}", True, rng=rng)
    if kind in ("out_yes", "out_no"):
        return outgoing_softphone(call_id, start, phone, second, kind == "out_yes", rng=rng)
    raise ValueError(f"no scenario {kind!r}")
