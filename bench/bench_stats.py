"""Statistics at scale: a year of history with 1,000,000 cases through `StatsState`.

    .venv/bin/python bench/bench_stats.py [--cases 1000000] [--periods 20] [--snapshot]

Generates a realistic year (20 staff; answered, missed, transferred and outgoing calls;
replies, notes, call-backs, closes, reopens), feeds it in log order and prints the apply
throughput, the resident memory, and per report the p50 and max answer time over random
periods (the whole year among them). `--check N` also compares N periods with the batch oracle
on the first cases (slow: the oracle replays everything).
"""

from __future__ import annotations

import argparse
import heapq
import random
import statistics
import sys
import time
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


def rss_mib() -> float:
    return psutil.Process().memory_info().rss / 2**20


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


def time_reports(state: StatsState, spans: list[tuple[int, int]]) -> None:
    """Print p50 and max answer times per report over the periods."""
    print(
        f"{'report':<10} {'p50 ms':>8} {'max ms':>8}   (over {len(spans)} periods incl. the whole year)"
    )
    for report in REPORTS:
        times = []
        for s, e in spans:
            t0 = time.perf_counter()
            state.report(report, from_us(s), from_us(e), TZ, 86400)
            times.append((time.perf_counter() - t0) * 1000)
        slowest = spans[times.index(max(times))]
        print(
            f"{report:<10} {statistics.median(times):8.1f} {max(times):8.1f}   slowest "
            f"{from_us(slowest[0]):%Y-%m-%d %H:%M} → {from_us(slowest[1]):%Y-%m-%d %H:%M} UTC"
        )


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--cases", type=int, default=1_000_000)
    parser.add_argument("--periods", type=int, default=20)
    parser.add_argument("--snapshot", action="store_true", help="also time to_bytes/from_bytes")
    parser.add_argument("--check", type=int, default=0, help="periods to compare with the oracle")
    parser.add_argument("--save", type=Path, help="write the built state's snapshot there")
    parser.add_argument("--load", type=Path, help="answer reports from this snapshot instead")
    args = parser.parse_args()
    if args.load:
        t0 = time.perf_counter()
        state = StatsState.from_bytes(args.load.read_bytes())
        print(
            f"loaded {len(state.cases):,} cases in {time.perf_counter() - t0:.1f} s; RSS {rss_mib():,.0f} MiB"
        )
        time_reports(state, periods(random.Random(7), args.periods))
        return

    base_rss = rss_mib()
    state = StatsState()
    year = Year(args.cases)
    chunk: list[HistoryEvent] = []
    kept: list[HistoryEvent] = []
    applied = 0
    apply_s = 0.0
    started = time.perf_counter()
    for ev in year.events():
        chunk.append(ev)
        if args.check and ev.case_id <= 20_000:
            kept.append(ev)
        if len(chunk) == 100_000:
            t0 = time.perf_counter()
            applied += state.apply_all(chunk)
            apply_s += time.perf_counter() - t0
            chunk = []
            print(
                f"\r{applied:,} events, {apply_s:.0f} s applying",
                end="",
                file=sys.stderr,
                flush=True,
            )
    t0 = time.perf_counter()
    applied += state.apply_all(chunk)
    apply_s += time.perf_counter() - t0
    print(file=sys.stderr)
    total_s = time.perf_counter() - started
    print(
        f"cases {len(state.cases):,}  events {applied:,}  ({applied / len(state.cases):.1f} per case)"
    )
    print(
        f"apply: {applied / apply_s:,.0f} events/s ({apply_s:.0f} s; {total_s:.0f} s with generation)"
    )
    print(f"RSS: {rss_mib():,.0f} MiB (state ≈ {rss_mib() - base_rss:,.0f} MiB)")

    if args.save:
        args.save.write_bytes(state.to_bytes())
    rnd = random.Random(7)
    spans = periods(rnd, args.periods)
    time_reports(state, spans)
    year_body = state.report("load", from_us(spans[0][0]), from_us(spans[0][1]), TZ, 86400)
    print("whole year load:", year_body)

    if args.snapshot:
        t0 = time.perf_counter()
        data = state.to_bytes()
        dump_s = time.perf_counter() - t0
        t0 = time.perf_counter()
        again = StatsState.from_bytes(data)
        load_s = time.perf_counter() - t0
        same = all(
            again.report(r, from_us(s), from_us(e), TZ, 86400)
            == state.report(r, from_us(s), from_us(e), TZ, 86400)
            for r in REPORTS
            for s, e in spans[:3]
        )
        print(
            f"snapshot: {len(data) / 2**20:,.0f} MiB, to_bytes {dump_s:.1f} s, from_bytes {load_s:.1f} s, equal {same}"
        )

    if args.check:
        small = StatsState()
        small.apply_all(kept)
        facts = batch.replay(kept)
        last = max(to_us(ev.at) for ev in kept)
        bad = 0
        for s, e in periods(rnd, args.check):
            e = min(e, last + HOUR_US)
            for report in REPORTS:
                if batch.answer(facts, report, s, e, TZ, 86400) != small.report(
                    report, from_us(s), from_us(e), TZ, 86400
                ):
                    bad += 1
        print(f"oracle check on the first 20,000 cases: {bad} mismatches")


if __name__ == "__main__":
    main()
