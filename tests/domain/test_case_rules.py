"""decide(): the case rules R11–R24 as a pure function of one call's context — its facts (with
the staff mapping it carried), staff actions, drafts, the dial, the caller's missed-call case.
One test per rule, named after it."""

from __future__ import annotations

from dataclasses import replace
from datetime import datetime, timedelta

from call_kit import MSK

from callrouter.domain.call import CallFacts, Conversation
from callrouter.domain.case_rules import (
    INCOMING_SUBJECT,
    MISSED_SUBJECT,
    OUTGOING_SUBJECT,
    AddMessage,
    CallContext,
    Caller,
    CallMessage,
    CreateCase,
    Decision,
    Dial,
    Draft,
    FinishMessage,
    MissedCase,
    NewCase,
    SetStatus,
    StaffAction,
    decide,
)
from callrouter.domain.case_status import Trigger

PHONE = "79261234567"
T0 = datetime(2026, 11, 2, 9, 30, tzinfo=MSK)
E1, E2, E3, E9 = 1101, 1102, 1103, 1199  # UIS operators; E9 is not mapped to staff
S1, S2, S3 = 501, 502, 503
STAFF_OF = {E1: S1, E2: S2, E3: S3}


def conv(employee: int, at: float, talk: int) -> Conversation:
    answered = T0 + timedelta(seconds=at)
    return Conversation(employee, answered, answered + timedelta(seconds=talk), talk)


def incoming(*conversations: Conversation, offered: tuple[int, ...] | None = None) -> CallFacts:
    """An incoming call; `offered` defaults to whoever talked."""
    return CallFacts(
        call_session_id=1,
        direction="in",
        phone=PHONE,
        external_id=None,
        started_at=T0,
        ended_at=T0 + timedelta(seconds=600),
        offered=offered if offered is not None else tuple(c.employee_id for c in conversations),
        conversations=conversations,
        staff_employee_id=None,
        user_answered=False,
        talk_seconds=sum(c.talk_seconds for c in conversations),
        timed_out=False,
    )


def outgoing(
    answered: bool, employee: int = E1, talk: int = 80, external_id: str | None = None
) -> CallFacts:
    return CallFacts(
        call_session_id=2,
        direction="out",
        phone=PHONE,
        external_id=external_id,
        started_at=T0,
        ended_at=T0 + timedelta(seconds=120),
        offered=(),
        conversations=(),
        staff_employee_id=employee,
        user_answered=answered,
        talk_seconds=talk if answered else 0,
        timed_out=False,
    )


def run(
    facts: CallFacts,
    actions: list[StaffAction] | None = None,
    drafts: dict[int, Draft] | None = None,
    dial: Dial | None = None,
    groupable: int | None = None,
    staff_of: dict[int, int] | None = None,
) -> Decision:
    """Decide `facts` carrying `staff_of` (default STAFF_OF); `groupable`: the caller's open
    missed-call case, created an hour before the call with no conversation since."""
    mapping = STAFF_OF if staff_of is None else staff_of
    caller = Caller(MissedCase(groupable, T0 - timedelta(hours=1)) if groupable else None)
    return decide(
        CallContext(
            facts=replace(facts, staff_of=tuple(sorted(mapping.items()))),
            actions=tuple(actions or ()),
            drafts=drafts or {},
            dial=dial,
            caller=caller,
        )
    )


def core(decision: Decision) -> tuple[object, ...]:
    """The operations, the outcome and the staff of a decision (not the caller after it)."""
    return (decision.ops, decision.outcome, decision.staff_ids)


def waiting(case_id: int) -> SetStatus:
    return SetStatus(case_id, "waiting", Trigger.CALL_END)


def finish(
    message_id: int, case_id: int, outcome: str, talk: int, employee: int, staff: int = 501
) -> FinishMessage:
    return FinishMessage(message_id, case_id, outcome, talk, employee, None, staff)


def answered_case(
    staff: int,
    employee: int,
    talk: int,
    status: str,
    subject: str | None = None,
    body: str = "",
    n: int = 0,
    call: int = 1,
) -> CreateCase:
    return CreateCase(
        key=NewCase(call, n),
        subject=subject or INCOMING_SUBJECT.format(PHONE),
        status=status,
        assignee_id=staff,
        icon="normal",
        source="in",
        message=CallMessage(staff, body, "answered", talk, employee, by_staff=bool(body)),
    )


MISSED_MESSAGE = CallMessage(None, "", "missed", 0, None)


def missed_case(assignee: int | None) -> CreateCase:
    return CreateCase(
        NewCase(1, 0),
        MISSED_SUBJECT.format(PHONE),
        "open",
        assignee,
        "missed",
        "in",
        MISSED_MESSAGE,
    )


# -- incoming, answered ---------------------------------------------------------------------


def test_r11_answered_staff_did_nothing_open_case_assigned_to_them() -> None:
    decision = run(incoming(conv(E1, 5, 61)))
    assert core(decision) == ((answered_case(S1, E1, 61, "open"),), "answered", (S1,))
    assert INCOMING_SUBJECT.format(PHONE) == "Входящий звонок с 79261234567"


