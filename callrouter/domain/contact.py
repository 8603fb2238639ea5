"""A caller (one phone number): the point that serialises the case decisions of one user.

Finalizing two calls of one user at once could both create a missed-call case instead of
grouping them (R16). Every finished call of a number passes through its contact entity, which
hands the decisions to its shard's single ordered outbox, one after the other."""

from __future__ import annotations

from collections import deque
from dataclasses import dataclass, field

REMEMBERED = 256  # finished calls remembered per caller, to drop repeated finishes


@dataclass(slots=True)
class ContactState:
    key: str
    finished: deque[int] = field(default_factory=lambda: deque(maxlen=REMEMBERED))
    touched: float = 0.0  # wall clock of the last finish: idle contacts are passivated

    def accept(self, call_session_id: int) -> bool:
        """True the first time a call's finish reaches this caller; False for a repeat."""
        if call_session_id in self.finished:
            return False
        self.finished.append(call_session_id)
        return True
