"""End-to-end throughput of the whole pipeline, beside reference endpoints measured in the same run.

Generates one traffic file (`generate_traffic.py`), replays it with `callrouter replay` (same
client settings every time) against the `bare` aiohttp endpoint and the `durable` one
(`endpoints.py`: group-committed SQLite), then against the real service started as
`python -m callrouter serve` on a temporary data dir, and waits until every acknowledged
notification's effects are durable (inbox drained, queues empty). Prints one table (webhook
throughput, latency percentiles, peak RSS and CPU of each server) and the service's end-to-end
figure: first post → all effects durable, cases created, memory idle and after load.

    .venv/bin/python bench/bench_pipeline.py [--calls 3000] [--shards 2]
        [--database-url postgresql://127.0.0.1/test] [--no-stats] [--endpoints bare,durable]
"""

from __future__ import annotations

import argparse
import asyncio
import os
import subprocess
import sys
import tempfile
import time
from collections.abc import Awaitable, Callable
from pathlib import Path
from typing import Any

import aiohttp

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
sys.path.insert(0, str(Path(__file__).resolve().parent))

from bench_reference import (
    WEBHOOK_PATH,
    Row,
    cpu_by_role,
    free_port,
    measure,
    start_endpoint,
    stop_endpoint,
    table,
    tree_rss_mib,
    wait_healthy,
)
from generate_traffic import generate, write_jsonl

from callrouter.replay import ReplayReport, replay

TOKEN = "bench-admin"


async def system(url: str) -> dict[str, Any]:
    """The service's own view of its queues (GET /api/v1/system)."""
    headers = {"Authorization": f"Bearer {TOKEN}"}
    async with (
        aiohttp.ClientSession(headers=headers) as s,
        s.get(url + "/api/v1/system") as r,
    ):
        info: dict[str, Any] = await r.json()
        return info


async def drained(url: str, timeout: float) -> tuple[float, dict[str, Any]]:
    """When the inbox and the ingest queue are empty (or the timeout passed)."""
    deadline = time.monotonic() + timeout
    while True:
        info = await system(url)
        idle = info["inbox_pending"] == 0 and info["ingest_queue"] == 0
        if idle or time.monotonic() > deadline:
            return time.monotonic(), info
        await asyncio.sleep(0.2)


async def count_cases(url: str) -> int:
    headers = {"Authorization": f"Bearer {TOKEN}"}
    async with (
        aiohttp.ClientSession(headers=headers) as s,
        s.get(url + "/api/v1/cases?limit=1") as r,
    ):
        return int((await r.json())["total"])


def start_service(
    args: argparse.Namespace,
    port: int,
    work: Path,
    name: str = "serve",
    extra: tuple[str, ...] = (),
) -> subprocess.Popen[bytes]:
    """`callrouter serve` with the benchmark's options (`--redis-url` when the args have one)
    and `extra` arguments."""
    cmd = [sys.executable, "-m", "callrouter", "serve", "--port", str(port), *extra]
    cmd += ["--data-dir", str(work / f"{name}-data"), "--shards", str(args.shards)]
    if args.database_url:
        cmd += ["--database-url", args.database_url]
    if getattr(args, "redis_url", None):
        cmd += ["--redis-url", args.redis_url]
    if args.no_stats:
        cmd.append("--no-stats")
    env = {**os.environ, "CALLROUTER_ADMIN_TOKEN": TOKEN, "RAY_AUTH_MODE": "disabled"}
    with (work / f"{name}.log").open("wb") as log:  # the child keeps its own copy of the fd
        return subprocess.Popen(
            cmd, env=env, stdout=subprocess.DEVNULL, stderr=log, start_new_session=True
        )


async def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--calls", type=int, default=3000)
    parser.add_argument("--concurrency", type=int, default=64)
    parser.add_argument("--shards", type=int, default=2)
    parser.add_argument("--database-url", default=None)
    parser.add_argument("--no-stats", action="store_true", help="run without statistics")
    parser.add_argument("--endpoints", default="bare,durable", help="references to run first")
    args = parser.parse_args()

    work = Path(tempfile.mkdtemp(prefix="callrouter-bench-"))
    traffic = work / "traffic.jsonl"
    with traffic.open("wb") as out:
        count = write_jsonl(generate(args.calls, seed=7, calls_per_second=50.0), out)

    def client(url: str, product: bool) -> Callable[[], Awaitable[ReplayReport]]:
        """The same replay for every row; only the product gets the admin setup."""
        return lambda: replay(
            str(traffic),
            url,
            rate=None,
            concurrency=args.concurrency,
            setup=product,
            admin_token=TOKEN if product else None,
            webhook_path=None if product else WEBHOOK_PATH,
            progress=False,
        )

    rows: list[Row] = []
    for kind in [k.strip() for k in args.endpoints.split(",") if k.strip()]:
        port = free_port()
        server = start_endpoint(kind, port, 1, work)
        try:
            await wait_healthy(f"http://127.0.0.1:{port}")
            rows.append(await measure(kind, server.pid, client(f"http://127.0.0.1:{port}", False)))
        finally:
            stop_endpoint(server)

    port = free_port()
    url = f"http://127.0.0.1:{port}"
    service = start_service(args, port, work)
    try:
        await wait_healthy(url, timeout=120)
        idle_rss = tree_rss_mib(service.pid)
        started = time.monotonic()
        cpu_before = cpu_by_role(service.pid)
        rows.append(await measure("callrouter", service.pid, client(url, True)))
        after_rss = tree_rss_mib(service.pid)
        finished, info = await drained(url, timeout=900)
        cpu_used = {k: v - cpu_before.get(k, 0.0) for k, v in cpu_by_role(service.pid).items()}
        cases = await count_cases(url)
    finally:
        stop_endpoint(service)

    load = ", ".join(f"{x:.1f}" for x in os.getloadavg())
    print(
        f"{time.strftime('%Y-%m-%d %H:%M:%S')}; {os.cpu_count()} cores, load average {load}; "
        f"{args.calls} calls, {count} notifications; callrouter: {args.shards} shards, "
        f"{'postgresql' if args.database_url else 'sqlite'}, "
        f"statistics {'off' if args.no_stats else 'on'}; client concurrency {args.concurrency}"
    )
    print("\n".join(table(rows)))
    product = rows[-1].report
    took = finished - started
    print(
        f"callrouter end to end (first post → all effects durable): "
        f"{product.sent / took:,.0f} notifications/s, {took:.1f} s "
        f"(drain after the last answer {took - product.elapsed_seconds:.1f} s)"
    )
    print(f"cases created: {cases}; inbox pending at the end: {info['inbox_pending']}")
    # What each part of the service spent, first post to all effects durable (the capacity
    # model's per-component costs, docs/capacity.md).
    print(
        "CPU ms per notification by process: "
        + ", ".join(
            f"{role} {seconds * 1000 / product.sent:.2f}"
            for role, seconds in sorted(cpu_used.items(), key=lambda kv: -kv[1])
            if seconds > 0
        )
        + f"; total {sum(cpu_used.values()) * 1000 / product.sent:.2f}"
    )
    print(
        f"memory (service process tree RSS): idle {idle_rss:,.0f} MiB, after load {after_rss:,.0f} MiB"
    )


if __name__ == "__main__":
    asyncio.run(main())
