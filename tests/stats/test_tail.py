"""`Tail`: the statistics read the case history log in id order without skipping a row that
commits late, and without applying any row twice. The clock is a parameter: no sleeps."""

from __future__ import annotations

from datetime import UTC, datetime

from callrouter.stats.history import HistoryEvent
from callrouter.stats.tail import GAP_WAIT, Tail

AT = datetime(2026, 11, 2, 9, 30, tzinfo=UTC)


def rows(*ids: int) -> list[HistoryEvent]:
    """Log rows as the stats actor reads them: ids ascending."""
    return [HistoryEvent(id=i, case_id=100 + i, at=AT, kind="created") for i in ids]


def ids(events: list[HistoryEvent]) -> list[int]:
    return [e.id for e in events]


def test_contiguous_ids_are_applied_in_order() -> None:
    tail = Tail()
    assert ids(tail.take(rows(1, 2, 3), now=0.0)) == [1, 2, 3]
    assert tail.next_id == 4
    assert ids(tail.take(rows(4, 5), now=0.1)) == [4, 5]
    assert tail.next_id == 6
    assert tail.take([], now=0.2) == []
    assert tail.next_id == 6


def test_resumes_from_a_saved_position() -> None:
    tail = Tail(next_id=41)
    assert ids(tail.take(rows(41, 42), now=0.0)) == [41, 42]


def test_stops_at_a_gap() -> None:
    """Id 3 is not visible yet (its transaction commits after 4's): 4 and 5 wait."""
    tail = Tail()
    assert ids(tail.take(rows(1, 2, 4, 5), now=0.0)) == [1, 2]
    assert tail.next_id == 3
    assert tail.take(rows(4, 5), now=1.0) == []
    assert tail.take(rows(4, 5), now=GAP_WAIT - 0.01) == []
    assert tail.next_id == 3


def test_a_late_commit_fills_the_gap() -> None:
    tail = Tail()
    tail.take(rows(1, 2, 4), now=0.0)
    assert ids(tail.take(rows(3, 4, 5), now=2.0)) == [3, 4, 5]
    assert tail.next_id == 6


def test_a_gap_is_passed_after_gap_wait() -> None:
    """An id still missing after GAP_WAIT was rolled back: it will never appear."""
    tail = Tail()
    tail.take(rows(1, 2), now=0.0)
    assert tail.take(rows(4, 5), now=10.0) == []  # the gap is first seen now
    assert tail.take(rows(4, 5), now=10.0 + GAP_WAIT / 2) == []
    assert ids(tail.take(rows(4, 5), now=10.0 + GAP_WAIT)) == [4, 5]
    assert tail.next_id == 6


def test_each_gap_gets_its_own_wait() -> None:
    """Passing one gap does not pass the next one in the same read."""
    tail = Tail()
    tail.take(rows(1), now=0.0)
    assert tail.take(rows(3, 4, 6), now=0.0) == []
    assert ids(tail.take(rows(3, 4, 6), now=GAP_WAIT)) == [3, 4]
    assert tail.next_id == 5
    assert tail.take(rows(6), now=GAP_WAIT + 1.0) == []
    assert ids(tail.take(rows(6), now=2 * GAP_WAIT)) == [6]


def test_a_filled_gap_does_not_shorten_the_next_wait() -> None:
    tail = Tail()
    tail.take(rows(2), now=0.0)  # gap at 1, seen at 0
    assert ids(tail.take(rows(1, 2), now=1.0)) == [1, 2]
    assert tail.take(rows(4), now=GAP_WAIT + 0.5) == []  # a new gap, seen now
    assert ids(tail.take(rows(4), now=2 * GAP_WAIT + 0.5)) == [4]


def test_never_reapplies() -> None:
    """Rows read again (an overlapping read, or an id that commits after its gap was passed)
    are not applied a second time, and do not move the position back."""
    tail = Tail()
    assert ids(tail.take(rows(1, 2, 3), now=0.0)) == [1, 2, 3]
    assert tail.take(rows(1, 2, 3), now=0.1) == []
    assert ids(tail.take(rows(2, 3, 4), now=0.2)) == [4]
    assert tail.next_id == 5
    # 6 is passed as rolled back; it then commits after all (a very slow transaction).
    tail.take(rows(7), now=1.0)
    assert ids(tail.take(rows(7), now=1.0 + GAP_WAIT)) == [7]
    assert ids(tail.take(rows(6, 7, 8), now=10.0)) == [8]
    assert tail.next_id == 9


def test_everything_once_in_order_whatever_the_reads() -> None:
    """Reads that see a growing log, with ids committing out of order, apply every id once,
    in ascending order."""
    visible_at = {1: 0.0, 2: 0.3, 3: 0.1, 4: 0.2, 5: 0.9, 6: 0.5, 7: 0.5, 8: 1.2}
    tail = Tail()
    applied: list[int] = []
    now = 0.0
    while now < 2.0:
        visible = sorted(i for i, t in visible_at.items() if t <= now and i >= tail.next_id)
        applied += ids(tail.take(rows(*visible), now))
        now += 0.05
    assert applied == sorted(visible_at)
