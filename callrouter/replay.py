"""`python -m callrouter replay FILE --url URL`: post recorded UIS traffic to a running service.

The file is the JSONL of `bench/generate_traffic.py` (`{"t", "body"}` per line; a bare body per
line also works). With setup (the default) the admin API is used first: the UIS integration is
enabled to learn the webhook path, and every `employee_id` in the file gets a staff member and
an operator mapping, so calls are not ignored (R2).

Sending keeps each call's notifications in file order (one after the other, never two of one
call in flight) while different calls go in parallel: with `--rate` paced at N per second in
file order, without it as fast as `--concurrency` allows. 503 answers are retried after their
`Retry-After`, connection errors after a short backoff; the service treats a repeated body as a
duplicate, so a retry after a lost answer is harmless.
"""

from __future__ import annotations

import argparse
import asyncio
import math
import os
import sys
import time
from collections import Counter
from collections.abc import Hashable
from dataclasses import dataclass
from email.utils import parsedate_to_datetime
from pathlib import Path
from typing import Any

import aiohttp
import orjson
from tqdm import tqdm

ADMIN_TOKEN_ENV = "CALLROUTER_ADMIN_TOKEN"
REPLAY_API_KEY = "callrouter-replay"
# Calls' notifications wait for their predecessor without holding a connection; this bounds how
# far ahead of the slowest call the reader may get (in multiples of the concurrency).
WINDOW_FACTOR = 8
MAX_RETRY_DELAY = 60.0
REQUEST_TIMEOUT = aiohttp.ClientTimeout(total=30)
_JSON = {"Content-Type": "application/json"}


class ReplayError(Exception):
    """The replay cannot start: unreadable file, missing token or path, setup refused."""


@dataclass(frozen=True, slots=True)
class _Item:
    call: Hashable  # the call_session_id, or the line when a body has none
    payload: bytes


@dataclass(frozen=True, slots=True)
class ReplayReport:
    """What a replay did. `sent` = ok + sum(errors); latencies are of each final attempt."""

    sent: int
    ok: int
    errors: dict[str, int]  # final HTTP status (or "connection") -> notifications
    retries: int
    elapsed_seconds: float
    throughput: float  # notifications per second over the sending phase
    p50_ms: float
    p90_ms: float
    p99_ms: float
    max_ms: float
    webhook_path: str = ""
    staff_created: int = 0
    operators_mapped: int = 0

    def lines(self) -> list[str]:
        """The human summary, one figure group per line."""
        errors = " ".join(f"{k}={v}" for k, v in sorted(self.errors.items())) or "none"
        sent = (
            f"sent {self.sent} notifications in {self.elapsed_seconds:.2f} s "
            f"({self.throughput:.1f}/s); ok {self.ok}; errors: {errors}; retries {self.retries}"
        )
        latency = (
            f"webhook latency ms: p50 {self.p50_ms:.1f}  p90 {self.p90_ms:.1f}  "
            f"p99 {self.p99_ms:.1f}  max {self.max_ms:.1f}"
        )
        setup = (
            f"setup: {self.staff_created} staff created, {self.operators_mapped} operators "
            f"mapped; webhook {self.webhook_path}"
        )
        return [sent, latency, setup]


def _call_id(body: dict[str, Any]) -> Any:
    info = body.get("call_info")
    nested = info.get("call_session_id") if isinstance(info, dict) else None
    return nested if nested is not None else body.get("call_session_id")


def _employee(body: dict[str, Any]) -> tuple[Any, Any]:
    info = body.get("employee_info")
    if isinstance(info, dict):
        return info.get("employee_id"), info.get("employee_full_name")
    return body.get("employee_id"), body.get("employee_full_name")


def load_bodies(path: str) -> list[dict[str, Any]]:
    """The notification bodies of a JSONL file, in file order. Raises ReplayError."""
    bodies: list[dict[str, Any]] = []
    try:
        with Path(path).open("rb") as lines:
            for number, line in enumerate(lines, 1):
                if not line.strip():
                    continue
                doc = orjson.loads(line)
                doc = doc["body"] if isinstance(doc, dict) and "body" in doc else doc
                if not isinstance(doc, dict):
                    raise ReplayError(f"{path}:{number}: not a JSON object")
                bodies.append(doc)
    except (OSError, orjson.JSONDecodeError) as exc:
        raise ReplayError(f"cannot read {path}: {exc}") from exc
    return bodies


