"""A generated working day of a contact centre through the whole service, fast and slowly.

    .venv/bin/python bench/bench_day.py [--seats 500] [--date 2026-11-02] [--seed 1]
        [--database-url postgresql://user@host/db] [--slow-rate 50] [--slow-share 0.05]
        [--traffic FILE] [--lateness 30] [--shards N] [--keep]

1. Generates the day (`generate_traffic.generate_day`, default 500 seats, yesterday).
2. Starts service "fast" (`python -m callrouter serve`, its own data dir; with --database-url a
   fresh PostgreSQL database made next to the one named) and replays the whole file as fast as
   the client goes: wall time and webhook throughput, then end to end (first post until the
   inbox is drained) and until the cases stop changing.
3. Starts service "slow" and replays, one request at a time (so in the file's order, which is
   UIS's) and at most `--slow-rate` notifications/s, every call of a sample of the callers'
   numbers (`--slow-share`, chosen by a hash of the number; 1 = the whole day, which at the
   default rate takes hours). Cases depend only on their user's own calls, so the sample is
   self-contained.
4. Compares the fingerprints of every case (read from the databases) of the sampled numbers.

Prints figures whatever the service's speed; exits 1 when the fingerprints differ.
"""

from __future__ import annotations

import argparse
import asyncio
import os
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import time
import uuid
import zlib
from datetime import date
from pathlib import Path
from typing import Any

import aiohttp
import orjson
from sqlalchemy import func, select
from sqlalchemy.engine import make_url

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
sys.path.insert(0, str(Path(__file__).resolve().parent))

from generate_traffic import DayStats, generate_day, write_jsonl

from callrouter.replay import replay
from callrouter.storage.models import Case, Message, Recording
from callrouter.testing import fingerprint

TOKEN = "bench-admin"
READY_TIMEOUT = 180.0
POLL_SECONDS = 1.0
STABLE_SECONDS = 5.0  # cases unchanged this long after the inbox drained: settled


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


class Service:
    """`python -m callrouter serve` in a session of its own, stopped with SIGINT then SIGKILL."""

    def __init__(self, work: Path, name: str, database_url: str | None, shards: int | None) -> None:
        self.name = name
        self.data_dir = work / name
        self.database_url = database_url
        self.port = free_port()
        self.url = f"http://127.0.0.1:{self.port}"
        cmd = [sys.executable, "-m", "callrouter", "serve", "--port", str(self.port)]
        cmd += ["--data-dir", str(self.data_dir)]
        if database_url:
            cmd += ["--database-url", database_url]
        if shards:
            cmd += ["--shards", str(shards)]
        env = {**os.environ, "CALLROUTER_ADMIN_TOKEN": TOKEN, "RAY_AUTH_MODE": "disabled"}
        env.pop("RAY_ADDRESS", None)
        self.log = work / f"{name}.log"
        with self.log.open("wb") as log:
            self.proc = subprocess.Popen(
                cmd, env=env, stdout=log, stderr=subprocess.STDOUT, start_new_session=True
            )

    @property
    def database(self) -> str | Path:
        """Where its cases are: the PostgreSQL URL, else the SQLite file in the data dir."""
        return self.database_url or self.data_dir

    def stop(self) -> None:
        try:
            os.killpg(self.proc.pid, signal.SIGINT)
            self.proc.wait(30)
        except subprocess.TimeoutExpired:
            os.killpg(self.proc.pid, signal.SIGKILL)
        except ProcessLookupError:
            pass


async def _json(http: aiohttp.ClientSession, method: str, url: str, body: Any = None) -> Any:
    async with http.request(method, url, json=body) as response:
        return response.status, await response.json(content_type=None)


async def wait_healthy(service: Service) -> float:
    """Seconds until `/healthz` answers 200; raises if the service dies or never answers."""
    started = time.monotonic()
    async with aiohttp.ClientSession() as http:
        while time.monotonic() - started < READY_TIMEOUT:
            if service.proc.poll() is not None:
                raise RuntimeError(f"{service.name} exited; see {service.log}")
            try:
                async with http.get(service.url + "/healthz") as response:
                    if response.status == 200:
                        return time.monotonic() - started
            except aiohttp.ClientError:
                pass
            await asyncio.sleep(0.5)
    raise RuntimeError(f"{service.name} not healthy after {READY_TIMEOUT} s; see {service.log}")


async def set_lateness(service: Service, seconds: int) -> str:
    """Set the lateness bound (whole seconds, as the settings take it)."""
    headers = {"Authorization": f"Bearer {TOKEN}"}
    async with aiohttp.ClientSession(headers=headers) as http:
        status, _ = await _json(
            http, "PUT", service.url + "/api/v1/settings", {"lateness_seconds": seconds}
        )
    return f"lateness_seconds={seconds}" if status == 200 else f"lateness refused ({status})"


