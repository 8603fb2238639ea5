"""The console's worklists over HTTP (issue 9): `GET /api/v1/worklist/missed`, the open
missed-call cases to call back oldest first with their grouped missed calls (R15, R16), and
`GET /api/v1/worklist/calls`, a staff member's call log with the cases of each call."""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest
from aiohttp import web

from callrouter.domain.account import Account
from callrouter.domain.phones import normalize_phone
from callrouter.http import worklist
from callrouter.http.errors import error_middleware
from callrouter.http.keys import ACCOUNT, ADMIN_TOKEN, DB, AccountBox
from callrouter.storage import access, directory
from callrouter.storage.directory import hash_token
from callrouter.storage.engine import Database
from callrouter.storage.models import Call, CallAction, Case, Message, User, UserPhone

ADMIN_TOKEN_VALUE = "admin-secret"
ADMIN = {"Authorization": f"Bearer {ADMIN_TOKEN_VALUE}"}
T0 = datetime(2026, 11, 2, 9, 0, tzinfo=UTC)

ExpectError = Callable[..., Awaitable[dict[str, Any]]]


async def make_client(aiohttp_client: Any, db: Database) -> Any:
    app = web.Application(middlewares=[error_middleware])
    app[DB] = db
    app[ADMIN_TOKEN] = ADMIN_TOKEN_VALUE
    app[ACCOUNT] = AccountBox(Account())
    app.add_routes(worklist.routes)
    return await aiohttp_client(app)


class World:
    """Rows written straight to the database, as the writer would have written them."""

    def __init__(self, db: Database) -> None:
        self.db = db

    async def staff(self, name: str) -> tuple[int, dict[str, str]]:
        async with self.db.sessions.begin() as session:
            staff, token = await directory.create_staff(
                session, name, f"{name.lower()}@example.test"
            )
            return staff.id, {"Authorization": f"Bearer {token}"}

    async def user(self, name: str | None, phone: str) -> int:
        async with self.db.sessions.begin() as session:
            user = User(full_name=name, custom_fields={}, created_at=T0, updated_at=T0)
            session.add(user)
            await session.flush()
            normalized = normalize_phone(phone) or ""
            session.add(UserPhone(user_id=user.id, phone=phone, normalized=normalized))
            return user.id

    async def case(
        self,
        *,
        user_id: int | None,
        at: datetime,
        calls: list[str],
        status: str = "open",
        icon: str | None = "missed",
        assignee_id: int | None = None,
        subject: str = "Пропущенный звонок",
    ) -> int:
        """A case created at `at` whose messages record calls with the given outcomes, a
        minute apart."""
        async with self.db.sessions.begin() as session:
            case = Case(
                subject=subject,
                status=status,
                channel="calls",
                user_id=user_id,
                assignee_id=assignee_id,
                call_icon=icon,
                created_at=at,
                updated_at=at,
            )
            session.add(case)
            await session.flush()
            for i, outcome in enumerate(calls):
                session.add(
                    Message(
                        case_id=case.id,
                        kind="call",
                        body="",
                        created_at=at + timedelta(minutes=i),
                        call_session_id=int(at.timestamp()) * 100 + i,
                        call_direction="in" if outcome == "missed" else "out",
                        call_outcome=outcome,
                    )
                )
            session.add(
                Message(
                    case_id=case.id,
                    kind="note",
                    body="заметка",
                    created_at=at,
                    author_staff_id=None,
                )
            )
            return case.id

    async def call(
        self,
        call_id: int,
        *,
        staff_ids: list[int],
        ended: datetime,
        outcome: str = "answered",
        user_id: int | None = None,
        finalized: bool = True,
        cases: tuple[int, ...] = (),
        acted: tuple[tuple[int, int], ...] = (),
    ) -> None:
        """An ended call; recorded in `cases` (messages) and acted on in `acted`
        ((staff, case) pairs, R8/R9)."""
        async with self.db.sessions.begin() as session:
            session.add(
                Call(
                    call_session_id=call_id,
                    direction="in",
                    phone="79161234567",
                    user_id=user_id,
                    staff_ids=staff_ids,
                    started_at=ended - timedelta(minutes=2),
                    answered_at=ended - timedelta(minutes=1) if outcome == "answered" else None,
                    ended_at=ended,
                    outcome=outcome,
                    talk_seconds=60 if outcome == "answered" else 0,
                    finalized=finalized,
                )
            )
            for case_id in cases:
                session.add(
                    Message(
                        case_id=case_id,
                        kind="call",
                        created_at=ended,
                        call_session_id=call_id,
                        call_outcome=outcome,
                    )
                )
            await session.flush()
            for staff_id, case_id in acted:
                message = Message(case_id=case_id, kind="call", created_at=ended)
                session.add(message)
                await session.flush()
                session.add(
                    CallAction(
                        call_session_id=call_id,
                        staff_id=staff_id,
                        action="attached",
                        case_id=case_id,
                        message_id=message.id,
                        at=ended,
                    )
                )


