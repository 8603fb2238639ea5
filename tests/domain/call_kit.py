"""Helpers shared by the call, case-rule and shard-host tests: realistic UIS bodies (built by
`callrouter.testing.uis_bodies`) parsed the way the webhook parses them, fed to the pure core,
and a tiny in-process "cluster" of `ShardHost`s that routes forwards like the Ray shell does."""

from __future__ import annotations

from collections import defaultdict
from datetime import UTC, datetime, timedelta
from zoneinfo import ZoneInfo

from callrouter.actors.host import Envelope, Finalize, Inbound, Job, ShardHost, entity_key, shard_of
from callrouter.domain.call import CallFacts, CallState, Finished, LiveEffect
from callrouter.domain.notifications import Kind, Notification
from callrouter.domain.uis import parse_body, parse_notification
from callrouter.testing import uis_bodies as ub

MSK = ZoneInfo("Europe/Moscow")
RECEIVED_AT = datetime(2026, 11, 2, 6, 0, tzinfo=UTC)  # only used when a body has no time
FAR_FUTURE = 1e12  # a wall clock after every deadline
SILENT = 7200.0  # the default silent-call timeout (seconds)


def parse(events: list[ub.Event]) -> list[Notification]:
    """The bodies of a scenario as the webhook would parse them."""
    return [parse_notification(parse_body(ub.encode(b)), MSK, RECEIVED_AT) for _, b in events]


def local(t: datetime) -> datetime:
    """A scenario's naive local time as the parser reads it (Moscow, millisecond precision)."""
    return t.replace(microsecond=t.microsecond // 1000 * 1000, tzinfo=MSK)


def times(events: list[ub.Event], kind: str) -> list[datetime]:
    """The (parsed) times of the scenario's bodies of `kind` (a key of `ub.NAMES`)."""
    return [local(t) for t, b in events if b["notification_name"] == ub.NAMES[kind]]


def feed(state: CallState, notes: list[Notification], start: float = 0.0) -> list[LiveEffect]:
    """Apply `notes` in order, one wall-clock second apart; all the live effects, in order."""
    effects: list[LiveEffect] = []
    for i, n in enumerate(notes):
        effects += state.apply(n, start + i)
    return effects


def steps(state: CallState, notes: list[Notification]) -> list[list[LiveEffect]]:
    """The live effects of each notification, one list per notification."""
    return [state.apply(n, float(i)) for i, n in enumerate(notes)]


def finish(state: CallState, silent_timeout: float = SILENT) -> Finished:
    """Finalize the call (a timer far after every deadline) and return its `Finished`."""
    effects = state.on_timer(FAR_FUTURE, silent_timeout)
    assert len(effects) == 1 and isinstance(effects[0], Finished), effects
    return effects[0]


def facts_of(notes: list[Notification]) -> CallFacts:
    """The facts of a call whose notifications arrive in the given order."""
    state = CallState(notes[0].call_session_id)
    feed(state, notes)
    return finish(state).facts


class Cluster:
    """`count` shard hosts with the Ray shell's routing: forwards are delivered until quiet."""

    def __init__(self, count: int, staff_of: dict[int, int], silent_timeout: float = SILENT):
        self.hosts = [ShardHost(i, count, staff_of, silent_timeout) for i in range(count)]
        self.jobs: list[tuple[int, Job]] = []  # (shard, job) in the order the shards made them

    def host_of(self, env: Envelope) -> ShardHost:
        return self.hosts[shard_of(entity_key(env), len(self.hosts))]

    def deliver(self, envelopes: list[Envelope], now: float) -> None:
        pending: dict[int, list[Envelope]] = defaultdict(list)
        for env in envelopes:
            pending[self.host_of(env).index].append(env)
        self._drain(pending, now)

    def tick(self, now: float) -> None:
        pending: dict[int, list[Envelope]] = defaultdict(list)
        for host in self.hosts:
            out = host.tick(now)
            self.jobs += [(host.index, job) for job in out.jobs]
            for target, envs in out.forwards.items():
                pending[target] += envs
        self._drain(pending, now)

    def _drain(self, pending: dict[int, list[Envelope]], now: float) -> None:
        while pending:
            target, envs = next(iter(pending.items()))
            del pending[target]
            out = self.hosts[target].handle(envs, now)
            self.jobs += [(target, job) for job in out.jobs]
            for other, more in out.forwards.items():
                pending[other] += more

    def finalized(self) -> list[Finalize]:
        return [job for _, job in self.jobs if isinstance(job, Finalize)]

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
