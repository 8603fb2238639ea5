"""CallState, the pure state machine of one call: the typical orders of UIS.md give the right
facts, live effects follow R5/R6, and a call is finished once the event clock has passed its
end by the lateness bound, or after the silent timeout (R32). Bodies are the realistic ones of `callrouter.testing.uis_bodies`."""

from __future__ import annotations

from datetime import datetime, timedelta

import pytest
from call_kit import MSK, call_start, facts_of, feed, finish, parse, steps, times

from callrouter.domain.call import (
    Answered,
    CallFacts,
    CallState,
    Conversation,
    Ended,
    Finished,
    Offered,
    OfferEnded,
)
from callrouter.domain.case_rules import CallContext, Decision
from callrouter.domain.case_rules import decide as decide_context
from callrouter.domain.notifications import Kind, Notification
from callrouter.testing import uis_bodies as ub

CALL = 237859081
START = datetime(2026, 11, 2, 9, 30)
PHONE = "79261234567"
E1, E2, E3 = 1101, 1102, 1103
T0 = datetime(2026, 11, 2, 9, 30, tzinfo=MSK)


def note(kind: Kind, seconds: float, **fields: object) -> Notification:
    """A hand-made notification of call CALL, `seconds` after T0 (incoming unless told)."""
    values: dict[str, object] = {"phone": PHONE, "direction": "in"} | fields
    return Notification(kind, CALL, T0 + timedelta(seconds=seconds), **values)  # type: ignore[arg-type]


def decide(facts: CallFacts) -> Decision:
    """The decision for a call whose operator E1 is staff member 501."""
    mapped = CallFacts(
        **{**{f: getattr(facts, f) for f in facts.__slots__}, "staff_of": ((E1, 501),)}
    )
    return decide_context(CallContext(mapped))


def _talk(events: list[ub.Event], kind: str = "call_end") -> int:
    """The talk time UIS reported in the (only) body of `kind`."""
    (n,) = [n for n in parse(events) if n.kind == Kind(kind)]
    assert n.talk_seconds is not None
    return n.talk_seconds


# -- the typical orders of UIS.md -------------------------------------------------------------


def test_r11_incoming_answered_typical_order() -> None:
    """leg out(E1) → pick-up(E1) → leg end(E1) → call end → recorded: popup, answer (R5, R6),
    one conversation with the call end's talk time."""
    events = ub.incoming_answered(CALL, START, PHONE, E1, talk_seconds=95)
    state = CallState(CALL)
    assert steps(state, parse(events)) == [
        [Offered(E1, CALL, "in", PHONE)],
        [Answered(E1, CALL, PHONE, "in")],
        [],
        [Ended(CALL, (E1,))],  # the call end: everyone's live view of it ends
        [],
    ]
    done = finish(state)
    (_one_leg_start,), (answer,), (leg_end,) = (
        times(events, k) for k in ("leg_start", "answer", "leg_end")
    )
    (call_end,) = times(events, "call_end")
    assert done.facts == CallFacts(
        call_session_id=CALL,
        direction="in",
        phone=PHONE,
        external_id=None,
        started_at=call_start(events),
        ended_at=call_end,
        offered=(E1,),
        conversations=(Conversation(E1, answer, leg_end, 95),),
        staff_employee_id=None,
        user_answered=False,
        talk_seconds=95,
        timed_out=False,
    )


def test_r15_incoming_missed_typical_order() -> None:
    """leg out(E1) → leg end(E1) → leg out(E2) → leg end(E2) → call end (lost): each popup is
    shown then withdrawn when its leg ends unanswered (R5); both were offered, in order."""
    events = ub.incoming_missed(CALL, START, PHONE, [E1, E2])
    state = CallState(CALL)
    assert steps(state, parse(events)) == [
        [Offered(E1, CALL, "in", PHONE)],
        [OfferEnded(E1, CALL)],
        [Offered(E2, CALL, "in", PHONE)],
        [OfferEnded(E2, CALL)],
        [Ended(CALL, (E1, E2))],
    ]
    done = finish(state)
    assert done.facts.offered == (E1, E2)
    assert done.facts.conversations == ()
    assert done.facts.direction == "in"
    assert done.facts.started_at == call_start(events)
    assert done.facts.ended_at == times(events, "call_end")[0]
    assert (done.facts.talk_seconds, done.facts.timed_out) == (0, False)


