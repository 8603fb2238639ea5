"""Reference webhook endpoints: what the product's webhook would cost if it did only this.

    python bench/endpoints.py raw|bare|durable --port P [--host H] [--workers N] [--db FILE]

All answer `POST /webhooks/uis/<anything>` like the product (200 `{"ok": true}`, 400 for a
body that is not JSON), so `callrouter replay --no-setup` drives them unchanged:

- raw: no framework: an asyncio protocol that frames the requests, parses each body (orjson)
  and answers everything that one read brought in one write. The least an endpoint in Python
  can cost, so a replay against it shows the load client's own ceiling.
- bare: aiohttp reads the body, parses it (orjson) and answers: the framework's floor.
- durable: the same, but the body is committed to a SQLite file (WAL, synchronous=NORMAL, so it
  survives a crash of the process) before its 200. Commits are grouped: every body waiting when
  the writer becomes free goes into one transaction, `INSERT ... ON CONFLICT(body_hash) DO
  NOTHING`, so a duplicate is a no-op.

With `--workers N` there are N processes on one port (SO_REUSEPORT); durable workers share the
file, the WAL lock serialising their transactions. `GET /healthz` answers once every worker
listens.
"""

from __future__ import annotations

import argparse
import asyncio
import hashlib
import multiprocessing
import signal
import sqlite3
import sys
import tempfile
from collections.abc import AsyncIterator
from concurrent.futures import ThreadPoolExecutor
from multiprocessing.synchronize import Event as EventType
from pathlib import Path

import orjson
from aiohttp import web

OK = b'{"ok": true}'
NOT_JSON = b'{"error": {"code": "not_json", "message": "The body is not JSON."}}'
SCHEMA = (
    "CREATE TABLE IF NOT EXISTS inbox ("
    " id INTEGER PRIMARY KEY, body_hash BLOB NOT NULL UNIQUE, body BLOB NOT NULL)"
)
INSERT = "INSERT INTO inbox (body_hash, body) VALUES (?, ?) ON CONFLICT(body_hash) DO NOTHING"


def _answer(body: bytes, status: int = 200) -> web.Response:
    return web.Response(body=body, status=status, content_type="application/json")


def _parsed(raw: bytes) -> bool:
    try:
        orjson.loads(raw)
    except orjson.JSONDecodeError:
        return False
    return True


async def _bare(request: web.Request) -> web.Response:
    raw = await request.read()
    return _answer(OK) if _parsed(raw) else _answer(NOT_JSON, 400)


async def _healthz(request: web.Request) -> web.Response:
    return _answer(OK)


def open_database(path: str) -> sqlite3.Connection:
    """A connection in WAL mode with synchronous=NORMAL: a commit survives a process crash."""
    db = sqlite3.connect(path, isolation_level=None, check_same_thread=False)
    db.execute("PRAGMA journal_mode=WAL")
    db.execute("PRAGMA synchronous=NORMAL")
    db.execute("PRAGMA busy_timeout=10000")  # other workers' transactions on the same file
    db.execute(SCHEMA)
    return db


class GroupCommitter:
    """Bodies wait in `pending`; one writer commits all of them in one transaction at a time.

    While a transaction runs, new bodies queue up and go together into the next one, so the
    number of transactions per second follows the disk, not the request rate.
    """

    def __init__(self, db: sqlite3.Connection) -> None:
        self.db = db
        self.pending: list[tuple[bytes, bytes, asyncio.Future[None]]] = []
        self.wakeup = asyncio.Event()
        # sqlite3 blocks: the one writer thread keeps it off the event loop.
        self.thread = ThreadPoolExecutor(max_workers=1, thread_name_prefix="group-commit")
        self.transactions = 0

    async def store(self, raw: bytes) -> None:
        """Return once `raw` is committed (or was already there)."""
        done = asyncio.get_running_loop().create_future()
        self.pending.append((hashlib.blake2b(raw, digest_size=16).digest(), raw, done))
        self.wakeup.set()
        await done

    def _commit(self, rows: list[tuple[bytes, bytes]]) -> None:
        self.db.execute("BEGIN IMMEDIATE")
        try:
            self.db.executemany(INSERT, rows)
        except BaseException:
            self.db.execute("ROLLBACK")
            raise
        self.db.execute("COMMIT")

    async def run(self) -> None:
        """Commit what is pending, again and again, until cancelled."""
        loop = asyncio.get_running_loop()
        while True:
            await self.wakeup.wait()
            self.wakeup.clear()
            batch, self.pending = self.pending, []
            if not batch:
                continue
            try:
                await loop.run_in_executor(self.thread, self._commit, [b[:2] for b in batch])
            except Exception as exc:  # noqa: BLE001 - the group failed: each request answers 500
                for _, _, done in batch:
                    if not done.done():
                        done.set_exception(exc)
                continue
            self.transactions += 1
            for _, _, done in batch:
                if not done.done():  # the client may have gone away meanwhile
                    done.set_result(None)

    def close(self) -> None:
        """Stop the writer thread and close the database."""
        self.thread.shutdown(wait=True)
        self.db.close()


COMMITTER = web.AppKey("committer", GroupCommitter)


async def _durable(request: web.Request) -> web.Response:
    raw = await request.read()
    if not _parsed(raw):
        return _answer(NOT_JSON, 400)
    await request.app[COMMITTER].store(raw)
    return _answer(OK)