@pytest.fixture
def world(database: Database) -> World:
    return World(database)


async def test_missed_worklist_oldest_first_with_grouped_counts(
    aiohttp_client: Any, database: Database, world: World
) -> None:
    """R15/R16: open missed-call cases only, oldest first, each with the missed calls grouped
    in it and the unanswered call-backs; names and the number a call-back dials."""
    anna, anna_auth = await world.staff("Anna")
    maria = await world.user("Мария Иванова", "+7 916 000-00-01")
    nobody = await world.user(None, "79160000002")
    newer = await world.case(
        user_id=maria, at=T0 + timedelta(hours=2), calls=["missed"], assignee_id=anna
    )
    older = await world.case(user_id=nobody, at=T0, calls=["missed", "missed", "attempt", "missed"])
    # Not on the list: waiting, closed, a normal-icon open case, a missed case called back.
    await world.case(user_id=maria, at=T0 - timedelta(hours=1), calls=["missed"], status="waiting")
    await world.case(user_id=maria, at=T0 - timedelta(hours=2), calls=["missed"], status="closed")
    await world.case(user_id=maria, at=T0 - timedelta(hours=3), calls=["answered"], icon="normal")
    client = await make_client(aiohttp_client, database)

    resp = await client.get("/api/v1/worklist/missed", headers=anna_auth)

    assert resp.status == 200, await resp.text()
    body = await resp.json()
    assert body["total"] == 2
    assert [i["case_id"] for i in body["items"]] == [older, newer]
    first, second = body["items"]
    assert first["missed_calls"] == 3 and first["attempts"] == 1
    assert first["first_missed_at"] == "2026-11-02T12:00:00+03:00"  # the account's zone
    assert first["last_missed_at"] == "2026-11-02T12:03:00+03:00"
    assert first["user_name"] is None and first["phone"] == "79160000002"
    assert first["assignee_id"] is None
    assert second["missed_calls"] == 1 and second["attempts"] == 0
    assert second["user_name"] == "Мария Иванова" and second["phone"] == "+7 916 000-00-01"
    assert second["assignee_id"] == anna
    assert second["created_at"] == "2026-11-02T14:00:00+03:00"

    mine = await (await client.get("/api/v1/worklist/missed?mine=true", headers=anna_auth)).json()
    assert [i["case_id"] for i in mine["items"]] == [newer] and mine["total"] == 1
    paged = await (
        await client.get("/api/v1/worklist/missed?limit=1&offset=1", headers=ADMIN)
    ).json()
    assert [i["case_id"] for i in paged["items"]] == [newer] and paged["total"] == 2
    past = await (await client.get("/api/v1/worklist/missed?offset=10", headers=ADMIN)).json()
    assert past == {"items": [], "total": 2}
    count = await (await client.get("/api/v1/worklist/missed?limit=0", headers=ADMIN)).json()
    assert count == {"items": [], "total": 2}  # the console's badge reads only the count


async def test_missed_worklist_auth_and_bad_input(
    aiohttp_client: Any, database: Database, world: World, expect_error: ExpectError
) -> None:
    _, anna_auth = await world.staff("Anna")
    client = await make_client(aiohttp_client, database)
    url = "/api/v1/worklist/missed"

    await expect_error(await client.get(url), 401, "unauthorized")
    await expect_error(
        await client.get(url, headers={"Authorization": "Bearer nope"}), 401, "unauthorized"
    )
    await expect_error(await client.get(f"{url}?mine=true", headers=ADMIN), 403, "forbidden")
    for query in ("limit=-1", "limit=501", "offset=-5", "limit=ten", "mine=perhaps"):
        error = await expect_error(
            await client.get(f"{url}?{query}", headers=anna_auth), 400, "invalid_parameter"
        )
        assert query.split("=")[0] in error["message"]
    empty = await client.get(url, headers=ADMIN)
    assert empty.status == 200 and await empty.json() == {"items": [], "total": 0}


