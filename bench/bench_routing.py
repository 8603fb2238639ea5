"""Smart routing's answer time under load, beside a bare aiohttp endpoint in the same run.

    .venv/bin/python bench/bench_routing.py [--rate 1000] [--seconds 10] [--staff 200]
        [--callers 50000] [--consoles 100] [--shards 2]

Seeds a fresh data dir with a realistic view — `--staff` staff members each with an operator
phone, `--callers` callers each with an open case assigned to one of them, half of them also
with a stored conversation — starts `callrouter serve` on it, opens `--consoles` staff
consoles (WebSockets: those members are free, the rest offline), turns routing on, waits for
the frontend's view to hold every caller, then sends `--rate` route requests/s for `--seconds`
from a separate sender process (open loop, each request at its time, UIS's form fields, 10 %
from unknown numbers). The same sender first measures the `bare` endpoint of `endpoints.py`
at the same rate. Prints p50/p90/p99/max, the achieved rate, errors and what was answered.
Issue 11's target: p99 ≤ 20 ms at 1,000 requests/s.
"""

from __future__ import annotations

import argparse
import asyncio
import hashlib
import multiprocessing
import os
import random
import shutil
import sys
import tempfile
import time
from collections import Counter
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import aiohttp
import psutil
from sqlalchemy import insert

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
sys.path.insert(0, str(Path(__file__).resolve().parent))

from bench_pipeline import TOKEN, start_service
from bench_reference import WEBHOOK_PATH, free_port, start_endpoint, stop_endpoint, wait_healthy

from callrouter.storage.engine import Database, sqlite_url
from callrouter.storage.models import Call, Case, CaseEvent, Operator, Staff, User, UserPhone

ADMIN = {"Authorization": f"Bearer {TOKEN}"}
CONNECTIONS = 64


def caller_phone(i: int) -> str:
    return f"7916{i:07d}"


def percentile(ordered: list[float], share: float) -> float:
    return ordered[min(len(ordered) - 1, int(share * len(ordered)))] if ordered else 0.0


# -- the view ----------------------------------------------------------------------------------


async def seed(data_dir: Path, staff: int, callers: int) -> list[str]:
    """The data dir's database with staff, operators, callers, cases and past calls; the
    staff tokens."""
    data_dir.mkdir(parents=True, exist_ok=True)
    db = Database(sqlite_url(data_dir))
    await db.create_schema()
    now = datetime.now(UTC)
    rng = random.Random(11)
    tokens = [f"bench-staff-{i}" for i in range(1, staff + 1)]
    async with db.engine.begin() as conn:

        async def rows(model: Any, values: list[dict[str, Any]]) -> None:
            for start in range(0, len(values), 5000):
                await conn.execute(insert(model), values[start : start + 5000])

        await rows(
            Staff,
            [
                {
                    "id": i,
                    "full_name": f"Staff {i}",
                    "email": f"s{i}@bench.test",
                    "token_hash": hashlib.sha256(t.encode()).hexdigest(),
                    "created_at": now,
                }
                for i, t in enumerate(tokens, 1)
            ],
        )
        await rows(
            Operator,
            [
                {"employee_id": 1000 + i, "staff_id": i, "phones": [f"7495{i:07d}"]}
                for i in range(1, staff + 1)
            ],
        )
        ids = range(1, callers + 1)
        await rows(
            User,
            [{"id": i, "custom_fields": {}, "created_at": now, "updated_at": now} for i in ids],
        )
        await rows(
            UserPhone,
            [
                {
                    "user_id": i,
                    "phone": caller_phone(i),
                    "normalized": caller_phone(i),
                    "position": 0,
                }
                for i in ids
            ],
        )
        assignee = {i: rng.randint(1, staff) for i in ids}
        await rows(
            Case,
            [
                {
                    "id": i,
                    "subject": "bench",
                    "status": "open" if i % 3 else "waiting",
                    "channel": "calls",
                    "user_id": i,
                    "assignee_id": assignee[i],
                    "created_at": now,
                    "updated_at": now - timedelta(seconds=i),
                }
                for i in ids
            ],
        )
        await rows(
            CaseEvent,
            [
                {
                    "case_id": i,
                    "at": now,
                    "kind": "created",
                    "status": "open",
                    "assignee_id": assignee[i],
                    "details": {},
                }
                for i in ids
            ],
        )
        await rows(
            Call,
            [
                {
                    "call_session_id": 10**9 + i,
                    "direction": "in",
                    "phone": caller_phone(i),
                    "user_id": i,
                    "staff_ids": [],
                    "started_at": now - timedelta(days=1),
                    "ended_at": now - timedelta(days=1),
                    "outcome": "answered",
                    "finalized": True,
                    "offered_staff_ids": [],
                    "talked": [[rng.randint(1, staff), 60]],
                }
                for i in ids
                if i % 2
            ],
        )
    await db.dispose()
    return tokens