def test_r15_voice_menu_hangup_is_a_call_end_only() -> None:
    """A caller who hangs up in the voice menu: no popup, nobody offered, no conversation."""
    events = ub.voice_menu_hangup(CALL, START, PHONE)
    state = CallState(CALL)
    assert steps(state, parse(events)) == [[Ended(CALL, ())]]
    done = finish(state)
    (call_end,) = times(events, "call_end")
    assert done.facts.offered == () and done.facts.conversations == ()
    assert done.facts.ended_at == call_end
    assert done.facts.started_at == call_start(events)  # the voice menu counts as waiting
    assert done.facts.phone == PHONE


def test_r13_transfer_typical_order() -> None:
    """E1 answers and transfers to E2: E2's phone rings while E1 talks, so E2 gets a popup
    (R5); each staff member's conversation is its own, with its own talk time (R13)."""
    events = ub.transfer(CALL, START, PHONE, E1, E2)
    state = CallState(CALL)
    assert steps(state, parse(events)) == [
        [Offered(E1, CALL, "in", PHONE)],
        [Answered(E1, CALL, PHONE, "in")],
        [Offered(E2, CALL, "in", PHONE)],
        [Answered(E2, CALL, PHONE, "in")],
        [],
        [],
        [Ended(CALL, (E1, E2))],
        [],
        [],
    ]
    facts = finish(state).facts
    answers, ends = times(events, "answer"), times(events, "leg_end")
    assert facts.offered == (E1, E2)
    assert facts.conversations == tuple(
        Conversation(e, a, end, int((end - a).total_seconds()))
        for e, a, end in zip((E1, E2), answers, ends, strict=True)
    )
    assert facts.talk_seconds == _talk(events)
    assert facts.staff_employee_id is None and facts.user_answered is False


@pytest.mark.parametrize("answered", [True, False])
def test_r14_outgoing_from_softphone(answered: bool) -> None:
    """outgoing call(E1) → leg out(user) → [pick-up] → leg end → call end: the caller is shown
    in the call at once; the user answered iff they picked up; no one is 'offered'."""
    events = ub.outgoing_softphone(CALL, START, PHONE, E1, answered)
    state = CallState(CALL)
    per = steps(state, parse(events))
    assert per[0] == [Answered(E1, CALL, PHONE, "out")]
    assert [e for e in per[1:] if e] == [[Ended(CALL, (E1,))]]
    facts = finish(state).facts
    assert facts == CallFacts(
        call_session_id=CALL,
        direction="out",
        phone=PHONE,
        external_id=None,
        started_at=call_start(events),
        ended_at=times(events, "call_end")[0],
        offered=(),
        conversations=(),
        staff_employee_id=E1,
        user_answered=answered,
        talk_seconds=_talk(events),
        timed_out=False,
    )
    assert (facts.talk_seconds > 0) is answered


@pytest.mark.parametrize("answered", [True, False])
def test_r18_r19_r20_outgoing_from_a_case(answered: bool) -> None:
    """Call API call, staff phone first: the staff member's phone rings (dialing) then is
    answered; the user answered iff a pick-up happened on a leg other than the staff's."""
    events = ub.outgoing_from_case(CALL, START, PHONE, E1, "dial-7", answered)
    state = CallState(CALL)
    per = steps(state, parse(events))
    # Dialing until the user picks up (R18); only then connected (R19); never connected
    # for an attempt (R20), where the dialing ends with the call.
    after = [Answered(E1, CALL, PHONE, "out")] if answered else [OfferEnded(E1, CALL)]
    assert [e for e in per if e] == [
        [Offered(E1, CALL, "out", PHONE)],
        after,
        [Ended(CALL, (E1,))],
    ]
    facts = finish(state).facts
    assert facts.direction == "out" and facts.external_id == "dial-7"
    assert facts.staff_employee_id == E1
    assert facts.user_answered is answered
    assert facts.talk_seconds == _talk(events)
    assert facts.started_at == call_start(events)
    assert facts.offered == () and facts.conversations == ()


