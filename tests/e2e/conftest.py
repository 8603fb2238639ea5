"""End-to-end fixtures: the real service, started as a user starts it, driven over HTTP.

One service (`python -m callrouter serve` in a subprocess, SQLite in a temporary data dir) is
shared by the whole e2e session, because starting Ray costs seconds. Tests stay independent by
using their own staff, operators (`employee_id`), phone numbers and call ids, all handed out by
the `desk` fixture. Cases are made asynchronously (a settle window after the call end), so every
assertion about them polls the API up to a deadline instead of sleeping.

Services with a role of their own — the PostgreSQL smoke run (`desk` parametrized with
"postgresql") and the crash-recovery service — are started by the `launcher` in the background
once the shared one is ready, and their tests are moved to the end of the session, so the
Ray start-ups overlap with the shared service's tests. `ServiceProcess` and `Desk` also serve
modules that run a service of their own.
"""

from __future__ import annotations

import asyncio
import itertools
import json
import os
import random
import signal
import socket
import subprocess
import sys
import time
import urllib.error
import urllib.parse
import urllib.request
import uuid
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from pathlib import Path
from types import ModuleType
from typing import Any
from zoneinfo import ZoneInfo

import psutil
import pytest

from callrouter.testing import uis_bodies as uis
from callrouter.testing.uis_bodies import Event, encode

ROOT = Path(__file__).resolve().parents[2]
READY_TIMEOUT = 90.0  # Ray starts in 5–10 s here; a loaded machine gets some slack
# A call is decided once the event clock has passed its end by the lateness bound (30 s by
# default). Tests post calls minutes apart in event time within seconds, so the clock runs
# fast between them and a quiet line is decided after about a second — but the first calls
# of a fresh service wait the bound in real seconds, until the clock has seen the pace.
CASE_TIMEOUT = 90.0  # two test workers load the machine: the bound's real seconds stretch
STOP_TIMEOUT = 30.0
ACCOUNT_TZ = ZoneInfo("Europe/Moscow")  # the default account time zone (API.md settings)
PG_URL = os.environ.get(
    "CALLROUTER_TEST_PG_URL", "postgresql+asyncpg://postgres@127.0.0.1:5432/test"
)
REQUIRE_SERVICES = os.environ.get("CALLROUTER_REQUIRE_SERVICES") == "1"


# --- HTTP ---------------------------------------------------------------------------------


@dataclass
class Response:
    status: int
    headers: dict[str, str]
    text: str

    @property
    def json(self) -> Any:
        return json.loads(self.text) if self.text else None

    def __str__(self) -> str:
        return f"HTTP {self.status}: {self.text[:2000]}"


class Api:
    """A tiny blocking JSON client of one service, authenticated with `token` (or none).
    `base` is the URL, or something with a `base_url` (a service that may move to another
    port when restarted)."""

    def __init__(self, base: Any, token: str | None = None) -> None:
        self.base = base
        self.token = token

    @property
    def base_url(self) -> str:
        return self.base if isinstance(self.base, str) else str(self.base.base_url)

    def request(
        self,
        method: str,
        path: str,
        *,
        json_body: Any = None,
        data: bytes | None = None,
        token: str | None = None,
        auth: bool = True,
        timeout: float = 30.0,
    ) -> Response:
        headers = {"Accept": "application/json"}
        if json_body is not None:
            data = json.dumps(json_body).encode()
        if data is not None:
            headers["Content-Type"] = "application/json"
        bearer = token if token is not None else self.token
        if auth and bearer:
            headers["Authorization"] = f"Bearer {bearer}"
        req = urllib.request.Request(
            self.base_url + path, data=data, method=method, headers=headers
        )
        try:
            with urllib.request.urlopen(req, timeout=timeout) as resp:
                return Response(resp.status, dict(resp.headers), resp.read().decode())
        except urllib.error.HTTPError as err:
            return Response(err.code, dict(err.headers), err.read().decode())

    def get(self, path: str, **kw: Any) -> Response:
        return self.request("GET", path, **kw)

    def post(self, path: str, body: Any = None, **kw: Any) -> Response:
        return self.request("POST", path, json_body=body if body is not None else {}, **kw)

    def put(self, path: str, body: Any, **kw: Any) -> Response:
        return self.request("PUT", path, json_body=body, **kw)

    def patch(self, path: str, body: Any, **kw: Any) -> Response:
        return self.request("PATCH", path, json_body=body, **kw)


