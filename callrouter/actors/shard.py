"""The Ray shell around `ShardHost`: one process hosting many call and agent entities.

The writer is a shard's only correspondent: it delivers stored notifications (with the event
clock) and, in the same call, takes back everything the shard made since — finished calls,
late news, quarantined calls, live events, wallboard changes, envelopes for agents on other
shards. Timers fire in each delivery (the host keeps heaps of deadlines, so a tick looks only
at what is due); deliveries come every tenth of a second while anything happens, and otherwise
by the shard's next deadline. One Ray call each way per turn, whatever the traffic (a Ray call
costs ~1 ms of CPU here), and no timer of its own: an idle shard costs nothing. Turns are
synchronous: `deliver` never awaits between reading and writing entity state. A restarted
shard has an epoch of its own, by which the writer knows to send it the notifications not
done yet.
"""

from __future__ import annotations

import time
from typing import Any

import ray

from callrouter import logs
from callrouter.actors import placement
from callrouter.actors.board import Board
from callrouter.actors.host import Envelope, Output, ShardHost
from callrouter.actors.stats import Stats
from callrouter.actors.writer import Writer
from callrouter.domain.clock import ClockReading
from callrouter.storage import directory, reconcile
from callrouter.storage.engine import Database


def shard_name(prefix: str, index: int) -> str:
    return f"{prefix}-shard-{index}"


@ray.remote(num_cpus=0, max_restarts=-1, max_concurrency=1000)  # type: ignore[call-overload]
class Shard:
    def __init__(self, index: int, count: int, database_url: str) -> None:
        logs.setup_actor()
        self.host = ShardHost(index, count)
        self.db = Database(database_url)  # read-only: the configuration
        self.made = Output()  # what the next delivery takes back
        self.epoch = time.time_ns()
        self.started = False
        self.answers = 0  # deliveries answered
        self.last = Output()  # the last answer, until the writer acknowledges it

    async def configure(self) -> None:
        """(Re)load the operator map, the silent-call timeout and the lateness bound."""
        async with self.db.sessions() as session:
            account = await directory.load_account(session)
            staff_of = await directory.operator_map(session)
            settings = await reconcile.load_settings(session)
            hold = reconcile.hold_seconds(settings, account.integration is not None)
        self.host.configure(
            staff_of,
            float(account.silent_call_timeout_seconds),
            float(account.lateness_seconds),
            hold,
        )

    async def deliver(
        self,
        envelopes: list[Envelope],
        reading: ClockReading | None = None,
        known: int | None = None,
        hold: bool = False,
        ack: int | None = None,
    ) -> tuple[int, int, Output | None, bool, float | None]:
        """Apply a batch of envelopes (the only way work reaches entities), with the event
        clock; returns this shard's epoch and everything it made since the last delivery.

        `known` is the epoch the writer last saw: a new incarnation (Ray restarted this actor,
        its memory is gone) refuses the batch (None) until the writer has sent it what it lost,
        and while `hold` finishes nothing: a call whose end came in the batch must not be
        decided on that end alone.

        The fourth value says whether a call here waits for its lateness bound: the writer then
        keeps delivering often, so the call is decided on time; the fifth is the wall time of
        the next deadline (`ShardHost.next_due`): a quiet shard is not delivered to before it,
        so 100,000 ringing calls cost no heartbeat.

        Each answer is numbered; `ack` is the number of the last one the writer received.
        When that is not our last, the answer was lost on the way (a timed-out call) and its
        contents go again with this one: what a shard makes is never lost, at worst repeated
        (the writer takes every part of it idempotently)."""
        if known is not None and known != self.epoch:
            return self.epoch, 0, None, False, None
        if not self.started:
            self.started = True
            await self.configure()
        if reading is not None:
            self.host.clock = reading
        now = time.time()
        self._keep(self.host.handle(envelopes, now))
        if not hold:
            self._keep(self.host.tick(now))
        made, self.made = self.made, Output()
        if ack is not None and ack != self.answers:
            self.last.add(made)
            made = self.last
        self.answers += 1
        self.last = made
        return self.epoch, self.answers, made, self.host.waiting(), self.host.next_due()

    async def resync_agents(self, shard: int) -> None:
        """Shard `shard` restarted: tell its agents again what rings and who talks (their
        envelopes leave with the next delivery)."""
        self._keep(self.host.resync_agents(shard))

    async def reset(self, call_ids: list[int]) -> None:
        self.host.reset(call_ids)

    def _keep(self, out: Output) -> None:
        self.made.add(out)

    async def call(self, call_session_id: int) -> dict[str, Any] | None:
        return self.host.call_snapshot(call_session_id)

    async def active_calls(self) -> list[dict[str, Any]]:
        return self.host.active_calls()

    async def agent_replay(self, staff_id: int) -> list[dict[str, Any]]:
        return self.host.agent_replay(staff_id)

    async def idle(self) -> bool:
        """Nothing waits here for the writer (tests and benchmarks wait for this)."""
        return not self.made

    async def stats(self) -> dict[str, Any]:
        return {
            "node": placement.this_node(),
            "calls": len(self.host.calls),
            "live_calls": sum(1 for c in self.host.calls.values() if not c.finished),
            "agents": len(self.host.agents),
            "quarantined": len(self.host.broken),
            "held_for_reconciliation": len(self.host.held),
        }

    async def stop(self) -> None:
        await self.db.dispose()


@ray.remote(num_cpus=0, max_restarts=-1)
class Supervisor:
    """Creates the named actors once and hands them out to every frontend."""

    def __init__(
        self, count: int, database_url: str, namespace_prefix: str, statistics: bool = True
    ) -> None:
        prefix = namespace_prefix
        # The writer, board and statistics beside the supervisor on the head; the shards
        # spread over the nodes (`placement.py`: losing a worker node loses shards only).
        nodes = placement.cluster_nodes()
        head = placement.on_node(placement.head_of(nodes))
        homes = placement.spread(count, nodes)
        self.board = Board.options(name=f"{prefix}-board", get_if_exists=True, **head).remote(  # type: ignore[attr-defined]  # ray.remote hides it from mypy
            database_url
        )
        # Without statistics (`serve --no-stats`) nothing keeps the counters.
        self.stats = (
            Stats.options(name=f"{prefix}-stats", get_if_exists=True, **head).remote(  # type: ignore[attr-defined]
                database_url, prefix
            )
            if statistics
            else None
        )
        self.shards = [
            Shard.options(  # type: ignore[attr-defined]  # ray.remote hides it from mypy
                name=shard_name(prefix, i), get_if_exists=True, **placement.on_node(homes[i])
            ).remote(i, count, database_url)
            for i in range(count)
        ]
        self.writer = Writer.options(name=f"{prefix}-writer", get_if_exists=True, **head).remote(
            database_url, count, prefix, self.stats, self.board
        )
        self.ready = False

    async def shards_ready(self) -> list[Any]:
        if not self.ready:
            await self.writer.start.remote(self.shards)
            self.ready = True
        return self.shards

    async def handles(self) -> dict[str, Any]:
        return {"writer": self.writer, "board": self.board, "stats": self.stats}

    async def nodes(self) -> list[dict[str, Any]]:
        """The cluster's nodes (`placement.NodeView.wire`), dead ones included."""
        return [n.wire() for n in placement.cluster_nodes()]
