"""R32 as properties of one call: UIS may deliver a call's notifications twice, late or out of
order, and the product must end in the same cases either way. For calls of every scenario
family of `uis_bodies` (random operators, times, phones, layouts), any permutation of the
notifications with random duplicates gives the same facts, hence the same `decide()` output,
as the typical order, both in a bare CallState and through a cluster of ShardHosts. (Orders
across calls, with the writer and the database: tests/storage/test_pipeline_properties.py.)"""

from __future__ import annotations

import random
from collections import Counter
from dataclasses import dataclass
from datetime import datetime

from call_kit import FAR_FUTURE, LATENESS, Cluster, facts_of, parse
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from callrouter.actors.host import shard_of
from callrouter.domain.call import (
    Answered,
    CallState,
    Ended,
    Finished,
    LiveEffect,
    Offered,
    OfferEnded,
)
from callrouter.domain.case_rules import CallContext, Caller, Decision, Dial, MissedCase, decide
from callrouter.domain.notifications import Notification
from callrouter.testing import uis_bodies as ub

FAMILIES = ("answered", "missed", "voice_menu", "transfer", "softphone", "dial")
PROPERTY = settings(max_examples=150, deadline=None, suppress_health_check=[HealthCheck.too_slow])


@dataclass(frozen=True)
class GeneratedCall:
    family: str
    notes: list[Notification]  # the typical order
    staff_of: dict[int, int]
    dial: Dial | None
    groupable: int | None


@st.composite
def generated_calls(draw: st.DrawFn) -> GeneratedCall:
    family = draw(st.sampled_from(FAMILIES))
    call_id = draw(st.integers(1, 2**40))
    start = draw(st.datetimes(datetime(2020, 1, 1), datetime(2035, 12, 31)))
    phone = draw(st.from_regex(r"7[0-9]{10}", fullmatch=True))
    pool = draw(st.lists(st.integers(1, 10**6), min_size=3, max_size=3, unique=True))
    e1, e2 = pool[0], pool[1]
    common = {"flat": draw(st.booleans()), "rng": random.Random(draw(st.integers(0, 2**32)))}
    answered = draw(st.booleans())
    if family == "answered":
        talk = draw(st.one_of(st.none(), st.integers(1, 3600)))
        events = ub.incoming_answered(call_id, start, phone, e1, talk, **common)
    elif family == "missed":
        rung = draw(st.lists(st.sampled_from(pool), min_size=1, max_size=4))
        events = ub.incoming_missed(call_id, start, phone, rung, **common)
    elif family == "voice_menu":
        events = ub.voice_menu_hangup(call_id, start, phone, **common)
    elif family == "transfer":
        events = ub.transfer(call_id, start, phone, e1, e2, **common)
    elif family == "softphone":
        events = ub.outgoing_softphone(call_id, start, phone, e1, answered, **common)
    else:
        events = ub.outgoing_from_case(
            call_id, start, phone, e1, f"dial-{call_id}", answered, **common
        )
    mapped = draw(st.sets(st.sampled_from(pool)))
    staff_of = {e: 50_000 + e for e in mapped}
    dial = Dial(case_id=77, staff_id=staff_of.get(e1, 49_999)) if family == "dial" else None
    groupable = draw(st.sampled_from([None, 33]))
    return GeneratedCall(family, parse(events), staff_of, dial, groupable)


def decision(call: GeneratedCall, facts: object) -> Decision:
    missed = MissedCase(call.groupable, datetime(2000, 1, 1)) if call.groupable else None
    return decide(CallContext(facts, dial=call.dial, caller=Caller(missed)))  # type: ignore[arg-type]


def check_live_effects(effects: list[LiveEffect]) -> None:
    """Popups are withdrawn only once shown, and everyone shown anything has their live view
    ended (no staff member stays 'ringing' or 'talking' forever)."""
    shown: Counter[int] = Counter()
    ended = [e for e in effects if isinstance(e, Ended)]
    assert len(ended) == 1, effects
    for effect in effects:
        if isinstance(effect, Offered):
            shown[effect.employee_id] += 1
        elif isinstance(effect, OfferEnded):
            assert shown[effect.employee_id] > 0, effects
        if isinstance(effect, Offered | Answered):
            assert effect.employee_id in ended[0].employee_ids, (effect, ended)


@PROPERTY
@given(call=generated_calls(), data=st.data())
def test_r32_any_order_with_duplicates_gives_the_same_facts_and_cases(
    call: GeneratedCall, data: st.DataObject
) -> None:
    extra = data.draw(st.lists(st.sampled_from(call.notes), max_size=6), label="duplicates")
    order = data.draw(st.permutations(call.notes + extra), label="order")
    state = CallState(call.notes[0].call_session_id)
    effects: list[LiveEffect] = []
    for i, n in enumerate(order):
        effects += state.apply(n, float(i), staff_of=call.staff_of)
    effects += state.on_timer(FAR_FUTURE, FAR_FUTURE, LATENESS, 7200)
    done = effects.pop()
    assert isinstance(done, Finished)
    expected = facts_of(call.notes, call.staff_of)
    assert done.facts == expected
    assert decision(call, done.facts) == decision(call, expected)
    check_live_effects(effects)


def _through_cluster(
    call: GeneratedCall, items: list[tuple[Notification, int | None]], shards: int
) -> Cluster:
    cluster = Cluster(shards, call.staff_of)
    cluster.set_clock(min(n.time for n, _ in items).timestamp(), 1000.0)  # the writer's clock
    cluster.inbound([n for n, _ in items], 1000.0, inbox_ids=[i for _, i in items])
    # While the event clock has not passed the call's end by the lateness, nothing finishes.
    assert cluster.finished() == []
    cluster.set_clock(FAR_FUTURE, FAR_FUTURE)
    cluster.tick(FAR_FUTURE)
    return cluster


@PROPERTY
@given(call=generated_calls(), shards=st.integers(1, 4), data=st.data())
def test_r32_shard_hosts_finalize_the_same_call_in_any_order(
    call: GeneratedCall, shards: int, data: st.DataObject
) -> None:
    typical = _through_cluster(call, [(n, i + 1) for i, n in enumerate(call.notes)], shards)
    (expected,) = typical.finished()
    assert expected == facts_of(call.notes, call.staff_of)

    # Resends are new inbox rows; a replay after a restart repeats the same inbox id.
    count = len(call.notes)
    dups = data.draw(
        st.lists(st.tuples(st.integers(0, count - 1), st.booleans()), max_size=6), label="dups"
    )
    items: list[tuple[Notification, int | None]] = [(n, i + 1) for i, n in enumerate(call.notes)]
    items += [
        (call.notes[i], i + 1 if replay else count + 1 + k) for k, (i, replay) in enumerate(dups)
    ]
    order = data.draw(st.permutations(items), label="order")
    cluster = _through_cluster(call, order, shards)
    assert cluster.finished() == [expected]
    assert decision(call, expected) == decision(call, facts_of(call.notes, call.staff_of))
    # Live events only ever reach mapped staff (R2), and every live view ends with the call.
    staff = set(call.staff_of.values())
    assert all(live.staff_id in staff for out in cluster.outputs for live in out.live)
    assert all(a.idle for host in cluster.hosts for a in host.agents.values())
    # Every entity lives on its own shard only.
    for host in cluster.hosts:
        assert all(shard_of(f"agent:{s}", shards) == host.index for s in host.agents)
        assert all(shard_of(f"call:{c}", shards) == host.index for c in host.calls)
