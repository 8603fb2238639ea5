"""A real multi-node run on one machine (issue 13): two Ray nodes, two frontends, node loss.

    .venv/bin/python bench/multinode.py [--calls 60] [--shards 4] [--database-url URL]
        [--redis-url redis://127.0.0.1:6379/0] [--replay-seconds 20] [--work DIR] [--keep]

What it does, printing each step and its figures:

1. Two Ray nodes as Ray's own node processes, each `ray start --block` in a session of its own
   with its own ports and temp dir: the head (GCS) at this machine's address and node B at
   127.0.0.2, another loopback address, so that it is a node of its own address as a second
   machine would be and a frontend can attach to it (`serve --ray-node-ip`). The head checks
   its nodes' health every second (`RAY_health_check_*`), so a lost node is noticed in seconds.
2. A reference: a single-node service (its own Ray, SQLite) replays both traffic files, each in
   its order, one request at a time (`chaos.clean_run`).
3. Frontend A attached to the head, frontend B attached to node B, one fresh PostgreSQL
   database, live events through Redis. The placement (`callrouter/actors/placement.py`) is
   read back from `GET /api/v1/system` and from the nodes' processes: shards on both nodes,
   the writer, wallboard, statistics and supervisor on the head. A popup crosses frontends both
   ways (webhook on one, console on the other).
4. Clean: the first file replayed into frontend A; its cases must equal the reference's, and
   the CPU each process used is printed (per 1000 notifications).
5. Node loss: the second file replayed, paced; once node B's shards hold live calls node B
   is SIGKILLed (its raylet, its workers, its agents: its whole session) and frontend B with
   it (it ran on the lost machine). Node B's shards come back on the head by themselves, a
   popup reaches a console on frontend A mid-replay, the replay finishes; the cases must equal
   the reference's (nothing acknowledged lost or doubled). Frontend B is then restarted,
   attached to the surviving node, and a popup crosses to it again.

Exits 1 when a check fails. `tests/e2e/test_multinode.py` runs the same steps at a small
scale; this file is their implementation (reusing `bench/chaos.py`'s harness).
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import threading
import time
import uuid
from collections import defaultdict
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from datetime import timedelta
from pathlib import Path
from typing import Any

import psutil

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
sys.path.insert(0, str(Path(__file__).resolve().parent))

import chaos
from chaos import Background, Prepared, Service, Traffic

from callrouter.testing import fingerprint

ROOT = Path(__file__).resolve().parents[1]
RAY = str(Path(sys.executable).with_name("ray"))
NODE_B_IP = "127.0.0.2"  # another loopback address: node B is a node of its own address
# The head checks every node each second and gives up after three misses: a lost node is
# noticed in ~3-5 s (Ray's defaults take ~15-30 s). The GCS's settings, so the head's.
HEALTH_CHECK = {
    "RAY_health_check_initial_delay_ms": "1000",
    "RAY_health_check_period_ms": "1000",
    "RAY_health_check_failure_threshold": "3",
}
NODE_START_TIMEOUT = 120.0
RECOVERY_TIMEOUT = 120.0
HEAD_ONLY = ("ray::WriterService", "ray::Board", "ray::Stats", "ray::Supervisor")
SHARD = chaos.SHARD


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


# --- Ray nodes -------------------------------------------------------------------------------


class RayNode:
    """One Ray node: `ray start --block` in a session of its own (raylet, agents and every
    worker it starts belong to that session, so a SIGKILL of the session is the machine's
    loss), with its own ports and temp dir."""

    def __init__(self, name: str, work: Path, *, ip: str | None, resources: dict[str, int]):
        self.name = name
        self.ip = ip
        self.resources = resources
        # Unix socket paths have a ~107-byte limit: the temp dir must be short.
        self.temp_dir = Path(tempfile.mkdtemp(prefix=f"crmn-{name}-", dir="/tmp"))
        self.log_path = work / f"ray-{name}.log"
        self.proc: subprocess.Popen[bytes] | None = None
        self.gcs_port = 0
        self.log_offset = 0

    def start(self, head_address: str | None = None) -> None:
        """The head when `head_address` is None, else a node joining it."""
        cmd = [RAY, "start", "--block", "--disable-usage-stats", "--num-cpus", "2"]
        cmd += ["--temp-dir", str(self.temp_dir), "--resources", json.dumps(self.resources)]
        if self.ip:
            cmd += ["--node-ip-address", self.ip]
        for flag in (
            "--node-manager-port",
            "--object-manager-port",
            "--metrics-export-port",
            "--dashboard-agent-listen-port",
            "--dashboard-agent-grpc-port",
            "--runtime-env-agent-port",
        ):  # never Ray's fixed defaults: other Ray instances run on this machine
            cmd += [flag, str(free_port())]
        env = dict(os.environ, RAY_AUTH_MODE="disabled", RAY_worker_niceness="0")
        env.pop("RAY_ADDRESS", None)
        if head_address is None:
            self.gcs_port = free_port()
            cmd += ["--head", "--port", str(self.gcs_port), "--include-dashboard=false"]
            env.update(HEALTH_CHECK)
        else:
            cmd += ["--address", head_address]
        with self.log_path.open("ab") as log:
            self.log_offset = log.tell()  # `wait_up` reads only what this start writes
            self.proc = subprocess.Popen(
                cmd, cwd=ROOT, env=env, stdout=log, stderr=subprocess.STDOUT, start_new_session=True
            )

    def wait_up(self, timeout: float = NODE_START_TIMEOUT) -> float:
        """Wait until `ray start` reports the node running (it is registered with the GCS by
        then); the seconds that took."""
        assert self.proc is not None
        began = time.monotonic()
        while time.monotonic() - began < timeout:
            if self.proc.poll() is not None:
                raise RuntimeError(f"ray node {self.name} exited:\n{self.log_tail()}")
            with self.log_path.open("rb") as log:
                log.seek(self.log_offset)
                started = b"block forever" in log.read()
            if started:
                return time.monotonic() - began
            time.sleep(0.2)
        raise RuntimeError(f"ray node {self.name} not up in {timeout} s:\n{self.log_tail()}")

    @property
    def address(self) -> str:
        return f"127.0.0.1:{self.gcs_port}"

    def processes(self) -> list[psutil.Process]:
        return [] if self.proc is None else chaos.session_processes(self.proc.pid)

    def titles(self) -> list[str]:
        """The command names of the node's processes ("raylet", "ray::Shard", ...)."""
        found = []
        for proc in self.processes():
            try:
                cmd = proc.cmdline()
            except psutil.Error:
                continue
            if cmd:
                found.append(cmd[0].split(".")[0] if cmd[0].startswith("ray::") else proc.name())
        return found

    def kill(self) -> list[str]:
        """SIGKILL every process of the node at once; what was killed."""
        procs = self.processes()
        killed = []
        for proc in procs:
            try:
                killed.append(proc.name())
                proc.kill()
            except psutil.Error:
                pass
        psutil.wait_procs(procs, timeout=10)
        if self.proc is not None:
            self.proc.wait(timeout=10)
            self.proc = None
        return killed

    def stop(self) -> None:
        if self.proc is not None:
            self.kill()
        shutil.rmtree(self.temp_dir, ignore_errors=True)

    def log_tail(self, lines: int = 30) -> str:
        try:
            return "\n".join(self.log_path.read_text(errors="replace").splitlines()[-lines:])
        except OSError:
            return "(no log)"


