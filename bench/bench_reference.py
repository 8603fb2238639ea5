"""The product's webhook figures beside reference endpoints, measured by the same client.

    .venv/bin/python bench/bench_reference.py [--calls 8000] [--processes 2] [--concurrency 16]
        [--pipeline 16] [--workers 1] [--endpoints raw,bare,durable]
        [--url http://127.0.0.1:8080 --admin-token TOKEN]

Generates one traffic file (`generate_traffic.py`), starts each reference endpoint of
`endpoints.py` in turn as a subprocess, replays the file against it with `callrouter replay`
(the same settings every time) and prints one table: notifications, seconds, notifications/s,
latency percentiles, errors and retries, the server's process-tree RSS (peak while replaying)
and the CPU seconds that the server and the client each spent. With `--url`, a running
callrouter is replayed last (setup through its admin API, hence `--admin-token`), so its row
reads against the references: `raw` is the client's own ceiling, `bare` what aiohttp alone
costs, `durable` what a group-committed SQLite write adds.
"""

from __future__ import annotations

import argparse
import asyncio
import os
import resource
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import time
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from pathlib import Path
from urllib.parse import urlsplit

import aiohttp
import psutil

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
sys.path.insert(0, str(Path(__file__).resolve().parent))

from generate_traffic import generate, write_jsonl

from callrouter.replay import ReplayReport, replay

ENDPOINTS = Path(__file__).resolve().parent / "endpoints.py"
WEBHOOK_PATH = "/webhooks/uis/bench"
SAMPLE_SECONDS = 0.2


@dataclass(frozen=True, slots=True)
class Row:
    """One line of the table."""

    endpoint: str
    report: ReplayReport
    rss_mib: float | None
    server_cpu: float | None
    client_cpu: float


def free_port() -> int:
    """A TCP port free on the loopback interface right now."""
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def _tree(pid: int) -> list[psutil.Process]:
    proc = psutil.Process(pid)
    return [proc, *proc.children(recursive=True)]


def tree_rss_mib(pid: int) -> float:
    """Resident memory of a process and all its descendants, MiB."""
    total = 0
    for proc in _tree(pid):
        try:
            total += proc.memory_info().rss
        except psutil.Error:
            pass
    return total / 2**20


def tree_cpu_seconds(pid: int) -> float:
    """User + system CPU seconds of a process and its live descendants."""
    total = 0.0
    for proc in _tree(pid):
        try:
            times = proc.cpu_times()
        except psutil.Error:
            continue
        total += times.user + times.system
    return total


def cpu_by_role(service_pid: int) -> dict[str, float]:
    """CPU seconds of the service's processes by role: the frontend, each kind of Ray actor
    (by its process title, `ray::Writer` …), Ray's own daemons together."""
    found: dict[str, float] = {}
    root = psutil.Process(service_pid)
    for proc in [root, *root.children(recursive=True)]:
        try:
            title = " ".join(proc.cmdline())
            times = proc.cpu_times()
        except psutil.Error:
            continue
        if proc.pid == service_pid:
            role = "frontend"
        elif title.startswith("ray::"):
            role = title.split()[0].split(".")[0][5:] or "ray worker"
        else:
            role = "ray daemons"
        found[role] = found.get(role, 0.0) + times.user + times.system
    return found


def own_cpu_seconds() -> float:
    """CPU seconds of this process plus its finished children (the sender processes)."""
    own = resource.getrusage(resource.RUSAGE_SELF)
    children = resource.getrusage(resource.RUSAGE_CHILDREN)
    return own.ru_utime + own.ru_stime + children.ru_utime + children.ru_stime


def listening_pid(url: str) -> int | None:
    """The process listening on the URL's loopback port, to measure a running service."""
    port = urlsplit(url).port or 80
    try:
        connections = psutil.net_connections("tcp")
    except psutil.Error:
        return None
    for conn in connections:
        if conn.status == psutil.CONN_LISTEN and conn.laddr and conn.laddr.port == port:
            pid: int | None = conn.pid
            return pid
    return None


async def wait_healthy(url: str, timeout: float = 60) -> None:
    """Return once GET /healthz answers 200."""
    deadline = time.monotonic() + timeout
    async with aiohttp.ClientSession() as session:
        while time.monotonic() < deadline:
            try:
                async with session.get(url + "/healthz") as response:
                    if response.status == 200:
                        return
            except aiohttp.ClientError:
                pass
            await asyncio.sleep(0.1)
    raise RuntimeError(f"{url} did not become healthy")


async def _peak_rss(pid: int, stop: asyncio.Event) -> float:
    peak = 0.0
    while not stop.is_set():
        peak = max(peak, tree_rss_mib(pid))
        try:
            await asyncio.wait_for(stop.wait(), SAMPLE_SECONDS)
        except TimeoutError:
            pass
    return max(peak, tree_rss_mib(pid))


async def measure(
    name: str, server_pid: int | None, run: Callable[[], Awaitable[ReplayReport]]
) -> Row:
    """Replay once, sampling the server's memory and both sides' CPU time."""
    stop = asyncio.Event()
    sampler = asyncio.create_task(_peak_rss(server_pid, stop)) if server_pid else None
    server_before = tree_cpu_seconds(server_pid) if server_pid else 0.0
    client_before = own_cpu_seconds()
    try:
        report = await run()
    finally:
        stop.set()
    client_cpu = own_cpu_seconds() - client_before
    server_cpu = tree_cpu_seconds(server_pid) - server_before if server_pid else None
    rss = await sampler if sampler else None
    return Row(name, report, rss, server_cpu, client_cpu)