def employees_in(bodies: list[dict[str, Any]]) -> dict[int, str]:
    """Distinct integer employee ids of the bodies (nested or flat) -> their first full name."""
    ids: dict[int, None] = {}
    names: dict[int, str] = {}
    for doc in bodies:
        employee_id, name = _employee(doc)
        if not isinstance(employee_id, int) or isinstance(employee_id, bool):
            continue
        ids[employee_id] = None
        if isinstance(name, str) and name.strip():
            names.setdefault(employee_id, name.strip())
    return {e: names.get(e, f"Operator {e}") for e in ids}


def _items(bodies: list[dict[str, Any]]) -> list[_Item]:
    items = []
    for line, doc in enumerate(bodies):
        call = _call_id(doc)
        items.append(
            _Item(("call", call) if call is not None else ("line", line), orjson.dumps(doc))
        )
    return items


def _percentile(ordered: list[float], share: float) -> float:
    """Nearest-rank percentile of an ascending list (0.0 when empty)."""
    if not ordered:
        return 0.0
    return ordered[max(0, math.ceil(share * len(ordered)) - 1)]


def _retry_delay(header: str | None, attempt: int) -> float:
    """Seconds to wait: Retry-After (seconds or HTTP date) when usable, else a backoff."""
    backoff = min(0.1 * 2.0**attempt, 5.0)
    if header is None:
        return backoff
    try:
        delay = float(header)
    except ValueError:
        try:
            delay = parsedate_to_datetime(header).timestamp() - time.time()
        except (TypeError, ValueError):
            return backoff
    return min(max(delay, 0.0), MAX_RETRY_DELAY)


class _Poster:
    """Posts one notification at a time with retries and keeps the figures of the report."""

    def __init__(
        self, session: aiohttp.ClientSession, url: str, max_retries: int, bar: tqdm[Any]
    ) -> None:
        self.session = session
        self.url = url
        self.max_retries = max_retries
        self.bar = bar
        self.latencies: list[float] = []
        self.statuses: Counter[str] = Counter()
        self.retries = 0

    async def _attempt(self, payload: bytes) -> tuple[int, str | None, float]:
        started = time.perf_counter()
        async with self.session.post(self.url, data=payload, headers=_JSON) as response:
            await response.read()
            elapsed = time.perf_counter() - started
            return response.status, response.headers.get("Retry-After"), elapsed

    async def post(self, payload: bytes) -> None:
        """Post until a final answer: 503 and connection errors retried up to max_retries."""
        for attempt in range(self.max_retries + 1):
            last = attempt == self.max_retries
            try:
                status, retry_after, elapsed = await self._attempt(payload)
            except (aiohttp.ClientError, TimeoutError):
                if last:
                    self._finish("connection", None)
                    return
                self.retries += 1
                await asyncio.sleep(_retry_delay(None, attempt))
                continue
            if status == 503 and not last:
                self.retries += 1
                await asyncio.sleep(_retry_delay(retry_after, attempt))
                continue
            self._finish(str(status), elapsed)
            return

    def _finish(self, status: str, elapsed: float | None) -> None:
        self.statuses[status] += 1
        if elapsed is not None:
            self.latencies.append(elapsed * 1000)
        self.bar.update(1)


async def _send_after(
    item: _Item,
    previous: asyncio.Task[None] | None,
    tails: dict[Hashable, asyncio.Task[None]],
    in_flight: asyncio.Semaphore,
    window: asyncio.Semaphore,
    poster: _Poster,
) -> None:
    try:
        if previous is not None:
            await asyncio.wait([previous])  # the call's order; its outcome does not matter
        async with in_flight:
            await poster.post(item.payload)
    finally:
        window.release()
        if tails.get(item.call) is asyncio.current_task():
            del tails[item.call]  # the call's last queued notification: forget the call


async def _pump(items: list[_Item], poster: _Poster, rate: float | None, concurrency: int) -> None:
    """Start every item in file order (at `rate` per second if given), each after its call's
    previous one, with at most `concurrency` posts in flight."""
    in_flight = asyncio.Semaphore(concurrency)
    window = asyncio.Semaphore(concurrency * WINDOW_FACTOR)
    tails: dict[Hashable, asyncio.Task[None]] = {}
    tasks: set[asyncio.Task[None]] = set()
    failures: list[BaseException] = []

    def forget(task: asyncio.Task[None]) -> None:
        tasks.discard(task)
        error = None if task.cancelled() else task.exception()
        if error is not None:
            failures.append(error)  # a bug, not an HTTP error: surface it

    loop = asyncio.get_running_loop()
    started = loop.time()
    for index, item in enumerate(items):
        if rate is not None:
            delay = started + index / rate - loop.time()
            if delay > 0:
                await asyncio.sleep(delay)
        await window.acquire()
        task = asyncio.create_task(
            _send_after(item, tails.get(item.call), tails, in_flight, window, poster)
        )
        tails[item.call] = task
        tasks.add(task)
        task.add_done_callback(forget)
    await asyncio.gather(*list(tasks))
    if failures:
        raise failures[0]


