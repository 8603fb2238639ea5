"""What a shard does with its entities, without Ray or I/O (STYLE: Orleans grains, Akka sharding).

A shard hosts many logical entities — calls and agents (staff) — routed by a stable hash of
their key. `handle` applies a batch of envelopes synchronously and returns what the shell must
send on: live events for staff, finished calls for the writer to decide, envelopes for agents
on other shards, board changes. No entity ever waits on another's reply.

A failure belongs to one call (STYLE habit 11): an exception while a call handles a
notification or its timer quarantines that call alone, with its error, and every other entity
in the same turn goes on.
"""

from __future__ import annotations

import heapq
import traceback
import zlib
from collections import defaultdict
from dataclasses import dataclass, field
from typing import Any

from callrouter.domain.agent import AgentState
from callrouter.domain.call import (
    Answered,
    CallFacts,
    CallState,
    Ended,
    Finished,
    LiveEffect,
    Offered,
    OfferEnded,
)
from callrouter.domain.clock import ClockReading
from callrouter.domain.notifications import Notification
from callrouter.domain.wallboard import FinishedCall, LiveCall, finished_call
from callrouter.domain.wire import wire

RETAIN_SECONDS = 600.0  # a finished call lingers this long (wall) to absorb stray repeats


# -- envelopes: messages between entities ------------------------------------------------------


@wire
@dataclass(frozen=True, slots=True)
class Inbound:
    """A stored notification for its call entity (`inbox_id` None for tests without storage)."""

    inbox_id: int | None
    received: float
    notification: Notification


@wire
@dataclass(frozen=True, slots=True)
class ToAgent:
    staff_id: int
    change: str  # offered / offer_ended / answered / ended
    call_session_id: int
    event: dict[str, Any] | None = None


Envelope = Inbound | ToAgent


def entity_key(env: Envelope) -> str:
    if isinstance(env, Inbound):
        return f"call:{env.notification.call_session_id}"
    return f"agent:{env.staff_id}"


def shard_of(key: str, shards: int) -> int:
    """Stable routing: the same key goes to the same shard in every process (never `hash()`)."""
    return zlib.crc32(key.encode()) % shards


# -- what a turn produces ----------------------------------------------------------------------


@wire
@dataclass(frozen=True, slots=True)
class Live:
    """A live event for one staff member (API.md "Live events")."""

    staff_id: int
    event: dict[str, Any]


@wire
@dataclass(frozen=True, slots=True)
class Quarantined:
    """A call that failed here: the writer keeps it with its error (STYLE habit 11)."""

    call_session_id: int
    stage: str
    error: str
    inbox_ids: tuple[int, ...]


@dataclass(slots=True)
class Output:
    live: list[Live] = field(default_factory=list)
    finished: list[CallFacts] = field(default_factory=list)  # for the writer to decide
    late: list[Inbound] = field(default_factory=list)  # news of finished calls, for the writer
    quarantined: list[Quarantined] = field(default_factory=list)
    forwards: dict[int, list[Envelope]] = field(default_factory=lambda: defaultdict(list))
    board: list[LiveCall | FinishedCall] = field(default_factory=list)  # for the wallboard

    def add(self, other: Output) -> None:
        """Append what `other` holds to this output."""
        self.live += other.live
        self.finished += other.finished
        self.late += other.late
        self.quarantined += other.quarantined
        self.board += other.board
        for target, envelopes in other.forwards.items():
            self.forwards[target] += envelopes

    def __bool__(self) -> bool:
        return bool(
            self.live
            or self.finished
            or self.late
            or self.quarantined
            or self.forwards
            or self.board
        )


# (offered?, started through the Call API?) → the live event's type (API.md "Live events").
LIVE_KINDS = {
    (True, False): "call.ringing",
    (True, True): "call.dialing",
    (False, False): "call.answered",
    (False, True): "call.connected",
}


def live_event(kind: str, call: CallState, **fields: Any) -> dict[str, Any]:
    """Every live event about a call is built here, one shape per type."""
    event: dict[str, Any] = {"type": kind, "call_session_id": call.call_session_id}
    if kind in LIVE_KINDS.values():
        event |= {
            "direction": "out" if call.is_outgoing else "in",
            "phone": call.phone,
            "external_id": call.external_id,
        }
    return event | fields


