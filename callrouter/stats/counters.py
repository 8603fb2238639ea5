"""The incremental statistics: `StatsState` folds history events into series and answers every
report from them, equal to the batch oracle (`batch.py`) for any period.

Events must come in log (id) order; an id at or below the highest applied one is a duplicate
and changes nothing, so redelivery after a restart is harmless. Per case the state keeps only
what later events need (its points per series, its call messages, conversations and closes);
everything a report reads lives in the series (`series.py`).
"""

from __future__ import annotations

from array import array
from collections.abc import Iterable
from datetime import datetime
from zoneinfo import ZoneInfo

from callrouter.stats import figures, snapshot
from callrouter.stats.figures import Closes, Figures, Peak
from callrouter.stats.history import CLOSED, HistoryEvent, to_us
from callrouter.stats.peak import peak_counts
from callrouter.stats.series import CloseSeries, Series

# What a series counts; a series' code is kind + KINDS × (0 for everyone, else staff index).
NEW_OR_REOPENED, WORK, ANSWERED, CLOSE, REPLIES, NEW, NEW_IN = range(7)
KINDS = 8
NOBODY = -(1 << 62)  # no staff, in per-case arrays
SNAPSHOT_VERSION = 1


class _Case:
    """What later events of one case need, packed in one int64 array (a year holds a million
    cases): a header (creation time, closed flag, section sizes), then its points per series
    (code, aux, time) sorted, its call messages (id, time, author), its conversations (message
    time, message id) by time, and its closes (time, assignee)."""

    __slots__ = ("a",)
    FIRST, CLOSED, HEADER = 0, 1, 6  # sizes of the four sections live at 2..5

    def __init__(self, a: array[int]) -> None:
        self.a = a

    @classmethod
    def new(cls, first: int) -> _Case:
        return cls(array("q", (first, 0, 0, 0, 0, 0)))

    @property
    def first(self) -> int:
        return self.a[0]

    @property
    def closed(self) -> bool:
        return bool(self.a[1])

    @closed.setter
    def closed(self, value: bool) -> None:
        self.a[1] = value

    def section(self, n: int) -> tuple[int, int]:
        """Start and end offsets of section n (0 points, 1 messages, 2 conversations, 3 closes)."""
        a = self.a
        pos = self.HEADER
        for k in range(n):
            pos += a[2 + k] * _WIDTH[k]
        return pos, pos + a[2 + n] * _WIDTH[n]

    def put(self, n: int, offset: int, values: tuple[int, ...]) -> None:
        """Insert one entry of section n at array offset `offset`."""
        self.a[offset:offset] = array("q", values)
        self.a[2 + n] += 1

    def message(self, mid: int) -> tuple[int, int] | None:
        """(time, author) of a known call message."""
        a = self.a
        lo, hi = self.section(1)
        for i in range(lo, hi, 3):
            if a[i] == mid:
                return a[i + 1], a[i + 2]
        return None

    def conversations_by(self, t: int) -> int:
        """Conversation messages written at or before t."""
        a = self.a
        lo, hi = self.section(2)
        return sum(1 for i in range(lo, hi, 2) if a[i] <= t)

    def has_conversation(self, mid: int) -> bool:
        a = self.a
        lo, hi = self.section(2)
        return any(a[i] == mid for i in range(lo + 1, hi, 2))


_WIDTH = (3, 3, 2, 2)
_POINTS, _MESSAGES, _CONVERSATIONS, _CLOSES = range(4)


