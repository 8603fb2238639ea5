"""Chaos suite (issue "Nothing lost, whatever arrives"; R32, R33, STYLE habits 11 and 12):
whatever arrives and whatever dies, every run's cases equal those of a clean in-order run of
the same traffic.

Each scenario has a generated traffic file of its own (tens of calls compressed in UIS time:
answered, missed, voice menu, transfers, outgoing; repeat callers, so missed calls group),
each in its own UIS-time window, later than the previous one, with its own numbers and call
ids. One clean service replays every file in its window order, one request at a time in the
file's order: the references, computed once, in the background while the chaos runs. Two
chaos services take the scenarios in the same order, a file each: a SQLite one (hostile
bodies, SIGKILL of the whole service, of each shard worker, of the writer, duplicate and
shuffled deliveries) and one on a fresh PostgreSQL database with Redis fan-out (hostile bodies
again, then Redis and PostgreSQL restarted mid-replay; PostgreSQL last, as it disturbs every
user of it). Cases
depend only on their caller's own calls, so a file's cases are compared by its numbers
(`Fingerprint.of_phones`).

The scenarios are those of `bench/chaos.py` (which runs them at scale): every comparison waits
until the service is quiet (`GET /api/v1/system`: nothing pending in the inbox, the writer or
a shard, every call decided), never sleeps; each kill is proven mid-replay (part of the file
acknowledged, not all, the replay still running, calls in flight — each shard holding some
when a shard dies). Correctness only, never a timing. A failure prints the scenario's report:
its kills, what was wrong and, per user, how the cases differ from the clean run.
"""

from __future__ import annotations

import asyncio
import importlib.util
import sys
import threading
import uuid
from collections.abc import Callable, Iterator
from concurrent.futures import Future
from dataclasses import dataclass, field
from datetime import timedelta
from pathlib import Path
from types import ModuleType
from typing import TYPE_CHECKING, Any

import pytest

if TYPE_CHECKING:
    from tests.e2e.conftest import ServiceProcess

pytestmark = pytest.mark.e2e

ROOT = Path(__file__).resolve().parents[2]
CALLS = 60  # per traffic file: ~300 notifications
CALLS_PER_SECOND = 0.1  # UIS time: ~14 calls live at once
WINDOW = timedelta(minutes=30)  # UIS time between the starts of two files (each spans ~20)
RANDOM_BODIES = 60
# How long the replay of a scenario with kills lasts at least (the client is paced to it), so
# that every kill and its restart fall inside it.
KILL_REPLAY_SECONDS = 24.0
# Scenario -> the chaos service that runs it; the order is the files' UIS-time order.
SCENARIOS = {
    "hostile": "chaos",
    "service_kill": "chaos",
    "shard_kill": "chaos",
    "writer_kill": "chaos",
    "duplicate": "chaos",
    "shuffled": "chaos",
    "shard_gap": "chaos",
    "hostile_pg": "pgredis",
    "redis": "pgredis",
    "postgres": "pgredis",
}
# Test -> its scenario, to start only the services and references the selected tests need.
TEST_OF = {f"test_{name}": name for name in SCENARIOS if name not in ("hostile_pg", "shard_gap")}
TEST_OF["test_hostile_on_postgresql"] = "hostile_pg"
TEST_OF["test_calls_end_while_shards_are_down"] = "shard_gap"
REDIS_URL = "redis://127.0.0.1:6379/0"


def _load(name: str, path: Path) -> ModuleType:
    spec = importlib.util.spec_from_file_location(name, path)
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    sys.modules.setdefault(name, module)  # dataclasses look their module up here
    spec.loader.exec_module(module)
    return module


