"""A log of live events that frontends long-poll (shards and the writer each keep one).

Each event gets a rising sequence number; `epoch` changes when the process restarts, so a
frontend whose cursor belongs to an earlier life starts over instead of waiting forever, and
event ids stay unique across restarts (frontends sharing a cluster drop repeats by them).
"""

from __future__ import annotations

import asyncio
import time
from collections import deque
from typing import Any

SIZE = 20_000
GATHER = 0.01  # seconds a busy log's poll waits, once something came, for more to come


class EventLog:
    def __init__(self, source: str) -> None:
        self.source = source
        self.epoch = time.time_ns()
        self.seq = 0
        self.events: deque[tuple[int, int, dict[str, Any]]] = deque(maxlen=SIZE)
        self.changed = asyncio.Condition()
        self.answered = 0.0  # when a poll last returned events

    async def publish(self, events: list[tuple[int, dict[str, Any]]]) -> None:
        """Append (staff_id, event) pairs and wake the pollers."""
        if not events:
            return
        async with self.changed:
            for staff_id, event in events:
                self.seq += 1
                tagged = {**event, "event_id": f"{self.source}:{self.epoch}:{self.seq}"}
                self.events.append((self.seq, staff_id, tagged))
            self.changed.notify_all()

    async def poll(
        self, epoch: int, after: int, timeout: float
    ) -> tuple[int, int, list[tuple[int, dict[str, Any]]]]:
        """Events after `after` of this `epoch` (all kept ones when the epoch is another),
        waiting up to `timeout` for one. Returns (epoch, latest seq, [(staff_id, event)])."""
        if epoch != self.epoch:
            after = 0 if epoch else self.seq  # a first poll starts from now
        async with self.changed:
            if self.seq <= after:
                try:
                    await asyncio.wait_for(self.changed.wait_for(lambda: self.seq > after), timeout)
                except TimeoutError:
                    return self.epoch, self.seq, []
        loop = asyncio.get_running_loop()
        if loop.time() - self.answered < 2 * GATHER:  # busy: one answer per burst, not per event
            await asyncio.sleep(GATHER)
        self.answered = loop.time()
        return self.epoch, self.seq, [(s, e) for q, s, e in self.events if q > after]
