"""Generate realistic UIS webhook traffic as JSONL for `python -m callrouter replay`.

    python bench/generate_traffic.py --calls 5000 [--seed 1] [--employees 10]
        [--calls-per-second R] [--start 2026-11-02T09:00:00] [--out bench/out/traffic.jsonl]

One line per notification, `{"t": seconds since the first call started, "body": {...}}`,
sorted by `t`. Calls arrive as a Poisson process and overlap; callers come from a skewed pool of
numbers, so repeat callers (and grouped missed calls, R16) occur. Operators are the UIS
employees 1001..1000+K. The same arguments always give the same file.
"""

from __future__ import annotations

import argparse
import heapq
import random
import sys
from collections import Counter
from collections.abc import Callable, Iterator
from datetime import datetime, timedelta
from pathlib import Path
from typing import IO, Any

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
    parser.add_argument("--calls", type=int, required=True, help="number of calls")
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
    parser.add_argument("--out", default="-", help="output JSONL file (default stdout)")
    return parser.parse_args(argv)


def main(argv: list[str] | None = None) -> int:
    """Command line entry point; returns the exit status."""
    args = _parse_args(argv)
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

    if args.out == "-":
        write_jsonl(tracked(), sys.stdout.buffer)
        sys.stdout.flush()
        print(summary(counts, last_t, "stdout"), file=sys.stderr)
    else:
        path = Path(args.out)
        path.parent.mkdir(parents=True, exist_ok=True)
        with path.open("wb") as out:
            write_jsonl(tracked(), out)
        print(summary(counts, last_t, str(path)))
    return 0


if __name__ == "__main__":
    sys.exit(main())