def expect(resp: Response, status: int) -> Any:
    """The JSON of `resp`, after asserting its status."""
    assert resp.status == status, f"expected HTTP {status}, got {resp}"
    return resp.json


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


# --- the service process ---------------------------------------------------------------------


class ServiceProcess:
    """`python -m callrouter serve` in its own session (so Ray's processes can be found and
    killed with it), logging to `<data_dir>/../<name>.log`."""

    def __init__(
        self,
        data_dir: Path,
        *,
        admin_token: str,
        database_url: str | None = None,
        name: str = "service",
        extra_args: tuple[str, ...] = (),
    ) -> None:
        self.extra_args = extra_args
        self.data_dir = data_dir
        self.admin_token = admin_token
        self.database_url = database_url
        self.log_path = data_dir.parent / f"{name}.log"
        self.proc: subprocess.Popen[bytes] | None = None
        self.port = 0
        self.starts = 0

    @property
    def base_url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    def api(self, token: str | None = None) -> Api:
        """A client that follows the service across restarts."""
        return Api(self, token)

    def start(self, port: int | None = None) -> None:
        """Start the service (a new port each time unless given); returns at once."""
        assert self.proc is None, "already running"
        self.port = port or free_port()
        self.starts += 1
        cmd = [
            sys.executable,
            "-m",
            "callrouter",
            "serve",
            "--port",
            str(self.port),
            "--data-dir",
            str(self.data_dir),
        ]
        if self.database_url:
            cmd += ["--database-url", self.database_url]
        cmd += list(self.extra_args)
        env = dict(os.environ, CALLROUTER_ADMIN_TOKEN=self.admin_token)
        env.pop("RAY_ADDRESS", None)  # always a local Ray of its own
        log = self.log_path.open("ab")
        log.write(f"\n===== start #{self.starts}: {' '.join(cmd)}\n".encode())
        log.flush()
        self.proc = subprocess.Popen(
            cmd, cwd=ROOT, env=env, stdout=log, stderr=subprocess.STDOUT, start_new_session=True
        )
        log.close()

    def wait_ready(self, timeout: float = READY_TIMEOUT) -> None:
        """Poll `GET /healthz` until 200; fail with the log tail if the service dies or is slow."""
        assert self.proc is not None
        deadline = time.monotonic() + timeout
        api = self.api()
        while time.monotonic() < deadline:
            if self.proc.poll() is not None:
                raise AssertionError(
                    f"the service exited with {self.proc.returncode}:\n{self.log_tail()}"
                )
            try:
                if api.get("/healthz", timeout=2).status == 200:
                    return
            except OSError:
                pass
            time.sleep(0.2)
        raise AssertionError(f"/healthz not 200 after {timeout} s:\n{self.log_tail()}")

    def _session_processes(self) -> list[psutil.Process]:
        """Every process of the service's session: the service and the Ray it started (Ray
        workers get process groups of their own, so the group alone is not enough)."""
        assert self.proc is not None
        sid = self.proc.pid
        found = []
        for p in psutil.process_iter(["pid"]):
            try:
                if os.getsid(p.pid) == sid and p.status() != psutil.STATUS_ZOMBIE:
                    found.append(p)
            except (ProcessLookupError, PermissionError, psutil.Error):
                continue
        return found

    @staticmethod
    def _still_running(procs: list[psutil.Process]) -> list[psutil.Process]:
        """Those of `procs` still running (a zombie left to an init that does not reap is
        gone for our purposes)."""
        _, alive = psutil.wait_procs(procs, timeout=10)
        running = []
        for p in alive:
            try:
                if p.status() != psutil.STATUS_ZOMBIE:
                    running.append(p)
            except psutil.Error:
                continue
        return running

    def kill(self) -> None:
        """SIGKILL the service and its Ray, as a crash would; wait until they are gone."""
        assert self.proc is not None
        procs = self._session_processes()
        try:
            os.killpg(self.proc.pid, signal.SIGKILL)
        except ProcessLookupError:
            pass
        for p in procs:
            try:
                p.kill()
            except psutil.Error:
                pass
        self.proc.wait(timeout=10)
        alive = self._still_running(procs)
        assert not alive, f"processes survived SIGKILL: {alive}"
        self.proc = None

    def interrupt(self) -> None:
        """Send SIGINT (as Ctrl+C does) without waiting: see `stop`."""
        if self.proc is not None and self.proc.poll() is None:
            self.proc.send_signal(signal.SIGINT)

    def stop(self) -> None:
        """SIGINT (unless `interrupt` sent it), wait; then SIGKILL whatever is left of its
        session: the service, or Ray processes it did not shut down (also after the service
        died on its own)."""
        if self.proc is None:
            return
        self.interrupt()
        try:
            self.proc.wait(timeout=STOP_TIMEOUT)
        except subprocess.TimeoutExpired:
            pass
        leftovers = [p for p in self._session_processes() if p.pid != self.proc.pid]
        _, alive = psutil.wait_procs(leftovers, timeout=5)
        if self.proc.poll() is None or alive:
            self.kill()
        self.proc = None

    def log_tail(self, lines: int = 60) -> str:
        try:
            return "\n".join(self.log_path.read_text(errors="replace").splitlines()[-lines:])
        except OSError:
            return "(no log)"

    def log_text(self) -> str:
        return self.log_path.read_text(errors="replace") if self.log_path.exists() else ""