# --- what the run checks and reports ----------------------------------------------------------


@dataclass
class Report:
    """Every step's figures and every problem found."""

    lines: list[str] = field(default_factory=list)
    problems: list[tuple[str, str]] = field(default_factory=list)  # (step, what)
    figures: dict[str, Any] = field(default_factory=dict)
    step: str = "start"  # placement, popups, clean, node_loss, restart

    def say(self, line: str) -> None:
        self.lines.append(line)
        print(line, flush=True)

    def check(self, ok: bool, problem: str) -> None:
        if not ok:
            self.problems.append((self.step, problem))
            print(f"  PROBLEM ({self.step}): {problem}", flush=True)

    def of(self, step: str) -> list[str]:
        """The problems found in `step`."""
        return [problem for at, problem in self.problems if at == step]

    @property
    def ok(self) -> bool:
        return not self.problems


def placement_of(info: dict[str, Any]) -> dict[str, list[int]]:
    """Node address -> the shards on it (alive nodes), from `GET /api/v1/system`."""
    return {n["address"]: n["shards"] for n in info["nodes"] if n["alive"]}


def cpu_by_title(nodes: list[RayNode], frontends: dict[str, Service]) -> dict[str, float]:
    """CPU seconds used so far by each kind of process: the frontends by name, Ray's workers
    by actor class and node, Ray's own processes (raylet, gcs_server, ...) by node."""
    spent: dict[str, float] = defaultdict(float)

    def add(key: str, proc: psutil.Process) -> None:
        try:
            times = proc.cpu_times()
        except psutil.Error:
            return
        spent[key] += times.user + times.system

    for node in nodes:
        for proc in node.processes():
            try:
                cmd = proc.cmdline()
            except psutil.Error:
                continue
            title = cmd[0].split(".")[0] if cmd and cmd[0].startswith("ray::") else proc.name()
            add(f"{node.name}: {title}", proc)
    for name, svc in frontends.items():
        if svc.proc is not None:
            add(f"frontend {name}", psutil.Process(svc.proc.pid))
    return dict(spent)


