"""The SQLAlchemy 2 schema: one module, so the whole data model reads in one place.

Every datetime is stored in UTC (`UtcDateTime`) and converted to the account's zone at the
HTTP edge. `case_history` is the append-only log statistics are computed from (R25–R30).
"""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any, ClassVar

from sqlalchemy import (
    JSON,
    BigInteger,
    Boolean,
    DateTime,
    Float,
    ForeignKey,
    Index,
    Integer,
    LargeBinary,
    String,
    Text,
    UniqueConstraint,
    true,
)
from sqlalchemy.engine import Dialect
from sqlalchemy.orm import DeclarativeBase, Mapped, mapped_column
from sqlalchemy.types import TypeDecorator

# SQLite only auto-increments a column typed exactly INTEGER PRIMARY KEY.
Id = BigInteger().with_variant(Integer(), "sqlite")


class UtcDateTime(TypeDecorator[datetime]):
    """Aware datetimes in, aware UTC datetimes out, on SQLite (naive text) and PostgreSQL."""

    impl = DateTime(timezone=True)
    cache_ok = True

    def process_bind_param(self, value: datetime | None, dialect: Dialect) -> datetime | None:
        if value is None:
            return None
        if value.tzinfo is None:
            raise ValueError("naive datetime given to the database")
        value = value.astimezone(UTC)
        return value.replace(tzinfo=None) if dialect.name == "sqlite" else value

    def process_result_value(self, value: datetime | None, dialect: Dialect) -> datetime | None:
        if value is None:
            return None
        return value.replace(tzinfo=UTC) if value.tzinfo is None else value.astimezone(UTC)


class Base(DeclarativeBase):
    type_annotation_map: ClassVar[dict[Any, Any]] = {datetime: UtcDateTime, dict[str, Any]: JSON}


class Setting(Base):
    """Account settings and the UIS integration, one row per key (value is JSON)."""

    __tablename__ = "settings"
    key: Mapped[str] = mapped_column(String(64), primary_key=True)
    value: Mapped[Any] = mapped_column(JSON)


class Staff(Base):
    __tablename__ = "staff"
    id: Mapped[int] = mapped_column(Id, primary_key=True, autoincrement=True)
    full_name: Mapped[str] = mapped_column(String(200))
    email: Mapped[str] = mapped_column(String(200))
    token_hash: Mapped[str] = mapped_column(String(64), unique=True)  # sha256 of the token
    created_at: Mapped[datetime]
    # Sign-in (issue 9). Server defaults let `engine._upgrade` add the columns to an older
    # database: its staff become active members with the role "staff" and no password.
    password_hash: Mapped[str | None] = mapped_column(String(200))  # argon2id, PHC string
    active: Mapped[bool] = mapped_column(Boolean, default=True, server_default=true())
    role: Mapped[str] = mapped_column(String(16), default="staff", server_default="staff")


class WebSession(Base):
    """A browser's sign-in (issue 9): the cookie carries a random secret, this row only its
    SHA-256. `staff_id` None is the admin signed in with the admin token; `admin_key` then
    names that token (a hash of it), so changing the admin token ends those sessions."""

    __tablename__ = "web_sessions"
    id: Mapped[int] = mapped_column(Id, primary_key=True, autoincrement=True)
    secret_hash: Mapped[str] = mapped_column(String(64), unique=True)
    staff_id: Mapped[int | None] = mapped_column(ForeignKey("staff.id"), index=True)
    admin_key: Mapped[str | None] = mapped_column(String(64))
    created_at: Mapped[datetime]
    expires_at: Mapped[datetime] = mapped_column(index=True)


class WallboardLink(Base):
    """A read-only wallboard link (issue 9): its secret reads the wallboard and the staff
    names and nothing else; only its SHA-256 is kept. Revoking deletes the row."""

    __tablename__ = "wallboard_links"
    id: Mapped[int] = mapped_column(Id, primary_key=True, autoincrement=True)
    secret_hash: Mapped[str] = mapped_column(String(64), unique=True)
    label: Mapped[str] = mapped_column(String(200), default="")
    created_at: Mapped[datetime]


class Operator(Base):
    """A UIS employee (`employee_id`) and the staff member it is mapped to (R2)."""

    __tablename__ = "operators"
    employee_id: Mapped[int] = mapped_column(BigInteger, primary_key=True, autoincrement=False)
    staff_id: Mapped[int | None] = mapped_column(ForeignKey("staff.id"))
    # As UIS's get.employees last told the import (issue 11); null for rows mapped by hand.
    # The phones are for routing callers to their own agent (decisions.md 40).
    full_name: Mapped[str | None] = mapped_column(String(200))
    phones: Mapped[list[str] | None] = mapped_column(JSON(none_as_null=True))


