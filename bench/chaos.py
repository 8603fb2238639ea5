"""Chaos runs (issue "Nothing lost, whatever arrives"): whatever arrives and whatever dies, the
cases equal those of a clean, in-order run of the same traffic.

    .venv/bin/python bench/chaos.py [--calls 2000] [--seed 11] [--database-url URL]
        [--redis-url redis://127.0.0.1:6379/0] [--scenarios hostile,service_kill,...]
        [--shard-rounds 3] [--writer-kills 3] [--service-kills 2] [--pg-restarts 3]
        [--redis-restarts 3] [--random-bodies 2000] [--work DIR] [--keep]

One traffic file (`generate_traffic.generate`, compressed in UIS time: calls overlap, repeat
callers, grouped missed calls, transfers, outgoing calls) is replayed once into a clean service
in the file's order, one request at a time: the reference. Then each scenario gets a fresh
service of its own and the same file, and its cases (`callrouter.testing.fingerprint`, read
from the database, limited to the file's numbers) must equal the reference:

- hostile: bodies UIS could never send (durations of 10^12 s, year 1 and 9999, callers without
  digits, numbers over 64 characters, unknown names, wrong types, placeholders, non-JSON, over
  64 KiB, seeded random JSON and mutated real bodies) posted before, during and after the
  replay, each followed by a normal call that must get its case; never a 5xx, every 4xx kept;
- service_kill: SIGKILL of the service and its whole Ray mid-replay, a start on the same data
  and the rest of the replay (the client retries connection errors);
- shard_kill / writer_kill: SIGKILL of the shard workers (each in turn, `--shard-rounds` times)
  or of the writer's worker mid-replay; Ray restarts the actor, the service keeps running;
- duplicate: the file replayed twice at once, then once more after everything was decided;
- shuffled: every notification delayed by a random amount below the lateness bound (UIS time),
  some resent, delivered one at a time in that order;
- shard_gap: transfers live on every shard, every shard worker SIGKILLed, and the calls' ends
  (then a call a minute later) posted in UIS order while the shards are down (a file and a
  clean run of its own: `make_gap_traffic`);
- redis / postgres: Redis or PostgreSQL restarted mid-replay (the service must recover by
  itself), then a popup must reach a staff WebSocket for a call posted afterwards.

The module `tests/e2e/test_chaos.py` runs the same scenarios at a small scale in CI; this file
is their implementation. Only correctness is checked, never timings. Prints per scenario the
notifications, the kills and restarts (each proven to be mid-replay), whether the fingerprint
equals the clean run and the time taken; exits 1 when any scenario fails.
"""

from __future__ import annotations

import argparse
import asyncio
import functools
import itertools
import json
import math
import os
import random
import shutil
import signal
import socket
import sqlite3
import subprocess
import sys
import tempfile
import threading
import time
import traceback
import urllib.error
import urllib.parse
import urllib.request
import uuid
from collections import Counter
from collections.abc import Callable
from concurrent.futures import Future, ThreadPoolExecutor
from contextlib import closing
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any, Protocol, TypeVar
from zoneinfo import ZoneInfo

import orjson
import psutil

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
sys.path.insert(0, str(Path(__file__).resolve().parent))

from generate_traffic import generate, write_jsonl

from callrouter.domain.notifications import Kind, Notification, NotificationError
from callrouter.domain.phones import normalize_phone
from callrouter.domain.uis import BodyError, body_text, parse_body, parse_notification
from callrouter.replay import ReplayReport, replay, setup_service
from callrouter.testing import fingerprint
from callrouter.testing import uis_bodies as uis

ACCOUNT_TZ = ZoneInfo("Europe/Moscow")  # the default account time zone: notification_time is local
LATENESS_SECONDS = 5  # the services' lateness bound (account setting): small, so runs are short
REPLAY_WINDOW = 2.0  # the replay client's UIS-time window, below the bound
MAX_BODY = 64 * 1024
SETTLE_TIMEOUT = 300.0
RESTART_TIMEOUT = 180.0  # a Ray worker or a whole service coming back on a loaded machine
READY_TIMEOUT = 180.0
# The client retries connection errors and 503s with a backoff capped at 5 s: this many
# attempts outlast a whole service restart (Ray starts in seconds to a minute here).
REPLAY_RETRIES = 200
POLL = 0.1
SHARD = "ray::Shard"  # Ray titles an actor's worker process "ray::<class>[.<method>]"
WRITER = "ray::WriterService"
HOSTILE_IDS = 990_000_000  # call ids of hostile bodies and probe calls: no traffic uses them
PROBE_PREFIX = "7000"  # probe callers' numbers: 11 digits that no generated number has
POPUP_EMPLOYEE = 7001  # a UIS employee no traffic names, mapped to the popup staff member
PG_DEFAULT = os.environ.get(
    "CALLROUTER_TEST_PG_URL", "postgresql+asyncpg://postgres@127.0.0.1:5432/test"
)
REDIS_DEFAULT = "redis://127.0.0.1:6379/0"
REDIS_START = [
    "redis-server",
    "--daemonize",
    "yes",
    "--bind",
    "127.0.0.1",
    "-::1",
    "--port",
    "6379",
    "--save",
    "",
    "--appendonly",
    "no",
    "--dir",
    "/var/lib/redis",
    "--logfile",
    "/var/log/redis/ci.log",
]
UNKNOWN_NUMBER = "с неизвестного номера"


# --- the service under test ----------------------------------------------------------------


class ServiceLike(Protocol):
    """What the scenarios need of a running service: tests/e2e/conftest.py's ServiceProcess
    and `Service` below both are one."""

    admin_token: str
    data_dir: Path
    database_url: str | None
    port: int
    proc: subprocess.Popen[bytes] | None

    @property
    def base_url(self) -> str: ...

    def start(self, port: int | None = None) -> None: ...

    def wait_ready(self, timeout: float = ...) -> None: ...

    def kill(self) -> None: ...

    def log_tail(self, lines: int = ...) -> str: ...


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def session_processes(sid: int) -> list[psutil.Process]:
    """Every live process of session `sid` (a service started in a session of its own: the
    service and the Ray it started; Ray workers get process groups of their own)."""
    found = []
    for proc in psutil.process_iter(["pid"]):
        try:
            if os.getsid(proc.pid) == sid and proc.status() != psutil.STATUS_ZOMBIE:
                found.append(proc)
        except (ProcessLookupError, PermissionError, psutil.Error):
            continue
    return found


class Service:
    """`python -m callrouter serve` in a session of its own (the bench's ServiceProcess)."""

    def __init__(
        self,
        data_dir: Path,
        *,
        admin_token: str,
        database_url: str | None = None,
        name: str = "service",
        extra_args: tuple[str, ...] = (),
    ) -> None:
        self.data_dir = data_dir
        self.admin_token = admin_token
        self.database_url = database_url
        self.extra_args = extra_args
        self.log_path = data_dir.parent / f"{name}.log"
        self.proc: subprocess.Popen[bytes] | None = None
        self.port = 0

    @property
    def base_url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    def start(self, port: int | None = None) -> None:
        assert self.proc is None, "already running"
        self.port = port or free_port()
        self.data_dir.mkdir(parents=True, exist_ok=True)
        cmd = [sys.executable, "-m", "callrouter", "serve", "--port", str(self.port)]
        cmd += ["--data-dir", str(self.data_dir)]
        if self.database_url:
            cmd += ["--database-url", self.database_url]
        cmd += list(self.extra_args)
        env = dict(os.environ, CALLROUTER_ADMIN_TOKEN=self.admin_token)
        env.setdefault("RAY_AUTH_MODE", "disabled")
        env.pop("RAY_ADDRESS", None)
        with self.log_path.open("ab") as log:
            log.write(f"\n===== start: {' '.join(cmd)}\n".encode())
            log.flush()
            self.proc = subprocess.Popen(
                cmd,
                cwd=Path(__file__).resolve().parents[1],
                env=env,
                stdout=log,
                stderr=subprocess.STDOUT,
                start_new_session=True,
            )

    def wait_ready(self, timeout: float = READY_TIMEOUT) -> None:
        assert self.proc is not None
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if self.proc.poll() is not None:
                raise RuntimeError(f"the service exited:\n{self.log_tail()}")
            status, _ = http(self, "GET", "/healthz", auth=False, timeout=2)
            if status == 200:
                return
            time.sleep(0.2)
        raise RuntimeError(f"/healthz not 200 after {timeout} s:\n{self.log_tail()}")

    def kill(self) -> None:
        assert self.proc is not None
        procs = session_processes(self.proc.pid)
        try:
            os.killpg(self.proc.pid, signal.SIGKILL)
        except ProcessLookupError:
            pass
        for proc in procs:
            try:
                proc.kill()
            except psutil.Error:
                pass
        self.proc.wait(timeout=10)
        psutil.wait_procs(procs, timeout=10)
        self.proc = None

    def stop(self) -> None:
        if self.proc is None:
            return
        if self.proc.poll() is None:
            self.proc.send_signal(signal.SIGINT)
        try:
            self.proc.wait(timeout=30)
        except subprocess.TimeoutExpired:
            pass
        if self.proc.poll() is None or session_processes(self.proc.pid):
            self.kill()
        self.proc = None

    def log_tail(self, lines: int = 60) -> str:
        try:
            return "\n".join(self.log_path.read_text(errors="replace").splitlines()[-lines:])
        except OSError:
            return "(no log)"


# --- HTTP ----------------------------------------------------------------------------------


def http(
    svc: ServiceLike,
    method: str,
    path: str,
    *,
    body: bytes | None = None,
    json_body: Any = None,
    token: str | None = None,
    auth: bool = True,
    timeout: float = 30.0,
) -> tuple[int, str]:
    """(status, text) of one request; status 0 when the service is unreachable."""
    headers = {"Accept": "application/json"}
    if json_body is not None:
        body = json.dumps(json_body).encode()
    if body is not None:
        headers["Content-Type"] = "application/json"
    bearer = token if token is not None else svc.admin_token
    if auth and bearer:
        headers["Authorization"] = f"Bearer {bearer}"
    req = urllib.request.Request(svc.base_url + path, data=body, method=method, headers=headers)
    try:
        with urllib.request.urlopen(req, timeout=timeout) as resp:
            return resp.status, resp.read().decode("utf-8", "replace")
    except urllib.error.HTTPError as err:
        return err.code, err.read().decode("utf-8", "replace")
    except (OSError, urllib.error.URLError):
        return 0, ""


def admin_json(svc: ServiceLike, method: str, path: str, body: Any = None, want: int = 200) -> Any:
    status, text = http(svc, method, path, json_body=body)
    if status != want:
        raise RuntimeError(f"{method} {path}: HTTP {status} {text[:500]}")
    return json.loads(text) if text else None


def system(svc: ServiceLike) -> dict[str, Any] | None:
    """`GET /api/v1/system`, or None while it does not answer 200 (a database or an actor
    coming back)."""
    status, text = http(svc, "GET", "/api/v1/system", timeout=10)
    return json.loads(text) if status == 200 else None


