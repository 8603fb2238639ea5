"""The generated day of a 500-seat contact centre (`bench/generate_traffic.py --day`).

One full day is generated once for the module (tens of seconds) and checked as it streams:
size, shape, that every body is one the service parses, that each call's notifications come in
a plausible order, that callers come back. Byte-for-byte determinism is checked on a small day.
"""

from __future__ import annotations

import hashlib
import importlib.util
import io
import sys
from collections import Counter, defaultdict
from collections.abc import Iterable
from dataclasses import dataclass, field
from datetime import UTC, date, datetime, timedelta
from itertools import pairwise
from pathlib import Path
from types import ModuleType
from typing import Any
from zoneinfo import ZoneInfo

import orjson
import pytest

from callrouter.domain.notifications import Kind
from callrouter.domain.uis import parse_body, parse_notification

MOSCOW = ZoneInfo("Europe/Moscow")
DAY = date(2026, 11, 2)  # a Monday
STARTS = (Kind.LEG_START, Kind.OUTGOING_CALL, Kind.CALL_END)
Facts = tuple[int, Kind, datetime, str | None, str | None, str | None, bool | None]


def _load_generator() -> ModuleType:
    # bench/ is scripts, not a package: load the generator from its file.
    path = Path(__file__).resolve().parents[2] / "bench" / "generate_traffic.py"
    spec = importlib.util.spec_from_file_location("generate_traffic", path)
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    sys.modules[spec.name] = module
    spec.loader.exec_module(module)
    return module


gen = _load_generator()
KIND_OF_NAME = {name: Kind(kind) for kind, name in gen.uis_bodies.NAMES.items()}


@dataclass
class Call:
    phone: str | None = None
    direction: str | None = None
    external_ids: set[str | None] = field(default_factory=set)
    kinds: list[Kind] = field(default_factory=list)  # first sendings, in file order
    times: list[datetime] = field(default_factory=list)
    lost: bool | None = None


@dataclass
class Day:
    stats: Any
    lines: int = 0
    calls: dict[int, Call] = field(default_factory=dict)
    late: list[float] = field(default_factory=list)  # t minus the event time, per line
    resent: int = 0
    unordered: int = 0  # lines whose t is below the previous line's


def _parsed(raw: bytes) -> Facts:
    """What the checks need of one body, read by the service's own parser."""
    n = parse_notification(parse_body(raw), MOSCOW, datetime.now(UTC))
    return n.call_session_id, n.kind, n.time, n.phone, n.direction, n.external_id, n.is_lost


def _read(doc: dict[str, Any]) -> Facts:
    """The same, straight from the generator's body (the service's parser is slower than the
    generator, so it reads a sample of the big day and every body of a small one)."""
    info = doc["call_info"]
    return (
        info["call_session_id"],
        KIND_OF_NAME[doc["notification_name"]],
        datetime.fromisoformat(doc["notification_time"]).replace(tzinfo=MOSCOW),
        doc["contact_info"]["contact_phone_number"],
        info["direction"],
        doc["external_id"],
        info["is_lost"],
    )


def _collect(lines: Iterable[dict[str, Any]], stats: Any, parse_every: int) -> Day:
    """Read a day as it streams; every body of every `parse_every`-th call (by id) goes through
    `parse_body` and `parse_notification` and must read the same as the generator meant."""
    found = Day(stats)
    midnight: datetime | None = None
    seen: set[bytes] = set()
    previous = 0.0
    for line in lines:
        raw = orjson.dumps(line["body"])
        facts = _read(line["body"])
        call_id, kind, time, phone, direction, external_id, lost = facts
        if call_id % parse_every == 0:
            assert _parsed(raw) == facts, raw
        if midnight is None:
            midnight = datetime.combine(time.date(), datetime.min.time(), MOSCOW)
        found.lines += 1
        found.unordered += line["t"] < previous
        previous = line["t"]
        found.late.append(line["t"] - (time - midnight).total_seconds())
        digest = hashlib.blake2b(raw, digest_size=12).digest()
        if digest in seen:
            found.resent += 1
            continue
        seen.add(digest)
        call = found.calls.setdefault(call_id, Call())
        call.phone = call.phone or phone
        call.direction = call.direction or direction
        call.external_ids.add(external_id)
        call.kinds.append(kind)
        call.times.append(time)
        if kind is Kind.CALL_END:
            call.lost = lost
    return found