def cpu_delta(before: dict[str, float], after: dict[str, float]) -> dict[str, float]:
    return {
        k: after[k] - before.get(k, 0.0) for k in sorted(after) if after[k] > before.get(k, 0.0)
    }


def wait_for(
    what: str, test: Callable[[], Any], timeout: float, step: float = 0.2
) -> tuple[Any, float]:
    """Poll `test` until it returns something truthy; (that, seconds)."""
    began = time.monotonic()
    while time.monotonic() - began < timeout:
        got = test()
        if got:
            return got, time.monotonic() - began
        time.sleep(step)
    raise AssertionError(f"{what}: not within {timeout} s")


# --- the run ---------------------------------------------------------------------------------


@dataclass
class Setup:
    calls: int = 60
    shards: int = 4
    seed: int = 13
    database_url: str = chaos.PG_DEFAULT
    redis_url: str = chaos.REDIS_DEFAULT
    replay_seconds: float = 20.0  # how long the node-loss replay lasts at least
    calls_per_second: float = 0.1  # UIS time


class MultiNode:
    """The run's resources: nodes, frontends, the reference service, the PostgreSQL database;
    `close` releases all of them."""

    def __init__(self, work: Path, setup: Setup) -> None:
        self.work = work
        self.setup = setup
        self.token = f"multinode-{uuid.uuid4().hex}"
        self.report = Report()
        self.head = RayNode("head", work, ip=None, resources={"callrouter-head": 1})
        self.node_b = RayNode("b", work, ip=NODE_B_IP, resources={"callrouter-worker": 1})
        self.frontends: dict[str, Service] = {}
        self.reference_svc: Service | None = None
        self.databases = chaos.PgDatabases(setup.database_url)
        self.prepared: Prepared | None = None
        self.database = ""

    # -- pieces -----------------------------------------------------------------------------

    def traffic(self) -> tuple[Traffic, Traffic]:
        """Two files in UIS-time windows of their own (in the past), ids and numbers apart."""
        # Each file spans calls / rate of UIS time; the next starts half an hour after it.
        span = timedelta(seconds=self.setup.calls / self.setup.calls_per_second, minutes=30)
        start = chaos.local_now() - 2 * span - timedelta(hours=1)
        made = []
        for i, name in enumerate(("clean", "node_loss")):
            made.append(
                chaos.make_traffic(
                    self.work,
                    name,
                    calls=self.setup.calls,
                    seed=self.setup.seed + i,
                    start=start + span * i,
                    first_call_id=700_000_000 + 1_000_000 * i,
                    calls_per_second=self.setup.calls_per_second,
                )
            )
        return made[0], made[1]

    def reference(self, files: tuple[Traffic, ...]) -> list[fingerprint.Fingerprint]:
        """The single-node run: each file in its order, one request at a time."""
        svc = Service(self.work / "reference" / "data", admin_token=self.token, name="reference")
        self.reference_svc = svc
        svc.start()
        svc.wait_ready()
        prepared = chaos.prepare(svc, [b for t in files for b in t.bodies()])
        prints = [chaos.clean_run(svc, t, prepared) for t in files]
        svc.stop()
        return prints

    def frontend(self, name: str, node_ip: str | None) -> Service:
        args = ["--ray-address", self.head.address, "--redis-url", self.setup.redis_url]
        args += ["--shards", str(self.setup.shards)]
        if node_ip:
            args += ["--ray-node-ip", node_ip]
        svc = Service(
            self.work / f"frontend-{name}" / "data",
            admin_token=self.token,
            database_url=self.database,
            name=f"frontend-{name}",
            extra_args=tuple(args),
        )
        self.frontends[name] = svc
        svc.start()
        svc.wait_ready()
        return svc

    def popup(self, console: Service, via: Service, label: str, when: Any) -> float | None:
        """A call posted to `via` must pop up on the console open at `console`."""
        assert self.prepared is not None
        popped = chaos.popup_after(console, self.prepared, when, timeout=40.0, via=via)
        self.report.say(f"  {label}: {popped.line()}")
        self.report.check(popped.event is not None, f"{label}: no popup ({popped.line()})")
        return popped.seconds if popped.event is not None else None

    # -- the steps --------------------------------------------------------------------------

    def run(self) -> Report:
        say, check = self.report.say, self.report.check
        began = time.monotonic()
        clean, loss = self.traffic()
        say(f"traffic: {clean.summary()}")
        say(f"traffic: {loss.summary()}")

        # The reference runs while the cluster starts (the two share the machine's cores).
        reference: dict[str, list[fingerprint.Fingerprint] | BaseException] = {}

        def make_reference() -> None:
            try:
                reference["prints"] = self.reference((clean, loss))
            except BaseException as exc:  # noqa: BLE001 - reported by whoever waits
                reference["prints"] = exc

        ref_thread = threading.Thread(target=make_reference, name="reference", daemon=True)
        ref_thread.start()

        self.head.start()
        head_up = self.head.wait_up()
        self.node_b.start(self.head.address)
        b_up = self.node_b.wait_up()
        say(
            f"ray: head at {self.head.address} up in {head_up:.1f} s, node B ({NODE_B_IP}) "
            f"joined in {b_up:.1f} s"
        )
        self.database = self.databases.new("multinode")
        a = self.frontend("a", None)
        b = self.frontend("b", NODE_B_IP)
        say(f"frontends: A {a.base_url} (head), B {b.base_url} (node B); PostgreSQL, Redis")
        self.prepared = chaos.prepare(a, clean.bodies() + loss.bodies(), popup=True)

        self.report.step = "placement"
        info = chaos.system(a)
        assert info is not None
        placed = placement_of(info)
        say(f"placement (GET /api/v1/system): shards per node {placed}")
        check(len(placed) == 2 and all(placed.values()), f"shards not on both nodes: {placed}")
        on_b = set(self.node_b.titles())
        on_head = set(self.head.titles())
        check(SHARD in on_b, f"no shard process on node B: {sorted(on_b)}")
        check(
            all(t in on_head and t not in on_b for t in HEAD_ONLY),
            f"writer/board/statistics/supervisor not all on the head only: head {sorted(on_head)}"
            f", node B {sorted(on_b)}",
        )
        say(f"  processes on node B: {sorted(on_b)}")

        self.report.step = "popups"
        before = clean.first - timedelta(minutes=5)
        self.popup(b, a, "popup, webhook on A, console on B", before)
        self.popup(a, b, "popup, webhook on B, console on A", before + timedelta(seconds=30))

        prints = self._reference(ref_thread, reference)

        # -- clean replay across the two nodes ------------------------------------------------
        self.report.step = "clean"
        cpu_before = cpu_by_title([self.head, self.node_b], self.frontends)
        t0 = time.monotonic()
        reports = Background(a, clean.path, self.prepared.webhook_path).reports()
        chaos.settle(a)
        seconds = time.monotonic() - t0
        cpu = cpu_delta(cpu_before, cpu_by_title([self.head, self.node_b], self.frontends))
        check(not chaos.check_reports(reports, clean.lines), f"replay: {reports}")
        found = chaos.cases_of(a, clean)
        diff = fingerprint.diff(prints[0], found, ("single node", "two nodes"))
        say(
            f"clean two-node replay: {clean.lines} notifications in {seconds:.1f} s, "
            f"{len(found.cases)} cases, fingerprint "
            f"{'equal to' if not diff else 'DIFFERS from'} the single-node run"
        )
        check(not diff, f"two-node cases differ from the single-node run:\n{diff}")
        per_k = {k: round(v * 1000 / clean.lines, 2) for k, v in cpu.items()}
        self.report.figures["cpu_seconds_per_1000_notifications"] = per_k
        say(f"  CPU s per 1000 notifications: {per_k}")

        # -- node loss ------------------------------------------------------------------------
        self._node_loss(a, b, loss, prints[1])
        say(f"done in {time.monotonic() - began:.1f} s: {'OK' if self.report.ok else 'FAILED'}")
        return self.report

    def _reference(
        self,
        thread: threading.Thread,
        reference: dict[str, list[fingerprint.Fingerprint] | BaseException],
    ) -> list[fingerprint.Fingerprint]:
        thread.join(timeout=600)
        got = reference.get("prints")
        if isinstance(got, BaseException):
            raise got
        assert got is not None, "the reference run did not finish"
        self.report.say(f"reference (single node, SQLite): {[len(p.cases) for p in got]} cases")
        return got

    def _node_loss(
        self, a: Service, b: Service, loss: Traffic, reference: fingerprint.Fingerprint
    ) -> None:
        say, check = self.report.say, self.report.check
        assert self.prepared is not None
        head_ip = next(n["address"] for n in (chaos.system(a) or {})["nodes"] if n["head"])

        def b_busy(info: dict[str, Any]) -> bool:
            nodes = {n["node_id"]: n for n in info["nodes"]}
            return any(s["live_calls"] > 0 and not nodes[s["node"]]["head"] for s in info["shards"])

        self.report.step = "node_loss"
        started = time.monotonic()
        out = chaos.begin(chaos.Outcome("node_loss", loss.lines), a)
        rate = chaos.kill_rate(loss, self.setup.replay_seconds)
        running = Background(a, loss.path, self.prepared.webhook_path, rate=rate)
        count, info = chaos.wait_point(a, loss, running, 0.35, b_busy)
        assert info is not None
        live_b = sum(
            s["live_calls"]
            for s in info["shards"]
            if s["node"] in {n["node_id"] for n in info["nodes"] if n["address"] == NODE_B_IP}
        )
        kill = chaos.Kill(
            "node B (raylet, workers, agents: SIGKILL)",
            count,
            loss.lines,
            not running.done(),
            info["writer"]["live_calls"],
        )
        t0 = time.monotonic()
        killed = self.node_b.kill()
        frontend_b = "exited by itself"
        try:
            assert b.proc is not None
            b.proc.wait(timeout=5)
        except subprocess.TimeoutExpired:
            frontend_b = "still running: killed with its machine"
        if b.proc is not None and b.proc.poll() is None:
            b.kill()
        b.proc = None

        def back() -> dict[str, Any] | None:
            now = chaos.system(a)
            if now is None:
                return None
            placed = placement_of(now)
            return (
                now
                if set(placed) == {head_ip} and len(placed[head_ip]) == len(now["shards"])
                else None
            )

        after, _ = wait_for("node B's shards back on the head", back, RECOVERY_TIMEOUT)
        kill.back_after = time.monotonic() - t0  # from the SIGKILL to every shard answering
        kill.stored_after = chaos.stored(a, loss)
        kill.note = (
            f"{live_b} live calls on node B's shards; killed {len(killed)} processes "
            f"({', '.join(sorted(set(killed)))}); frontend B {frontend_b}; shards per node "
            f"after: {placement_of(after)}"
        )
        out.kills.append(kill)
        say(f"node loss: {kill.line()}")
        self.report.figures["node_loss_recovery_seconds"] = round(kill.back_after, 1)
        self.popup(
            a,
            a,
            "popup on frontend A after the loss (mid-replay)",
            chaos.event_moment(a, loss.first),
        )
        out.problems += chaos.check_reports(running.reports(), loss.lines)
        chaos.finish(out, a, loss, reference, started)
        say(out.report())
        for problem in out.problems:
            check(False, problem)
        check(kill.mid_replay, f"the kill was not mid-replay: {kill.line()}")
        check(out.equal, "node-loss cases differ from the single-node run")

        # Frontend B's machine is gone: it starts again on the surviving node.
        self.report.step = "restart"
        t1 = time.monotonic()
        b2 = self.frontend("b", None)
        say(f"frontend B restarted on the head in {time.monotonic() - t1:.1f} s ({b2.base_url})")
        self.popup(
            b2,
            a,
            "popup, webhook on A, console on the restarted B",
            loss.last + timedelta(seconds=60),
        )
        chaos.settle(a)

    # -- cleanup ----------------------------------------------------------------------------

    def close(self, keep: bool = False) -> None:
        for svc in self.frontends.values():
            svc.stop()
        if self.reference_svc is not None:
            self.reference_svc.stop()
        self.node_b.stop()
        self.head.stop()
        if not keep:
            self.databases.drop()