def quarantine(svc: ServiceLike) -> list[dict[str, Any]]:
    """Open quarantine entries: calls (or bodies) whose processing raised."""
    items: list[dict[str, Any]] = admin_json(
        svc, "GET", "/api/v1/quarantine?status=open&limit=500"
    )["items"]
    return items


def rejected(svc: ServiceLike) -> list[dict[str, Any]]:
    """Every body kept at `GET /api/v1/rejected`."""
    found: list[dict[str, Any]] = []
    while True:
        page = admin_json(svc, "GET", f"/api/v1/rejected?limit=500&offset={len(found)}")
        found += page["items"]
        if not page["items"] or len(found) >= page["total"]:
            return found


# --- traffic -------------------------------------------------------------------------------


@dataclass(frozen=True)
class Traffic:
    """One generated JSONL file and what identifies its calls in a service's database."""

    name: str
    path: Path
    lines: int
    call_ids: frozenset[int]
    phones: frozenset[str]
    first: datetime  # the earliest and latest notification_time (account local, naive)
    last: datetime
    employees: tuple[int, ...]
    unique: int  # distinct bodies: what the inbox must hold of the file, once each

    @property
    def id_range(self) -> tuple[int, int]:
        return min(self.call_ids), max(self.call_ids)

    def bodies(self) -> list[dict[str, Any]]:
        return [orjson.loads(line)["body"] for line in self.path.read_bytes().splitlines()]

    def summary(self) -> str:
        return (
            f"{self.name}: {len(self.call_ids)} calls, {self.lines} notifications, "
            f"{len(self.phones)} numbers, UIS time {self.first:%Y-%m-%d %H:%M:%S}"
            f"–{self.last:%H:%M:%S}"
        )


def notification_time(doc: dict[str, Any]) -> datetime:
    return datetime.fromisoformat(doc["notification_time"])


def make_traffic(
    directory: Path,
    name: str,
    *,
    calls: int,
    seed: int,
    start: datetime,
    first_call_id: int,
    calls_per_second: float = 0.1,
    employees: int = 6,
) -> Traffic:
    """Generate `calls` calls from `start` (account local time, in the past) into a file."""
    path = directory / f"{name}.jsonl"
    with path.open("wb") as out:
        lines = write_jsonl(
            generate(
                calls,
                seed,
                employees=employees,
                start=start,
                calls_per_second=calls_per_second,
                first_call_id=first_call_id,
            ),
            out,
        )
    assert lines > 0
    return traffic_from_file(name, path)


def traffic_from_file(name: str, path: Path) -> Traffic:
    """What identifies the calls of a JSONL file (`{"t", "body"}` per line)."""
    bodies = [orjson.loads(line)["body"] for line in path.read_bytes().splitlines()]
    times = [notification_time(b) for b in bodies]
    return Traffic(
        name=name,
        path=path,
        lines=len(bodies),
        call_ids=frozenset(b["call_info"]["call_session_id"] for b in bodies),
        phones=frozenset(b["contact_info"]["contact_phone_number"] for b in bodies),
        first=min(times),
        last=max(times),
        employees=tuple(sorted({b["employee_info"]["employee_id"] for b in bodies} - {None})),
        unique=len({orjson.dumps(b) for b in bodies}),
    )


def local_now() -> datetime:
    return datetime.now(ACCOUNT_TZ).replace(tzinfo=None, microsecond=0)


# --- preparing a service -------------------------------------------------------------------


@dataclass
class Popup:
    """A staff member whose WebSocket must get popups, and the UIS employee mapped to them."""

    staff_id: int
    token: str
    employee_id: int


@dataclass
class Prepared:
    webhook_path: str
    popup: Popup | None = None


def prepare(svc: ServiceLike, bodies: list[dict[str, Any]], *, popup: bool = False) -> Prepared:
    """Set the lateness bound, enable the integration and map every employee of `bodies` as a
    replay would (so the replays need no setup, and change no settings mid-chaos); with
    `popup`, also a staff member of our own for the WebSocket checks."""
    admin_json(svc, "PUT", "/api/v1/settings", {"lateness_seconds": LATENESS_SECONDS})

    async def setup() -> str:
        import aiohttp

        async with aiohttp.ClientSession() as session:
            path, _, _ = await setup_service(session, svc.base_url, svc.admin_token, bodies)
            return path

    path = asyncio.run(setup())
    made = None
    if popup:
        staff = admin_json(
            svc,
            "POST",
            "/api/v1/staff",
            {"full_name": "Хаос Попапов", "email": f"popup{uuid.uuid4().hex[:8]}@example.test"},
            want=201,
        )
        admin_json(svc, "PUT", f"/api/v1/operators/{POPUP_EMPLOYEE}", {"staff_id": staff["id"]})
        made = Popup(staff["id"], staff["token"], POPUP_EMPLOYEE)
    return Prepared(path, made)


# --- what a service has done ---------------------------------------------------------------


def location(svc: ServiceLike) -> str | Path:
    """The service's database: its URL, or its SQLite data dir."""
    return svc.database_url or svc.data_dir


def _plain_pg(url: str) -> str:
    parts = urllib.parse.urlsplit(url)
    return urllib.parse.urlunsplit(("postgresql", parts.netloc, parts.path, parts.query, ""))


def stored(svc: ServiceLike, traffic: Traffic) -> int | None:
    """Inbox rows of the file's calls (what the service acknowledged of it); None while the
    database cannot be read."""
    lo, hi = traffic.id_range
    sql = f"SELECT count(*) FROM inbox WHERE call_session_id BETWEEN {lo} AND {hi}"
    where = location(svc)
    if isinstance(where, Path):
        path = where / fingerprint.SQLITE_FILE
        try:
            with closing(sqlite3.connect(f"file:{path}?mode=ro", uri=True, timeout=5)) as db:
                return int(db.execute(sql).fetchone()[0])
        except sqlite3.Error:
            return None

    async def count() -> int:
        import asyncpg

        conn = await asyncio.wait_for(asyncpg.connect(_plain_pg(where)), 5)
        try:
            return int(await conn.fetchval(sql))
        finally:
            await conn.close()

    try:
        return asyncio.run(count())
    except Exception:  # noqa: BLE001 - a database restarting: unknown for now
        return None


_WRITER_QUEUES = (
    "decisions_queued",
    "held_for_order",
    "work_queued",
    "live_calls",
    "finished_calls",
)


def quiet(info: dict[str, Any] | None) -> bool:
    """Everything acknowledged has had its effect: no inbox row undone, nothing queued in
    the frontend or the writer, every call decided (no live or finished-undecided call in the
    writer or a shard). Raises AssertionError when the answer lacks one of these figures (a
    changed `/api/v1/system` must not pass for a quiet one)."""
    if not info:
        return False
    writer = info.get("writer") or {}
    shards = info.get("shards") or []
    missing = [k for k in ("inbox_pending", "ingest_queue") if k not in info]
    missing += [f"writer.{k}" for k in _WRITER_QUEUES if k not in writer]
    missing += [f"shards[{i}].live_calls" for i, s in enumerate(shards) if "live_calls" not in s]
    assert not missing and shards, f"GET /api/v1/system lacks {missing or 'shards'}: {info}"
    return (
        info["inbox_pending"] == 0
        and not info["ingest_queue"]
        and not any(writer[k] for k in _WRITER_QUEUES)
        and all(not shard["live_calls"] for shard in shards)
    )


def settle(svc: ServiceLike, timeout: float = SETTLE_TIMEOUT) -> dict[str, Any]:
    """Poll `GET /api/v1/system` until `quiet` twice in a row; the last answer. Raises
    AssertionError with the state, the quarantine and the log tail at the deadline."""
    deadline = time.monotonic() + timeout
    info: dict[str, Any] | None = None
    calm = 0
    while time.monotonic() < deadline:
        info = system(svc)
        calm = calm + 1 if quiet(info) else 0
        if calm >= 2:
            assert info is not None
            return info
        time.sleep(0.25)
    status, text = http(svc, "GET", "/api/v1/quarantine?limit=20")
    raise AssertionError(
        f"{svc.base_url}: not settled after {timeout} s: {info}\n"
        f"quarantine: HTTP {status} {text[:2000]}\n--- log ---\n{svc.log_tail(40)}"
    )


def cases_of(svc: ServiceLike, traffic: Traffic) -> fingerprint.Fingerprint:
    """The fingerprint of the cases of the file's numbers (read from the database)."""
    return fingerprint.read_database(location(svc)).of_phones(traffic.phones)


# --- replays in the background -------------------------------------------------------------


class Background:
    """A replay in a thread of its own (and its own event loop), so that the caller can kill
    things meanwhile. `setup` is off: `prepare` did it once."""

    def __init__(
        self,
        svc: ServiceLike,
        path: Path,
        webhook_path: str,
        *,
        rate: float | None = None,
        concurrency: int = 8,
        lateness: float | None = REPLAY_WINDOW,
        copies: int = 1,
    ) -> None:
        self.future: Future[list[ReplayReport]] = Future()
        self.started = time.monotonic()
        self.finished_at = math.inf

        async def run() -> list[ReplayReport]:
            return list(
                await asyncio.gather(
                    *(
                        replay(
                            str(path),
                            svc.base_url,
                            rate,
                            concurrency,
                            setup=False,
                            admin_token=svc.admin_token,
                            webhook_path=webhook_path,
                            max_retries=REPLAY_RETRIES,
                            progress=False,
                            lateness=lateness,
                        )
                        for _ in range(copies)
                    )
                )
            )

        def body() -> None:
            try:
                self.future.set_result(asyncio.run(run()))
            except BaseException as exc:  # noqa: BLE001 - handed to whoever waits
                self.future.set_exception(exc)
            finally:
                self.finished_at = time.monotonic()

        self.thread = threading.Thread(target=body, name="chaos-replay", daemon=True)
        self.thread.start()

    def done(self) -> bool:
        return self.future.done()

    def reports(self, timeout: float = 600.0) -> list[ReplayReport]:
        return self.future.result(timeout)


def replay_now(
    svc: ServiceLike,
    path: Path,
    webhook_path: str,
    *,
    concurrency: int = 8,
    lateness: float | None = REPLAY_WINDOW,
    copies: int = 1,
) -> list[ReplayReport]:
    return Background(
        svc, path, webhook_path, concurrency=concurrency, lateness=lateness, copies=copies
    ).reports()


def check_reports(reports: list[ReplayReport], lines: int) -> list[str]:
    """What went wrong in the replays' answers (every notification must end in a 2xx)."""
    problems = []
    for report in reports:
        if report.sent != lines or report.ok != report.sent:
            problems.append("; ".join(report.lines()[:1]))
    return problems


# --- kills ---------------------------------------------------------------------------------