@pytest.fixture(scope="module")
def day() -> Day:
    """The 500-seat day; the service's parser reads every body of one call in 32."""
    stats = gen.DayStats()
    return _collect(gen.generate_day(500, DAY, seed=1, stats=stats), stats, parse_every=32)


def test_every_body_of_a_smaller_day_parses_as_generated() -> None:
    stats = gen.DayStats()
    small = _collect(gen.generate_day(30, DAY, seed=9, stats=stats), stats, parse_every=1)
    assert small.lines == stats.lines > 10_000


def test_the_day_is_big_enough_and_sorted(day: Day) -> None:
    assert day.lines >= 300_000
    assert day.lines == day.stats.lines
    assert day.unordered == 0
    assert len(day.calls) == sum(day.stats.calls.values())


def test_every_kind_of_call_is_there_in_a_realistic_mix(day: Day) -> None:
    calls: Counter[str] = day.stats.calls
    total = sum(calls.values())
    for kind, percent in gen.MIX.items():
        assert calls[kind] / total > percent / 100 / 2, (kind, calls)
    lost = sum(1 for c in day.calls.values() if c.direction == "in" and c.lost)
    assert 0.1 < lost / total < 0.35


def test_each_call_parses_and_its_notifications_come_in_a_plausible_order(day: Day) -> None:
    for call_id, call in day.calls.items():
        assert call.times == sorted(call.times), call_id
        assert call.kinds[0] in STARTS, (call_id, call.kinds)
        assert call.kinds.count(Kind.CALL_END) == 1, (call_id, call.kinds)
        end = call.kinds.index(Kind.CALL_END)
        assert set(call.kinds[end + 1 :]) <= {Kind.RECORDING}, (call_id, call.kinds)
        assert Kind.RECORDING not in call.kinds[:end], (call_id, call.kinds)
        assert call.phone and call.direction in ("in", "out")
        assert call.times[-1] - call.times[0] < timedelta(minutes=15)
        assert len(call.external_ids) == 1  # every body of a call carries the same external_id


def test_recordings_follow_the_call_end_by_seconds(day: Day) -> None:
    gaps = [
        (c.times[i] - c.times[c.kinds.index(Kind.CALL_END)]).total_seconds()
        for c in day.calls.values()
        for i, kind in enumerate(c.kinds)
        if kind is Kind.RECORDING
    ]
    assert len(gaps) > 50_000
    assert min(gaps) >= 2.0 and max(gaps) <= 25.0


def test_outgoing_calls_from_a_case_carry_their_external_id(day: Day) -> None:
    from_case = [c for c in day.calls.values() if c.external_ids != {None}]
    assert len(from_case) > 1000
    assert all(c.direction == "out" for c in from_case)


def test_notifications_arrive_at_their_time_and_resends_a_little_later(day: Day) -> None:
    assert min(day.late) >= 0.0
    on_time = sum(1 for late in day.late if late == 0.0)
    assert on_time == day.lines - day.resent
    assert max(day.late) <= gen.DUPLICATE_DELAY[1] + 0.001
    assert 0.001 < day.resent / day.lines < 0.01
    assert day.resent == day.stats.duplicates


def test_every_time_is_within_the_day() -> None:
    start = datetime.combine(DAY, datetime.min.time())
    for line in gen.generate_day(30, DAY, seed=3):
        at = datetime.strptime(line["body"]["notification_time"], "%Y-%m-%d %H:%M:%S.%f")
        assert start <= at < start + timedelta(days=1)
        assert 0 <= line["t"] < 86_400