class Field(Base):
    """A user data field and whether the incoming-call popup shows it (R3)."""

    __tablename__ = "fields"
    key: Mapped[str] = mapped_column(String(64), primary_key=True)
    title: Mapped[str] = mapped_column(String(200))
    incoming_call: Mapped[bool] = mapped_column(Boolean, default=False)
    builtin: Mapped[bool] = mapped_column(Boolean, default=False)
    position: Mapped[int] = mapped_column(Integer, default=0)


class User(Base):
    __tablename__ = "users"
    id: Mapped[int] = mapped_column(Id, primary_key=True, autoincrement=True)
    full_name: Mapped[str | None] = mapped_column(String(200))
    email: Mapped[str | None] = mapped_column(String(200))
    company: Mapped[str | None] = mapped_column(String(200))
    note: Mapped[str | None] = mapped_column(Text)
    custom_fields: Mapped[dict[str, Any]] = mapped_column(JSON, default=dict)
    created_at: Mapped[datetime]
    updated_at: Mapped[datetime]


class UserPhone(Base):
    """A user's phone as entered, and its normalised digits for matching."""

    __tablename__ = "user_phones"
    __table_args__ = (UniqueConstraint("user_id", "normalized"),)
    id: Mapped[int] = mapped_column(Id, primary_key=True, autoincrement=True)
    user_id: Mapped[int] = mapped_column(ForeignKey("users.id"), index=True)
    phone: Mapped[str] = mapped_column(String(64))
    normalized: Mapped[str] = mapped_column(String(64), index=True)
    position: Mapped[int] = mapped_column(Integer, default=0)


class Case(Base):
    __tablename__ = "cases"
    __table_args__ = (Index("ix_cases_user_channel", "user_id", "channel", "status"),)
    id: Mapped[int] = mapped_column(Id, primary_key=True, autoincrement=True)
    subject: Mapped[str] = mapped_column(String(500))
    status: Mapped[str] = mapped_column(String(16))  # open / waiting / closed
    channel: Mapped[str] = mapped_column(String(32), default="calls")
    user_id: Mapped[int | None] = mapped_column(ForeignKey("users.id"))
    assignee_id: Mapped[int | None] = mapped_column(ForeignKey("staff.id"))
    call_icon: Mapped[str | None] = mapped_column(String(16))  # missed / normal / None
    created_at: Mapped[datetime]
    updated_at: Mapped[datetime]
    closed_at: Mapped[datetime | None]


class Message(Base):
    """A case message; `kind == "call"` records a call (its body is the summary)."""

    __tablename__ = "messages"
    id: Mapped[int] = mapped_column(Id, primary_key=True, autoincrement=True)
    case_id: Mapped[int] = mapped_column(ForeignKey("cases.id"), index=True)
    kind: Mapped[str] = mapped_column(String(16))  # reply / note / call
    author_staff_id: Mapped[int | None] = mapped_column(ForeignKey("staff.id"))
    body: Mapped[str] = mapped_column(Text, default="")
    created_at: Mapped[datetime]
    call_session_id: Mapped[int | None] = mapped_column(BigInteger, index=True)
    call_direction: Mapped[str | None] = mapped_column(String(4))
    call_outcome: Mapped[str | None] = mapped_column(String(16))  # in_progress/answered/...
    talk_seconds: Mapped[int | None] = mapped_column(Integer)
    # The UIS operator of this part of the call: a transfer's recordings are per part (R13).
    employee_id: Mapped[int | None] = mapped_column(BigInteger)


class Recording(Base):
    """A recorded part of a call; messages of that call show it (R8, R9, R11)."""

    __tablename__ = "recordings"
    __table_args__ = (UniqueConstraint("call_session_id", "url"),)
    id: Mapped[int] = mapped_column(Id, primary_key=True, autoincrement=True)
    call_session_id: Mapped[int] = mapped_column(BigInteger, index=True)
    employee_id: Mapped[int | None] = mapped_column(BigInteger)
    url: Mapped[str] = mapped_column(String(1000))
    seconds: Mapped[int | None] = mapped_column(Integer)
    recorded_at: Mapped[datetime]


