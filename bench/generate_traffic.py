"""Generate realistic UIS webhook traffic as JSONL for `python -m callrouter replay`.

    python bench/generate_traffic.py --calls 5000 [--seed 1] [--employees 10]
        [--calls-per-second R] [--start 2026-11-02T09:00:00] [--out bench/out/traffic.jsonl]
    python bench/generate_traffic.py --day [--seats 500] [--date 2026-11-02] [--seed 1]
        [--out bench/out/day.jsonl]

One line per notification, `{"t": seconds, "body": {...}}`, sorted by `t`. With `--calls`, `t`
counts from the first call; calls arrive as a Poisson process and overlap; callers come from a
skewed pool of numbers, so repeat callers (and grouped missed calls, R16) occur. Operators are
the UIS employees 1001..1000+K. The same arguments always give the same file.

With `--day`, the file is one working day of a contact centre with `--seats` operators
(`t` = seconds since local midnight of `--date`, default yesterday in Europe/Moscow): an hourly
curve, shifts, the longest-idle operator offered first, callers who give up in the queue,
callers who call again after a missed call or a conversation, call-backs from the softphone and
from the case (Call API, `external_id`), recordings seconds after the call end and UIS resends.
"""

from __future__ import annotations

import argparse
import heapq
import math
import random
import sys
import time
from collections import Counter
from collections.abc import Callable, Iterator
from datetime import date, datetime, timedelta
from datetime import time as day_time
from pathlib import Path
from typing import IO, Any
from zoneinfo import ZoneInfo

import orjson

from callrouter.testing import uis_bodies
from callrouter.testing.uis_bodies import Event

# Share of calls per kind (percent). Outgoing calls are split into answered / not answered.
MIX: dict[str, int] = {
    "answered": 55,
    "missed": 15,
    "voice_menu": 7,
    "transfer": 8,
    "outgoing_softphone": 10,
    "outgoing_case": 5,
}
OUTGOING_ANSWER_RATE = 0.7
FIRST_EMPLOYEE = 1001
DEFAULT_START = datetime(2026, 11, 2, 9, 0, 0)
# A typical call lasts about two minutes end to end (menu, ringing, talk, recording delay).
MEAN_CALL_SECONDS = 140.0
# Without --calls-per-second, arrivals are spread so that about calls/LIVE_DIVISOR are live.
LIVE_DIVISOR = 20


class _Operators:
    """Which operators are free: a PBX rings free operators first, busy ones only if it must."""

    def __init__(self, count: int, rng: random.Random) -> None:
        self.ids = list(range(FIRST_EMPLOYEE, FIRST_EMPLOYEE + count))
        self.busy_until = dict.fromkeys(self.ids, 0.0)
        self.rng = rng

    def pick(self, now: float, count: int) -> list[int]:
        """Up to `count` distinct operators, free ones first (random), then soonest free."""
        free = [e for e in self.ids if self.busy_until[e] <= now]
        self.rng.shuffle(free)
        busy = sorted(
            (e for e in self.ids if self.busy_until[e] > now), key=lambda e: self.busy_until[e]
        )
        return (free + busy)[: min(count, len(self.ids))]

    def hold(self, employee_ids: list[int], until: float) -> None:
        """Mark operators busy until `until` (seconds since start)."""
        for employee_id in employee_ids:
            self.busy_until[employee_id] = max(self.busy_until[employee_id], until)


def phone_pool(size: int, rng: random.Random) -> list[str]:
    """`size` distinct Russian mobile numbers, as UIS sends them (digits, leading 7)."""
    numbers: set[str] = set()
    while len(numbers) < size:
        numbers.add(f"79{rng.randrange(10**9):09d}")
    return sorted(numbers)


def _pick_phone(pool: list[str], rng: random.Random) -> str:
    # The power skews towards the start of the pool: a few numbers call often.
    return pool[int(len(pool) * rng.random() ** 1.5)]