@dataclass
class Lab:
    """The module's traffic files, services and clean references."""

    chaos: ModuleType
    e2e: Any
    root: Path
    traffic: dict[str, Any] = field(default_factory=dict)  # scenario -> chaos.Traffic
    parts: dict[str, Any] = field(default_factory=dict)  # "shard_gap" -> (heads, tails)
    services: dict[str, ServiceProcess] = field(default_factory=dict)
    prepared: dict[str, Any] = field(default_factory=dict)  # service -> chaos.Prepared
    references: dict[str, Future[Any]] = field(default_factory=dict)  # scenario -> Fingerprint
    unavailable: dict[str, str] = field(default_factory=dict)  # service -> why
    pg_database: str | None = None
    locks: dict[str, threading.Lock] = field(
        default_factory=lambda: {name: threading.Lock() for name in ("clean", "chaos", "pgredis")}
    )

    def launch(self, name: str) -> None:
        """Start service `name` ("clean", "chaos", "pgredis") in the background."""
        database_url = None
        extra: tuple[str, ...] = ()
        if name == "pgredis":
            if not self.chaos.redis_up():
                self.unavailable[name] = "Redis at 127.0.0.1:6379 does not answer"
                return
            self.pg_database = f"callrouter_chaos_{uuid.uuid4().hex[:12]}"
            try:
                asyncio.run(self.e2e._pg_admin(f'CREATE DATABASE "{self.pg_database}"'))
            except Exception as exc:  # noqa: BLE001 - unreachable or refused: no PostgreSQL
                self.pg_database = None
                self.unavailable[name] = f"PostgreSQL at {self.e2e.PG_URL}: {exc!r}"
                return
            database_url = self.e2e._plain_pg_url(self.e2e.PG_URL, self.pg_database)
            extra = ("--redis-url", REDIS_URL)
        (self.root / name).mkdir()
        svc = self.e2e.ServiceProcess(
            self.root / name / "data",
            admin_token=f"chaos-{uuid.uuid4().hex}",
            database_url=database_url,
            name=name,
            extra_args=extra,
        )
        svc.start()
        self.services[name] = svc

    def bodies(self) -> list[dict[str, Any]]:
        return [body for traffic in self.traffic.values() for body in traffic.bodies()]

    def service(self, name: str) -> tuple[ServiceProcess, Any]:
        """Service `name`, ready and prepared (lateness bound, integration, every operator of
        every file mapped, a popup staff member on "pgredis")."""
        if name in self.unavailable:
            reason = self.unavailable[name]
            if self.e2e.REQUIRE_SERVICES:
                pytest.fail(reason + " (CALLROUTER_REQUIRE_SERVICES=1)")
            pytest.skip(reason)
        with self.locks[name]:  # the clean thread prepares "clean" meanwhile
            svc = self.services[name]
            if name not in self.prepared:
                svc.wait_ready()
                self.prepared[name] = self.chaos.prepare(
                    svc, self.bodies(), popup=name == "pgredis"
                )
        return svc, self.prepared[name]

    def reference(self, scenario: str) -> Callable[[], Any]:
        """The clean run's fingerprint of the scenario's file, waited for when called."""
        return lambda: self.references[scenario].result(timeout=900)

    def clean_runs(self, scenarios: list[str]) -> None:
        """Replay each file into the clean service, in window order (its own thread)."""
        try:
            svc, prepared = self.service("clean")
            for scenario in scenarios:
                future = self.references[scenario]
                try:
                    future.set_result(self.chaos.clean_run(svc, self.traffic[scenario], prepared))
                except BaseException as exc:  # noqa: BLE001 - to every test waiting for it
                    future.set_exception(exc)
        except BaseException as exc:  # noqa: BLE001 - the clean service did not come up
            for future in self.references.values():
                if not future.done():
                    future.set_exception(exc)

    def stop(self) -> None:
        for svc in self.services.values():
            svc.interrupt()
        for svc in self.services.values():
            svc.stop()
        self.chaos.start_redis()  # whatever a failed scenario left behind
        if self.pg_database is not None:
            self.chaos.pg_ready(self.e2e.PG_URL)
            asyncio.run(
                self.e2e._pg_admin(f'DROP DATABASE IF EXISTS "{self.pg_database}" WITH (FORCE)')
            )


