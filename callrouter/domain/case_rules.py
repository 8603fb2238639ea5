"""Every case decision (R11–R24) as pure functions over one frozen context per call.

`decide` turns a finished call — its facts, what staff did during it, the caller's cases — into
case operations, and says how it leaves the caller for their next call, so a batch of calls is
decided in pure code, one after the other. `on_recording` is what a recording that arrives
after the decision does. The storage shell loads the contexts and writes the operations;
`case_log` turns the operations into case rows and their history.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field, replace
from datetime import datetime

from callrouter.domain.call import CallFacts
from callrouter.domain.case_status import CLOSED, OPEN, WAITING, Trigger
from callrouter.domain.phones import known_number

INCOMING_SUBJECT = "Входящий звонок с {}"
MISSED_SUBJECT = "Пропущенный звонок с {}"
OUTGOING_SUBJECT = "Исходящий звонок на {}"  # not in the guide: see docs/decisions.md
UNKNOWN_NUMBER = "неизвестного номера"
MISSED, NORMAL = "missed", "normal"  # the phone icons (R15, R17)


@dataclass(frozen=True, slots=True)
class NewCase:
    """A case this decision creates: no id until it is written."""

    call_session_id: int
    n: int


CaseKey = int | NewCase


@dataclass(frozen=True, slots=True)
class StaffAction:
    """A case a staff member created from this call, or attached it to (R8, R9)."""

    staff_id: int
    case_id: int
    message_id: int
    employee_id: int | None = None  # the operator of that message's part of the call


@dataclass(frozen=True, slots=True)
class Draft:
    """What a staff member typed for the call and did not save (R10)."""

    subject: str | None
    summary: str | None

    @property
    def filled(self) -> bool:
        return bool((self.subject or "").strip() or (self.summary or "").strip())


@dataclass(frozen=True, slots=True)
class Dial:
    """A call the staff member started from a case (R18)."""

    case_id: int
    staff_id: int


@dataclass(frozen=True, slots=True)
class MissedCase:
    case: CaseKey
    created_at: datetime


@dataclass(frozen=True, slots=True)
class Caller:
    """What a caller's earlier calls leave for the next one.

    `missed`: their newest missed-call case that is not closed; `talks`: the ends of their
    conversations with staff since it was created (R16); `new_case_at`: when staff last made a
    new case for them during a call (R23a/d)."""

    missed: MissedCase | None = None
    talks: tuple[datetime, ...] = ()
    new_case_at: datetime | None = None


@dataclass(frozen=True, slots=True)
class CallContext:
    """Everything a call's decision reads."""

    facts: CallFacts
    actions: tuple[StaffAction, ...] = ()
    drafts: Mapping[int, Draft] = field(default_factory=dict)
    dial: Dial | None = None
    caller: Caller = Caller()
    # When each operator's part of the call was first recorded (None: the whole call).
    recorded: Mapping[int | None, datetime] = field(default_factory=dict)
    icons: Mapping[int, str | None] = field(default_factory=dict)  # of the cases named above


@dataclass(frozen=True, slots=True)
class CallMessage:
    """A `kind: "call"` message; `author_staff_id` None when the product adds it."""

    author_staff_id: int | None
    body: str
    outcome: str  # answered / missed / attempt
    talk_seconds: int
    employee_id: int | None
    by_staff: bool = False  # the staff member typed it (a summary): a staff action for stats
    recorded: datetime | None = None  # when it became a recorded conversation (R25)


@dataclass(frozen=True, slots=True)
class CreateCase:
    key: NewCase
    subject: str
    status: str
    assignee_id: int | None
    icon: str
    source: str  # "in" / "out"
    message: CallMessage


@dataclass(frozen=True, slots=True)
class AddMessage:
    case: CaseKey
    message: CallMessage


@dataclass(frozen=True, slots=True)
class FinishMessage:
    """A message created during the call ("in progress") gets the call's outcome."""

    message_id: int
    case_id: int
    outcome: str
    talk_seconds: int
    employee_id: int | None
    recorded: datetime | None
    author_staff_id: int | None = None


@dataclass(frozen=True, slots=True)
class SetStatus:
    case: CaseKey
    status: str
    trigger: Trigger
    at: datetime | None = None  # None: at the call's end


@dataclass(frozen=True, slots=True)
class SetIcon:
    case: CaseKey
    icon: str


@dataclass(frozen=True, slots=True)
class LogConversation:
    """A stored call message now holds a recorded conversation (a recording came late)."""

    case_id: int
    message_id: int
    author_staff_id: int | None
    at: datetime


CaseOp = CreateCase | AddMessage | FinishMessage | SetStatus | SetIcon | LogConversation


@dataclass(frozen=True, slots=True)
class Decision:
    """The operations, the call's own outcome for the calls table, and the caller after it."""

    ops: tuple[CaseOp, ...]
    outcome: str  # answered / missed / attempt / ignored
    staff_ids: tuple[int, ...]
    caller: Caller