def _call_events(
    kind: str,
    call_id: int,
    start: datetime,
    phone: str,
    operators: list[int],
    rng: random.Random,
) -> tuple[str, list[Event]]:
    """The bodies of one call of `kind`; returns the kind actually generated and its events."""
    if kind == "transfer" and len(operators) < 2:
        kind = "answered"  # one operator cannot transfer to anyone
    builders: dict[str, Callable[[], list[Event]]] = {
        "answered": lambda: uis_bodies.incoming_answered(
            call_id, start, phone, operators[0], rng=rng
        ),
        "missed": lambda: uis_bodies.incoming_missed(
            call_id, start, phone, operators[: rng.randint(1, 3)], rng=rng
        ),
        "voice_menu": lambda: uis_bodies.voice_menu_hangup(call_id, start, phone, rng=rng),
        "transfer": lambda: uis_bodies.transfer(
            call_id, start, phone, operators[0], operators[1], rng=rng
        ),
        "outgoing_softphone": lambda: uis_bodies.outgoing_softphone(
            call_id, start, phone, operators[0], rng.random() < OUTGOING_ANSWER_RATE, rng=rng
        ),
        "outgoing_case": lambda: uis_bodies.outgoing_from_case(
            call_id,
            start,
            phone,
            operators[0],
            f"bench-{call_id}",
            rng.random() < OUTGOING_ANSWER_RATE,
            rng=rng,
        ),
    }
    return kind, builders[kind]()


def _employees_in(events: list[Event]) -> list[int]:
    seen: dict[int, None] = {}
    for _, doc in events:
        employee_id = doc["employee_info"]["employee_id"]
        if employee_id is not None:
            seen[employee_id] = None
    return list(seen)


def default_calls_per_second(calls: int) -> float:
    """Arrival rate that keeps about calls/20 calls live at once (at least one)."""
    live = max(1.0, calls / LIVE_DIVISOR)
    return live / MEAN_CALL_SECONDS


