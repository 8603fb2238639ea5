"""The cases touched by one unit of work and the history they log (R21–R30).

A `CaseBook` holds the cases a decision or a staff action touches; every change goes through
one of its methods, which also appends the `case_history` entry the statistics read — so no
writer can forget one. New cases, messages and users have keys until storage gives them ids.
Pure: storage loads the cases in, runs the book, and writes what it says.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

from callrouter.domain.case_rules import (
    AddMessage,
    CallMessage,
    CaseKey,
    CaseOp,
    CreateCase,
    FinishMessage,
    SetIcon,
    SetStatus,
)
from callrouter.domain.case_status import CLOSED, Trigger, allowed, effect


@dataclass(frozen=True, slots=True)
class NewMessage:
    n: int


@dataclass(frozen=True, slots=True)
class NewUser:
    """A user made for an unknown caller's number (docs/decisions.md #8)."""

    phone: str  # as UIS sent it


MessageKey = int | NewMessage
UserKey = int | NewUser | None


@dataclass(slots=True)
class CaseState:
    key: CaseKey
    subject: str
    status: str
    user: UserKey
    assignee_id: int | None
    icon: str | None
    created_at: datetime
    updated_at: datetime
    closed_at: datetime | None
    channel: str = "calls"
    new: bool = False
    changed: bool = False

    def touch(self, at: datetime) -> None:
        self.updated_at = max(self.updated_at, at)
        self.changed = True


@dataclass(frozen=True, slots=True)
class CallPart:
    """Which call (and direction) a call message records."""

    call_session_id: int
    direction: str


@dataclass(slots=True)
class MessageRow:
    key: NewMessage
    case: CaseKey
    kind: str  # reply / note / call
    author_staff_id: int | None
    body: str
    created_at: datetime
    call: CallPart | None = None
    outcome: str | None = None
    talk_seconds: int | None = None
    employee_id: int | None = None


@dataclass(frozen=True, slots=True)
class Entry:
    """One `case_history` row; `message` fills `details["message_id"]` once it has an id."""

    case: CaseKey
    at: datetime
    kind: str
    staff_id: int | None
    assignee_id: int | None
    status: str
    source: str | None = None
    conversation: bool = False
    details: dict[str, Any] = field(default_factory=dict)
    message: MessageKey | None = None