def start_endpoint(kind: str, port: int, workers: int, work: Path) -> subprocess.Popen[bytes]:
    """`endpoints.py KIND` in its own process group (its workers go down with it)."""
    cmd = [sys.executable, str(ENDPOINTS), kind, "--port", str(port), "--workers", str(workers)]
    if kind == "durable":
        cmd += ["--db", str(work / f"{kind}-{port}.sqlite3")]
    return subprocess.Popen(cmd, stdout=subprocess.DEVNULL, start_new_session=True)


def stop_endpoint(server: subprocess.Popen[bytes]) -> None:
    """SIGINT to the group, SIGKILL if it lingers."""
    try:
        os.killpg(server.pid, signal.SIGINT)
        server.wait(15)
    except subprocess.TimeoutExpired:
        os.killpg(server.pid, signal.SIGKILL)
        server.wait()
    except ProcessLookupError:
        pass


def table(rows: list[Row]) -> list[str]:
    """The rows as aligned text."""
    header = (
        f"{'endpoint':<12}{'notifs':>8}{'seconds':>9}{'notifs/s':>10}"
        f"{'p50 ms':>9}{'p90 ms':>9}{'p99 ms':>9}{'max ms':>9}{'errors':>8}{'retries':>8}"
        f"{'RSS MiB':>9}{'srv CPU s':>10}{'cli CPU s':>10}"
    )
    lines = [header, "-" * len(header)]
    for row in rows:
        r = row.report
        rss = f"{row.rss_mib:.0f}" if row.rss_mib is not None else "n/a"
        cpu = f"{row.server_cpu:.1f}" if row.server_cpu is not None else "n/a"
        lines.append(
            f"{row.endpoint:<12}{r.sent:>8}{r.elapsed_seconds:>9.2f}{r.throughput:>10,.0f}"
            f"{r.p50_ms:>9.1f}{r.p90_ms:>9.1f}{r.p99_ms:>9.1f}{r.max_ms:>9.1f}"
            f"{sum(r.errors.values()):>8}{r.retries:>8}{rss:>9}{cpu:>10}{row.client_cpu:>10.1f}"
        )
    return lines


def _parse_args(argv: list[str] | None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--calls", type=int, default=8000, help="calls in the traffic")
    parser.add_argument("--seed", type=int, default=7)
    parser.add_argument("--calls-per-second", type=float, default=50.0)
    parser.add_argument("--processes", type=int, default=2, help="client sender processes")
    parser.add_argument("--concurrency", type=int, default=16, help="client connections")
    parser.add_argument("--pipeline", type=int, default=16, help="requests per connection")
    parser.add_argument("--rate", type=float, default=None, help="notifications/s (default: max)")
    parser.add_argument("--workers", type=int, default=1, help="processes per endpoint")
    parser.add_argument(
        "--endpoints", default="raw,bare,durable", help="comma-separated: raw, bare, durable"
    )
    parser.add_argument("--url", default=None, help="a running callrouter to add as a row")
    parser.add_argument("--admin-token", default=None, help="its admin token (setup)")
    return parser.parse_args(argv)


async def main(argv: list[str] | None = None) -> None:
    """Generate, replay against each endpoint (and the product), print the table."""
    args = _parse_args(argv)
    work = Path(tempfile.mkdtemp(prefix="callrouter-reference-"))
    try:
        await _run(args, work)
    finally:
        shutil.rmtree(work, ignore_errors=True)  # the traffic file and the durable databases


async def _run(args: argparse.Namespace, work: Path) -> None:
    traffic = work / "traffic.jsonl"
    with traffic.open("wb") as out:
        count = write_jsonl(
            generate(args.calls, seed=args.seed, calls_per_second=args.calls_per_second), out
        )

    def client(url: str, admin_token: str | None = None) -> Callable[[], Awaitable[ReplayReport]]:
        """The same replay for every row; only the product gets the admin setup."""
        return lambda: replay(
            str(traffic),
            url,
            args.rate,
            args.concurrency,
            setup=admin_token is not None,
            admin_token=admin_token,
            webhook_path=None if admin_token else WEBHOOK_PATH,
            progress=False,
            processes=args.processes,
            pipeline=args.pipeline,
        )

    rows: list[Row] = []
    for kind in [k.strip() for k in args.endpoints.split(",") if k.strip()]:
        port = free_port()
        url = f"http://127.0.0.1:{port}"
        server = start_endpoint(kind, port, args.workers, work)
        try:
            await wait_healthy(url)
            rows.append(await measure(kind, server.pid, client(url)))
        finally:
            stop_endpoint(server)
    if args.url:
        token = args.admin_token or os.environ.get("CALLROUTER_ADMIN_TOKEN")
        if not token:
            raise SystemExit("--url needs --admin-token (or $CALLROUTER_ADMIN_TOKEN) for setup")
        product = client(args.url.rstrip("/"), token)
        rows.append(await measure("callrouter", listening_pid(args.url), product))
    load = ", ".join(f"{x:.1f}" for x in os.getloadavg())
    print(
        f"{time.strftime('%Y-%m-%d %H:%M:%S')}; {os.cpu_count()} cores, load average {load}; "
        f"{args.calls} calls, {count} notifications"
    )
    print(
        f"client: {args.processes} processes, {args.concurrency} connections, pipeline "
        f"{args.pipeline}, rate {args.rate or 'max'}; endpoint workers {args.workers}"
    )
    print("\n".join(table(rows)))


if __name__ == "__main__":
    asyncio.run(main())