# --- the helpdesk seen from outside ----------------------------------------------------------


@dataclass
class Staff:
    id: int
    token: str
    full_name: str
    api: Api
    employee_ids: list[int] = field(default_factory=list)

    @property
    def employee_id(self) -> int:
        return self.employee_ids[0]


_SESSION_SALT = random.Random().randrange(10**6)


class Desk:
    """Admin setup and scenario helpers on one running service.

    Every phone number, call id and UIS employee id it hands out is unique for the run, so
    tests on a shared service never see each other's calls or users.
    """

    def __init__(self, service: ServiceProcess) -> None:
        self.service = service
        self.admin = service.api(service.admin_token)
        self.anonymous = service.api()
        salt = _SESSION_SALT
        self._phones = itertools.count(10_000 + (salt % 50_000) * 100)
        self._calls = itertools.count(10**9 + salt * 1000)
        self._employees = itertools.count(100_000 + salt * 10)
        # Calls happen in the past, in order: messages made by staff through the API are
        # stamped with the wall clock, messages of calls with the UIS notification_time, and a
        # scenario already in the future would sort before what staff do now.
        self._clock = datetime.now(ACCOUNT_TZ).replace(tzinfo=None, microsecond=0)
        self._clock -= timedelta(hours=24)
        answer = expect(
            self.admin.put(
                "/api/v1/integrations/uis",
                {"api_key": "e2e-key", "virtual_phone_number": "74950000000"},
            ),
            200,
        )
        self.webhook_path: str = answer["webhook_path"]

    # -- ids and time

    def new_phone(self) -> str:
        return f"7916{next(self._phones):07d}"

    def new_call_id(self) -> int:
        return next(self._calls)

    def when(self) -> datetime:
        """A start time for the next call: 15 minutes after the previous one (no scenario lasts
        that long), so calls of one user are in order in the account's time, all in the past
        (up to 96 calls a session)."""
        self._clock += timedelta(minutes=15)
        return self._clock

    # -- admin setup

    def staff(self, name: str = "Анна Смирнова", *, operators: int = 1) -> Staff:
        """A new staff member, with `operators` new UIS employee ids mapped to them."""
        email = f"staff{random.randrange(10**9)}@example.test"
        made = expect(self.admin.post("/api/v1/staff", {"full_name": name, "email": email}), 201)
        staff = Staff(made["id"], made["token"], name, self.service.api(made["token"]))
        for _ in range(operators):
            staff.employee_ids.append(self.map_operator(staff.id))
        return staff

    def map_operator(self, staff_id: int | None) -> int:
        """A new UIS employee id mapped to `staff_id` (None: known to UIS, not mapped)."""
        employee_id = next(self._employees)
        if staff_id is not None:
            answer = expect(
                self.admin.put(f"/api/v1/operators/{employee_id}", {"staff_id": staff_id}), 200
            )
            assert (answer["employee_id"], answer["staff_id"]) == (employee_id, staff_id)
        return employee_id

    def settings(self, **changes: Any) -> dict[str, Any]:
        result: dict[str, Any] = expect(self.admin.put("/api/v1/settings", changes), 200)
        return result

    # -- webhook

    def post_raw(self, data: bytes, *, path: str | None = None) -> Response:
        return self.anonymous.request("POST", path or self.webhook_path, data=data)

    def post(self, doc: Any) -> Response:
        return self.post_raw(encode(doc))

    def post_call(self, events: list[Event]) -> None:
        """Post the bodies in order; each must be acknowledged with 200 {"ok": true}."""
        for _, doc in events:
            resp = self.post(doc)
            assert resp.status == 200 and resp.json == {"ok": True}, (
                f"{doc['notification_name']}: {resp}"
            )

    # -- reads and waits

    def wait(self, probe: Callable[[], Any], what: str, timeout: float = CASE_TIMEOUT) -> Any:
        """Poll `probe` until it returns something truthy; fail with `what` and the log tail."""
        deadline = time.monotonic() + timeout
        last: Any = None
        while time.monotonic() < deadline:
            last = probe()
            if last:
                return last
            time.sleep(0.1)
        raise AssertionError(
            f"timed out after {timeout} s waiting for {what}; last: {last!r}\n"
            f"--- system ---\n{self.admin.get('/api/v1/system').text}\n"
            f"--- quarantine ---\n{self.admin.get('/api/v1/quarantine').text[:3000]}\n"
            f"--- service log tail ---\n{self.service.log_tail(40)}"
        )

    def users_matching(self, q: str) -> list[dict[str, Any]]:
        query = urllib.parse.urlencode({"q": q})
        items: list[dict[str, Any]] = expect(self.admin.get(f"/api/v1/users?{query}"), 200)["items"]
        return items

    def user_by_phone(self, phone: str) -> dict[str, Any] | None:
        users = [u for u in self.users_matching(phone) if phone in u["phones"]]
        assert len(users) <= 1, f"several users have {phone}: {users}"
        return users[0] if users else None

    def user(self, user_id: int) -> dict[str, Any]:
        result: dict[str, Any] = expect(self.admin.get(f"/api/v1/users/{user_id}"), 200)
        return result

    def cases_of(self, user_id: int) -> list[dict[str, Any]]:
        """The user's cases, oldest first."""
        answer = expect(self.admin.get(f"/api/v1/cases?user_id={user_id}&limit=200"), 200)
        assert answer["total"] == len(answer["items"]), answer  # one page: they must agree
        return sorted(answer["items"], key=lambda c: c["id"])

    def wait_for_cases(
        self, who: str | int, count: int, timeout: float = CASE_TIMEOUT
    ) -> list[dict[str, Any]]:
        """Poll until the user (a phone number or a user id) has `count` cases; fail at once if
        there are more. Returns them oldest first, each with its messages."""

        def probe() -> list[dict[str, Any]] | None:
            if isinstance(who, str):
                user = self.user_by_phone(who)
                if user is None:
                    return None
                user_id = user["id"]
            else:
                user_id = who
            cases = self.cases_of(user_id)
            assert len(cases) <= count, f"expected {count} case(s), got {len(cases)}: {cases}"
            return cases if len(cases) == count else None

        cases = self.wait(probe, f"{count} case(s) of {who}", timeout)
        return [self.case(c["id"]) for c in cases]

    def missed_cases(self, staff: Staff, count: int) -> list[tuple[str, dict[str, Any]]]:
        """`count` new callers, each with one open missed-call case offered to `staff` (R15):
        [(phone, case)]. The calls are posted together and waited for together."""
        phones = [self.new_phone() for _ in range(count)]
        for phone in phones:
            self.post_call(
                uis.incoming_missed(self.new_call_id(), self.when(), phone, [staff.employee_id])
            )
        made = []
        for phone in phones:
            [case] = self.wait_for_cases(phone, 1)
            assert case["call_icon"] == "missed" and case["status"] == "open", case
            made.append((phone, case))
        return made

    def case(self, case_id: int) -> dict[str, Any]:
        result: dict[str, Any] = expect(self.admin.get(f"/api/v1/cases/{case_id}"), 200)
        return result

    def wait_case(
        self, case_id: int, check: Callable[[dict[str, Any]], bool], what: str
    ) -> dict[str, Any]:
        def probe() -> dict[str, Any] | None:
            case = self.case(case_id)
            return case if check(case) else None

        result: dict[str, Any] = self.wait(probe, f"case {case_id}: {what}")
        return result

    def call(self, call_id: int) -> Response:
        return self.admin.get(f"/api/v1/calls/{call_id}")

    def wait_call(self, call_id: int, state: str, staff: Staff | None = None) -> dict[str, Any]:
        """Poll `GET /api/v1/calls/{id}` until the call is in `state` (and `staff` is in it)."""

        def probe() -> dict[str, Any] | None:
            resp = self.call(call_id)
            if resp.status != 200:
                return None
            call: dict[str, Any] = resp.json
            if call["state"] != state:
                return None
            if staff is not None and staff.id not in call["staff_ids"]:
                return None
            return call

        result: dict[str, Any] = self.wait(probe, f"call {call_id} {state}")
        return result

    def wait_recorded(self, case: dict[str, Any], events: list[Event]) -> dict[str, Any]:
        """The case once its call's recordings are in: a recording the writer had not applied
        when the call was decided completes the case after it (seconds later under load)."""
        links = self.recording_links(events)
        return self.wait_case(
            case["id"],
            lambda c: any(
                (m.get("call") or {}).get("recording_urls") == links for m in c["messages"]
            ),
            "the call's recordings attached",
        )

    def wait_finalized(self, call_id: int) -> dict[str, Any]:
        """Poll until the call's cases were decided (the stored call shows its outcome)."""

        def probe() -> dict[str, Any] | None:
            resp = self.call(call_id)
            return resp.json if resp.status == 200 and "outcome" in resp.json else None

        result: dict[str, Any] = self.wait(probe, f"call {call_id} finalized")
        return result

    # -- reading scenarios and cases

    @staticmethod
    def only_call_message(case: dict[str, Any]) -> dict[str, Any]:
        """The case's single message, which must record a call."""
        assert len(case["messages"]) == 1, case["messages"]
        message: dict[str, Any] = case["messages"][0]
        assert message["kind"] == "call" and message["call"] is not None, message
        return message

    @staticmethod
    def recording_links(events: list[Event]) -> list[str]:
        """The recording URLs of a scenario, in order."""
        return [
            doc["call_record_file_info"]["file_link"]
            for _, doc in events
            if doc["notification_name"] == "Записанный разговор"
        ]


