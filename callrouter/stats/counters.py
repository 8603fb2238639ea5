"""The incremental statistics: `StatsState` folds history events into series and answers every
report from them, equal to the batch oracle (`batch.py`) for any period.

Events must come in log (id) order; an id at or below the highest applied one is a duplicate
and changes nothing, so redelivery after a restart is harmless. Per case the state keeps only
what later events and period edges need, packed (`cases.py`); whole hours are answered from the
series (`series.py`) and the shared links (`links.py`); a period edge inside an hour reads the
case records there (`query.py`).
"""

from __future__ import annotations

from collections.abc import Iterable
from datetime import datetime
from typing import Any
from zoneinfo import ZoneInfo

from callrouter.stats import figures, snapshot
from callrouter.stats.cases import (
    ASSIGNEE_SHIFT,
    CALL_M,
    CLOSE_F,
    CONV_F,
    CONV_M,
    COUNTED_F,
    HEAD,
    MESSAGE_LIMIT,
    MESSAGE_SHIFT,
    NEW_F,
    NEW_IN_F,
    NR_F,
    OTHER_SHIFT,
    STAFF_MASK,
    WORK_F,
    Case,
    CaseStore,
    records,
)
from callrouter.stats.closetimes import Selection
from callrouter.stats.figures import Closes, Figures
from callrouter.stats.grid import Grid
from callrouter.stats.history import T_MAX_US, T_MIN_US, HistoryEvent, to_us, transition
from callrouter.stats.peak import peak_counts
from callrouter.stats.points import (
    ANSWERED,
    CLOSE,
    KINDS,
    NEW,
    NEW_IN,
    NEW_OR_REOPENED,
    PEAK_CODES,
    REPLIES,
    WORK,
    member,
    memberships,
)
from callrouter.stats.query import Scanner, Tally, plan
from callrouter.stats.series import CloseSeries, Links, Series

SNAPSHOT_VERSION = 2
_FIGURE_KINDS = (NEW, NEW_IN, NEW_OR_REOPENED, WORK, ANSWERED, CLOSE, REPLIES)


def _opt_int(value: Any) -> int | None:
    return None if value is None else int(value)


