"""Statistics at scale: a year of history with 1,000,000 cases through `StatsState`.

    .venv/bin/python bench/bench_stats.py [--cases 1000000] [--periods 40] [--check N]

Generates a realistic year (20 staff; answered, missed, transferred and outgoing calls;
replies, notes, call-backs, closes, reopens), feeds it in log order and prints, side by side:
the apply rate; the state's memory, measured three ways (the resident-size growth while it was
built; a walk of every object it holds, `sys.getsizeof` of each array, dict and list; what
`tracemalloc` sees a restored copy allocate; the resident-size growth of a fresh process that
loads the snapshot); the snapshot's size and `to_bytes`/`from_bytes` times; per report the p50
and max answer time over random periods (the whole year, local days, weeks, months, 200-day
spans, 40% with edges inside an hour); and every report over the longest period the API allows
(731 days around the year) in several zones. `--check N` also compares N periods with the batch
oracle on a separate year of 20,000 cases.
"""

from __future__ import annotations

import argparse
import heapq
import random
import statistics
import subprocess
import sys
import tempfile
import time
import tracemalloc
from array import array
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any, cast
from zoneinfo import ZoneInfo

import psutil

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from callrouter.stats import batch
from callrouter.stats.counters import StatsState
from callrouter.stats.figures import REPORTS
from callrouter.stats.history import HOUR_US, HistoryEvent, from_us, to_us

START = datetime(2025, 1, 1, tzinfo=UTC) - timedelta(hours=3)  # Moscow midnight
STAFF = tuple(range(1, 21))
TZ = ZoneInfo("Europe/Moscow")
Row = tuple[float, int, int, str, int | None, int | None, str, str | None, bool, dict[str, object]]


MIB = 2**20
CAPPED_DAYS = 731  # the longest period the HTTP layer answers


def rss_mib() -> float:
    return psutil.Process().memory_info().rss / MIB


def deep_size(root: object) -> int:
    """Bytes held by `root` and everything it references (arrays, dicts, lists, tuples, ints,
    objects with __slots__ or __dict__), each counted once."""
    seen: set[int] = set()
    stack = [root]
    total = 0
    while stack:
        obj = stack.pop()
        if id(obj) in seen:
            continue
        seen.add(id(obj))
        total += sys.getsizeof(obj)
        if isinstance(obj, dict):
            stack.extend(obj.keys())
            stack.extend(obj.values())
        elif isinstance(obj, (list, tuple, set, frozenset)):
            stack.extend(obj)
        elif isinstance(obj, (array, int, str, bytes, float, bool, type(None), ZoneInfo)):
            continue
        else:
            for cls in type(obj).__mro__:
                for name in getattr(cls, "__slots__", ()):
                    if hasattr(obj, name):
                        stack.append(getattr(obj, name))
            if hasattr(obj, "__dict__"):
                stack.append(obj.__dict__)
    return total


