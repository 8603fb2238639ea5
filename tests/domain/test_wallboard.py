"""The live wallboard (R31) as a pure state: live calls, staff states and today's figures.

Most tests feed `LiveCall` / `FinishedCall` values straight in; the last ones build them the
way the shards do, from realistic UIS scenarios (`finished_call`, `ShardHost`), so the figures
are checked against what a real call produces.
"""

from __future__ import annotations

from datetime import UTC, date, datetime, timedelta

import pytest
from call_kit import MSK, facts_of, local, parse, times

from callrouter.actors.host import Inbound, ShardHost
from callrouter.domain.clock import ClockReading
from callrouter.domain.wallboard import FinishedCall, LiveCall, Wallboard, finished_call
from callrouter.testing import uis_bodies as ub

TODAY = date(2026, 11, 2)
NOON = datetime(2026, 11, 2, 12, 0, tzinfo=MSK)
NOW = 1_000_000.0  # the wall clock of the snapshots (seconds)
ANNA, IVAN, OLGA, PETR = 1, 2, 3, 4
E_ANNA, E_IVAN, E_UNMAPPED = 5101, 5102, 5199

SNAPSHOT_KEYS = {
    "ringing",
    "longest_wait_seconds",
    "talking",
    "staff",
    "today",
    "per_staff",
    "by_hour",
    "seq",
    "routed",  # issue 11: calls smart routing sent to their own agent, and those answered
}


def board(*staff: int) -> Wallboard:
    wb = Wallboard(MSK, 20)
    wb.set_staff(set(staff), 20)
    return wb


def live(
    call_id: int,
    since: float = NOW,
    *,
    ringing: set[int] | frozenset[int] = frozenset(),
    talking: set[int] | frozenset[int] = frozenset(),
    direction: str = "in",
) -> LiveCall:
    return LiveCall(call_id, direction, since, frozenset(ringing), frozenset(talking))


def answered(
    call_id: int,
    wait: float,
    talk: int,
    staff: int = ANNA,
    *,
    at: datetime = NOON,
    offered: tuple[int, ...] | None = None,
) -> FinishedCall:
    """An incoming call answered by `staff` after `wait` seconds, `talk` seconds long."""
    return FinishedCall(
        call_id,
        "in",
        at,
        True,
        wait,
        talk,
        offered if offered is not None else (staff,),
        ((staff, talk),),
    )


def missed(call_id: int, *offered: int, at: datetime = NOON) -> FinishedCall:
    return FinishedCall(call_id, "in", at, False, None, 0, tuple(offered), ())


def outgoing(call_id: int, staff: int, talk: int, *, at: datetime = NOON) -> FinishedCall:
    """A softphone call the user answered (talk > 0) or not."""
    talked = ((staff, talk),) if talk else ()
    return FinishedCall(call_id, "out", at, bool(talk), None, talk, (), talked)


def snap(wb: Wallboard, now: float = NOW, today: date = TODAY) -> dict[str, object]:
    return wb.snapshot(now, today)


def per_staff(snapshot: dict[str, object]) -> dict[int, dict[str, object]]:
    rows = snapshot["per_staff"]
    assert isinstance(rows, list)
    return {row["staff_id"]: row for row in rows}


def today(snapshot: dict[str, object]) -> dict[str, object]:
    figures = snapshot["today"]
    assert isinstance(figures, dict)
    return figures


# --- shape -----------------------------------------------------------------------------------


def test_empty_board_has_the_api_shape() -> None:
    s = snap(board(ANNA))
    assert set(s) == SNAPSHOT_KEYS
    assert s["ringing"] == 0 and s["longest_wait_seconds"] == 0 and s["talking"] == 0
    assert s["staff"] == {"free": 0, "ringing": 0, "talking": 0, "offline": 1}
    assert today(s) == {
        "answered": 0,
        "missed": 0,
        "service_level": None,
        "avg_answer_seconds": None,
        "avg_talk_seconds": None,
    }
    assert s["per_staff"] == [
        {
            "staff_id": ANNA,
            "state": "offline",
            "answered": 0,
            "missed": 0,
            "talk_seconds": 0,
            "routed": 0,
            "reached": 0,
        }
    ]
    assert s["by_hour"] == [{"hour": h, "answered": 0, "missed": 0} for h in range(24)]


# --- live calls ------------------------------------------------------------------------------


