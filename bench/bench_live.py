"""The live path, measured from outside: popup latency under load, and memory per live call.

    .venv/bin/python bench/bench_live.py popups [--rate 300] [--seconds 30] [--consoles 200]
        [--shards 2] [--database-url postgresql://127.0.0.1/test] [--redis-url redis://…]
        [--two-frontends]
    .venv/bin/python bench/bench_live.py memory [--calls 100000] [--shards 2]

`popups` starts the service, makes one staff member (with a console on a WebSocket) for each
of `--consoles` UIS employees, then sends generated traffic (`generate_traffic.py`) at a steady
`--rate` notifications/s from a separate sender process, each call's bodies in order at their
traffic times. For every ringing leg it records when the post left; each console records when
its `call.ringing` frame came, and one open wallboard records when each frame came and who it
showed busy. Prints the popup latency (post sent → frame received on that
staff member's WebSocket) percentiles, how many popups never came, the wallboard latency (post
sent → first frame showing that staff member busy, for rings of someone shown idle), the webhook
latency, and the `bare` reference endpoint's answer time at the same rate (measured first, same
sender). With `--two-frontends`
the webhooks go to one frontend and the consoles (and the wallboard) to a second frontend of
the same service (it joins the first one's Ray), the popups crossing through Redis.

`memory` starts the service, posts the ringing leg of `--calls` incoming calls (no call ends:
they stay live), waits until the shards hold them all, and prints the shards' memory growth per
live call and the whole service's idle CPU with them over ten seconds.
"""

from __future__ import annotations

import argparse
import asyncio
import bisect
import multiprocessing
import os
import sys
import tempfile
import time
from collections import defaultdict
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import aiohttp
import orjson
import psutil

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
sys.path.insert(0, str(Path(__file__).resolve().parent))

from zoneinfo import ZoneInfo

from bench_pipeline import TOKEN, start_service, system
from bench_reference import (
    WEBHOOK_PATH,
    cpu_by_role,
    free_port,
    start_endpoint,
    stop_endpoint,
    tree_rss_mib,
    wait_healthy,
)
from generate_traffic import FIRST_EMPLOYEE, generate

from callrouter.domain.notifications import Kind
from callrouter.domain.uis import parse_notification
from callrouter.testing.uis_bodies import body

UTC_ZONE = ZoneInfo("UTC")
ADMIN = {"Authorization": f"Bearer {TOKEN}"}
SENDER_CONNECTIONS = 64
WARMUP = 300.0  # seconds of traffic before the measured window (calls last ~2 minutes)


def percentile(ordered: list[float], share: float) -> float:
    return ordered[min(len(ordered) - 1, int(share * len(ordered)))] if ordered else float("nan")


def summary(name: str, values: list[float]) -> str:
    ms = sorted(v * 1000 for v in values)
    return (
        f"{name:<28}{len(ms):>8}{percentile(ms, 0.5):>9.1f}{percentile(ms, 0.9):>9.1f}"
        f"{percentile(ms, 0.99):>9.1f}{(ms[-1] if ms else float('nan')):>9.1f}"
    )


# -- the sender (its own process, so the consoles' CPU does not delay posts) --------------------


def traffic(rate: float, seconds: float, employees: int) -> list[tuple[float, dict[str, Any]]]:
    """`seconds` of generated traffic at about `rate` notifications/s, in its steady state: a
    call lasts minutes, so the window starts once calls have been arriving for WARMUP."""
    per_call = 5.3  # notifications per call in generate_traffic's mix
    calls = int(rate * (WARMUP + seconds) / per_call)
    lines = generate(calls, seed=11, employees=employees, calls_per_second=rate / per_call)
    return [
        (line["t"] - WARMUP, line["body"])
        for line in lines
        if WARMUP <= line["t"] < WARMUP + seconds
    ]


