"""The case rules R11–R24 as one pure function: call facts + what staff did + the user's cases
→ the case operations to perform. The storage shell reads the inputs and writes the outputs in
one transaction, serialised per caller by the contact entity."""

from __future__ import annotations

from dataclasses import dataclass

from callrouter.domain.call import CallFacts

INCOMING_SUBJECT = "Входящий звонок с {}"
MISSED_SUBJECT = "Пропущенный звонок с {}"
OUTGOING_SUBJECT = "Исходящий звонок на {}"  # not in the guide: see docs/decisions.md


@dataclass(frozen=True, slots=True)
class StaffAction:
    """A case a staff member created from this call, or attached it to (R8, R9)."""

    staff_id: int
    case_id: int
    message_id: int


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
class CallMessage:
    """A `kind: "call"` message to add; `author_staff_id` None when the product adds it."""

    author_staff_id: int | None
    body: str
    outcome: str  # answered / missed / attempt
    talk_seconds: int
    employee_id: int | None
    by_staff: bool = False  # the staff member typed it (a summary): a staff action for stats


@dataclass(frozen=True, slots=True)
class CreateCase:
    subject: str
    status: str
    assignee_id: int | None
    icon: str
    source: str  # "in" / "out"
    message: CallMessage


@dataclass(frozen=True, slots=True)
class AddMessage:
    case_id: int
    message: CallMessage


@dataclass(frozen=True, slots=True)
class FinishMessage:
    """A message created during the call ("in progress") gets the call's outcome."""

    message_id: int
    outcome: str
    talk_seconds: int
    employee_id: int | None


@dataclass(frozen=True, slots=True)
class SetStatus:
    case_id: int
    status: str


CaseOp = CreateCase | AddMessage | FinishMessage | SetStatus


@dataclass(frozen=True, slots=True)
class Decision:
    """The operations, plus the call's own outcome for the calls table and R16."""

    ops: tuple[CaseOp, ...]
    outcome: str  # answered / missed / attempt / ignored
    staff_ids: tuple[int, ...]


def decide(
    facts: CallFacts,
    staff_of: dict[int, int],
    actions: list[StaffAction],
    drafts: dict[int, Draft],
    dial: Dial | None,
    groupable_missed_case: int | None,
) -> Decision:
    """Apply R11–R24 to a finished call.

    `staff_of` maps UIS operators to staff (unmapped operators are ignored, R2);
    `groupable_missed_case` is the user's not-closed missed-call case with no conversation since
    it was created (R16), if any.
    """
    if facts.direction == "out":
        return _outgoing(facts, staff_of, actions, drafts, dial)
    return _incoming(facts, staff_of, actions, drafts, groupable_missed_case)


def _number(facts: CallFacts) -> str:
    return facts.phone or "неизвестного номера"


def _finish_actions(
    actions: list[StaffAction], staff_id: int, outcome: str, talk: int, employee_id: int | None
) -> list[CaseOp]:
    """R21: cases staff created or attached during a conversation are `waiting` at the end;
    after an unanswered call they keep their status (R20, R22)."""
    ops: list[CaseOp] = []
    for a in actions:
        if a.staff_id != staff_id:
            continue
        ops.append(FinishMessage(a.message_id, outcome, talk, employee_id))
        if outcome == "answered":
            ops.append(SetStatus(a.case_id, "waiting"))
    return ops


def _incoming(
    facts: CallFacts,
    staff_of: dict[int, int],
    actions: list[StaffAction],
    drafts: dict[int, Draft],
    groupable_missed_case: int | None,
) -> Decision:
    if facts.conversations:
        mapped = [c for c in facts.conversations if c.employee_id in staff_of]
        ops: list[CaseOp] = []
        for i, conv in enumerate(mapped):
            staff_id = staff_of[conv.employee_id]
            if any(a.staff_id == staff_id for a in actions):
                ops += _finish_actions(
                    actions, staff_id, "answered", conv.talk_seconds, conv.employee_id
                )
                continue
            draft = drafts.get(staff_id)
            transferred = i < len(mapped) - 1
            if draft is not None and draft.filled:
                status = "waiting"  # R12
            else:
                status = "closed" if transferred else "open"  # R13, R11
            ops.append(
                CreateCase(
                    subject=(draft.subject or "").strip()
                    if draft and (draft.subject or "").strip()
                    else INCOMING_SUBJECT.format(_number(facts)),
                    status=status,
                    assignee_id=staff_id,
                    icon="normal",
                    source="in",
                    message=CallMessage(
                        author_staff_id=staff_id,
                        body=(draft.summary or "") if draft else "",
                        outcome="answered",
                        talk_seconds=conv.talk_seconds,
                        employee_id=conv.employee_id,
                        by_staff=bool(draft and (draft.summary or "").strip()),
                    ),
                )
            )
        staff_ids = tuple(staff_of[c.employee_id] for c in mapped)
        return Decision(tuple(ops), "answered" if mapped else "ignored", staff_ids)

    # Missed (R15): the last mapped operator rung is the assignee; none if nobody was rung.
    mapped_offers = [staff_of[e] for e in facts.offered if e in staff_of]
    if facts.offered and not mapped_offers:
        return Decision((), "ignored", ())  # R2: offered only to unmapped operators
    assignee = mapped_offers[-1] if mapped_offers else None
    staff_ids = tuple(dict.fromkeys(mapped_offers))
    message = CallMessage(None, "", "missed", 0, None)
    if groupable_missed_case is not None:  # R16
        return Decision((AddMessage(groupable_missed_case, message),), "missed", staff_ids)
    case = CreateCase(
        subject=MISSED_SUBJECT.format(_number(facts)),
        status="open",
        assignee_id=assignee,
        icon="missed",
        source="in",
        message=message,
    )
    return Decision((case,), "missed", staff_ids)


def _outgoing(
    facts: CallFacts,
    staff_of: dict[int, int],
    actions: list[StaffAction],
    drafts: dict[int, Draft],
    dial: Dial | None,
) -> Decision:
    staff_id = dial.staff_id if dial else staff_of.get(facts.staff_employee_id or -1)
    if staff_id is None:
        return Decision((), "ignored", ())  # R2
    outcome = "answered" if facts.user_answered else "attempt"
    talk = facts.talk_seconds if facts.user_answered else 0
    employee = facts.staff_employee_id
    ops: list[CaseOp] = _finish_actions(actions, staff_id, outcome, talk, employee)
    draft = drafts.get(staff_id)
    summary = (draft.summary or "") if draft else ""
    if dial is not None and not any(a.case_id == dial.case_id for a in actions):
        # R19: the conversation is recorded in the case; R20: an attempt, status unchanged.
        message = CallMessage(
            staff_id, summary, outcome, talk, employee, by_staff=bool(summary.strip())
        )
        ops.append(AddMessage(dial.case_id, message))
        if facts.user_answered:
            ops.append(SetStatus(dial.case_id, "waiting"))  # R23c
    elif dial is None and not any(a.staff_id == staff_id for a in actions):
        # R14: a softphone call staff did nothing with is recorded in a closed case.
        filled = draft is not None and draft.filled
        subject = (draft.subject or "").strip() if draft else ""
        ops.append(
            CreateCase(
                subject=subject or OUTGOING_SUBJECT.format(_number(facts)),
                status="waiting" if filled and facts.user_answered else "closed",
                assignee_id=staff_id,
                icon="normal",
                source="out",
                message=CallMessage(
                    staff_id, summary, outcome, talk, employee, by_staff=bool(summary.strip())
                ),
            )
        )
    return Decision(tuple(ops), outcome, (staff_id,))
