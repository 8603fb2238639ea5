"""The writer's log of live events, which every frontend long-polls.

Each event gets a rising sequence number; `epoch` changes when the process restarts, so a
frontend whose cursor belongs to an earlier life starts over instead of waiting forever, and
event ids stay unique across restarts (frontends sharing a cluster drop repeats by them).
Publishing is synchronous: events enter the log in the turn that took them from a shard.
"""

from __future__ import annotations

import asyncio
import itertools
import time
from collections import deque
from typing import Any

SIZE = 20_000
# Seconds a busy log's poll waits, once something came, for more to come: one Ray answer per
# burst instead of one per event (a Ray call is ~1 ms of CPU each side).
GATHER = 0.01


class EventLog:
    def __init__(self, source: str) -> None:
        self.source = source
        self.epoch = time.time_ns()
        self.seq = 0
        self.events: deque[tuple[int, int, dict[str, Any]]] = deque(maxlen=SIZE)
        self.bump = asyncio.Event()  # set (and replaced) by every publish
        self.answered = 0.0  # when a poll last returned events

    def publish(self, events: list[tuple[int, dict[str, Any]]]) -> None:
        """Append (staff_id, event) pairs and wake the pollers."""
        if not events:
            return
        for staff_id, event in events:
            self.seq += 1
            tagged = {**event, "event_id": f"{self.source}:{self.epoch}:{self.seq}"}
            self.events.append((self.seq, staff_id, tagged))
        self.bump.set()
        self.bump = asyncio.Event()

    async def poll(
        self, epoch: int, after: int, timeout: float
    ) -> tuple[int, int, list[tuple[int, dict[str, Any]]]]:
        """Events after `after` of this `epoch` (all kept ones when the epoch is another),
        waiting up to `timeout` for one. Returns (epoch, latest seq, [(staff_id, event)])."""
        if epoch != self.epoch:
            after = 0 if epoch else self.seq  # a first poll starts from now
        if self.seq <= after:
            try:
                await asyncio.wait_for(self.bump.wait(), timeout)
            except TimeoutError:
                return self.epoch, self.seq, []
        loop = asyncio.get_running_loop()
        if loop.time() - self.answered < 2 * GATHER:  # busy: one answer per burst
            await asyncio.sleep(GATHER)
        self.answered = loop.time()
        first = self.seq - len(self.events) + 1  # the sequence numbers kept are contiguous
        kept = itertools.islice(self.events, max(0, after + 1 - first), None)
        return self.epoch, self.seq, [(s, e) for _, s, e in kept]