async def _admin(
    session: aiohttp.ClientSession,
    method: str,
    url: str,
    token: str,
    body: dict[str, Any] | None = None,
) -> tuple[int, Any]:
    headers = {"Authorization": f"Bearer {token}"}
    async with session.request(method, url, json=body, headers=headers) as response:
        text = await response.text()
        try:
            return response.status, orjson.loads(text) if text else None
        except orjson.JSONDecodeError:
            return response.status, text


def _expect(status: int, doc: Any, wanted: tuple[int, ...], what: str) -> Any:
    if status not in wanted:
        raise ReplayError(f"{what} answered {status}: {str(doc)[:300]}")
    return doc


async def _existing_staff(session: aiohttp.ClientSession, url: str, token: str) -> dict[str, int]:
    """Staff e-mail -> id already in the service, so a second replay reuses them."""
    found: dict[str, int] = {}
    offset = 0
    while True:
        status, doc = await _admin(
            session, "GET", f"{url}/api/v1/staff?limit=100&offset={offset}", token
        )
        items = doc.get("items") if status == 200 and isinstance(doc, dict) else None
        if not items:
            return found
        found |= {s["email"]: s["id"] for s in items if "email" in s and "id" in s}
        offset += len(items)
        if offset >= int(doc.get("total") or 0):
            return found


def staff_email(employee_id: int) -> str:
    """The e-mail of the staff member the replay creates for a UIS employee."""
    return f"operator{employee_id}@example.com"


async def setup_service(
    session: aiohttp.ClientSession, url: str, token: str, bodies: list[dict[str, Any]]
) -> tuple[str, int, int]:
    """Enable the integration and map every employee of `bodies` to a staff member.

    Returns (webhook_path, staff created, operators mapped). Raises ReplayError when the
    service refuses a step.
    """
    number = next((b.get("virtual_phone_number") for b in bodies), None) or "74950000000"
    status, doc = await _admin(
        session,
        "PUT",
        f"{url}/api/v1/integrations/uis",
        token,
        {"api_key": REPLAY_API_KEY, "virtual_phone_number": number},
    )
    webhook_path = str(_expect(status, doc, (200,), "PUT /api/v1/integrations/uis")["webhook_path"])
    existing = await _existing_staff(session, url, token)
    created = mapped = 0
    for employee_id, name in sorted(employees_in(bodies).items()):
        staff_id = existing.get(staff_email(employee_id))
        if staff_id is None:
            person = {"full_name": name, "email": staff_email(employee_id)}
            status, doc = await _admin(session, "POST", f"{url}/api/v1/staff", token, person)
            staff_id = _expect(status, doc, (200, 201), "POST /api/v1/staff")["id"]
            created += 1
        status, doc = await _admin(
            session,
            "PUT",
            f"{url}/api/v1/operators/{employee_id}",
            token,
            {"staff_id": staff_id},
        )
        _expect(status, doc, (200,), f"PUT /api/v1/operators/{employee_id}")
        mapped += 1
    return webhook_path, created, mapped


@dataclass(frozen=True, slots=True)
class _Setup:
    webhook_path: str
    staff_created: int = 0
    operators_mapped: int = 0


async def _prepare(
    session: aiohttp.ClientSession,
    url: str,
    bodies: list[dict[str, Any]],
    setup: bool,
    admin_token: str | None,
    webhook_path: str | None,
) -> _Setup:
    if not setup:
        if not webhook_path:
            raise ReplayError("without setup, the webhook path (--webhook-path) is required")
        return _Setup(webhook_path)
    token = admin_token or os.environ.get(ADMIN_TOKEN_ENV)
    if not token:
        raise ReplayError(f"setup needs the admin token (--admin-token or ${ADMIN_TOKEN_ENV})")
    path, created, mapped = await setup_service(session, url, token, bodies)
    return _Setup(path, created, mapped)


