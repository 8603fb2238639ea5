"""`python -m callrouter replay FILE --url URL`: post recorded UIS traffic to a running service.

The file is the JSONL of `bench/generate_traffic.py` (`{"t", "body"}` per line; a bare body per
line also works). With setup (the default) the admin API is used first: the UIS integration is
enabled to learn the webhook path, and every `employee_id` in the file gets a staff member and
an operator mapping, so calls are not ignored (R2).

Sending keeps each call's notifications in file order: a call's next notification goes only
after the previous one was answered, so two of one call are never in flight together, while
different calls go in parallel over `--concurrency` keep-alive HTTP/1.1 connections. With
`--pipeline D` up to D requests of different calls queue on one connection (the server answers
them in order); with `--processes P` the calls are dealt out to P sender processes, each with
its share of the connections, and their figures are merged. `--rate N` paces the file order at
N per second in total; without it the sending is as fast as the connections allow. 503 answers
are retried after their `Retry-After`, connection errors after a short backoff; the service
treats a repeated body as a duplicate, so a retry after a lost answer is harmless.

The senders speak HTTP/1.1 over raw asyncio transports rather than through aiohttp's client:
one write per connection for a whole batch of requests and one parse pass per read keep the
client's cost per notification a few microseconds, so the service is what a replay measures.
The defaults (64 connections, no pipelining, one process) already outrun an aiohttp endpoint;
to find the limit of something faster, e.g. `--processes 2 --concurrency 16 --pipeline 16`
(see bench/bench_reference.py). A pipelined request's latency includes its wait behind the
others on its connection, as the service sees it.
"""

from __future__ import annotations

import argparse
import asyncio
import gc
import heapq
import math
import multiprocessing
import os
import signal
import ssl
import sys
import time
import traceback
from array import array
from collections import Counter, deque
from collections.abc import Hashable, Iterator
from concurrent.futures import ThreadPoolExecutor
from contextlib import contextmanager
from dataclasses import dataclass, field
from datetime import UTC, datetime
from email.utils import parsedate_to_datetime
from multiprocessing.connection import Connection
from pathlib import Path
from typing import TYPE_CHECKING, Any, NamedTuple
from urllib.parse import quote, urlsplit

import orjson
from tqdm import tqdm

if TYPE_CHECKING:  # imported where used: sender processes start faster without it
    import aiohttp

ADMIN_TOKEN_ENV = "CALLROUTER_ADMIN_TOKEN"
REPLAY_API_KEY = "callrouter-replay"
# A call's notifications wait for their predecessor in memory, not on a connection; this bounds
# how far ahead of the oldest unfinished notification the sending may get (in multiples of the
# requests a sender can have in flight), so one stuck call does not let the file run away.
WINDOW_FACTOR = 8
# Half the service's default lateness bound (30 s): deliveries stay well within it.
DEFAULT_LATENESS = 15.0
MAX_RETRY_DELAY = 60.0
REQUEST_TIMEOUT_SECONDS = 30.0
# How often the senders publish their progress and look for requests past the timeout.
TICK_SECONDS = 0.1
# Sender processes start together this long after the last one is ready, on the shared
# monotonic clock, so the rate's schedule and the elapsed time mean the same in all of them.
START_MARGIN_SECONDS = 0.05


class ReplayError(Exception):
    """The replay cannot start: unreadable file, missing token or path, setup refused."""


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
    processes: int = 1
    connections: int = 0
    pipeline: int = 1

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
        client = (
            f"client: {self.processes} process(es), {self.connections} connections, "
            f"pipeline {self.pipeline}"
        )
        return [sent, latency, setup, client]


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


# --- HTTP/1.1 responses, parsed incrementally ---------------------------------------------------


class ProtocolError(Exception):
    """The server sent something that is not an HTTP/1.1 response."""


class Answer(NamedTuple):
    """One response as the replay needs it."""

    status: int
    retry_after: str | None
    close: bool  # the server closes the connection after this response


def _header(head: bytes, lower: bytes, key: bytes) -> bytes | None:
    """The value of the header whose `key` is b"\r\n<lower-case name>:", or None."""
    start = lower.find(key)
    if start < 0:
        return None
    start += len(key)
    end = lower.find(b"\r\n", start)
    return head[start : end if end >= 0 else len(head)].strip()