# -- the sender (its own process: the consoles and this script's CPU do not delay posts) ------


async def _send(url: str, rate: float, seconds: float, callers: int, form: bool) -> dict[str, Any]:
    rng = random.Random(5)
    count = int(rate * seconds)
    times: list[float] = []
    answers: Counter[str] = Counter()
    errors = 0
    connector = aiohttp.TCPConnector(limit=CONNECTIONS)
    async with aiohttp.ClientSession(connector=connector) as session:
        start = time.monotonic() + 0.5

        async def one(i: int) -> None:
            nonlocal errors
            await asyncio.sleep(max(0.0, start + i / rate - time.monotonic()))
            known = rng.random() < 0.9
            numa = (
                caller_phone(rng.randint(1, callers))
                if known
                else f"7903{rng.randrange(10**7):07d}"
            )
            values = {"call_session_id": str(2 * 10**9 + i), "numa": numa, "numb": "74950000000"}
            body = {"data": values} if form else {"json": values}  # bare reads JSON only
            sent = time.perf_counter()
            try:
                async with session.post(url, **body) as resp:
                    answer = await resp.json(content_type=None)
                    errors += resp.status != 200
                    answers["phones" if "phones" in answer else "returned_code"] += 1
            except (aiohttp.ClientError, ValueError):
                errors += 1
            times.append((time.perf_counter() - sent) * 1000)

        await asyncio.gather(*(one(i) for i in range(count)))
        took = time.monotonic() - start
    return {"times": times, "errors": errors, "seconds": took, "answers": dict(answers)}


def _sender_main(url: str, rate: float, seconds: float, callers: int, form: bool, out: Any) -> None:
    out.send(asyncio.run(_send(url, rate, seconds, callers, form)))


async def send(url: str, rate: float, seconds: float, callers: int, form: bool) -> dict[str, Any]:
    """The sender's figures, from a process of its own."""
    ours, theirs = multiprocessing.Pipe(duplex=False)
    proc = multiprocessing.get_context("spawn").Process(
        target=_sender_main, args=(url, rate, seconds, callers, form, theirs)
    )
    proc.start()
    result: dict[str, Any] = await asyncio.to_thread(ours.recv)
    await asyncio.to_thread(proc.join)
    return result


def row(name: str, result: dict[str, Any]) -> str:
    ordered = sorted(result["times"])
    return (
        f"{name:<24}{len(ordered):>8}{len(ordered) / result['seconds']:>9.0f}"
        f"{percentile(ordered, 0.5):>9.2f}{percentile(ordered, 0.9):>9.2f}"
        f"{percentile(ordered, 0.99):>9.2f}{(ordered[-1] if ordered else 0):>9.2f}"
        f"{result['errors']:>8}  {result.get('answers', '')}"
    )


# -- the run -----------------------------------------------------------------------------------


async def console(
    session: aiohttp.ClientSession, url: str, token: str, done: asyncio.Event
) -> None:
    async with session.ws_connect(f"{url}/api/v1/events?token={token}") as ws:
        await done.wait()
        await ws.close()


