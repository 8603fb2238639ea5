"""A fingerprint of every case a service made: what a user sees, free of ids and write order.

The same traffic must end in the same cases however it was delivered (R32, STYLE 12), so two
services fed the same file are compared by their fingerprints, and a difference is explained
user by user. Read it from a running service's HTTP API (admin token) or, faster, straight from
its database (read-only); both give the same fingerprint.

    python -m callrouter.testing.fingerprint DB_A DB_B   # database URLs or SQLite file paths
"""

from __future__ import annotations

import asyncio
import difflib
import hashlib
import sys
from collections import Counter, defaultdict
from collections.abc import Collection, Iterable, Sequence
from dataclasses import dataclass, replace
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import aiohttp
import orjson
from sqlalchemy import event, select
from sqlalchemy.engine import make_url
from sqlalchemy.ext.asyncio import AsyncConnection, AsyncEngine, create_async_engine

from callrouter.storage.models import Case, Message, Recording, Staff, UserPhone

SQLITE_FILE = "callrouter.sqlite3"  # the service's default database in its data dir
_TIMEOUT = aiohttp.ClientTimeout(total=60)
_WHOLE = 10**6  # diff context lines: all of them


@dataclass(frozen=True, slots=True)
class CallPrint:
    """The call a message records."""

    call_session_id: int  # UIS's id: the same in every replay of a file
    direction: str | None
    outcome: str | None
    talk_seconds: int | None
    recording_urls: tuple[str, ...]  # sorted: the order they were stored in says nothing


@dataclass(frozen=True, slots=True)
class MessagePrint:
    created_at: str  # UTC, ISO 8601 with microseconds
    kind: str
    author: str | None  # "Full Name <email>" of the staff member
    body: str
    call: CallPrint | None


@dataclass(frozen=True, slots=True)
class CasePrint:
    phones: tuple[str, ...]  # the user's numbers, in the user's order
    created_at: str
    subject: str
    status: str
    channel: str
    call_icon: str | None
    assignee: str | None  # "Full Name <email>"
    closed_at: str | None
    messages: tuple[MessagePrint, ...]  # oldest first; ties ordered by content, not id

    def key(self) -> tuple[tuple[str, ...], str]:
        """Where the case sorts: by its user's numbers, then the first call it records (else its
        creation time), so that a user's cases stay together in any order they were written."""
        first = next((m.call for m in self.messages if m.call is not None), None)
        return self.phones, str(first.call_session_id) if first else self.created_at

    def title(self) -> str:
        """One line naming the case in a diff."""
        phones = ",".join(self.phones) or "no user"
        return f"{phones} «{self.subject}» created {self.created_at}"

    def lines(self) -> list[str]:
        """The case as lines of text, one per field and per message, for diffs."""
        head = [
            f"subject: {self.subject}",
            f"status: {self.status}",
            f"channel: {self.channel}",
            f"call_icon: {self.call_icon}",
            f"assignee: {self.assignee}",
            f"created_at: {self.created_at}",
            f"closed_at: {self.closed_at}",
        ]
        return head + [f"message: {_message_line(m)}" for m in self.messages]


@dataclass(frozen=True, slots=True)
class Fingerprint:
    """Every case in a canonical order; equal fingerprints mean the same cases."""

    cases: tuple[CasePrint, ...]

    def to_json(self) -> bytes:
        """The canonical JSON (what `digest` hashes)."""
        return orjson.dumps(self.cases)

    def digest(self) -> str:
        """A stable hex digest (SHA-256) of the canonical JSON."""
        return hashlib.sha256(self.to_json()).hexdigest()

    def of_phones(self, phones: Collection[str]) -> Fingerprint:
        """Only the cases of users with one of `phones`: a sample of the traffic that holds
        every call of some numbers is compared with the same users' cases of the whole."""
        wanted = set(phones)
        return Fingerprint(tuple(c for c in self.cases if wanted.intersection(c.phones)))

    def summary(self) -> str:
        """One line: cases by status and icon, messages, calls recorded."""
        statuses = Counter(c.status for c in self.cases)
        icons = Counter(str(c.call_icon) for c in self.cases)
        messages = sum(len(c.messages) for c in self.cases)
        calls = len({m.call.call_session_id for c in self.cases for m in c.messages if m.call})
        return (
            f"{len(self.cases)} cases ("
            + ", ".join(f"{s} {n}" for s, n in sorted(statuses.items()))
            + "; icon "
            + ", ".join(f"{s} {n}" for s, n in sorted(icons.items()))
            + f"), {messages} messages, {calls} calls, digest {self.digest()[:16]}"
        )


