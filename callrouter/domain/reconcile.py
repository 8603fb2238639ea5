"""What UIS never sent, from what its Data API reports (issue 11 part 2, R32 "may never send
some"): a pure comparison, report rows and what arrived in, derived notification bodies out.

UIS's `get.calls_report` and `get.call_legs_report` say, for every call of a period, what its
notifications would have said: the call's end and outcome, every leg the PBX dialled out (its
start, answer, end and operator), every recording. `missing` compares that with what arrived
here and renders each notification that never came as a UIS body in the flat layout (R4), so it
goes through the same parser, inbox and pipeline as a webhook and the cases end as if it had
arrived. The bodies are deterministic — the same report gives the same bytes — so the inbox's
hash makes a repeated repair a no-op.

Only calls UIS reports as finished before `cutoff` are compared (the caller picks it: now minus
a margin for notifications still on their way); a call still going on is left alone. The Data
API reports times to the second, so derived times are whole seconds.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import Any
from zoneinfo import ZoneInfo

import orjson

from callrouter.domain.notifications import Kind, Notification
from callrouter.domain.templates import NAMES, TEMPLATES

MEDIA_URL = "https://media.uiscom.ru"  # recording ids become <MEDIA_URL>/<call id>/<id> (UIS.md)
_REPORT_TIME = "%Y-%m-%d %H:%M:%S"


@dataclass(frozen=True, slots=True)
class ReportLeg:
    """One `get.call_legs_report` row: a leg of a call."""

    id: int
    call_session_id: int
    start_time: datetime
    connect_time: datetime | None
    duration: int
    direction: str  # "out": the PBX dialled it (it has notifications); "in": the caller's own
    is_operator: bool
    employee_id: int | None
    employee_name: str | None
    record_ids: tuple[str, ...]

    @property
    def end_time(self) -> datetime:
        return self.start_time + timedelta(seconds=self.duration)


@dataclass(frozen=True, slots=True)
class ReportCall:
    """One `get.calls_report` row: a call session."""

    id: int
    start_time: datetime
    finish_time: datetime | None  # None: still going on
    direction: str
    source: str | None
    is_lost: bool
    phone: str | None
    virtual_phone_number: str | None
    wait_seconds: int
    talk_seconds: int
    total_seconds: int
    record_ids: tuple[str, ...]
    employee_ids: tuple[int, ...]  # in UIS's order: the one who called out first
    employee_names: tuple[tuple[int, str], ...]
    last_answered_employee_id: int | None
    external_id: str | None


class ReportError(ValueError):
    """A report row that cannot be read (the Data API answered something unexpected)."""


def parse_time(value: object, tz: ZoneInfo) -> datetime | None:
    """A report time (`YYYY-MM-DD hh:mm:ss`, the account's local time) as an aware datetime."""
    if value is None or value == "":
        return None
    if not isinstance(value, str):
        raise ReportError(f"a time must be text, got {value!r}"[:120])
    try:
        moment = datetime.fromisoformat(value.strip())
    except ValueError:
        raise ReportError(f"unreadable time {value!r}"[:120]) from None
    return (moment if moment.tzinfo else moment.replace(tzinfo=tz)).astimezone(tz)


def _int(row: Mapping[str, Any], key: str, default: int | None = None) -> int | None:
    value = row.get(key)
    if value is None:
        return default
    if isinstance(value, bool) or not isinstance(value, int | str):
        raise ReportError(f"{key} must be a number, got {value!r}"[:120])
    try:
        return int(value)
    except ValueError:
        raise ReportError(f"{key} must be a number, got {value!r}"[:120]) from None


def _text(row: Mapping[str, Any], key: str) -> str | None:
    value = row.get(key)
    return str(value) if value not in (None, "") else None


def _records(row: Mapping[str, Any]) -> tuple[str, ...]:
    value = row.get("call_records")
    return tuple(str(v) for v in value if v) if isinstance(value, list) else ()


def parse_call(row: Mapping[str, Any], tz: ZoneInfo) -> ReportCall:
    """A `get.calls_report` row; raise `ReportError` when it is unusable."""
    call_id = _int(row, "id")
    start = parse_time(row.get("start_time"), tz)
    if call_id is None or start is None:
        raise ReportError(f"a call without id or start_time: {dict(row)!r}"[:200])
    employees = [e for e in row.get("employees") or [] if isinstance(e, Mapping)]
    ids = tuple(dict.fromkeys(int(e["employee_id"]) for e in employees if e.get("employee_id")))
    names = tuple(
        (int(e["employee_id"]), str(e["employee_full_name"]))
        for e in employees
        if e.get("employee_id") and e.get("employee_full_name")
    )
    return ReportCall(
        id=call_id,
        start_time=start,
        finish_time=parse_time(row.get("finish_time"), tz),
        direction=str(row.get("direction") or "in"),
        source=_text(row, "source"),
        is_lost=bool(row.get("is_lost")),
        phone=_text(row, "contact_phone_number"),
        virtual_phone_number=_text(row, "virtual_phone_number"),
        wait_seconds=_int(row, "wait_duration", 0) or 0,
        talk_seconds=_int(row, "talk_duration", 0) or 0,
        total_seconds=_int(row, "total_duration", 0) or 0,
        record_ids=_records(row),
        employee_ids=ids,
        employee_names=names,
        last_answered_employee_id=_int(row, "last_answered_employee_id"),
        external_id=_text(row, "call_api_external_id"),
    )


def parse_leg(row: Mapping[str, Any], tz: ZoneInfo) -> ReportLeg:
    """A `get.call_legs_report` row; raise `ReportError` when it is unusable."""
    leg_id = _int(row, "id")
    call_id = _int(row, "call_session_id")
    start = parse_time(row.get("start_time"), tz)
    if leg_id is None or call_id is None or start is None:
        raise ReportError(f"a leg without id, call_session_id or start_time: {dict(row)!r}"[:200])
    connect = parse_time(row.get("connect_time"), tz) if row.get("is_talked", True) else None
    return ReportLeg(
        id=leg_id,
        call_session_id=call_id,
        start_time=start,
        connect_time=connect,
        duration=_int(row, "duration", 0) or 0,
        direction=str(row.get("direction") or "out"),
        is_operator=bool(row.get("is_operator")),
        employee_id=_int(row, "employee_id"),
        employee_name=_text(row, "employee_full_name"),
        record_ids=_records(row),
    )


# -- what arrived here -------------------------------------------------------------------------


@dataclass(slots=True)
class Arrived:
    """What arrived here of one call: (kind, leg id) of each leg notification, the employees of
    leg notifications that named no leg (flat templates without `leg_id`), the other kinds, and
    every recording link."""

    legs: set[tuple[Kind, int]] = field(default_factory=set)
    legless: set[tuple[Kind, int | None]] = field(default_factory=set)
    kinds: set[Kind] = field(default_factory=set)
    record_urls: set[str] = field(default_factory=set)

    def add(self, n: Notification) -> None:
        self.kinds.add(n.kind)
        if n.kind in (Kind.LEG_START, Kind.ANSWER, Kind.LEG_END):
            if n.leg_id is not None:
                self.legs.add((n.kind, n.leg_id))
            else:
                self.legless.add((n.kind, n.employee_id))
        self.record_urls.update(n.record_urls)

    def has_leg(self, kind: Kind, leg: ReportLeg) -> bool:
        return (kind, leg.id) in self.legs or (kind, leg.employee_id) in self.legless


def arrived_of(notifications: Iterable[Notification]) -> dict[int, Arrived]:
    """What arrived, per call, from the stored notifications."""
    found: dict[int, Arrived] = {}
    for n in notifications:
        found.setdefault(n.call_session_id, Arrived()).add(n)
    return found


# -- the comparison ------------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class Repair:
    """One notification UIS never sent, rendered as a body. `whole_call`: nothing of its call
    had arrived."""

    kind: Kind
    call_session_id: int
    leg_id: int | None
    time: datetime
    body: bytes
    whole_call: bool

    def describe(self) -> str:
        """A short English line for logs and the admin's list."""
        leg = f", leg {self.leg_id}" if self.leg_id is not None else ""
        return f"{self.kind.value} of call {self.call_session_id}{leg} at {self.time:%H:%M:%S}"


def recording_url(call_session_id: int, record_id: str) -> str:
    return f"{MEDIA_URL}/{call_session_id}/{record_id}"


def missing(
    calls: Iterable[ReportCall],
    legs: Iterable[ReportLeg],
    arrived: Mapping[int, Arrived],
    cutoff: datetime,
) -> list[Repair]:
    """Every notification the reports say was due for a call finished before `cutoff` that
    did not arrive, in call and time order. Deterministic in its inputs."""
    legs_of: dict[int, list[ReportLeg]] = {}
    for row in sorted(legs, key=lambda g: (g.start_time, g.id)):
        legs_of.setdefault(row.call_session_id, []).append(row)
    repairs: list[Repair] = []
    for call in sorted(calls, key=lambda c: (c.start_time, c.id)):
        if call.finish_time is None or call.finish_time > cutoff:
            continue  # still going on, or its notifications may still be on their way
        have = arrived.get(call.id)
        due = _due(call, legs_of.get(call.id, []))
        whole = have is None
        seen = have or Arrived()
        for kind, leg, moment, values in due:
            if _arrived(seen, kind, leg, values):
                continue
            body = _body(kind, moment, values)
            repairs.append(Repair(kind, call.id, leg.id if leg else None, moment, body, whole))
    return repairs


_Due = tuple[Kind, ReportLeg | None, datetime, dict[str, Any]]


def _arrived(seen: Arrived, kind: Kind, leg: ReportLeg | None, values: dict[str, Any]) -> bool:
    if leg is not None:
        return seen.has_leg(kind, leg)
    if kind is Kind.RECORDING:
        return set(values["record_file_links"]) <= seen.record_urls
    return kind in seen.kinds


def _due(call: ReportCall, legs: list[ReportLeg]) -> list[_Due]:
    """The notifications UIS sends for this call (UIS.md "The six notifications")."""
    assert call.finish_time is not None
    names = dict(call.employee_names)
    common: dict[str, Any] = {
        "call_session_id": call.id,
        "contact_phone_number": call.phone,
        "virtual_phone_number": call.virtual_phone_number,
        "communication_number": call.virtual_phone_number,
        "direction": call.direction,
        "call_source": call.source,
        "external_id": call.external_id,
    }
    due: list[_Due] = []
    if call.direction == "out" and call.source != "callapi" and call.employee_ids:
        # «Исходящий звонок» comes when staff call from their own phone; a Call API call is
        # started by us (R18) and announced by its legs only.
        first = call.employee_ids[0]
        due.append((Kind.OUTGOING_CALL, None, call.start_time, _employee(common, first, names)))
    dialled = [leg for leg in legs if leg.direction == "out"]
    leg_records: set[str] = set()
    for leg in dialled:
        values = _employee(common, leg.employee_id, names, leg.employee_name)
        values |= {"leg_id": leg.id, "leg_ids": [leg.id]}
        due.append((Kind.LEG_START, leg, leg.start_time, values))
        if leg.connect_time is not None:
            due.append((Kind.ANSWER, leg, leg.connect_time, values))
        talk = int((leg.end_time - leg.connect_time).total_seconds()) if leg.connect_time else 0
        wait = leg.duration - talk
        end = values | {
            "is_operator": leg.is_operator,
            "talk_time_duration": max(0, talk),
            "total_time_duration": leg.duration,
            "wait_time_duration": max(0, wait),
        }
        due.append((Kind.LEG_END, leg, leg.end_time, end))
    ender = call.last_answered_employee_id
    if ender is None and call.direction == "out" and call.employee_ids:
        ender = call.employee_ids[0]
    end_values = _employee(common, ender, names) | {
        "is_lost": call.is_lost,
        "talk_time_duration": call.talk_seconds,
        "total_time_duration": call.total_seconds,
        "wait_time_duration": call.wait_seconds,
        "leg_ids": [leg.id for leg in legs],
    }
    due.append((Kind.CALL_END, None, call.finish_time, end_values))
    # One recording per leg that has some (a transfer is recorded per operator, R13); what no
    # leg claims is the call's own, named after whoever answered last.
    for leg in dialled:
        if leg.record_ids:
            leg_records.update(leg.record_ids)
            due.append(
                (
                    Kind.RECORDING,
                    None,
                    call.finish_time,
                    _recording(common, call, leg.record_ids, leg.employee_id, leg.id, names),
                )
            )
    rest = tuple(r for r in call.record_ids if r not in leg_records)
    if rest:
        ender_values = _recording(common, call, rest, call.last_answered_employee_id, None, names)
        due.append((Kind.RECORDING, None, call.finish_time, ender_values))
    return due


def _employee(
    common: dict[str, Any],
    employee_id: int | None,
    names: Mapping[int, str],
    name: str | None = None,
) -> dict[str, Any]:
    full_name = name or (names.get(employee_id) if employee_id is not None else None)
    return common | {"employee_id": employee_id, "employee_full_name": full_name}


def _recording(
    common: dict[str, Any],
    call: ReportCall,
    record_ids: tuple[str, ...],
    employee_id: int | None,
    leg_id: int | None,
    names: Mapping[int, str],
) -> dict[str, Any]:
    links = [recording_url(call.id, r) for r in record_ids]
    return _employee(common, employee_id, names) | {
        "is_lost": False,
        "file_link": links[0],
        "record_file_links": links,
        "leg_id": leg_id,
        "leg_ids": [leg_id] if leg_id is not None else None,
    }


def _body(kind: Kind, moment: datetime, values: Mapping[str, Any]) -> bytes:
    """The flat-layout body (R4) of the guide's template for `kind`: every variable of the
    template present (null when unknown), keys in the template's order, so equal values give
    equal bytes."""
    doc: dict[str, Any] = {}
    _flatten(TEMPLATES[kind.value], doc)
    rendered = {key: values.get(var) for key, var in doc.items()}
    rendered["notification_name"] = NAMES[kind.value]
    # UIS's `notification_time`: local, no zone, milliseconds (the report has whole seconds).
    rendered["notification_time"] = moment.strftime(_REPORT_TIME) + ".000"
    return orjson.dumps(rendered)


def _flatten(template: Mapping[str, Any], into: dict[str, Any]) -> None:
    for key, var in template.items():
        if isinstance(var, Mapping):
            _flatten(var, into)
        else:
            into[key] = var