@pytest.mark.parametrize("flat", [False, True])
def test_r4_flat_layout_gives_the_same_facts(flat: bool) -> None:
    nested = facts_of(parse(ub.transfer(CALL, START, PHONE, E1, E2)))
    assert facts_of(parse(ub.transfer(CALL, START, PHONE, E1, E2, flat=flat))) == nested


# -- live effects --------------------------------------------------------------------------


def test_r5_popup_withdrawn_when_another_operator_answers() -> None:
    state = CallState(CALL)
    assert state.apply(note(Kind.LEG_START, 0, employee_id=E1, leg_id=1), 0) == [
        Offered(E1, CALL, "in", PHONE)
    ]
    assert state.apply(note(Kind.LEG_START, 0.2, employee_id=E2, leg_id=2), 1) == [
        Offered(E2, CALL, "in", PHONE)
    ]
    assert state.apply(note(Kind.ANSWER, 5, employee_id=E2, leg_id=2), 2) == [
        OfferEnded(E1, CALL),
        Answered(E2, CALL, PHONE, "in"),
    ]
    # E1's leg ending afterwards withdraws nothing more.
    assert state.apply(note(Kind.LEG_END, 5.1, employee_id=E1, leg_id=1, is_operator=True), 3) == []


def test_r5_no_popup_for_a_leg_already_answered_ended_or_after_the_call_end() -> None:
    state = CallState(CALL)
    # Swapped: the pick-up arrives before its leg start.
    assert state.apply(note(Kind.ANSWER, 3, employee_id=E1, leg_id=1), 0) == [
        Answered(E1, CALL, PHONE, "in")
    ]
    assert state.apply(note(Kind.LEG_START, 0, employee_id=E1, leg_id=1), 1) == []
    # A leg whose end arrived first never rings.
    assert state.apply(note(Kind.LEG_END, 9, employee_id=E2, leg_id=2, is_operator=True), 2) == []
    assert state.apply(note(Kind.LEG_START, 1, employee_id=E2, leg_id=2), 3) == []
    state.apply(note(Kind.CALL_END, 60, is_lost=False, talk_seconds=57, employee_id=E1), 4)
    assert state.apply(note(Kind.LEG_START, 30, employee_id=E3, leg_id=3), 5) == []


def test_r32_duplicates_cause_no_effects_and_change_no_facts() -> None:
    notes = parse(ub.transfer(CALL, START, PHONE, E1, E2))
    state = CallState(CALL)
    for i, n in enumerate(notes):
        first = state.apply(n, 2.0 * i)
        assert state.apply(n, 2.0 * i + 1) == [], n.kind
        if n.kind in (Kind.LEG_START, Kind.ANSWER):
            assert first
    assert finish(state).facts == facts_of(notes)


def test_r32_an_inbox_id_is_applied_once() -> None:
    """The inbox id is the idempotency key of a stored notification (a replay after restart)."""
    state = CallState(CALL)
    assert state.apply(note(Kind.LEG_START, 0, employee_id=E1, leg_id=1), 0, inbox_id=7)
    assert state.apply(note(Kind.LEG_START, 0, employee_id=E1, leg_id=1), 1, inbox_id=7) == []
    assert state.apply(note(Kind.ANSWER, 2, employee_id=E1, leg_id=1), 2, inbox_id=7) == []
    assert state.legs["l1"].answered_at is None


# -- finalization ---------------------------------------------------------------------------