def _chunked_end(buffer: bytearray, pos: int) -> int:
    """Where a chunked body starting at `pos` ends, or -1 while it is incomplete."""
    while True:
        line_end = buffer.find(b"\r\n", pos)
        if line_end < 0:
            return -1
        try:
            size = int(bytes(buffer[pos:line_end]).split(b";")[0].strip(), 16)
        except ValueError as exc:
            raise ProtocolError("bad chunk size") from exc
        pos = line_end + 2
        if size == 0:
            while True:  # trailer lines up to an empty one
                line_end = buffer.find(b"\r\n", pos)
                if line_end < 0:
                    return -1
                if line_end == pos:
                    return pos + 2
                pos = line_end + 2
        pos += size + 2
        if pos > len(buffer):
            return -1


class ResponseParser:
    """Bytes from a connection in, complete responses out (bodies are skipped).

    Handles Content-Length, chunked and read-until-close bodies, interim 1xx answers and
    bodiless 204/304; anything else raises ProtocolError.
    """

    def __init__(self) -> None:
        self.buffer = bytearray()
        self.until_close: Answer | None = None  # a response whose body ends with the connection

    def feed(self, data: bytes) -> list[Answer]:
        """Complete responses in the bytes received so far, oldest first."""
        if self.until_close is not None:
            return []  # the rest of the connection is that body
        buffer = self.buffer
        buffer += data
        answers: list[Answer] = []
        pos = 0
        while True:
            end = buffer.find(b"\r\n\r\n", pos)
            if end < 0:
                break
            head = bytes(buffer[pos:end])
            lower = head.lower()
            if not lower.startswith(b"http/1.") or len(head) < 12:
                raise ProtocolError(f"not an HTTP/1.x response: {head[:40]!r}")
            try:
                status = int(head[9:12])
            except ValueError as exc:
                raise ProtocolError(f"bad status line: {head[:40]!r}") from exc
            body = end + 4
            if status < 200:
                pos = body  # 100 Continue and friends: the real answer follows
                continue
            connection = (_header(head, lower, b"\r\nconnection:") or b"").lower()
            close = connection == b"close" or (
                lower.startswith(b"http/1.0") and connection != b"keep-alive"
            )
            retry_after = _header(head, lower, b"\r\nretry-after:") if status == 503 else None
            answer = Answer(status, retry_after.decode("latin-1") if retry_after else None, close)
            length = _header(head, lower, b"\r\ncontent-length:")
            if status in (204, 304):
                body_end = body
            elif b"chunked" in (_header(head, lower, b"\r\ntransfer-encoding:") or b"").lower():
                body_end = _chunked_end(buffer, body)
            elif length is not None:
                try:
                    body_end = body + int(length)
                except ValueError as exc:
                    raise ProtocolError(f"bad Content-Length {length!r}") from exc
            else:
                self.until_close = answer._replace(close=True)
                pos = len(buffer)
                break
            if body_end < 0 or body_end > len(buffer):
                break
            answers.append(answer)
            pos = body_end
        del buffer[:pos]
        return answers

    def eof(self) -> list[Answer]:
        """The response that the closed connection completed, if any."""
        done, self.until_close = self.until_close, None
        self.buffer.clear()
        return [done] if done is not None else []


# --- one sender: a share of the calls over a few connections ------------------------------------


@dataclass(frozen=True, slots=True)
class Target:
    """Where webhooks go: the connection address and the request's fixed head."""

    host: str
    port: int
    tls: bool
    head: bytes  # request line and headers up to "Content-Length: "

    @classmethod
    def from_url(cls, base_url: str, webhook_path: str) -> Target:
        """The target for `webhook_path` under the service at `base_url`. Raises ReplayError."""
        parts = urlsplit(base_url)
        if parts.scheme not in ("http", "https") or not parts.hostname:
            raise ReplayError(f"not an http(s) URL: {base_url}")
        tls = parts.scheme == "https"
        path = quote(
            parts.path.rstrip("/") + "/" + webhook_path.lstrip("/"), safe="/%:@!$&'()*+,;=~"
        )
        authority = parts.netloc.rpartition("@")[2]
        head = (
            f"POST {path} HTTP/1.1\r\nHost: {authority}\r\n"
            "Content-Type: application/json\r\nContent-Length: "
        )
        return cls(parts.hostname, parts.port or (443 if tls else 80), tls, head.encode("ascii"))


