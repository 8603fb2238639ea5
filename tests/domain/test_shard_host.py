"""ShardHost, the pure entity host behind each shard actor: stable routing, one Finalize per
call, live events only for mapped staff (R2, R5, R6), late news after finalization (R32),
passivation, and the read models (call snapshot, active calls, agent replay)."""

from __future__ import annotations

import zlib
from dataclasses import replace
from datetime import datetime
from typing import Any

from call_kit import FAR_FUTURE, Cluster, facts_of, parse

from callrouter.actors.host import (
    RETAIN_SECONDS,
    Finalize,
    Inbound,
    Live,
    MarkDone,
    ShardHost,
    StoreRecording,
    ToAgent,
    ToContact,
    entity_key,
    shard_of,
)
from callrouter.domain.call import SETTLE_SECONDS
from callrouter.domain.notifications import Kind, Notification
from callrouter.testing import uis_bodies as ub

CALL = 237859081
START = datetime(2026, 11, 2, 9, 30)
PHONE = "79261234567"
E1, E2, E9 = 1101, 1102, 1199  # E9 is not mapped
S1, S2 = 501, 502
STAFF_OF = {E1: S1, E2: S2}


def host(staff_of: dict[int, int] | None = None, silent_timeout: float = 7200.0) -> ShardHost:
    """A single shard: every entity is local."""
    return ShardHost(0, 1, STAFF_OF if staff_of is None else staff_of, silent_timeout)


def deliver(h: ShardHost, notes: list[Notification], start: float, first_id: int = 1) -> list:
    """Deliver notes one per second with consecutive inbox ids; all jobs, in order."""
    jobs = []
    for i, n in enumerate(notes):
        out = h.handle([Inbound(first_id + i, start + i, n)], start + i)
        assert not out.forwards
        jobs += out.jobs
    return jobs


def live_events(jobs: list) -> list[tuple[int, str]]:
    return [(job.staff_id, job.event["type"]) for job in jobs if isinstance(job, Live)]


def has(event: dict[str, Any], **fields: Any) -> bool:
    """The event carries these fields with these values (it may carry more)."""
    return all(event.get(k) == v for k, v in fields.items())


def without(notes: list[Notification], *kinds: Kind) -> list[Notification]:
    return [n for n in notes if n.kind not in kinds]


# -- routing ---------------------------------------------------------------------------------


def test_shard_of_is_a_stable_crc32_not_hash() -> None:
    """The same key lands on the same shard in every process (hash() is salted per process)."""
    keys = [f"call:{i}" for i in range(237859081, 237859089)]
    assert [shard_of(k, 4) for k in keys] == [3, 1, 3, 0, 2, 0, 2, 3]
    assert all(shard_of(k, 4) == zlib.crc32(k.encode()) % 4 for k in keys)
    assert shard_of("contact:79261234567", 8) == 0
    assert shard_of("agent:501", 8) == 3
    assert all(shard_of(k, 1) == 0 for k in keys)


def test_entity_keys() -> None:
    (n,) = parse(ub.voice_menu_hangup(CALL, START, PHONE))
    facts = facts_of([n])
    assert entity_key(Inbound(1, 0.0, n)) == f"call:{CALL}"
    assert entity_key(ToContact(PHONE, facts, ())) == f"contact:{PHONE}"
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
    assert live_events(out.jobs) == [(local_staff, "call.ringing"), (remote_staff, "call.ringing")]


def test_finalization_is_routed_to_the_contact_and_agents_shards() -> None:
    """The call is finished by its own shard's timer, but the caller's contact entity decides
    and each staff member's agent entity ends its live view, wherever they live."""
    count = 4
    home = shard_of(f"call:{CALL}", count)
    staff = next(s for s in range(1, 1000) if shard_of(f"agent:{s}", count) != home)
    phone = next(
        p for p in (f"7926{i:07d}" for i in range(1000)) if shard_of(f"contact:{p}", count) != home
    )
    cluster = Cluster(count, {E1: staff})
    cluster.inbound(parse(ub.incoming_answered(CALL, START, phone, E1)), 100.0, step=1.0)
    cluster.tick(FAR_FUTURE)
    assert [i for i, job in cluster.jobs if isinstance(job, Finalize)] == [
        shard_of(f"contact:{phone}", count)
    ]
    agent_shard = cluster.hosts[shard_of(f"agent:{staff}", count)]
    assert agent_shard.agents[staff].idle
    assert staff not in cluster.hosts[home].agents


