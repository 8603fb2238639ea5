"""Helpers shared by the call, case-rule and shard-host tests: realistic UIS bodies (built by
`callrouter.testing.uis_bodies`) parsed the way the webhook parses them, fed to the pure core,
and a tiny in-process "cluster" of `ShardHost`s that routes forwards like the Ray shell does."""

from __future__ import annotations

from collections import defaultdict
from datetime import UTC, datetime, timedelta
from zoneinfo import ZoneInfo

from callrouter.actors.host import Envelope, Inbound, Output, ShardHost, entity_key, shard_of
from callrouter.domain.call import CallFacts, CallState, Finished, LiveEffect
from callrouter.domain.clock import ClockReading
from callrouter.domain.notifications import Kind, Notification
from callrouter.domain.uis import parse_body, parse_notification
from callrouter.testing import uis_bodies as ub

MSK = ZoneInfo("Europe/Moscow")
RECEIVED_AT = datetime(
    2040, 1, 1, tzinfo=UTC
)  # after every generated call (the parser refuses the future)
FAR_FUTURE = 1e12  # a wall clock (and event clock) after every deadline
SILENT = 7200.0  # the default silent-call timeout (seconds)
LATENESS = 30.0  # the default lateness bound (seconds)


def parse(events: list[ub.Event]) -> list[Notification]:
    """The bodies of a scenario as the webhook would parse them."""
    return [parse_notification(parse_body(ub.encode(b)), MSK, RECEIVED_AT) for _, b in events]


def local(t: datetime) -> datetime:
    """A scenario's naive local time as the parser reads it (Moscow, millisecond precision)."""
    return t.replace(microsecond=t.microsecond // 1000 * 1000, tzinfo=MSK)


def times(events: list[ub.Event], kind: str) -> list[datetime]:
    """The (parsed) times of the scenario's bodies of `kind` (a key of `ub.NAMES`)."""
    return [local(t) for t, b in events if b["notification_name"] == ub.NAMES[kind]]


def feed(
    state: CallState,
    notes: list[Notification],
    start: float = 0.0,
    staff_of: dict[int, int] | None = None,
) -> list[LiveEffect]:
    """Apply `notes` in order, one wall-clock second apart; all the live effects, in order."""
    effects: list[LiveEffect] = []
    for i, n in enumerate(notes):
        effects += state.apply(n, start + i, staff_of=staff_of)
    return effects


def steps(state: CallState, notes: list[Notification]) -> list[list[LiveEffect]]:
    """The live effects of each notification, one list per notification."""
    return [state.apply(n, float(i)) for i, n in enumerate(notes)]


def finish(state: CallState, silent_timeout: float = SILENT) -> Finished:
    """Finish the call (timers far after every deadline) and return its `Finished`."""
    effects = state.on_timer(FAR_FUTURE, FAR_FUTURE, LATENESS, silent_timeout)
    done = [e for e in effects if isinstance(e, Finished)]
    assert len(done) == 1, effects
    return done[0]


def facts_of(notes: list[Notification], staff_of: dict[int, int] | None = None) -> CallFacts:
    """The facts of a call whose notifications arrive in the given order."""
    state = CallState(notes[0].call_session_id)
    feed(state, notes, staff_of=staff_of)
    return finish(state).facts


class Cluster:
    """`count` shard hosts with the Ray shell's routing: forwards are delivered until quiet,
    and every output is kept in `outputs`, in the order the shards made them."""

    def __init__(
        self,
        count: int,
        staff_of: dict[int, int],
        silent_timeout: float = SILENT,
        lateness: float = LATENESS,
    ):
        self.hosts = [ShardHost(i, count, staff_of, silent_timeout, lateness) for i in range(count)]
        self.outputs: list[Output] = []

    def host_of(self, env: Envelope) -> ShardHost:
        return self.hosts[shard_of(entity_key(env), len(self.hosts))]

    def set_clock(self, event_time: float, wall: float) -> None:
        """Every shard's event clock stands at `event_time` at wall time `wall`."""
        for host in self.hosts:
            host.clock = ClockReading(event_time, wall, 1.0, 0.0)

    def deliver(self, envelopes: list[Envelope], now: float) -> None:
        pending: dict[int, list[Envelope]] = defaultdict(list)
        for env in envelopes:
            pending[self.host_of(env).index].append(env)
        self._drain(pending, now)

    def tick(self, now: float) -> None:
        pending: dict[int, list[Envelope]] = defaultdict(list)
        for host in self.hosts:
            out = host.tick(now)
            self.outputs.append(out)
            for target, envs in out.forwards.items():
                pending[target] += envs
        self._drain(pending, now)

    def _drain(self, pending: dict[int, list[Envelope]], now: float) -> None:
        while pending:
            target, envs = next(iter(pending.items()))
            del pending[target]
            out = self.hosts[target].handle(envs, now)
            self.outputs.append(out)
            for other, more in out.forwards.items():
                pending[other] += more

    def finished(self) -> list[CallFacts]:
        return [f for out in self.outputs for f in out.finished]

    def inbound(
        self,
        notes: list[Notification],
        start: float,
        step: float = 0.01,
        inbox_ids: list[int | None] | None = None,
    ) -> None:
        """Deliver `notes` one by one, `step` seconds apart, ticking between them as the
        shell's timer loop would. Inbox ids default to 1, 2, … (each a stored notification)."""
        ids = inbox_ids if inbox_ids is not None else list(range(1, len(notes) + 1))
        for i, (n, inbox_id) in enumerate(zip(notes, ids, strict=True)):
            now = start + i * step
            self.deliver([Inbound(inbox_id, now, n)], now)
            self.tick(now)


def call_start(events: list[ub.Event]) -> datetime:
    """When the caller started waiting: the first notification, or earlier by the call end's
    total duration (a voice menu or queue before any leg: R31 counts that wait)."""
    notes = parse(events)
    first = min(n.time for n in notes)
    ends = [n for n in notes if n.kind is Kind.CALL_END and n.total_seconds]
    if not ends:
        return first
    return min(first, ends[0].time - timedelta(seconds=ends[0].total_seconds or 0))