def facts(doc: dict[str, Any]) -> tuple[int, tuple[int, int] | None]:
    """The call of a body, and (call, employee) when it is an incoming leg's start: the post
    that makes a popup (read by the product's own parser, which knows both layouts)."""
    n = parse_notification(doc, UTC_ZONE, datetime.now(UTC))
    ringing = n.kind is Kind.LEG_START and n.direction == "in" and n.employee_id is not None
    return n.call_session_id, (n.call_session_id, n.employee_id) if ringing else None


async def _send(url: str, lines: list[tuple[float, dict[str, Any]]]) -> dict[str, Any]:
    by_call: dict[int, list[tuple[float, bytes, tuple[int, int] | None]]] = defaultdict(list)
    for t, doc in lines:
        call, ringing = facts(doc)
        by_call[call].append((t, orjson.dumps(doc), ringing))
    sent: dict[tuple[int, int], float] = {}
    answers: list[float] = []
    lag: list[float] = []  # how late each post left, against its schedule
    errors = 0
    connector = aiohttp.TCPConnector(limit=SENDER_CONNECTIONS)
    start = time.monotonic() + 0.5
    async with aiohttp.ClientSession(connector=connector) as session:

        async def one_call(bodies: list[tuple[float, bytes, tuple[int, int] | None]]) -> None:
            nonlocal errors
            for t, data, key in bodies:  # a call's bodies in order, each at its time
                await asyncio.sleep(max(0.0, start + t - time.monotonic()))
                lag.append(time.monotonic() - start - t)
                posted = time.time()
                if key is not None:
                    sent[key] = posted
                try:
                    async with session.post(url, data=data) as response:
                        await response.read()
                        errors += response.status >= 300
                except aiohttp.ClientError:
                    errors += 1
                answers.append(time.time() - posted)

        await asyncio.gather(*(one_call(b) for b in by_call.values()))
        took = time.monotonic() - start
    return {"sent": sent, "answers": answers, "lag": lag, "errors": errors, "seconds": took}


def _sender_main(url: str, lines: list[tuple[float, dict[str, Any]]], out: Any) -> None:
    out.send(asyncio.run(_send(url, lines)))


def send_in_process(url: str, lines: list[tuple[float, dict[str, Any]]]) -> Any:
    """Start the sender process; returns (process, pipe end to read its result from)."""
    ours, theirs = multiprocessing.Pipe(duplex=False)
    proc = multiprocessing.get_context("spawn").Process(
        target=_sender_main, args=(url, lines, theirs)
    )
    proc.start()
    return proc, ours


async def collect(proc: Any, pipe: Any) -> dict[str, Any]:
    result: dict[str, Any] = await asyncio.to_thread(pipe.recv)
    await asyncio.to_thread(proc.join)
    return result


# -- popups -------------------------------------------------------------------------------------


async def setup_staff(
    url: str, employees: int, virtual_number: str
) -> tuple[str, dict[int, str], dict[int, int]]:
    """Enable the integration, one staff member per employee; returns the webhook path,
    employee id → that staff member's token, and employee id → staff id."""
    tokens: dict[int, str] = {}
    staff_ids: dict[int, int] = {}
    async with aiohttp.ClientSession(headers=ADMIN) as s:
        integration = {"api_key": "bench", "virtual_phone_number": virtual_number}
        async with s.put(url + "/api/v1/integrations/uis", json=integration) as r:
            path = (await r.json())["webhook_path"]
        slots = asyncio.Semaphore(16)

        async def one(employee: int) -> None:
            person = {"full_name": f"Operator {employee}", "email": f"op{employee}@example.com"}
            async with slots, s.post(url + "/api/v1/staff", json=person) as r:
                staff = await r.json()
            tokens[employee] = staff["token"]
            staff_ids[employee] = staff["id"]

        await asyncio.gather(*(one(FIRST_EMPLOYEE + i) for i in range(employees)))
        # Every mapping in one request: one reload of the operators everywhere, not one each.
        mappings = [{"employee_id": e, "staff_id": i} for e, i in staff_ids.items()]
        for start in range(0, len(mappings), 10_000):
            batch = {"mappings": mappings[start : start + 10_000]}
            async with s.post(url + "/api/v1/operators/import", json=batch) as r:
                r.raise_for_status()
    return path, tokens, staff_ids