# --- fixtures --------------------------------------------------------------------------------


async def _pg_admin(sql: str) -> None:
    import asyncpg  # the service's own PostgreSQL driver

    conn = await asyncio.wait_for(asyncpg.connect(_plain_pg_url(PG_URL)), 10)
    try:
        await conn.execute(sql)
    finally:
        await conn.close()


def _plain_pg_url(url: str, database: str | None = None) -> str:
    """`url` as a plain postgresql:// URL (no driver), optionally naming another database."""
    parts = urllib.parse.urlsplit(url)
    path = f"/{database}" if database is not None else parts.path
    return urllib.parse.urlunsplit(("postgresql", parts.netloc, path, parts.query, ""))


class Launcher:
    """Every service of the session. The ones the selected tests need are started together
    when the session begins (each starts its own Ray, which takes seconds), and all are
    stopped together at its end."""

    def __init__(self, root: Path) -> None:
        self.root = root
        self.made: dict[str, ServiceProcess] = {}
        self.pg_database: str | None = None
        self.pg_problem: str | None = None

    def launch(self, name: str) -> ServiceProcess | None:
        """Start service `name` ("shared", "postgres", "crash") unless started; returns at
        once. None for "postgres" when PostgreSQL is unreachable (see `pg_problem`)."""
        if name in self.made:
            return self.made[name]
        database_url = None
        if name == "postgres":
            if self.pg_problem is not None:
                return None
            self.pg_database = f"callrouter_e2e_{uuid.uuid4().hex[:12]}"
            try:
                asyncio.run(_pg_admin(f'CREATE DATABASE "{self.pg_database}"'))
            # Unreachable, refused, bad credentials: all mean no PostgreSQL here.
            except Exception as exc:  # noqa: BLE001
                self.pg_database = None
                self.pg_problem = f"PostgreSQL at {PG_URL} is unreachable: {exc!r}"
                return None
            database_url = _plain_pg_url(PG_URL, self.pg_database)
        (self.root / name).mkdir(parents=True, exist_ok=True)
        svc = ServiceProcess(
            self.root / name / "data",
            admin_token=f"e2e-admin-{random.randrange(10**12)}",
            database_url=database_url,
            name=name,
        )
        svc.start()
        self.made[name] = svc
        return svc

    def ready(self, name: str) -> ServiceProcess:
        """Service `name`, started if needed, once it answers /healthz."""
        svc = self.launch(name)
        if svc is None:
            reason = self.pg_problem or f"no service {name}"
            if REQUIRE_SERVICES:
                pytest.fail(reason + " (CALLROUTER_REQUIRE_SERVICES=1)")
            pytest.skip(reason)
        svc.wait_ready()
        return svc

    def desk(self, name: str) -> Desk:
        """The integration set up on service `name` (ready)."""
        return Desk(self.ready(name))

    def retire(self, name: str) -> None:
        """Ask service `name` to stop now (its Ray would take CPU from later tests); the end
        of the session waits for it."""
        if name in self.made:
            self.made[name].interrupt()

    def stop_all(self) -> None:
        for svc in self.made.values():
            svc.interrupt()
        for svc in self.made.values():
            svc.stop()
        if self.pg_database is not None:
            asyncio.run(_pg_admin(f'DROP DATABASE IF EXISTS "{self.pg_database}" WITH (FORCE)'))