async def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--rate", type=float, default=1000.0)
    parser.add_argument("--seconds", type=float, default=10.0)
    parser.add_argument("--staff", type=int, default=200)
    parser.add_argument("--callers", type=int, default=50_000)
    parser.add_argument("--consoles", type=int, default=100)
    parser.add_argument("--shards", type=int, default=2)
    args = parser.parse_args()
    args.database_url, args.no_stats = None, False
    work = Path(tempfile.mkdtemp(prefix="callrouter-bench-routing-"))

    port = free_port()
    bare = start_endpoint("bare", port, 1, work)
    try:
        await wait_healthy(f"http://127.0.0.1:{port}")
        reference = await send(
            f"http://127.0.0.1:{port}{WEBHOOK_PATH}", args.rate, args.seconds, args.callers, False
        )
    finally:
        stop_endpoint(bare)

    seeding = time.monotonic()
    tokens = await seed(work / "serve-data", args.staff, args.callers)
    seeded = time.monotonic() - seeding
    port = free_port()
    url = f"http://127.0.0.1:{port}"
    service = start_service(args, port, work)
    done = asyncio.Event()
    try:
        await wait_healthy(url, timeout=120)
        async with aiohttp.ClientSession(connector=aiohttp.TCPConnector(limit=0)) as session:
            setup = {"api_key": "bench", "virtual_phone_number": "74950000000"}
            async with session.put(
                f"{url}/api/v1/integrations/uis", json=setup, headers=ADMIN
            ) as r:
                assert r.status == 200, await r.text()
            consoles = [
                asyncio.create_task(console(session, url, t, done)) for t in tokens[: args.consoles]
            ]
            async with session.put(
                f"{url}/api/v1/routing", json={"enabled": True}, headers=ADMIN
            ) as r:
                route_url = (await r.json())["route_url"]
            loading = time.monotonic()
            while True:  # the view holds every caller, and the consoles count as free
                async with session.get(f"{url}/api/v1/routing", headers=ADMIN) as r:
                    view = (await r.json())["view"]
                async with session.get(f"{url}/api/v1/wallboard", headers=ADMIN) as r:
                    free = (await r.json())["staff"]["free"]
                if view["callers"] >= args.callers and free >= args.consoles:
                    break
                if time.monotonic() - loading > 120:
                    raise RuntimeError(f"the view did not load: {view}, {free} free")
                await asyncio.sleep(0.5)
            frontend = psutil.Process(service.pid)
            idle_before = frontend.cpu_times()
            await asyncio.sleep(3.0)  # what the frontend spends with nobody asking
            idle_after = frontend.cpu_times()
            idle = (idle_after.user + idle_after.system - idle_before.user - idle_before.system) / 3
            cpu_before, load_before = frontend.cpu_times(), os.getloadavg()[0]
            result = await send(route_url, args.rate, args.seconds, args.callers, True)
            cpu_after = frontend.cpu_times()
            busy = (cpu_after.user + cpu_after.system - cpu_before.user - cpu_before.system) / (
                result["seconds"]
            )
            done.set()
            await asyncio.gather(*consoles, return_exceptions=True)
    finally:
        stop_endpoint(service)
        shutil.rmtree(work, ignore_errors=True)

    print(
        f"{time.strftime('%Y-%m-%d %H:%M:%S')}; {os.cpu_count()} cores; {args.rate:,.0f} requests/s "
        f"asked for {args.seconds:.0f} s; view: {args.staff} staff ({args.consoles} with a console),"
        f" {args.callers:,} callers with an open case, half with a past conversation (seeded in "
        f"{seeded:.1f} s, the frontend's view holds {view['callers']:,} callers)"
    )
    print(
        f"{'':<24}{'count':>8}{'req/s':>9}{'p50 ms':>9}{'p90 ms':>9}{'p99 ms':>9}{'max ms':>9}{'errors':>8}"
    )
    print(row("bare aiohttp endpoint", reference))
    print(row("callrouter route", result))
    print(
        f"the frontend process used {busy * 100:.0f} % of a core while answering "
        f"({idle * 100:.0f} % idle, before); machine load "
        f"average {load_before:.1f} before the run ({os.cpu_count()} cores, shared)"
    )


if __name__ == "__main__":
    asyncio.run(main())
