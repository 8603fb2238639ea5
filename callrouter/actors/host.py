"""What a shard does with its entities, without Ray or I/O (STYLE: Orleans grains, Akka sharding).

A shard hosts many logical entities — calls, agents (staff) and contacts (callers) — routed by
a stable hash of their key. `handle` applies a batch of envelopes synchronously and returns the
outbox jobs (storage, live events) and the envelopes bound for other shards: no entity ever
waits on another's reply.
"""

from __future__ import annotations

import zlib
from collections import defaultdict
from dataclasses import dataclass, field
from typing import Any

from callrouter.domain.agent import AgentState
from callrouter.domain.call import (
    CallFacts,
    CallState,
    Finished,
    LiveEffect,
    Offered,
    OfferEnded,
)
from callrouter.domain.contact import ContactState
from callrouter.domain.notifications import Kind, Notification
from callrouter.domain.phones import normalize_phone
from callrouter.domain.wallboard import FinishedCall, LiveCall, finished_call

RETAIN_SECONDS = 120.0
# (offered?, started through the Call API?) → the live event's type (API.md "Live events").
LIVE_KINDS = {
    (True, False): "call.ringing",
    (True, True): "call.dialing",
    (False, False): "call.answered",
    (False, True): "call.connected",
}  # a finished call lingers this long to absorb late notifications


# -- envelopes: messages between entities ------------------------------------------------------


@dataclass(frozen=True, slots=True)
class Inbound:
    """A stored notification for its call entity (`inbox_id` None for tests without storage)."""

    inbox_id: int | None
    received: float
    notification: Notification


@dataclass(frozen=True, slots=True)
class ToContact:
    key: str
    facts: CallFacts
    employee_ids: tuple[int, ...]


@dataclass(frozen=True, slots=True)
class ToAgent:
    staff_id: int
    change: str  # offered / offer_ended / answered / ended
    call_session_id: int
    event: dict[str, Any] | None = None


Envelope = Inbound | ToContact | ToAgent


def entity_key(env: Envelope) -> str:
    if isinstance(env, Inbound):
        return f"call:{env.notification.call_session_id}"
    if isinstance(env, ToContact):
        return f"contact:{env.key}"
    return f"agent:{env.staff_id}"


def shard_of(key: str, shards: int) -> int:
    """Stable routing: the same key goes to the same shard in every process (never `hash()`)."""
    return zlib.crc32(key.encode()) % shards


# -- outbox jobs: effects the shard shell runs in order ---------------------------------------


@dataclass(frozen=True, slots=True)
class Finalize:
    facts: CallFacts
    staff_ids: tuple[int, ...]  # staff whose live view of the call ends


@dataclass(frozen=True, slots=True)
class StoreRecording:
    notification: Notification
    inbox_id: int | None


@dataclass(frozen=True, slots=True)
class MarkDone:
    """Notifications whose effects are already durable; `call_session_id`: all of that call's."""

    inbox_ids: tuple[int, ...]
    call_session_id: int | None = None


@dataclass(frozen=True, slots=True)
class Live:
    """A live event for one staff member; the shell adds storage data (the caller's profile)."""

    staff_id: int
    event: dict[str, Any]


Job = Finalize | StoreRecording | MarkDone | Live


@dataclass(slots=True)
class Output:
    jobs: list[Job] = field(default_factory=list)
    forwards: dict[int, list[Envelope]] = field(default_factory=lambda: defaultdict(list))
    board: list[LiveCall | FinishedCall] = field(default_factory=list)  # for the wallboard (R31)