def test_r12_answered_with_an_unsaved_draft_waiting_with_its_subject_and_summary() -> None:
    draft = Draft("Возврат товара", "Клиент хочет вернуть заказ")
    decision = run(incoming(conv(E1, 5, 61)), drafts={S1: draft})
    assert decision.ops == (
        answered_case(S1, E1, 61, "waiting", "Возврат товара", "Клиент хочет вернуть заказ"),
    )


def test_r10_draft_with_a_summary_only_keeps_the_standard_subject() -> None:
    (op,) = run(incoming(conv(E1, 5, 61)), drafts={S1: Draft(None, "Спросил про тариф")}).ops
    assert op == answered_case(S1, E1, 61, "waiting", body="Спросил про тариф")


def test_r10_blank_draft_counts_as_no_draft() -> None:
    (op,) = run(incoming(conv(E1, 5, 61)), drafts={S1: Draft("  ", "\n")}).ops
    assert isinstance(op, CreateCase)
    assert (op.subject, op.status) == (INCOMING_SUBJECT.format(PHONE), "open")
    assert not op.message.body.strip() and op.message.by_staff is False


def test_r10_a_draft_of_another_staff_member_is_not_used() -> None:
    (op,) = run(incoming(conv(E1, 5, 61)), drafts={S2: Draft("Тема", "Суть")}).ops
    assert op == answered_case(S1, E1, 61, "open")


def test_r13_transfer_first_staff_closed_second_open() -> None:
    decision = run(incoming(conv(E1, 5, 40), conv(E2, 50, 90)))
    assert core(decision) == (
        (answered_case(S1, E1, 40, "closed"), answered_case(S2, E2, 90, "open", n=1)),
        "answered",
        (S1, S2),
    )


def test_r13_transfer_first_staff_with_a_draft_gets_waiting() -> None:
    decision = run(incoming(conv(E1, 5, 40), conv(E2, 50, 90)), drafts={S1: Draft("Тема", "")})
    assert decision.ops == (
        answered_case(S1, E1, 40, "waiting", "Тема"),
        answered_case(S2, E2, 90, "open", n=1),
    )


def test_r13_r21_transfer_first_staff_created_a_case_second_did_nothing() -> None:
    action = StaffAction(S1, case_id=70, message_id=700)
    decision = run(incoming(conv(E1, 5, 40), conv(E2, 50, 90)), actions=[action])
    assert decision.ops == (
        finish(700, 70, "answered", 40, E1),
        waiting(70),
        answered_case(S2, E2, 90, "open", n=1),
    )


def test_r21_staff_created_or_attached_a_case_during_the_call_waiting_at_the_end() -> None:
    """R8/R9 during the call, R21 at its end (R23b: attached to the missed case alike)."""
    actions = [StaffAction(S1, case_id=70, message_id=700), StaffAction(S1, 71, 710)]
    decision = run(incoming(conv(E1, 5, 61)), actions=actions)
    assert core(decision) == (
        (
            finish(700, 70, "answered", 61, E1),
            waiting(70),
            finish(710, 71, "answered", 61, E1),
            waiting(71),
        ),
        "answered",
        (S1,),
    )


def test_r21_another_staff_members_action_does_not_count() -> None:
    decision = run(incoming(conv(E1, 5, 61)), actions=[StaffAction(S2, 70, 700)])
    assert decision.ops == (answered_case(S1, E1, 61, "open"),)


def test_r2_unmapped_answering_operator_is_ignored() -> None:
    assert core(run(incoming(conv(E9, 5, 61)))) == ((), "ignored", ())
    # Offered to mapped staff first does not make an unmapped operator's call a missed one.
    assert core(run(incoming(conv(E9, 30, 61), offered=(E1, E9)))) == ((), "ignored", ())


def test_r2_r13_transfer_between_mapped_and_unmapped_operators() -> None:
    decision = run(incoming(conv(E9, 5, 40), conv(E1, 50, 90)))
    assert core(decision) == ((answered_case(S1, E1, 90, "open"),), "answered", (S1,))


# -- incoming, missed -----------------------------------------------------------------------


def test_r15_missed_assignee_is_the_last_mapped_operator_offered() -> None:
    decision = run(incoming(offered=(E1, E2)))
    assert core(decision) == ((missed_case(S2),), "missed", (S1, S2))
    assert MISSED_SUBJECT.format(PHONE) == "Пропущенный звонок с 79261234567"


def test_r15_unmapped_operators_are_skipped_for_the_assignee() -> None:
    decision = run(incoming(offered=(E1, E9)))
    assert core(decision) == ((missed_case(S1),), "missed", (S1,))


def test_r15_voice_menu_hangup_has_no_assignee() -> None:
    assert core(run(incoming(offered=()))) == ((missed_case(None),), "missed", ())