@dataclass
class Kill:
    """One kill or restart, with the evidence that it happened mid-replay."""

    what: str  # "service", "shard pid 123", "writer pid 456", "redis", "postgresql"
    stored_before: int  # the file's notifications acknowledged when it happened
    total: int
    replay_running: bool  # the replay had not finished
    live_calls: int  # calls in flight in the writer at that moment (-1: unknown)
    back_after: float = 0.0  # seconds until it was back
    stored_after: int | None = None  # acknowledged once it was back
    note: str = ""

    @property
    def mid_replay(self) -> bool:
        return self.replay_running and 0 < self.stored_before < self.total

    def line(self) -> str:
        after = "" if self.stored_after is None else f", {self.stored_after} once back"
        live = "" if self.live_calls < 0 else f", {self.live_calls} live calls"
        return (
            f"{self.what}: at {self.stored_before}/{self.total} stored{live}"
            f"{', replay running' if self.replay_running else ', REPLAY NOT RUNNING'}; back in "
            f"{self.back_after:.1f} s{after}{'; ' + self.note if self.note else ''}"
        )


def wait_point(
    svc: ServiceLike,
    traffic: Traffic,
    running: Background,
    share: float,
    ready: Callable[[dict[str, Any]], bool] = lambda info: True,
    timeout: float = 300.0,
) -> tuple[int, dict[str, Any] | None]:
    """Wait until at least `share` of the file is stored and `ready(system info)`; the count
    and the info then. Raises AssertionError when the replay ends first: a kill after it would
    prove nothing."""
    deadline = time.monotonic() + timeout
    goal = max(1, math.ceil(share * traffic.lines))
    while time.monotonic() < deadline:
        if running.done():
            raise AssertionError(
                f"the replay of {traffic.name} ended before {share:.0%} was stored with the "
                f"conditions for the next kill: it would not be mid-replay"
            )
        count = stored(svc, traffic)
        if count is not None and count >= goal:
            info = system(svc)
            if info is not None and ready(info):
                return count, info
        time.sleep(POLL)
    raise AssertionError(f"{traffic.name}: {share:.0%} not stored within {timeout} s")


def workers(svc: ServiceLike, title: str) -> list[psutil.Process]:
    """The service's Ray worker processes of actor class `title` ("ray::Shard")."""
    assert svc.proc is not None
    found = []
    for proc in session_processes(svc.proc.pid):
        try:
            cmd = proc.cmdline()
        except psutil.Error:
            continue
        if cmd and (cmd[0] == title or cmd[0].startswith(title + ".")):
            found.append(proc)
    return found


def sigkill_worker(svc: ServiceLike, title: str, pid: int, count: int) -> float:
    """SIGKILL the worker `pid` (which must be a `title` worker of the service), wait until it
    is gone and Ray has `count` such workers again, none of them `pid`, and the service
    answers; the seconds that took."""
    assert pid in {p.pid for p in workers(svc, title)}, f"{pid} is not a {title} worker"
    proc = psutil.Process(pid)
    began = time.monotonic()
    os.kill(pid, signal.SIGKILL)
    deadline = began + RESTART_TIMEOUT
    while time.monotonic() < deadline:
        try:
            if proc.status() == psutil.STATUS_ZOMBIE:
                break
        except psutil.NoSuchProcess:
            break
        time.sleep(0.05)
    else:
        raise AssertionError(f"{title} pid {pid} survived SIGKILL")
    while time.monotonic() < deadline:
        now = [p.pid for p in workers(svc, title)]
        if len(now) == count and pid not in now and system(svc) is not None:
            return time.monotonic() - began
        time.sleep(0.1)
    raise AssertionError(
        f"{title} was not restarted within {RESTART_TIMEOUT} s:\n{svc.log_tail(40)}"
    )


# The clean run's fingerprint, or something that waits for it (computed meanwhile).
Reference = fingerprint.Fingerprint | Callable[[], fingerprint.Fingerprint]


@dataclass
class Outcome:
    """What one scenario did and whether its cases equal the clean run."""

    scenario: str
    notifications: int  # posted, duplicates and hostile bodies included
    kills: list[Kill] = field(default_factory=list)
    diff: str = ""  # fingerprint.diff against the clean run; "" when equal
    problems: list[str] = field(default_factory=list)  # anything else that went wrong
    notes: list[str] = field(default_factory=list)
    seconds: float = 0.0
    cases: int = 0
    # What the service held before the scenario: its own leftovers are not this one's.
    quarantined_before: set[int] = field(default_factory=set)
    rejected_before: int = 0

    @property
    def equal(self) -> bool:
        return not self.diff

    @property
    def ok(self) -> bool:
        return self.equal and not self.problems and all(k.mid_replay for k in self.kills)

    def report(self) -> str:
        head = (
            f"{self.scenario}: {self.notifications} notifications, {len(self.kills)} kills, "
            f"{self.cases} cases, fingerprint {'equal to' if self.equal else 'DIFFERS from'} "
            f"the clean run, {self.seconds:.1f} s"
        )
        lines = [head] + [f"  kill {k.line()}" for k in self.kills]
        lines += [f"  note: {n}" for n in self.notes]
        lines += [f"  PROBLEM: {p}" for p in self.problems]
        if self.diff:
            lines.append("  " + self.diff.replace("\n", "\n  "))
        return "\n".join(lines)


def _last_error(error: str) -> str:
    """The line of a traceback that names the first exception raised (the cause)."""
    lines = [line.strip() for line in error.splitlines() if line.strip()]
    named = [line for line in lines if not line.startswith(("File ", "^", "~")) and ":" in line]
    causes = [line for line in named if "Error" in line.split(":")[0] or "Exception" in line]
    return (causes or lines or ["?"])[0][:400]


_Outcome = TypeVar("_Outcome", bound="Outcome")


def begin(outcome: _Outcome, svc: ServiceLike) -> _Outcome:
    """Note what the service already holds (quarantine entries, kept bodies), so that only
    what this scenario adds counts against it."""
    outcome.quarantined_before = {q["id"] for q in quarantine(svc)}
    outcome.rejected_before = max((r["id"] for r in rejected(svc)), default=0)
    return outcome


def finish(
    outcome: Outcome,
    svc: ServiceLike,
    traffic: Traffic,
    reference: Reference,
    started: float,
) -> Outcome:
    """Settle, compare with the clean run, look at the quarantine."""
    settle(svc)
    found = cases_of(svc, traffic)
    outcome.cases = len(found.cases)
    clean = reference() if callable(reference) else reference
    outcome.diff = fingerprint.diff(clean, found, ("clean", outcome.scenario))
    count = stored(svc, traffic)
    if count != traffic.unique:
        outcome.problems.append(
            f"{count} notifications of the file stored, expected {traffic.unique}"
        )
    broken = [q for q in quarantine(svc) if q["id"] not in outcome.quarantined_before]
    for entry in broken[:20]:
        outcome.problems.append(
            f"call {entry.get('call_session_id')} quarantined at stage {entry.get('stage')}: "
            f"{_last_error(entry.get('error') or '')}"
        )
    if len(broken) > 20:
        outcome.problems.append(f"... and {len(broken) - 20} more quarantined")
    outcome.seconds = time.monotonic() - started
    return outcome


# --- the clean reference -------------------------------------------------------------------


def clean_run(svc: ServiceLike, traffic: Traffic, prepared: Prepared) -> fingerprint.Fingerprint:
    """The file replayed in its order (UIS's), one request at a time: the reference cases."""
    reports = replay_now(svc, traffic.path, prepared.webhook_path, concurrency=1, lateness=None)
    problems = check_reports(reports, traffic.lines)
    assert not problems, f"the clean replay of {traffic.name} failed: {problems}"
    settle(svc)
    assert not quarantine(svc), f"the clean run quarantined calls: {quarantine(svc)}"
    reference = cases_of(svc, traffic)
    recorded = {m.call.call_session_id for c in reference.cases for m in c.messages if m.call}
    missing = traffic.call_ids - recorded
    assert not missing, f"the clean run recorded no case for {len(missing)} calls: {missing}"
    return reference


# --- scenarios: kills ----------------------------------------------------------------------


def kill_rate(traffic: Traffic, seconds: float) -> float:
    """The notifications/s that make the replay last at least `seconds` (kills need room)."""
    return max(1.0, traffic.lines / seconds)


def shares(kills: int) -> list[float]:
    """Where in the replay the kills go: evenly between the start and the end."""
    return [(i + 1) / (kills + 1) for i in range(kills)]


def service_kill(
    svc: ServiceLike,
    traffic: Traffic,
    prepared: Prepared,
    reference: Reference,
    *,
    kills: int = 1,
    replay_seconds: float = 20.0,
) -> Outcome:
    """SIGKILL the service and its whole Ray mid-replay, `kills` times; each time start it on
    the same data dir and port while the replay retries."""
    started = time.monotonic()
    out = begin(Outcome("service_kill", traffic.lines), svc)
    running = Background(
        svc, traffic.path, prepared.webhook_path, rate=kill_rate(traffic, replay_seconds)
    )
    for share in shares(kills):
        count, info = wait_point(
            svc, traffic, running, share, lambda i: i["writer"]["live_calls"] > 0
        )
        assert info is not None
        began = time.monotonic()
        svc.kill()
        at_kill = stored(svc, traffic)  # the database of a dead service: exactly what it kept
        kill = Kill(
            "whole service (SIGKILL of its session)",
            at_kill if at_kill is not None else count,
            traffic.lines,
            not running.done(),
            info["writer"]["live_calls"],
        )
        svc.start(port=svc.port)
        svc.wait_ready()
        kill.back_after = time.monotonic() - began
        kill.stored_after = stored(svc, traffic)
        out.kills.append(kill)
    out.problems += check_reports(running.reports(), traffic.lines)
    return finish(out, svc, traffic, reference, started)


