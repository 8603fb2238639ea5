"""A live call session as a pure state machine (STYLE: h11, aioquic).

Notifications are folded into *facts* (legs, answers, ends) with commutative, idempotent merges,
so any order of a call's notifications, with duplicates, gives the same facts (R32). The call is
*finished* — its facts frozen and handed on to be decided — once the event clock has passed its
end by the lateness bound, so everything UIS delivers within that bound counts whatever the
order; a call that never ends is finished after the account's silent-call timeout of wall
time. Time is always a parameter: `received` is the wall clock of arrival, the UIS
`notification_time` is the event time of everything the call produces.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import datetime, timedelta

from callrouter.domain.notifications import Kind, Notification
from callrouter.domain.wire import wire


@dataclass(slots=True)
class Leg:
    key: str
    employee_id: int | None = None
    is_operator: bool | None = None
    started_at: datetime | None = None
    answered_at: datetime | None = None
    ended_at: datetime | None = None


@wire
@dataclass(frozen=True, slots=True)
class Conversation:
    """A staff member's conversation inside a call: what a case is made of (R11, R13)."""

    employee_id: int
    answered_at: datetime
    ended_at: datetime | None
    talk_seconds: int


@wire
@dataclass(frozen=True, slots=True)
class CallFacts:
    """Everything the case rules need to know about a finished call."""

    call_session_id: int
    direction: str  # "in" / "out"
    phone: str | None
    external_id: str | None
    started_at: datetime
    ended_at: datetime
    offered: tuple[int, ...]  # incoming: operators rung, in order of their last ringing (R15)
    conversations: tuple[Conversation, ...]  # incoming: operators who answered, in order
    staff_employee_id: int | None  # outgoing: the operator who called out
    user_answered: bool  # outgoing: the user picked up and talked
    talk_seconds: int
    timed_out: bool
    # The staff member each operator of the call was mapped to when the call first named them
    # (R2): the popup and the case of one call use the same mapping, whatever changes meanwhile.
    staff_of: tuple[tuple[int, int], ...] = ()

    def staff(self) -> dict[int, int]:
        """Operator → staff member, for the operators of this call that were mapped."""
        return dict(self.staff_of)


# Live effects: what staff should see now (R5, R6). The shard maps employees to staff.
@dataclass(frozen=True, slots=True)
class Offered:
    employee_id: int
    call_session_id: int
    direction: str
    phone: str | None


@dataclass(frozen=True, slots=True)
class OfferEnded:
    employee_id: int
    call_session_id: int


@dataclass(frozen=True, slots=True)
class Answered:
    employee_id: int
    call_session_id: int
    phone: str | None
    direction: str


@dataclass(frozen=True, slots=True)
class Ended:
    """The call is over for the people in it (its call end, or its silence ran out)."""

    call_session_id: int
    employee_ids: tuple[int, ...]  # everyone who was offered or talked: their live view ends


@dataclass(frozen=True, slots=True)
class Finished:
    """No notification within the lateness bound can change the call any more: decide it."""

    facts: CallFacts


LiveEffect = Offered | OfferEnded | Answered | Ended | Finished


def _earliest(a: datetime | None, b: datetime | None) -> datetime | None:
    return b if a is None else a if b is None else min(a, b)


def _latest(a: datetime | None, b: datetime | None) -> datetime | None:
    return b if a is None else a if b is None else max(a, b)


