"""The order in which a caller's calls are decided: the order of their ends in UIS's time
(STYLE habit 12, R16).

Whether a missed call joins the caller's missed-call case depends on what happened before it,
so a caller's calls must be decided in event-time order, not in the order their
notifications happen to arrive. Every call end that was stored is known here at once; a
finished call is released for its decision only when no earlier-ending call of the same caller
is still undecided. Calls of different callers never wait for each other. Pure.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Generic, TypeVar

T = TypeVar("T")
Key = tuple[float, int]  # (end, event seconds; call_session_id)


@dataclass(slots=True)
class _Caller(Generic[T]):
    ends: dict[int, float] = field(default_factory=dict)  # stored call ends, not released
    held: dict[int, tuple[Key, T]] = field(default_factory=dict)  # finished, waiting


@dataclass(slots=True)
class DecisionOrder(Generic[T]):
    """Finished calls in, calls to decide out, per caller in the order of their ends."""

    callers: dict[str, _Caller[T]] = field(default_factory=dict)
    caller_of: dict[int, str] = field(default_factory=dict)

    def ended(self, call_session_id: int, caller: str, end: float) -> None:
        """A call end of this call was stored (its latest one counts)."""
        entry = self._caller(call_session_id, caller)
        entry.ends[call_session_id] = max(end, entry.ends.get(call_session_id, end))

    def finished(self, call_session_id: int, caller: str, end: float, item: T) -> list[T]:
        """The call is finished; returns what may now be decided, in order (maybe nothing)."""
        entry = self._caller(call_session_id, caller)
        key = (entry.ends.get(call_session_id, end), call_session_id)
        entry.held[call_session_id] = (key, item)
        return self._release(caller)

    def forget(self, call_session_id: int) -> list[T]:
        """The call will not be decided here (quarantined): it no longer holds anyone up."""
        caller = self.caller_of.pop(call_session_id, None)
        if caller is None:
            return []
        entry = self.callers[caller]
        entry.ends.pop(call_session_id, None)
        entry.held.pop(call_session_id, None)
        return self._release(caller)

    def waiting(self) -> int:
        """Finished calls held back for an earlier call of their caller."""
        return sum(len(c.held) for c in self.callers.values())

    def _caller(self, call_session_id: int, caller: str) -> _Caller[T]:
        self.caller_of[call_session_id] = caller
        entry = self.callers.get(caller)
        if entry is None:
            entry = self.callers[caller] = _Caller()
        return entry

    def _release(self, caller: str) -> list[T]:
        entry = self.callers[caller]
        out: list[T] = []
        for call_id, (key, item) in sorted(entry.held.items(), key=lambda kv: kv[1][0]):
            blocked = any(
                (end, other) < key and other not in entry.held for other, end in entry.ends.items()
            )
            if blocked:
                break
            del entry.held[call_id]
            entry.ends.pop(call_id, None)
            self.caller_of.pop(call_id, None)
            out.append(item)
        if not entry.ends and not entry.held:
            del self.callers[caller]
        return out
