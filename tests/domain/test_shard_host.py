"""ShardHost, the pure entity host behind each shard actor: stable routing, a call finished once
the event clock has passed its end by the lateness bound, live events only for mapped staff
(R2, R5, R6), late news of finished calls handed to the writer (R32), one call's failure kept
to that call (STYLE habit 11), retention, agents resynced after a peer's restart, and the read
models (call snapshot, active calls, agent replay)."""

from __future__ import annotations

import zlib
from dataclasses import replace
from datetime import datetime
from typing import Any

from call_kit import FAR_FUTURE, MSK, Cluster, parse

from callrouter.actors.host import (
    RETAIN_SECONDS,
    Inbound,
    Output,
    ShardHost,
    ToAgent,
    entity_key,
    shard_of,
)
from callrouter.domain.clock import ClockReading
from callrouter.domain.notifications import Kind, Notification
from callrouter.testing import uis_bodies as ub

CALL = 237859081
START = datetime(2026, 11, 2, 9, 30)
PHONE = "79261234567"
E1, E2, E9 = 1101, 1102, 1199  # E9 is not mapped
S1, S2 = 501, 502
STAFF_OF = {E1: S1, E2: S2}
LATENESS = 30.0


def host(staff_of: dict[int, int] | None = None, silent_timeout: float = 7200.0) -> ShardHost:
    """A single shard: every entity is local."""
    return ShardHost(0, 1, STAFF_OF if staff_of is None else staff_of, silent_timeout, LATENESS)


def deliver(h: ShardHost, notes: list[Notification], start: float, first_id: int = 1) -> Output:
    """Deliver notes one per second with consecutive inbox ids; everything they produced."""
    total = Output()
    for i, n in enumerate(notes):
        out = h.handle([Inbound(first_id + i, start + i, n)], start + i)
        assert not out.forwards
        total.live += out.live
        total.finished += out.finished
        total.late += out.late
        total.quarantined += out.quarantined
    return total


def clock_at(h: ShardHost, event: datetime | float, wall: float = 0.0) -> None:
    """The writer's event clock stands at `event` (it moves on by itself only while idle)."""
    base = event if isinstance(event, float) else event.timestamp()
    h.clock = ClockReading(base, wall, 1.0, 0.0)


def live_events(out: Output) -> list[tuple[int, str]]:
    return [(live.staff_id, live.event["type"]) for live in out.live]


def has(event: dict[str, Any], **fields: Any) -> bool:
    """The event carries these fields with these values (it may carry more)."""
    return all(event.get(k) == v for k, v in fields.items())


def without(notes: list[Notification], *kinds: Kind) -> list[Notification]:
    return [n for n in notes if n.kind not in kinds]


def end_of(notes: list[Notification]) -> datetime:
    return next(n.time for n in notes if n.kind is Kind.CALL_END)


# -- routing ---------------------------------------------------------------------------------


def test_shard_of_is_a_stable_crc32_not_hash() -> None:
    """The same key lands on the same shard in every process (hash() is salted per process)."""
    keys = [f"call:{i}" for i in range(237859081, 237859089)]
    assert [shard_of(k, 4) for k in keys] == [3, 1, 3, 0, 2, 0, 2, 3]
    assert all(shard_of(k, 4) == zlib.crc32(k.encode()) % 4 for k in keys)
    assert shard_of("agent:501", 8) == 3
    assert all(shard_of(k, 1) == 0 for k in keys)


def test_entity_keys() -> None:
    (n,) = parse(ub.voice_menu_hangup(CALL, START, PHONE))
    assert entity_key(Inbound(1, 0.0, n)) == f"call:{CALL}"
    assert entity_key(ToAgent(S1, "ended", CALL)) == f"agent:{S1}"


def test_envelopes_for_other_shards_are_forwarded_and_local_ones_applied() -> None:
    """An Offered for a staff member on another shard leaves in `forwards`; one for a staff
    member of this shard is applied in the same turn."""
    count = 4
    home = shard_of(f"call:{CALL}", count)
    local_staff = next(s for s in range(1, 1000) if shard_of(f"agent:{s}", count) == home)
    remote_staff = next(s for s in range(1, 1000) if shard_of(f"agent:{s}", count) != home)
    h = ShardHost(home, count, {E1: local_staff, E2: remote_staff})
    # Both operators rung at once (a ring group).
    legs = parse(ub.incoming_missed(CALL, START, PHONE, [E1, E2]))
    first, second = legs[0], legs[2]  # the two leg starts
    out = h.handle([Inbound(1, 0.0, first), Inbound(2, 0.0, replace(second, time=first.time))], 0.0)
    assert h.agents[local_staff].state == "ringing"
    assert remote_staff not in h.agents
    target = shard_of(f"agent:{remote_staff}", count)
    assert [(t, type(e).__name__, e.change) for t, envs in out.forwards.items() for e in envs] == [
        (target, "ToAgent", "offered")
    ]
    assert live_events(out) == [(local_staff, "call.ringing"), (remote_staff, "call.ringing")]