async def console(
    session: aiohttp.ClientSession,
    url: str,
    employee: int,
    token: str,
    seen: dict[tuple[int, int], float],
    ready: asyncio.Event,
    count: list[int],
) -> None:
    """One staff console: note when each `call.ringing` arrives."""
    async with session.ws_connect(f"{url}/api/v1/events?token={token}") as ws:
        count[0] += 1
        if count[0] == count[1]:
            ready.set()
        async for message in ws:
            if message.type != aiohttp.WSMsgType.TEXT:
                break
            event = orjson.loads(message.data)
            if event.get("type") == "call.ringing":
                seen.setdefault((int(event["call_session_id"]), employee), time.time())


async def wallboard(
    session: aiohttp.ClientSession, url: str, frames: list[tuple[float, frozenset[int]]]
) -> None:
    """One open wallboard (R31): note when each frame came and which staff it shows busy."""
    async with session.ws_connect(f"{url}/api/v1/wallboard/events?token={TOKEN}") as ws:
        async for message in ws:
            if message.type != aiohttp.WSMsgType.TEXT:
                break
            board = orjson.loads(message.data)
            busy = frozenset(
                p["staff_id"]
                for p in board.get("per_staff", ())
                if p["state"] != "free" and p["state"] != "offline"
            )
            frames.append((time.time(), busy))


def wallboard_latency(
    sent: dict[tuple[int, int], float],
    staff_of: dict[int, int],
    frames: list[tuple[float, frozenset[int]]],
) -> list[float]:
    """For each ring of a staff member the wallboard showed idle just before, how long until a
    frame showed them ringing (or already talking). Rings of someone already busy on the
    board are left out: no change to see."""
    times = [t for t, _ in frames]
    latency = []
    for (_, employee), posted in sent.items():
        staff = staff_of.get(employee)
        before = bisect.bisect_left(times, posted)
        if staff is None or before == 0 or staff in frames[before - 1][1]:
            continue
        shown = next((t for t, busy in frames[before:] if staff in busy), None)
        if shown is not None:
            latency.append(shown - posted)
    return latency


def service_cpu(service: Any, other: Any) -> dict[str, float]:
    """CPU seconds by role of the service, and of the second frontend when there is one."""
    found = cpu_by_role(service.pid)
    if other is not None:
        found["frontend B"] = sum(cpu_by_role(other.pid).values())
    return found