class ShardHost:
    """The entities of shard `index` of `count`."""

    def __init__(
        self,
        index: int,
        count: int,
        staff_of: dict[int, int] | None = None,
        silent_timeout: float = 7200.0,
        lateness: float = 30.0,
        hold: float = 0.0,
    ) -> None:
        self.index = index
        self.count = count
        self.staff_of = dict(staff_of or {})
        self.silent_timeout = silent_timeout
        self.lateness = lateness
        # Seconds (wall) an ended call with gaps waits for the reconciliation that repairs it
        # (issue 11 part 2); 0: reconciliation is off, every call is decided at its bound.
        self.hold = hold
        self.held: set[int] = set()  # calls past their bound, waiting for a reconciliation
        self.clock: ClockReading | None = None
        self.calls: dict[int, CallState] = {}
        self.agents: dict[int, AgentState] = {}
        self.broken: dict[int, Quarantined] = {}  # quarantined calls: their news joins them
        # Deadlines (STYLE: aioquic's get_timer): a tick looks only at what is due.
        self.by_end: list[tuple[float, int]] = []  # (event time to finish at, call)
        self.by_silence: list[tuple[float, int]] = []  # (wall time to give up at, call)
        self.by_retention: list[tuple[float, int]] = []  # (wall time to forget at, call)
        self.by_hold: list[tuple[float, int]] = []  # (wall time a held call gives up at, call)

    def configure(
        self, staff_of: dict[int, int], silent_timeout: float, lateness: float, hold: float = 0.0
    ) -> None:
        self.staff_of = dict(staff_of)
        if hold != self.hold:
            self.hold = hold
            self.by_hold = [(u, c) for c in self.held if (u := self._held_until(c)) is not None]
            heapq.heapify(self.by_hold)
            for call_id in self.held:  # look again at the next tick: the wait may be over
                heapq.heappush(self.by_end, (float("-inf"), call_id))
        if (silent_timeout, lateness) != (self.silent_timeout, self.lateness):
            self.silent_timeout, self.lateness = silent_timeout, lateness
            self.by_end = [(d, c) for c, s in self.calls.items() if (d := self._end(s)) is not None]
            self.by_silence = [(s.silent_until(silent_timeout), c) for c, s in self.calls.items()]
            heapq.heapify(self.by_end)
            heapq.heapify(self.by_silence)

    def _end(self, call: CallState) -> float | None:
        return None if call.finished else call.finish_at(self.lateness)

    def _held_until(self, call_id: int) -> float | None:
        call = self.calls.get(call_id)
        return None if call is None or call.finished else call.held_until(self.hold)

    # -- turns --------------------------------------------------------------------------

    def handle(self, envelopes: list[Envelope], now: float) -> Output:
        """Apply envelopes in order; what they make for agents on this shard is applied in the
        same turn, the rest is returned in `forwards`."""
        out = Output()
        self._route(self._each(envelopes, now, out), out, now)
        return out

    def _each(self, envelopes: list[Envelope], now: float, out: Output) -> list[Envelope]:
        produced: list[Envelope] = []
        for env in envelopes:
            if isinstance(env, Inbound):
                produced += self._inbound(env, now, out)
            else:
                self._agent(env)
        return produced

    def _route(self, produced: list[Envelope], out: Output, now: float) -> None:
        local: list[Envelope] = []
        for env in produced:
            target = shard_of(entity_key(env), self.count)
            (local if target == self.index else out.forwards[target]).append(env)
        if local:
            self._each(local, now, out)

    def waiting(self) -> bool:
        """Some call here has ended and waits for the lateness bound to be finished."""
        return bool(self.by_end)

    def next_due(self) -> float | None:
        """The wall time of the next deadline that does not move with the event clock (a
        silent call giving up, a held call's wait ending), None when there is none: an idle
        shard needs no delivery before it. Forgetting finished calls is never urgent: it
        rides on whatever delivery comes."""
        heads = [heap[0][0] for heap in (self.by_silence, self.by_hold) if heap]
        return min(heads) if heads else None

    def tick(self, now: float) -> Output:
        """Fire what is due: finish calls the event clock has passed by the lateness bound and
        calls silent too long (R32), forget finished calls after their retention."""
        out = Output()
        event_now = self.clock.at(now) if self.clock is not None else float("-inf")
        due: set[int] = set()
        while self.by_end and self.by_end[0][0] <= event_now:
            due.add(heapq.heappop(self.by_end)[1])
        while self.by_hold and self.by_hold[0][0] <= now:
            due.add(heapq.heappop(self.by_hold)[1])
        while self.by_silence and self.by_silence[0][0] <= now:
            call_id = heapq.heappop(self.by_silence)[1]
            call = self.calls.get(call_id)
            if call is not None and not call.finished:
                until = call.silent_until(self.silent_timeout)
                if until > now:  # news came since: look again then
                    heapq.heappush(self.by_silence, (until, call_id))
                else:
                    due.add(call_id)
        produced: list[Envelope] = []
        for call_id in sorted(due):
            call = self.calls.get(call_id)
            if call is None or call.finished:
                continue
            try:
                effects = call.on_timer(
                    event_now, now, self.lateness, self.silent_timeout, self.hold
                )
                produced += self._effects(call, effects, out)
            except Exception:  # noqa: BLE001 - one call's failure stays its own
                self.held.discard(call_id)
                self._quarantine(call_id, "timer", call.seen, out)
                continue
            if call.finished:
                self.held.discard(call_id)
                heapq.heappush(self.by_retention, (now + RETAIN_SECONDS, call_id))
            elif (end := self._end(call)) is not None and end > event_now:
                heapq.heappush(self.by_end, (end, call_id))  # a later call end moved it
            elif (hold_end := call.held_until(self.hold)) is not None and call_id not in self.held:
                self.held.add(call_id)  # past its bound with gaps: wait for the repairs
                heapq.heappush(self.by_hold, (hold_end, call_id))
        while self.by_retention and self.by_retention[0][0] <= now:
            call_id = heapq.heappop(self.by_retention)[1]
            call = self.calls.get(call_id)
            if call is not None and call.finished:
                del self.calls[call_id]
        self._route(produced, out, now)
        return out

    # -- calls --------------------------------------------------------------------------

    def _inbound(self, env: Inbound, now: float, out: Output) -> list[Envelope]:
        n = env.notification
        call_id = n.call_session_id
        if call_id in self.broken:
            ids = {env.inbox_id} if env.inbox_id is not None else set()
            self._quarantine(call_id, "entity", ids, out)
            return []
        call = self.calls.get(call_id)
        if call is None:
            call = self.calls[call_id] = CallState(call_id)
            heapq.heappush(self.by_silence, (env.received + self.silent_timeout, call_id))
        if call.finished:
            if env.inbox_id is not None and env.inbox_id in call.seen:
                # Delivered again (the writer restarted): its decision may have been lost.
                out.finished.append(call.facts(timed_out=call.ended_at is None))
            else:
                out.late.append(env)  # news of a finished call: the writer applies what it can
            return []
        try:
            new = call.first_at is None
            had_end = call.finish_at(self.lateness)
            effects = call.apply(n, env.received, env.inbox_id, self.staff_of)
            end = call.finish_at(self.lateness)
            if end is not None and (end != had_end or call_id in self.held):
                # A held call looks again at the next tick: a repair may have filled its gaps.
                self.held.discard(call_id)
                heapq.heappush(self.by_end, (end, call_id))
            if new or call.view_changed or effects:
                out.board.append(self._board_view(call))
            return self._effects(call, effects, out)
        except Exception:  # noqa: BLE001 - one call's failure stays its own
            ids = call.seen | ({env.inbox_id} if env.inbox_id is not None else set())
            self._quarantine(call_id, "entity", ids, out)
            return []

    def _quarantine(self, call_id: int, stage: str, inbox_ids: set[int], out: Output) -> None:
        error = traceback.format_exc(limit=8)
        broken = self.broken.get(call_id)
        ids = tuple(sorted(set(broken.inbox_ids if broken else ()) | inbox_ids))
        entry = Quarantined(call_id, stage, broken.error if broken else error, ids)
        self.broken[call_id] = entry
        self.calls.pop(call_id, None)
        self.held.discard(call_id)
        out.quarantined.append(entry)

    def reset(self, call_ids: list[int]) -> None:
        """Forget these calls (a quarantined call about to be retried from the inbox)."""
        for call_id in call_ids:
            self.calls.pop(call_id, None)
            self.broken.pop(call_id, None)
            self.held.discard(call_id)

    def _effects(self, call: CallState, effects: list[LiveEffect], out: Output) -> list[Envelope]:
        """Turn a call's effects into live events for its mapped staff (R2, R5, R6), finished
        facts for the writer, and agent envelopes."""
        produced: list[Envelope] = []
        staff_of = call.staff_map
        for effect in effects:
            if isinstance(effect, Finished):
                out.finished.append(effect.facts)
                out.board.append(finished_call(effect.facts, effect.facts.staff()))
                continue
            if isinstance(effect, Ended):
                # The wallboard counts the call now; its settled facts replace these later.
                facts = call.facts(timed_out=False)
                out.board.append(finished_call(facts, facts.staff()))
                staff = dict.fromkeys(s for e in effect.employee_ids if (s := staff_of.get(e)))
                for ended_staff in staff:
                    event = live_event("call.ended", call, case_ids=[])
                    out.live.append(Live(ended_staff, event))
                    produced.append(ToAgent(ended_staff, "ended", call.call_session_id))
                continue
            staff_id = staff_of.get(effect.employee_id)
            if staff_id is None:
                continue
            if isinstance(effect, OfferEnded):
                event = live_event("call.offer_ended", call)
                produced.append(ToAgent(staff_id, "offer_ended", call.call_session_id))
            else:  # a Call API call shows as dialing, then connected
                assert isinstance(effect, Offered | Answered)
                offered = isinstance(effect, Offered)
                event = live_event(LIVE_KINDS[(offered, call.is_dial)], call)
                change = "offered" if offered else "answered"
                produced.append(ToAgent(staff_id, change, call.call_session_id, event))
            out.live.append(Live(staff_id, event))
        return produced

    # -- agents -------------------------------------------------------------------------

    def _agent(self, env: ToAgent) -> None:
        agent = self.agents.setdefault(env.staff_id, AgentState(env.staff_id))
        if env.change == "offered" and env.event is not None:
            agent.offered(env.call_session_id, env.event)
        elif env.change == "answered" and env.event is not None:
            agent.answered(env.call_session_id, env.event)
        elif env.change == "offer_ended":
            agent.offer_ended(env.call_session_id)
        else:
            agent.ended(env.call_session_id)
        if agent.idle:
            del self.agents[env.staff_id]  # passivated: nothing live to remember

    def resync_agents(self, shard: int) -> Output:
        """Tell the agents of `shard` (restarted, its memory gone) what this shard's live calls
        show them now."""
        out = Output()
        for call in self.calls.values():
            if call.finished or call.first_at is None:
                continue
            ringing, talking = call.live_view()
            for employees, offered in ((ringing, True), (talking, False)):
                for e in employees:
                    staff_id = call.staff_map.get(e)
                    if staff_id is None or shard_of(f"agent:{staff_id}", self.count) != shard:
                        continue
                    event = live_event(LIVE_KINDS[(offered, call.is_dial)], call)
                    change = "offered" if offered else "answered"
                    env = ToAgent(staff_id, change, call.call_session_id, event)
                    if shard == self.index:
                        self._agent(env)
                    else:
                        out.forwards[shard].append(env)
        return out

    # -- the wallboard's view ---------------------------------------------------------------

    def _board_view(self, call: CallState) -> LiveCall:
        ringing, talking = call.live_view()
        staff_of = call.staff_map
        return LiveCall(
            call.call_session_id,
            "out" if call.is_outgoing else "in",
            call.first_received or 0.0,
            frozenset(s for e in ringing if (s := staff_of.get(e))),
            frozenset(s for e in talking if (s := staff_of.get(e))),
            ended=call.ended_at is not None,
        )

    # -- reads --------------------------------------------------------------------------

    def call_snapshot(self, call_session_id: int) -> dict[str, Any] | None:
        call = self.calls.get(call_session_id)
        if call is None or call.first_at is None:
            return None
        snap = call.snapshot()
        employees: list[int] = snap["employee_ids"]  # type: ignore[assignment]
        employee_of = {s: e for e in employees if (s := call.staff_map.get(e))}
        snap["employee_of"] = employee_of
        snap["staff_ids"] = sorted(employee_of)
        return snap

    def active_calls(self) -> list[dict[str, Any]]:
        return [
            s for cid, c in self.calls.items() if not c.finished and (s := self.call_snapshot(cid))
        ]

    def agent_replay(self, staff_id: int) -> list[dict[str, Any]]:
        agent = self.agents.get(staff_id)
        return agent.replay() if agent else []