# -- finalization ----------------------------------------------------------------------------


def test_finalize_waits_for_the_settle_window() -> None:
    h = host()
    notes = without(parse(ub.incoming_answered(CALL, START, PHONE, E1)), Kind.RECORDING)
    deliver(h, notes, 100.0)  # the call end arrives at 103
    assert h.tick(103.0 + SETTLE_SECONDS - 0.01).jobs == []
    jobs = h.tick(103.0 + SETTLE_SECONDS).jobs
    assert [type(j) for j in jobs] == [Finalize]
    (job,) = jobs
    assert isinstance(job, Finalize)
    assert job.staff_ids == (S1,) and job.facts.conversations[0].employee_id == E1


def test_a_call_finishing_twice_is_decided_once() -> None:
    """After passivation a late notification re-creates the call entity, which finishes again
    after the silent timeout: the decision is not made twice (R32)."""
    h = host(silent_timeout=600.0)
    notes = without(parse(ub.incoming_answered(CALL, START, PHONE, E1)), Kind.RECORDING)
    deliver(h, notes, 100.0)
    assert [type(j) for j in h.tick(110.0).jobs] == [Finalize]
    h.tick(110.0 + RETAIN_SECONDS + 1)
    assert CALL not in h.calls
    late = next(n for n in notes if n.kind is Kind.LEG_END)
    assert h.handle([Inbound(50, 300.0, late)], 300.0).jobs == []
    assert CALL in h.calls  # a fresh entity: the finished one was passivated
    # It finishes a second time; its contact was passivated too, so storage gets the finish
    # again, and its `finalized` flag makes it a no-op that marks the late row handled.
    assert [type(j) for j in h.tick(300.0 + 600.0).jobs] == [Finalize]
    assert h.calls[CALL].finished
    # While the contact is alive, a repeated finish only marks the call's late rows handled.
    other = host()
    env = ToContact(PHONE, facts_of(notes), (S1,))
    assert other.handle([env], 0.0).jobs == [Finalize(env.facts, (S1,))]
    assert other.handle([env], 1.0).jobs == [MarkDone((), CALL)]


def test_r32_silent_call_is_finalized_after_the_timeout_and_its_popup_ends() -> None:
    h = host(silent_timeout=300.0)
    leg_start = parse(ub.incoming_missed(CALL, START, PHONE, [E1]))[0]
    jobs = deliver(h, [leg_start], 100.0)
    assert live_events(jobs) == [(S1, "call.ringing")]
    assert h.agents[S1].state == "ringing"
    assert h.tick(399.9).jobs == []
    (job,) = h.tick(400.0).jobs
    assert isinstance(job, Finalize) and job.facts.timed_out
    assert job.facts.offered == (E1,) and job.staff_ids == (S1,)
    assert h.agents[S1].idle
    assert h.agent_replay(S1) == []


# -- live events (R2, R5, R6) ----------------------------------------------------------------


def test_r2_r5_live_jobs_only_for_mapped_staff() -> None:
    h = host()
    notes = parse(ub.incoming_missed(CALL, START, PHONE, [E1, E9, E2]))
    jobs = deliver(h, notes, 100.0)
    assert live_events(jobs) == [
        (S1, "call.ringing"),
        (S1, "call.offer_ended"),
        (S2, "call.ringing"),
        (S2, "call.offer_ended"),
    ]
    assert set(h.agents) == {S1, S2}