def _needed(items: list[pytest.Item]) -> list[str]:
    """Which services the selected tests use."""
    needed = set()
    for item in items:
        names = getattr(item, "fixturenames", ())
        params = getattr(getattr(item, "callspec", None), "params", {})
        if "crash" in names:
            needed.add("crash")
        if params.get("desk") == "postgresql":
            needed.add("postgres")
        elif "desk" in names or "shared_desk" in names or "service" in names:
            needed.add("shared")
    return sorted(needed, key=["shared", "postgres", "crash"].index)


@pytest.fixture(scope="session", autouse=True)
def launcher(
    request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[Launcher]:
    """Starts the needed services at once, in parallel; stops them all at the end."""
    made = Launcher(tmp_path_factory.mktemp("e2e"))
    try:
        # Under pytest-xdist every worker collects every test but runs only some: it starts
        # services when its tests first ask for them instead of all of them up front.
        needed = [] if os.environ.get("PYTEST_XDIST_WORKER") else _needed(request.session.items)
        if "shared" in needed:
            # The first tests wait for this one: let its Ray start on an idle machine.
            made.ready("shared")
        for name in needed:
            made.launch(name)  # the others start while the first tests run
        yield made
    finally:
        made.stop_all()


# Services of their own start in the background while the shared service's tests run, so
# their tests go last.
_OWN_SERVICE_LAST = {"crash": 2, "postgres": 1}


def pytest_collection_modifyitems(items: list[pytest.Item]) -> None:
    here = Path(__file__).parent

    def order(item: pytest.Item) -> int:
        if Path(str(item.fspath)).parent != here:
            return 0
        params = getattr(getattr(item, "callspec", None), "params", {})
        if "crash" in getattr(item, "fixturenames", ()):
            return _OWN_SERVICE_LAST["crash"]
        if params.get("desk") == "postgresql":
            return _OWN_SERVICE_LAST["postgres"]
        return 0

    items.sort(key=order)  # stable: the order within each group stays


@pytest.fixture(scope="session")
def e2e_kit() -> ModuleType:
    """This conftest module (`ServiceProcess`, `Desk`, helpers), for test modules that start
    services of their own: the directory is not an importable package, pytest loaded it."""
    return _THIS


# Kept now: other conftests are also named `conftest`, so `sys.modules[__name__]` may later be
# another directory's.
_THIS = sys.modules[__name__]


@pytest.fixture(scope="session")
def service(launcher: Launcher) -> ServiceProcess:
    """The shared service for the e2e session (SQLite in a temporary data dir)."""
    return launcher.ready("shared")


@pytest.fixture(scope="session")
def shared_desk(service: ServiceProcess) -> Desk:
    return Desk(service)


@pytest.fixture(scope="session")
def pg_desk(launcher: Launcher) -> Desk:
    """A second service on a fresh PostgreSQL database (created for the session, dropped at
    its end); skipped when PostgreSQL is unreachable, unless CALLROUTER_REQUIRE_SERVICES=1."""
    return Desk(launcher.ready("postgres"))


@pytest.fixture
def desk(request: pytest.FixtureRequest) -> Desk:
    """The helpdesk a test drives: the shared SQLite service, or with
    `@pytest.mark.parametrize("desk", ["sqlite", "postgresql"], indirect=True)` also the
    PostgreSQL one."""
    backend = getattr(request, "param", "sqlite")
    assert backend in ("sqlite", "postgresql"), backend
    result: Desk = request.getfixturevalue("pg_desk" if backend == "postgresql" else "shared_desk")
    return result


# --- the browser (Debian's chromium, driven by Playwright) ----------------------------------

CHROMIUM = Path("/usr/bin/chromium")
# As root, on a machine with no network but the package registries: no sandbox, no GPU, no
# background connections Chromium would retry for ever.
CHROMIUM_ARGS = [
    "--no-sandbox",
    "--disable-gpu",
    "--disable-background-networking",
    "--disable-component-update",
    "--no-first-run",
]


@pytest.fixture(scope="module")
def browser() -> Iterator[Any]:
    """Headless Debian chromium for a module's page tests; skipped (failed when services are
    required) without Playwright or chromium — `playwright install` cannot download here."""
    reason = None
    try:
        from playwright.sync_api import sync_playwright
    except ImportError as exc:  # pragma: no cover - the dev extra installs it
        reason = f"the playwright package is missing: {exc}"
    if reason is None and not CHROMIUM.exists():
        reason = f"{CHROMIUM} is missing (apt-get install -y chromium)"
    if reason:
        if REQUIRE_SERVICES:
            pytest.fail(reason + " (CALLROUTER_REQUIRE_SERVICES=1)")
        pytest.skip(reason)
    with sync_playwright() as pw:
        chromium = pw.chromium.launch(
            executable_path=str(CHROMIUM), headless=True, args=CHROMIUM_ARGS
        )
        try:
            yield chromium
        finally:
            chromium.close()