def test_the_default_day_is_yesterday_so_all_of_it_is_past() -> None:
    now = datetime.now(MOSCOW).replace(tzinfo=None)
    assert gen.default_day() == now.date() - timedelta(days=1)
    last = max(
        datetime.strptime(line["body"]["notification_time"], "%Y-%m-%d %H:%M:%S.%f")
        for line in gen.generate_day(5, seed=2)
    )
    assert last < now


def test_the_hourly_curve_peaks_in_working_hours(day: Day) -> None:
    per_hour: list[int] = day.stats.per_hour
    busiest = day.stats.busiest_hour()
    assert 9 <= busiest <= 17
    assert all(per_hour[h] < per_hour[busiest] * 0.05 for h in range(6))  # a quiet night
    assert per_hour[7] < per_hour[8] < per_hour[9] < per_hour[10]  # the morning ramp
    assert per_hour[13] < per_hour[11] and per_hour[13] < per_hour[15]  # the lunch dip
    assert per_hour[18] > per_hour[20] > per_hour[22]  # the evening tail


def test_callers_come_back_after_a_missed_call_and_after_a_conversation(day: Day) -> None:
    history: dict[str, list[tuple[datetime, bool]]] = defaultdict(list)
    for call in day.calls.values():
        if call.direction == "in" and call.phone:
            history[call.phone].append((call.times[0], bool(call.lost)))
    missed_twice = after_talk = 0
    for calls in history.values():
        calls.sort()
        for (_, lost_before), (_, lost_now) in pairwise(calls):
            missed_twice += lost_before and lost_now  # grouped into one case (R16)
            after_talk += not lost_before and lost_now  # a new missed-call case (R16)
    assert missed_twice > 500 and after_talk > 500
    reasons: Counter[str] = day.stats.reasons
    assert reasons["recall_after_missed"] > 1000 and reasons["callback_after_missed"] > 1000
    assert reasons["recall_after_talk"] > 1000


def test_operators_are_the_seats_and_none_is_in_two_conversations_at_once() -> None:
    busy: dict[int, list[tuple[float, float]]] = defaultdict(list)
    spans: dict[tuple[int, int], list[float]] = {}
    for line in gen.generate_day(40, DAY, seed=4):
        doc = line["body"]
        employee = doc["employee_info"]["employee_id"]
        if employee is None or doc["notification_name"] == gen.uis_bodies.NAMES["recording"]:
            continue
        assert gen.FIRST_EMPLOYEE <= employee < gen.FIRST_EMPLOYEE + 40
        key = (doc["call_info"]["call_session_id"], employee)
        spans.setdefault(key, [line["t"], line["t"]])[1] = line["t"]
    for (_, employee), (start, end) in spans.items():
        busy[employee].append((start, end))
    overlaps = sum(
        1
        for periods in busy.values()
        for (_, end), (start, _) in pairwise(sorted(periods))
        if start < end - gen.QUEUE_PATIENCE
    )
    assert overlaps <= len(spans) * 0.01  # only when nobody was free and the caller waited


def test_the_same_seed_gives_the_same_bytes() -> None:
    def day_bytes(seed: int) -> bytes:
        out = io.BytesIO()
        gen.write_jsonl(gen.generate_day(20, DAY, seed=seed), out)
        return out.getvalue()

    first = day_bytes(7)
    assert first == day_bytes(7)
    assert first != day_bytes(8)


def test_the_summary_names_the_busiest_hour() -> None:
    stats = gen.DayStats()
    lines = sum(1 for _ in gen.generate_day(20, DAY, seed=1, stats=stats))
    text = stats.summary()
    assert f"{lines:,} notifications" in text
    assert f"busiest hour {stats.busiest_hour():02d}:00" in text
    for kind in gen.MIX:
        assert f"{kind}=" in text


def test_bad_arguments_are_refused() -> None:
    with pytest.raises(ValueError):
        next(gen.generate_day(0, DAY))
    with pytest.raises(ValueError):
        next(gen.generate_day(10, DAY, calls_per_seat_hour=0))