@pytest.fixture(scope="module")
def lab(
    request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory, e2e_kit: ModuleType
) -> Iterator[Lab]:
    """Generates every file, starts the services the selected tests need (all at once), and
    starts the clean references in the background; stops everything at the end."""
    chaos = _load("chaos_bench", ROOT / "bench" / "chaos.py")
    root = tmp_path_factory.mktemp("chaos")
    made = Lab(chaos, e2e_kit, root)
    start = (chaos.local_now() - timedelta(hours=6)).replace(minute=0, second=0)
    for number, scenario in enumerate(SCENARIOS):
        if scenario == "shard_gap":
            made.traffic[scenario], *parts = chaos.make_gap_traffic(
                root,
                scenario,
                start=start + number * WINDOW,
                first_call_id=700_000_000 + number * 10_000,
            )
            made.parts[scenario] = parts
            continue
        made.traffic[scenario] = chaos.make_traffic(
            root,
            scenario,
            calls=CALLS,
            seed=101 + number,
            start=start + number * WINDOW,
            first_call_id=700_000_000 + number * 10_000,
            calls_per_second=CALLS_PER_SECOND,
        )
    files = list(made.traffic.values())
    for i, one in enumerate(files):
        for other in files[i + 1 :]:
            assert not one.phones & other.phones, f"{one.name} and {other.name} share numbers"
            assert one.last + timedelta(minutes=5) < other.first, "the windows overlap"
    here = Path(__file__).resolve()
    names = [
        getattr(item, "originalname", item.name)
        for item in request.session.items
        if Path(str(item.fspath)).resolve() == here
    ]
    selected = [TEST_OF[name] for name in names if name in TEST_OF]
    scenarios = [s for s in SCENARIOS if s in selected]
    try:
        for name in ["clean", *dict.fromkeys(SCENARIOS[s] for s in scenarios)]:
            made.launch(name)
        made.references = {s: Future() for s in scenarios}
        threading.Thread(
            target=made.clean_runs, args=(scenarios,), name="chaos-clean", daemon=True
        ).start()
        for traffic in files:
            print(traffic.summary())
        yield made
    finally:
        made.stop()


def _check(outcome: Any) -> None:
    """Print the scenario's report; fail with it unless its cases equal the clean run, nothing
    else went wrong and every kill was mid-replay."""
    report = outcome.report()
    print(report)
    for kill in outcome.kills:
        assert kill.mid_replay, f"not mid-replay: {kill.line()}\n{report}"
    assert not outcome.problems, report
    assert outcome.equal, f"{outcome.scenario}: the cases differ from the clean run\n{report}"
    assert outcome.cases > 0, report


def _hostile(lab: Lab, scenario: str) -> None:
    chaos = lab.chaos
    svc, prepared = lab.service(SCENARIOS[scenario])
    outcome = chaos.hostile(
        svc,
        lab.traffic[scenario],
        prepared,
        lab.reference(scenario),
        seed=3,
        random_count=RANDOM_BODIES,
        replay_seconds=12.0,
        name=scenario,
    )
    _check(outcome)
    unknown = [p for p in outcome.poisons if p.unknown_caller]
    assert len(unknown) >= 2 and all(p.status == 200 for p in unknown), outcome.report()
    assert {p.phase for p in outcome.poisons} == {"before", "during", "after"}, outcome.report()


def test_hostile(lab: Lab) -> None:
    """R33: hostile bodies posted before, during and after a replay — a call end lasting
    10^12 s, times in year 1 and 9999, callers "anonymous", "+", "sip:operator@pbx", in
    Arabic-Indic digits, with a NUL character, numbers over 64 characters, unknown names,
    wrong types, {{placeholders}}, non-JSON (NUL bytes too), over 64 KiB, and seeded random
    JSON and mutated real bodies: never a 5xx, each the status the parser gives it, every 4xx
    kept at /api/v1/rejected, no call quarantined; the normal call posted right after each one
    gets its case; a caller without digits gets a case «… с неизвестного номера» of its own
    (two such calls are never grouped); and the traffic's cases equal the clean run."""
    _hostile(lab, "hostile")


def test_service_kill(lab: Lab) -> None:
    """R32: the whole service (the frontend and its Ray) SIGKILLed mid-replay, started again
    on the same data dir and port while the replay retries: nothing acknowledged lost, nothing
    doubled."""
    chaos = lab.chaos
    svc, prepared = lab.service("chaos")
    outcome = chaos.service_kill(
        svc,
        lab.traffic["service_kill"],
        prepared,
        lab.reference("service_kill"),
        kills=1,
        replay_seconds=KILL_REPLAY_SECONDS,
    )
    _check(outcome)


