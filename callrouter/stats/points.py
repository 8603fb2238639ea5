"""Which series a case record puts a point in.

A series' code is its kind + KINDS × (0 for everyone, else the staff member's index); its key
inside a case is 0, except for `replies`, keyed by the conversation's message (its index in
the case).
"""

from __future__ import annotations

from callrouter.stats.cases import (
    ASSIGNEE_SHIFT,
    CONV_F,
    COUNTED_F,
    MESSAGE_SHIFT,
    NEW_F,
    NEW_IN_F,
    NR_F,
    OTHER_SHIFT,
    STAFF_MASK,
    WORK_F,
)

NEW_OR_REOPENED, WORK, ANSWERED, CLOSE, REPLIES, NEW, NEW_IN = range(7)
KINDS = 8
PEAK_CODES = (NEW_OR_REOPENED, WORK)  # the R26 series (everyone's)
_FLAG = (NR_F, WORK_F, CONV_F, COUNTED_F, CONV_F, NEW_F, NEW_IN_F, 0)
# kind -> the record flag making a point, attributed to the assignee
_BY_ASSIGNEE = ((NEW_F, NEW), (NEW_IN_F, NEW_IN), (NR_F, NEW_OR_REOPENED), (COUNTED_F, CLOSE))


def member(info: int, code: int, key: int) -> bool:
    """Does the record `info` make a point of series `code`, key `key`?"""
    kind = code % KINDS
    if not info & _FLAG[kind]:
        return False
    index = code // KINDS
    if kind == REPLIES:
        return info >> MESSAGE_SHIFT == key and (info >> OTHER_SHIFT) & STAFF_MASK == index
    if index == 0:
        return True
    shift = OTHER_SHIFT if kind == WORK else ASSIGNEE_SHIFT
    return (info >> shift) & STAFF_MASK == index


def memberships(info: int, staff: bool = True) -> list[tuple[int, int]]:
    """The (code, key) of every series the record `info` makes a point in; only the everyone
    series unless `staff`."""
    out: list[tuple[int, int]] = []
    assignee = (info >> ASSIGNEE_SHIFT) & STAFF_MASK if staff else 0
    other = (info >> OTHER_SHIFT) & STAFF_MASK
    if info & WORK_F:
        out.append((WORK, 0))
        if staff:
            out.append((WORK + KINDS * other, 0))
    for flag, kind in _BY_ASSIGNEE:
        if info & flag:
            out.append((kind, 0))
            if assignee:
                out.append((kind + KINDS * assignee, 0))
    if info & CONV_F:
        out.append((ANSWERED, 0))
        if assignee:
            out.append((ANSWERED + KINDS * assignee, 0))
        if staff and other:
            out.append((REPLIES + KINDS * other, info >> MESSAGE_SHIFT))
    return out