def test_ringing_calls_and_the_longest_wait() -> None:
    wb = board(ANNA, IVAN)
    wb.call_changed(live(1, NOW - 42.25, ringing={ANNA}))
    wb.call_changed(live(2, NOW - 7, ringing={IVAN}))
    s = snap(wb)
    assert s["ringing"] == 2
    assert s["longest_wait_seconds"] == pytest.approx(42.2, abs=0.05)
    assert s["talking"] == 0
    assert s["staff"] == {"free": 0, "ringing": 2, "talking": 0, "offline": 0}
    assert per_staff(s)[ANNA]["state"] == "ringing"
    # The wait keeps counting while nothing changes: it is measured from the call's start.
    assert snap(wb, NOW + 10)["longest_wait_seconds"] == pytest.approx(52.2, abs=0.05)


def test_a_call_waiting_in_the_queue_counts_as_ringing() -> None:
    """Between two operators (or before the first) nobody's phone rings, but the caller waits."""
    wb = board(ANNA)
    wb.call_changed(live(1, NOW - 15))
    s = snap(wb)
    assert s["ringing"] == 1 and s["longest_wait_seconds"] == 15
    assert s["staff"]["ringing"] == 0  # type: ignore[index]


def test_answering_moves_the_call_to_talking() -> None:
    wb = board(ANNA, IVAN)
    wb.set_online({ANNA, IVAN})
    wb.call_changed(live(1, NOW - 30, ringing={ANNA, IVAN}))
    wb.call_changed(live(1, NOW - 30, talking={ANNA}))
    s = snap(wb)
    assert s["ringing"] == 0 and s["longest_wait_seconds"] == 0
    assert s["talking"] == 1
    assert s["staff"] == {"free": 1, "ringing": 0, "talking": 1, "offline": 0}
    assert per_staff(s)[ANNA]["state"] == "talking"
    assert per_staff(s)[IVAN]["state"] == "free"


def test_talking_wins_over_ringing_for_the_same_staff() -> None:
    """A staff member in a conversation whose phone is offered another call is talking."""
    wb = board(ANNA)
    wb.call_changed(live(1, NOW - 60, talking={ANNA}))
    wb.call_changed(live(2, NOW - 5, ringing={ANNA}))
    s = snap(wb)
    assert (s["ringing"], s["talking"]) == (1, 1)
    assert s["staff"] == {"free": 0, "ringing": 0, "talking": 1, "offline": 0}


def test_outgoing_calls_do_not_make_callers_wait() -> None:
    """The longest wait is the callers' wait: a Call API call ringing the staff's own phone
    first is no caller waiting."""
    wb = board(ANNA, IVAN)
    wb.call_changed(live(1, NOW - 90, ringing={ANNA}, direction="out"))
    wb.call_changed(live(2, NOW - 4, ringing={IVAN}))
    assert snap(wb)["longest_wait_seconds"] == 4


def test_staff_states_free_ringing_talking_offline() -> None:
    wb = board(ANNA, IVAN, OLGA, PETR)
    wb.set_online({ANNA, IVAN})
    # Olga has no console open, yet her desk phone rings and she talks: the PBX says so.
    wb.call_changed(live(1, NOW - 3, ringing={IVAN}))
    wb.call_changed(live(2, NOW - 80, talking={OLGA}))
    s = snap(wb)
    assert s["staff"] == {"free": 1, "ringing": 1, "talking": 1, "offline": 1}
    states = {k: v["state"] for k, v in per_staff(s).items()}
    assert states == {ANNA: "free", IVAN: "ringing", OLGA: "talking", PETR: "offline"}


def test_set_online_changes_seq_only_when_the_set_changes() -> None:
    wb = board(ANNA, IVAN)
    wb.set_online({ANNA})
    seq = wb.seq
    wb.set_online({ANNA})
    assert wb.seq == seq
    wb.set_online({ANNA, IVAN})
    assert wb.seq == seq + 1
    assert snap(wb)["staff"]["free"] == 2  # type: ignore[index]
    wb.set_online(set())
    assert snap(wb)["staff"] == {"free": 0, "ringing": 0, "talking": 0, "offline": 2}


def test_a_finished_call_leaves_the_live_figures() -> None:
    wb = board(ANNA)
    wb.set_online({ANNA})
    wb.call_changed(live(1, NOW - 40, talking={ANNA}))
    wb.call_finished(answered(1, 6, 34))
    s = snap(wb)
    assert (s["ringing"], s["talking"], s["longest_wait_seconds"]) == (0, 0, 0)
    assert per_staff(s)[ANNA]["state"] == "free"


