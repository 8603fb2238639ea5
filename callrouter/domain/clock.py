"""The event clock: how far UIS's own time (`notification_time`) has got (R32, "event time is
the order").

A call is decided once this clock has passed its end by the lateness bound, so every
notification UIS delivers within that bound is folded in first, whatever the delivery order.
The clock follows the latest event time seen. Two guards keep one body from moving it for
everyone: the most advanced call is not believed alone while its time is ahead of its own
arrival by more than `MAX_LEAD` (a broken PBX clock; when the next call is that far ahead too,
the account's time zone is wrong and both are believed), and the clock never runs ahead of what
it has seen by more than the lateness bound.

When nothing at all arrives for a short grace, the clock moves on by itself, at real-time pace
— or, for a replay running much faster than real time, at the pace the stream kept: a quiet
line still gets its cases, and a replay's last calls do not wait the lateness bound in real
seconds. While notifications keep arriving (even old ones, even ones the database refused for
now) the line is not quiet: a straggler on its way cannot be overtaken by an idle clock. The
pace is measured over at least ten lateness bounds of event time, so that the disorder the
bound allows cannot make it look faster than it is. Pure: the caller passes wall times in.
"""

from __future__ import annotations

from collections import deque
from dataclasses import dataclass, field

from callrouter.domain.wire import wire

GRACE = 1.0  # wall seconds of silence before the clock moves on by itself
# The same for a stream much faster than real time (a replay, a test harness): there a second
# of silence is a sender's hiccup more often than the end of the traffic, and the idle clock,
# running at the stream's pace, would carry calls past their lateness bound before their last
# notifications come (seen: a call end posted first, 1.6 s of silence, its legs after it —
# decided on its end alone). A replay's last calls wait these seconds instead.
FAST_GRACE = 3.0
MAX_LEAD = 600.0  # event seconds a call's time may be ahead of its arrival, alone
PACE_SPAN = 10  # lateness bounds of event time the pace is measured over
FAST = 2.0  # a pace below this is real time (live traffic, or a slow replay)
MAX_RATE = 100_000.0


@wire
@dataclass(frozen=True, slots=True)
class ClockReading:
    """The clock as last set: `base`, the latest event time seen (epoch seconds); `start`, the
    clock at `wall`, the wall time of the last arrival. `GRACE` after it the clock runs on at
    `rate`, never past `base + reach` (`grace`: longer for a stream faster than real time)."""

    base: float
    wall: float
    rate: float = 1.0
    reach: float = 0.0
    start: float | None = None  # None: `base`

    @property
    def grace(self) -> float:
        """Wall seconds of silence before the clock moves on by itself."""
        return GRACE if self.rate < FAST else FAST_GRACE

    def at(self, wall: float) -> float:
        """The event time at wall time `wall`."""
        start = self.base if self.start is None else self.start
        idle = max(0.0, wall - self.wall - self.grace) * self.rate
        return min(start + idle, max(start, self.base + self.reach))


@dataclass(slots=True)
class EventClock:
    """Feeds on (call, event time, wall time) and arrivals; answers `reading()`."""

    reach: float = 30.0  # the lateness bound: how far idle time may carry the clock
    # The two most advanced calls: (event time, event time − wall time of its arrival).
    top: dict[int, tuple[float, float]] = field(default_factory=dict)
    current: ClockReading | None = None
    samples: deque[tuple[float, float]] = field(default_factory=deque)  # (wall, base)

    def touch(self, wall: float) -> None:
        """Something arrived at `wall` (stored or not): the line is not quiet."""
        c = self.current
        if c is not None and wall > c.wall:
            self.current = ClockReading(c.base, wall, c.rate, c.reach, c.at(wall))

    def observe(self, call_session_id: int, event_time: float, wall: float) -> None:
        """A notification of `call_session_id` at `event_time` was stored at `wall`."""
        self.touch(wall)
        top = self.top
        if event_time > top.get(call_session_id, (float("-inf"), 0.0))[0]:
            top[call_session_id] = (event_time, event_time - wall)
            if len(top) > 2:
                del top[min(top, key=top.__getitem__)]
        (first, ahead), *rest = sorted(top.values(), reverse=True)
        alone = ahead > MAX_LEAD and (not rest or rest[0][1] <= MAX_LEAD)
        trusted = rest[0][0] if alone and rest else first
        if self.current is None or trusted > self.current.at(wall):
            self._set(trusted, wall)

    def set_reach(self, seconds: float) -> None:
        """The lateness bound changed."""
        self.reach = seconds
        c = self.current
        if c is not None:
            self.current = ClockReading(c.base, c.wall, c.rate, seconds, c.start)

    def reading(self) -> ClockReading | None:
        """The clock to hand to whoever decides by it (None before any event)."""
        return self.current

    def _set(self, base: float, wall: float) -> None:
        samples = self.samples
        samples.append((wall, base))
        span = PACE_SPAN * max(self.reach, 1.0)
        while len(samples) > 2 and base - samples[1][1] >= span:
            samples.popleft()  # keep one sample at least `span` behind
        rate = 1.0
        first_wall, first_base = samples[0]
        if base - first_base >= span and wall > first_wall:
            pace = (base - first_base) / (wall - first_wall)
            rate = min(MAX_RATE, pace) if pace >= FAST else 1.0
        self.current = ClockReading(base, wall, rate, self.reach)