class Call(Base):
    """A call session as the product knows it once it is acted on or finalized.

    The row is also the lock that serialises staff actions with the call's finalization.
    """

    __tablename__ = "calls"
    # R16 reads a caller's conversations since their missed-call case: by user and end.
    __table_args__ = (Index("ix_calls_user_ended", "user_id", "ended_at"),)
    call_session_id: Mapped[int] = mapped_column(BigInteger, primary_key=True, autoincrement=False)
    direction: Mapped[str | None] = mapped_column(String(4))
    phone: Mapped[str | None] = mapped_column(String(64))
    user_id: Mapped[int | None] = mapped_column(ForeignKey("users.id"))
    staff_ids: Mapped[list[int]] = mapped_column(JSON, default=list)
    started_at: Mapped[datetime | None]
    answered_at: Mapped[datetime | None]
    ended_at: Mapped[datetime | None]
    outcome: Mapped[str | None] = mapped_column(String(16))  # answered / missed / attempt
    talk_seconds: Mapped[int | None] = mapped_column(Integer)
    finalized: Mapped[bool] = mapped_column(Boolean, default=False)
    # What the wallboard counts (R31), so a restart can rebuild today's figures.
    wait_seconds: Mapped[float | None] = mapped_column(Float)
    offered_staff_ids: Mapped[list[int]] = mapped_column(JSON, default=list)
    talked: Mapped[list[list[int]]] = mapped_column(JSON, default=list)  # [staff_id, talk seconds]
    # Decided without its call end (the silent-call timeout): a late call end corrects the talk.
    timed_out: Mapped[bool | None] = mapped_column(Boolean, default=False)


class CallAction(Base):
    """What a staff member did with a live call: created a case or attached it (R8, R9)."""

    __tablename__ = "call_actions"
    __table_args__ = (UniqueConstraint("call_session_id", "staff_id", "case_id"),)
    id: Mapped[int] = mapped_column(Id, primary_key=True, autoincrement=True)
    call_session_id: Mapped[int] = mapped_column(BigInteger, index=True)
    staff_id: Mapped[int] = mapped_column(ForeignKey("staff.id"))
    action: Mapped[str] = mapped_column(String(16))  # created / attached
    case_id: Mapped[int] = mapped_column(ForeignKey("cases.id"))
    message_id: Mapped[int] = mapped_column(ForeignKey("messages.id"))
    at: Mapped[datetime]


class CallDraft(Base):
    """What a staff member typed for a call and did not save (R10)."""

    __tablename__ = "call_drafts"
    call_session_id: Mapped[int] = mapped_column(BigInteger, primary_key=True)
    staff_id: Mapped[int] = mapped_column(ForeignKey("staff.id"), primary_key=True)
    subject: Mapped[str | None] = mapped_column(String(500))
    summary: Mapped[str | None] = mapped_column(Text)
    updated_at: Mapped[datetime]


class Dial(Base):
    """A click-to-call from a case (R18); UIS echoes `external_id` in the call's notifications."""

    __tablename__ = "dials"
    external_id: Mapped[str] = mapped_column(String(64), primary_key=True)
    case_id: Mapped[int] = mapped_column(ForeignKey("cases.id"))
    staff_id: Mapped[int] = mapped_column(ForeignKey("staff.id"))
    call_session_id: Mapped[int | None] = mapped_column(BigInteger, index=True)
    created_at: Mapped[datetime]


class InboxEntry(Base):
    """A notification body acknowledged to UIS (R32): stored before the 2xx, `done` once its
    effects are durable. Undone entries are re-applied after a crash."""

    __tablename__ = "inbox"
    __table_args__ = (Index("ix_inbox_pending", "done", "id"),)
    id: Mapped[int] = mapped_column(Id, primary_key=True, autoincrement=True)
    body_hash: Mapped[str] = mapped_column(String(64), unique=True)
    call_session_id: Mapped[int] = mapped_column(BigInteger, index=True)
    received_at: Mapped[datetime]
    body: Mapped[str] = mapped_column(Text)
    done: Mapped[bool] = mapped_column(Boolean, default=False)


class Quarantine(Base):
    """A call (or a body) whose processing failed, kept with its error for the admin and
    retried after a fix or a restart, while every other call goes on (STYLE habit 11).

    `stage` says where it failed: parse, entity, timer, decide, write, amend, statistics.
    `inbox_ids` are the notifications it holds; `body` the raw text when it never got an id.
    """

    __tablename__ = "quarantine"
    id: Mapped[int] = mapped_column(Id, primary_key=True, autoincrement=True)
    call_session_id: Mapped[int | None] = mapped_column(BigInteger, index=True)
    stage: Mapped[str] = mapped_column(String(16))
    error: Mapped[str] = mapped_column(Text)
    inbox_ids: Mapped[list[int]] = mapped_column(JSON, default=list)
    body: Mapped[str | None] = mapped_column(Text)
    status: Mapped[str] = mapped_column(String(16), default="open")  # open / retried
    attempts: Mapped[int] = mapped_column(Integer, default=1)
    created_at: Mapped[datetime]
    updated_at: Mapped[datetime]