def test_shard_kill(lab: Lab) -> None:
    """R32: each shard's Ray worker (`ray::Shard…`) SIGKILLed in turn mid-replay, while every
    shard holds live calls; Ray restarts the actor, the service is not restarted."""
    chaos = lab.chaos
    svc, prepared = lab.service("chaos")
    outcome = chaos.worker_kills(
        svc,
        lab.traffic["shard_kill"],
        prepared,
        lab.reference("shard_kill"),
        title=chaos.SHARD,
        rounds=1,
        replay_seconds=KILL_REPLAY_SECONDS,
    )
    _check(outcome)
    assert len(outcome.kills) >= 2, outcome.report()


def test_writer_kill(lab: Lab) -> None:
    """R32: the writer's Ray worker (`ray::WriterService…`) SIGKILLed mid-replay, while calls
    are live; Ray restarts it, the service is not restarted."""
    chaos = lab.chaos
    svc, prepared = lab.service("chaos")
    outcome = chaos.worker_kills(
        svc,
        lab.traffic["writer_kill"],
        prepared,
        lab.reference("writer_kill"),
        title=chaos.WRITER,
        rounds=1,
        replay_seconds=KILL_REPLAY_SECONDS,
    )
    _check(outcome)


def test_duplicate(lab: Lab) -> None:
    """R32: the whole file replayed twice at once, then a third time once every call was
    decided: the cases of one clean run."""
    chaos = lab.chaos
    svc, prepared = lab.service("chaos")
    outcome = chaos.duplicate(svc, lab.traffic["duplicate"], prepared, lab.reference("duplicate"))
    _check(outcome)


def test_shuffled(lab: Lab) -> None:
    """R32, STYLE 12: every notification delayed by a random amount below the lateness bound
    in UIS time (per-call order not kept), a tenth of them resent, delivered one at a time in
    that order: the cases of the clean run. The schedule's own lateness is checked too."""
    chaos = lab.chaos
    svc, prepared = lab.service("chaos")
    outcome = chaos.shuffled(svc, lab.traffic["shuffled"], prepared, lab.reference("shuffled"))
    _check(outcome)


def test_calls_end_while_shards_are_down(lab: Lab) -> None:
    """R32, R13: six transfers, three per shard, live on the shards up to their first
    operator's leg end; every shard worker SIGKILLed; then, while Ray restarts them, the rest
    in UIS order (the second operators' leg ends, the call ends, the recordings, and a call a
    minute later): the shards are away for longer, in UIS time, than the lateness bound. The
    cases must be the clean run's: each operator's part its own case."""
    chaos = lab.chaos
    svc, prepared = lab.service("chaos")
    heads, tails = lab.parts["shard_gap"]
    outcome = chaos.calls_end_while_shards_down(
        svc, lab.traffic["shard_gap"], heads, tails, prepared, lab.reference("shard_gap")
    )
    _check(outcome)


def test_hostile_on_postgresql(lab: Lab) -> None:
    """The same on PostgreSQL, whose text columns cannot hold what SQLite's can (a NUL)."""
    _hostile(lab, "hostile_pg")


def test_redis(lab: Lab) -> None:
    """Redis shut down mid-replay and started again: nothing acknowledged lost, and a staff
    WebSocket gets the popup (`call.ringing`) of a call posted once Redis is back."""
    chaos = lab.chaos
    svc, prepared = lab.service("pgredis")
    outcome = chaos.restarts(
        "redis",
        svc,
        lab.traffic["redis"],
        prepared,
        lab.reference("redis"),
        count=1,
        replay_seconds=KILL_REPLAY_SECONDS,
    )
    _check(outcome)


def test_postgres(lab: Lab) -> None:
    """PostgreSQL restarted mid-replay: the service recovers by itself (not restarted),
    nothing acknowledged is lost (the inbox drains, the cases equal the clean run), and a
    staff WebSocket gets the popup of a call posted after the restart. Last in the module: it
    disturbs every user of PostgreSQL; PostgreSQL answers again before it ends."""
    chaos = lab.chaos
    svc, prepared = lab.service("pgredis")
    try:
        outcome = chaos.restarts(
            "postgres",
            svc,
            lab.traffic["postgres"],
            prepared,
            lab.reference("postgres"),
            count=1,
            replay_seconds=KILL_REPLAY_SECONDS,
        )
    finally:
        assert chaos.pg_ready(lab.e2e.PG_URL), "PostgreSQL did not come back"
    _check(outcome)