def worker_kills(
    svc: ServiceLike,
    traffic: Traffic,
    prepared: Prepared,
    reference: Reference,
    *,
    title: str,
    rounds: int = 1,
    replay_seconds: float = 20.0,
) -> Outcome:
    """SIGKILL each `title` worker in turn (`rounds` times over), each mid-replay while every
    shard and the writer hold live calls; Ray restarts the actor, the service is not touched."""
    started = time.monotonic()
    scenario = "shard_kill" if title == SHARD else "writer_kill"
    out = begin(Outcome(scenario, traffic.lines), svc)
    count = len(workers(svc, title))
    assert count > 0, f"no {title} worker in the service's session"
    service_pid = svc.proc.pid if svc.proc else None
    running = Background(
        svc, traffic.path, prepared.webhook_path, rate=kill_rate(traffic, replay_seconds)
    )

    def ready(info: dict[str, Any]) -> bool:
        return info["writer"]["live_calls"] > 0 and all(s["live_calls"] > 0 for s in info["shards"])

    # Each in turn: a round kills every worker alive at its start, one after the other (a
    # restarted actor runs in another process, so it is not in the round's set).
    round_left: list[int] = []
    for share in shares(rounds * count):
        if not round_left:
            round_left = sorted(p.pid for p in workers(svc, title))
        stored_now, info = wait_point(svc, traffic, running, share, ready)
        assert info is not None
        pid = round_left.pop(0)
        kill = Kill(
            f"{title} pid {pid}",
            stored_now,
            traffic.lines,
            not running.done(),
            info["writer"]["live_calls"],
        )
        kill.back_after = sigkill_worker(svc, title, pid, count)
        after = system(svc)
        live = [s["live_calls"] for s in info["shards"]]
        if after is not None and title == SHARD:
            # A restarted shard starts empty and gets its calls' undone notifications again.
            calls = [
                (s.get("calls"), a.get("calls")) for s, a in zip(info["shards"], after["shards"])
            ]
            kill.note = f"live calls per shard {live}; calls per shard before -> after {calls}"
        elif after is not None:
            batches = (info["writer"].get("batches"), after["writer"].get("batches"))
            kill.note = f"writer batches {batches[0]} -> {batches[1]}; live calls per shard {live}"
        kill.stored_after = stored(svc, traffic)
        out.kills.append(kill)
    out.problems += check_reports(running.reports(), traffic.lines)
    if svc.proc is None or svc.proc.pid != service_pid or svc.proc.poll() is not None:
        out.problems.append("the service process itself did not survive")
    return finish(out, svc, traffic, reference, started)


# --- scenario: calls end while their shards are down -----------------------------------------


def _transfer(
    call_id: int, start: datetime, phone: str, first: int, second: int, rng: random.Random
) -> tuple[list[uis.Event], list[uis.Event]]:
    """A transfer as `uis.transfer` writes it, at fixed times: the part until the first
    operator has left (leg out, pick-up of both, leg end of the first, within 35 s) and the
    rest (the second's leg end at 120 s, the call end, a recording of each part)."""
    legs = (call_id * 10, call_id * 10 + 1, call_id * 10 + 2)

    def at(kind: str, second_: float, employee: int | None, **fields: Any) -> uis.Event:
        when = start + timedelta(seconds=second_)
        doc = uis.body(
            kind,
            call_session_id=call_id,
            time=when,
            phone=phone,
            employee_id=employee,
            employee_name=uis.operator_name(employee) if employee is not None else None,
            **fields,
        )
        return when, doc

    def record(employee: int, leg: int, talk: int, second_: float) -> uis.Event:
        link = f"{uis.MEDIA_URL}/{call_id}/{rng.getrandbits(128):032x}"
        return at(
            "recording",
            second_,
            employee,
            is_lost=False,
            talk_seconds=talk,
            total_seconds=round(second_),
            file_link=link,
            record_file_links=[link],
            leg_id=leg,
        )

    head = [
        at("leg_start", 1, first, leg_id=legs[1]),
        at("answer", 3, first, leg_id=legs[1]),
        at("leg_start", 30, second, leg_id=legs[2]),
        at("answer", 33, second, leg_id=legs[2]),
        at(
            "leg_end",
            35,
            first,
            leg_id=legs[1],
            is_operator=True,
            talk_seconds=32,
            total_seconds=34,
            wait_seconds=2,
        ),
    ]
    tail = [
        at(
            "leg_end",
            120,
            second,
            leg_id=legs[2],
            is_operator=True,
            talk_seconds=87,
            total_seconds=90,
            wait_seconds=3,
        ),
        at(
            "call_end",
            121,
            second,
            is_lost=False,
            talk_seconds=119,
            total_seconds=121,
            wait_seconds=3,
            leg_ids=list(legs),
        ),
        record(first, legs[1], 32, 125),
        record(second, legs[2], 87, 127),
    ]
    return head, tail


def make_gap_traffic(
    directory: Path, name: str, *, start: datetime, first_call_id: int, shards: int = 2
) -> tuple[Traffic, list[dict[str, Any]], list[dict[str, Any]]]:
    """Six transfers (R13), three on each shard, starting 2 s apart, and a voice-menu call a
    minute after them: the file (in UIS order, for the clean run), the part of every transfer
    until its first operator has left, and the rest. Every notification of the first part is
    earlier in UIS time than every one of the rest, so posting the parts one after the other
    keeps UIS's order."""
    from callrouter.actors.host import shard_of

    rng = random.Random(first_call_id)
    per_shard: dict[int, list[int]] = {i: [] for i in range(shards)}
    candidate = first_call_id
    while any(len(found) < 3 for found in per_shard.values()):
        found = per_shard[shard_of(f"call:{candidate}", shards)]
        if len(found) < 3:
            found.append(candidate)
        candidate += 1
    heads: list[uis.Event] = []
    tails: list[uis.Event] = []
    for number, call_id in enumerate(sorted(i for f in per_shard.values() for i in f)):
        head, tail = _transfer(
            call_id,
            start + timedelta(seconds=2 * number),
            f"79{rng.randrange(10**9):09d}",
            1001 + number % 3,
            1004 + number % 3,
            rng,
        )
        heads += head
        tails += tail
    tails += uis.voice_menu_hangup(
        candidate,
        max(at for at, _ in tails) + timedelta(seconds=60),
        f"79{rng.randrange(10**9):09d}",
    )
    heads.sort(key=lambda e: e[0])
    tails.sort(key=lambda e: e[0])
    assert heads[-1][0] < tails[0][0]
    path = directory / f"{name}.jsonl"
    with path.open("wb") as out:
        write_jsonl(
            iter({"t": (at - start).total_seconds(), "body": doc} for at, doc in heads + tails),
            out,
        )
    return traffic_from_file(name, path), [d for _, d in heads], [d for _, d in tails]


def calls_end_while_shards_down(
    svc: ServiceLike,
    traffic: Traffic,
    heads: list[dict[str, Any]],
    tails: list[dict[str, Any]],
    prepared: Prepared,
    reference: Reference,
) -> Outcome:
    """The first part of every transfer (`make_gap_traffic`) is posted and hosted by the
    shards; then every shard worker is SIGKILLed and the rest (the second operators' leg
    ends, the call ends, the recordings, then a call a minute later in UIS time) is posted,
    in UIS order, while they are down: the calls end while their shards are away for longer,
    in UIS time, than the lateness bound. The cases must equal the clean run's."""
    started = time.monotonic()
    out = begin(Outcome("shard_gap", traffic.lines), svc)
    hook = prepared.webhook_path

    def post_all(docs: list[dict[str, Any]]) -> None:
        for doc in docs:
            status, answer = http(svc, "POST", hook, body=uis.encode(doc), auth=False)
            if status != 200:
                out.problems.append(f"{doc['notification_name']}: HTTP {status} {answer[:200]}")

    post_all(heads)
    deadline = time.monotonic() + 60
    info = system(svc)
    while time.monotonic() < deadline and not (
        info and all(s["live_calls"] >= 3 for s in info["shards"])
    ):
        time.sleep(POLL)
        info = system(svc)
    assert info is not None and all(s["live_calls"] >= 3 for s in info["shards"]), (
        f"the transfers are not live on every shard: {info}"
    )
    count = stored(svc, traffic) or 0
    pids = [p.pid for p in workers(svc, SHARD)]
    began = time.monotonic()
    for pid in pids:
        os.kill(pid, signal.SIGKILL)
    post_all(tails)
    posted = time.monotonic() - began
    back = [p.pid for p in workers(svc, SHARD) if p.pid not in pids]
    kill = Kill(
        f"every {SHARD} worker at once (pids {pids})",
        count,
        traffic.lines,
        True,  # the rest of the file is posted after it, by construction
        info["writer"]["live_calls"],
        note=f"the rest posted {posted:.2f} s after the kill; "
        f"{len(back)} new shard worker(s) by then; live calls per shard "
        f"{[s['live_calls'] for s in info['shards']]}",
    )
    deadline = time.monotonic() + RESTART_TIMEOUT
    while time.monotonic() < deadline:
        now = [p.pid for p in workers(svc, SHARD)]
        if len(now) == len(pids) and not set(now) & set(pids) and system(svc) is not None:
            break
        time.sleep(0.1)
    kill.back_after = time.monotonic() - began
    kill.stored_after = stored(svc, traffic)
    out.kills.append(kill)
    if back:
        out.notes.append("a shard came back before the rest was posted: not the intended order")
    return finish(out, svc, traffic, reference, started)


# --- scenarios: duplicates and disorder ----------------------------------------------------


def duplicate(
    svc: ServiceLike, traffic: Traffic, prepared: Prepared, reference: Reference
) -> Outcome:
    """The file replayed twice at once, compared; then once more after every call was decided,
    compared again."""
    started = time.monotonic()
    out = begin(Outcome("duplicate", traffic.lines * 3), svc)
    out.problems += check_reports(
        replay_now(svc, traffic.path, prepared.webhook_path, copies=2), traffic.lines
    )
    finish(out, svc, traffic, reference, started)
    if out.diff:
        out.diff = "after two replays at once:\n" + out.diff
        return out
    out.problems += check_reports(
        replay_now(svc, traffic.path, prepared.webhook_path), traffic.lines
    )
    finish(out, svc, traffic, reference, started)
    if out.diff:
        out.diff = "after the third replay (every call decided before it):\n" + out.diff
    return out


def shuffled_schedule(
    traffic: Traffic, out_path: Path, *, seed: int, max_delay: float, resend_share: float
) -> tuple[int, float]:
    """Write a delivery schedule of the file: each notification (and, for `resend_share` of
    them, a second copy) delivered at its UIS time plus a random delay in [0, max_delay), in
    that order. Delivered one at a time in this order, a notification arrives after exactly
    those scheduled before it, whose UIS times are at most their own delivery times, hence at
    most its own: it is late by less than its delay, so by less than `max_delay`. Returns the
    lines written and the largest lateness of the schedule (checked, not assumed)."""
    rng = random.Random(seed)
    items: list[tuple[float, int, dict[str, Any]]] = []
    for number, doc in enumerate(traffic.bodies()):
        at = notification_time(doc).timestamp()
        items.append((at + rng.uniform(0, max_delay), number, doc))
        if rng.random() < resend_share:
            items.append((at + rng.uniform(0, max_delay), number, doc))
    items.sort(key=lambda item: (item[0], item[1]))
    latest = -math.inf
    worst = 0.0
    with out_path.open("wb") as out:
        for key, _, doc in items:
            at = notification_time(doc).timestamp()
            latest = max(latest, at)
            worst = max(worst, latest - at)
            out.write(orjson.dumps({"t": key, "body": doc}) + b"\n")
    return len(items), worst