class StatsState:
    """The incremental statistics of one account (R25–R30)."""

    def __init__(self) -> None:
        self.max_id = 0
        self.cases = CaseStore()
        self.links = Links()
        self.series: dict[int, Series] = {}
        self.staff: dict[int, int] = {}  # staff id -> index ≥ 1
        self.statuses: dict[str, int] = {}  # status -> index ≥ 1
        self._status_names: list[str] = []

    # -- events ----------------------------------------------------------------------------

    def apply_all(self, events: Iterable[HistoryEvent]) -> int:
        """Apply events in order; returns how many were new."""
        return sum(1 for ev in events if self.apply(ev))

    def apply(self, ev: HistoryEvent) -> bool:
        """Fold one event in; False (and nothing changes) for an id already applied. An event
        outside [2000, 2100) UTC only moves `max_id` (the oracle skips it too). A malformed
        event (naive time, non-integer ids) raises ValueError and changes nothing."""
        if ev.id <= self.max_id:
            return False
        t = to_us(ev.at)
        if not T_MIN_US <= t < T_MAX_US:  # `history.counted`, inline: this runs per event
            self.max_id = ev.id
            return True
        details = ev.details
        call = ev.kind == "message" and details.get("message_kind") == "call"
        mid = author = None  # a conversation without a message id is its own message
        if call or ev.conversation:
            mid = _opt_int(details.get("message_id"))
            author = _opt_int(details.get("author_staff_id"))
        # Everything that can refuse the event is done before anything changes.
        staff = self.staff
        actor = 0 if ev.staff_id is None else staff.get(ev.staff_id) or self._new(ev.staff_id)
        assignee = (
            0 if ev.assignee_id is None else staff.get(ev.assignee_id) or self._new(ev.assignee_id)
        )
        author_index = 0 if author is None else staff.get(author) or self._new(author)
        store = self.cases
        slot = store.find(ev.case_id)
        case = Case.new(t) if slot is None else Case(store.read(slot))
        if (call or ev.conversation) and case.messages >= MESSAGE_LIMIT - 1:
            raise ValueError(f"case {ev.case_id} has more than {MESSAGE_LIMIT} messages")
        status = self.statuses.get(ev.status) or self._status_index(ev.status)

        self.max_id = ev.id
        opening = slot is None
        if slot is None:
            slot = store.add(ev.case_id)
        previous = self._status_names[case.status - 1] if case.status else None
        change = transition(ev, opening, previous)
        flags = WORK_F if ev.staff_id is not None else 0
        if opening and ev.kind == "created":
            flags |= NEW_F | NR_F | (NEW_IN_F if ev.source == "in" else 0)
        elif change == "reopen":  # R24
            flags |= NR_F
        if change == "close":
            flags |= CLOSE_F
        if flags:
            self._record(case, slot, t, flags | assignee << ASSIGNEE_SHIFT | actor << OTHER_SHIFT)
        if call and mid is not None:
            self._call_message(case, mid, author_index, t)
        if ev.conversation:
            own = -ev.id if mid is None else mid
            self._conversation(case, slot, own, author, author_index, t, assignee)
        if flags or call or ev.conversation or opening or case.status != status:
            case.status = status
            store.write(slot, case.w)
        return True

    def _new(self, staff_id: int) -> int:
        """The index of a staff member seen for the first time."""
        index = len(self.staff) + 1
        if index > STAFF_MASK:
            raise ValueError(f"more than {STAFF_MASK} staff members in the statistics")
        self.staff[staff_id] = index
        return index

    def _status_index(self, status: str) -> int:
        index = self.statuses.get(status)
        if index is None:
            index = self.statuses[status] = len(self.statuses) + 1
            self._status_names.append(status)
        return index

    def _series(self, code: int) -> Series:
        s = self.series.get(code)
        if s is None:
            if code % KINDS == CLOSE:
                s = CloseSeries(code)
            else:
                s = Series(code, peak=code in PEAK_CODES)
            self.series[code] = s
        return s

    def _record(self, case: Case, slot: int, t: int, info: int) -> None:
        if info & CLOSE_F and case.conversations_by(t):
            info |= COUNTED_F  # closed with a conversation behind it (R25 `closed`)
        i = case.insert(t, info)
        if i < 0:
            return
        self.cases.mark(slot, t)
        for code, key in memberships(info):
            self._insert_point(case, i, code, key)

    @staticmethod
    def _neighbours(case: Case, i: int, code: int, key: int) -> tuple[int | None, int | None]:
        """The times of the records before and after offset i making points of (code, key)."""
        w = case.w
        prev = nxt = None
        for j in range(i - 2, HEAD + 3 * (w[1] >> 16) - 1, -2):
            if member(w[j + 1], code, key):
                prev = w[j]
                break
        for j in range(i + 2, len(w), 2):
            if member(w[j + 1], code, key):
                nxt = w[j]
                break
        return prev, nxt

    @staticmethod
    def _weights(case: Case, t: int | None) -> tuple[int, int]:
        return (0, 0) if t is None else (case.conversations_by(t), t - case.first)

    def _insert_point(self, case: Case, i: int, code: int, key: int) -> None:
        """Put the record at offset i into series (code, key), between its neighbours."""
        t = case.w[i]
        prev, nxt = self._neighbours(case, i, code, key)
        series = self.series.get(code) or self._series(code)
        if code % KINDS == CLOSE:
            series.insert(
                self.links, t, prev, nxt, self._weights(case, t), self._weights(case, prev)
            )
        else:
            series.insert(self.links, t, prev, nxt)

    def _call_message(self, case: Case, mid: int, author: int, t: int) -> None:
        bits = CALL_M | author << 2
        at = case.message(mid)
        if at < 0:
            case.add_message(mid, t, bits)
        elif not case.w[at + 2] & CALL_M:  # a conversation came first: its time stays
            case.w[at + 2] |= bits

    def _conversation(
        self,
        case: Case,
        slot: int,
        mid: int,
        author: int | None,
        author_index: int,
        t: int,
        assignee: int,
    ) -> None:
        at = case.message(mid)
        other = author_index
        if author is None and at >= 0 and case.w[at + 2] & CALL_M:
            other = case.w[at + 2] >> 2  # the call message's author
        new = at < 0 or not case.w[at + 2] & CONV_M
        if at < 0:
            at = case.add_message(mid, t, CONV_M)
        else:
            case.w[at + 2] |= CONV_M
        # Marking the message first is right: `_record` counts no close for a conversation.
        index = (at - HEAD) // 3
        self._record(
            case,
            slot,
            t,
            CONV_F | assignee << ASSIGNEE_SHIFT | other << OTHER_SHIFT | index << MESSAGE_SHIFT,
        )
        if new:
            self._new_conversation(case, case.w[at + 1])

    def _new_conversation(self, case: Case, message_time: int) -> None:
        # A new conversation message: every close at or after it gains a reply, and a close
        # that had none before now counts as closed (an R13/R14 case's recording comes after).
        # Closes that start counting are all earlier than those that counted already, and are
        # met first, so each insert sees its neighbours as they are in the series.
        w = case.w
        for i in range(case.rec, len(w), 2):
            t_close, info = w[i], w[i + 1]
            if not info & CLOSE_F or t_close < message_time:
                continue
            codes = [CLOSE]
            who = (info >> ASSIGNEE_SHIFT) & STAFF_MASK
            if who:
                codes.append(CLOSE + KINDS * who)
            if info & COUNTED_F:
                r, cw = self._weights(case, t_close)
                for code in codes:
                    series = self.series[code]
                    assert isinstance(series, CloseSeries)
                    nxt = self._neighbours(case, i, code, 0)[1]
                    series.reweight(self.links, t_close, nxt, (r - 1, cw))
            else:
                w[i + 1] = info | COUNTED_F
                for code in codes:
                    self._insert_point(case, i, code, 0)

    # -- reports ---------------------------------------------------------------------------

    def report(
        self, report: str, start: datetime, end: datetime, tz: ZoneInfo, close_sla_seconds: int
    ) -> dict[str, object]:
        """The API.md body of `report` for [start, end), as `batch.compute` would give it."""
        figures.check_report(report)
        s, e = to_us(start), to_us(end)
        sla_us = close_sla_seconds * 1_000_000
        if report == "peak":
            return figures.render_peak(peak_counts(self, s, e, tz))
        if report == "team":
            indices = list(self.staff.values())
            tally = self.latest(
                [k + KINDS * i for i in indices for k in _FIGURE_KINDS], s, e, times=True
            )
            return figures.render_team(
                (staff, self._figures(tally, index, sla_us, True, True))
                for staff, index in self.staff.items()
            )
        median, breaches = report == "response", report == "sla"
        tally = self.latest(list(_FIGURE_KINDS[:-1]), s, e, times=median or breaches)
        f = self._figures(tally, 0, sla_us, median, breaches)
        render = {
            "load": figures.render_load,
            "channels": figures.render_channels,
            "response": figures.render_response,
            "sla": figures.render_sla,
        }[report]
        return render(f)

    def latest(self, codes: list[int], s: int, e: int, times: bool = False) -> Tally:
        """Per series code, the keys with a point in [s, e): a count, or for closes the
        Selection of their latest closes there (with close times when `times`)."""
        tally = Tally(
            {c: 0 for c in codes if c % KINDS != CLOSE},
            {c: Selection() for c in codes if c % KINDS == CLOSE},
        )
        if s >= e:
            return tally
        lo, hi, scans = plan(self.cases, s, e)
        plain = []
        for code in codes:
            series = self.series.get(code)
            if isinstance(series, CloseSeries):
                series.whole_selection(self.links, lo, hi, tally.closes[code], times)
            elif series is not None:
                tally.counts[code] += series.whole(self.links, lo, hi)
                plain.append(code)
        for code, n in zip(plain, self.links.short.count(plain, lo, hi), strict=True):
            tally.counts[code] += n
        if scans:
            scanner = Scanner(self.cases, set(codes))
            for scan in scans:
                scanner.scan(scan, tally)
        return tally

    def _figures(
        self, tally: Tally, index: int, sla_us: int, median: bool, breaches: bool
    ) -> Figures:
        def first(kind: int) -> int:
            return tally.counts.get(kind + KINDS * index, 0)

        sel = tally.closes[CLOSE + KINDS * index]
        closes = Closes(
            count=sel.count,
            replies=sel.r,
            timed=sel.z,
            total_us=sel.w,
            middle_us=sel.middle() if median else None,
            breached=sel.above(sla_us) if breaches else None,
        )
        return Figures(
            new_total=first(NEW),
            new_from_users=first(NEW_IN),
            new_and_reopened=first(NEW_OR_REOPENED),
            in_work=first(WORK),
            answered=first(ANSWERED),
            replies=first(REPLIES) if index else 0,
            closes=closes,
        )

    def grid(self, code: int, phase: int) -> Grid:
        """The R26 grid of a peak series on hours `phase` µs past the UTC hour. One not kept up
        to date (an offset that is not whole quarter hours: before 2000) is built from the case
        records on first use and kept up to date from then on, but not saved."""
        series = self.series.get(code)
        if series is None or series.grids is None:
            return Grid(phase)  # no points yet: an empty grid, and nothing changes
        grid = series.grids.get(phase)
        if grid is None:
            grid = series.grids[phase] = Grid(phase)
            for words in self.cases.cases():
                prev = None
                for t, info in records(words):
                    if member(info, code, 0):
                        grid.insert(t, prev, None)
                        prev = t
        return grid

    # -- snapshot --------------------------------------------------------------------------

    def to_bytes(self) -> bytes:
        """Everything, with the highest applied id, as bytes for `from_bytes`."""
        return snapshot.encode(
            {
                "version": SNAPSHOT_VERSION,
                "max_id": self.max_id,
                "staff": self.staff,
                "statuses": self._status_names,
                "cases": self.cases.dump(),
                "links": self.links.dump(),
                "series": {code: self.series[code].dump() for code in sorted(self.series)},
            }
        )

    @classmethod
    def from_bytes(cls, data: bytes) -> StatsState:
        """The state `to_bytes` wrote; ValueError for other bytes, another version or a damaged
        snapshot (the caller then rebuilds from the log)."""
        plain = snapshot.decode(data)
        if not isinstance(plain, dict) or plain.get("version") != SNAPSHOT_VERSION:
            version = plain.get("version") if isinstance(plain, dict) else None
            raise ValueError(f"statistics snapshot version {version!r} is not {SNAPSHOT_VERSION}")
        try:
            return cls._load(plain)
        except (KeyError, IndexError, TypeError, ValueError, AttributeError) as exc:
            raise ValueError(f"a damaged statistics snapshot: {exc!r}") from None

    @classmethod
    def _load(cls, plain: dict[str, Any]) -> StatsState:
        state = cls()
        state.max_id = plain["max_id"]
        state.staff = plain["staff"]
        for name in plain["statuses"]:
            state._status_index(name)
        state.cases = CaseStore.load(plain["cases"])
        state.links = Links.load(plain["links"])
        for code, dumped in plain["series"].items():
            s = CloseSeries(code) if code % KINDS == CLOSE else Series(code)
            s.load(dumped)
            state.series[code] = s
        return state