def case_of(op: CaseOp) -> CaseKey:
    """The case an operation changes."""
    if isinstance(op, CreateCase):
        return op.key
    if isinstance(op, FinishMessage | LogConversation):
        return op.case_id
    return op.case


# -- small rules, each in one place ----------------------------------------------------------


def recorded_at(
    employee_id: int | None, recorded: Mapping[int | None, datetime]
) -> datetime | None:
    """When a message of this operator's part of the call got its recording, if it has: a
    transfer is recorded per operator (R13); a recording without an operator covers the whole
    call, and a message without an operator is covered by any recording of the call."""
    times = [t for part, t in recorded.items() if part is None or employee_id in (None, part)]
    return min(times) if times else None


def turns_green(icon: str | None, direction: str | None, outcome: str, recorded: bool) -> bool:
    """R17: a missed-call case whose user answered a recorded call from staff gets the normal
    phone icon back."""
    return icon == MISSED and direction == "out" and outcome == "answered" and recorded


def groupable(caller: Caller, ended_at: datetime) -> CaseKey | None:
    """R16: the case a missed call ending at `ended_at` is added to — the caller's missed-call
    case that is not closed, unless they talked with staff after it was created."""
    missed = caller.missed
    if missed is None:
        return None
    if any(missed.created_at <= talk <= ended_at for talk in caller.talks):
        return None
    return missed.case


def _number(facts: CallFacts) -> str:
    return known_number(facts.phone) or UNKNOWN_NUMBER


# -- the decision ------------------------------------------------------------------------------


def decide(ctx: CallContext) -> Decision:
    """Apply R11–R24 to a finished call.

    Operators not in the call's own staff mapping are ignored (R2); the caller's context
    decides grouping (R16) and a case that staff's later new case has closed already (R23a)."""
    facts = ctx.facts
    if facts.direction == "out":
        decision = _outgoing(ctx)
    else:
        decision = _incoming(ctx)
    caller = decision.caller
    if decision.outcome == "answered":
        caller = replace(caller, talks=(*caller.talks, facts.ended_at))
    return replace(decision, caller=caller)


def _finish_actions(
    ctx: CallContext, staff_id: int, outcome: str, talk: int, employee_id: int | None
) -> list[CaseOp]:
    """R21: cases staff created or attached during a conversation are `waiting` at the end;
    after an unanswered call they keep their status (R20, R22)."""
    ops: list[CaseOp] = []
    for a in ctx.actions:
        if a.staff_id != staff_id:
            continue
        employee = a.employee_id or employee_id
        recorded = recorded_at(employee, ctx.recorded) if outcome == "answered" else None
        ops.append(
            FinishMessage(a.message_id, a.case_id, outcome, talk, employee, recorded, a.staff_id)
        )
        if outcome == "answered":
            ops.append(SetStatus(a.case_id, WAITING, Trigger.CALL_END))
        green = turns_green(ctx.icons.get(a.case_id), ctx.facts.direction, outcome, bool(recorded))
        if green:
            ops.append(SetIcon(a.case_id, NORMAL))
    return ops


def _incoming(ctx: CallContext) -> Decision:
    facts = ctx.facts
    staff_of = facts.staff()
    if facts.conversations:
        mapped = [c for c in facts.conversations if c.employee_id in staff_of]
        ops: list[CaseOp] = []
        for i, conv in enumerate(mapped):
            staff_id = staff_of[conv.employee_id]
            if any(a.staff_id == staff_id for a in ctx.actions):
                ops += _finish_actions(
                    ctx, staff_id, "answered", conv.talk_seconds, conv.employee_id
                )
                continue
            draft = ctx.drafts.get(staff_id)
            subject = (draft.subject or "").strip() if draft else ""
            summary = (draft.summary or "") if draft else ""
            if draft is not None and draft.filled:
                status = WAITING  # R12
            else:
                status = CLOSED if i < len(mapped) - 1 else OPEN  # R13, R11
            ops.append(
                CreateCase(
                    key=NewCase(facts.call_session_id, i),
                    subject=subject or INCOMING_SUBJECT.format(_number(facts)),
                    status=status,
                    assignee_id=staff_id,
                    icon=NORMAL,
                    source="in",
                    message=CallMessage(
                        author_staff_id=staff_id,
                        body=summary,
                        outcome="answered",
                        talk_seconds=conv.talk_seconds,
                        employee_id=conv.employee_id,
                        by_staff=bool(summary.strip()),
                        recorded=recorded_at(conv.employee_id, ctx.recorded),
                    ),
                )
            )
        staff_ids = tuple(staff_of[c.employee_id] for c in mapped)
        outcome = "answered" if mapped else "ignored"
        return Decision(tuple(ops), outcome, staff_ids, ctx.caller)

    # Missed (R15): the last mapped operator rung is the assignee; none if nobody was rung.
    mapped_offers = [staff_of[e] for e in facts.offered if e in staff_of]
    if facts.offered and not mapped_offers:
        return Decision((), "ignored", (), ctx.caller)  # R2: offered only to unmapped operators
    staff_ids = tuple(dict.fromkeys(mapped_offers))
    message = CallMessage(None, "", "missed", 0, None)
    group = groupable(ctx.caller, facts.ended_at)
    if group is not None:  # R16
        return Decision((AddMessage(group, message),), "missed", staff_ids, ctx.caller)
    key = NewCase(facts.call_session_id, 0)
    ops = [
        CreateCase(
            key=key,
            subject=MISSED_SUBJECT.format(_number(facts)),
            status=OPEN,
            assignee_id=mapped_offers[-1] if mapped_offers else None,
            icon=MISSED,
            source="in",
            message=message,
        )
    ]
    caller = replace(ctx.caller, missed=MissedCase(key, facts.ended_at), talks=())
    staff_case_at = ctx.caller.new_case_at
    if staff_case_at is not None and staff_case_at >= facts.ended_at:
        # Staff made a new case for this caller after the call ended, before it was decided
        # (the lateness bound): that case closed the caller's missed-call cases (R23a).
        ops.append(SetStatus(key, CLOSED, Trigger.NEW_CASE, at=staff_case_at))
        caller = replace(caller, missed=None)
    return Decision(tuple(ops), "missed", staff_ids, caller)