@dataclass(frozen=True, slots=True)
class _Plan:
    """One sender's work: its calls' notifications, in file order, and how to send them."""

    target: Target
    positions: list[int]  # each notification's place in the whole file (for the rate)
    calls: list[int]  # each notification's call, numbered
    payloads: list[bytes]
    connections: int
    pipeline: int
    rate: float | None
    max_retries: int
    timeout: float
    times: list[float] = field(default_factory=list)  # each notification's UIS time (seconds)
    window: float | None = None  # see `replay(lateness=...)`
    number: int = 0  # this sender's place among the senders (its frontier's slot)


@dataclass(slots=True)
class _Outcome:
    """What one sender did, in a form that crosses a process boundary cheaply."""

    statuses: dict[str, int]
    retries: int
    latencies: bytes  # array("d") of milliseconds
    finished: float  # time.monotonic() of the last final answer


class _Protocol(asyncio.Protocol):
    """The asyncio side of one connection: hands bytes and closure to its slot."""

    def __init__(self, slot: _Slot) -> None:
        self.slot = slot

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        assert isinstance(transport, asyncio.Transport)
        self.slot.connected(transport)

    def data_received(self, data: bytes) -> None:
        self.slot.received(data)

    def eof_received(self) -> bool | None:
        return None  # close our side too: connection_lost follows

    def connection_lost(self, exc: Exception | None) -> None:
        self.slot.lost()


@dataclass(eq=False, slots=True)
class _Slot:
    """One keep-alive connection and the notifications it carries, oldest first.

    `load` counts the requests in flight plus the retries parked here, so a slot waiting to
    retry is not handed new work (with one request per connection, a retrying notification
    keeps its place in the concurrency, as the service's Retry-After asks).
    """

    sender: _Sender
    inflight: deque[tuple[int, float]] = field(default_factory=deque)  # (item, sent at)
    unsent: list[bytes] = field(default_factory=list)
    load: int = 0
    transport: asyncio.Transport | None = None
    connecting: asyncio.Task[None] | None = None
    closing: bool = False  # the server said it closes: no new requests here
    parser: ResponseParser = field(default_factory=ResponseParser)

    def queue(self, item: int, now: float) -> None:
        self.inflight.append((item, now))
        self.load += 1
        self.unsent.append(self.sender.request(item))

    def flush(self) -> None:
        """Write the queued requests in one go, connecting first when needed."""
        if not self.unsent:
            return
        if self.transport is None:
            if self.connecting is None:
                self.connecting = asyncio.create_task(self.sender.connect(self))
            return
        if self.transport.is_closing():
            self.unsent.clear()  # connection_lost is on its way and retries them
            return
        self.transport.write(b"".join(self.unsent))
        self.unsent.clear()

    def connected(self, transport: asyncio.Transport) -> None:
        self.transport = transport
        self.flush()

    def received(self, data: bytes) -> None:
        try:
            answers = self.parser.feed(data)
            if len(answers) > len(self.inflight):
                raise ProtocolError("an answer to no request")
        except ProtocolError:
            if self.transport is not None:
                self.transport.abort()  # its requests are retried as after any lost connection
            return
        if answers:
            self.sender.guard(self.sender.answered, self, answers)

    def lost(self) -> None:
        self.sender.guard(self.sender.lost, self)

    def reset(self) -> list[tuple[int, float]]:
        """Forget the connection; returns what was in flight on it."""
        pending = list(self.inflight)
        self.inflight.clear()
        self.unsent.clear()
        self.load -= len(pending)
        self.transport = None
        self.connecting = None
        self.closing = False
        self.parser = ResponseParser()
        return pending


def _load(slot: _Slot) -> int:
    return slot.load


