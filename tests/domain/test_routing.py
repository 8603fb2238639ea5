"""Smart routing's pure decision (issue 11 part 1): rules, the callers' index, the counts."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from zoneinfo import ZoneInfo

from hypothesis import given
from hypothesis import strategies as st

from callrouter.domain.routing import (
    Affinity,
    Caller,
    CaseLink,
    RoutingRules,
    decide,
    staff_phones,
    tally,
    uis_phone,
)
from callrouter.domain.wallboard import FinishedCall, Wallboard

ON = RoutingRules(enabled=True, fallback_code=7)
PHONES = {1: ("74950000001",), 2: ("74950000002",), 3: ("74950000003",)}
ACTIVE = frozenset({1, 2, 3})


def _caller(*assignees: int, talked: int | None = None) -> Caller:
    cases = tuple(CaseLink(100 + i, s, 1000.0 - i) for i, s in enumerate(assignees))
    return Caller(cases, talked)


def test_the_free_assignee_of_an_open_case_is_rung() -> None:
    d = decide(ON, _caller(2, talked=3), {2: "free", 3: "free"}, ACTIVE, PHONES)
    assert (d.reason, d.staff_id, d.case_id) == ("open_case_assignee", 2, 100)
    assert d.answer() == {"phones": ["74950000002"]}


def test_a_busy_assignee_gives_way_to_who_last_talked() -> None:
    d = decide(ON, _caller(2, talked=3), {2: "talking", 3: "free"}, ACTIVE, PHONES)
    assert (d.reason, d.staff_id, d.skipped) == ("last_talked", 3, ((2, "busy"),))


def test_nobody_free_falls_through_with_every_reason() -> None:
    states = {1: "ringing", 2: "offline"}
    d = decide(ON, _caller(1, 2, talked=3), states, frozenset({1, 2}), PHONES)
    assert d.answer() == {"returned_code": 7}
    assert d.reason == "no_free_agent"
    assert d.skipped == ((1, "busy"), (2, "offline"), (3, "inactive"))
    d = decide(ON, _caller(1), {1: "free"}, ACTIVE, {})
    assert (d.reason, d.skipped) == ("no_free_agent", ((1, "no_phones"),))


def test_rules_switched_off() -> None:
    caller, states = _caller(2, talked=3), {2: "free", 3: "free"}
    assert decide(RoutingRules(), caller, states, ACTIVE, PHONES).answer() == {"returned_code": 1}
    assert decide(RoutingRules(), caller, states, ACTIVE, PHONES).reason == "disabled"
    no_cases = RoutingRules(enabled=True, open_case=False)
    assert decide(no_cases, caller, states, ACTIVE, PHONES).staff_id == 3
    neither = RoutingRules(enabled=True, open_case=False, last_talked=False)
    assert decide(neither, caller, states, ACTIVE, PHONES).reason == "unknown_caller"
    assert decide(ON, None, states, ACTIVE, PHONES).reason == "unknown_caller"


STATES = st.sampled_from(["free", "ringing", "talking", "offline"])


@given(
    assignees=st.lists(st.integers(1, 6), max_size=4),
    talked=st.none() | st.integers(1, 6),
    states=st.dictionaries(st.integers(1, 6), STATES),
    active=st.frozensets(st.integers(1, 6)),
    with_phones=st.frozensets(st.integers(1, 6)),
    open_case=st.booleans(),
    last_talked=st.booleans(),
)
def test_the_first_available_candidate_wins(
    assignees: list[int],
    talked: int | None,
    states: dict[int, str],
    active: frozenset[int],
    with_phones: frozenset[int],
    open_case: bool,
    last_talked: bool,
) -> None:
    """Whatever the states: the answer rings exactly the first candidate (case assignees in
    case order, then who last talked) that is free, active and has phones, or falls through
    when there is none; nobody else is ever rung."""
    rules = RoutingRules(enabled=True, open_case=open_case, last_talked=last_talked)
    phones = {s: (f"7495000000{s}",) for s in with_phones}
    d = decide(rules, _caller(*assignees, talked=talked), states, active, phones)
    order = [(s, "open_case_assignee") for s in assignees if open_case]
    order += [(talked, "last_talked")] if last_talked and talked else []
    able = [
        (s, why) for s, why in order if states.get(s) == "free" and s in active and s in with_phones
    ]
    if able:
        assert (d.staff_id, d.reason) == able[0] and d.phones == phones[able[0][0]]
    else:
        assert d.answer() == {"returned_code": rules.fallback_code}
        assert d.reason == ("no_free_agent" if order else "unknown_caller")
    assert all(s != d.staff_id for s, _ in d.skipped)


def test_operator_phones_as_uis_takes_them() -> None:
    assert uis_phone("+7 (495) 514-05-78") == "74955140578"
    assert uis_phone("74955140578...2345") == "74955140578...2345"
    assert uis_phone("8 926 000 00 00") == "79260000000"
    assert uis_phone("sip:operator") is None
    pairs = [(1, ["+7 495 000-00-01", "74950000001", "x"]), (1, None), (2, ["2345"]), (3, [])]
    assert staff_phones(pairs) == {1: ("74950000001",), 2: ("2345",)}


def test_the_index_follows_cases_numbers_and_talks() -> None:
    a = Affinity()
    a.add_phone(10, "79260000000", created=5.0)
    a.add_phone(11, "79260000000", created=1.0)  # older: the number is this user's
    a.set_case(1, 10, 2, "open", 50.0)
    assert a.caller("+7 926 000-00-00") is None  # user 11 has no case, nobody talked
    a.set_case(2, 11, 3, "waiting", 10.0)
    a.set_case(3, 11, 1, "open", 20.0)
    caller = a.caller("89260000000")
    assert caller is not None and [c.assignee_id for c in caller.cases] == [1, 3]
    a.set_case(3, 11, 1, "closed", 30.0)
    a.set_case(2, 11, None, "open", 30.0)  # unassigned: nobody to ring
    assert a.caller("79260000000") is None
    a.talk("79260000000", 4, at=100.0)
    a.talk("79260000000", 5, at=90.0)  # an older talk arriving late changes nothing
    assert a.caller("79260000000") == Caller((), 4)
    assert a.caller(None) is None and a.caller("anonymous") is None


@given(st.lists(st.tuples(st.integers(1, 3), st.floats(0, 1e6)), min_size=1))
def test_last_talk_does_not_depend_on_arrival_order(talks: list[tuple[int, float]]) -> None:
    forward, backward = Affinity(), Affinity()
    for staff, at in talks:
        forward.talk("1", staff, at)
    for staff, at in reversed(talks):
        backward.talk("1", staff, at)
    latest = max(at for _, at in talks)
    assert forward.talked["1"][0] == backward.talked["1"][0] == latest


def test_tally_counts_routed_and_reached() -> None:
    routed = [(1, 10), (2, 10), (3, 20), (3, 21)]  # call 3 asked twice: the last routing counts
    talked = {1: [10], 2: [30], 3: [21]}
    assert tally(routed, talked) == {10: [2, 1], 21: [1, 1]}


def test_the_wallboard_counts_routed_calls_in_either_order() -> None:
    tz = ZoneInfo("Europe/Moscow")
    now = datetime.now(UTC)
    board = Wallboard(tz, staff={10, 20})

    def finished(call: int, talked: tuple[tuple[int, int], ...]) -> FinishedCall:
        return FinishedCall(call, "in", now, bool(talked), 3.0, 30, (10, 20), talked)

    board.call_routed(1, 10, now)
    board.call_finished(finished(1, ((10, 30),)))  # routed, then answered by that member
    board.call_finished(finished(2, ((10, 30),)))
    board.call_routed(2, 20, now)  # the routing reached the board late; 10 took it
    board.call_routed(3, 20, now)  # still live
    snap = board.snapshot(now.timestamp(), now.astimezone(tz).date())
    assert snap["routed"] == {"routed": 3, "reached": 1}
    per = {row["staff_id"]: (row["routed"], row["reached"]) for row in snap["per_staff"]}
    assert per == {10: (1, 1), 20: (2, 0)}
    tomorrow = (now + timedelta(days=1)).astimezone(tz).date()
    assert board.snapshot(now.timestamp(), tomorrow)["routed"] == {"routed": 0, "reached": 0}