class Year:
    """Cases arriving over a year with a daily and weekly rhythm; yields events in time order."""

    def __init__(self, cases: int, seed: int = 1) -> None:
        self.cases = cases
        self.rnd = random.Random(seed)
        self.message_id = 0

    def arrivals(self) -> Iterator[float]:
        """Arrival times (s since START), busier by day and on weekdays, sorted."""
        rnd = self.rnd
        weights = []
        for hour in range(365 * 24):
            local_hour, weekday = hour % 24, (hour // 24 + 2) % 7  # 2025-01-01 is a Wednesday
            w = 1.0 if 9 <= local_hour < 19 else 0.25 if 7 <= local_hour < 22 else 0.04
            weights.append(w * (0.35 if weekday >= 5 else 1.0))
        total = sum(weights)
        for hour, w in enumerate(weights):
            n = int(self.cases * w / total) + (rnd.random() < (self.cases * w / total) % 1)
            for s in sorted(rnd.uniform(0, 3600) for _ in range(n)):
                yield hour * 3600 + s

    def case(self, case_id: int, t: float) -> list[Row]:
        """One case's rows (time s, case, seq, kind, staff, assignee, status, source, conv, details)."""
        rnd = self.rnd
        rows: list[Row] = []
        kind_roll = rnd.random()
        staff = rnd.choice(STAFF)
        state: dict[str, Any] = {"assignee": staff, "status": "open"}

        def add(
            at: float, kind: str, by: int | None, conversation: bool = False, **details: object
        ) -> None:
            rows.append(
                (
                    at,
                    case_id,
                    len(rows),
                    kind,
                    by,
                    state["assignee"],
                    state["status"],
                    cast("str | None", details.pop("source", None)),
                    conversation,
                    details,
                )
            )

        def message(at: float, kind: str, author: int | None, by_staff: bool) -> int:
            self.message_id += 1
            add(
                at,
                "message",
                author if by_staff else None,
                message_id=self.message_id,
                message_kind=kind,
                author_staff_id=author,
            )
            return self.message_id

        def recording(at: float, mid: int, author: int | None) -> None:
            add(at, "recording", None, True, message_id=mid, author_staff_id=author)

        talk = rnd.uniform(30, 600)
        if kind_roll < 0.5:  # answered incoming call (R8, R11, R12)
            by_staff = rnd.random() < 0.4
            state["status"] = "open" if by_staff else rnd.choice(("open", "waiting"))
            add(t, "created", staff if by_staff else None, source="in")
            mid = message(t, "call", staff, by_staff)
            end = t + talk
            recording(end + rnd.uniform(5, 120), mid, staff)
            if by_staff:
                state["status"] = "waiting"  # R21 at the call end
                add(end, "status", None, **{"from": "open", "to": "waiting"})
            t = end
        elif kind_roll < 0.75:  # missed call (R15), maybe a call-back (R22, R23c)
            state["assignee"] = staff if rnd.random() < 0.9 else None
            add(t, "created", None, source="in")
            message(t, "call", None, False)
            if rnd.random() < 0.6:
                t += rnd.uniform(300, 4 * 3600)
                staff = state["assignee"] or staff
                mid = message(t, "call", staff, True)
                if rnd.random() < 0.7:
                    recording(t + talk + rnd.uniform(5, 60), mid, staff)
                    state["status"] = "waiting"
                    add(t + talk, "status", None, **{"from": "open", "to": "waiting"})
        elif kind_roll < 0.9:  # transferred or softphone outgoing call: created closed (R13, R14)
            state["status"] = "closed"
            add(t, "created", None, source=rnd.choice(("in", "out")))
            mid = message(t, "call", staff, False)
            recording(t + rnd.uniform(5, 120), mid, staff)
            return rows
        else:  # a call attached to an earlier case is logged on that case; here a new outgoing one
            add(t, "created", staff, source="out")
            mid = message(t, "call", staff, True)
            recording(t + talk + rnd.uniform(5, 60), mid, staff)
        # Later work: replies and notes, maybe a reassignment, a close, sometimes a reopen.
        for _ in range(rnd.choice((0, 0, 1, 1, 2, 3))):
            t += rnd.expovariate(1 / 7200)
            message(t, rnd.choice(("reply", "note")), staff, True)
        if rnd.random() < 0.1:
            t += rnd.uniform(60, 3600)
            old, state["assignee"] = state["assignee"], rnd.choice(STAFF)
            add(t, "assignee", staff, **{"from": old, "to": state["assignee"]})
        closes = 2 if rnd.random() < 0.06 else 1 if rnd.random() < 0.85 else 0
        for n in range(closes):
            t += rnd.expovariate(1 / (6 * 3600)) + 60
            old, state["status"] = state["status"], "closed"
            add(t, "status", state["assignee"], **{"from": old, "to": "closed"})
            if n + 1 < closes:  # R24: the user calls back about it, staff attaches the call
                t += rnd.expovariate(1 / (48 * 3600)) + 600
                state["status"] = "waiting"
                add(t, "attached", staff)
                mid = message(t, "call", staff, True)
                recording(t + talk, mid, staff)
                add(t + talk, "status", None, **{"from": "closed", "to": "waiting"})
                t += talk
        return rows

    def events(self) -> Iterator[HistoryEvent]:
        """Every event of the year in log order (time, then case, then write order)."""
        pending: list[Row] = []
        next_id = 1
        for case_id, t in enumerate(self.arrivals(), start=1):
            while pending and pending[0][0] <= t:
                row = heapq.heappop(pending)
                yield _event(next_id, row)
                next_id += 1
            for row in self.case(case_id, t):
                heapq.heappush(pending, row)
        while pending:
            yield _event(next_id, heapq.heappop(pending))
            next_id += 1


def _event(event_id: int, row: Row) -> HistoryEvent:
    at, case_id, _, kind, staff, assignee, status, source, conversation, details = row
    return HistoryEvent(
        id=event_id,
        case_id=case_id,
        at=START + timedelta(seconds=at),
        kind=kind,
        staff_id=staff,
        assignee_id=assignee,
        status=status,
        source=source,
        conversation=conversation,
        details=details,
    )


def periods(rnd: random.Random, n: int) -> list[tuple[int, int]]:
    """The whole year, then local days, weeks, months and arbitrary spans, some unaligned."""
    s0, e0 = to_us(START), to_us(START + timedelta(days=365))
    out = [(s0, e0)]
    while len(out) < n:
        length = rnd.choice((1, 7, 30, 91, 200)) * 24 * HOUR_US
        a = rnd.randrange(s0, e0 - length)
        if rnd.random() < 0.6:  # calendar-aligned: local midnight
            a -= (a - s0) % (24 * HOUR_US)
            b = a + length
        else:
            b = a + length - rnd.randrange(0, 12 * HOUR_US)
        out.append((a, b))
    return out


def time_reports(
    state: StatsState, spans: list[tuple[int, int]], tz: ZoneInfo
) -> dict[str, tuple[float, float]]:
    """Per report, (p50, max) answer time in ms over the periods (each the best of
    `REPEAT` runs, so a moment of CPU steal on a shared machine is not taken for the report)."""
    out = {}
    for report in REPORTS:
        times = [best(state, report, from_us(s), from_us(e), tz) for s, e in spans]
        out[report] = (statistics.median(times), max(times))
    return out


REPEAT = 3


def best(state: StatsState, report: str, start: datetime, end: datetime, tz: ZoneInfo) -> float:
    """The best of REPEAT answer times of one report, in ms."""
    times = []
    for _ in range(REPEAT):
        t0 = time.perf_counter()
        state.report(report, start, end, tz, 86400)
        times.append((time.perf_counter() - t0) * 1000)
    return min(times)


def capped(state: StatsState, zones: list[str]) -> list[tuple[str, str, float]]:
    """Every report over the longest period the API allows, around the year, per zone: once
    from local midnight to local midnight, once with both edges inside an hour."""
    out = []
    for zone in zones:
        tz = ZoneInfo(zone)
        first = datetime(2024, 7, 1, tzinfo=tz)
        spans = [
            (first, first + timedelta(days=CAPPED_DAYS)),
            (first + timedelta(minutes=617), first + timedelta(days=CAPPED_DAYS, minutes=-17)),
        ]
        for report in REPORTS:
            out.append((zone, report, max(best(state, report, s, e, tz) for s, e in spans)))
    return out


def build(cases: int) -> tuple[StatsState, int, float, float]:
    """The state of a year of `cases` cases, the number of events applied and the wall and CPU
    seconds spent applying them (events are made and applied 10,000 at a time, so the
    generator holds little memory)."""
    state = StatsState()
    chunk: list[HistoryEvent] = []
    applied = 0
    wall = cpu = 0.0

    def feed() -> None:
        nonlocal applied, wall, cpu
        t0, c0 = time.perf_counter(), time.process_time()
        applied += state.apply_all(chunk)
        wall += time.perf_counter() - t0
        cpu += time.process_time() - c0
        chunk.clear()

    for ev in Year(cases).events():
        chunk.append(ev)
        if len(chunk) == 10_000:
            feed()
            if applied % 500_000 == 0:
                print(f"\r{applied:,} events, {wall:.0f} s applying", end="", file=sys.stderr)
    feed()
    print(file=sys.stderr)
    return state, applied, wall, cpu


def loaded_rss(path: Path) -> float:
    """MiB a fresh process grows by loading the snapshot at `path` (the bytes freed after)."""
    code = (
        "import gc, sys, psutil; sys.path.insert(0, sys.argv[2]);"
        "from callrouter.stats.counters import StatsState;"
        "p = psutil.Process(); base = p.memory_info().rss;"
        "data = open(sys.argv[1], 'rb').read(); s = StatsState.from_bytes(data);"
        "del data; gc.collect(); print((p.memory_info().rss - base) / 2**20)"
    )
    root = str(Path(__file__).resolve().parents[1])
    out = subprocess.run(
        [sys.executable, "-c", code, str(path), root], capture_output=True, text=True, check=True
    )
    return float(out.stdout)


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--cases", type=int, default=1_000_000)
    parser.add_argument("--periods", type=int, default=40)
    parser.add_argument("--check", type=int, default=0, help="periods to compare with the oracle")
    parser.add_argument(
        "--zones",
        default="Europe/Moscow,Europe/Berlin,Asia/Kolkata,Australia/Lord_Howe",
        help="zones for the capped-period reports",
    )
    parser.add_argument("--save", type=Path, help="write the built state's snapshot there")
    args = parser.parse_args()

    base_rss = rss_mib()
    state, applied, apply_s, apply_cpu = build(args.cases)
    grown = rss_mib() - base_rss
    walked = deep_size(state) / MIB
    cases = len(state.cases)

    t0 = time.perf_counter()
    data = state.to_bytes()
    dump_s = time.perf_counter() - t0
    with tempfile.TemporaryDirectory() as tmp:
        path = args.save or Path(tmp) / "stats.snapshot"
        path.write_bytes(data)
        fresh = loaded_rss(path)
    loads = []
    for _ in range(2):
        t0 = time.perf_counter()
        again = StatsState.from_bytes(data)
        loads.append(time.perf_counter() - t0)
        del again
    tracemalloc.start()
    before = tracemalloc.get_traced_memory()[0]
    again = StatsState.from_bytes(data)
    traced = (tracemalloc.get_traced_memory()[0] - before) / MIB
    tracemalloc.stop()

    spans = periods(random.Random(7), args.periods)
    timings = time_reports(state, spans, TZ)
    same = all(
        again.report(r, from_us(s), from_us(e), TZ, 86400)
        == state.report(r, from_us(s), from_us(e), TZ, 86400)
        for r in REPORTS
        for s, e in spans[:3]
    )
    del again
    worst = capped(state, args.zones.split(","))

    print(f"cases {cases:,}  events {applied:,}  ({applied / cases:.2f} per case)")
    print(f"{'figure':<34} {'measured':>14}   limit")
    rows = [
        ("apply rate (wall clock)", f"{applied / apply_s:,.0f} ev/s", ">= ~30,000 ev/s"),
        ("apply rate (CPU time)", f"{applied / apply_cpu:,.0f} ev/s", ""),
        ("state memory: object walk", f"{walked:,.0f} MiB", "<= 300 MiB"),
        ("state memory: RSS growth building", f"{grown:,.0f} MiB", "<= 300 MiB"),
        ("restored state: fresh process RSS", f"{fresh:,.0f} MiB", "<= 300 MiB"),
        ("restored state: tracemalloc", f"{traced:,.0f} MiB", "<= 300 MiB"),
        ("snapshot size", f"{len(data) / MIB:,.0f} MiB", "<= 300 MiB"),
        ("to_bytes", f"{dump_s:.1f} s", ""),
        ("from_bytes", f"{min(loads):.1f}-{max(loads):.1f} s", "<= 10 s"),
        ("restored answers equal", str(same), "True"),
    ]
    for name, value, limit in rows:
        print(f"{name:<34} {value:>14}   {limit}")
    print(f"\nreports, {TZ.key}, over {len(spans)} periods (the whole year among them; best of")
    print(f"{REPEAT} runs each):")
    print(f"{'report':<10} {'p50 ms':>8} {'max ms':>8}")
    for report, (p50, top) in timings.items():
        print(f"{report:<10} {p50:8.1f} {top:8.1f}")
    print(f"\nevery report over {CAPPED_DAYS} days around the year (worst of aligned/unaligned):")
    for zone, report, ms in worst:
        print(f"{zone:<22} {report:<10} {ms:8.1f} ms")
    print(f"worst capped-period report: {max(ms for _, _, ms in worst):.1f} ms")

    if args.check:
        # A separate, smaller year: the oracle replays everything.
        kept = list(Year(20_000, seed=2).events())
        small = StatsState()
        small.apply_all(kept)
        facts = batch.replay(kept)
        last = max(to_us(ev.at) for ev in kept)
        bad = 0
        for s, e in periods(random.Random(11), args.check):
            e = min(e, last + HOUR_US)
            for report in REPORTS:
                if batch.answer(facts, report, s, e, TZ, 86400) != small.report(
                    report, from_us(s), from_us(e), TZ, 86400
                ):
                    bad += 1
        print(f"oracle check on a year of 20,000 cases, {args.check} periods: {bad} mismatches")


if __name__ == "__main__":
    main()