class _Sender:
    """Sends one plan's notifications over its slots and keeps the figures.

    A call is busy from the moment one of its notifications is handed to a slot until that
    notification's final answer; its later notifications wait in `waiting` meanwhile. Ready
    notifications (of idle calls, their time come) sit in a heap by file position, so the
    sending follows the file order as closely as the per-call rule allows.
    """

    def __init__(self, plan: _Plan) -> None:
        self.plan = plan
        self.slots = [_Slot(self) for _ in range(plan.connections)]
        self.ready: list[int] = []
        self.waiting: dict[int, deque[int]] = {}  # busy call -> its released, unsent items
        self.attempts: dict[int, int] = {}  # item -> failed attempts so far (retried only)
        self.statuses: Counter[str] = Counter()
        self.latencies = array("d")
        self.retries = 0
        self.done = 0
        self.finished_at = 0.0
        self.ssl = ssl.create_default_context() if plan.target.tls else None
        self.result: asyncio.Future[None] | None = None
        self.room: asyncio.Future[None] | None = None  # awaited while the window is full
        self.dispatch_due = False
        self.stopped = False
        # The UIS-time window: released, unfinished notifications by time, and every sender's
        # frontier (the oldest time it has not finished) in `frontiers` (shared when several).
        self.open_times: list[tuple[float, int]] = []
        self.finished_items: set[int] = set()
        self.next_time = math.inf  # the time of the next notification not released yet
        self.frontiers: Any = [math.inf]

    def request(self, item: int) -> bytes:
        payload = self.plan.payloads[item]
        return b"%s%d\r\n\r\n%s" % (self.plan.target.head, len(payload), payload)

    def guard(self, callback: Any, *args: Any) -> None:
        """Run a transport callback; a bug in it ends the replay instead of hanging it."""
        if self.stopped:
            return  # the replay is over: late closes and retry timers change nothing
        try:
            callback(*args)
        except Exception as exc:  # noqa: BLE001 - any bug, surfaced by run()
            if self.result is not None and not self.result.done():
                self.result.set_exception(exc)

    def release(self, item: int) -> None:
        call = self.plan.calls[item]
        behind = self.waiting.get(call)
        if behind is None:
            self.waiting[call] = deque()
            heapq.heappush(self.ready, item)
        else:
            behind.append(item)

    def wake(self) -> None:
        """Dispatch once the loop has delivered what else arrived meanwhile: one pass (and one
        write per connection) for a whole batch of answers instead of one per answer."""
        if not self.dispatch_due:
            self.dispatch_due = True
            asyncio.get_running_loop().call_soon(self.guard, self._dispatch_due)

    def _dispatch_due(self) -> None:
        self.dispatch_due = False
        self.dispatch()

    def dispatch(self) -> None:
        """Hand ready notifications to the least loaded slots, up to the pipeline depth."""
        ready = self.ready
        if not ready:
            return
        depth = self.plan.pipeline
        # A pipelined connection is topped up once half of it has drained, not after every
        # answer: a few large writes instead of many one-request ones, which the server then
        # also reads in batches (each small write costs both sides a system call and a wakeup).
        low_water = depth - max(1, depth // 2)
        slots = sorted((s for s in self.slots if s.load <= low_water and not s.closing), key=_load)
        if not slots:
            return
        now = time.perf_counter()
        level = slots[0].load
        while ready and level < depth:
            level += 1
            for slot in slots:  # ascending load: fill each up to `level` before going deeper
                if slot.load >= level or not ready:
                    break
                slot.queue(heapq.heappop(ready), now)
        for slot in slots:
            slot.flush()

    def answered(self, slot: _Slot, answers: list[Answer]) -> None:
        now = time.perf_counter()
        inflight = slot.inflight
        for answer in answers:
            item, sent = inflight.popleft()
            slot.load -= 1
            attempt = self.attempts.get(item, 0)
            if answer.status == 503 and attempt < self.plan.max_retries:
                self._retry(slot, item, _retry_delay(answer.retry_after, attempt))
            else:
                self._finish(item, str(answer.status), (now - sent) * 1000.0)
            if answer.close:
                slot.closing = True
        if slot.closing and slot.transport is not None:
            # The server handles nothing after a closing answer: what was pipelined behind it
            # is retried as soon as the connection is gone.
            slot.transport.close()
        self.wake()

    def lost(self, slot: _Slot) -> None:
        answers = slot.parser.eof()
        if answers and slot.inflight:
            self.answered(slot, answers)
        for item, _ in slot.reset():
            attempt = self.attempts.get(item, 0)
            if attempt < self.plan.max_retries:
                self._retry(slot, item, _retry_delay(None, attempt))
            else:
                self._finish(item, "connection", None)
        self.wake()

    async def connect(self, slot: _Slot) -> None:
        target = self.plan.target
        loop = asyncio.get_running_loop()
        try:
            await asyncio.wait_for(
                loop.create_connection(
                    lambda: _Protocol(slot),
                    target.host,
                    target.port,
                    ssl=self.ssl,
                    server_hostname=target.host if self.ssl else None,
                ),
                self.plan.timeout,
            )
        except (OSError, TimeoutError):
            self.guard(self.lost, slot)  # counts as a failed attempt of what waits on it

    def _retry(self, slot: _Slot, item: int, delay: float) -> None:
        self.attempts[item] = self.attempts.get(item, 0) + 1
        self.retries += 1
        slot.load += 1
        asyncio.get_running_loop().call_later(delay, self.guard, self._unpark, slot, item)

    def _unpark(self, slot: _Slot, item: int) -> None:
        slot.load -= 1
        heapq.heappush(self.ready, item)  # still its call's head: the call stays busy
        self.wake()

    def frontier(self) -> float:
        """The oldest UIS time this sender has not finished (released or not)."""
        heap, done = self.open_times, self.finished_items
        while heap and heap[0][1] in done:
            done.discard(heapq.heappop(heap)[1])
        oldest = heap[0][0] if heap else math.inf
        return min(oldest, self.next_time)

    def _publish_frontier(self) -> None:
        if self.plan.window is not None:
            self.frontiers[self.plan.number] = self.frontier()

    def _finish(self, item: int, status: str, latency_ms: float | None) -> None:
        if self.plan.window is not None:
            self.finished_items.add(item)
            self._publish_frontier()
        self.statuses[status] += 1
        if latency_ms is not None:
            self.latencies.append(latency_ms)
        self.done += 1
        if self.room is not None and not self.room.done():
            self.room.set_result(None)
        call = self.plan.calls[item]
        behind = self.waiting[call]
        if behind:
            heapq.heappush(self.ready, behind.popleft())
        else:
            del self.waiting[call]
        if self.done == len(self.plan.payloads):
            self.finished_at = time.monotonic()
            if self.result is not None and not self.result.done():
                self.result.set_result(None)

    async def _pace(self, start: float) -> None:
        """Release the notifications in file order: each at its time when there is a rate,
        never more than the window beyond the oldest one not yet finished, and — with a UIS-time
        window — never one more than `window` seconds of UIS time after the oldest notification
        any sender has not finished yet (the service orders by UIS time within its lateness
        bound: a compressed replay must not deliver later than UIS would)."""
        positions = self.plan.positions
        times, window = self.plan.times, self.plan.window
        rate = self.plan.rate
        count = len(positions)
        limit_window = self.plan.connections * self.plan.pipeline * WINDOW_FACTOR
        loop = asyncio.get_running_loop()
        item = 0
        while item < count:
            due = math.inf if rate is None else (time.monotonic() - start) * rate
            limit = min(count, self.done + limit_window)
            held_by_others = False
            while item < limit and positions[item] <= due:
                if window is not None:
                    self.next_time = times[item]
                    self._publish_frontier()
                    allowed = min(self.frontiers) + window
                    if times[item] > allowed:
                        held_by_others = self.frontier() + window >= times[item]
                        break
                    heapq.heappush(self.open_times, (times[item], item))
                self.release(item)
                item += 1
            if window is not None:
                self.next_time = times[item] if item < count else math.inf
                self._publish_frontier()
            self.dispatch()
            if item == count:
                return
            if held_by_others:
                await asyncio.sleep(0.002)  # another sender's oldest notification holds us
            elif item == limit or (window is not None and positions[item] <= due):
                self.room = loop.create_future()  # resolved by the next final answer
                await self.room
            else:
                assert rate is not None
                await asyncio.sleep(max(0.0, start + positions[item] / rate - time.monotonic()))

    def _expire(self) -> None:
        """Abort connections whose oldest request has waited longer than the timeout."""
        limit = time.perf_counter() - self.plan.timeout
        for slot in self.slots:
            if slot.inflight and slot.inflight[0][1] < limit and slot.transport is not None:
                slot.transport.abort()

    async def run(self, start: float, progress: Any = None) -> _Outcome:
        """Send everything, starting at `start` (time.monotonic()); `progress(done)` each tick."""
        loop = asyncio.get_running_loop()
        self.result = loop.create_future()
        if not self.plan.payloads:
            self.result.set_result(None)
        await asyncio.sleep(max(0.0, start - time.monotonic()))
        self.finished_at = time.monotonic()
        pacing = asyncio.create_task(self._pace(start))
        try:
            while not self.result.done():
                watched = [self.result] if pacing.done() else [self.result, pacing]
                await asyncio.wait(watched, timeout=TICK_SECONDS)
                if pacing.done() and pacing.exception() is not None:
                    break  # a bug in the pacing: raised just below
                self._expire()
                if progress is not None:
                    progress(self.done)
            await pacing
            self.result.result()  # a bug in a callback surfaces here
        finally:
            self.stopped = True
            pacing.cancel()
            for slot in self.slots:
                if slot.connecting is not None:
                    slot.connecting.cancel()
                if slot.transport is not None:
                    slot.transport.close()
        if progress is not None:
            progress(self.done)
        return _Outcome(
            dict(self.statuses), self.retries, self.latencies.tobytes(), self.finished_at
        )


# --- several senders: one per process -----------------------------------------------------------


def _sender_process(pipe: Connection, counters: Any, frontiers: Any, number: int) -> None:
    """A sender process: take the plan, wait for the common start, send, report the outcome.

    The plan comes over the pipe, not as a Process argument: a child that dies while starting
    then breaks the pipe, where spawn's own hand-over would block the parent for good.
    """
    signal.signal(signal.SIGINT, signal.SIG_IGN)  # Ctrl-C is the parent's: it ends us
    try:
        plan = pipe.recv()
        pipe.send(("loaded", None))
        start = pipe.recv()

        def progress(done: int) -> None:
            counters[number] = done

        sender = _Sender(plan)
        sender.frontiers = frontiers
        outcome = asyncio.run(sender.run(start, progress))
        pipe.send(("done", outcome))
    except BaseException:  # noqa: BLE001 - whatever it is, the parent must hear of it
        pipe.send(("error", traceback.format_exc()))
    finally:
        pipe.close()


class _Senders:
    """The sender processes of one replay and the pipes to them; every step fails with
    ReplayError when one of them dies or reports an error."""

    def __init__(self, count: int) -> None:
        self.ctx = multiprocessing.get_context("spawn")  # a fork would copy the caller's loop
        self.counters = self.ctx.Array("q", count, lock=False)
        self.frontiers = self.ctx.Array("d", [math.inf] * count, lock=False)
        self.pool = ThreadPoolExecutor(max_workers=count, thread_name_prefix="replay-pipe")
        self.pipes: list[Connection] = []
        self.workers: list[Any] = []
        self.pending: list[asyncio.Future[Any]] = []  # pipe operations running in the pool
        for number in range(count):
            ours, theirs = self.ctx.Pipe()
            worker = self.ctx.Process(
                target=_sender_process,
                args=(theirs, self.counters, self.frontiers, number),
                daemon=True,
            )
            worker.start()
            theirs.close()
            self.pipes.append(ours)
            self.workers.append(worker)

    def _in_pool(self, call: Any, *args: Any) -> asyncio.Future[Any]:
        future = asyncio.get_running_loop().run_in_executor(self.pool, call, *args)
        self.pending.append(future)
        return future

    async def send(self, messages: list[Any]) -> None:
        """Send one message to each sender (a plan can be large: from threads)."""
        try:
            await asyncio.gather(*(self._in_pool(p.send, m) for p, m in zip(self.pipes, messages)))
        except OSError as exc:
            raise ReplayError(f"a sender process died: {exc}") from exc

    async def receive(self, expected: str) -> list[Any]:
        """Every sender's next message, which must be `expected`."""
        try:
            messages = await asyncio.gather(*(self._in_pool(p.recv) for p in self.pipes))
        except (EOFError, OSError) as exc:
            raise ReplayError("a sender process died") from exc
        values = []
        for kind, value in messages:
            if kind == "error":
                raise ReplayError(f"a sender process failed:\n{value}")
            if kind != expected:
                raise ReplayError(f"a sender process said {kind!r}, expected {expected!r}")
            values.append(value)
        return values

    async def close(self) -> None:
        """End the processes (they are done or failed) and wait for the pipe threads."""
        for worker in self.workers:
            if worker.is_alive():
                worker.terminate()
        await asyncio.gather(*(self._in_pool(w.join) for w in self.workers))
        await asyncio.gather(*self.pending, return_exceptions=True)  # EOF once the peer is gone
        for pipe in self.pipes:
            pipe.close()
        self.pool.shutdown()


async def _progress_while(task: asyncio.Future[Any], count: Any, bar: tqdm[Any]) -> None:
    """Move the bar to `count()` every tick until `task` is done."""
    shown = 0
    while not task.done():
        await asyncio.wait([task], timeout=TICK_SECONDS * 2)
        now = count()
        bar.update(now - shown)
        shown = now


async def _run_in_processes(plans: list[_Plan], bar: tqdm[Any]) -> tuple[float, list[_Outcome]]:
    senders = _Senders(len(plans))
    for number, plan in enumerate(plans):
        # Each slot starts at its sender's first UIS time, not at infinity: a sender whose
        # process starts late must still hold the others back from its first notification on.
        senders.frontiers[number] = plan.times[0] if plan.times else math.inf
    try:
        await senders.send(list(plans))
        await senders.receive("loaded")
        start = time.monotonic() + START_MARGIN_SECONDS
        await senders.send([start] * len(plans))
        results = asyncio.ensure_future(senders.receive("done"))
        await _progress_while(results, lambda: sum(senders.counters), bar)
        return start, await results
    finally:
        await senders.close()


async def _run_here(plan: _Plan, bar: tqdm[Any]) -> tuple[float, list[_Outcome]]:
    sender = _Sender(plan)
    start = time.monotonic()
    task = asyncio.ensure_future(sender.run(start))
    await _progress_while(task, lambda: sender.done, bar)
    return start, [await task]


@contextmanager
def _gc_paused() -> Iterator[None]:
    """Building hundreds of thousands of dicts makes the cyclic GC rescan them over and over
    (seconds for a large file); none of them form cycles."""
    was_enabled = gc.isenabled()
    gc.disable()
    try:
        yield
    finally:
        if was_enabled:
            gc.enable()


def _plans(
    bodies: list[dict[str, Any]],
    target: Target,
    processes: int,
    concurrency: int,
    pipeline: int,
    rate: float | None,
    max_retries: int,
    timeout: float,
    window: float | None = None,
) -> list[_Plan]:
    """Deal the calls out to `processes` senders (in order of first appearance, so the shares
    are even) and the connections likewise; each share keeps the file order."""
    numbers: dict[Hashable, int] = {}
    shares: list[tuple[list[int], list[int], list[bytes], list[float]]] = [
        ([], [], [], []) for _ in range(processes)
    ]
    previous = 0.0
    for position, doc in enumerate(bodies):
        call_id = _call_id(doc)
        key: Hashable = ("call", call_id) if call_id is not None else ("line", position)
        call = numbers.setdefault(key, len(numbers))
        positions, calls, payloads, times = shares[call % processes]
        positions.append(position)
        calls.append(call)
        payloads.append(orjson.dumps(doc))
        previous = _event_time(doc, previous)
        times.append(previous)
    return [
        _Plan(
            target,
            positions,
            calls,
            payloads,
            concurrency // processes + (1 if number < concurrency % processes else 0),
            pipeline,
            rate,
            max_retries,
            timeout,
            times,
            window,
            number,
        )
        for number, (positions, calls, payloads, times) in enumerate(shares)
    ]


def _event_time(doc: dict[str, Any], previous: float) -> float:
    """A body's `notification_time` in seconds (its offset is the same for the whole file, so
    a naive reading compares right); `previous` for a body without one."""
    value = doc.get("notification_time")
    if isinstance(value, str):
        try:
            return datetime.fromisoformat(value.strip()).replace(tzinfo=UTC).timestamp()
        except ValueError:
            pass
    return previous


def _merge(outcomes: list[_Outcome], start: float) -> tuple[Counter[str], int, list[float], float]:
    statuses: Counter[str] = Counter()
    latencies = array("d")
    for outcome in outcomes:
        statuses.update(outcome.statuses)
        latencies.frombytes(outcome.latencies)
    elapsed = max((o.finished for o in outcomes), default=start) - start
    return statuses, sum(o.retries for o in outcomes), sorted(latencies), elapsed


# --- setup through the admin API -----------------------------------------------------------------


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


def _report(
    outcomes: list[_Outcome], start: float, prepared: _Setup, plans: list[_Plan]
) -> ReplayReport:
    statuses, retries, ordered, elapsed = _merge(outcomes, start)
    sent = sum(statuses.values())
    errors = {k: v for k, v in statuses.items() if not k.startswith("2")}
    return ReplayReport(
        sent=sent,
        ok=sent - sum(errors.values()),
        errors=errors,
        retries=retries,
        elapsed_seconds=elapsed,
        throughput=sent / elapsed if elapsed > 0 else 0.0,
        p50_ms=_percentile(ordered, 0.50),
        p90_ms=_percentile(ordered, 0.90),
        p99_ms=_percentile(ordered, 0.99),
        max_ms=ordered[-1] if ordered else 0.0,
        webhook_path=prepared.webhook_path,
        staff_created=prepared.staff_created,
        operators_mapped=prepared.operators_mapped,
        processes=len(plans),
        connections=sum(p.connections for p in plans),
        pipeline=plans[0].pipeline,
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
    processes: int = 1,
    pipeline: int = 1,
    timeout: float = REQUEST_TIMEOUT_SECONDS,
    lateness: float | None = DEFAULT_LATENESS,
) -> ReplayReport:
    """Post every notification of the JSONL file at `path` to the service at `url`.

    Per-call order is kept; `rate` (notifications/s) paces the file order, None sends as fast
    as `concurrency` connections (in total, shared out among `processes` sender processes),
    each with up to `pipeline` requests in flight, allow. With `setup`, the admin API (token
    from `admin_token` or $CALLROUTER_ADMIN_TOKEN) gives the webhook path and maps the file's
    operators; without it `webhook_path` is required. With `lateness` (seconds, None: off), a
    notification is never sent while one earlier by more than that, in UIS time, is not
    answered: a compressed replay then delivers within the service's lateness bound, as UIS
    does, so it ends in the cases a replay in real time would. Raises ReplayError when the
    replay cannot start.
    """
    if concurrency < 1 or pipeline < 1 or processes < 1 or (rate is not None and rate <= 0):
        raise ReplayError("concurrency, pipeline and processes must be >= 1 and rate > 0")
    base = url.rstrip("/")
    with _gc_paused():
        bodies = load_bodies(path)
    import aiohttp  # the admin API only; senders speak HTTP themselves

    admin_timeout = aiohttp.ClientTimeout(total=REQUEST_TIMEOUT_SECONDS)
    async with aiohttp.ClientSession(timeout=admin_timeout) as session:
        prepared = await _prepare(session, base, bodies, setup, admin_token, webhook_path)
    target = Target.from_url(base, prepared.webhook_path)
    with _gc_paused():
        plans = _plans(
            bodies,
            target,
            min(processes, concurrency),  # every sender needs a connection of its own
            concurrency,
            pipeline,
            rate,
            max_retries,
            timeout,
            lateness,
        )
    del bodies  # only the encoded payloads are needed from here on
    with tqdm(
        total=sum(len(p.payloads) for p in plans),
        file=sys.stderr,
        unit="msg",
        disable=not progress,
        mininterval=0.5,
    ) as bar:
        if len(plans) == 1:
            start, outcomes = await _run_here(plans[0], bar)
        else:
            start, outcomes = await _run_in_processes(plans, bar)
    return _report(outcomes, start, prepared, plans)


def add_arguments(parser: argparse.ArgumentParser) -> None:
    """Add the `replay` subcommand's arguments to `parser`."""
    parser.add_argument("file", help="JSONL traffic (bench/generate_traffic.py)")
    parser.add_argument("--url", default="http://127.0.0.1:8080", help="service base URL")
    parser.add_argument("--rate", type=float, default=None, help="notifications per second")
    parser.add_argument(
        "--concurrency", type=int, default=64, help="connections in total (requests in flight)"
    )
    parser.add_argument(
        "--pipeline",
        type=int,
        default=1,
        help="requests of different calls queued per connection (HTTP/1.1 pipelining)",
    )
    parser.add_argument(
        "--processes", type=int, default=1, help="sender processes sharing out the calls"
    )
    parser.add_argument(
        "--no-setup",
        dest="setup",
        action="store_false",
        help="skip the admin setup (then --webhook-path is required)",
    )
    parser.add_argument("--admin-token", default=None, help=f"default: ${ADMIN_TOKEN_ENV}")
    parser.add_argument("--webhook-path", default=None, help="/webhooks/uis/<secret>")
    parser.add_argument("--retries", type=int, default=5, help="retries per notification")
    parser.add_argument(
        "--timeout", type=float, default=REQUEST_TIMEOUT_SECONDS, help="seconds per request"
    )
    parser.add_argument(
        "--lateness",
        type=float,
        default=DEFAULT_LATENESS,
        help="seconds of UIS time a notification may be sent after an earlier one still"
        " unanswered; keep it below the service's lateness_seconds (0: no limit)",
    )
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
                processes=args.processes,
                pipeline=args.pipeline,
                timeout=args.timeout,
                lateness=args.lateness or None,
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