class Rejected(Base):
    """A body refused with a 4xx, kept for inspection (R33)."""

    __tablename__ = "rejected"
    id: Mapped[int] = mapped_column(Id, primary_key=True, autoincrement=True)
    received_at: Mapped[datetime]
    status: Mapped[int] = mapped_column(Integer)
    code: Mapped[str] = mapped_column(String(64))
    message: Mapped[str] = mapped_column(Text)
    body: Mapped[str] = mapped_column(Text)  # as received, cut at the size limit
    size: Mapped[int] = mapped_column(Integer)


class CaseEvent(Base):
    """The case history log: one row per thing that happened to a case, at its event time.

    kind: created | status | assignee | subject | message | recording | attached.
    `staff_id` is the staff member who acted (None when the product did it on its own);
    `assignee_id` and `status` are the case's *after* the event; `source` is "in"/"out" on
    `created`; `conversation` marks a recorded staff–user conversation (message/recording);
    `details` holds the rest (from/to of a change, message id and kind, …).
    """

    __tablename__ = "case_history"
    __table_args__ = (Index("ix_case_history_at", "at"),)
    id: Mapped[int] = mapped_column(Id, primary_key=True, autoincrement=True)
    case_id: Mapped[int] = mapped_column(ForeignKey("cases.id"), index=True)
    at: Mapped[datetime]
    kind: Mapped[str] = mapped_column(String(16))
    staff_id: Mapped[int | None] = mapped_column(Integer)
    assignee_id: Mapped[int | None] = mapped_column(Integer)
    status: Mapped[str] = mapped_column(String(16))
    source: Mapped[str | None] = mapped_column(String(4))
    conversation: Mapped[bool] = mapped_column(Boolean, default=False)
    details: Mapped[dict[str, Any]] = mapped_column(JSON, default=dict)


class StatsSnapshot(Base):
    """The statistics actor's counters with the last history id they include (R25–R30): a
    restart resumes from here, so nothing is lost or counted twice."""

    __tablename__ = "stats_snapshots"
    id: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=False)
    max_id: Mapped[int] = mapped_column(BigInteger)
    data: Mapped[bytes] = mapped_column(LargeBinary)
    saved_at: Mapped[datetime]


# --- smart routing (issue 11 part 1) ---------------------------------------------------------


class RoutingDecision(Base):
    """Where UIS's interactive call processing was told to send a caller, and why. Written in
    batches after the answer; the call, the wallboard and the statistics show it."""

    __tablename__ = "routing_decisions"
    id: Mapped[int] = mapped_column(Id, primary_key=True, autoincrement=True)
    call_session_id: Mapped[int | None] = mapped_column(BigInteger, index=True)
    at: Mapped[datetime] = mapped_column(index=True)
    caller: Mapped[str | None] = mapped_column(String(64))  # the caller's digits
    numb: Mapped[str | None] = mapped_column(String(64))  # the number called
    reason: Mapped[str] = mapped_column(String(32))
    staff_id: Mapped[int | None] = mapped_column(Integer)
    case_id: Mapped[int | None] = mapped_column(BigInteger)
    phones: Mapped[list[str]] = mapped_column(JSON, default=list)
    returned_code: Mapped[int | None] = mapped_column(Integer)
    details: Mapped[dict[str, Any]] = mapped_column(JSON, default=dict)  # skipped, input, error


# --- reconciliation with the UIS Data API (issue 11 part 2) -----------------------------------


class ReconcileRun(Base):
    """One comparison of a period with the UIS Data API and the notifications it derived.

    `repairs` lists them (kind, call, leg, event time, whole call); an inbox row whose body hash
    is among `body_hashes` came from this run, not from UIS (the provenance mark: the body
    itself carries none, so nothing UIS or anyone with the webhook secret sends can claim it)."""

    __tablename__ = "reconcile_runs"
    id: Mapped[int] = mapped_column(Id, primary_key=True, autoincrement=True)
    trigger: Mapped[str] = mapped_column(String(16))  # "schedule" / "admin"
    period_from: Mapped[datetime]
    period_to: Mapped[datetime]
    started_at: Mapped[datetime] = mapped_column(index=True)
    finished_at: Mapped[datetime | None]
    status: Mapped[str] = mapped_column(String(16))  # running / done / failed
    error_code: Mapped[str | None] = mapped_column(String(64))
    error: Mapped[str | None] = mapped_column(Text)  # in words, for the admin
    calls_seen: Mapped[int] = mapped_column(Integer, default=0)
    counts: Mapped[dict[str, int]] = mapped_column(JSON, default=dict)  # repairs per kind
    repairs: Mapped[list[dict[str, Any]]] = mapped_column(JSON, default=list)
    body_hashes: Mapped[list[str]] = mapped_column(JSON, default=list)