def _report(poster: _Poster, elapsed: float, prepared: _Setup) -> ReplayReport:
    ordered = sorted(poster.latencies)
    sent = sum(poster.statuses.values())
    errors = {k: v for k, v in poster.statuses.items() if not k.startswith("2")}
    return ReplayReport(
        sent=sent,
        ok=sent - sum(errors.values()),
        errors=errors,
        retries=poster.retries,
        elapsed_seconds=elapsed,
        throughput=sent / elapsed if elapsed > 0 else 0.0,
        p50_ms=_percentile(ordered, 0.50),
        p90_ms=_percentile(ordered, 0.90),
        p99_ms=_percentile(ordered, 0.99),
        max_ms=ordered[-1] if ordered else 0.0,
        webhook_path=prepared.webhook_path,
        staff_created=prepared.staff_created,
        operators_mapped=prepared.operators_mapped,
    )


async def replay(
    path: str,
    url: str,
    rate: float | None,
    concurrency: int = 64,
    setup: bool = True,
    admin_token: str | None = None,
    *,
    webhook_path: str | None = None,
    max_retries: int = 5,
    progress: bool = True,
) -> ReplayReport:
    """Post every notification of the JSONL file at `path` to the service at `url`.

    Per-call order is kept; `rate` (notifications/s) paces the file order, None sends as fast
    as `concurrency` allows. With `setup`, the admin API (token from `admin_token` or
    $CALLROUTER_ADMIN_TOKEN) gives the webhook path and maps the file's operators; without it
    `webhook_path` is required. Raises ReplayError when the replay cannot start.
    """
    if concurrency < 1 or (rate is not None and rate <= 0):
        raise ReplayError("concurrency must be >= 1 and rate > 0")
    base = url.rstrip("/")
    bodies = load_bodies(path)
    connector = aiohttp.TCPConnector(limit=concurrency)
    async with aiohttp.ClientSession(connector=connector, timeout=REQUEST_TIMEOUT) as session:
        prepared = await _prepare(session, base, bodies, setup, admin_token, webhook_path)
        items = _items(bodies)
        del bodies  # only the encoded payloads are needed from here on
        target = base + "/" + prepared.webhook_path.lstrip("/")
        with tqdm(
            total=len(items), file=sys.stderr, unit="msg", disable=not progress, mininterval=0.5
        ) as bar:
            poster = _Poster(session, target, max_retries, bar)
            started = time.perf_counter()
            await _pump(items, poster, rate, concurrency)
            elapsed = time.perf_counter() - started
    return _report(poster, elapsed, prepared)


def add_arguments(parser: argparse.ArgumentParser) -> None:
    """Add the `replay` subcommand's arguments to `parser`."""
    parser.add_argument("file", help="JSONL traffic (bench/generate_traffic.py)")
    parser.add_argument("--url", default="http://127.0.0.1:8080", help="service base URL")
    parser.add_argument("--rate", type=float, default=None, help="notifications per second")
    parser.add_argument("--concurrency", type=int, default=64, help="requests in flight")
    parser.add_argument(
        "--no-setup",
        dest="setup",
        action="store_false",
        help="skip the admin setup (then --webhook-path is required)",
    )
    parser.add_argument("--admin-token", default=None, help=f"default: ${ADMIN_TOKEN_ENV}")
    parser.add_argument("--webhook-path", default=None, help="/webhooks/uis/<secret>")
    parser.add_argument("--retries", type=int, default=5, help="retries per notification")
    parser.add_argument("--no-progress", dest="progress", action="store_false")


def run(args: argparse.Namespace) -> int:
    """Run a replay from parsed arguments and print the report.

    Exit status: 0 all notifications accepted, 1 some were not, 2 the replay could not start.
    """
    try:
        report = asyncio.run(
            replay(
                args.file,
                args.url,
                args.rate,
                args.concurrency,
                args.setup,
                args.admin_token,
                webhook_path=args.webhook_path,
                max_retries=args.retries,
                progress=args.progress,
            )
        )
    except ReplayError as exc:
        print(f"replay: {exc}", file=sys.stderr)
        return 2
    print("\n".join(report.lines()))
    return 0 if report.ok == report.sent else 1


def main(argv: list[str] | None = None) -> int:
    """`python -m callrouter.replay ...`, until the main entry point hooks the subcommand."""
    parser = argparse.ArgumentParser(prog="callrouter replay", description=__doc__.splitlines()[0])
    add_arguments(parser)
    return run(parser.parse_args(argv))


if __name__ == "__main__":
    sys.exit(main())