@contextmanager
def multinode(work: Path, setup: Setup, keep: bool = False) -> Iterator[MultiNode]:
    run = MultiNode(work, setup)
    try:
        yield run
    finally:
        run.close(keep)


def _parse(argv: list[str] | None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--calls", type=int, default=Setup.calls, help="calls per traffic file")
    parser.add_argument("--shards", type=int, default=Setup.shards)
    parser.add_argument("--seed", type=int, default=Setup.seed)
    parser.add_argument("--database-url", default=Setup.database_url)
    parser.add_argument("--redis-url", default=Setup.redis_url)
    parser.add_argument("--replay-seconds", type=float, default=Setup.replay_seconds)
    parser.add_argument("--work", type=Path, default=None, help="logs and files (default: temp)")
    parser.add_argument("--keep", action="store_true", help="keep the work dir and database")
    return parser.parse_args(argv)


def main(argv: list[str] | None = None) -> int:
    args = _parse(argv)
    work = args.work or Path(tempfile.mkdtemp(prefix="multinode-"))
    work.mkdir(parents=True, exist_ok=True)
    print(f"work dir: {work} (logs of every node and frontend)", flush=True)
    setup = Setup(
        calls=args.calls,
        shards=args.shards,
        seed=args.seed,
        database_url=args.database_url,
        redis_url=args.redis_url,
        replay_seconds=args.replay_seconds,
    )
    signal.signal(signal.SIGTERM, lambda *_: sys.exit(1))
    with multinode(work, setup, keep=args.keep) as run:
        report = run.run()
    if not args.keep and not args.work:
        shutil.rmtree(work, ignore_errors=True)
    for step, problem in report.problems:
        print(f"PROBLEM ({step}): {problem}")
    return 0 if report.ok else 1


if __name__ == "__main__":
    sys.exit(main())