def test_the_end_of_a_call_reaches_the_agents_shards() -> None:
    """Each staff member's agent entity ends its live view at the call end, wherever it
    lives; the finished facts go to the writer from the call's own shard."""
    count = 4
    home = shard_of(f"call:{CALL}", count)
    staff = next(s for s in range(1, 1000) if shard_of(f"agent:{s}", count) != home)
    cluster = Cluster(count, {E1: staff})
    notes = parse(ub.incoming_answered(CALL, START, PHONE, E1))
    cluster.set_clock(START.replace(tzinfo=MSK).timestamp(), 0.0)
    cluster.inbound(without(notes, Kind.RECORDING), 100.0, step=1.0)
    agent_shard = cluster.hosts[shard_of(f"agent:{staff}", count)]
    assert agent_shard.agents == {}  # ringing, talking, ended: passivated when idle
    assert staff not in cluster.hosts[home].agents
    assert cluster.finished() == []
    cluster.set_clock(FAR_FUTURE, 0.0)
    cluster.tick(200.0)
    (facts,) = cluster.finished()
    assert facts.staff() == {E1: staff}


# -- finishing -------------------------------------------------------------------------------


def test_a_call_finishes_when_the_event_clock_passes_its_end_by_the_lateness() -> None:
    h = host()
    notes = without(parse(ub.incoming_answered(CALL, START, PHONE, E1)), Kind.RECORDING)
    end = end_of(notes).timestamp()
    clock_at(h, end - 5)
    deliver(h, notes, 100.0)
    clock_at(h, end + LATENESS - 0.01)
    assert h.tick(110.0).finished == []
    clock_at(h, end + LATENESS)
    (facts,) = h.tick(110.0).finished
    assert facts.conversations[0].employee_id == E1 and facts.staff() == {E1: S1}
    assert h.tick(111.0).finished == []  # once


def test_the_idle_clock_finishes_a_quiet_line() -> None:
    """No news after the call end: the clock moves on by itself (the writer's reading)."""
    h = host()
    notes = without(parse(ub.incoming_answered(CALL, START, PHONE, E1)), Kind.RECORDING)
    h.clock = ClockReading(end_of(notes).timestamp(), 100.0, 1.0, LATENESS)
    deliver(h, notes, 100.0)
    assert h.tick(100.0 + 1.0 + LATENESS - 0.1).finished == []  # 1 s of grace first
    assert len(h.tick(100.0 + 1.0 + LATENESS).finished) == 1


def test_r32_silent_call_is_finished_after_the_timeout_and_its_popup_ends() -> None:
    h = host(silent_timeout=300.0)
    leg_start = parse(ub.incoming_missed(CALL, START, PHONE, [E1]))[0]
    out = deliver(h, [leg_start], 100.0)
    assert live_events(out) == [(S1, "call.ringing")]
    assert h.agents[S1].state == "ringing"
    assert h.tick(399.9).finished == []
    out = h.tick(400.0)
    (facts,) = out.finished
    assert facts.timed_out and facts.offered == (E1,)
    assert live_events(out) == [(S1, "call.ended")]
    assert S1 not in h.agents
    assert h.agent_replay(S1) == []


def test_an_idle_shard_names_its_next_wall_deadline() -> None:
    """Issue 8 (aioquic's get_timer): a shard with only ringing calls asks for no delivery
    before its earliest silent-call deadline; none without calls."""
    h = host(silent_timeout=300.0)
    assert h.next_due() is None
    deliver(h, parse(ub.incoming_missed(CALL, START, PHONE, [E1]))[:1], 100.0)
    other = parse(ub.incoming_missed(CALL + 1, START, PHONE, [E1]))[:1]
    deliver(h, other, 150.0, first_id=10)
    assert h.next_due() == 400.0 and not h.waiting()
    h.tick(400.0)  # the first gave up; the second is next
    assert h.next_due() == 450.0