def _message_line(m: MessagePrint) -> str:
    author = m.author or "-"
    text = f"{m.created_at} {m.kind} by {author} body={m.body!r}"
    if m.call is not None:
        c = m.call
        text += (
            f" call={c.call_session_id} {c.direction} {c.outcome} talk={c.talk_seconds}s"
            f" recordings={list(c.recording_urls)}"
        )
    return text


def _utc(value: datetime | str | None) -> str | None:
    """A time as UTC ISO 8601 with microseconds: the API answers in the account's offset, the
    database in UTC (naive on SQLite)."""
    if value is None:
        return None
    moment = datetime.fromisoformat(value) if isinstance(value, str) else value
    if moment.tzinfo is None:
        moment = moment.replace(tzinfo=UTC)
    return moment.astimezone(UTC).isoformat(timespec="microseconds")


def build(cases: Iterable[CasePrint]) -> Fingerprint:
    """The fingerprint of `cases`: their messages ordered by time (ties by content), the cases
    by their key, then content."""
    made = [
        replace(
            c, messages=tuple(sorted(c.messages, key=lambda m: (m.created_at, orjson.dumps(m))))
        )
        for c in cases
    ]
    return Fingerprint(tuple(sorted(made, key=lambda c: (c.key(), orjson.dumps(c)))))


def _staff_label(full_name: str | None, email: str | None) -> str:
    return f"{full_name or ''} <{email or ''}>"


# --- from the HTTP API ---------------------------------------------------------------------------


async def _get(http: aiohttp.ClientSession, url: str) -> Any:
    async with http.get(url) as response:
        text = await response.text()
        if response.status != 200:
            raise RuntimeError(f"GET {url} answered {response.status}: {text[:300]}")
        return orjson.loads(text)


async def _all_pages(http: aiohttp.ClientSession, url: str, size: int) -> list[dict[str, Any]]:
    """Every item of a paged list (API.md "Lists"), each id once."""
    found: dict[Any, dict[str, Any]] = {}
    offset = 0
    while True:
        page = await _get(http, f"{url}?limit={size}&offset={offset}")
        found |= {item["id"]: item for item in page["items"]}
        offset += len(page["items"])
        if not page["items"] or offset >= int(page["total"]):
            return list(found.values())


async def from_api(
    base_url: str, admin_token: str, *, concurrency: int = 8, page_size: int = 500
) -> Fingerprint:
    """The fingerprint read over HTTP: `GET /api/v1/cases` pages, each case with its messages,
    the users' phones and the staff list. Raises RuntimeError on a non-200 answer."""
    base = base_url.rstrip("/")
    headers = {"Authorization": f"Bearer {admin_token}", "Accept": "application/json"}
    limit = asyncio.Semaphore(concurrency)
    async with aiohttp.ClientSession(headers=headers, timeout=_TIMEOUT) as http:

        async def one(path: str) -> Any:
            async with limit:
                return await _get(http, base + path)

        staff = {
            s["id"]: _staff_label(s.get("full_name"), s.get("email"))
            for s in await _all_pages(http, base + "/api/v1/staff", page_size)
        }
        listed = await _all_pages(http, base + "/api/v1/cases", page_size)
        details = await asyncio.gather(*(one(f"/api/v1/cases/{c['id']}") for c in listed))
        user_ids = sorted({c["user_id"] for c in listed if c["user_id"] is not None})
        users = await asyncio.gather(*(one(f"/api/v1/users/{u}") for u in user_ids))
    phones = {u["id"]: tuple(u.get("phones") or ()) for u in users}

    def person(staff_id: int | None) -> str | None:
        return None if staff_id is None else staff.get(staff_id, f"unknown staff {staff_id}")

    def message(m: dict[str, Any]) -> MessagePrint:
        call = m.get("call")
        return MessagePrint(
            created_at=_utc(m["created_at"]) or "",
            kind=m["kind"],
            author=person(m.get("author_staff_id")),
            body=m.get("body") or "",
            call=None
            if call is None
            else CallPrint(
                call_session_id=int(call["call_session_id"]),
                direction=call.get("direction"),
                outcome=call.get("outcome"),
                talk_seconds=call.get("talk_seconds"),
                recording_urls=tuple(sorted(call.get("recording_urls") or ())),
            ),
        )

    return build(
        CasePrint(
            phones=phones.get(c["user_id"], ()),
            created_at=_utc(c["created_at"]) or "",
            subject=c["subject"],
            status=c["status"],
            channel=c.get("channel") or "",
            call_icon=c.get("call_icon"),
            assignee=person(c.get("assignee_id")),
            closed_at=_utc(c.get("closed_at")),
            messages=tuple(message(m) for m in c.get("messages") or ()),
        )
        for c in details
    )