def generate(
    calls: int,
    seed: int = 1,
    *,
    employees: int = 10,
    start: datetime = DEFAULT_START,
    calls_per_second: float | None = None,
    first_call_id: int | None = None,
    counts: Counter[str] | None = None,
) -> Iterator[dict[str, Any]]:
    """Yield `{"t", "body"}` for `calls` calls, sorted by `t` (seconds since `start`).

    Deterministic for the same arguments. `counts`, when given, is incremented per call kind
    (the keys of MIX) and by the number of bodies under "notifications".
    """
    if calls < 0 or employees < 1:
        raise ValueError("calls must be >= 0 and employees >= 1")
    rng = random.Random(seed)
    rate = calls_per_second if calls_per_second is not None else default_calls_per_second(calls)
    base_id = first_call_id if first_call_id is not None else 300_000_000 + (seed % 700) * 10**6
    pool = phone_pool(max(5, calls // 3), rng)
    operators = _Operators(employees, rng)
    kinds, weights = list(MIX), list(MIX.values())
    pending: list[tuple[float, int, dict[str, Any]]] = []  # heap of (t, seq, body)
    seq = 0
    arrival = 0.0
    for index in range(calls):
        # Every later event is at or after this arrival, so what is earlier is final.
        while pending and pending[0][0] <= arrival:
            t, _, doc = heapq.heappop(pending)
            yield {"t": t, "body": doc}
        kind = rng.choices(kinds, weights)[0]
        picked = operators.pick(arrival, 3)
        call_start = start + timedelta(milliseconds=round(arrival * 1000))
        kind, events = _call_events(
            kind, base_id + index, call_start, _pick_phone(pool, rng), picked, rng
        )
        for at, doc in events:
            heapq.heappush(pending, (round((at - start).total_seconds(), 3), seq, doc))
            seq += 1
        operators.hold(_employees_in(events), (events[-1][0] - start).total_seconds())
        if counts is not None:
            counts[kind] += 1
            counts["notifications"] += len(events)
        # Whole milliseconds, like notification_time, so `t` and the bodies' times agree.
        arrival = round(arrival + rng.expovariate(rate), 3)
    while pending:
        t, _, doc = heapq.heappop(pending)
        yield {"t": t, "body": doc}


# --- one working day of a contact centre -------------------------------------------------------

ACCOUNT_TZ = ZoneInfo("Europe/Moscow")  # UIS's default account zone: notification_time is local
# Fresh calls per hour of the day (local time) relative to the busiest hour: a quiet night, the
# morning ramp, the 10 o'clock peak, the lunch dip at 13, a second wave, the evening tail.
HOURLY_CURVE: tuple[float, ...] = (
    *(0.012, 0.008, 0.006, 0.006, 0.008, 0.015),
    *(0.045, 0.14, 0.45, 0.84, 1.0, 0.96),
    *(0.8, 0.68, 0.88, 0.92, 0.86, 0.7),
    *(0.46, 0.26, 0.15, 0.08, 0.045, 0.025),
)
# A seat takes about 14 calls in the busiest hour: some three minutes per call with wrap-up at
# two-thirds occupancy, the planning figure of an inbound centre.
CALLS_PER_SEAT_HOUR = 14.0
NIGHT_CREW = 0.02  # share of the seats on shift however quiet the hour
QUEUE_PATIENCE = 45.0  # seconds a caller waits for a free operator before hanging up
WRAP_UP = (5.0, 30.0)  # seconds an operator stays busy after their last event of a call
# What may follow a call: (probability, mean delay s, least delay s).
RECALL_AFTER_MISSED = (0.5, 900.0, 30.0)  # the caller tries again: R16 if missed again
CALLBACK_AFTER_MISSED = (0.25, 1200.0, 60.0)  # staff call back: R17, R23
CALLBACK_FROM_CASE = 0.6  # share of call-backs made from the case (Call API, external_id)
RECALL_AFTER_TALK = (0.08, 3600.0, 300.0)  # the user calls again after a conversation
RECALL_AFTER_NO_ANSWER = (0.3, 600.0, 30.0)  # the user returns a call they did not take
# Repeat callers already know the menu: fewer hang up there.
RECALL_MIX: dict[str, int] = {"answered": 70, "missed": 20, "voice_menu": 4, "transfer": 6}
DUPLICATE_RATE = 0.004  # UIS resends a notification whose answer it thinks timed out
DUPLICATE_DELAY = (1.0, 30.0)
LAST_START = 23 * 3600 + 45 * 60  # so that the whole day, resends included, ends by midnight
FIRST_DAY_CALL_ID = 500_000_000
# Numbers in the pool per expected first call: with the pool's skew about a third of the day's
# callers call more than once (planned recalls included), a few of them many times.
POOL_PER_CALL = 4
_KIND_OF_NAME = {name: kind for kind, name in uis_bodies.NAMES.items()}
_INCOMING = ("answered", "missed", "voice_menu", "transfer")


def default_day() -> date:
    """Yesterday in the account's zone, so that every notification of the day is in the past."""
    return datetime.now(ACCOUNT_TZ).date() - timedelta(days=1)


class DayStats:
    """What a generated day holds; filled while the day is generated.

    A plain class, not a dataclass: scripts load this file without registering it as a module.
    """

    def __init__(self) -> None:
        self.calls: Counter[str] = Counter()  # by kind (the keys of MIX)
        self.reasons: Counter[str] = Counter()  # why the call happened
        self.notifications: Counter[str] = Counter()  # by kind, resends included
        self.per_hour = [0] * 24
        self.per_minute: Counter[int] = Counter()
        self.per_second: Counter[int] = Counter()
        self.phones: Counter[str] = Counter()  # calls per user number
        self.lines = 0
        self.duplicates = 0
        self.abandoned = 0  # gave up in the queue (counted as voice_menu: lost, no leg)
        self.seats = 0
        self.day: date | None = None

    def count_line(self, t: float, doc: dict[str, Any], duplicate: bool) -> None:
        """Count one line of the file."""
        self.lines += 1
        self.duplicates += duplicate
        self.notifications[_KIND_OF_NAME[doc["notification_name"]]] += 1
        self.per_hour[min(23, int(t // 3600))] += 1
        self.per_minute[int(t // 60)] += 1
        self.per_second[int(t)] += 1

    def busiest_hour(self) -> int:
        """The local hour (0–23) with the most notifications."""
        return max(range(24), key=lambda hour: (self.per_hour[hour], -hour))

    def summary(self) -> str:
        """The multi-line summary printed after generating a day."""
        hour = self.busiest_hour()
        minute, in_minute = max(self.per_minute.items(), key=lambda kv: (kv[1], -kv[0]))
        second = max(self.per_second.values(), default=0)
        repeat = sum(1 for n in self.phones.values() if n > 1)
        curve = " ".join(f"{h:02d}:{n}" for h, n in enumerate(self.per_hour))
        calls = " ".join(f"{kind}={self.calls[kind]:,}" for kind in MIX)
        why = " ".join(f"{k}={n:,}" for k, n in sorted(self.reasons.items()))
        kinds = " ".join(f"{kind}={self.notifications[kind]:,}" for kind in uis_bodies.NAMES)
        busiest = max(self.phones.values(), default=0)
        in_hour = self.per_hour[hour]
        return (
            f"day {self.day}, {self.seats} seats: {sum(self.calls.values()):,} calls, "
            f"{self.lines:,} notifications ({self.duplicates:,} resent duplicates)\n"
            f"calls: {calls} (voice_menu includes {self.abandoned:,} who gave up in the queue)\n"
            f"why: {why}\n"
            f"callers: {len(self.phones):,} numbers, {repeat:,} called more than once, "
            f"the busiest one {busiest} times\n"
            f"notifications: {kinds}\n"
            f"busiest hour {hour:02d}:00-{hour + 1:02d}:00: {in_hour:,} notifications "
            f"({in_hour / 3600:.1f}/s); busiest minute {minute // 60:02d}:{minute % 60:02d} "
            f"({in_minute / 60:.1f}/s); busiest second {second}/s\n"
            f"by hour: {curve}"
        )


class _Floor:
    """The operators on shift; the PBX offers a call to the longest-idle operators first."""

    def __init__(self, seats: int) -> None:
        self.ids = list(range(FIRST_EMPLOYEE, FIRST_EMPLOYEE + seats))
        self.free_at = dict.fromkeys(self.ids, 0.0)
        self.idle: list[tuple[float, int]] = []  # heap of (free since, employee)
        self.hour = -1

    def on_shift(self, hour: int) -> int:
        """How many operators work in `hour`: staffing follows the curve."""
        wanted = math.ceil(len(self.ids) * HOURLY_CURVE[hour])
        crew = max(2, math.ceil(len(self.ids) * NIGHT_CREW))
        return min(len(self.ids), max(wanted, crew))

    def at(self, now: float) -> None:
        """Change shifts at the top of each hour (an operator leaving ends their call first)."""
        hour = min(23, int(now // 3600))
        if hour != self.hour:
            self.hour = hour
            self.idle = [(self.free_at[e], e) for e in self.ids[: self.on_shift(hour)]]
            heapq.heapify(self.idle)

    def take(self, count: int) -> list[tuple[float, int]]:
        """Up to `count` operators, longest idle (or soonest free) first, until `give_back`."""
        return [heapq.heappop(self.idle) for _ in range(min(count, len(self.idle)))]

    def give_back(self, taken: list[tuple[float, int]], busy: dict[int, float]) -> None:
        """Return taken operators, busy until `busy[employee]` when the call used them."""
        for free_at, employee in taken:
            self.free_at[employee] = max(free_at, busy.get(employee, free_at))
            heapq.heappush(self.idle, (self.free_at[employee], employee))


def _rate_at(seconds: float, peak: float) -> float:
    """Fresh calls per second at `seconds` after midnight: the curve, linear between the middles
    of the hours, so the rate has no steps."""
    x = seconds / 3600 - 0.5
    low = math.floor(x)
    weight = x - low
    return peak * (HOURLY_CURVE[low % 24] * (1 - weight) + HOURLY_CURVE[(low + 1) % 24] * weight)


def _fresh_arrivals(peak: float, rng: random.Random) -> Iterator[float]:
    """Start times of first calls: a Poisson process following the curve (by thinning)."""
    top = peak * max(HOURLY_CURVE)
    now = 0.0
    while True:
        now += rng.expovariate(top)
        if now >= LAST_START:
            return
        if rng.random() * top < _rate_at(now, peak):
            yield round(now, 3)


def _draw(mix: dict[str, int], rng: random.Random) -> str:
    return rng.choices(list(mix), list(mix.values()))[0]


class _Day:
    """The calls of one day being placed in start order; finished lines leave by `t`."""

    def __init__(self, seats: int, day: date, rng: random.Random, first_id: int) -> None:
        self.midnight = datetime.combine(day, day_time())
        self.rng = rng
        self.floor = _Floor(seats)
        self.next_id = first_id
        self.planned: list[tuple[float, int, str, str, str]] = []  # (start, seq, kind, phone, why)
        self.pending: list[tuple[float, int, dict[str, Any], bool]] = []  # (t, seq, body, resent)
        self.seq = 0

    def seconds(self, at: datetime) -> float:
        """`at` as seconds since midnight, in whole milliseconds like notification_time."""
        return round((at - self.midnight).total_seconds(), 3)

    def place(self, start: float, kind: str, phone: str, stats: DayStats) -> None:
        """Generate one call starting at `start` (seconds) and plan what may follow it."""
        if kind == "incoming":
            kind = _draw(RECALL_MIX, self.rng)
        self.floor.at(start)
        needed = {"voice_menu": 0, "transfer": 2, "missed": self.rng.randint(1, 3)}
        taken = self.floor.take(needed.get(kind, 1))
        kind, start, operators = self._fit(kind, start, taken, stats)
        answered = self.rng.random() < OUTGOING_ANSWER_RATE
        at = self.midnight + timedelta(milliseconds=round(start * 1000))
        events = self._events(kind, at, phone, operators, answered)
        last: dict[int, datetime] = {}
        for when, doc in events:
            employee_id = doc["employee_info"]["employee_id"]
            if employee_id is not None:
                last[employee_id] = when
        busy = {e: self.seconds(when) + self.rng.uniform(*WRAP_UP) for e, when in last.items()}
        self.floor.give_back(taken, busy)
        for when, doc in events:
            self._push(self.seconds(when), doc, False)
            if self.rng.random() < DUPLICATE_RATE:
                self._push(
                    round(self.seconds(when) + self.rng.uniform(*DUPLICATE_DELAY), 3), doc, True
                )
        stats.calls[kind] += 1
        stats.phones[phone] += 1
        self._follow_up(kind, phone, self.seconds(events[-1][0]), answered)

    def _fit(
        self, kind: str, start: float, taken: list[tuple[float, int]], stats: DayStats
    ) -> tuple[str, float, list[int]]:
        """The call that can happen with the operators `taken`, and who is in it: the PBX rings
        only operators free in time, callers give up when there is none, staff call out once
        their current call is over."""
        ready = [e for free_at, e in taken if free_at <= start + QUEUE_PATIENCE]
        if kind in ("answered", "transfer", "missed") and not ready:
            stats.abandoned += 1
            return "voice_menu", start, []
        if kind == "transfer" and (len(taken) < 2 or taken[1][0] > start + 2 * QUEUE_PATIENCE):
            return "answered", start, ready[:1]
        if kind.startswith("outgoing"):
            start = max(start, min(taken[0][0], start + 300.0, float(LAST_START)))
            return kind, start, [taken[0][1]]
        return kind, start, [e for _, e in taken] if kind == "transfer" else ready

    def _events(
        self, kind: str, at: datetime, phone: str, operators: list[int], answered: bool
    ) -> list[Event]:
        call_id = self.next_id
        self.next_id += 1
        if kind == "outgoing_case":
            return uis_bodies.outgoing_from_case(
                call_id, at, phone, operators[0], f"case-{call_id}", answered, rng=self.rng
            )
        if kind == "outgoing_softphone":
            return uis_bodies.outgoing_softphone(
                call_id, at, phone, operators[0], answered, rng=self.rng
            )
        return _call_events(kind, call_id, at, phone, operators, self.rng)[1]

    def _push(self, t: float, doc: dict[str, Any], resent: bool) -> None:
        heapq.heappush(self.pending, (t, self.seq, doc, resent))
        self.seq += 1

    def _follow_up(self, kind: str, phone: str, end: float, answered: bool) -> None:
        """Plan the caller's next try or staff's call-back, as real callers and staff do."""
        draw = self.rng.random()
        if kind in ("missed", "voice_menu"):
            if draw < RECALL_AFTER_MISSED[0]:
                self._plan(end, RECALL_AFTER_MISSED, "incoming", phone, "recall_after_missed")
            elif draw < RECALL_AFTER_MISSED[0] + CALLBACK_AFTER_MISSED[0]:
                from_case = self.rng.random() < CALLBACK_FROM_CASE
                back = "outgoing_case" if from_case else "outgoing_softphone"
                self._plan(end, CALLBACK_AFTER_MISSED, back, phone, "callback_after_missed")
        elif kind in _INCOMING:
            if draw < RECALL_AFTER_TALK[0]:
                self._plan(end, RECALL_AFTER_TALK, "incoming", phone, "recall_after_talk")
        elif not answered and draw < RECALL_AFTER_NO_ANSWER[0]:
            self._plan(end, RECALL_AFTER_NO_ANSWER, "incoming", phone, "recall_after_no_answer")

    def _plan(
        self, end: float, rule: tuple[float, float, float], kind: str, phone: str, why: str
    ) -> None:
        _, mean, least = rule
        start = round(end + max(least, self.rng.expovariate(1 / mean)), 3)
        if start < LAST_START:
            heapq.heappush(self.planned, (start, self.seq, kind, phone, why))
            self.seq += 1


def generate_day(
    seats: int = 500,
    day: date | None = None,
    seed: int = 1,
    *,
    calls_per_seat_hour: float = CALLS_PER_SEAT_HOUR,
    first_call_id: int | None = None,
    stats: DayStats | None = None,
) -> Iterator[dict[str, Any]]:
    """Yield `{"t", "body"}` for one working day of a centre with `seats` operators, sorted by
    `t` (seconds since local midnight of `day`; default yesterday in Europe/Moscow).

    Deterministic for the same arguments. `stats`, when given, is filled as lines are yielded.
    Raises ValueError for no seats or a non-positive load.
    """
    if seats < 1 or calls_per_seat_hour <= 0:
        raise ValueError("seats must be >= 1 and calls_per_seat_hour > 0")
    day = day if day is not None else default_day()
    stats = stats if stats is not None else DayStats()
    stats.seats, stats.day = seats, day
    rng = random.Random(seed)
    peak = seats * calls_per_seat_hour / 3600  # fresh calls per second in the busiest hour
    pool = phone_pool(max(20, round(peak * 3600 * sum(HOURLY_CURVE) * POOL_PER_CALL)), rng)
    first_id = (
        first_call_id if first_call_id is not None else FIRST_DAY_CALL_ID + seed % 400 * 10**6
    )
    state = _Day(seats, day, rng, first_id)
    fresh = _fresh_arrivals(peak, random.Random(rng.getrandbits(64)))
    next_fresh = next(fresh, None)
    while True:
        if state.planned and (next_fresh is None or state.planned[0][0] < next_fresh):
            start, _, kind, phone, why = heapq.heappop(state.planned)
        elif next_fresh is not None:
            start, kind, phone, why = next_fresh, _draw(MIX, rng), _pick_phone(pool, rng), "fresh"
            next_fresh = next(fresh, None)
        else:
            break
        # Every later line is at or after this start, so what is earlier is final.
        while state.pending and state.pending[0][0] <= start:
            yield _day_line(heapq.heappop(state.pending), stats)
        stats.reasons[why] += 1
        state.place(start, kind, phone, stats)
    while state.pending:
        yield _day_line(heapq.heappop(state.pending), stats)


def _day_line(item: tuple[float, int, dict[str, Any], bool], stats: DayStats) -> dict[str, Any]:
    t, _, doc, resent = item
    stats.count_line(t, doc, resent)
    return {"t": t, "body": doc}


def write_jsonl(lines: Iterator[dict[str, Any]], out: IO[bytes]) -> int:
    """Write one JSON object per line; returns the number of lines."""
    written = 0
    for line in lines:
        out.write(orjson.dumps(line) + b"\n")
        written += 1
    return written


def summary(counts: Counter[str], span: float, target: str) -> str:
    """The one-line summary printed after generating."""
    calls = sum(n for kind, n in counts.items() if kind in MIX)
    kinds = " ".join(f"{kind}={counts[kind]}" for kind in MIX)
    return (
        f"calls={calls} {kinds} notifications={counts['notifications']} "
        f"span={span:.0f}s -> {target}"
    )


def _parse_args(argv: list[str] | None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    mode = parser.add_mutually_exclusive_group(required=True)
    mode.add_argument("--calls", type=int, help="number of calls")
    mode.add_argument("--day", action="store_true", help="one working day of a contact centre")
    parser.add_argument("--seed", type=int, default=1)
    parser.add_argument("--employees", type=int, default=10, help="operators 1001..1000+K")
    parser.add_argument(
        "--calls-per-second",
        type=float,
        default=None,
        help="arrival rate (default: about calls/20 calls live at once)",
    )
    parser.add_argument(
        "--start",
        type=datetime.fromisoformat,
        default=DEFAULT_START,
        help="local time of the first call, ISO (default 2026-11-02T09:00:00)",
    )
    parser.add_argument("--seats", type=int, default=500, help="--day: operators 1001..1000+N")
    parser.add_argument(
        "--date",
        type=date.fromisoformat,
        default=None,
        help="--day: the local date (default yesterday in Europe/Moscow)",
    )
    parser.add_argument(
        "--calls-per-seat-hour",
        type=float,
        default=CALLS_PER_SEAT_HOUR,
        help=f"--day: calls per seat in the busiest hour (default {CALLS_PER_SEAT_HOUR:g})",
    )
    parser.add_argument("--out", default="-", help="output JSONL file (default stdout)")
    return parser.parse_args(argv)


def _write(lines: Iterator[dict[str, Any]], out: str) -> str:
    """Stream `lines` to the file `out` ("-": stdout); returns where they went."""
    if out == "-":
        write_jsonl(lines, sys.stdout.buffer)
        sys.stdout.flush()
        return "stdout"
    path = Path(out)
    path.parent.mkdir(parents=True, exist_ok=True)
    with path.open("wb", buffering=1 << 20) as stream:
        write_jsonl(lines, stream)
    return str(path)


def _main_day(args: argparse.Namespace) -> int:
    stats = DayStats()
    started = time.perf_counter()
    lines = generate_day(
        args.seats, args.date, args.seed, calls_per_seat_hour=args.calls_per_seat_hour, stats=stats
    )
    target = _write(lines, args.out)
    elapsed = time.perf_counter() - started
    size = f", {Path(target).stat().st_size / 2**20:,.0f} MiB" if target != "stdout" else ""
    report = f"{stats.summary()}\ngenerated in {elapsed:.1f} s -> {target}{size}"
    print(report, file=sys.stderr if target == "stdout" else sys.stdout)
    return 0


def main(argv: list[str] | None = None) -> int:
    """Command line entry point; returns the exit status."""
    args = _parse_args(argv)
    if args.day:
        return _main_day(args)
    counts: Counter[str] = Counter()
    last_t = 0.0

    def tracked() -> Iterator[dict[str, Any]]:
        nonlocal last_t
        for line in generate(
            args.calls,
            args.seed,
            employees=args.employees,
            start=args.start.replace(tzinfo=None),
            calls_per_second=args.calls_per_second,
            counts=counts,
        ):
            last_t = line["t"]
            yield line

    target = _write(tracked(), args.out)
    print(summary(counts, last_t, target), file=sys.stderr if target == "stdout" else sys.stdout)
    return 0


if __name__ == "__main__":
    sys.exit(main())
