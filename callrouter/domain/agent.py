"""A staff member's live view: the calls ringing on their phone and the calls they are in.

It answers "what state is this staff member in" (wallboard, R31) and "what should a console
that reconnects show again" (R5, R6)."""

from __future__ import annotations

from dataclasses import dataclass, field


@dataclass(slots=True)
class AgentState:
    staff_id: int
    ringing: dict[int, dict[str, object]] = field(default_factory=dict)  # call id → popup event
    talking: dict[int, dict[str, object]] = field(default_factory=dict)  # call id → answered event

    @property
    def state(self) -> str:
        """free / ringing / talking (offline is known to the frontends, not here)."""
        return "talking" if self.talking else "ringing" if self.ringing else "free"

    def offered(self, call_id: int, event: dict[str, object]) -> None:
        if call_id not in self.talking:
            self.ringing[call_id] = event

    def offer_ended(self, call_id: int) -> None:
        self.ringing.pop(call_id, None)

    def answered(self, call_id: int, event: dict[str, object]) -> None:
        self.ringing.pop(call_id, None)
        self.talking[call_id] = event

    def ended(self, call_id: int) -> None:
        self.ringing.pop(call_id, None)
        self.talking.pop(call_id, None)

    @property
    def idle(self) -> bool:
        return not self.ringing and not self.talking

    def replay(self) -> list[dict[str, object]]:
        """The events that bring a fresh console to the current state."""
        return list(self.ringing.values()) + list(self.talking.values())