async def test_call_log_lists_my_calls_with_their_cases(
    aiohttp_client: Any, database: Database, world: World
) -> None:
    """My ended calls newest first — answered, missed (offered to me), made — with the cases
    each is recorded or acted on in; other staff's calls and live calls are not mine."""
    anna, anna_auth = await world.staff("Anna")
    boris, boris_auth = await world.staff("Boris")
    maria = await world.user("Мария Иванова", "79161234567")
    case_a = await world.case(
        user_id=maria, at=T0, calls=[], icon="normal", status="waiting", subject="Счёт"
    )
    case_b = await world.case(user_id=maria, at=T0, calls=[], subject="Пропущенный звонок")
    await world.call(1001, staff_ids=[anna], ended=T0, user_id=maria, cases=(case_a,))
    await world.call(
        1002,
        staff_ids=[boris, anna],
        ended=T0 + timedelta(hours=1),
        outcome="missed",
        cases=(case_b,),
    )
    await world.call(1003, staff_ids=[boris], ended=T0 + timedelta(hours=2))
    await world.call(1004, staff_ids=[anna], ended=T0 + timedelta(hours=3), finalized=False)
    await world.call(
        1005,
        staff_ids=[anna],
        ended=T0 + timedelta(hours=4),
        acted=((anna, case_a),),
        cases=(case_a,),
    )
    await world.call(1006, staff_ids=[11, 111, 1111], ended=T0 + timedelta(hours=5))
    client = await make_client(aiohttp_client, database)

    resp = await client.get("/api/v1/worklist/calls", headers=anna_auth)

    assert resp.status == 200, await resp.text()
    body = await resp.json()
    assert [c["call_session_id"] for c in body["items"]] == [1005, 1002, 1001]
    assert body["total"] == 3
    latest, missed, first = body["items"]
    assert latest["cases"] == [
        {"id": case_a, "subject": "Счёт", "status": "waiting", "call_icon": "normal"}
    ]  # one case, though both a message and an action name it
    assert missed["outcome"] == "missed" and missed["cases"][0]["id"] == case_b
    assert first["user_name"] == "Мария Иванова" and first["talk_seconds"] == 60
    assert first["ended_at"] == "2026-11-02T12:00:00+03:00"
    assert first["direction"] == "in" and first["phone"] == "79161234567"

    borises = await (await client.get("/api/v1/worklist/calls", headers=boris_auth)).json()
    assert [c["call_session_id"] for c in borises["items"]] == [1003, 1002]
    page = await (
        await client.get("/api/v1/worklist/calls?limit=1&offset=1", headers=anna_auth)
    ).json()
    assert [c["call_session_id"] for c in page["items"]] == [1002] and page["total"] == 3


async def test_a_wallboard_link_reads_no_worklist(
    aiohttp_client: Any, database: Database, expect_error: ExpectError
) -> None:
    """A read-only wallboard link reads the wallboard and the names, not the worklists."""
    async with database.sessions.begin() as session:
        await access.create_link(session, hash_token("wall-secret"), "Зал", T0)
    client = await make_client(aiohttp_client, database)
    link = {"Authorization": "Bearer wall-secret"}
    for url in ("/api/v1/worklist/missed", "/api/v1/worklist/calls"):
        await expect_error(await client.get(url, headers=link), 403, "forbidden")
        await expect_error(await client.get(f"{url}?link=wall-secret"), 401, "unauthorized")


async def test_call_log_auth_and_bad_input(
    aiohttp_client: Any, database: Database, world: World, expect_error: ExpectError
) -> None:
    _, anna_auth = await world.staff("Anna")
    client = await make_client(aiohttp_client, database)
    url = "/api/v1/worklist/calls"

    await expect_error(await client.get(url), 401, "unauthorized")
    await expect_error(await client.get(url, headers=ADMIN), 403, "forbidden")  # no calls
    for query in ("limit=1000", "offset=x"):
        await expect_error(
            await client.get(f"{url}?{query}", headers=anna_auth), 400, "invalid_parameter"
        )
    resp = await client.get(url, headers=anna_auth)
    assert resp.status == 200 and await resp.json() == {"items": [], "total": 0}
