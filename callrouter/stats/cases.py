"""Per case, what later events and period edges need, packed by the hundred (a year holds a
million cases, and a Python object per case would cost more than its data).

A case is a run of int64 words: its creation time, a meta word (status after its last event,
number of messages), its messages (id, time, flags | author << 2) in arrival order, and its
*records* sorted by time, two words each: (time, info). A record is an event that makes points;
`info` holds its flags (new, new from users, new-or-reopened, work, conversation, close, close
counted), the assignee, the acting staff member (or the conversation's author) and, for a
conversation, the index of its message in the case. Events that make no point (a product's
note, an R21 status) are not kept at all.

Runs live in blocks of `BLOCK_CASES` consecutive slots (one array of words and one of sizes).
A case's slot is its place in `ids` (case ids come in rising order); the few that come late
are in `late`. `hours` indexes records by time: per hour, sorted (minute << 26 | slot), so the
cases with a record between two instants of one hour are one slice (give or take a minute).
"""

from __future__ import annotations

from array import array
from bisect import bisect_left
from collections.abc import Iterator
from typing import Any

from callrouter.stats.history import HOUR_US

BLOCK_CASES = 128
NEW_F, NEW_IN_F, NR_F, WORK_F, CONV_F, CLOSE_F, COUNTED_F = (1 << i for i in range(7))
FLAG_LIMIT = 1 << 7
STAFF_BITS = 16
STAFF_MASK = (1 << STAFF_BITS) - 1  # staff indices 1..65535
ASSIGNEE_SHIFT = 7
OTHER_SHIFT = ASSIGNEE_SHIFT + STAFF_BITS  # the acting staff member, or the author
MESSAGE_SHIFT = OTHER_SHIFT + STAFF_BITS  # a conversation's message index (24 bits)
MESSAGE_LIMIT = 1 << 24
CALL_M, CONV_M = 1, 2  # message flags: a call message, has a conversation; author from bit 2
HEAD = 2  # creation time, meta
_SLOT_BITS = 26
SLOT_LIMIT = 1 << _SLOT_BITS  # 67 million cases
_SLOT_MASK = SLOT_LIMIT - 1
MINUTE_US = 60_000_000


class Case:
    """One packed case, changed in place: `w` is its words."""

    __slots__ = ("w",)

    def __init__(self, w: array[int]) -> None:
        self.w = w

    @classmethod
    def new(cls, first: int) -> Case:
        """An empty case created at `first`."""
        return cls(array("q", (first, 0)))

    @property
    def first(self) -> int:
        return self.w[0]

    @property
    def status(self) -> int:
        return self.w[1] & 0xFFFF

    @status.setter
    def status(self, value: int) -> None:
        self.w[1] = (self.w[1] & ~0xFFFF) | value

    @property
    def messages(self) -> int:
        """How many messages the case has."""
        return self.w[1] >> 16

    @property
    def rec(self) -> int:
        """Offset of the first record."""
        return HEAD + 3 * (self.w[1] >> 16)

    def message(self, mid: int) -> int:
        """Offset of the message `mid`, or -1."""
        w = self.w
        for i in range(HEAD, self.rec, 3):
            if w[i] == mid:
                return i
        return -1

    def add_message(self, mid: int, t: int, bits: int) -> int:
        """Append a message; returns its offset."""
        at = self.rec
        self.w[at:at] = array("q", (mid, t, bits))
        self.w[1] += 1 << 16
        return at

    def conversations_by(self, t: int) -> int:
        """Conversation messages written at or before t."""
        w = self.w
        return sum(1 for i in range(HEAD, self.rec, 3) if w[i + 2] & CONV_M and w[i + 1] <= t)

    def insert(self, t: int, info: int) -> int:
        """Add a record after those at or before t; returns its offset, or -1 when a record at
        t already makes every point this one would (it is not added: it could change nothing)."""
        w = self.w
        i, start = len(w), self.rec
        while i > start and w[i - 2] > t:
            i -= 2
        j = i
        while j > start and w[j - 2] == t:
            j -= 2
            if implied(info, w[j + 1]):
                return -1
        if i == len(w):
            w.append(t)
            w.append(info)
        else:
            w[i:i] = array("q", (t, info))
        return i


_BY_ASSIGNEE = NEW_F | NEW_IN_F | NR_F | CLOSE_F | CONV_F
_BY_OTHER = WORK_F | CONV_F


def implied(new: int, old: int) -> bool:
    """Does a record `old` at the same time make every point (and close) `new` would?"""
    flags = new & (COUNTED_F - 1)  # counted or not follows from the time
    if flags & ~old:
        return False
    if flags & _BY_ASSIGNEE and (new ^ old) >> ASSIGNEE_SHIFT & STAFF_MASK:
        return False
    if flags & _BY_OTHER and (new ^ old) >> OTHER_SHIFT & STAFF_MASK:
        return False
    return not (flags & CONV_F and (new ^ old) >> MESSAGE_SHIFT)


def records(words: array[int]) -> Iterator[tuple[int, int]]:
    """The (time, info) records of a packed case, by time."""
    start = HEAD + 3 * (words[1] >> 16)
    for i in range(start, len(words), 2):
        yield words[i], words[i + 1]