def test_r2_the_staff_mapping_is_carried_with_the_call() -> None:
    """A mapping changed mid-call changes neither the popups nor the case of that call."""
    h = host()
    notes = without(parse(ub.incoming_answered(CALL, START, PHONE, E1)), Kind.RECORDING)
    deliver(h, notes[:1], 100.0)
    h.configure({E1: S2}, 7200.0, LATENESS)  # the admin remaps E1 while it rings
    out = deliver(h, notes[1:], 101.0, first_id=2)
    assert live_events(out) == [(S1, "call.answered"), (S1, "call.ended")]
    clock_at(h, FAR_FUTURE)
    (facts,) = h.tick(200.0).finished
    assert facts.staff() == {E1: S1}


# -- live events (R2, R5, R6) ----------------------------------------------------------------


def test_r2_r5_live_events_only_for_mapped_staff() -> None:
    h = host()
    notes = parse(ub.incoming_missed(CALL, START, PHONE, [E1, E9, E2]))
    out = deliver(h, notes, 100.0)
    assert live_events(out) == [
        (S1, "call.ringing"),
        (S1, "call.offer_ended"),
        (S2, "call.ringing"),
        (S2, "call.offer_ended"),
        (S1, "call.ended"),
        (S2, "call.ended"),
    ]
    assert h.agents == {}


def test_r2_unmapped_operators_get_nothing_and_the_call_is_still_finished() -> None:
    h = host(staff_of={})
    out = deliver(h, parse(ub.incoming_missed(CALL, START, PHONE, [E9])), 100.0)
    assert out.live == [] and h.agents == {}
    clock_at(h, FAR_FUTURE)
    (facts,) = h.tick(200.0).finished
    assert facts.staff() == {}


def test_r5_r6_live_events_of_an_incoming_call() -> None:
    h = host()
    out = deliver(h, without(parse(ub.transfer(CALL, START, PHONE, E1, E2)), Kind.RECORDING), 0)
    assert live_events(out) == [
        (S1, "call.ringing"),
        (S1, "call.answered"),
        (S2, "call.ringing"),  # the transfer target's phone rings: a popup too
        (S2, "call.answered"),
        (S1, "call.ended"),
        (S2, "call.ended"),
    ]
    ringing = out.live[0]
    assert has(
        ringing.event, type="call.ringing", call_session_id=CALL, direction="in", phone=PHONE
    )


def test_r18_live_events_of_a_call_from_a_case() -> None:
    h = host()
    notes = parse(ub.outgoing_from_case(CALL, START, PHONE, E1, "dial-1", answered=True))
    out = deliver(h, without(notes, Kind.RECORDING), 0)
    assert live_events(out) == [(S1, "call.dialing"), (S1, "call.connected"), (S1, "call.ended")]
    assert has(out.live[0].event, external_id="dial-1", direction="out")


# -- late news (R32) -------------------------------------------------------------------------


def test_r32_news_of_a_finished_call_goes_to_the_writer_and_revives_nothing() -> None:
    h = host()
    notes = without(parse(ub.incoming_answered(CALL, START, PHONE, E1)), Kind.RECORDING)
    deliver(h, notes, 100.0)
    clock_at(h, FAR_FUTURE)
    (facts,) = h.tick(200.0).finished
    resent = replace(notes[0], employee_name="Повтор")  # UIS resends the leg start, changed
    out = h.handle([Inbound(10, 201.0, resent)], 201.0)
    assert out.late == [Inbound(10, 201.0, resent)] and out.live == [] and out.finished == []
    assert h.agents == {}
    # The same stored row again (the writer restarted): the call's facts, once more.
    out = h.handle([Inbound(2, 202.0, notes[1])], 202.0)
    assert out.finished == [facts] and out.late == []


def test_one_calls_failure_stays_its_own() -> None:
    """STYLE habit 11: a call whose entity raises is quarantined with its error; the calls
    handled in the same turn go on, and its later notifications join it."""
    h = host()
    good = parse(ub.incoming_missed(CALL + 1, START, "79260000001", [E1]))
    bad = parse(ub.incoming_missed(CALL, START, PHONE, [E2]))
    poisoned = replace(bad[0], leg_id=-1)
    h.calls[CALL] = _Exploding(CALL)
    out = h.handle(
        [Inbound(1, 0.0, poisoned), *(Inbound(10 + i, 0.0, n) for i, n in enumerate(good))], 0.0
    )
    (q,) = out.quarantined
    assert (q.call_session_id, q.stage, q.inbox_ids) == (CALL, "entity", (1,))
    assert "boom" in q.error
    assert [live.event["call_session_id"] for live in out.live] == [CALL + 1] * 3
    out = h.handle([Inbound(2, 1.0, bad[1])], 1.0)
    (q,) = out.quarantined
    assert q.inbox_ids == (1, 2)
    clock_at(h, FAR_FUTURE)
    assert [f.call_session_id for f in h.tick(10.0).finished] == [CALL + 1]


