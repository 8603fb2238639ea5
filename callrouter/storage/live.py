"""What live events carry from storage: the caller's profile in a popup (R3, R5), the case of a
call from a case (R18) — read for a whole batch of events in a few queries and cached, so a
busy line reads the database once per caller, not once per ring. The writer, which makes every
change to users and fields, tells the cache what it changed."""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Callable, Iterable
from contextlib import AbstractAsyncContextManager
from typing import Any

from sqlalchemy import or_, select

from callrouter.domain.phones import normalize_phone
from callrouter.storage import access, case_store, dials, directory
from callrouter.storage.contexts import PHONES, USERS, rows_in, users_by_number
from callrouter.storage.engine import Conn, Database
from callrouter.storage.models import Dial, Field
from callrouter.storage.snapshots import save_snapshot

MAX_ENTRIES = 100_000
PROFILED = ("call.ringing", "call.answered")
DIALS = ("call.dialing", "call.connected")

Profile = tuple[int, list[dict[str, Any]]] | None  # (user id, popup fields), None: unknown

# Units of work that change no user, phone or popup field: the writer's profile cache outlives
# them. They are what staff do all day (a draft saved as they type, a status, a message), so a
# busy desk would otherwise empty the cache between most rings. Any unit not named here
# empties it: forgetting one costs a database read, never a wrong popup.
KEEPS_PROFILES = frozenset(
    f"{fn.__module__}.{fn.__qualname__}"
    for fn in (
        case_store.attach_call,
        case_store.save_draft,
        case_store.patch_case,
        case_store.post_message,
        dials.start_dial,
        dials.drop_dial,
        dials.dial_started,
        access.open_session,
        access.close_session,
        save_snapshot,
    )
)


def keeps_profiles(fn: Callable[..., Any]) -> bool:
    """Whether the unit of work `fn` leaves every popup's profile as it was (by name: the
    function came through Ray)."""
    return f"{fn.__module__}.{fn.__qualname__}" in KEEPS_PROFILES


class Profiles:
    def __init__(
        self, db: Database, connect: Callable[[], AbstractAsyncContextManager[Conn]]
    ) -> None:
        self.db = db
        self.connect = connect  # the writer's own connection there, a reading one elsewhere
        self.by_number: dict[str, Profile] = {}
        self.fields: list[Field] | None = None  # the ones flagged for the popup (R3)

    def forget(self, numbers: Iterable[str] | None = None) -> None:
        """These numbers changed (a user made for them, a phone linked); None: anything may
        have (a user or a field was edited)."""
        if numbers is None:
            self.by_number.clear()
            self.fields = None
            return
        for number in numbers:
            self.by_number.pop(number, None)

    async def enrich(
        self, events: list[tuple[int, dict[str, Any]]]
    ) -> list[tuple[int, dict[str, Any]]]:
        """Complete (staff id, live event) pairs with what only storage knows. A popup of a
        caller seen before reads nothing: the database is opened only on a miss."""
        numbers = {
            n
            for _, e in events
            if e["type"] in PROFILED and (n := normalize_phone(e.get("phone"))) is not None
        }
        missing = numbers - self.by_number.keys()
        dials = [e for _, e in events if e["type"] in DIALS]
        cases: dict[int, int | None] = {}
        if missing or dials:
            async with self.connect() as conn:
                await self._load(conn, missing)
                cases = await _dial_cases(conn, dials) if dials else {}
        out = []
        for staff_id, event in events:
            kind = event["type"]
            if kind in PROFILED:
                number = normalize_phone(event.get("phone"))
                profile = self.by_number.get(number) if number else None
                if kind == "call.ringing":
                    user = {"id": profile[0], "fields": profile[1]} if profile else None
                    event = {**event, "user": user}
                else:
                    event = {**event, "user_id": profile[0] if profile else None}
            elif kind in DIALS:
                event = {**event, "case_id": cases.get(event["call_session_id"])}
            out.append((staff_id, event))
        return out

    async def _load(self, conn: Conn, numbers: set[str]) -> None:
        if not numbers:
            return
        if len(self.by_number) + len(numbers) > MAX_ENTRIES:
            self.by_number.clear()
        if self.fields is None:
            async with self.db.sessions() as session:
                self.fields = [f for f in await directory.list_fields(session) if f.incoming_call]
        users = await users_by_number(conn, numbers)
        rows = {r.id: r for r in await rows_in(conn, USERS, users.values())}
        phones: dict[int, list[str]] = defaultdict(list)
        if any(f.key == "phones" for f in self.fields):
            for user_id, phone in await rows_in(conn, PHONES, rows):
                phones[user_id].append(phone)
        for number in numbers:
            row = rows.get(users[number]) if number in users else None
            if row is None:
                self.by_number[number] = None
                continue
            values = {k: getattr(row, k) for k in directory.BUILTIN_KEYS if k != "phones"}
            popup = directory.popup(self.fields, values, row.custom_fields or {}, phones[row.id])
            self.by_number[number] = (row.id, popup)


async def _dial_cases(conn: Conn, events: list[dict[str, Any]]) -> dict[int, int | None]:
    """The case of each call from a case (R18); the first notifications may come before UIS's
    answer gave us the session id, so our `external_id` names it too."""
    externals = [e["external_id"] for e in events if e.get("external_id")]
    calls = [e["call_session_id"] for e in events]
    query = select(Dial.external_id, Dial.call_session_id, Dial.case_id).where(
        or_(Dial.external_id.in_(externals), Dial.call_session_id.in_(calls))
    )
    found = (await conn.execute(query)).all()
    by_external = {r.external_id: r.case_id for r in found}
    by_call = {r.call_session_id: r.case_id for r in found if r.call_session_id is not None}
    return {
        e["call_session_id"]: by_external.get(e.get("external_id"))
        or by_call.get(e["call_session_id"])
        for e in events
    }