def shuffled(
    svc: ServiceLike,
    traffic: Traffic,
    prepared: Prepared,
    reference: Reference,
    *,
    seed: int = 7,
    resend_share: float = 0.1,
) -> Outcome:
    """Delayed (below the bound), reordered and resent deliveries, one at a time: the replay
    client with concurrency 1 sends exactly the file's order, and without its UIS-time window
    (`lateness=None`), which would only hold back what the schedule already bounds."""
    started = time.monotonic()
    path = traffic.path.with_name(f"{traffic.name}-shuffled.jsonl")
    max_delay = LATENESS_SECONDS - 1.0
    lines, worst = shuffled_schedule(
        traffic, path, seed=seed, max_delay=max_delay, resend_share=resend_share
    )
    out = begin(Outcome("shuffled", lines), svc)
    out.notes.append(
        f"{lines - traffic.lines} resends; delays below {max_delay:g} s; the latest delivery "
        f"{worst:.2f} s behind the UIS time already delivered (bound {LATENESS_SECONDS} s)"
    )
    if worst >= LATENESS_SECONDS:
        out.problems.append(f"the schedule is not within the bound: {worst:.2f} s late")
    moved = _moved_within_calls(path)
    out.notes.append(f"{moved} notifications delivered before an earlier one of their call")
    out.problems += check_reports(
        replay_now(svc, path, prepared.webhook_path, concurrency=1, lateness=None), lines
    )
    return finish(out, svc, traffic, reference, started)


def _moved_within_calls(path: Path) -> int:
    """How many deliveries came before a notification of the same call with an earlier time."""
    latest: dict[int, datetime] = {}
    moved = 0
    for line in path.read_bytes().splitlines():
        doc = orjson.loads(line)["body"]
        call, at = doc["call_info"]["call_session_id"], notification_time(doc)
        if at < latest.get(call, at):
            moved += 1
        latest[call] = max(at, latest.get(call, at))
    return moved


# --- scenarios: PostgreSQL and Redis restarts ----------------------------------------------


def pg_version() -> str:
    return min(os.listdir("/etc/postgresql"))


def pg_ready(url: str = PG_DEFAULT, timeout: float = 60.0) -> bool:
    """Wait until PostgreSQL accepts connections again."""

    async def probe() -> None:
        import asyncpg

        conn = await asyncio.wait_for(asyncpg.connect(_plain_pg(url)), 5)
        await conn.close()

    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        try:
            asyncio.run(probe())
            return True
        except Exception:  # noqa: BLE001 - not up yet
            time.sleep(0.5)
    return False


def restart_postgres() -> str:
    """`pg_ctlcluster ... restart` of the machine's cluster; its output."""
    done = subprocess.run(
        ["pg_ctlcluster", "--skip-systemctl-redirect", pg_version(), "main", "restart"],
        check=False,
        capture_output=True,
        text=True,
        timeout=120,
    )
    return (done.stdout + done.stderr).strip() or f"exit {done.returncode}"


def redis_up() -> bool:
    done = subprocess.run(
        ["redis-cli", "ping"], check=False, capture_output=True, text=True, timeout=10
    )
    return done.stdout.strip() == "PONG"


def stop_redis() -> None:
    subprocess.run(
        ["redis-cli", "shutdown", "nosave"], check=False, capture_output=True, timeout=30
    )
    deadline = time.monotonic() + 30
    while redis_up() and time.monotonic() < deadline:
        time.sleep(0.1)
    assert not redis_up(), "Redis did not shut down"


def start_redis() -> None:
    """Start Redis as CI does, unless it runs; wait until it answers."""
    if redis_up():
        return
    Path("/var/lib/redis").mkdir(parents=True, exist_ok=True)
    Path("/var/log/redis").mkdir(parents=True, exist_ok=True)
    subprocess.run(REDIS_START, check=False, capture_output=True, timeout=30)
    deadline = time.monotonic() + 30
    while not redis_up() and time.monotonic() < deadline:
        time.sleep(0.1)
    assert redis_up(), "Redis did not start again"