def test_r32_a_call_is_finished_when_the_event_clock_passes_its_end_by_the_lateness() -> None:
    notes = parse(ub.incoming_answered(CALL, START, PHONE, E1, talk_seconds=40))
    leg_end = next(n for n in notes if n.kind is Kind.LEG_END)
    call_end = next(n for n in notes if n.kind is Kind.CALL_END)
    state = CallState(CALL)
    feed(state, [n for n in notes if n is not leg_end and n.kind is not Kind.RECORDING], 100.0)
    end = call_end.time.timestamp()
    assert state.finish_at(30) == end + 30
    assert state.on_timer(end + 29.999, 110.0, 30, 7200) == []
    # A swapped leg end delivered within the lateness bound still counts.
    assert state.apply(leg_end, 120.0) == []
    assert state.finish_at(30) == end + 30  # it does not move
    effects = state.on_timer(end + 30, 121.0, 30, 7200)
    assert [type(e) for e in effects] == [Finished]  # Ended went at the call end already
    (done,) = effects
    assert isinstance(done, Finished)
    assert done.facts.timed_out is False
    assert done.facts.ended_at == call_end.time
    assert done.facts.conversations[0].ended_at == leg_end.time


def test_r5_the_live_view_ends_at_the_call_end_not_at_the_decision() -> None:
    notes = parse(ub.incoming_answered(CALL, START, PHONE, E1, talk_seconds=40))
    call_end = next(n for n in notes if n.kind is Kind.CALL_END)
    state = CallState(CALL)
    before = feed(state, [n for n in notes if n.kind in (Kind.LEG_START, Kind.ANSWER)])
    assert [type(e) for e in before] == [Offered, Answered]
    assert state.apply(call_end, 10.0) == [Ended(CALL, (E1,))]
    assert state.live_view() == (frozenset(), frozenset())


def test_r32_silent_answered_call_is_finalized_answered_after_the_timeout() -> None:
    """No leg end, no call end: after `silent_timeout` without news the call is closed with
    the outcome it had (someone picked up → answered), marked timed out."""
    notes = [
        n
        for n in parse(ub.incoming_answered(CALL, START, PHONE, E1))
        if n.kind in (Kind.LEG_START, Kind.ANSWER)
    ]
    state = CallState(CALL)
    state.apply(notes[0], 10.0)
    assert state.silent_until(300) == 310.0
    state.apply(notes[1], 50.0)  # news postpones the deadline
    assert state.silent_until(300) == 350.0
    assert state.on_timer(1e12, 349.9, 30, 300) == []  # no end: the event clock cannot finish it
    ended, done = state.on_timer(1e12, 350.0, 30, 300)
    assert ended == Ended(CALL, (E1,))
    assert isinstance(done, Finished)
    facts = done.facts
    assert facts.timed_out is True
    assert [c.employee_id for c in facts.conversations] == [E1]
    assert facts.ended_at == notes[1].time  # the last thing we heard
    assert decide(facts).outcome == "answered"


def test_r32_silent_unanswered_call_is_finalized_missed_after_the_timeout() -> None:
    state = CallState(CALL)
    state.apply(note(Kind.LEG_START, 0, employee_id=E1, leg_id=1), 5.0)
    assert state.on_timer(0, 5.0 + 600 - 0.5, 30, 600) == []
    ended, done = state.on_timer(0, 5.0 + 600, 30, 600)
    assert ended == Ended(CALL, (E1,))  # the popup of E1 ends too
    assert isinstance(done, Finished)
    assert done.facts.timed_out is True
    assert done.facts.offered == (E1,) and done.facts.conversations == ()
    assert decide(done.facts).outcome == "missed"


def test_r32_silent_outgoing_call_keeps_the_users_answer() -> None:
    notes = [
        n
        for n in parse(ub.outgoing_softphone(CALL, START, PHONE, E1, answered=True))
        if n.kind in (Kind.OUTGOING_CALL, Kind.LEG_START, Kind.ANSWER)
    ]
    state = CallState(CALL)
    feed(state, notes)
    facts = finish(state).facts
    assert facts.timed_out is True
    assert facts.user_answered is True and facts.staff_employee_id == E1


