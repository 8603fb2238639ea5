"""The live wallboard (R31) as a pure state: live calls, staff states and today's counters.

Fed by board events from the shards (a call's live view changed, a call finished) and by the
frontends' list of connected staff; `snapshot(now)` is the API shape. Today's counters are a
fold of finished calls, so a restart rebuilds them from the stored calls of today.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import date, datetime
from typing import Any
from zoneinfo import ZoneInfo

from callrouter.domain.call import CallFacts
from callrouter.domain.routing import tally
from callrouter.domain.wire import wire


@wire
@dataclass(frozen=True, slots=True)
class LiveCall:
    """A call's live view as its shard last reported it."""

    call_session_id: int
    direction: str
    since: float  # wall clock of its first notification: waits are measured from it
    ringing: frozenset[int]  # staff whose phone rings for it
    talking: frozenset[int]  # staff in conversation
    ended: bool = False  # the call end arrived: no longer waiting, only settling


@wire
@dataclass(frozen=True, slots=True)
class FinishedCall:
    """A finished call as the wallboard counts it (incoming calls only make the service figures)."""

    call_session_id: int
    direction: str
    started_at: datetime
    answered: bool
    wait_seconds: float | None  # started → first answer
    talk_seconds: int
    offered: tuple[int, ...]  # staff rung
    talked: tuple[tuple[int, int], ...]  # (staff, talk seconds) per conversation


@dataclass(slots=True)
class StaffDay:
    answered: int = 0
    missed: int = 0
    talk_seconds: int = 0