def _outgoing(ctx: CallContext) -> Decision:
    facts, dial = ctx.facts, ctx.dial
    staff_of = facts.staff()
    staff_id = dial.staff_id if dial else staff_of.get(facts.staff_employee_id or -1)
    if staff_id is None:
        return Decision((), "ignored", (), ctx.caller)  # R2
    outcome = "answered" if facts.user_answered else "attempt"
    talk = facts.talk_seconds if facts.user_answered else 0
    employee = facts.staff_employee_id
    recorded = recorded_at(employee, ctx.recorded) if facts.user_answered else None
    ops: list[CaseOp] = _finish_actions(ctx, staff_id, outcome, talk, employee)
    draft = ctx.drafts.get(staff_id)
    summary = (draft.summary or "") if draft else ""
    message = CallMessage(
        staff_id,
        summary,
        outcome,
        talk,
        employee,
        by_staff=bool(summary.strip()),
        recorded=recorded,
    )
    if dial is not None and not any(a.case_id == dial.case_id for a in ctx.actions):
        # R19: the conversation is recorded in the case; R20: an attempt, status unchanged.
        ops.append(AddMessage(dial.case_id, message))
        if facts.user_answered:
            ops.append(SetStatus(dial.case_id, WAITING, Trigger.CALL_END))  # R23c
        if turns_green(ctx.icons.get(dial.case_id), "out", outcome, bool(recorded)):
            ops.append(SetIcon(dial.case_id, NORMAL))  # R17
    elif dial is None and not any(a.staff_id == staff_id for a in ctx.actions):
        # R14: a softphone call staff did nothing with is recorded in a closed case.
        filled = draft is not None and draft.filled
        subject = (draft.subject or "").strip() if draft else ""
        ops.append(
            CreateCase(
                key=NewCase(facts.call_session_id, 0),
                subject=subject or OUTGOING_SUBJECT.format(_number(facts)),
                status=WAITING if filled and facts.user_answered else CLOSED,
                assignee_id=staff_id,
                icon=NORMAL,
                source="out",
                message=message,
            )
        )
    return Decision(tuple(ops), outcome, (staff_id,), ctx.caller)


# -- after the decision ----------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class StoredMessage:
    """A call message already written, as a late recording sees it."""

    id: int
    case_id: int
    direction: str | None
    outcome: str | None
    employee_id: int | None
    author_staff_id: int | None


def on_recording(
    messages: Iterable[StoredMessage],
    before: Mapping[int | None, datetime],
    after: Mapping[int | None, datetime],
    icons: Mapping[int, str | None],
) -> list[CaseOp]:
    """A decided call's recordings went from `before` to `after` (part → first recorded):
    every answered message of the call that now holds a recorded conversation logs it, and R17
    turns its case's icon."""
    ops: list[CaseOp] = []
    for m in messages:
        if m.outcome != "answered" or recorded_at(m.employee_id, before) is not None:
            continue
        at = recorded_at(m.employee_id, after)
        if at is None:
            continue
        ops.append(LogConversation(m.case_id, m.id, m.author_staff_id, at))
        if turns_green(icons.get(m.case_id), m.direction, m.outcome, True):
            ops.append(SetIcon(m.case_id, NORMAL))
    return ops


def late_talk(timed_out: bool, talk_seconds: int | None) -> int | None:
    """The talk time a call end brings when it arrives after its call was decided without it
    (the silent-call timeout, R32): UIS's figure replaces the one guessed from the legs. None
    when there is nothing to correct."""
    return talk_seconds if timed_out and talk_seconds else None