HTTP_OK = b"HTTP/1.1 200 OK\r\nContent-Type: application/json\r\nContent-Length: %d\r\n\r\n%s"
RAW_OK = HTTP_OK % (len(OK), OK)
RAW_NOT_JSON = (
    b"HTTP/1.1 400 Bad Request\r\nContent-Type: application/json\r\nContent-Length: %d\r\n\r\n%s"
    % (len(NOT_JSON), NOT_JSON)
)
RAW_NOT_FOUND = b"HTTP/1.1 404 Not Found\r\nContent-Length: 0\r\n\r\n"
RAW_BAD = b"HTTP/1.1 400 Bad Request\r\nContent-Length: 0\r\nConnection: close\r\n\r\n"


def _raw_answer(head: bytes, body: bytes) -> bytes:
    method, _, rest = head.partition(b" ")
    target = rest.partition(b" ")[0]
    if method == b"POST" and target.startswith(b"/webhooks/uis/"):
        return RAW_OK if _parsed(body) else RAW_NOT_JSON
    if method == b"GET" and target == b"/healthz":
        return RAW_OK
    return RAW_NOT_FOUND


class RawEndpoint(asyncio.Protocol):
    """HTTP/1.1 keep-alive with pipelining, Content-Length bodies only; answers in order."""

    def __init__(self) -> None:
        self.buffer = bytearray()
        self.transport: asyncio.Transport | None = None

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        assert isinstance(transport, asyncio.Transport)
        self.transport = transport

    def data_received(self, data: bytes) -> None:
        assert self.transport is not None
        buffer = self.buffer
        buffer += data
        answers: list[bytes] = []
        pos = 0
        while (end := buffer.find(b"\r\n\r\n", pos)) >= 0:
            head = bytes(buffer[pos:end])
            start = head.lower().find(b"\r\ncontent-length:")
            stop = head.find(b"\r\n", start + 2)
            try:
                length = (
                    int(head[start + 17 : stop if stop > 0 else len(head)]) if start >= 0 else 0
                )
            except ValueError:
                self.transport.write(b"".join(answers) + RAW_BAD)
                self.transport.close()
                return
            if end + 4 + length > len(buffer):
                break
            answers.append(_raw_answer(head, bytes(buffer[end + 4 : end + 4 + length])))
            pos = end + 4 + length
        del buffer[:pos]
        if answers:
            self.transport.write(b"".join(answers))


async def _serve_raw(host: str, port: int, ready: EventType | None) -> None:
    loop = asyncio.get_running_loop()
    server = await loop.create_server(RawEndpoint, host, port, reuse_port=True, backlog=1024)
    if ready is not None:
        ready.set()
    stop = asyncio.Event()
    for sig in (signal.SIGINT, signal.SIGTERM):
        loop.add_signal_handler(sig, stop.set)
    async with server:
        await stop.wait()


def create_app(kind: str, db_path: str | None = None) -> web.Application:
    """The `bare` or `durable` endpoint app (durable needs `db_path`)."""
    app = web.Application(client_max_size=64 * 1024)
    app.router.add_get("/healthz", _healthz)
    if kind == "bare":
        app.router.add_post("/webhooks/uis/{secret}", _bare)
        return app
    if db_path is None:
        raise ValueError("the durable endpoint needs a database file")
    path = db_path

    async def committer(app: web.Application) -> AsyncIterator[None]:
        group = GroupCommitter(open_database(path))
        app[COMMITTER] = group
        task = asyncio.create_task(group.run())
        yield
        task.cancel()
        await asyncio.gather(task, return_exceptions=True)
        group.close()

    app.cleanup_ctx.append(committer)
    app.router.add_post("/webhooks/uis/{secret}", _durable)
    return app


def serve(kind: str, host: str, port: int, db_path: str | None, ready: EventType | None) -> None:
    """Run one worker until SIGINT/SIGTERM; `ready` is set once it listens."""
    if kind == "raw":
        asyncio.run(_serve_raw(host, port, ready))
        return
    app = create_app(kind, db_path)
    if ready is not None:
        event = ready

        async def listening(app: web.Application) -> None:
            event.set()

        app.on_startup.append(listening)
    web.run_app(
        app, host=host, port=port, reuse_port=True, access_log=None, print=None, backlog=1024
    )


def main(argv: list[str] | None = None) -> int:
    """Command line entry point."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("kind", choices=["raw", "bare", "durable"])
    parser.add_argument("--host", default="127.0.0.1")
    parser.add_argument("--port", type=int, required=True)
    parser.add_argument("--workers", type=int, default=1, help="processes sharing the port")
    parser.add_argument("--db", default=None, help="SQLite file (durable; default: a temp dir)")
    args = parser.parse_args(argv)
    db_path = args.db
    if args.kind == "durable" and db_path is None:
        db_path = str(Path(tempfile.mkdtemp(prefix="endpoint-")) / "inbox.sqlite3")
    if db_path is not None:
        open_database(db_path).close()  # the schema once, before workers race to create it
    ctx = multiprocessing.get_context("spawn")
    # Daemon workers are terminated when this process exits (run_app exits on SIGINT/SIGTERM).
    for _ in range(args.workers - 1):
        ready = ctx.Event()
        ctx.Process(
            target=serve, args=(args.kind, args.host, args.port, db_path, ready), daemon=True
        ).start()
        if not ready.wait(60):
            print("endpoints: a worker did not start", file=sys.stderr)
            return 1
    serve(args.kind, args.host, args.port, db_path, None)
    return 0


if __name__ == "__main__":
    sys.exit(main())