def conversation_times(words: array[int]) -> list[int]:
    """The sorted message times of a packed case's conversation messages."""
    end = HEAD + 3 * (words[1] >> 16)
    return sorted(words[i + 1] for i in range(HEAD, end, 3) if words[i + 2] & CONV_M)


class CaseStore:
    """Every case's packed run, by slot, and the hour index of their records."""

    __slots__ = ("blocks", "hours", "ids", "late", "sizes")

    def __init__(self) -> None:
        # By slot, never falling: a late case's slot repeats the id before it (bisect finds
        # the first of equal ids), and its own id is in `late`.
        self.ids = array("q")
        self.late: dict[int, int] = {}  # case id -> slot, for ids lower than one seen before
        self.blocks: list[array[int]] = []
        self.sizes: list[array[int]] = []
        self.hours: dict[int, array[int]] = {}

    def __len__(self) -> int:
        return len(self.ids)

    def dump(self) -> list[Any]:
        """Plain data for the snapshot."""
        data = array("q")
        data.frombytes(b"".join(b.tobytes() for b in self.blocks))
        sizes = array("I")
        sizes.frombytes(b"".join(s.tobytes() for s in self.sizes))
        late = sorted(self.late.items())
        keys = sorted(self.hours)
        return [
            self.ids,
            array("q", [k for k, _ in late]),
            array("q", [v for _, v in late]),
            data,
            sizes,
            array("q", keys),
            [self.hours[k] for k in keys],
        ]

    @classmethod
    def load(cls, plain: list[Any]) -> CaseStore:
        """The store `dump` gave."""
        store = cls()
        store.ids = plain[0]
        store.late = dict(zip(plain[1], plain[2], strict=True))
        data, sizes = plain[3], plain[4]
        pos = 0
        for b in range(0, len(sizes), BLOCK_CASES):
            chunk = sizes[b : b + BLOCK_CASES]
            n = sum(chunk)
            store.sizes.append(chunk)
            store.blocks.append(data[pos : pos + n])
            pos += n
        store.hours = dict(zip(plain[5], plain[6], strict=True))
        return store

    def find(self, case_id: int) -> int | None:
        """The slot of a known case."""
        if self.late:
            slot = self.late.get(case_id)
            if slot is not None:
                return slot
        ids = self.ids
        i = bisect_left(ids, case_id)
        return i if i < len(ids) and ids[i] == case_id else None

    def add(self, case_id: int) -> int:
        """A slot for a new case."""
        ids = self.ids
        slot = len(ids)
        if slot >= SLOT_LIMIT:
            raise ValueError(f"more than {SLOT_LIMIT} cases in the statistics")
        if ids and case_id < ids[-1]:
            self.late[case_id] = slot
            ids.append(ids[-1])
        else:
            ids.append(case_id)
        b, j = divmod(slot, BLOCK_CASES)
        if j == 0:
            self.blocks.append(array("q"))
            self.sizes.append(array("I"))
        self.sizes[b].append(0)
        return slot

    def read(self, slot: int) -> array[int]:
        """The words of the case at `slot`."""
        b, i = divmod(slot, BLOCK_CASES)
        sizes = self.sizes[b]
        off = sum(sizes[:i])
        return self.blocks[b][off : off + sizes[i]]

    def write(self, slot: int, words: array[int]) -> None:
        """Replace the words of the case at `slot`."""
        b, i = divmod(slot, BLOCK_CASES)
        sizes = self.sizes[b]
        off = sum(sizes[:i])
        self.blocks[b][off : off + sizes[i]] = words
        sizes[i] = len(words)

    def cases(self) -> Iterator[array[int]]:
        """Every case's words, by slot."""
        for data, sizes in zip(self.blocks, self.sizes, strict=True):
            off = 0
            for n in sizes:
                yield data[off : off + n]
                off += n

    def mark(self, slot: int, t: int) -> None:
        """Index a record of the case at `slot` at time t."""
        hour = t // HOUR_US
        entry = (t - hour * HOUR_US) // MINUTE_US << _SLOT_BITS | slot
        entries = self.hours.get(hour)
        if entries is None:
            self.hours[hour] = array("I", (entry,))
        elif entries[-1] < entry:
            entries.append(entry)
        else:
            i = bisect_left(entries, entry)
            if entries[i] != entry:
                entries.insert(i, entry)

    def _span(self, a: int, b: int) -> tuple[array[int] | None, int, int]:
        hour = a // HOUR_US
        entries = self.hours.get(hour)
        if entries is None:
            return None, 0, 0
        base = hour * HOUR_US
        i = bisect_left(entries, (a - base) // MINUTE_US << _SLOT_BITS)
        j = bisect_left(entries, -(-(b - base) // MINUTE_US) << _SLOT_BITS)
        return entries, i, j

    def weight(self, a: int, b: int) -> int:
        """How many index entries lie in [a, b) (inside one hour)."""
        _, i, j = self._span(a, b)
        return j - i

    def slots_between(self, a: int, b: int) -> set[int]:
        """The slots of the cases with a record in [a, b) (inside one hour), and maybe a few
        with one in the same minutes."""
        entries, i, j = self._span(a, b)
        if entries is None:
            return set()
        return {x & _SLOT_MASK for x in entries[i:j]}