async def popups(args: argparse.Namespace, work: Path) -> None:
    lines = traffic(args.rate, args.seconds, args.consoles)
    rings = sum(1 for _, doc in lines if facts(doc)[1])
    reference = await _reference(lines, work)
    port = free_port()
    url = f"http://127.0.0.1:{port}"
    service = start_service(args, port, work)
    other = None
    try:
        await wait_healthy(url, timeout=120)
        consoles_url = url
        if args.two_frontends:  # started once A made the tables; popups cross through Redis
            other_port = free_port()
            # The same service: B joins A's Ray (its writer, shards and wallboard), as a
            # second frontend of a deployment does; only the live events cross through Redis.
            other = start_service(
                args, other_port, work, name="frontend-b", extra=("--ray-address", "auto")
            )
            consoles_url = f"http://127.0.0.1:{other_port}"
            await wait_healthy(consoles_url, timeout=120)
        number = lines[0][1].get("virtual_phone_number") or "74950000000"
        path, tokens, staff_ids = await setup_staff(url, args.consoles, number)
        seen: dict[tuple[int, int], float] = {}
        ready, count = asyncio.Event(), [0, len(tokens)]
        hub = psutil.Process((other or service).pid)  # the frontend holding the consoles
        hub_rss = hub.memory_info().rss
        connector = aiohttp.TCPConnector(limit=0)
        async with aiohttp.ClientSession(connector=connector) as session:
            connecting = time.monotonic()
            consoles = [
                asyncio.create_task(console(session, consoles_url, e, t, seen, ready, count))
                for e, t in tokens.items()
            ]
            await asyncio.wait_for(ready.wait(), 300)
            connected = time.monotonic() - connecting
            frames: list[tuple[float, frozenset[int]]] = []
            consoles.append(asyncio.create_task(wallboard(session, consoles_url, frames)))
            per_console = (hub.memory_info().rss - hub_rss) / len(tokens) / 1024
            rss_before = tree_rss_mib(service.pid)
            cpu_before = service_cpu(service, other)
            proc, pipe = send_in_process(url + path, lines)
            result = await collect(proc, pipe)
            await asyncio.sleep(3)  # the last popups
            cpu_after = service_cpu(service, other)
            rss_after = tree_rss_mib(service.pid)
            for task in consoles:
                task.cancel()
            await asyncio.gather(*consoles, return_exceptions=True)
    finally:
        for proc in (other, service):
            if proc is not None:
                stop_endpoint(proc)
    latency = [seen[k] - t for k, t in result["sent"].items() if k in seen]
    print(
        f"{time.strftime('%Y-%m-%d %H:%M:%S')}; {os.cpu_count()} cores; {len(lines)} notifications "
        f"over {result['seconds']:.1f} s ({len(lines) / result['seconds']:,.0f}/s asked "
        f"{args.rate:,.0f}/s), {rings} ringing legs, {args.consoles} consoles connected; "
        f"{args.shards} shards, {'postgresql' if args.database_url else 'sqlite'}"
        + (", consoles on a second frontend (Redis fan-out)" if args.two_frontends else "")
    )
    print(f"{'':<28}{'count':>8}{'p50 ms':>9}{'p90 ms':>9}{'p99 ms':>9}{'max ms':>9}")
    print(summary("bare endpoint: answer", reference))
    print(summary("callrouter: webhook answer", result["answers"]))
    print(summary("callrouter: popup", latency))
    print(summary("wallboard: ring shown", wallboard_latency(result["sent"], staff_ids, frames)))
    print(f"{'wallboard: frames':<28}{len(frames):>8}")
    print(summary("sender: post later than due", result["lag"]))
    busy = {k: (cpu_after.get(k, 0.0) - v) / (result["seconds"] + 3) for k, v in cpu_before.items()}
    print(
        "service CPU, % of a core: "
        + ", ".join(f"{k} {v * 100:.0f}" for k, v in sorted(busy.items(), key=lambda kv: -kv[1]))
        + f"; total {sum(busy.values()) * 100:.0f}"
    )
    print(
        f"consoles: {len(tokens):,} connected in {connected:.1f} s; the frontend holding them "
        f"grew {per_console:.1f} KiB per connection"
    )
    print(
        f"popups missing: {rings - len(latency)} of {rings}; webhook errors {result['errors']}; "
        f"RSS {rss_before:,.0f} → {rss_after:,.0f} MiB"
    )


async def _reference(lines: list[tuple[float, dict[str, Any]]], work: Path) -> list[float]:
    """The bare endpoint's answer times for the same traffic, from the same sender."""
    port = free_port()
    server = start_endpoint("bare", port, 1, work)
    try:
        await wait_healthy(f"http://127.0.0.1:{port}")
        proc, pipe = send_in_process(f"http://127.0.0.1:{port}{WEBHOOK_PATH}", lines)
        answers: list[float] = (await collect(proc, pipe))["answers"]
        return answers
    finally:
        stop_endpoint(server)


# -- memory per live call -----------------------------------------------------------------------


async def idle_cpu(service_pid: int, seconds: float = 10.0) -> dict[str, float]:
    """Percent of a core each role of the service spends while nothing is sent."""
    before = cpu_by_role(service_pid)
    await asyncio.sleep(seconds)
    after = cpu_by_role(service_pid)
    return {k: (after.get(k, 0.0) - v) / seconds * 100 for k, v in before.items()}


def shard_processes(service_pid: int) -> list[psutil.Process]:
    procs = psutil.Process(service_pid).children(recursive=True)
    return [p for p in procs if "Shard" in " ".join(p.cmdline())]