@dataclass(slots=True)
class Wallboard:
    tz: ZoneInfo
    service_level_seconds: int = 20
    day: date | None = None
    live: dict[int, LiveCall] = field(default_factory=dict)
    counted: dict[int, FinishedCall] = field(default_factory=dict)  # today's, as counted
    answered: int = 0
    missed: int = 0
    within_level: int = 0
    wait_total: float = 0.0
    talk_total: int = 0
    staff_day: dict[int, StaffDay] = field(default_factory=dict)
    hourly: list[list[int]] = field(
        default_factory=lambda: [[0, 0] for _ in range(24)]
    )  # answered, missed
    staff: set[int] = field(default_factory=set)  # every staff member the board shows
    online: set[int] = field(default_factory=set)
    seq: int = 0
    routed: dict[int, int] = field(default_factory=dict)  # today's routed calls → staff (issue 11)

    def call_changed(self, call: LiveCall) -> None:
        """A live call's view changed; an incoming call with nobody ringing or talking may still
        wait in the PBX's queue (it counts as ringing until it ends)."""
        if call.ended:
            self.live.pop(call.call_session_id, None)
        else:
            self.live[call.call_session_id] = call
        self.seq += 1

    def call_finished(self, call: FinishedCall) -> None:
        """Count a call on the day (account zone) it started: at its end, and once more when it
        is settled (a late leg may change what it was), replacing what was counted."""
        self.live.pop(call.call_session_id, None)
        self.seq += 1
        self._roll(call.started_at.astimezone(self.tz).date())
        if call.started_at.astimezone(self.tz).date() != self.day:
            return
        before = self.counted.get(call.call_session_id)
        if before == call:
            return
        if before is not None:
            self._count(before, -1)
        self.counted[call.call_session_id] = call
        self._count(call, 1)

    def _count(self, call: FinishedCall, sign: int) -> None:
        """Add a call to today's figures (`sign` 1), or take it back out (-1)."""
        talked = dict(call.talked)
        for staff_id in call.offered:
            if staff_id not in talked:
                self._day(staff_id).missed += sign
        for staff_id, seconds in talked.items():
            day = self._day(staff_id)
            day.answered += sign
            day.talk_seconds += sign * seconds
        if call.direction != "in":
            return
        self.hourly[call.started_at.astimezone(self.tz).hour][0 if call.answered else 1] += sign
        if call.answered:
            self.answered += sign
            self.talk_total += sign * call.talk_seconds
            wait = call.wait_seconds or 0.0
            self.wait_total += sign * wait
            self.within_level += sign * (wait <= self.service_level_seconds)
        else:
            self.missed += sign

    def call_routed(self, call_session_id: int, staff_id: int, at: datetime) -> None:
        """Smart routing sent this call to `staff_id` (counted on the day it was routed)."""
        self._roll(at.astimezone(self.tz).date())
        if at.astimezone(self.tz).date() == self.day:
            self.routed[call_session_id] = staff_id
            self.seq += 1

    def staff_states(self, extra: set[int] | None = None) -> dict[int, str]:
        """Each staff member's state: talking, ringing, free (a console open) or offline."""
        in_ringing = {s for c in self.live.values() for s in c.ringing}
        in_talk = {s for c in self.live.values() for s in c.talking}

        def state(staff_id: int) -> str:
            if staff_id in in_talk:
                return "talking"
            if staff_id in in_ringing:
                return "ringing"
            return "free" if staff_id in self.online else "offline"

        return {s: state(s) for s in sorted(self.staff | in_ringing | in_talk | (extra or set()))}

    def set_online(self, staff_ids: set[int]) -> None:
        if staff_ids != self.online:
            self.online = set(staff_ids)
            self.seq += 1

    def set_staff(self, staff_ids: set[int], service_level_seconds: int) -> None:
        self.staff = set(staff_ids)
        self.service_level_seconds = service_level_seconds
        self.seq += 1

    def _day(self, staff_id: int) -> StaffDay:
        return self.staff_day.setdefault(staff_id, StaffDay())

    def _roll(self, today: date) -> None:
        """A new day starts the counters afresh."""
        if self.day is None or today > self.day:
            self.day = today
            self.seq += 1  # open wallboards must drop yesterday's figures at midnight
            self.counted.clear()
            self.answered = self.missed = self.within_level = self.talk_total = 0
            self.wait_total = 0.0
            self.staff_day.clear()
            self.routed.clear()
            self.hourly = [[0, 0] for _ in range(24)]

    def snapshot(self, now: float, today: date) -> dict[str, Any]:
        """The R31 wallboard (API.md `GET /api/v1/wallboard`)."""
        self._roll(today)
        # Waiting callers: incoming calls nobody talks in yet (a dial-out ringing the staff
        # member's own phone is not a caller waiting).
        ringing = [c for c in self.live.values() if not c.talking and c.direction == "in"]
        talking = [c for c in self.live.values() if c.talking]
        states = self.staff_states(set(self.staff_day))
        everyone = list(states)
        talked = {c: [s for s, _ in f.talked] for c in self.routed if (f := self.counted.get(c))}
        routed = tally(self.routed.items(), talked)  # staff → [routed, reached]
        waits = [now - c.since for c in ringing if c.direction == "in"]
        return {
            "ringing": len(ringing),
            "longest_wait_seconds": round(max(waits), 1) if waits else 0,
            "talking": len(talking),
            "staff": {
                k: sum(1 for v in states.values() if v == k)
                for k in ("free", "ringing", "talking", "offline")
            },
            "today": {
                "answered": self.answered,
                "missed": self.missed,
                "service_level": round(self.within_level / self.answered, 4)
                if self.answered
                else None,
                "avg_answer_seconds": round(self.wait_total / self.answered, 1)
                if self.answered
                else None,
                "avg_talk_seconds": round(self.talk_total / self.answered, 1)
                if self.answered
                else None,
            },
            "routed": {
                "routed": sum(r for r, _ in routed.values()),
                "reached": sum(r for _, r in routed.values()),
            },
            "per_staff": [
                {
                    "staff_id": s,
                    "state": states[s],
                    "answered": d.answered,
                    "missed": d.missed,
                    "talk_seconds": d.talk_seconds,
                    "routed": routed.get(s, [0, 0])[0],
                    "reached": routed.get(s, [0, 0])[1],
                }
                for s in everyone
                for d in [self.staff_day.get(s, StaffDay())]
            ],
            "by_hour": [
                {"hour": h, "answered": self.hourly[h][0], "missed": self.hourly[h][1]}
                for h in range(24)
            ],
            "seq": self.seq,
        }


def finished_call(facts: CallFacts, staff_of: dict[int, int]) -> FinishedCall:
    """How the wallboard counts a finished call: who was rung, who talked and how long."""
    if facts.direction == "out":
        staff = staff_of.get(facts.staff_employee_id or -1)
        talked = ((staff, facts.talk_seconds),) if staff and facts.user_answered else ()
        return FinishedCall(
            facts.call_session_id,
            "out",
            facts.started_at,
            facts.user_answered,
            None,
            facts.talk_seconds,
            (),
            talked,
        )
    talked_by: dict[int, int] = {}
    for conv in facts.conversations:
        if (staff := staff_of.get(conv.employee_id)) is not None:
            talked_by[staff] = talked_by.get(staff, 0) + conv.talk_seconds
    first = min((c.answered_at for c in facts.conversations), default=None)
    wait = (first - facts.started_at).total_seconds() if first else None
    offered = tuple(dict.fromkeys(s for e in facts.offered if (s := staff_of.get(e))))
    return FinishedCall(
        facts.call_session_id,
        "in",
        facts.started_at,
        bool(facts.conversations),
        wait,
        facts.talk_seconds,
        offered,
        tuple(talked_by.items()),
    )