def test_seq_rises_with_every_change() -> None:
    wb = board(ANNA)
    seqs = [wb.seq]
    wb.call_changed(live(1, ringing={ANNA}))
    seqs.append(wb.seq)
    wb.call_changed(live(1, talking={ANNA}))
    seqs.append(wb.seq)
    wb.call_finished(answered(1, 5, 30))
    seqs.append(wb.seq)
    wb.set_online({ANNA})
    seqs.append(wb.seq)
    assert seqs == sorted(set(seqs)), seqs
    assert snap(wb)["seq"] == wb.seq


# --- today's figures -------------------------------------------------------------------------


def test_today_answered_missed_service_level_asa_and_talk() -> None:
    wb = board(ANNA, IVAN)
    wb.call_finished(answered(1, 5, 60, ANNA))
    wb.call_finished(answered(2, 20, 120, IVAN))  # exactly at the threshold: within it
    wb.call_finished(answered(3, 30.5, 90, ANNA))
    wb.call_finished(missed(4, ANNA))
    assert today(snap(wb)) == {
        "answered": 3,
        "missed": 1,
        "service_level": round(2 / 3, 4),
        "avg_answer_seconds": round((5 + 20 + 30.5) / 3, 1),
        "avg_talk_seconds": 90.0,
    }


def test_service_level_threshold_is_configurable() -> None:
    wb = board(ANNA)
    wb.set_staff({ANNA}, 10)
    wb.call_finished(answered(1, 10, 60))
    wb.call_finished(answered(2, 11, 60))
    assert today(snap(wb))["service_level"] == 0.5


def test_only_missed_calls_have_no_averages() -> None:
    wb = board(ANNA)
    wb.call_finished(missed(1, ANNA))
    wb.call_finished(missed(2))  # hung up in the voice menu: missed, offered to nobody
    figures = today(snap(wb))
    assert figures["missed"] == 2 and figures["answered"] == 0
    assert figures["service_level"] is None
    assert figures["avg_answer_seconds"] is None and figures["avg_talk_seconds"] is None


def test_per_staff_answered_missed_and_talk() -> None:
    """Missed per staff = offered to them and not answered by them, even if a colleague
    answered; a transfer is answered by both, each with their own talk time."""
    wb = board(ANNA, IVAN, OLGA)
    wb.call_finished(answered(1, 8, 100, IVAN, offered=(ANNA, IVAN)))  # Anna let it ring out
    wb.call_finished(missed(2, ANNA, IVAN))
    transfer = FinishedCall(3, "in", NOON, True, 4, 150, (ANNA, OLGA), ((ANNA, 50), (OLGA, 100)))
    wb.call_finished(transfer)
    rows = per_staff(snap(wb))
    assert {k: (v["answered"], v["missed"], v["talk_seconds"]) for k, v in rows.items()} == {
        ANNA: (1, 2, 50),
        IVAN: (1, 1, 100),
        OLGA: (1, 0, 100),
    }
    figures = today(snap(wb))
    assert (figures["answered"], figures["missed"]) == (2, 1)  # calls, not conversations
    assert figures["avg_talk_seconds"] == 125.0


def test_a_call_is_counted_once_as_it_was_last_seen() -> None:
    """A call is counted at its end and again once settled: the second replaces the first."""
    wb = board(ANNA, IVAN)
    at_end = missed(1, ANNA)
    wb.call_finished(at_end)
    wb.call_finished(at_end)  # a repeat changes nothing
    s = snap(wb)
    assert (today(s)["answered"], today(s)["missed"]) == (0, 1)
    # A late leg: Ivan had answered it. The count is corrected, not doubled.
    wb.call_finished(answered(1, 5, 60, IVAN, offered=(ANNA, IVAN)))
    s = snap(wb)
    assert (today(s)["answered"], today(s)["missed"]) == (1, 0)
    assert (per_staff(s)[ANNA]["answered"], per_staff(s)[ANNA]["missed"]) == (0, 1)
    assert (per_staff(s)[IVAN]["answered"], per_staff(s)[IVAN]["talk_seconds"]) == (1, 60)
    assert today(s)["avg_talk_seconds"] == 60.0
    assert sum(h["answered"] + h["missed"] for h in s["by_hour"]) == 1  # type: ignore[union-attr]


def test_outgoing_calls_are_not_service_figures() -> None:
    wb = board(ANNA)
    wb.call_finished(answered(1, 10, 60))
    wb.call_finished(outgoing(2, ANNA, 300))
    wb.call_finished(outgoing(3, ANNA, 0))  # the user did not answer: not a missed call either
    s = snap(wb)
    assert today(s) == {
        "answered": 1,
        "missed": 0,
        "service_level": 1.0,
        "avg_answer_seconds": 10.0,
        "avg_talk_seconds": 60.0,
    }
    assert s["by_hour"][12] == {"hour": 12, "answered": 1, "missed": 0}  # type: ignore[index]
    assert per_staff(s)[ANNA]["missed"] == 0


