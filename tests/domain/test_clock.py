"""The event clock (R32, "event time is the order"): it follows UIS's time, one wrong clock
cannot move it, and when the line goes quiet it moves on by itself — at real-time pace for live
traffic, faster for a fast replay — never further than the lateness bound past what it saw."""

from __future__ import annotations

from hypothesis import given, settings
from hypothesis import strategies as st

from callrouter.domain.clock import FAST_GRACE, GRACE, ClockReading, EventClock

L = 30.0


def test_it_follows_the_latest_event_time() -> None:
    clock = EventClock(reach=L)
    assert clock.reading() is None
    clock.observe(1, 1000.0, wall=5.0)
    clock.observe(2, 990.0, wall=5.1)  # an older time does not move it back
    reading = clock.reading()
    assert reading is not None and reading.at(5.1) == 1000.0
    clock.observe(2, 1010.0, wall=5.2)
    assert clock.reading().at(5.2) == 1010.0  # type: ignore[union-attr]


def test_one_call_with_a_wrong_clock_cannot_move_it() -> None:
    clock = EventClock(reach=L)
    clock.observe(1, 1000.0, wall=1000.0)
    clock.observe(2, 1000.5, wall=1000.5)
    clock.observe(3, 1000.6 + 86000, wall=1000.6)  # a PBX clock a day ahead
    assert clock.reading().at(1000.6) == 1000.5  # type: ignore[union-attr]
    clock.observe(4, 1000.8, wall=1000.8)  # the others move on: still not it
    assert clock.reading().at(1000.8) == 1000.8  # type: ignore[union-attr]


def test_a_wrong_account_time_zone_still_moves_it() -> None:
    """Every call three hours ahead of the server: the zone is wrong, the stream is whole."""
    clock = EventClock(reach=L)
    clock.observe(1, 1000.0 + 3 * 3600, wall=1000.0)
    clock.observe(2, 1005.0 + 3 * 3600, wall=1005.0)
    assert clock.reading().at(1005.0) == 1005.0 + 3 * 3600  # type: ignore[union-attr]


def test_live_calls_after_a_replay_of_old_traffic_move_it() -> None:
    clock = EventClock(reach=L)
    clock.observe(1, 1000.0, wall=90_000.0)  # recorded traffic, replayed a day later
    clock.observe(2, 90_001.0, wall=90_001.0)  # a live call
    assert clock.reading().at(90_001.0) == 90_001.0  # type: ignore[union-attr]


def test_a_call_after_a_quiet_night_moves_it() -> None:
    """Far ahead of the last call, but not of its own arrival: live traffic after hours."""
    clock = EventClock(reach=L)
    clock.observe(1, 1000.0, wall=0.0)
    clock.observe(2, 1000.0 + 10 * 3600, wall=10 * 3600.0)
    assert clock.reading().at(10 * 3600.0) == 1000.0 + 10 * 3600  # type: ignore[union-attr]


def test_idle_it_moves_on_at_real_time_pace_up_to_the_lateness() -> None:
    clock = EventClock(reach=L)
    for i in range(100):  # live traffic: event time runs with the wall clock
        clock.observe(i, 1000.0 + i, wall=float(i))
    reading = clock.reading()
    assert reading is not None and reading.rate == 1.0
    assert reading.at(99.0 + GRACE) == 1099.0
    assert reading.at(99.0 + GRACE + 10) == 1109.0
    assert reading.at(99.0 + GRACE + 1000) == 1099.0 + L  # never past what it saw + L


def test_a_fast_replay_idles_at_its_own_pace() -> None:
    clock = EventClock(reach=L)
    for i in range(2000):  # a day replayed in a minute: 1440 event seconds per wall second
        clock.observe(i, 1000.0 + 1440 * i * 0.01, wall=i * 0.01)
    reading = clock.reading()
    assert reading is not None and 1300 < reading.rate < 1600
    last = 19.99
    assert reading.grace == FAST_GRACE
    assert reading.at(last + FAST_GRACE + L / reading.rate) >= reading.base + L - 1e-6


def test_a_fast_streams_hiccup_does_not_carry_its_calls_past_the_bound() -> None:
    """R32: in a stream far faster than real time, a sender silent for a second and a half
    (a loaded machine) has not ended its traffic: the clock waits FAST_GRACE before idling at
    the stream's pace, so a call end posted before its legs is not finished on its own."""
    clock = EventClock(reach=L)
    for i in range(2000):
        clock.observe(i, 1000.0 + 1440 * i * 0.01, wall=i * 0.01)
    reading = clock.reading()
    assert reading is not None
    assert reading.at(19.99 + 1.6) == reading.base  # still where it was
    assert reading.at(19.99 + GRACE + 1.0) == reading.base


@settings(max_examples=200, deadline=None)
@given(
    times=st.lists(st.floats(0, 600), min_size=2, max_size=60),
    delays=st.lists(st.floats(0, L - GRACE), min_size=60, max_size=60),
)
def test_no_notification_arrives_after_the_clock_passed_it_by_the_lateness(
    times: list[float], delays: list[float]
) -> None:
    """Delivered in real time with any delay below the bound, a notification always finds the
    clock less than the lateness past its own time, however the others were delayed."""
    arrivals = sorted((t + d, t, i) for i, (t, d) in enumerate(zip(times, delays)))
    clock = EventClock(reach=L)
    for wall, t, i in arrivals:
        reading = clock.reading()
        if reading is not None:
            assert reading.at(wall) < t + L
        clock.observe(i, t, wall)


def test_arrivals_keep_the_line_from_being_quiet() -> None:
    """Old notifications (or refused ones) arriving keep the clock from idling: a straggler
    on its way is not overtaken; once nothing arrives it moves on from where it stood."""
    clock = EventClock(reach=L)
    clock.observe(1, 1000.0, wall=0.0)
    for wall in (0.5, 1.0, 1.5, 2.0, 2.5):
        clock.touch(wall)
    reading = clock.reading()
    assert reading is not None and reading.at(2.5) == 1000.0
    assert reading.at(2.5 + GRACE + 5) == 1005.0
    clock.touch(2.5 + GRACE + 5)  # something came: the 5 s it ran are kept, it stops again
    again = clock.reading()
    assert again is not None and again.at(2.5 + GRACE + 5.5) == 1005.0
    assert again.at(1000.0) == 1000.0 + L  # still never past what it saw + L


def test_a_reading_is_a_plain_value() -> None:
    reading = ClockReading(100.0, 5.0, 2.0, L)
    assert reading.at(5.0) == reading.at(5.0 + FAST_GRACE) == 100.0  # rate 2: a fast stream
    assert reading.at(5.0 + FAST_GRACE + 1.0) == 102.0