def test_r2_unmapped_operators_get_nothing_and_the_call_is_still_finalized() -> None:
    h = host(staff_of={})
    jobs = deliver(h, parse(ub.incoming_missed(CALL, START, PHONE, [E9])), 100.0)
    assert jobs == [] and h.agents == {}
    (job,) = h.tick(FAR_FUTURE).jobs
    assert isinstance(job, Finalize) and job.staff_ids == ()


def test_r5_r6_live_events_of_an_incoming_call() -> None:
    h = host()
    jobs = deliver(h, without(parse(ub.transfer(CALL, START, PHONE, E1, E2)), Kind.RECORDING), 0)
    assert live_events(jobs) == [
        (S1, "call.ringing"),
        (S1, "call.answered"),
        (S2, "call.ringing"),  # the transfer target's phone rings: a popup too
        (S2, "call.answered"),
    ]
    ringing = next(j for j in jobs if isinstance(j, Live))
    assert has(
        ringing.event, type="call.ringing", call_session_id=CALL, direction="in", phone=PHONE
    )


def test_r18_live_events_of_a_call_from_a_case() -> None:
    h = host()
    notes = parse(ub.outgoing_from_case(CALL, START, PHONE, E1, "dial-1", answered=True))
    jobs = deliver(h, notes, 0)
    assert live_events(jobs) == [(S1, "call.dialing"), (S1, "call.connected")]
    (stored,) = [j for j in jobs if isinstance(j, StoreRecording)]
    assert stored.inbox_id == len(notes)


# -- late news (R32) -------------------------------------------------------------------------


def test_r32_late_notification_after_finalization_is_marked_done() -> None:
    h = host()
    notes = parse(ub.incoming_answered(CALL, START, PHONE, E1))
    recording = next(n for n in notes if n.kind is Kind.RECORDING)
    deliver(h, without(notes, Kind.RECORDING), 100.0)
    assert [type(j) for j in h.tick(200.0).jobs] == [Finalize]
    duplicate = notes[0]  # UIS resends the leg start
    assert h.handle([Inbound(10, 201.0, duplicate)], 201.0).jobs == [MarkDone((10,))]
    assert h.handle([Inbound(10, 202.0, duplicate)], 202.0).jobs == []  # replayed row
    assert h.handle([Inbound(None, 203.0, duplicate)], 203.0).jobs == []
    assert h.handle([Inbound(2, 204.0, notes[1])], 204.0).jobs == []  # applied before
    # A recording is stored whenever it comes: it is attached to the call's messages.
    assert h.handle([Inbound(11, 205.0, recording)], 205.0).jobs == [StoreRecording(recording, 11)]
    assert h.agents.get(S1) is None or h.agents[S1].idle


# -- passivation and reads -------------------------------------------------------------------


def test_passivation_after_retain_seconds() -> None:
    h = host()
    deliver(h, parse(ub.incoming_missed(CALL, START, PHONE, [E1])), 100.0)
    h.tick(200.0)  # finalized
    assert h.call_snapshot(CALL) is not None
    assert S1 in h.agents  # idle, passivated on the next tick
    h.tick(200.0 + RETAIN_SECONDS)
    assert S1 not in h.agents
    assert CALL in h.calls and h.call_snapshot(CALL)["state"] == "ended"  # type: ignore[index]
    h.tick(200.0 + RETAIN_SECONDS + 0.01)
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
    h.tick(FAR_FUTURE)
    assert h.active_calls() == []
    assert h.call_snapshot(CALL)["state"] == "ended"  # type: ignore[index]
    assert h.agent_replay(S1) == []


def test_active_calls_lists_only_unfinished_calls_and_unmapped_operators_have_no_staff() -> None:
    h = host()
    deliver(h, parse(ub.incoming_missed(CALL, START, PHONE, [E9]))[:1], 0.0)
    deliver(h, parse(ub.voice_menu_hangup(CALL + 1, START, PHONE)), 1.0, first_id=10)
    h.tick(10.0)  # the voice-menu call settles and is finished
    (snap,) = h.active_calls()
    assert snap["call_session_id"] == CALL
    assert snap["employee_ids"] == [E9] and snap["staff_ids"] == [] and snap["employee_of"] == {}