def test_by_hour_in_the_account_zone() -> None:
    wb = board(ANNA)
    # 06:10 and 06:50 UTC are 09:10 and 09:50 in Moscow; 07:05 UTC is 10:05.
    wb.call_finished(answered(1, 5, 60, at=datetime(2026, 11, 2, 6, 10, tzinfo=UTC)))
    wb.call_finished(answered(2, 5, 60, at=datetime(2026, 11, 2, 6, 50, tzinfo=UTC)))
    wb.call_finished(missed(3, ANNA, at=datetime(2026, 11, 2, 7, 5, tzinfo=UTC)))
    wb.call_finished(missed(4, at=datetime(2026, 11, 2, 20, 59, 59, tzinfo=UTC)))  # 23:59:59
    hours = snap(wb)["by_hour"]
    assert isinstance(hours, list) and [h["hour"] for h in hours] == list(range(24))
    nonzero = {
        h["hour"]: (h["answered"], h["missed"]) for h in hours if h["answered"] or h["missed"]
    }
    assert nonzero == {9: (2, 0), 10: (0, 1), 23: (0, 1)}


# --- the day changes -------------------------------------------------------------------------


def test_a_new_day_starts_from_zero() -> None:
    wb = board(ANNA)
    wb.call_finished(answered(1, 5, 60))
    wb.call_finished(missed(2, ANNA))
    wb.call_changed(live(3, NOW - 12, ringing={ANNA}))
    tomorrow = TODAY + timedelta(days=1)
    s = snap(wb, today=tomorrow)
    assert today(s)["answered"] == 0 and today(s)["missed"] == 0
    assert per_staff(s)[ANNA] == {
        "staff_id": ANNA,
        "state": "ringing",  # live calls go on across midnight
        "answered": 0,
        "missed": 0,
        "talk_seconds": 0,
        "routed": 0,
        "reached": 0,
    }
    assert all(h["answered"] == h["missed"] == 0 for h in s["by_hour"])  # type: ignore[union-attr]
    assert s["ringing"] == 1
    # A call that started yesterday and ends today is yesterday's.
    wb.call_finished(answered(3, 12, 40))
    assert today(snap(wb, today=tomorrow))["answered"] == 0
    # Today's calls count again.
    wb.call_finished(answered(4, 3, 30, at=NOON + timedelta(days=1)))
    assert today(snap(wb, today=tomorrow))["answered"] == 1


def test_midnight_is_a_change_the_feed_pushes() -> None:
    """Open wallboards get a new snapshot when the seq rises: the new day must raise it, or
    a quiet night would show yesterday's figures as today's until the first call."""
    wb = board(ANNA)
    wb.call_finished(answered(1, 5, 60))
    seq = snap(wb)["seq"]
    assert snap(wb)["seq"] == seq  # nothing changed
    assert snap(wb, today=TODAY + timedelta(days=1))["seq"] > seq


def test_the_day_is_the_account_day() -> None:
    """22:30 UTC on 1 November is 01:30 on 2 November in Moscow: today's call."""
    wb = board(ANNA)
    wb.call_finished(answered(1, 5, 60, at=datetime(2026, 11, 1, 22, 30, tzinfo=UTC)))
    wb.call_finished(answered(2, 5, 60, at=datetime(2026, 11, 1, 20, 30, tzinfo=UTC)))  # 23:30
    s = snap(wb)
    assert today(s)["answered"] == 1
    assert s["by_hour"][1]["answered"] == 1  # type: ignore[index]


def test_the_first_call_of_a_new_day_rolls_the_counters() -> None:
    """No snapshot in between (nobody looking at midnight): the first finished call of the
    new day still starts it afresh."""
    wb = board(ANNA)
    wb.call_finished(answered(1, 5, 60))
    wb.call_finished(missed(2, ANNA, at=NOON + timedelta(days=1)))
    s = snap(wb, today=TODAY + timedelta(days=1))
    assert (today(s)["answered"], today(s)["missed"]) == (0, 1)
    assert per_staff(s)[ANNA]["answered"] == 0


# --- from real calls -------------------------------------------------------------------------


CALL = 337859081
START = datetime(2026, 11, 2, 9, 30)
PHONE = "79261234567"
STAFF_OF = {E_ANNA: ANNA, E_IVAN: IVAN}