@dataclass(slots=True)
class CaseBook:
    cases: dict[CaseKey, CaseState] = field(default_factory=dict)
    messages: list[MessageRow] = field(default_factory=list)
    finished: dict[int, dict[str, Any]] = field(default_factory=dict)  # message id → changes
    history: list[Entry] = field(default_factory=list)

    def case(self, key: CaseKey) -> CaseState:
        return self.cases[key]

    def _log(self, case: CaseState, kind: str, at: datetime, **rest: Any) -> None:
        self.history.append(
            Entry(case.key, at, kind, assignee_id=case.assignee_id, status=case.status, **rest)
        )

    # -- changes -----------------------------------------------------------------------------

    def create(
        self,
        key: CaseKey,
        *,
        subject: str,
        status: str,
        user: UserKey,
        assignee_id: int | None,
        icon: str | None,
        source: str,
        at: datetime,
        staff_id: int | None = None,
    ) -> CaseState:
        """A new `calls` case (`staff_id`: who made it, when staff did)."""
        case = CaseState(
            key,
            subject,
            status,
            user,
            assignee_id,
            icon,
            at,
            at,
            at if status == CLOSED else None,
            new=True,
            changed=True,
        )
        self.cases[key] = case
        self._log(case, "created", at, staff_id=staff_id, source=source)
        return case

    def add_message(
        self,
        case_key: CaseKey,
        *,
        kind: str,
        author_staff_id: int | None,
        body: str,
        at: datetime,
        by_staff: bool,
        call: CallPart | None = None,
        outcome: str | None = None,
        talk_seconds: int | None = None,
        employee_id: int | None = None,
        recorded: datetime | None = None,
    ) -> NewMessage:
        """A message; `by_staff`: a staff member wrote it (a staff action for the statistics);
        `recorded`: it holds a recorded conversation since then."""
        case = self.case(case_key)
        key = NewMessage(len(self.messages))
        self.messages.append(
            MessageRow(
                key,
                case_key,
                kind,
                author_staff_id,
                body,
                at,
                call,
                outcome,
                talk_seconds,
                employee_id,
            )
        )
        case.touch(at)
        self._log(
            case,
            "message",
            at,
            staff_id=author_staff_id if by_staff else None,
            details={"message_kind": kind, "author_staff_id": author_staff_id},
            message=key,
        )
        if recorded is not None:
            self.conversation(case_key, key, author_staff_id, recorded)
        return key

    def finish_message(self, op: FinishMessage, at: datetime) -> None:
        """A call message written "in progress" gets its call's outcome (R8, R9, R19)."""
        self.finished[op.message_id] = {
            "call_outcome": op.outcome,
            "talk_seconds": op.talk_seconds,
            "employee_id": op.employee_id,
        }
        self.case(op.case_id).touch(at)
        if op.recorded is not None:
            self.conversation(op.case_id, op.message_id, op.author_staff_id, op.recorded)

    def conversation(
        self, case_key: CaseKey, message: MessageKey, author: int | None, at: datetime
    ) -> None:
        """A message now holds a recorded staff–user conversation (R25 "answered")."""
        case = self.case(case_key)
        case.touch(at)
        self._log(
            case,
            "recording",
            at,
            staff_id=None,
            conversation=True,
            details={"author_staff_id": author},
            message=message,
        )

    def set_status(
        self,
        case_key: CaseKey,
        status: str,
        trigger: Trigger,
        at: datetime,
        staff_id: int | None = None,
    ) -> bool:
        """Change the status as `trigger` may (case_status.TRANSITIONS); False if unchanged."""
        case = self.case(case_key)
        before = case.status
        if before == status or not allowed(trigger, before, status):
            return False
        case.status = status
        case.closed_at = at if status == CLOSED else None
        case.touch(at)
        details = {"from": before, "to": status, "trigger": str(trigger)}
        if (meaning := effect(before, status)) is not None:
            details["effect"] = meaning
        self._log(case, "status", at, staff_id=staff_id, details=details)
        return True

    def set_icon(self, case_key: CaseKey, icon: str) -> None:
        case = self.case(case_key)
        if case.icon != icon:
            case.icon = icon
            case.changed = True

    def set_assignee(
        self, case_key: CaseKey, assignee_id: int | None, at: datetime, staff_id: int | None
    ) -> None:
        case = self.case(case_key)
        if case.assignee_id == assignee_id:
            return
        before, case.assignee_id = case.assignee_id, assignee_id
        case.touch(at)
        self._log(
            case, "assignee", at, staff_id=staff_id, details={"from": before, "to": assignee_id}
        )

    def set_subject(
        self, case_key: CaseKey, subject: str, at: datetime, staff_id: int | None
    ) -> None:
        case = self.case(case_key)
        if case.subject == subject:
            return
        before, case.subject = case.subject, subject
        case.touch(at)
        self._log(case, "subject", at, staff_id=staff_id, details={"from": before, "to": subject})

    def attached(
        self, case_key: CaseKey, call_session_id: int, at: datetime, staff_id: int
    ) -> None:
        """Staff attached a call to the case (R9): a staff action."""
        case = self.case(case_key)
        case.touch(at)
        self._log(
            case, "attached", at, staff_id=staff_id, details={"call_session_id": call_session_id}
        )

    # -- a decision's operations -------------------------------------------------------------

    def apply(self, op: CaseOp, *, at: datetime, call: CallPart, user: UserKey) -> None:
        """Carry out one operation of `case_rules.decide` (or `on_recording`) for `call`,
        which ended at `at`; `user` is the caller's user, for the cases it creates."""
        if isinstance(op, CreateCase):
            self.create(
                op.key,
                subject=op.subject,
                status=op.status,
                user=user,
                assignee_id=op.assignee_id,
                icon=op.icon,
                source=op.source,
                at=at,
            )
            self._call_message(op.key, op.message, at, call)
        elif isinstance(op, AddMessage):
            self._call_message(op.case, op.message, at, call)
        elif isinstance(op, FinishMessage):
            self.finish_message(op, at)
        elif isinstance(op, SetStatus):
            self.set_status(op.case, op.status, op.trigger, op.at or at)
        elif isinstance(op, SetIcon):
            self.set_icon(op.case, op.icon)
        else:  # LogConversation
            self.conversation(op.case_id, op.message_id, op.author_staff_id, op.at)

    def _call_message(self, case: CaseKey, m: CallMessage, at: datetime, call: CallPart) -> None:
        self.add_message(
            case,
            kind="call",
            author_staff_id=m.author_staff_id,
            body=m.body,
            at=at,
            by_staff=m.by_staff,
            call=call,
            outcome=m.outcome,
            talk_seconds=m.talk_seconds,
            employee_id=m.employee_id,
            recorded=m.recorded,
        )
