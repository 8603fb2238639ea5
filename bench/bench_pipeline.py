"""End-to-end throughput of the whole pipeline: webhook → inbox → shards → cases.

Starts the real service (as `python -m callrouter serve` on a temporary data dir), generates
traffic with `generate_traffic.py`, replays it as fast as the service takes it, then waits
until every acknowledged notification's effects are durable. Prints: webhook throughput and
latency percentiles (from `callrouter replay`), end-to-end notifications/s (first post → inbox
drained), cases created, and the memory of the service's process tree.

    .venv/bin/python bench/bench_pipeline.py --calls 5000 [--database-url postgresql://…]
"""

from __future__ import annotations

import argparse
import asyncio
import os
import signal
import socket
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import aiohttp
import psutil

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
sys.path.insert(0, str(Path(__file__).resolve().parent))

from generate_traffic import generate, write_jsonl

from callrouter.replay import replay

TOKEN = "bench-admin"


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def tree_rss_mib(pid: int) -> float:
    proc = psutil.Process(pid)
    procs = [proc, *proc.children(recursive=True)]
    total = 0
    for p in procs:
        try:
            total += p.memory_info().rss
        except psutil.Error:
            pass
    return total / 2**20


async def wait_healthy(url: str, timeout: float = 120) -> None:
    deadline = time.monotonic() + timeout
    async with aiohttp.ClientSession() as s:
        while time.monotonic() < deadline:
            try:
                async with s.get(url + "/healthz") as r:
                    if r.status == 200:
                        return
            except aiohttp.ClientError:
                pass
            await asyncio.sleep(0.5)
    raise RuntimeError("service did not become healthy")


async def drained(url: str, timeout: float) -> tuple[float, dict]:
    headers = {"Authorization": f"Bearer {TOKEN}"}
    deadline = time.monotonic() + timeout
    async with aiohttp.ClientSession(headers=headers) as s:
        while True:
            async with s.get(url + "/api/v1/system") as r:
                info = await r.json()
            if (
                info["inbox_pending"] == 0
                and info["ingest_queue"] == 0
                or time.monotonic() > deadline
            ):
                return time.monotonic(), info
            await asyncio.sleep(0.2)


async def count_cases(url: str) -> int:
    async with aiohttp.ClientSession(headers={"Authorization": f"Bearer {TOKEN}"}) as s:
        async with s.get(url + "/api/v1/cases?limit=1") as r:
            return int((await r.json())["total"])


async def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--calls", type=int, default=5000)
    parser.add_argument("--concurrency", type=int, default=64)
    parser.add_argument("--shards", type=int, default=2)
    parser.add_argument("--database-url", default=None)
    parser.add_argument(
        "--no-stats", action="store_true", help="run the service without statistics"
    )
    args = parser.parse_args()

    work = Path(tempfile.mkdtemp(prefix="callrouter-bench-"))
    traffic = work / "traffic.jsonl"
    with traffic.open("wb") as out:
        count = write_jsonl(generate(args.calls, seed=7, calls_per_second=50.0), out)
    port = free_port()
    url = f"http://127.0.0.1:{port}"
    cmd = [
        sys.executable,
        "-m",
        "callrouter",
        "serve",
        "--port",
        str(port),
        "--data-dir",
        str(work / "data"),
        "--shards",
        str(args.shards),
    ]
    if args.database_url:
        cmd += ["--database-url", args.database_url]
    if args.no_stats:
        cmd.append("--no-stats")
    env = {**os.environ, "CALLROUTER_ADMIN_TOKEN": TOKEN, "RAY_AUTH_MODE": "disabled"}
    service = subprocess.Popen(
        cmd,
        env=env,
        stdout=subprocess.DEVNULL,
        stderr=open(work / "serve.log", "wb"),
        start_new_session=True,
    )
    try:
        await wait_healthy(url)
        idle_rss = tree_rss_mib(service.pid)
        started = time.monotonic()
        report = await replay(
            str(traffic),
            url,
            rate=None,
            concurrency=args.concurrency,
            admin_token=TOKEN,
            progress=False,
        )
        acked = time.monotonic()
        peak_rss = tree_rss_mib(service.pid)
        finished, info = await drained(url, timeout=600)
        cases = await count_cases(url)
        print(
            f"calls {args.calls}, notifications {count}, shards {args.shards}, "
            f"database {'postgresql' if args.database_url else 'sqlite'}, "
            f"statistics {'off' if args.no_stats else 'on'}"
        )
        for line in report.lines():
            print("  replay:", line)
        print(f"  webhook throughput: {report.sent / (acked - started):,.0f} notifications/s")
        print(
            f"  end to end (first post → all effects durable): {report.sent / (finished - started):,.0f} "
            f"notifications/s, {finished - started:.1f} s; drain after last ack {finished - acked:.1f} s"
        )
        print(f"  cases created: {cases}; inbox pending at end: {info['inbox_pending']}")
        print(
            f"  memory (service process tree RSS): idle {idle_rss:,.0f} MiB, after load {peak_rss:,.0f} MiB"
        )
    finally:
        os.killpg(service.pid, signal.SIGINT)
        try:
            service.wait(30)
        except subprocess.TimeoutExpired:
            os.killpg(service.pid, signal.SIGKILL)


if __name__ == "__main__":
    asyncio.run(main())