async def drained(service: Service, timeout: float) -> dict[str, Any]:
    """Poll `GET /api/v1/system` until nothing acknowledged waits to be processed."""
    headers = {"Authorization": f"Bearer {TOKEN}"}
    deadline = time.monotonic() + timeout
    async with aiohttp.ClientSession(headers=headers) as http:
        while True:
            _, info = await _json(http, "GET", service.url + "/api/v1/system")
            if info.get("inbox_pending") == 0 and not info.get("ingest_queue"):
                return dict(info)
            if time.monotonic() > deadline:
                raise RuntimeError(f"{service.name} did not drain in {timeout} s: {info}")
            await asyncio.sleep(POLL_SECONDS)


async def _progress(location: str | Path) -> tuple[Any, ...]:
    """Cheap evidence of work still going on: row counts and the latest case change."""
    engine = fingerprint.read_only_engine(location)
    try:
        async with engine.connect() as conn, conn.begin():
            row = (
                await conn.execute(
                    select(
                        select(func.count()).select_from(Case).scalar_subquery(),
                        select(func.count()).select_from(Message).scalar_subquery(),
                        select(func.count()).select_from(Recording).scalar_subquery(),
                        select(func.max(Case.updated_at)).scalar_subquery(),
                        select(func.count()).where(Case.status == "closed").scalar_subquery(),
                    )
                )
            ).one()
    finally:
        await engine.dispose()
    return tuple(row)


async def settled(service: Service, timeout: float) -> None:
    """Wait until the case tables stop changing for STABLE_SECONDS (a lateness bound may hold
    the last calls' cases back after the inbox drained)."""
    deadline = time.monotonic() + timeout
    last, since = await _progress(service.database), time.monotonic()
    while time.monotonic() - since < STABLE_SECONDS:
        if time.monotonic() > deadline:
            raise RuntimeError(f"{service.name}: cases still changing after {timeout} s")
        await asyncio.sleep(POLL_SECONDS)
        now = await _progress(service.database)
        if now != last:
            last, since = now, time.monotonic()


async def run_replay(
    service: Service, traffic: Path, rate: float | None, args: argparse.Namespace
) -> dict[str, float]:
    """Replay `traffic` into `service` and wait until it settles; prints and returns figures."""
    started = time.monotonic()
    report = await replay(
        str(traffic),
        service.url,
        rate,
        args.concurrency if rate is None else args.slow_concurrency,
        admin_token=TOKEN,
        progress=False,
        lateness=args.lateness / 2,  # deliveries within the service's bound, as UIS's are
    )
    acked = time.monotonic()
    await drained(service, args.timeout)
    done = time.monotonic()
    await settled(service, args.timeout)
    final = time.monotonic() - STABLE_SECONDS  # the cases were final this long ago
    for line in report.lines():
        print(f"  {service.name} replay: {line}")
    wall = acked - started
    print(
        f"  {service.name}: {report.sent:,} notifications posted in {wall:.1f} s "
        f"({report.sent / wall:,.0f}/s incl. setup); inbox drained after {done - started:.1f} s "
        f"({report.sent / (done - started):,.0f}/s end to end); cases final after "
        f"{max(final, done) - started:.1f} s"
    )
    if report.ok != report.sent:
        print(f"  {service.name}: WARNING {report.sent - report.ok} notifications not accepted")
    return {"sent": report.sent, "wall": wall, "drained": done - started}


def _phone(body: dict[str, Any]) -> str | None:
    info = body.get("contact_info")
    phone = info.get("contact_phone_number") if isinstance(info, dict) else None
    return str(phone) if phone is not None else None


def in_sample(phone: str | None, share: float) -> bool:
    """Whether a number's calls are in the slow sample (a stable hash of the number)."""
    return phone is not None and zlib.crc32(phone.encode()) % 10_000 < share * 10_000


def write_sample(traffic: Path, out: Path, share: float) -> tuple[int, set[str]]:
    """Copy every line of the sampled numbers' calls; returns (lines, numbers)."""
    lines, phones = 0, set()
    with traffic.open("rb") as source, out.open("wb") as target:
        for raw in source:
            phone = _phone(orjson.loads(raw)["body"])
            if in_sample(phone, share):
                assert phone is not None
                target.write(raw)
                phones.add(phone)
                lines += 1
    return lines, phones


def generate(args: argparse.Namespace, path: Path) -> None:
    stats = DayStats()
    started = time.perf_counter()
    with path.open("wb", buffering=1 << 20) as out:
        write_jsonl(
            generate_day(
                args.seats,
                args.date,
                args.seed,
                calls_per_seat_hour=args.calls_per_seat_hour,
                stats=stats,
            ),
            out,
        )
    elapsed = time.perf_counter() - started
    print(stats.summary())
    print(f"generated in {elapsed:.1f} s -> {path}, {path.stat().st_size / 2**20:,.0f} MiB")