async def memory(args: argparse.Namespace, work: Path) -> None:
    port = free_port()
    url = f"http://127.0.0.1:{port}"
    service = start_service(args, port, work)
    try:
        await wait_healthy(url, timeout=120)
        path, _, _ = await setup_staff(url, 10, "74950000000")
        shards = shard_processes(service.pid)
        before = sum(p.memory_info().rss for p in shards) / 2**20
        idle_empty = await idle_cpu(service.pid)
        start = datetime.now().replace(microsecond=0) - timedelta(minutes=1)
        lines = [
            (
                0.0,
                body(
                    "leg_start",
                    call_session_id=900_000_000 + i,
                    time=start + timedelta(milliseconds=i % 50_000),
                    phone=f"7916{i:07d}",
                    employee_id=FIRST_EMPLOYEE + i % 10,
                    employee_name=f"Operator {FIRST_EMPLOYEE + i % 10}",
                    leg_id=i,
                ),
            )
            for i in range(args.calls)
        ]
        began = time.monotonic()
        proc, pipe = send_in_process(url + path, lines)
        result = await collect(proc, pipe)
        while True:  # until the shards hold every call
            state = await system(url)
            live = sum(s.get("live_calls", 0) for s in state.get("shards", []))
            if (live >= args.calls and state["inbox_pending"] <= args.calls) or (
                time.monotonic() - began > 900
            ):
                break
            await asyncio.sleep(1)
        await asyncio.sleep(5)
        after = sum(p.memory_info().rss for p in shards) / 2**20
        idle_full = await idle_cpu(service.pid)
    finally:
        stop_endpoint(service)
    print(
        f"{time.strftime('%Y-%m-%d %H:%M:%S')}; {args.calls:,} ringing calls posted in "
        f"{result['seconds']:.0f} s (errors {result['errors']}); shards hold {live:,} live calls"
    )
    print(
        f"shard RSS {before:,.0f} → {after:,.0f} MiB: {(after - before) * 1024 / max(live, 1):.1f} "
        f"KiB per live call"
    )
    for name, idle in (("no calls", idle_empty), (f"{live:,} live calls", idle_full)):
        print(
            f"service idle CPU with {name}, % of a core: "
            + ", ".join(f"{k} {v:.1f}" for k, v in sorted(idle.items(), key=lambda kv: -kv[1]))
            + f"; total {sum(idle.values()):.1f}"
        )
    # The reference: what Ray itself costs at rest. The supervisor is an actor that does
    # nothing once started; every actor process costs about as much, and the daemons on top.
    actors = args.shards + (3 if args.no_stats else 4)  # + writer, wallboard, stats, supervisor
    idle_actor = idle_full.get("Supervisor", 0.0)
    floor = actors * idle_actor + idle_full.get("ray daemons", 0.0)
    print(
        f"reference: Ray at rest, {actors} actor processes × the supervisor's "
        f"{idle_actor:.1f} + its daemons = {floor:.1f} % of a core"
    )


async def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("mode", choices=["popups", "memory"])
    parser.add_argument("--rate", type=float, default=300.0, help="notifications/s (popups)")
    parser.add_argument("--seconds", type=float, default=30.0, help="traffic length (popups)")
    parser.add_argument("--consoles", type=int, default=200, help="staff consoles (popups)")
    parser.add_argument("--calls", type=int, default=100_000, help="live calls (memory)")
    parser.add_argument("--shards", type=int, default=2)
    parser.add_argument("--database-url", default=None)
    parser.add_argument("--no-stats", action="store_true")
    parser.add_argument("--redis-url", default=None, help="live events through Redis")
    parser.add_argument(
        "--two-frontends",
        action="store_true",
        help="webhooks to frontend A, consoles on frontend B (needs --database-url and --redis-url)",
    )
    args = parser.parse_args()
    if args.two_frontends and not (args.database_url and args.redis_url):
        parser.error("--two-frontends needs --database-url (PostgreSQL) and --redis-url")
    work = Path(tempfile.mkdtemp(prefix="callrouter-live-"))
    await (popups(args, work) if args.mode == "popups" else memory(args, work))


if __name__ == "__main__":
    asyncio.run(main())