def read_api(base_url: str, admin_token: str, **options: Any) -> Fingerprint:
    """`from_api` for code without an event loop."""
    return asyncio.run(from_api(base_url, admin_token, **options))


# --- from the database ---------------------------------------------------------------------------


def database_url(location: str | Path) -> str:
    """An async, read-only SQLAlchemy URL for a database URL, a SQLite file or a data dir.

    SQLite is opened with `mode=ro`; PostgreSQL gets a read-only transaction in `from_database`.
    """
    text = str(location)
    if "://" not in text:
        given = Path(text)
        text = f"sqlite:///{(given / SQLITE_FILE if given.is_dir() else given).resolve()}"
    url = make_url(text)
    backend = url.get_backend_name()
    if backend == "sqlite":
        path = url.database or ""
        if path in ("", ":memory:"):
            raise ValueError("a fingerprint needs a SQLite file, not an in-memory database")
        path = path.removeprefix("file:")
        return str(
            url.set(drivername="sqlite+aiosqlite", database=f"file:{path}").update_query_dict(
                {"mode": "ro", "uri": "true"}
            )
        )
    if backend == "postgresql":
        return url.set(drivername="postgresql+asyncpg").render_as_string(hide_password=False)
    raise ValueError(f"unsupported database {backend!r} (sqlite or postgresql)")


def read_only_engine(location: str | Path) -> AsyncEngine:
    """An engine that reads `location` (see `database_url`) in read-only snapshot transactions;
    the caller disposes of it."""
    url = database_url(location)
    if url.startswith("sqlite"):
        engine = create_async_engine(url)

        # The driver's own transaction handling would let each SELECT see a different moment;
        # an explicit BEGIN makes the whole read one snapshot (SQLAlchemy's SQLite recipe).
        def no_driver_transactions(dbapi_connection: Any, _record: Any) -> None:
            dbapi_connection.isolation_level = None

        def begin(connection: Any) -> None:
            connection.exec_driver_sql("BEGIN")

        event.listen(engine.sync_engine, "connect", no_driver_transactions)
        event.listen(engine.sync_engine, "begin", begin)
        return engine
    return create_async_engine(
        url,
        execution_options={"isolation_level": "REPEATABLE READ", "postgresql_readonly": True},
    )


async def _read_database(conn: AsyncConnection) -> list[CasePrint]:
    staff = {
        row.id: _staff_label(row.full_name, row.email)
        for row in await conn.execute(select(Staff.id, Staff.full_name, Staff.email))
    }
    phones: dict[int, list[str]] = defaultdict(list)
    for row in await conn.execute(
        select(UserPhone.user_id, UserPhone.phone).order_by(
            UserPhone.user_id, UserPhone.position, UserPhone.id
        )
    ):
        phones[row.user_id].append(row.phone)
    recordings: dict[int, list[tuple[int | None, str]]] = defaultdict(list)
    for part in await conn.execute(
        select(Recording.call_session_id, Recording.employee_id, Recording.url)
    ):
        recordings[part.call_session_id].append((part.employee_id, part.url))
    messages: dict[int, list[MessagePrint]] = defaultdict(list)
    for m in await conn.execute(select(Message)):
        messages[m.case_id].append(_db_message(m, staff, recordings))
    cases = []
    for c in await conn.execute(select(Case)):
        cases.append(
            CasePrint(
                phones=tuple(phones.get(c.user_id, ())) if c.user_id is not None else (),
                created_at=_utc(c.created_at) or "",
                subject=c.subject,
                status=c.status,
                channel=c.channel,
                call_icon=c.call_icon,
                assignee=staff.get(c.assignee_id) if c.assignee_id is not None else None,
                closed_at=_utc(c.closed_at),
                messages=tuple(messages.get(c.id, ())),
            )
        )
    return cases