class _Databases:
    """Fresh PostgreSQL databases next to the one `--database-url` names, dropped at the end."""

    def __init__(self, url: str | None, keep: bool) -> None:
        self.url = make_url(url) if url else None
        self.keep = keep
        self.made: list[str] = []

    async def _admin(self, sql: str) -> None:
        import asyncpg  # the service's own PostgreSQL driver

        assert self.url is not None
        plain = self.url.set(drivername="postgresql")
        conn = await asyncpg.connect(plain.render_as_string(hide_password=False))
        try:
            await conn.execute(sql)
        finally:
            await conn.close()

    async def new(self, name: str) -> str | None:
        """A URL of a new empty database for service `name` (None: SQLite in its data dir)."""
        if self.url is None:
            return None
        database = f"{self.url.database or 'callrouter'}_{name}_{uuid.uuid4().hex[:8]}"
        await self._admin(f'CREATE DATABASE "{database}"')
        self.made.append(database)
        return self.url.set(database=database).render_as_string(hide_password=False)

    async def drop(self) -> None:
        if not self.keep:
            for database in self.made:
                await self._admin(f'DROP DATABASE IF EXISTS "{database}" WITH (FORCE)')


def _parse_args(argv: list[str] | None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--seats", type=int, default=500)
    parser.add_argument("--date", type=date.fromisoformat, default=None)
    parser.add_argument("--seed", type=int, default=1)
    parser.add_argument("--calls-per-seat-hour", type=float, default=14.0)
    parser.add_argument("--traffic", type=Path, default=None, help="replay this JSONL instead")
    parser.add_argument("--database-url", default=None, help="PostgreSQL server to use")
    parser.add_argument("--shards", type=int, default=None)
    parser.add_argument("--concurrency", type=int, default=64, help="fast replay connections")
    parser.add_argument("--slow-rate", type=float, default=50.0, help="notifications/s")
    parser.add_argument(
        "--slow-concurrency", type=int, default=1, help="1: exactly the file's order"
    )
    parser.add_argument(
        "--slow-share", type=float, default=0.05, help="share of numbers replayed slowly"
    )
    parser.add_argument("--no-slow", dest="slow", action="store_false")
    parser.add_argument(
        "--lateness", type=int, default=30, help="lateness_seconds to set (the default: 30)"
    )
    parser.add_argument("--timeout", type=float, default=7200.0, help="drain/settle deadline")
    parser.add_argument(
        "--keep", action="store_true", help="keep the traffic, data dirs and databases"
    )
    return parser.parse_args(argv)


async def _fast_and_slow(args: argparse.Namespace, work: Path, traffic: Path) -> int:
    databases = _Databases(args.database_url, args.keep)
    services: list[Service] = []
    try:
        fast = Service(work, "fast", await databases.new("fast"), args.shards)
        services.append(fast)
        ready = await wait_healthy(fast)
        print(f"fast: healthy after {ready:.1f} s; {await set_lateness(fast, args.lateness)}")
        await run_replay(fast, traffic, None, args)
        started = time.monotonic()
        whole = await fingerprint.from_database(fast.database)
        print(f"  fast: {whole.summary()} (read in {time.monotonic() - started:.1f} s)")
        fast.stop()  # its Ray would take CPU from the slow run
        if not args.slow:
            return 0
        sample = work / "sample.jsonl"
        lines, phones = write_sample(traffic, sample, args.slow_share)
        print(
            f"slow: {lines:,} notifications of {len(phones):,} numbers "
            f"({args.slow_share:.0%} of the numbers) at {args.slow_rate:g}/s"
        )
        slow = Service(work, "slow", await databases.new("slow"), args.shards)
        services.append(slow)
        ready = await wait_healthy(slow)
        print(f"slow: healthy after {ready:.1f} s; {await set_lateness(slow, args.lateness)}")
        await run_replay(slow, sample, args.slow_rate, args)
        left, right = whole.of_phones(phones), await fingerprint.from_database(slow.database)
        print(f"  fast, sampled numbers: {left.summary()}\n  slow: {right.summary()}")
        difference = fingerprint.diff(left, right, ("fast", "slow"))
        print("fingerprints: " + ("EQUAL" if not difference else "DIFFERENT\n" + difference))
        return 1 if difference else 0
    finally:
        for service in services:
            service.stop()
        await databases.drop()


def main(argv: list[str] | None = None) -> int:
    """Command line entry point; returns 0 when the fingerprints agree (or were not compared)."""
    args = _parse_args(argv)
    sys.stdout.reconfigure(line_buffering=True)  # type: ignore[union-attr]  # a long run: show progress
    work = Path(tempfile.mkdtemp(prefix="callrouter-day-"))
    print(f"work dir {work}")
    traffic = args.traffic or work / "day.jsonl"
    if args.traffic is None:
        generate(args, traffic)
    try:
        return asyncio.run(_fast_and_slow(args, work, traffic))
    finally:
        if not args.keep:  # the day is hundreds of MiB; the service logs stay
            for path in (work / "day.jsonl", work / "sample.jsonl"):
                path.unlink(missing_ok=True)
            for name in ("fast", "slow"):
                shutil.rmtree(work / name, ignore_errors=True)


if __name__ == "__main__":
    sys.exit(main())