@dataclass(slots=True)
class CallState:
    """The facts of one call session so far. Mutated only through `apply` and `on_timer`."""

    call_session_id: int
    direction: str | None = None
    phone: str | None = None
    external_id: str | None = None
    call_source: str | None = None
    initiator_employee_id: int | None = None
    legs: dict[str, Leg] = field(default_factory=dict)
    first_at: datetime | None = None
    last_at: datetime | None = None
    ended_at: datetime | None = None
    ended_received: float | None = None  # wall clock (seconds) the first call end arrived
    is_lost: bool | None = None
    talk_seconds: int | None = None
    total_seconds: int | None = None
    end_employee_id: int | None = None
    first_received: float | None = None  # wall clock (seconds) of the first notification
    last_received: float = 0.0  # wall clock (seconds) of the latest notification
    ended_live: bool = False  # `Ended` was sent
    view_changed: bool = False  # the last `apply` changed who rings or talks
    finished: bool = False
    staff_map: dict[int, int | None] = field(default_factory=dict)  # operator → staff, or None
    seen: set[int] = field(default_factory=set)  # inbox ids already applied

    # -- events in -----------------------------------------------------------------------

    def apply(
        self,
        n: Notification,
        received: float,
        inbox_id: int | None = None,
        staff_of: Mapping[int, int] | None = None,
    ) -> list[LiveEffect]:
        """Fold one notification in; return the live effects it causes (none for duplicates
        and for anything after the call was finished). `staff_of` maps operators to staff for
        the operators this call names for the first time."""
        if inbox_id is not None:
            if inbox_id in self.seen:
                return []
            self.seen.add(inbox_id)
        if self.finished:
            return []
        before = self.live_view()
        self._merge(n, received, staff_of or {})
        after = self.live_view()
        self.view_changed = after != before
        effects = self._live_changes(before, after)
        if self.ended_at is not None and not self.ended_live:
            effects.append(self._ended())
        return effects

    def finish_at(self, lateness: float) -> float | None:
        """The event time (epoch seconds) from which the call may be finished: its end plus
        the lateness bound; None while no call end has come."""
        return None if self.ended_at is None else self.ended_at.timestamp() + lateness

    def gaps(self) -> tuple[str, ...]:
        """What this ended call's own facts say never arrived (issue 11 part 2): a leg's start
        (its pick-up or end came), a leg's end (it started), the pick-up (the call end says
        somebody talked), the call end's operator (no leg or outgoing call named them), the
        outgoing call of a softphone call. Empty for a consistent call, and before its end."""
        if self.ended_at is None:
            return ()
        found: set[str] = set()
        known = {leg.employee_id for leg in self.legs.values()} | {self.initiator_employee_id}
        for leg in self.legs.values():
            if leg.started_at is None:
                found.add("leg_start")
            if leg.ended_at is None:
                found.add("leg_end")
        staff_leg = self._staff_leg() if self.is_outgoing else None
        picked = any(leg.answered_at for leg in self.legs.values() if leg is not staff_leg)
        if self.is_lost is False and self.talk_seconds and not picked:
            found.add("answer")
        if self.end_employee_id is not None and self.end_employee_id not in known:
            found.add("employee")
        if self.direction == "out" and not self.is_dial and self.initiator_employee_id is None:
            found.add("outgoing_call")
        return tuple(sorted(found))

    def held_until(self, hold: float) -> float | None:
        """The wall time until which an ended call with gaps waits past its lateness bound
        for the reconciliation that repairs it (`hold` seconds after its call end arrived;
        0 when reconciliation is off); None when it need not wait."""
        if hold <= 0 or self.ended_received is None or not self.gaps():
            return None
        return self.ended_received + hold

    def silent_until(self, silent_timeout: float) -> float:
        """The wall time after which a call that never ended is finished anyway (R32)."""
        return self.last_received + silent_timeout

    def on_timer(
        self,
        event_now: float,
        wall_now: float,
        lateness: float,
        silent_timeout: float,
        hold: float = 0.0,
    ) -> list[LiveEffect]:
        """Finish once the event clock is past the end by the lateness bound — and, for a call
        with gaps, the wall clock past `held_until(hold)` — or the call stayed silent too long;
        returns `Ended` (if not sent yet) and `Finished`."""
        if self.finished or self.first_at is None:
            return []
        end = self.finish_at(lateness)
        timed_out = wall_now >= self.silent_until(silent_timeout)
        if not timed_out:
            if end is None or event_now < end:
                return []
            held = self.held_until(hold)
            if held is not None and wall_now < held:
                return []
        self.finished = True
        effects: list[LiveEffect] = [] if self.ended_live else [self._ended()]
        return [*effects, Finished(self.facts(timed_out=self.ended_at is None))]

    def _ended(self) -> Ended:
        self.ended_live = True
        return Ended(self.call_session_id, self.employees())

    def employees(self) -> tuple[int, ...]:
        """Every operator of the call: rung, talking, or the softphone caller."""
        return tuple(
            sorted(
                {leg.employee_id for leg in self.legs.values() if leg.employee_id}
                | ({self.initiator_employee_id} if self.initiator_employee_id else set())
            )
        )

    # -- facts ---------------------------------------------------------------------------

    def _merge(self, n: Notification, received: float, staff_of: Mapping[int, int]) -> None:
        if n.employee_id is not None and n.employee_id not in self.staff_map:
            self.staff_map[n.employee_id] = staff_of.get(n.employee_id)
        self.last_received = max(self.last_received, received)
        self.first_received = (
            received if self.first_received is None else min(self.first_received, received)
        )
        self.first_at = _earliest(self.first_at, n.time)
        self.last_at = _latest(self.last_at, n.time)
        self.direction = self.direction or n.direction
        self.phone = self.phone or n.phone
        self.external_id = self.external_id or n.external_id
        self.call_source = self.call_source or n.call_source
        if n.kind is Kind.OUTGOING_CALL:
            self.initiator_employee_id = self.initiator_employee_id or n.employee_id
            self.direction = self.direction or "out"
        elif n.kind is Kind.CALL_END:
            self.ended_at = _latest(self.ended_at, n.time)
            self.ended_received = (
                received if self.ended_received is None else min(self.ended_received, received)
            )
            self.is_lost = n.is_lost if self.is_lost is None else self.is_lost
            self.talk_seconds = max(self.talk_seconds or 0, n.talk_seconds or 0)
            self.total_seconds = max(self.total_seconds or 0, n.total_seconds or 0)
            self.end_employee_id = self.end_employee_id or n.employee_id
        elif n.kind in (Kind.LEG_START, Kind.ANSWER, Kind.LEG_END):
            leg = self._leg(n)
            if n.kind is Kind.LEG_START:
                leg.started_at = _earliest(leg.started_at, n.time)
            elif n.kind is Kind.ANSWER:
                leg.answered_at = _earliest(leg.answered_at, n.time)
            else:
                leg.ended_at = _latest(leg.ended_at, n.time)
                leg.is_operator = n.is_operator if leg.is_operator is None else leg.is_operator
        # RECORDING carries nothing the call needs: recordings are stored on their own.

    def _leg(self, n: Notification) -> Leg:
        # Flat templates may lack leg_id; one leg per employee is then the best we can do.
        key = f"l{n.leg_id}" if n.leg_id is not None else f"e{n.employee_id}"
        leg = self.legs.get(key)
        if leg is None:
            leg = self.legs[key] = Leg(key)
        leg.employee_id = leg.employee_id or n.employee_id
        return leg

    @property
    def is_outgoing(self) -> bool:
        return self.direction == "out" or self.initiator_employee_id is not None

    @property
    def is_dial(self) -> bool:
        """Started through the Call API: the staff member's own phone is rung first."""
        return self.external_id is not None or self.call_source == "callapi"

    def _legs_in_order(self) -> list[Leg]:
        def order(leg: Leg) -> tuple[datetime, str]:
            t = leg.started_at or leg.answered_at or leg.ended_at or self.first_at
            assert t is not None
            return (t, leg.key)

        return sorted(self.legs.values(), key=order)

    def _staff_leg(self) -> Leg | None:
        """In a Call API call, the first leg rings the staff member's own phone."""
        legs = self._legs_in_order()
        return legs[0] if self.is_dial and legs else None

    def facts(self, *, timed_out: bool = False) -> CallFacts:
        """The call as the case rules see it; a pure function of the merged facts."""
        assert self.first_at is not None and self.last_at is not None
        ended = self.ended_at or self.last_at
        legs = self._legs_in_order()
        offered: list[int] = []
        conversations: list[Conversation] = []
        staff_employee: int | None = None
        user_answered = False
        if self.is_outgoing:
            staff_leg = self._staff_leg()
            staff_employee = (
                self.initiator_employee_id
                or (staff_leg.employee_id if staff_leg else None)
                or next((leg.employee_id for leg in legs if leg.employee_id), None)
                or self.end_employee_id
            )
            picked_up = any(leg.answered_at for leg in legs if leg is not staff_leg)
            ended_talking = bool(self.talk_seconds) and self.is_lost is False
            user_answered = picked_up or ended_talking
        else:
            for leg in legs:
                if leg.employee_id is not None:
                    # A queue may ring an operator again: R15 wants whoever was rung last.
                    if leg.employee_id in offered:
                        offered.remove(leg.employee_id)
                    offered.append(leg.employee_id)
            conversations = self._conversations(legs, ended)
        return CallFacts(
            call_session_id=self.call_session_id,
            direction="out" if self.is_outgoing else "in",
            phone=self.phone,
            external_id=self.external_id,
            started_at=self._started(ended),
            ended_at=ended,
            offered=tuple(offered),
            conversations=tuple(conversations),
            staff_employee_id=staff_employee,
            user_answered=user_answered,
            talk_seconds=self.talk_seconds or 0,
            timed_out=timed_out,
            staff_of=tuple(sorted((e, s) for e, s in self.staff_map.items() if s is not None)),
        )

    def _started(self, ended: datetime) -> datetime:
        """The call's start: its first notification, or earlier when the call end's total
        duration says the caller waited before any (voice menu, queue) — speed of answer and
        service level count that wait (R31)."""
        assert self.first_at is not None
        if self.total_seconds and self.ended_at is not None:
            return min(self.first_at, ended - timedelta(seconds=self.total_seconds))
        return self.first_at

    def _conversations(self, legs: list[Leg], ended: datetime) -> list[Conversation]:
        answered = sorted(
            (leg for leg in legs if leg.answered_at and leg.employee_id is not None),
            key=lambda leg: (leg.answered_at, leg.key),
        )
        if not answered and self.is_lost is False and self.end_employee_id is not None:
            # The pick-up never reached us but the call end says who talked.
            return [
                Conversation(
                    self.end_employee_id, self.first_at or ended, ended, self.talk_seconds or 0
                )
            ]
        result: list[Conversation] = []
        for i, leg in enumerate(answered):
            assert leg.answered_at is not None and leg.employee_id is not None
            until = leg.ended_at
            if until is None:  # a transferred leg ends when the next staff member answers
                until = answered[i + 1].answered_at if i + 1 < len(answered) else ended
            assert until is not None
            talk = int(max(0.0, (until - leg.answered_at).total_seconds()))
            if len(answered) == 1 and self.talk_seconds:
                talk = self.talk_seconds
            result.append(Conversation(leg.employee_id, leg.answered_at, leg.ended_at, talk))
        return result

    # -- what staff see live ---------------------------------------------------------------

    def live_view(self) -> tuple[frozenset[int], frozenset[int]]:
        """(employees whose phone rings for this call, employees talking in it)."""
        if self.ended_at is not None:
            return frozenset(), frozenset()
        ringing: set[int] = set()
        talking: set[int] = set()
        staff_leg = self._staff_leg() if self.is_outgoing else None
        answers = [leg.answered_at for leg in self.legs.values() if leg.answered_at]
        for leg in self.legs.values():
            if leg.employee_id is None or leg.ended_at is not None:
                continue
            if self.is_dial:
                # A Call API call rings the staff member's own phone first; they are "dialing"
                # (shown as ringing) until the user picks up (R18, R19). The user's leg may carry
                # the same employee: only the staff leg speaks for the staff member.
                if leg is staff_leg:
                    user_up = any(
                        other.answered_at for other in self.legs.values() if other is not staff_leg
                    )
                    (talking if user_up else ringing).add(leg.employee_id)
            elif self.is_outgoing:
                talking.add(leg.employee_id)  # the softphone caller is on the line from the start
            elif leg.answered_at is not None:
                talking.add(leg.employee_id)
            elif leg.started_at is not None and not any(a >= leg.started_at for a in answers):
                # Withdrawn when another operator answers while it rings (R5); a leg dialled
                # after an answer (a transfer target) does ring.
                ringing.add(leg.employee_id)
        if self.is_outgoing and self.initiator_employee_id and not self.legs:
            talking.add(self.initiator_employee_id)
        ringing -= talking
        return frozenset(ringing), frozenset(talking)

    def _live_changes(
        self,
        before: tuple[frozenset[int], frozenset[int]],
        after: tuple[frozenset[int], frozenset[int]],
    ) -> list[LiveEffect]:
        direction = "out" if self.is_outgoing else "in"
        effects: list[LiveEffect] = []
        for e in sorted(after[0] - before[0]):
            effects.append(Offered(e, self.call_session_id, direction, self.phone))
        for e in sorted(before[0] - after[0] - after[1]):
            effects.append(OfferEnded(e, self.call_session_id))
        for e in sorted(after[1] - before[1]):
            effects.append(Answered(e, self.call_session_id, self.phone, direction))
        return effects

    def snapshot(self) -> dict[str, object]:
        """What `GET /api/v1/calls/{id}` shows of a live call (times left to the caller)."""
        ringing, talking = self.live_view()
        answered = [leg.answered_at for leg in self.legs.values() if leg.answered_at]
        state = "ended" if self.ended_at or self.finished else "talking" if talking else "ringing"
        return {
            "call_session_id": self.call_session_id,
            "direction": "out" if self.is_outgoing else "in",
            "state": state,
            "phone": self.phone,
            "employee_ids": sorted(
                {leg.employee_id for leg in self.legs.values() if leg.employee_id}
                | ({self.initiator_employee_id} if self.initiator_employee_id else set())
            ),
            "ringing_employee_ids": sorted(ringing),
            "talking_employee_ids": sorted(talking),
            "started_at": self.first_at,
            "answered_at": min(answered) if answered else None,
            "ended_at": self.ended_at,
        }