class ShardHost:
    """The entities of shard `index` of `count`."""

    def __init__(
        self,
        index: int,
        count: int,
        staff_of: dict[int, int] | None = None,
        silent_timeout: float = 7200.0,
    ) -> None:
        self.index = index
        self.count = count
        self.staff_of = dict(staff_of or {})
        self.silent_timeout = silent_timeout
        self.calls: dict[int, CallState] = {}
        self.finished_at: dict[int, float] = {}
        self.agents: dict[int, AgentState] = {}
        self.contacts: dict[str, ContactState] = {}

    def configure(self, staff_of: dict[int, int], silent_timeout: float) -> None:
        self.staff_of = dict(staff_of)
        self.silent_timeout = silent_timeout

    # -- turns --------------------------------------------------------------------------

    def handle(self, envelopes: list[Envelope], now: float) -> Output:
        """Apply envelopes in order; those for entities of this shard that they produce are
        applied in the same turn, the others are returned in `forwards`."""
        out = Output()
        queue = list(envelopes)
        while queue:
            env = queue.pop(0)
            for produced in self._one(env, now, out):
                target = shard_of(entity_key(produced), self.count)
                if target == self.index:
                    queue.append(produced)
                else:
                    out.forwards[target].append(produced)
        return out

    def tick(self, now: float) -> Output:
        """Fire due timers: settle call ends, finalize silent calls, passivate old calls."""
        produced: list[Envelope] = []
        out = Output()
        for call_id, call in list(self.calls.items()):
            if call.finished:
                if now - self.finished_at.get(call_id, now) > RETAIN_SECONDS:
                    del self.calls[call_id]
                    self.finished_at.pop(call_id, None)
                continue
            effects = call.on_timer(now, self.silent_timeout)
            if effects:
                self.finished_at[call_id] = now
                produced += self._live(call, effects, out)
        for agent_id, agent in list(self.agents.items()):
            if agent.idle:
                del self.agents[agent_id]  # passivated: nothing live to remember
        for key, contact in list(self.contacts.items()):
            if now - contact.touched > RETAIN_SECONDS:
                del self.contacts[key]  # storage keeps the calls decided: repeats stay no-ops
        # The caller's contact and the staff's agents may live on other shards: route them,
        # as `handle` routes what its envelopes produce.
        local: list[Envelope] = []
        for env in produced:
            target = shard_of(entity_key(env), self.count)
            if target == self.index:
                local.append(env)
            else:
                out.forwards[target].append(env)
        more = self.handle(local, now)
        out.jobs += more.jobs
        for target, envs in more.forwards.items():
            out.forwards[target] += envs
        return out

    def _one(self, env: Envelope, now: float, out: Output) -> list[Envelope]:
        if isinstance(env, Inbound):
            return self._inbound(env, out)
        if isinstance(env, ToContact):
            contact = self.contacts.setdefault(env.key, ContactState(env.key))
            contact.touched = now
            if contact.accept(env.facts.call_session_id):
                out.jobs.append(Finalize(env.facts, env.employee_ids))
            else:  # decided before: only its late notifications are left to mark handled
                out.jobs.append(MarkDone((), env.facts.call_session_id))
            return []
        agent = self.agents.setdefault(env.staff_id, AgentState(env.staff_id))
        if env.change == "offered" and env.event is not None:
            agent.offered(env.call_session_id, env.event)
        elif env.change == "answered" and env.event is not None:
            agent.answered(env.call_session_id, env.event)
        elif env.change == "offer_ended":
            agent.offer_ended(env.call_session_id)
        else:
            agent.ended(env.call_session_id)
        return []

    def _inbound(self, env: Inbound, out: Output) -> list[Envelope]:
        n = env.notification
        if n.kind is Kind.RECORDING:
            out.jobs.append(StoreRecording(n, env.inbox_id))
            return []
        call = self.calls.get(n.call_session_id)
        if call is None:
            call = self.calls[n.call_session_id] = CallState(n.call_session_id)
        if call.finished:
            # Late news of a call already decided: nothing to apply, but it is handled.
            if env.inbox_id is not None and env.inbox_id not in call.seen:
                call.seen.add(env.inbox_id)
                out.jobs.append(MarkDone((env.inbox_id,)))
            return []
        before = call.live_view() if call.first_at is not None else None
        effects = call.apply(n, env.received, env.inbox_id)
        if call.live_view() != before or n.kind is Kind.CALL_END:  # the end stops the wait too
            out.board.append(self._board_view(call))
        return self._live(call, effects, out)

    def _live(
        self, call: CallState, effects: list[LiveEffect], out: Output | None = None
    ) -> list[Envelope]:
        """Turn a call's live effects into events for the mapped staff (R2, R5, R6)."""
        produced: list[Envelope] = []
        for effect in effects:
            if isinstance(effect, Finished):
                if out is not None:
                    out.board.append(finished_call(effect.facts, self.staff_of))
                staff = tuple(
                    dict.fromkeys(s for e in effect.employee_ids if (s := self.staff_of.get(e)))
                )
                key = normalize_phone(effect.facts.phone) or f"call-{call.call_session_id}"
                produced.append(ToContact(key, effect.facts, staff))
                produced += [ToAgent(s, "ended", call.call_session_id) for s in staff]
                continue
            staff_id = self.staff_of.get(effect.employee_id)
            if staff_id is None:
                continue
            if isinstance(effect, OfferEnded):
                event = {"type": "call.offer_ended", "call_session_id": effect.call_session_id}
                produced.append(ToAgent(staff_id, "offer_ended", effect.call_session_id))
            else:  # Offered or Answered; a Call API call shows as dialing, then connected
                offered = isinstance(effect, Offered)
                kind = LIVE_KINDS[(offered, call.is_dial)]
                event = {
                    "type": kind,
                    "call_session_id": effect.call_session_id,
                    "direction": effect.direction,
                    "phone": effect.phone,
                    "external_id": call.external_id,
                }
                change = "offered" if offered else "answered"
                produced.append(ToAgent(staff_id, change, effect.call_session_id, event))
            if out is not None:
                out.jobs.append(Live(staff_id, event))
        return produced

    # -- the wallboard's view ---------------------------------------------------------------

    def _board_view(self, call: CallState) -> LiveCall:
        ringing, talking = call.live_view()
        return LiveCall(
            call.call_session_id,
            "out" if call.is_outgoing else "in",
            call.first_received or 0.0,
            frozenset(s for e in ringing if (s := self.staff_of.get(e))),
            frozenset(s for e in talking if (s := self.staff_of.get(e))),
            ended=call.ended_at is not None,
        )

    # -- reads --------------------------------------------------------------------------

    def call_snapshot(self, call_session_id: int) -> dict[str, Any] | None:
        call = self.calls.get(call_session_id)
        if call is None or call.first_at is None:
            return None
        snap = call.snapshot()
        employees: list[int] = snap["employee_ids"]  # type: ignore[assignment]
        employee_of = {s: e for e in employees if (s := self.staff_of.get(e))}
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
