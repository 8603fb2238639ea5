"""The incremental counters equal the batch oracle for every report, field and period (R25–R30,
SPEC §6: "must equal a batch recomputation from the stored case history for any period"), and
survive a snapshot and redelivered events without losing or double counting anything."""

from __future__ import annotations

import random
from zoneinfo import ZoneInfo

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from stats_histories import TIMEZONES, history

from callrouter.stats import batch
from callrouter.stats.counters import StatsState
from callrouter.stats.figures import REPORTS
from callrouter.stats.history import HOUR_US, HistoryEvent, from_us, to_us

Period = tuple[int, int, str, int]  # start µs, end µs, time zone, close SLA seconds


def periods(events: list[HistoryEvent], rnd: random.Random, n: int) -> list[Period]:
    """Periods that hit the hard parts: edges inside an hour next to events, whole hours, the
    whole history, empty and one-hour spans, in zones with DST and half/quarter-hour offsets."""
    times = [to_us(ev.at) for ev in events]
    lo, hi = min(times) - 30 * HOUR_US, max(times) + 30 * HOUR_US
    out: list[Period] = [(lo, hi, rnd.choice(TIMEZONES), 3600)]
    while len(out) < n:
        ends = []
        for _ in range(2):
            roll = rnd.random()
            if roll < 0.45:  # near an event, inside its hour
                x = rnd.choice(times) + rnd.randrange(-HOUR_US, HOUR_US)
            elif roll < 0.55:
                x = rnd.choice(times) + rnd.choice((0, 1, -1))
            else:
                x = rnd.randrange(lo, hi)
            if rnd.random() < 0.35:
                x -= x % HOUR_US
            ends.append(x)
        start, end = min(ends), max(ends)
        if rnd.random() < 0.1:
            end = start + rnd.choice((0, HOUR_US))
        out.append((start, end, rnd.choice(TIMEZONES), rnd.choice((0, 60, 3600, 86400))))
    return out


def assert_same(state: StatsState, events: list[HistoryEvent], asked: list[Period]) -> None:
    facts = batch.replay(events)
    for start, end, zone, sla in asked:
        tz = ZoneInfo(zone)
        for report in REPORTS:
            want = batch.answer(facts, report, start, end, tz, sla)
            got = state.report(report, from_us(start), from_us(end), tz, sla)
            assert got == want, (report, from_us(start), from_us(end), zone, sla)


histories = st.tuples(
    st.integers(0, 2**32 - 1),  # seed
    st.integers(1, 30),  # cases
    st.sampled_from((2.0, 30.0, 240.0)),  # hours they are spread over
)


@settings(max_examples=120, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(histories)
def test_incremental_equals_batch(spec: tuple[int, int, float]) -> None:
    """Random histories (reopens, closes, created-closed cases, late rows with earlier times,
    conversations before and after closes) and random periods: every report is equal."""
    seed, cases, span = spec
    events = history(seed, cases, span)
    state = StatsState()
    assert state.apply_all(events) == len(events)
    assert_same(state, events, periods(events, random.Random(seed), 8))


@settings(max_examples=40, deadline=None)
@given(histories, st.floats(0, 1))
def test_snapshot_mid_stream_then_more_equals_uninterrupted(
    spec: tuple[int, int, float], where: float
) -> None:
    """A restart from `to_bytes` in the middle loses nothing; redelivering the events just
    before the snapshot (as a restart would) counts nothing twice."""
    seed, cases, span = spec
    events = history(seed, cases, span)
    cut = int(len(events) * where)
    before = StatsState()
    before.apply_all(events[:cut])
    restored = StatsState.from_bytes(before.to_bytes())
    assert restored.max_id == (events[cut - 1].id if cut else 0)
    assert restored.apply_all(events[max(0, cut - 7) :]) == len(events) - cut
    whole = StatsState()
    whole.apply_all(events)
    assert restored.to_bytes() == whole.to_bytes()
    assert_same(restored, events, periods(events, random.Random(seed), 3))


@settings(max_examples=40, deadline=None)
@given(histories, st.randoms(use_true_random=False))
def test_duplicate_delivery_changes_nothing(
    spec: tuple[int, int, float], rnd: random.Random
) -> None:
    """Events arrive in id order with repeats (at-least-once delivery): repeats are no-ops."""
    seed, cases, span = spec
    events = history(seed, cases, span)
    delivered: list[HistoryEvent] = []
    for i, ev in enumerate(events):
        delivered.append(ev)
        if rnd.random() < 0.3:  # redeliver a few earlier ones, then this one again
            delivered.extend(events[max(0, i - rnd.randrange(3)) : i + 1])
    state = StatsState()
    assert state.apply_all(delivered) == len(events)
    clean = StatsState()
    clean.apply_all(events)
    assert state.to_bytes() == clean.to_bytes()
    assert not state.apply(events[0])


def test_snapshot_rejects_other_bytes() -> None:
    with pytest.raises(ValueError):
        StatsState.from_bytes(b"not a snapshot")


def test_empty_state_answers_zeros() -> None:
    tz = ZoneInfo("Europe/Moscow")
    state = StatsState()
    start, end = from_us(0), from_us(HOUR_US * 24 * 365)
    for report in REPORTS:
        assert state.report(report, start, end, tz, 60) == batch.compute(
            [], report, start, end, tz, 60
        )
