"""Reading the case history log in id order without skipping rows that commit late.

On PostgreSQL, concurrent transactions may commit a lower id after a higher one is visible. The
tail applies ids one after the other and stops at a gap; a gap still open after `GAP_WAIT`
seconds is an id that will never appear (a rolled-back insert) and is passed. Pure: the caller
reads the rows and passes the clock in.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass

from callrouter.stats.history import HistoryEvent

GAP_WAIT = 5.0


@dataclass(slots=True)
class Tail:
    next_id: int = 1
    gap_since: float | None = None  # when the current gap was first seen

    def take(self, rows: Iterable[HistoryEvent], now: float) -> list[HistoryEvent]:
        """The rows (ids ascending) that can be applied now, in order; rows below `next_id`
        (applied already, or a passed gap committing after all) are never applied again."""
        ready: list[HistoryEvent] = []
        for row in rows:
            if row.id < self.next_id:
                continue
            if row.id > self.next_id:
                if self.gap_since is None:
                    self.gap_since = now
                if now - self.gap_since < GAP_WAIT:
                    break
            ready.append(row)
            self.next_id = row.id + 1
            self.gap_since = None
        return ready