def _db_message(
    m: Any, staff: dict[int, str], recordings: dict[int, list[tuple[int | None, str]]]
) -> MessagePrint:
    call = None
    if m.call_session_id is not None:
        # As the API shows them (storage.cases.recordings_for): a transfer's recordings belong
        # to the part of their operator; one without an operator to every part.
        urls = sorted(
            url
            for employee_id, url in recordings.get(m.call_session_id, ())
            if employee_id is None or m.employee_id is None or employee_id == m.employee_id
        )
        call = CallPrint(
            call_session_id=int(m.call_session_id),
            direction=m.call_direction,
            outcome=m.call_outcome,
            talk_seconds=m.talk_seconds,
            recording_urls=tuple(urls),
        )
    author = m.author_staff_id
    return MessagePrint(
        created_at=_utc(m.created_at) or "",
        kind=m.kind,
        author=None if author is None else staff.get(author, f"unknown staff {author}"),
        body=m.body or "",
        call=call,
    )


async def from_database(location: str | Path) -> Fingerprint:
    """The fingerprint read straight from the service's database (a URL, a SQLite file or a
    data dir), in one read-only transaction; nothing is written."""
    engine = read_only_engine(location)
    try:
        async with engine.connect() as conn, conn.begin():
            cases = await _read_database(conn)
    finally:
        await engine.dispose()
    return build(cases)


def read_database(location: str | Path) -> Fingerprint:
    """`from_database` for code without an event loop."""
    return asyncio.run(from_database(location))


# --- comparing -----------------------------------------------------------------------------------


def diff(
    left: Fingerprint,
    right: Fingerprint,
    names: tuple[str, str] = ("left", "right"),
    *,
    limit: int = 20,
) -> str:
    """How two fingerprints differ, for people: "" when equal. Else the counts, then for up to
    `limit` users (by phone numbers) whose cases differ, a diff of all their cases: a user's
    cases are decided together (R16, R23), so the unchanged ones explain the changed ones."""
    if left.cases == right.cases:
        return ""
    a, b = names
    only_left = Counter(left.cases) - Counter(right.cases)
    only_right = Counter(right.cases) - Counter(left.cases)
    ours, theirs = _by_user(left.cases), _by_user(right.cases)
    users = sorted(u for u in ours.keys() | theirs.keys() if ours.get(u) != theirs.get(u))
    counts = f"{only_left.total()} case(s) only in {a}, {only_right.total()} only in {b}"
    legend = f"per user, '-' lines are {a} only, '+' lines {b} only"
    out = [
        f"{a}: {left.summary()}",
        f"{b}: {right.summary()}",
        f"{counts}; {len(users)} user(s) affected; {legend}:",
    ]
    for user in users[:limit]:
        before, after = ours.get(user, []), theirs.get(user, [])
        out.append(
            f"user {','.join(user) or '(none)'}: {len(before)} case(s) in {a}, {len(after)} in {b}"
        )
        out.extend(
            f"    {line}"
            for line in difflib.unified_diff(
                _user_lines(before), _user_lines(after), a, b, lineterm="", n=_WHOLE
            )
            if not line.startswith(("---", "+++", "@@"))
        )
    if len(users) > limit:
        out.append(f"... and {len(users) - limit} more user(s)")
    return "\n".join(out)


def _by_user(cases: Iterable[CasePrint]) -> dict[tuple[str, ...], list[CasePrint]]:
    found: dict[tuple[str, ...], list[CasePrint]] = defaultdict(list)
    for case in cases:
        found[case.phones].append(case)
    return found


def _user_lines(cases: Sequence[CasePrint]) -> list[str]:
    """A user's cases as text: a title line per case, then its fields indented."""
    return [line for c in cases for line in [f"case {c.title()}", *(f"  {x}" for x in c.lines())]]


def main(argv: list[str] | None = None) -> int:
    """Compare the databases named on the command line; 0 when equal, 1 when not."""
    args = sys.argv[1:] if argv is None else argv
    if len(args) != 2:
        print(__doc__.strip().splitlines()[-1].strip(), file=sys.stderr)
        return 2
    left, right = (read_database(arg) for arg in args)
    print(f"{args[0]}: {left.summary()}\n{args[1]}: {right.summary()}")
    text = diff(left, right, (args[0], args[1]))
    print(text or "equal")
    return 1 if text else 0


if __name__ == "__main__":
    sys.exit(main())