class _Exploding:
    """A call entity with a bug."""

    def __init__(self, call_session_id: int) -> None:
        self.call_session_id = call_session_id
        self.finished = False
        self.first_at = None
        self.seen: set[int] = set()

    def finish_at(self, lateness: float) -> None:
        return None

    def apply(self, *args: Any, **kwargs: Any) -> list[Any]:
        raise RuntimeError("boom")


def test_agents_of_a_restarted_shard_are_told_again() -> None:
    count = 2
    home = shard_of(f"call:{CALL}", count)
    staff = next(s for s in range(1, 1000) if shard_of(f"agent:{s}", count) != home)
    cluster = Cluster(count, {E1: staff})
    notes = parse(ub.incoming_answered(CALL, START, PHONE, E1))
    cluster.inbound(notes[:2], 100.0)  # E1 is talking
    agents = cluster.hosts[1 - home]
    assert agents.agents[staff].state == "talking"
    agents.agents.clear()  # the shard restarted
    out = cluster.hosts[home].resync_agents(1 - home)
    cluster.deliver(out.forwards[1 - home], 101.0)
    assert agents.agents[staff].state == "talking"


# -- passivation and reads -------------------------------------------------------------------


def test_a_finished_call_is_forgotten_after_its_retention() -> None:
    h = host()
    deliver(h, parse(ub.incoming_missed(CALL, START, PHONE, [E1])), 100.0)
    assert S1 not in h.agents  # idle at once: passivated
    clock_at(h, FAR_FUTURE)
    h.tick(200.0)  # finished
    assert h.call_snapshot(CALL)["state"] == "ended"  # type: ignore[index]
    h.tick(200.0 + RETAIN_SECONDS - 0.01)
    assert CALL in h.calls
    h.tick(200.0 + RETAIN_SECONDS)
    assert CALL not in h.calls and h.call_snapshot(CALL) is None


def test_busy_agents_are_not_passivated() -> None:
    h = host()
    deliver(h, parse(ub.incoming_answered(CALL, START, PHONE, E1))[:2], 100.0)
    h.tick(150.0)
    assert h.agents[S1].state == "talking"


def test_call_snapshot_and_active_calls() -> None:
    h = host()
    assert h.call_snapshot(CALL) is None and h.active_calls() == []
    notes = parse(ub.incoming_answered(CALL, START, PHONE, E1))
    deliver(h, notes[:1], 100.0)
    snap = h.call_snapshot(CALL)
    assert snap == {
        "call_session_id": CALL,
        "direction": "in",
        "state": "ringing",
        "phone": PHONE,
        "employee_ids": [E1],
        "ringing_employee_ids": [E1],
        "talking_employee_ids": [],
        "started_at": notes[0].time,
        "answered_at": None,
        "ended_at": None,
        "employee_of": {S1: E1},
        "staff_ids": [S1],
    }
    assert h.active_calls() == [snap]
    (popup,) = h.agent_replay(S1)
    assert has(popup, type="call.ringing", call_session_id=CALL, direction="in", phone=PHONE)
    deliver(h, notes[1:2], 101.0, first_id=2)
    snap = h.call_snapshot(CALL)
    assert snap is not None
    assert (snap["state"], snap["talking_employee_ids"], snap["answered_at"]) == (
        "talking",
        [E1],
        notes[1].time,
    )
    assert [e["type"] for e in h.agent_replay(S1)] == ["call.answered"]
    deliver(h, notes[2:], 102.0, first_id=3)
    clock_at(h, FAR_FUTURE)
    h.tick(200.0)
    assert h.active_calls() == []
    assert h.call_snapshot(CALL)["state"] == "ended"  # type: ignore[index]
    assert h.agent_replay(S1) == []


def test_active_calls_lists_only_unfinished_calls_and_unmapped_operators_have_no_staff() -> None:
    h = host()
    deliver(h, parse(ub.incoming_missed(CALL, START, PHONE, [E9]))[:1], 0.0)
    deliver(h, parse(ub.voice_menu_hangup(CALL + 1, START, PHONE)), 1.0, first_id=10)
    clock_at(h, FAR_FUTURE)
    h.tick(10.0)  # the voice-menu call is finished
    (snap,) = h.active_calls()
    assert snap["call_session_id"] == CALL
    assert snap["employee_ids"] == [E9] and snap["staff_ids"] == [] and snap["employee_of"] == {}
