"""The wallboard feed of a frontend (R31, STYLE habit 11: nothing blocked): a wall screen that
stops reading holds back no other screen and never makes the staff look offline."""

from __future__ import annotations

import asyncio
from typing import Any

from aiohttp import web

from callrouter.http import wallboard
from callrouter.http.keys import CLUSTER, HUB


class FakeSocket:
    """A WebSocket that records what it is sent; a stuck one never finishes a send (its peer
    stopped reading and the buffers are full)."""

    def __init__(self, *, stuck: bool = False) -> None:
        self.stuck = stuck
        self.closed = False
        self.sent: list[str] = []

    async def send_str(self, message: str) -> None:
        if self.stuck:
            await asyncio.Event().wait()
        self.sent.append(message)


class FakeHub:
    def __init__(self) -> None:
        self.staff: set[int] = set()

    def connected(self) -> set[int]:
        return set(self.staff)


class FakeCluster:
    """The board: a new snapshot at each poll, and the presence reports it got."""

    def __init__(self) -> None:
        self.seq = 0
        self.reports: list[list[int]] = []

    async def report_online(self, frontend: str, staff_ids: list[int]) -> None:
        self.reports.append(staff_ids)

    async def wallboard_poll(self, after: int, timeout: float) -> dict[str, Any]:
        await asyncio.sleep(0.01)
        self.seq += 1
        return {"seq": self.seq, "ringing": 0}


def seqs(socket: FakeSocket) -> list[int]:
    return [int(m.split('"seq":')[1].split(",")[0]) for m in socket.sent]


async def test_a_stuck_screen_holds_back_no_one() -> None:
    app = web.Application()
    hub, cluster = FakeHub(), FakeCluster()
    app[HUB], app[CLUSTER] = hub, cluster  # type: ignore[misc]  # fakes of the two
    feed = wallboard.WallboardFeed()
    stuck, reading = FakeSocket(stuck=True), FakeSocket()
    screens = [wallboard.Screen(stuck), wallboard.Screen(reading)]  # type: ignore[arg-type]
    feed.screens.update(screens)
    task = asyncio.create_task(feed.run(app))
    try:
        await asyncio.sleep(1.0)
        hub.staff = {7}  # a console opens while the stuck screen still blocks its send
        await asyncio.sleep(1.5)  # the presence loop looks every second
        assert [7] in cluster.reports, cluster.reports
        got = seqs(reading)
        assert len(got) >= 3 and got == sorted(got), got
        assert got[-1] >= cluster.seq - 1  # it keeps up: the newest snapshot, not a backlog
        assert stuck.sent == []
        # The stuck screen holds one message, the newest, whatever was offered meanwhile.
        assert screens[0].message is not None and f'"seq":{cluster.seq}' in screens[0].message
    finally:
        task.cancel()
        for screen in screens:
            screen.task.cancel()
        await asyncio.gather(task, *(s.task for s in screens), return_exceptions=True)


async def test_a_screen_never_goes_back_to_an_older_snapshot() -> None:
    socket = FakeSocket()
    screen = wallboard.Screen(socket)  # type: ignore[arg-type]
    try:
        screen.offer(5, wallboard.wire({"seq": 5, "ringing": 0}))
        screen.offer(4, wallboard.wire({"seq": 4, "ringing": 0}))  # read on connect, late
        await asyncio.sleep(0.05)
        screen.offer(5, wallboard.wire({"seq": 5, "ringing": 1}))  # same seq: the wait ticks
        await asyncio.sleep(0.05)
        assert seqs(socket) == [5, 5]
    finally:
        screen.task.cancel()