def test_r15_r2_offered_only_to_unmapped_operators_creates_nothing() -> None:
    assert core(run(incoming(offered=(E9,)))) == ((), "ignored", ())
    assert core(run(incoming(offered=(E9,)), groupable=33)) == ((), "ignored", ())


def test_r16_missed_call_grouped_into_the_open_missed_case() -> None:
    decision = run(incoming(offered=(E1, E2)), groupable=33)
    assert core(decision) == ((AddMessage(33, MISSED_MESSAGE),), "missed", (S1, S2))
    assert run(incoming(offered=()), groupable=33).ops == (AddMessage(33, MISSED_MESSAGE),)


def test_r16_staff_ids_are_not_repeated_when_two_operators_are_one_staff_member() -> None:
    staff_of = {E1: S1, E2: S1}
    for groupable in (None, 33):
        decision = run(incoming(offered=(E1, E2)), groupable=groupable, staff_of=staff_of)
        assert decision.staff_ids == (S1,)


# -- outgoing from the softphone (R14) --------------------------------------------------------


def test_r14_softphone_answered_closed_case_with_the_conversation() -> None:
    decision = run(outgoing(answered=True, talk=80))
    case = CreateCase(
        key=NewCase(2, 0),
        subject=OUTGOING_SUBJECT.format(PHONE),
        status="closed",
        assignee_id=S1,
        icon="normal",
        source="out",
        message=CallMessage(S1, "", "answered", 80, E1),
    )
    assert core(decision) == ((case,), "answered", (S1,))


def test_r14_softphone_unanswered_closed_case_with_the_attempt() -> None:
    decision = run(outgoing(answered=False))
    (case,) = decision.ops
    assert isinstance(case, CreateCase)
    assert (case.status, case.assignee_id, case.source) == ("closed", S1, "out")
    assert case.message == CallMessage(S1, "", "attempt", 0, E1)
    assert decision.outcome == "attempt"


def test_r14_r21_softphone_staff_created_a_case_during_the_call() -> None:
    """R23d/e: the case staff created or attached is `waiting` when an answered call ends."""
    decision = run(outgoing(answered=True, talk=80), actions=[StaffAction(S1, 70, 700)])
    assert decision.ops == (finish(700, 70, "answered", 80, E1), waiting(70))


def test_r14_r20_softphone_unanswered_keeps_the_attached_case_status() -> None:
    decision = run(outgoing(answered=False), actions=[StaffAction(S1, 70, 700)])
    assert decision.ops == (finish(700, 70, "attempt", 0, E1),)


def test_r10_softphone_draft_is_used() -> None:
    (case,) = run(outgoing(answered=True), drafts={S1: Draft("Перезвон", "Договорились")}).ops
    assert isinstance(case, CreateCase)
    assert (case.subject, case.message.body, case.message.by_staff) == (
        "Перезвон",
        "Договорились",
        True,
    )


def test_r2_softphone_of_an_unmapped_operator_is_ignored() -> None:
    assert core(run(outgoing(answered=True, employee=E9))) == ((), "ignored", ())


# -- calling out from a case (R18–R20, R22, R23c) ----------------------------------------------


def test_r19_r23c_dial_answered_adds_the_conversation_and_sets_waiting() -> None:
    dial = Dial(case_id=33, staff_id=S1)
    facts = outgoing(answered=True, talk=75, external_id="dial-1")
    decision = run(facts, dial=dial, drafts={S1: Draft(None, "Обсудили сроки")})
    assert core(decision) == (
        (
            AddMessage(33, CallMessage(S1, "Обсудили сроки", "answered", 75, E1, by_staff=True)),
            waiting(33),
        ),
        "answered",
        (S1,),
    )


def test_r20_r22_dial_unanswered_adds_an_attempt_and_keeps_the_status() -> None:
    decision = run(outgoing(answered=False, external_id="dial-1"), dial=Dial(33, S1))
    assert core(decision) == (
        (AddMessage(33, CallMessage(S1, "", "attempt", 0, E1)),),
        "attempt",
        (S1,),
    )


def test_r19_dial_summary_saved_in_the_case_during_the_call() -> None:
    """Staff saved the summary in the dialled case: its message gets the outcome, no second
    message is added."""
    decision = run(
        outgoing(answered=True, talk=75), dial=Dial(33, S1), actions=[StaffAction(S1, 33, 330)]
    )
    assert decision.ops == (finish(330, 33, "answered", 75, E1), waiting(33))


def test_r18_dial_staff_comes_from_the_dial_even_if_the_operator_is_unmapped() -> None:
    decision = run(outgoing(answered=True, employee=E9), dial=Dial(33, S2))
    assert decision.staff_ids == (S2,) and decision.outcome == "answered"
    assert decision.ops[0] == AddMessage(33, CallMessage(S2, "", "answered", 80, E9))


def test_r16_groupable_case_is_ignored_for_answered_calls() -> None:
    decision = run(incoming(conv(E1, 5, 61)), groupable=33)
    assert decision.ops == (answered_case(S1, E1, 61, "open"),)