def restarts(
    scenario: str,
    svc: ServiceLike,
    traffic: Traffic,
    prepared: Prepared,
    reference: Reference,
    *,
    count: int = 1,
    replay_seconds: float = 20.0,
) -> Outcome:
    """Restart Redis ("redis": shut down, the replay goes on a while, start again) or
    PostgreSQL ("postgres": `pg_ctlcluster restart`) mid-replay, `count` times; the service
    must recover by itself. Then a call posted afterwards must pop up on a staff WebSocket."""
    assert scenario in ("redis", "postgres")
    assert prepared.popup is not None, "prepare(popup=True) first"
    started = time.monotonic()
    out = begin(Outcome(scenario, traffic.lines), svc)
    service_pid = svc.proc.pid if svc.proc else None
    running = Background(
        svc, traffic.path, prepared.webhook_path, rate=kill_rate(traffic, replay_seconds)
    )
    try:
        for share in shares(count):
            count_now, info = wait_point(
                svc, traffic, running, share, lambda i: i["writer"]["live_calls"] > 0
            )
            assert info is not None
            kill = Kill(
                "Redis" if scenario == "redis" else "PostgreSQL",
                count_now,
                traffic.lines,
                not running.done(),
                info["writer"]["live_calls"],
            )
            began = time.monotonic()
            if scenario == "redis":
                stop_redis()
                # The webhooks do not need Redis: let the replay go on while it is away.
                goal = count_now + max(1, traffic.lines // (10 * count))
                deadline = time.monotonic() + 15
                while time.monotonic() < deadline and not running.done():
                    now = stored(svc, traffic)
                    if now is not None and now >= goal:
                        break
                    time.sleep(POLL)
                away = stored(svc, traffic)
                kill.note = f"{away} stored while Redis was down"
                start_redis()
            else:
                kill.note = restart_postgres()
                assert pg_ready(svc.database_url or PG_DEFAULT), "PostgreSQL did not come back"
            kill.back_after = time.monotonic() - began
            kill.stored_after = stored(svc, traffic)
            out.kills.append(kill)
        out.problems += check_reports(running.reports(), traffic.lines)
    finally:
        if scenario == "redis":
            start_redis()
        else:
            pg_ready(svc.database_url or PG_DEFAULT)
    finish(out, svc, traffic, reference, started)
    if svc.proc is None or svc.proc.pid != service_pid or svc.proc.poll() is not None:
        out.problems.append("the service process itself did not survive")
    popped = popup_after(svc, prepared, traffic.last + timedelta(seconds=60))
    out.notes.append(popped.line())
    if popped.event is None:
        out.problems.append(f"no popup after the restart: {popped.line()}")
    settle(svc)  # the popup calls end too: nothing acknowledged is left undone
    return out


_POPUP_IDS = itertools.count(HOSTILE_IDS + 900_000 + os.getpid() % 1000 * 100)


@dataclass
class Popped:
    event: dict[str, Any] | None
    call_ids: list[int]
    seconds: float
    seen: list[str]  # types of the messages received

    def line(self) -> str:
        got = "call.ringing received" if self.event else "NO call.ringing"
        return (
            f"popup: {got} for call {self.call_ids[-1] if self.call_ids else '-'} after "
            f"{self.seconds:.1f} s ({len(self.call_ids)} call(s) posted; messages {self.seen})"
        )


def popup_after(
    svc: ServiceLike,
    prepared: Prepared,
    when: datetime,
    timeout: float = 60.0,
    via: ServiceLike | None = None,
) -> Popped:
    """Open the popup staff member's WebSocket, post the first leg of a new incoming call to
    their operator (UIS time `when`), and wait for its `call.ringing`; one more call every 10 s
    until `timeout`. Every call posted is then ended (missed), so the inbox can drain. The
    webhooks go to `via` when given (another frontend: the event crosses Redis)."""
    assert prepared.popup is not None
    popup = prepared.popup

    async def run() -> Popped:
        import aiohttp

        posted: list[int] = []
        seen: list[str] = []
        began = time.monotonic()
        ws_url = svc.base_url.replace("http", "ws", 1) + f"/api/v1/events?token={popup.token}"
        hook = (via or svc).base_url + prepared.webhook_path
        async with aiohttp.ClientSession() as session:
            async with session.ws_connect(ws_url, heartbeat=10) as ws:
                while time.monotonic() - began < timeout:
                    call_id = next(_POPUP_IDS)
                    posted.append(call_id)
                    body = uis.body(
                        "leg_start",
                        call_session_id=call_id,
                        time=when + timedelta(seconds=len(posted)),
                        phone=f"{PROBE_PREFIX}9{call_id % 10**6:06d}",
                        employee_id=popup.employee_id,
                        employee_name="Хаос Попапов",
                        leg_id=call_id * 10 + 1,
                    )
                    async with session.post(hook, data=uis.encode(body)) as resp:
                        await resp.read()
                    wait_until = time.monotonic() + 10
                    while time.monotonic() < min(wait_until, began + timeout):
                        try:
                            msg = await ws.receive(timeout=max(0.1, wait_until - time.monotonic()))
                        except TimeoutError:
                            break
                        if msg.type not in (aiohttp.WSMsgType.TEXT, aiohttp.WSMsgType.BINARY):
                            seen.append(str(msg.type))
                            break
                        event = orjson.loads(msg.data)
                        seen.append(str(event.get("type")))
                        if (
                            event.get("type") == "call.ringing"
                            and event.get("call_session_id") in posted
                        ):
                            result = Popped(event, posted, time.monotonic() - began, seen)
                            await _end_calls(session, hook, posted, when, popup.employee_id)
                            return result
            await _end_calls(session, hook, posted, when, popup.employee_id)
        return Popped(None, posted, time.monotonic() - began, seen)

    return asyncio.run(run())


async def _end_calls(
    session: Any, hook: str, call_ids: list[int], when: datetime, employee_id: int
) -> None:
    for number, call_id in enumerate(call_ids, 1):
        at = when + timedelta(seconds=number + 5)
        phone = f"{PROBE_PREFIX}9{call_id % 10**6:06d}"
        for doc in (
            uis.body(
                "leg_end",
                call_session_id=call_id,
                time=at,
                phone=phone,
                employee_id=employee_id,
                leg_id=call_id * 10 + 1,
                is_operator=True,
                talk_seconds=0,
                total_seconds=5,
                wait_seconds=5,
            ),
            uis.body(
                "call_end",
                call_session_id=call_id,
                time=at + timedelta(milliseconds=500),
                phone=phone,
                is_lost=True,
                talk_seconds=0,
                total_seconds=6,
            ),
        ):
            async with session.post(hook, data=uis.encode(doc)) as resp:
                await resp.read()


# --- hostile bodies --------------------------------------------------------------------------


@dataclass
class Poison:
    """One hostile body as posted, and what the service must answer."""

    label: str
    raw: bytes
    expect: int  # the status it must get
    code: str = ""  # the error code the parser gives it (4xx)
    notification: Notification | None = None  # what the parser makes of it (2xx)
    unknown_caller: bool = False  # a call whose number has no digits: «… с неизвестного номера»
    status: int = 0  # what the service answered
    answer: str = ""
    phase: str = ""  # before / during / after the replay


def predict(raw: bytes, now: datetime) -> tuple[int, str, Notification | None]:
    """What the webhook must answer for `raw` (its parser is pure: the same rules here):
    (status, error code, notification). A parser exception other than its own errors is a
    parser bug, which the service keeps in the quarantine with a 200: reported as "bug"."""
    if len(raw) > MAX_BODY:
        return 413, "body_too_large", None
    try:
        n = parse_notification(parse_body(raw), ACCOUNT_TZ, now)
    except BodyError:
        return 400, "invalid_json", None
    except NotificationError as exc:
        return 422, exc.code, None
    except Exception as exc:  # noqa: BLE001 - a bug of the parser: named, not hidden
        return 200, f"bug: {exc!r}", None
    return 200, "", n


_WEIRD_TEXT = (
    "",
    " ",
    "null",
    "true",
    "0",
    "-1",
    "1e3",
    "{{call_session_id}}",
    "{{contact_phone_number}}",
    "{{notification_time}}",
    "call_session_id",
    "notification_time",
    "anonymous",
    "+",
    "sip:operator@pbx",
    "٧٩٢٦١٢٣٤٥٦٧",
    "𝟕𝟗𝟐𝟔",
    "📞☎",
    "\u202e12345",
    "a\u0000b",
    "\\",
    '"',
    "Завершение звонка",
    "  завершение   ЗВОНКА ",
    "Исходящее плечо",
    "ПОДНЯТИЕ ТРУБКИ",
    "Записанный разговор",
    "Звонок завершён",
    "2026-02-30 10:00:00.000",
    "0001-01-01 00:00:00.000",
    "9999-12-31 23:59:00.000",
    "2026-11-02T10:00:00+03:00",
    "in",
    "out",
    "sideways",
    "https://media.uiscom.ru/1/" + "0" * 32,
    "x" * 70,
    "7" * 65,
    "y" * 1200,
)
_KEYS = (
    "notification_name",
    "notification_time",
    "call_session_id",
    "contact_phone_number",
    "employee_id",
    "is_lost",
    "talk_time_duration",
    "total_time_duration",
    "direction",
    "leg_id",
    "file_link",
    "record_file_links",
    "call_info",
    "contact_info",
    "employee_info",
    "",
    "ключ",
    "__proto__",
)


def random_value(rng: random.Random, depth: int = 0) -> Any:
    """Random JSON (or JSON-like: NaN, integers beyond 64 bits) of every type."""
    pick = rng.randrange(10 if depth < 3 else 7)
    if pick == 0:
        return None
    if pick == 1:
        return rng.random() < 0.5
    if pick == 2:
        return rng.choice(
            (0, 1, -1, 7, 604_801, 10**12, 2**63 - 1, 2**63, 2**64 + 1, -(2**63) - 1, 10**40)
        )
    if pick == 3:
        return rng.randrange(-5, 10**6)
    if pick == 4:
        return rng.choice((1.5, -0.0, 1e308, 3.0, 1e-9, math.nan, math.inf))
    if pick in (5, 6):
        return rng.choice(_WEIRD_TEXT)
    if pick == 7:  # printable ASCII, Cyrillic and Arabic-Indic digits mixed
        ranges = ((32, 127), (0x400, 0x4FF), (0x660, 0x66A))
        return "".join(chr(rng.randrange(*rng.choice(ranges))) for _ in range(rng.randrange(12)))
    if pick == 8:
        return [random_value(rng, depth + 1) for _ in range(rng.randrange(0, 4))]
    return {rng.choice(_KEYS): random_value(rng, depth + 1) for _ in range(rng.randrange(0, 5))}


def _paths(doc: Any, prefix: tuple[Any, ...] = ()) -> list[tuple[Any, ...]]:
    found = [prefix] if prefix else []
    if isinstance(doc, dict):
        for key, value in doc.items():
            found += _paths(value, (*prefix, key))
    elif isinstance(doc, list):
        for index, value in enumerate(doc):
            found += _paths(value, (*prefix, index))
    return found


def _set(doc: Any, path: tuple[Any, ...], value: Any) -> Any:
    if not path:
        return value
    head, *rest = path
    doc[head] = _set(doc[head], tuple(rest), value)
    return doc


def _delete(doc: Any, path: tuple[Any, ...]) -> None:
    *parents, last = path
    for key in parents:
        doc = doc[key]
    del doc[last]


def mutate(rng: random.Random, doc: dict[str, Any]) -> Any:
    """One to three random changes to a real body: a value of another type, a key removed or
    renamed, an extra key, a section replaced."""
    for _ in range(rng.randrange(1, 4)):
        paths = _paths(doc)
        op = rng.randrange(5)
        if op == 0 and paths:
            doc = _set(doc, rng.choice(paths), random_value(rng))
        elif op == 1 and paths:
            _delete(doc, rng.choice(paths))
        elif op == 2 and isinstance(doc, dict) and doc:
            key = rng.choice(list(doc))
            doc[rng.choice(_KEYS) + rng.choice(("", " ", "_x", "Name"))] = doc.pop(key)
        elif op == 3 and isinstance(doc, dict):
            doc[rng.choice(_KEYS)] = random_value(rng)
        elif isinstance(doc, dict):
            doc["notification_name"] = rng.choice(_WEIRD_TEXT)
        if not isinstance(doc, dict):
            break
    return doc


def _encode(doc: Any) -> bytes:
    """JSON as a careless template engine writes it: integers of any size, NaN and Infinity
    (which no JSON parser takes) as is."""
    return json.dumps(doc, ensure_ascii=False).encode()


def _raw_mutation(rng: random.Random, raw: bytes) -> bytes:
    """Damage the text itself: cut it, insert a byte, unquote a value into a placeholder."""
    op = rng.randrange(4)
    if op == 0 and len(raw) > 2:
        return raw[: rng.randrange(1, len(raw))]
    if op == 1:
        at = rng.randrange(len(raw) + 1)
        return (
            raw[:at] + bytes([rng.choice((0, 0xFF, 0xC3, ord("}"), ord(","), ord('"')))]) + raw[at:]
        )
    if op == 2:
        return raw.replace(
            b'"notification_time":"', b'"notification_time":{{notification_time}}"', 1
        )
    return raw.replace(b"null", b"{{external_id}}", 1)


_DELETE = object()  # a field removed instead of changed
_YEAR_1 = "0001-01-01 00:00:00.000"
_YEAR_9999 = "9999-12-31 23:59:00.000"
_FEB_30 = "2026-02-30 10:00:00.000"
_LONG = "+7 (926) " + "0" * 191


def _sub(old: str, new: str) -> Callable[[str], bytes]:
    """Replace `old` (which must be there) by `new` in a body's text."""

    def make(text: str) -> bytes:
        assert old in text, f"{old!r} not in the body"
        return text.replace(old, new, 1).encode()

    return make


class HostileBodies:
    """The hostile bodies of one run: the classes the issue names, then `random_count` random
    ones (seeded). Valid bodies (callers without digits, accepted random ones) are single
    notifications at the UIS time they are built with, never ahead of the event clock, so
    they cannot push it past other calls; an accepted random body that is not a call end is
    followed by one, so that every call it opens is decided."""

    def __init__(self, seed: int, random_count: int, forbidden: Callable[[int], bool]) -> None:
        self.rng = random.Random(seed)
        self.seed = seed
        self.random_count = random_count
        self.forbidden = forbidden  # call ids of the traffic: no hostile body may touch them
        self.ids = iter(range(HOSTILE_IDS, HOSTILE_IDS + 10**6))
        self.numbers = iter(range(1, 10**6))

    def call_id(self) -> int:
        return next(self.ids)

    def probe_phone(self) -> str:
        return f"{PROBE_PREFIX}{next(self.numbers):07d}"

    def _call_end(
        self, when: datetime, phone: Any, *, answered: bool = False, **fields: Any
    ) -> dict[str, Any]:
        doc = uis.body(
            "call_end",
            call_session_id=self.call_id(),
            time=when,
            phone="79000000000",
            employee_id=1001 if answered else None,
            employee_name=uis.operator_name(1001) if answered else None,
            is_lost=not answered,
            talk_seconds=30 if answered else 0,
            total_seconds=45 if answered else 12,
            wait_seconds=10,
            **fields,
        )
        doc["contact_info"]["contact_phone_number"] = phone
        return doc

    def named(self) -> list[tuple[str, Callable[[datetime], tuple[bytes, int, bool]]]]:
        """(label, build(when) -> (raw body, expected status, caller without digits)) for each
        class the issue names."""
        built: list[tuple[str, Callable[[datetime], tuple[bytes, int, bool]]]] = []
        # A caller without digits (or none at all) is an unknown caller, not bad input.
        for label, phone, answered in (
            ("caller anonymous (missed)", "anonymous", False),
            ("caller anonymous again (missed)", "anonymous", False),
            ("caller anonymous (answered)", "anonymous", True),
            ('caller "+"', "+", False),
            ("caller sip:operator@pbx", "sip:operator@pbx", False),
            ("caller in Arabic-Indic digits", "٧٩٢٦١٢٣٤٥٦٧", False),
            ("caller a quoted {{placeholder}}", "{{contact_phone_number}}", False),
            ("caller a\\u0000b (a NUL character, no digits)", "a\u0000b", False),
        ):
            built.append((label, self._unknown(phone, answered)))
        # One field of a valid call end changed: (section or None for the top, key, value).
        for label, section, key, value, expect in (
            ("total_time_duration 10^12", "call_info", "total_time_duration", 10**12, 422),
            ("notification_time in year 1", None, "notification_time", _YEAR_1, 422),
            ("notification_time 9999-12-31 23:59", None, "notification_time", _YEAR_9999, 422),
            ("notification_time 30 February", None, "notification_time", _FEB_30, 422),
            ("notification_time a number", None, "notification_time", 1764662400, 422),
            ("caller number of 65 digits", "contact_info", "contact_phone_number", "7" * 65, 422),
            ("caller number of 200 characters", "contact_info", "contact_phone_number", _LONG, 422),
            ("unknown notification name", None, "notification_name", "Звонок завершён", 422),
            ("notification_name missing", None, "notification_name", _DELETE, 422),
            ("call_session_id a word", "call_info", "call_session_id", "abc", 422),
            ("call_session_id 2^64", "call_info", "call_session_id", 2**64, 422),
            ("call_session_id negative", "call_info", "call_session_id", -5, 422),
            ("call_session_id 1.5", "call_info", "call_session_id", 1.5, 422),
            ("call_session_id an object", "call_info", "call_session_id", {"id": 1}, 422),
            ("is_lost a word", "call_info", "is_lost", "maybe", 422),
            ("talk_time_duration a word", "call_info", "talk_time_duration", "long", 422),
            ("employee_id an array", "employee_info", "employee_id", [1001], 422),
            ("record_file_links an object", "call_record_file_info", "record_file_links", {}, 422),
            ("valid call end over 64 KiB", None, "padding", "x" * (MAX_BODY + 100), 413),
        ):
            built.append((label, self._changed(section, key, value, expect)))
        # The text itself: (label, make(valid call end text) -> raw, expected status).
        for label, make, expect in (
            ("unquoted {{placeholder}}", _sub('"is_lost":true', '"is_lost":{{is_lost}}'), 400),
            ("bare variable name", _sub('"external_id":null', '"external_id":external_id'), 400),
            ("NaN", _sub('"talk_time_duration":0', '"talk_time_duration":NaN'), 400),
            ("truncated JSON", lambda text: text[:-40].encode(), 400),
            # JSON, but not a notification: 422 (API.md), not 400.
            ("JSON array, not an object", lambda text: f"[{text}]".encode(), 422),
            ("JSON null", lambda text: b"null", 422),
            ("plain text", lambda text: "Завершение звонка 79260000000".encode(), 400),
            ("empty body", lambda text: b"", 400),
            ("XML", lambda text: b"<call><call_session_id>1</call_session_id></call>", 400),
            ("NUL bytes and invalid UTF-8", lambda text: b"\x00\xff\xfe{\x00}\xc3(", 400),
            # Below 64 KiB, so only the parser's depth limit refuses it.
            ("JSON nested 30000 deep", lambda text: b"[" * 30_000 + b"]" * 30_000, 400),
            ("garbage over 64 KiB", lambda text: b"\xff" * (MAX_BODY + 1), 413),
        ):
            built.append((label, self._text(make, expect)))
        return built

    def _unknown(self, phone: str, answered: bool) -> Callable[[datetime], tuple[bytes, int, bool]]:
        return lambda when: (uis.encode(self._call_end(when, phone, answered=answered)), 200, True)

    def _changed(
        self, section: str | None, key: str, value: Any, expect: int
    ) -> Callable[[datetime], tuple[bytes, int, bool]]:
        def build(when: datetime) -> tuple[bytes, int, bool]:
            doc = self._call_end(when, self.probe_phone())
            place = doc if section is None else doc[section]
            if value is _DELETE:
                del place[key]
            else:
                place[key] = value
            return _encode(doc), expect, False

        return build

    def _text(
        self, make: Callable[[str], bytes], expect: int
    ) -> Callable[[datetime], tuple[bytes, int, bool]]:
        def build(when: datetime) -> tuple[bytes, int, bool]:
            text = uis.encode(self._call_end(when, self.probe_phone())).decode()
            raw = make(text)
            assert raw != text.encode(), "the damage must change the body"
            return raw, expect, False

        return build

    def random_one(self, number: int, when: datetime, now: datetime) -> Poison:
        """Random body `number` (seeded by it): random JSON, or a real body mutated."""
        rng = random.Random(self.seed * 1_000_003 + number)
        if rng.random() < 0.25:
            doc: Any = random_value(rng)
            label = "random JSON"
        else:
            kind = rng.choice(list(uis.NAMES))
            doc = uis.body(
                kind,
                call_session_id=self.call_id(),
                time=when,
                phone=self.probe_phone(),
                employee_id=rng.choice((1001, 1002, 7777, None)),
                leg_id=rng.randrange(1, 10**6),
                is_operator=rng.choice((True, False, None)),
                is_lost=rng.choice((True, False)),
                talk_seconds=rng.randrange(0, 300),
                total_seconds=rng.randrange(0, 400),
                file_link="https://media.uiscom.ru/1/" + "a" * 32 if kind == "recording" else None,
                flat=rng.random() < 0.3,
            )
            doc = mutate(rng, doc)
            label = f"mutated {kind}"
        raw = _encode(doc)
        if rng.random() < 0.15:
            raw = _raw_mutation(rng, raw)
            label += ", text damaged"
        status, code, n = predict(raw, now)
        if n is not None and isinstance(doc, dict) and not self._harmless(n, when):
            # Accepted, but at a time of its own (no time: the server's): a body UIS sends
            # at the time it happened, so it gets the time of the moment.
            doc["notification_time"] = uis.format_time(when)
            raw = _encode(doc)
            status, code, n = predict(raw, now)
            label += ", time set"
        if n is not None and not self._harmless(n, when):
            # Still accepted out of the moment, or touching the traffic: a valid body of
            # our own instead.
            return self.accepted_call_end(label + " (replaced by a voice-menu call end)", when, now)
        return Poison(f"#{number} {label}", raw, status, code, n)

    def _harmless(self, n: Notification, when: datetime) -> bool:
        """An accepted body must not be ahead of the moment, nor touch the traffic."""
        at = when.replace(tzinfo=ACCOUNT_TZ)
        if n.time > at + timedelta(seconds=1):
            return False
        if self.forbidden(n.call_session_id):
            return False
        return not (n.phone and (normalize_phone(n.phone) or "").startswith("79"))

    def accepted_call_end(self, label: str, when: datetime, now: datetime) -> Poison:
        raw = uis.encode(self._call_end(when, self.probe_phone()))
        status, code, n = predict(raw, now)
        return Poison(label, raw, status, code, n)

    def closer(self, n: Notification, when: datetime) -> bytes | None:
        """A call end for the call an accepted body opened (None: it was one)."""
        if n.kind is Kind.CALL_END:
            return None
        doc = uis.body(
            "call_end",
            call_session_id=n.call_session_id,
            time=when,
            phone="79000000000",
            is_lost=True,
            talk_seconds=0,
            total_seconds=5,
        )
        doc["contact_info"]["contact_phone_number"] = n.phone
        return uis.encode(doc)


@dataclass
class Probe:
    """A normal call posted right after a poison: it must get its case."""

    phone: str
    call_id: int
    after: str  # the poison's label


@dataclass
class HostileOutcome(Outcome):
    poisons: list[Poison] = field(default_factory=list)
    probes: list[Probe] = field(default_factory=list)
    closers: int = 0


def _random_poison(bodies: HostileBodies, number: int, when: datetime, now: datetime) -> Poison:
    return bodies.random_one(number, when, now)


def event_moment(svc: ServiceLike, fallback: datetime) -> datetime:
    """A UIS time (account local, naive) one second behind the service's event clock: within
    the lateness bound, never ahead of the traffic. `fallback` before any notification."""
    info = system(svc)
    clock = info["writer"]["event_clock"] if info else None
    if not clock:
        return fallback
    moment = datetime.fromisoformat(clock).astimezone(ACCOUNT_TZ).replace(tzinfo=None)
    return moment - timedelta(seconds=1)


def hostile(
    svc: ServiceLike,
    traffic: Traffic,
    prepared: Prepared,
    reference: Reference,
    *,
    seed: int = 3,
    random_count: int = 60,
    replay_seconds: float = 15.0,
    edge: int = 6,
    name: str = "hostile",
) -> HostileOutcome:
    """Hostile bodies, each followed by a probe call, posted `edge` before the replay, the
    bulk during it and at least `edge` after it: never a 5xx, the status the parser gives,
    every 4xx kept, every probe its case, callers without digits «… с неизвестного номера»
    each in a case of their own, and the traffic's cases equal to the clean run."""
    started = time.monotonic()
    lo, hi = traffic.id_range
    bodies = HostileBodies(seed, random_count, lambda c: lo <= c <= hi)
    out = begin(HostileOutcome(name, traffic.lines), svc)
    fallback = traffic.first - timedelta(seconds=120)
    hook = prepared.webhook_path
    plan: list[Callable[[datetime, datetime], Poison]] = []
    for label, build in bodies.named():

        def named(when: datetime, now: datetime, label: str = label, build: Any = build) -> Poison:
            raw, expect, unknown = build(when)
            _, code, n = predict(raw, now)
            return Poison(label, raw, expect, code, n, unknown)

        plan.append(named)
    for number in range(random_count):
        plan.append(functools.partial(_random_poison, bodies, number))
    random.Random(seed).shuffle(plan)

    def post(raw: bytes) -> tuple[int, str]:
        return http(svc, "POST", hook, body=raw, auth=False)

    def one(make: Callable[[datetime, datetime], Poison], phase: str) -> None:
        when = event_moment(svc, fallback)
        poison = make(when, datetime.now(UTC))
        poison.phase = phase
        poison.status, poison.answer = post(poison.raw)
        out.poisons.append(poison)
        if poison.status == 200 and poison.notification is not None:
            closing_body = bodies.closer(poison.notification, when)
            if closing_body is not None:
                status, answer = post(closing_body)
                out.closers += 1
                if status != 200:
                    out.problems.append(f"closing call end of {poison.label}: {status} {answer}")
        probe = Probe(bodies.probe_phone(), bodies.call_id(), poison.label)
        doc = uis.body(
            "call_end",
            call_session_id=probe.call_id,
            time=when,
            phone=probe.phone,
            is_lost=True,
            talk_seconds=0,
            total_seconds=12,
        )
        status, answer = post(uis.encode(doc))
        if status != 200:
            out.problems.append(f"probe after {poison.label}: HTTP {status} {answer[:200]}")
        out.probes.append(probe)

    queue = list(plan)
    for make in queue[:edge]:
        one(make, "before")
    queue = queue[edge:]
    running = Background(svc, traffic.path, hook, rate=kill_rate(traffic, replay_seconds))
    while len(queue) > edge and not running.done():
        one(queue.pop(0), "during")
    reports = running.reports()
    for make in queue:
        one(make, "after")
    # Bodies refused at one moment are kept by one writer batch: an ordinary bad body posted
    # together with one that carries NUL bytes must not share its fate.
    for pair in range(3):
        ordinary = f"not JSON, posted together with NUL bytes ({pair})".encode()
        nul = b"\x00" + f"NUL bytes ({pair})".encode() + b"\x00"
        with ThreadPoolExecutor(2) as pool:
            answers = list(pool.map(post, (ordinary, nul)))
        for raw, (status, answer), label in zip(
            (ordinary, nul), answers, ("an ordinary bad body", "its NUL-bytes companion")
        ):
            out.poisons.append(
                Poison(
                    f"{label}, posted at one moment (pair {pair})",
                    raw,
                    400,
                    "invalid_json",
                    status=status,
                    answer=answer,
                    phase="after",
                )
            )
    out.problems += check_reports(reports, traffic.lines)
    out.notifications = traffic.lines + len(out.poisons) + len(out.probes) + out.closers
    phases = Counter(p.phase for p in out.poisons)
    out.notes.append(
        f"{len(out.poisons)} hostile bodies ({dict(phases)}), statuses "
        f"{dict(Counter(p.status for p in out.poisons))}, {len(out.probes)} probe calls, "
        f"{out.closers} closing call ends"
    )
    if not phases["during"]:
        out.problems.append("no hostile body was posted during the replay")
    for poison in out.poisons:
        if poison.status >= 500 or poison.status == 0:
            out.problems.append(f"{poison.label}: HTTP {poison.status} {poison.answer[:300]}")
        elif poison.status != poison.expect:
            out.problems.append(
                f"{poison.label}: HTTP {poison.status} (expected {poison.expect}) "
                f"{poison.answer[:300]} body {poison.raw[:200]!r}"
            )
        if poison.code.startswith("bug"):
            out.problems.append(f"{poison.label}: the parser raised {poison.code}")
    finish(out, svc, traffic, reference, started)
    out.problems += _kept_problems(svc, out.poisons, out.rejected_before)
    out.problems += _probe_problems(svc, out)
    return out


def _kept_problems(svc: ServiceLike, poisons: list[Poison], before: int) -> list[str]:
    """Every body refused with a 4xx is kept at GET /api/v1/rejected with its status (a body
    over 64 KiB as its first 64 KiB; NULs as U+FFFD, as `body_text` keeps them), and nothing else
    is (rows after id `before`)."""

    def text(p: Poison) -> str:
        return body_text(p.raw[:MAX_BODY] if len(p.raw) > MAX_BODY else p.raw)

    want = Counter((p.status, text(p)) for p in poisons if 400 <= p.status < 500)
    got = Counter((r["status"], r["body"]) for r in rejected(svc) if r["id"] > before)
    failed = {text(p): p for p in poisons if p.status >= 500}
    problems = []
    for (status, body), n in (want - got).items():
        problems.append(f"refused with {status} but not kept ({n}x): {body[:200]!r}")
    kept = {body for _, body in got}
    for body, p in failed.items():
        if body not in kept and 400 <= p.expect < 500:
            problems.append(
                f"{p.label}: answered {p.status} and not kept (expected a kept {p.expect})"
            )
    for (status, body), n in (got - want).items():
        if body in failed:
            problems.append(
                f"kept as a {status} although the webhook answered {failed[body].status} "
                f"({failed[body].label}): {body[:160]!r}"
            )
        else:
            problems.append(f"kept but not refused ({n}x): {status} {body[:200]!r}")
    return problems


def _probe_problems(svc: ServiceLike, out: HostileOutcome) -> list[str]:
    """Each probe call has its own missed-call case; each caller without digits a case
    «… с неизвестного номера» of its own."""
    prints = fingerprint.read_database(location(svc))
    by_call: dict[int, list[fingerprint.CasePrint]] = {}
    for case in prints.cases:
        for message in case.messages:
            if message.call is not None:
                by_call.setdefault(message.call.call_session_id, []).append(case)
    problems = []
    for probe in out.probes:
        cases = by_call.get(probe.call_id, [])
        subjects = [c.subject for c in cases]
        if subjects != [f"Пропущенный звонок с {probe.phone}"]:
            problems.append(f"the call after {probe.after}: cases {subjects}")
    unknown = [p for p in out.poisons if p.unknown_caller and p.status == 200]
    for poison in unknown:
        assert poison.notification is not None
        cases = by_call.get(poison.notification.call_session_id, [])
        if len(cases) != 1 or not cases[0].subject.endswith(UNKNOWN_NUMBER):
            problems.append(f"{poison.label}: cases {[c.subject for c in cases]}")
        elif len(cases[0].messages) != 1 or cases[0].phones:
            problems.append(
                f"{poison.label}: grouped or given a user: {cases[0].title()} with "
                f"{len(cases[0].messages)} messages"
            )
    if len(unknown) < 2:
        problems.append(f"only {len(unknown)} callers without digits were accepted")
    return problems


# --- the command line ----------------------------------------------------------------------

SCENARIOS = (
    "hostile",
    "service_kill",
    "shard_kill",
    "writer_kill",
    "duplicate",
    "shuffled",
    "shard_gap",
    "redis",
    "postgres",
)


class PgDatabases:
    """Fresh PostgreSQL databases next to the one `url` names, dropped at the end."""

    def __init__(self, url: str) -> None:
        self.url = url
        self.made: list[str] = []

    async def _admin(self, sql: str) -> None:
        import asyncpg

        conn = await asyncio.wait_for(asyncpg.connect(_plain_pg(self.url)), 10)
        try:
            await conn.execute(sql)
        finally:
            await conn.close()

    def new(self, name: str) -> str:
        database = f"callrouter_chaos_{name}_{uuid.uuid4().hex[:8]}"
        asyncio.run(self._admin(f'CREATE DATABASE "{database}"'))
        self.made.append(database)
        parts = urllib.parse.urlsplit(_plain_pg(self.url))
        return urllib.parse.urlunsplit(("postgresql", parts.netloc, f"/{database}", "", ""))

    def drop(self) -> None:
        if self.made and pg_ready(self.url):
            for database in self.made:
                asyncio.run(self._admin(f'DROP DATABASE IF EXISTS "{database}" WITH (FORCE)'))
        self.made = []


def _parse(argv: list[str] | None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--calls", type=int, default=2000, help="calls in the traffic file")
    parser.add_argument("--seed", type=int, default=11)
    parser.add_argument(
        "--calls-per-second", type=float, default=1.0, help="UIS-time arrival rate (overlap)"
    )
    parser.add_argument(
        "--database-url",
        default=None,
        help="run every service on a fresh PostgreSQL database next to this one (default: "
        "SQLite; the postgres scenario then uses $CALLROUTER_TEST_PG_URL or the local server)",
    )
    parser.add_argument("--redis-url", default=REDIS_DEFAULT)
    parser.add_argument("--scenarios", default=",".join(SCENARIOS))
    parser.add_argument("--shard-rounds", type=int, default=3, help="kills of every shard")
    parser.add_argument("--writer-kills", type=int, default=3)
    parser.add_argument("--service-kills", type=int, default=2)
    parser.add_argument("--pg-restarts", type=int, default=3)
    parser.add_argument("--redis-restarts", type=int, default=3)
    parser.add_argument("--random-bodies", type=int, default=2000)
    parser.add_argument(
        "--replay-seconds",
        type=float,
        default=None,
        help="stretch each kill scenario's replay to at least this long (default: 15 s a kill)",
    )
    parser.add_argument("--work", default=None, help="work directory (default: a temporary one)")
    parser.add_argument("--keep", action="store_true", help="keep the work directory")
    return parser.parse_args(argv)


def main(argv: list[str] | None = None) -> int:
    args = _parse(argv)
    chosen = [s.strip() for s in args.scenarios.split(",") if s.strip()]
    unknown = set(chosen) - set(SCENARIOS)
    if unknown:
        print(f"unknown scenarios: {sorted(unknown)}; choose from {SCENARIOS}", file=sys.stderr)
        return 2
    work = Path(args.work or tempfile.mkdtemp(prefix="chaos-"))
    work.mkdir(parents=True, exist_ok=True)
    pg = PgDatabases(args.database_url or PG_DEFAULT)
    traffic = make_traffic(
        work,
        "traffic",
        calls=args.calls,
        seed=args.seed,
        start=local_now() - timedelta(hours=12),
        first_call_id=600_000_000,
        calls_per_second=args.calls_per_second,
    )
    print(traffic.summary(), flush=True)
    gap, heads, tails = make_gap_traffic(
        work, "gap", start=traffic.last + timedelta(minutes=10), first_call_id=690_000_000
    )
    services: list[Service] = []

    def service(name: str) -> Service:
        url = pg.new(name) if (args.database_url or name == "postgres") else None
        extra: tuple[str, ...] = ("--redis-url", args.redis_url) if name == "redis" else ()
        svc = Service(
            work / name / "data",
            admin_token=f"chaos-{uuid.uuid4().hex}",
            database_url=url,
            name=name,
            extra_args=extra,
        )
        svc.start()
        services.append(svc)
        return svc

    outcomes: list[Outcome] = []
    failed = False
    try:
        started = time.monotonic()
        clean = service("clean")
        upcoming = {chosen[0]: service(chosen[0])} if chosen else {}
        clean.wait_ready()
        prepared = prepare(clean, traffic.bodies() + gap.bodies())
        reference = clean_run(clean, traffic, prepared)
        print(
            f"clean run: {reference.summary()} in {time.monotonic() - started:.1f} s",
            flush=True,
        )
        gap_reference = clean_run(clean, gap, prepared) if "shard_gap" in chosen else None
        clean.stop()
        for number, name in enumerate(chosen):
            svc = upcoming.pop(name)
            svc.wait_ready()
            if number + 1 < len(chosen):  # the next one starts while this one runs
                upcoming[chosen[number + 1]] = service(chosen[number + 1])
            ready = prepare(
                svc, traffic.bodies() + gap.bodies(), popup=name in ("redis", "postgres")
            )
            began = time.monotonic()
            try:
                if name == "shard_gap":
                    assert gap_reference is not None
                    outcome = calls_end_while_shards_down(
                        svc, gap, heads, tails, ready, gap_reference
                    )
                else:
                    outcome = _run(name, svc, traffic, ready, reference, args)
            except Exception:  # noqa: BLE001 - reported, the next scenario still runs
                outcome = Outcome(name, traffic.lines, problems=[traceback.format_exc()])
                outcome.seconds = time.monotonic() - began
            outcomes.append(outcome)
            failed |= not outcome.ok
            print(outcome.report(), flush=True)
            svc.stop()
    finally:
        for svc in services:
            svc.stop()
        start_redis()
        pg.drop()
        if not args.keep and not args.work:
            shutil.rmtree(work, ignore_errors=True)
    print("\nscenario        notifications  kills  fingerprint  seconds")
    for o in outcomes:
        verdict = "equal" if o.equal else "DIFFERS"
        flag = "" if o.ok else "  FAILED"
        print(
            f"{o.scenario:<15} {o.notifications:>13}  {len(o.kills):>5}  {verdict:<11}"
            f"  {o.seconds:>7.1f}{flag}"
        )
    return 1 if failed else 0


def _run(
    name: str,
    svc: Service,
    traffic: Traffic,
    prepared: Prepared,
    reference: Reference,
    args: argparse.Namespace,
) -> Outcome:
    def seconds(kills: int) -> float:
        return args.replay_seconds or max(30.0, 15.0 * (kills + 1))

    if name == "hostile":
        return hostile(
            svc,
            traffic,
            prepared,
            reference,
            seed=args.seed,
            random_count=args.random_bodies,
            replay_seconds=seconds(1),
        )
    if name == "service_kill":
        return service_kill(
            svc,
            traffic,
            prepared,
            reference,
            kills=args.service_kills,
            replay_seconds=seconds(args.service_kills * 4),
        )
    if name == "shard_kill":
        shards = len(workers(svc, SHARD))
        return worker_kills(
            svc,
            traffic,
            prepared,
            reference,
            title=SHARD,
            rounds=args.shard_rounds,
            replay_seconds=seconds(args.shard_rounds * shards),
        )
    if name == "writer_kill":
        return worker_kills(
            svc,
            traffic,
            prepared,
            reference,
            title=WRITER,
            rounds=args.writer_kills,
            replay_seconds=seconds(args.writer_kills),
        )
    if name == "duplicate":
        return duplicate(svc, traffic, prepared, reference)
    if name == "shuffled":
        return shuffled(svc, traffic, prepared, reference, seed=args.seed)
    count = args.redis_restarts if name == "redis" else args.pg_restarts
    return restarts(
        name, svc, traffic, prepared, reference, count=count, replay_seconds=seconds(count)
    )


if __name__ == "__main__":
    sys.exit(main())