def test_finished_call_of_an_answered_call() -> None:
    events = ub.incoming_answered(CALL, START, PHONE, E_ANNA, 73)
    call = finished_call(facts_of(parse(events)), STAFF_OF)
    [picked] = times(events, "answer")
    [(end, end_body)] = [
        (t, b) for t, b in events if b["notification_name"] == ub.NAMES["call_end"]
    ]
    # The caller waits from the call's start: before the first leg too (voice menu, queue),
    # which the call end's total duration tells.
    started = min(
        times(events, "leg_start")
        + [local(end) - timedelta(seconds=end_body["call_info"]["total_time_duration"])]
    )
    assert call.answered and call.direction == "in"
    assert call.started_at == started
    assert call.wait_seconds == (picked - started).total_seconds()
    assert call.talk_seconds == 73
    assert call.offered == (ANNA,)
    assert call.talked == ((ANNA, 73),)


def test_finished_call_of_a_missed_call_names_the_mapped_staff_rung() -> None:
    events = ub.incoming_missed(CALL, START, PHONE, [E_ANNA, E_UNMAPPED, E_IVAN, E_ANNA])
    call = finished_call(facts_of(parse(events)), STAFF_OF)
    assert not call.answered and call.wait_seconds is None
    assert call.offered == (IVAN, ANNA)  # unmapped operators are not staff (R2), once each
    assert call.talked == ()


def test_finished_call_of_a_transfer_splits_the_talk() -> None:
    events = ub.transfer(CALL, START, PHONE, E_ANNA, E_IVAN)
    call = finished_call(facts_of(parse(events)), STAFF_OF)
    talked = dict(call.talked)
    assert set(talked) == {ANNA, IVAN}
    assert sum(talked.values()) == pytest.approx(call.talk_seconds, abs=2)
    wb = board(ANNA, IVAN)
    wb.call_finished(call)
    rows = per_staff(snap(wb, today=START.date()))
    assert rows[ANNA]["answered"] == rows[IVAN]["answered"] == 1
    assert rows[ANNA]["missed"] == rows[IVAN]["missed"] == 0


def _shard_board(events: list[ub.Event]) -> tuple[Wallboard, list[dict[str, object]]]:
    """Feed a scenario through a shard host, one body a second, into a board; the snapshot
    after each body, then the one after the call was finalized."""
    host = ShardHost(0, 1, STAFF_OF)
    wb = board(ANNA, IVAN)
    wb.set_online({ANNA, IVAN})
    snaps = []
    now = NOW
    for n in parse(events):
        for event in host.handle([Inbound(None, now, n)], now).board:
            wb.call_changed(event) if isinstance(event, LiveCall) else wb.call_finished(event)
        snaps.append(wb.snapshot(now, START.date()))
        now += 1
    now += 1
    host.clock = ClockReading(1e12, now)  # the event clock far past the call's end
    for event in host.tick(now).board:
        wb.call_changed(event) if isinstance(event, LiveCall) else wb.call_finished(event)
    snaps.append(wb.snapshot(now, START.date()))
    return wb, snaps


def test_a_real_call_through_the_shard_host() -> None:
    events = ub.incoming_answered(CALL, START, PHONE, E_ANNA, 73)
    names = [b["notification_name"] for _, b in events]
    assert names[:2] == [ub.NAMES["leg_start"], ub.NAMES["answer"]]
    _, snaps = _shard_board(events)
    ringing, talking, final = snaps[0], snaps[1], snaps[-1]
    assert ringing["ringing"] == 1 and per_staff(ringing)[ANNA]["state"] == "ringing"
    assert talking["ringing"] == 0 and talking["talking"] == 1
    assert per_staff(talking)[ANNA]["state"] == "talking"
    assert final["ringing"] == final["talking"] == 0
    assert today(final)["answered"] == 1
    assert per_staff(final)[ANNA] == {
        "staff_id": ANNA,
        "state": "free",
        "answered": 1,
        "missed": 0,
        "talk_seconds": 73,
        "routed": 0,
        "reached": 0,
    }


def test_an_ended_call_is_not_ringing_while_it_settles() -> None:
    events = ub.incoming_answered(CALL, START, PHONE, E_ANNA, 73)
    end = [b["notification_name"] for _, b in events].index(ub.NAMES["call_end"])
    _, snaps = _shard_board(events)
    after_end = snaps[end]
    assert (after_end["ringing"], after_end["longest_wait_seconds"]) == (0, 0)
    assert today(after_end)["answered"] == 1  # counted at its end, before it is settled