def test_nothing_happens_after_the_call_is_finished() -> None:
    notes = parse(ub.incoming_missed(CALL, START, PHONE, [E1]))
    state = CallState(CALL)
    feed(state, notes)
    done = finish(state)
    assert state.finished
    late = [note(Kind.LEG_START, 500, employee_id=E2, leg_id=9), *notes]
    assert all(state.apply(n, 1000.0 + i) == [] for i, n in enumerate(late))
    assert state.apply(notes[0], 2000.0, inbox_id=99) == []
    assert state.on_timer(1e13, 1e13, 30, 1.0) == []
    assert state.facts(timed_out=done.facts.timed_out) == done.facts


# -- gaps and edge cases (R15, R32) -----------------------------------------------------------


def test_r32_call_end_tells_who_talked_when_the_pick_up_is_lost() -> None:
    events = ub.incoming_answered(CALL, START, PHONE, E1, talk_seconds=70)
    notes = [n for n in parse(events) if n.kind is not Kind.ANSWER]
    facts = facts_of(notes)
    assert [(c.employee_id, c.talk_seconds) for c in facts.conversations] == [(E1, 70)]
    assert decide(facts).outcome == "answered"


def test_r19_dial_user_answered_from_the_call_end_when_the_pick_up_is_lost() -> None:
    """UIS.md: the user answered iff a pick-up happened on a non-staff leg, or the call end
    reports talk time > 0 and is_lost false."""
    events = ub.outgoing_from_case(CALL, START, PHONE, E1, "dial-7", answered=True)
    notes = parse(events)
    user_answer = [n for n in notes if n.kind is Kind.ANSWER][1]
    facts = facts_of([n for n in notes if n is not user_answer])
    assert facts.user_answered is True
    assert facts.talk_seconds == _talk(events)


def test_r15_an_operator_rung_again_is_the_last_offered() -> None:
    """A queue that rings E1, E2, then E1 again: E1 was offered last (the R15 assignee)."""
    events = ub.incoming_missed(CALL, START, PHONE, [E1, E2, E1])
    assert facts_of(parse(events)).offered == (E2, E1)


def test_finished_names_the_softphone_caller_even_without_legs() -> None:
    """The caller is shown 'talking' from the outgoing call on; their live view must end even
    when no leg notification names them (here: the user was busy, call end only)."""
    state = CallState(CALL)
    out = {"direction": "out", "employee_id": E1}
    assert state.apply(note(Kind.OUTGOING_CALL, 0, **out), 0) == [Answered(E1, CALL, PHONE, "out")]
    state.apply(note(Kind.CALL_END, 4, is_lost=True, talk_seconds=0, **out), 1)
    assert state.apply(note(Kind.LEG_END, 5), 2) == []
    done = finish(state)
    assert done.facts.staff_employee_id == E1
    assert done.facts.staff_employee_id == E1 and done.facts.user_answered is False


def test_snapshot_follows_the_call() -> None:
    notes = parse(ub.incoming_answered(CALL, START, PHONE, E1))
    state = CallState(CALL)
    state.apply(notes[0], 0)
    snap = state.snapshot()
    assert snap["state"] == "ringing" and snap["ringing_employee_ids"] == [E1]
    assert snap["employee_ids"] == [E1] and snap["answered_at"] is None
    state.apply(notes[1], 1)
    snap = state.snapshot()
    assert snap["state"] == "talking" and snap["talking_employee_ids"] == [E1]
    assert snap["answered_at"] == notes[1].time and snap["ringing_employee_ids"] == []
    feed(state, notes[2:], 2)
    snap = state.snapshot()
    assert snap["state"] == "ended" and snap["talking_employee_ids"] == []
    assert snap["started_at"] == notes[0].time and snap["direction"] == "in"
