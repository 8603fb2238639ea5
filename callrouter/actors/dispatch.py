"""Where the writer sends each stored notification, and when a finished call may be decided:
the writer's memory, without Ray or I/O (as `host.py` is the shard's).

- Every stored notification moves the event clock (`domain/clock.py`).
- A recording, and any news of a call already finished or decided, stays with the writer:
  a decided call stays decided (R32); its news is applied to the stored call once its
  decision is written.
- Everything else goes to the shard of its call, and a call end joins the order of its
  caller's calls (`domain/ordering.py`).
- A finished call is released for its decision when no earlier-ending call of its caller is
  still undecided.
"""

from __future__ import annotations

from collections import OrderedDict, defaultdict
from collections.abc import Sequence
from dataclasses import dataclass, field

from callrouter.actors.host import Inbound, shard_of
from callrouter.domain.call import CallFacts
from callrouter.domain.clock import EventClock
from callrouter.domain.notifications import Kind, Notification
from callrouter.domain.ordering import DecisionOrder
from callrouter.domain.phones import caller_key

REMEMBER_DECIDED = 200_000  # decided calls kept in memory to route their late news


@dataclass(frozen=True, slots=True)
class Record:
    """A recording to keep (R8, R9, R11, R17)."""

    inbox_id: int | None
    notification: Notification


@dataclass(frozen=True, slots=True)
class Late:
    """News of a decided call, applied to the stored call (R32)."""

    inbox_id: int | None
    notification: Notification


@dataclass(slots=True)
class Routed:
    deliveries: dict[int, list[Inbound]] = field(default_factory=lambda: defaultdict(list))
    records: list[Record] = field(default_factory=list)
    late: list[Late] = field(default_factory=list)


@dataclass(slots=True)
class Dispatch:
    shards: int
    clock: EventClock = field(default_factory=EventClock)
    order: DecisionOrder[CallFacts] = field(default_factory=DecisionOrder)
    live: set[int] = field(default_factory=set)  # delivered to shards, not decided yet
    finished: set[int] = field(default_factory=set)  # finished at a shard, not decided yet
    decided: OrderedDict[int, None] = field(default_factory=OrderedDict)
    deferred: dict[int, list[Late]] = field(default_factory=lambda: defaultdict(list))

    def shard_of_call(self, call_session_id: int) -> int:
        return shard_of(f"call:{call_session_id}", self.shards)

    def unknown(self, call_ids: set[int]) -> set[int]:
        """Calls this writer has not seen: storage must say which were decided."""
        return {
            c
            for c in call_ids
            if c not in self.live and c not in self.decided and c not in self.finished
        }

    def learned(self, call_ids: set[int], decided: set[int]) -> None:
        """What storage said of unknown calls."""
        for call_id in call_ids:
            if call_id in decided:
                self.remember(call_id)
            else:
                self.live.add(call_id)

    def stored(
        self, items: Sequence[tuple[int | None, Notification, float]], wall: float
    ) -> Routed:
        """Route notifications just stored (after `learned` for their unknown calls)."""
        routed = Routed()
        latest: dict[int, float] = {}
        for _, n, _ in items:
            t = n.time.timestamp()
            if t > latest.get(n.call_session_id, -1e18):
                latest[n.call_session_id] = t
        for call_id, t in latest.items():
            self.clock.observe(call_id, t, wall)
        for inbox_id, n, received in items:
            call_id = n.call_session_id
            if n.kind is Kind.RECORDING:
                routed.records.append(Record(inbox_id, n))
            elif call_id in self.decided or call_id in self.finished:
                routed.late += self.news(Late(inbox_id, n))
            else:
                if n.kind is Kind.CALL_END:
                    key = caller_key(n.phone, call_id)
                    self.order.ended(call_id, key, n.time.timestamp())
                self.live.add(call_id)
                routed.deliveries[self.shard_of_call(call_id)].append(
                    Inbound(inbox_id, received, n)
                )
        return routed

    def news(self, late: Late) -> list[Late]:
        """News of a finished call: applicable now if its decision is written, else kept until
        it is (a crash before that leaves it undone)."""
        call_id = late.notification.call_session_id
        if call_id in self.decided:
            return [late]
        self.deferred[call_id].append(late)
        return []

    def finished_calls(self, facts: list[CallFacts]) -> list[CallFacts]:
        """Calls a shard finished; those that may be decided now, in order."""
        released: list[CallFacts] = []
        for f in facts:
            call_id = f.call_session_id
            if call_id in self.decided or call_id in self.finished:
                continue  # sent again
            self.finished.add(call_id)
            key = caller_key(f.phone, call_id)
            released += self.order.finished(call_id, key, f.ended_at.timestamp(), f)
        return released

    def decided_calls(self, call_ids: list[int]) -> list[Late]:
        """Their decisions are written: remember them; their kept news is applicable."""
        ready: list[Late] = []
        for call_id in call_ids:
            self.remember(call_id)
            self.live.discard(call_id)
            self.finished.discard(call_id)
            ready += self.deferred.pop(call_id, [])
        return ready

    def set_aside(self, call_id: int) -> list[CallFacts]:
        """The call is quarantined; calls of its caller it held up that may go now."""
        self.live.discard(call_id)
        self.finished.discard(call_id)
        self.deferred.pop(call_id, None)
        return self.order.forget(call_id)

    def reset(self, call_id: int) -> None:
        """The call goes through again from its stored notifications (a retry)."""
        self.decided.pop(call_id, None)
        self.set_aside(call_id)

    def remember(self, call_id: int) -> None:
        self.decided[call_id] = None
        self.decided.move_to_end(call_id)
        while len(self.decided) > REMEMBER_DECIDED:
            self.decided.popitem(last=False)