class StatsState:
    """The incremental statistics of one account (R25–R30)."""

    def __init__(self) -> None:
        self.max_id = 0
        self.cases: dict[int, array[int]] = {}  # case id -> packed `_Case`
        self.series: dict[int, Series] = {}
        self.staff: dict[int, int] = {}  # staff id -> index ≥ 1

    # -- events ----------------------------------------------------------------------------

    def apply_all(self, events: Iterable[HistoryEvent]) -> int:
        """Apply events in order; returns how many were new."""
        return sum(1 for ev in events if self.apply(ev))

    def apply(self, ev: HistoryEvent) -> bool:
        """Fold one event in; False (and nothing changes) for an id already applied."""
        if ev.id <= self.max_id:
            return False
        self.max_id = ev.id
        t = to_us(ev.at)
        cid = ev.case_id
        packed = self.cases.get(cid)
        opening = packed is None
        if packed is None:
            case = _Case.new(t)
            self.cases[cid] = case.a
        else:
            case = _Case(packed)
        details = ev.details
        if ev.staff_id is not None:
            self._point(case, WORK, ev.staff_id, cid, t)
        if opening and ev.kind == "created":
            assignee = ev.assignee_id
            self._once(NEW, assignee, cid, t)
            if ev.source == "in":
                self._once(NEW_IN, assignee, cid, t)
            self._point(case, NEW_OR_REOPENED, assignee, cid, t)
            if ev.status == CLOSED:
                self._close(case, cid, t, assignee)
        elif ev.kind == "status":
            before = details["from"] == CLOSED if "from" in details else case.closed
            after = ev.status == CLOSED
            if after and not before:
                self._close(case, cid, t, ev.assignee_id)
            elif before and not after:  # R24: a reopen
                self._point(case, NEW_OR_REOPENED, ev.assignee_id, cid, t)
        if ev.kind == "message" and details.get("message_kind") == "call":
            mid = details.get("message_id")
            if mid is not None and case.message(int(mid)) is None:
                author = details.get("author_staff_id")
                at = case.section(_MESSAGES)[1]
                case.put(_MESSAGES, at, (int(mid), t, NOBODY if author is None else int(author)))
        if ev.conversation:
            self._conversation(case, cid, ev, t)
        case.closed = ev.status == CLOSED
        return True

    def _codes(self, kind: int, staff: int | None, everyone: bool = True) -> list[int]:
        codes = [kind] if everyone else []
        if staff is not None:
            index = self.staff.get(staff)
            if index is None:
                index = self.staff[staff] = len(self.staff) + 1
            codes.append(kind + KINDS * index)
        return codes

    def _series(self, code: int) -> Series:
        s = self.series.get(code)
        if s is None:
            kind = code % KINDS
            if kind == CLOSE:
                s = CloseSeries()
            else:
                s = Series(peak=code in (NEW_OR_REOPENED, WORK))
            self.series[code] = s
        return s

    def _once(self, kind: int, staff: int | None, key: int, t: int) -> None:
        # A case is created once: no neighbours to track.
        for code in self._codes(kind, staff):
            self._series(code).insert(key, t, None, None)

    def _point(
        self,
        case: _Case,
        kind: int,
        staff: int | None,
        key: int,
        t: int,
        aux: int = 0,
        r: int = 0,
        w: int = 0,
        everyone: bool = True,
    ) -> None:
        for code in self._codes(kind, staff, everyone):
            self._track(case, code, aux, key, t, r, w)

    def _track(
        self, case: _Case, code: int, aux: int, key: int, t: int, r: int = 0, w: int = 0
    ) -> bool:
        """Insert (key, t) into series `code` between the case's neighbouring points; False if
        the case has a point at t there already."""
        pts = case.a
        prev = nxt = None
        i, n = case.section(_POINTS)
        while i < n:
            c, a, tt = pts[i], pts[i + 1], pts[i + 2]
            if c < code or (c == code and a < aux):
                i += 3
                continue
            if c != code or a != aux:
                break
            if tt == t:
                return False
            if tt > t:
                nxt = tt
                break
            prev = tt
            i += 3
        case.put(_POINTS, i, (code, aux, t))
        self._series(code).insert(key, t, prev, nxt, r, w)
        return True

    def _close(self, case: _Case, cid: int, t: int, assignee: int | None) -> None:
        case.put(_CLOSES, case.section(_CLOSES)[1], (t, NOBODY if assignee is None else assignee))
        r = case.conversations_by(t)
        if r:  # closed with a conversation behind it (R25 `closed`)
            self._point(case, CLOSE, assignee, cid, t, r=r, w=t - case.first)

    def _conversation(self, case: _Case, cid: int, ev: HistoryEvent, t: int) -> None:
        details = ev.details
        raw_mid = details.get("message_id")
        mid = -ev.id if raw_mid is None else int(raw_mid)
        known = case.message(mid)
        message_time, message_author = known if known is not None else (t, NOBODY)
        author = details.get("author_staff_id")
        if author is None and message_author != NOBODY:
            author = message_author
        self._point(case, ANSWERED, ev.assignee_id, cid, t)
        if author is not None:
            self._point(case, REPLIES, int(author), mid, t, aux=mid, everyone=False)
        if case.has_conversation(mid):
            return
        # A new conversation message: every close at or after it gains a reply, and a close
        # that had none before now counts as closed (an R13/R14 case's recording comes after).
        a = case.a
        i, end = case.section(_CONVERSATIONS)
        while i < end and a[i] <= message_time:
            i += 2
        case.put(_CONVERSATIONS, i, (message_time, mid))
        lo, hi = case.section(_CLOSES)
        closes = [(a[j], a[j + 1]) for j in range(lo, hi, 2)]  # `_track` below moves them
        for tc, who in closes:
            if tc < message_time:
                continue
            r = case.conversations_by(tc)
            for code in self._codes(CLOSE, None if who == NOBODY else who):
                if r == 1:
                    self._track(case, code, 0, cid, tc, r, tc - case.first)
                else:
                    self._series(code).reweight(cid, tc, r, tc - case.first)

    # -- reports ---------------------------------------------------------------------------

    def report(
        self, report: str, start: datetime, end: datetime, tz: ZoneInfo, close_sla_seconds: int
    ) -> dict[str, object]:
        """The API.md body of `report` for [start, end), as `batch.compute` would give it."""
        figures.check_report(report)
        s, e = to_us(start), to_us(end)
        sla_us = close_sla_seconds * 1_000_000
        if report == "peak":
            nr, work = self._series(NEW_OR_REOPENED), self._series(WORK)
            (hour_nr, day_nr), (hour_work, day_work) = peak_counts([nr, work], s, e, tz)
            return figures.render_peak(Peak(hour_nr, hour_work, day_nr, day_work))
        if report == "team":
            return figures.render_team(
                (staff, self._figures(index, s, e, sla_us, True, True))
                for staff, index in self.staff.items()
            )
        f = self._figures(0, s, e, sla_us, median=report == "response", breaches=report == "sla")
        render = {
            "load": figures.render_load,
            "channels": figures.render_channels,
            "response": figures.render_response,
            "sla": figures.render_sla,
        }[report]
        return render(f)

    def _figures(
        self, index: int, s: int, e: int, sla_us: int, median: bool, breaches: bool
    ) -> Figures:
        def first(kind: int) -> int:
            series = self.series.get(kind + KINDS * index)
            return 0 if series is None else series.first(s, e)

        closes = Closes(0, 0, 0, 0, None, 0 if breaches else None)
        series = self.series.get(CLOSE + KINDS * index)
        if isinstance(series, CloseSeries):
            sel = series.latest(s, e)
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

    # -- snapshot --------------------------------------------------------------------------

    def to_bytes(self) -> bytes:
        """Everything, with the highest applied id, as bytes for `from_bytes`."""
        packed = list(self.cases.values())
        joined = array("q")
        joined.frombytes(b"".join(a.tobytes() for a in packed))
        return snapshot.encode(
            {
                "version": SNAPSHOT_VERSION,
                "max_id": self.max_id,
                "staff": self.staff,
                "cases": [array("q", self.cases), array("q", map(len, packed)), joined],
                "series": {code: s.dump() for code, s in self.series.items()},
            }
        )

    @classmethod
    def from_bytes(cls, data: bytes) -> StatsState:
        """The state `to_bytes` wrote."""
        plain = snapshot.decode(data)
        if plain.get("version") != SNAPSHOT_VERSION:
            raise ValueError(
                f"statistics snapshot version {plain.get('version')!r} is not {SNAPSHOT_VERSION}"
            )
        state = cls()
        state.max_id = plain["max_id"]
        state.staff = plain["staff"]
        ids, lengths, joined = plain["cases"]
        pos = 0
        for case_id, n in zip(ids, lengths, strict=True):
            state.cases[case_id] = joined[pos : pos + n]
            pos += n
        for code, dumped in plain["series"].items():
            s = CloseSeries() if code % KINDS == CLOSE else Series()
            s.load(dumped)
            state.series[code] = s
        return state
