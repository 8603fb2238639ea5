"""Repository of the account's directory: settings, integration, fields, staff, operators, users.

Every function takes an `AsyncSession` and never commits: the caller owns the transaction
(`async with db.sessions.begin() as session`). Content errors raise `DirectoryError`
subclasses, which the HTTP middleware maps to 422 / 404 / 409.
"""

from __future__ import annotations

import hashlib
import secrets
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, replace
from datetime import UTC, datetime
from typing import Any, Final, TypeVar
from urllib.parse import urlsplit
from zoneinfo import ZoneInfo

from sqlalchemy import (
    JSON,
    ColumnElement,
    Select,
    case,
    cast,
    delete,
    exists,
    func,
    literal,
    or_,
    select,
)
from sqlalchemy.dialects import postgresql, sqlite
from sqlalchemy.ext.asyncio import AsyncSession
from sqlalchemy.orm import InstrumentedAttribute

from callrouter.domain.account import DEFAULT_CALL_API_URL, SETTING_RANGES, Account, Integration
from callrouter.domain.phones import normalize_phone
from callrouter.storage.models import (
    Field,
    Operator,
    Rejected,
    Setting,
    Staff,
    User,
    UserPhone,
    WebSession,
)

SETTINGS_KEY: Final = "settings"
INTEGRATION_KEY: Final = "integration"
INT_SETTINGS: Final = tuple(SETTING_RANGES)

# (key, title, shown in the incoming-call popup by default: R3).
BUILTIN_FIELDS: Final = (
    ("full_name", "Full name", True),
    ("email", "Email", True),
    ("company", "Company", True),
    ("phones", "Phones", False),
    ("note", "Note", False),
)
BUILTIN_KEYS: Final = frozenset(key for key, _, _ in BUILTIN_FIELDS)
USER_TEXT_LIMITS: Final = {"full_name": 200, "email": 200, "company": 200, "note": 20000}
USER_KEYS: Final = frozenset({*USER_TEXT_LIMITS, "phones", "custom_fields"})
_MAX_PHONES: Final = 50
_MAX_CUSTOM_VALUE: Final = 2000


class DirectoryError(ValueError):
    """Content the directory refuses; `code` is snake_case, `message` a human sentence."""

    def __init__(self, code: str, message: str) -> None:
        super().__init__(message)
        self.code = code
        self.message = message


class InvalidError(DirectoryError):
    """Valid JSON, wrong content (HTTP 422)."""


class NotFoundError(DirectoryError):
    """No such thing (HTTP 404)."""


class ConflictError(DirectoryError):
    """The current state forbids this (HTTP 409)."""


def hash_token(token: str) -> str:
    """The at-rest form of a token (R34): SHA-256, hex. `callrouter.http.auth` uses this too."""
    return hashlib.sha256(token.encode()).hexdigest()


def _now(now: datetime | None) -> datetime:
    return now if now is not None else datetime.now(UTC)


def _insert(session: AsyncSession) -> Any:
    """The dialect's INSERT, which has `on_conflict_do_*` on both SQLite and PostgreSQL."""
    name = session.get_bind().dialect.name
    return postgresql.insert if name == "postgresql" else sqlite.insert


# --- settings and integration -------------------------------------------------------------


async def _setting(session: AsyncSession, key: str) -> Any:
    row = await session.get(Setting, key)
    return None if row is None else row.value


async def _put_setting(session: AsyncSession, key: str, value: Any) -> None:
    row = await session.get(Setting, key)
    if row is None:
        session.add(Setting(key=key, value=value))
    else:
        row.value = value  # a new object: JSON columns do not track in-place mutation


def _integration(value: Any) -> Integration | None:
    if not isinstance(value, dict):
        return None
    try:
        return Integration(
            api_key=str(value["api_key"]),
            virtual_phone_number=str(value["virtual_phone_number"]),
            call_api_url=str(value.get("call_api_url") or DEFAULT_CALL_API_URL),
            webhook_secret=str(value["webhook_secret"]),
        )
    except KeyError:
        return None


async def load_account(session: AsyncSession) -> Account:
    """The account's settings and integration; `Account` defaults for what was never set."""
    stored = await _setting(session, SETTINGS_KEY)
    account = Account(integration=_integration(await _setting(session, INTEGRATION_KEY)))
    if isinstance(stored, dict):
        known = {k: v for k, v in stored.items() if k == "timezone" or k in INT_SETTINGS}
        account = replace(account, **known)
    return account


def _check_setting(key: str, value: object) -> str | int:
    if key == "timezone":
        if not isinstance(value, str) or not value:
            raise InvalidError("invalid_timezone", "Field 'timezone' must be an IANA time zone.")
        try:
            ZoneInfo(value)
        # Not found is a KeyError; "../x" a ValueError; a directory such as "Europe" an OSError.
        except (KeyError, ValueError, OSError):
            raise InvalidError(
                "invalid_timezone", f"Unknown time zone '{value}' (use an IANA name)."
            ) from None
        return value
    if key in SETTING_RANGES:
        low, high = SETTING_RANGES[key]
        if isinstance(value, bool) or not isinstance(value, int) or not low <= value <= high:
            raise InvalidError(
                "invalid_setting",
                f"Field '{key}' must be a whole number of seconds from {low} to {high}.",
            )
        return value
    raise InvalidError("unknown_setting", f"Unknown setting '{key}'.")


async def save_settings(session: AsyncSession, /, **changes: object) -> Account:
    """Change some settings (all validated before any is written); the account after."""
    checked: dict[str, Any] = {key: _check_setting(key, value) for key, value in changes.items()}
    account = replace(await load_account(session), **checked)
    if account.silent_call_timeout_seconds <= account.lateness_seconds:
        raise InvalidError(
            "invalid_setting",
            "silent_call_timeout_seconds must be longer than lateness_seconds: a call is"
            " decided only after the lateness bound.",
        )
    await _put_setting(session, SETTINGS_KEY, account.settings_json())
    return account


async def save_integration(
    session: AsyncSession,
    api_key: str,
    virtual_phone_number: str,
    call_api_url: str = DEFAULT_CALL_API_URL,
) -> Integration:
    """Enable or update the UIS integration (R1). The webhook secret is made on the first call
    and kept afterwards, so the URL pasted into UIS stays valid."""
    if not api_key.strip():
        raise InvalidError("invalid_field", "Field 'api_key' must not be empty.")
    if normalize_phone(virtual_phone_number) is None:
        raise InvalidError("invalid_phone", "Field 'virtual_phone_number' has no digits.")
    url = urlsplit(call_api_url)
    if url.scheme not in ("http", "https") or not url.hostname:
        raise InvalidError("invalid_url", "Field 'call_api_url' must be an http(s) URL.")
    current = _integration(await _setting(session, INTEGRATION_KEY))
    integration = Integration(
        api_key=api_key.strip(),
        virtual_phone_number=virtual_phone_number.strip(),
        call_api_url=call_api_url,
        webhook_secret=current.webhook_secret if current else secrets.token_urlsafe(32),
    )
    await _put_setting(
        session,
        INTEGRATION_KEY,
        {
            "api_key": integration.api_key,
            "virtual_phone_number": integration.virtual_phone_number,
            "call_api_url": integration.call_api_url,
            "webhook_secret": integration.webhook_secret,
        },
    )
    return integration


# --- fields (R3) --------------------------------------------------------------------------


def _builtin_rows() -> list[dict[str, Any]]:
    return [
        {"key": key, "title": title, "incoming_call": shown, "builtin": True, "position": i}
        for i, (key, title, shown) in enumerate(BUILTIN_FIELDS)
    ]


async def ensure_builtin_fields(session: AsyncSession) -> None:
    """Insert the built-in fields that are missing (idempotent, safe when processes race)."""
    insert = _insert(session)
    stmt = insert(Field).values(_builtin_rows()).on_conflict_do_nothing(index_elements=["key"])
    await session.execute(stmt)


async def list_fields(session: AsyncSession) -> list[Field]:
    """All fields in popup order. Built-ins are always there, stored or not (a fresh database
    answers with their defaults without a write)."""
    stored = {f.key: f for f in await session.scalars(select(Field))}
    for row in _builtin_rows():
        if row["key"] not in stored:
            stored[row["key"]] = Field(**row)  # transient: never added to the session
    return sorted(stored.values(), key=lambda f: (f.position, f.key))


def field_json(field: Field) -> dict[str, Any]:
    """The API shape of a field."""
    return {"key": field.key, "title": field.title, "incoming_call": field.incoming_call}


async def create_field(
    session: AsyncSession, key: str, title: str, incoming_call: bool = False
) -> Field:
    """A custom user field; 422 for a bad key, 409 when the key exists."""
    if not _valid_key(key):
        raise InvalidError(
            "invalid_field_key",
            "Field 'key' must be 1-64 characters of a-z, 0-9 and _, starting with a letter.",
        )
    await ensure_builtin_fields(session)
    if await session.get(Field, key) is not None:
        raise ConflictError("field_exists", f"A field '{key}' already exists.")
    last = await session.scalar(select(func.max(Field.position)))
    field = Field(
        key=key,
        title=title,
        incoming_call=incoming_call,
        builtin=False,
        position=(last if last is not None else len(BUILTIN_FIELDS) - 1) + 1,
    )
    session.add(field)
    await session.flush()
    return field


def _valid_key(key: str) -> bool:
    return (
        0 < len(key) <= 64
        and key.isascii()
        and key[0].isalpha()
        and key.islower()
        and all(c.isalnum() or c == "_" for c in key)
    )


async def update_field(
    session: AsyncSession, key: str, *, incoming_call: bool | None = None, title: str | None = None
) -> Field:
    """Change a field's popup flag and/or title; 404 for an unknown key."""
    await ensure_builtin_fields(session)
    field = await session.get(Field, key)
    if field is None:
        raise NotFoundError("field_not_found", f"No field '{key}'.")
    if incoming_call is not None:
        field.incoming_call = incoming_call
    if title is not None:
        field.title = title
    await session.flush()
    return field


async def custom_field_keys(session: AsyncSession) -> set[str]:
    """The keys a user's `custom_fields` may use."""
    keys = await session.scalars(select(Field.key).where(Field.builtin.is_(False)))
    return set(keys) - BUILTIN_KEYS


# --- staff and operators (R2) -------------------------------------------------------------


async def create_staff(
    session: AsyncSession, full_name: str, email: str, *, now: datetime | None = None
) -> tuple[Staff, str]:
    """A staff member and their token; only the token's hash is stored, so this is the one
    time the token can be seen (R34). The email is stored stripped; 409 `email_taken` when a
    staff member already has it, compared without regard to case."""
    email = email.strip()
    local, at, domain = email.partition("@")
    if not (local and at and domain):
        raise InvalidError("invalid_email", "Field 'email' must be an email address.")
    await _check_email_free(session, email)
    token = secrets.token_urlsafe(32)
    staff = Staff(
        full_name=full_name, email=email, token_hash=hash_token(token), created_at=_now(now)
    )
    session.add(staff)
    await session.flush()
    return staff, token


async def _check_email_free(
    session: AsyncSession, email: str, *, except_id: int | None = None
) -> None:
    """409 `email_taken` when another staff member has `email` (stripped, any case).

    Checked here rather than by a unique index (docs/decisions.md): the writer runs one unit
    of work at a time, so the check and the insert cannot interleave with another's.
    """
    await _fold_ready(session)
    dialect = session.get_bind().dialect.name
    stmt = select(Staff.email).where(
        _fold(func.trim(Staff.email), dialect) == email.strip().lower()
    )
    if except_id is not None:
        stmt = stmt.where(Staff.id != except_id)
    taken = await session.scalar(stmt.limit(1))
    if taken is not None:
        raise ConflictError(
            "email_taken", f"A staff member with the email '{taken}' already exists."
        )


async def get_staff(session: AsyncSession, staff_id: int) -> Staff | None:
    """One staff member, or None."""
    return await session.get(Staff, staff_id)


async def list_staff(
    session: AsyncSession, limit: int = 50, offset: int = 0
) -> tuple[list[Staff], int]:
    """Staff newest first, and how many there are."""
    return await paged(session, select(Staff).order_by(Staff.id.desc()), limit, offset)


def staff_json(staff: Staff) -> dict[str, Any]:
    """The API shape of a staff member (never the token or the password hash)."""
    return {
        "id": staff.id,
        "full_name": staff.full_name,
        "email": staff.email,
        "active": staff.active,
        "role": staff.role,
        "has_password": staff.password_hash is not None,
    }


async def staff_by_email(session: AsyncSession, email: str) -> Staff | None:
    """The staff member with this email (stripped, any case), or None."""
    await _fold_ready(session)
    dialect = session.get_bind().dialect.name
    stmt = select(Staff).where(_fold(func.trim(Staff.email), dialect) == email.strip().lower())
    return await session.scalar(stmt.order_by(Staff.id).limit(1))


async def staff_directory(
    session: AsyncSession, limit: int, offset: int
) -> tuple[list[dict[str, Any]], int]:
    """Staff by id as `{"id", "full_name", "active"}`: the names pages show, nothing more."""
    staff, total = await paged(session, select(Staff).order_by(Staff.id), limit, offset)
    return [{"id": s.id, "full_name": s.full_name, "active": s.active} for s in staff], total


async def put_operator(session: AsyncSession, employee_id: int, staff_id: int | None) -> Operator:
    """Map (or unmap, with None) a UIS employee to a staff member; 422 for unknown staff."""
    if staff_id is not None and await session.get(Staff, staff_id) is None:
        raise InvalidError("unknown_staff", f"No staff member {staff_id}.")
    insert = _insert(session)
    stmt = insert(Operator).values(employee_id=employee_id, staff_id=staff_id)
    await session.execute(
        stmt.on_conflict_do_update(index_elements=["employee_id"], set_={"staff_id": staff_id})
    )
    operator = await session.get(Operator, employee_id, populate_existing=True)
    assert operator is not None
    return operator


async def list_operators(
    session: AsyncSession, limit: int = 50, offset: int = 0
) -> tuple[list[Operator], int]:
    """Operators by employee id (they have no creation time), and how many there are."""
    return await paged(session, select(Operator).order_by(Operator.employee_id), limit, offset)


def operator_json(operator: Operator) -> dict[str, Any]:
    """The API shape of an operator mapping."""
    return {
        "employee_id": operator.employee_id,
        "staff_id": operator.staff_id,
        "full_name": operator.full_name,
        "phones": list(operator.phones or []),
    }


async def operator_map(session: AsyncSession) -> dict[int, int]:
    """employee_id → staff_id for mapped operators only (unmapped ones are ignored: R2)."""
    rows = await session.execute(
        select(Operator.employee_id, Operator.staff_id).where(Operator.staff_id.is_not(None))
    )
    return {employee_id: staff_id for employee_id, staff_id in rows.tuples() if staff_id}


async def import_operators(
    session: AsyncSession, rows: Sequence[tuple[int, int | None, str | None, list[str] | None]]
) -> dict[str, int]:
    """`POST /api/v1/operators/import`: many (employee_id, staff_id or None, full_name,
    phones) at once, in the caller's one transaction (issue 11). Nothing is written when a
    staff id is unknown (422 `unknown_staff`). A name or phones left None keep what the row
    had. Answers how many rows were mapped and unmapped."""
    wanted = {staff_id for _, staff_id, _, _ in rows if staff_id is not None}
    known = set(await session.scalars(select(Staff.id).where(Staff.id.in_(wanted))))
    if missing := sorted(wanted - known):
        raise InvalidError("unknown_staff", f"No staff member {missing[0]}.")
    insert = _insert(session)
    # SQLite takes at most 32,766 parameters a statement: 4 a row, in slices well under it.
    for start in range(0, len(rows), 1000):
        values = [
            {"employee_id": e, "staff_id": s, "full_name": n, "phones": p}
            for e, s, n, p in rows[start : start + 1000]
        ]
        stmt = insert(Operator).values(values)
        excluded = stmt.excluded
        await session.execute(
            stmt.on_conflict_do_update(
                index_elements=["employee_id"],
                set_={
                    "staff_id": excluded.staff_id,
                    "full_name": func.coalesce(excluded.full_name, Operator.full_name),
                    "phones": func.coalesce(excluded.phones, Operator.phones),
                },
            )
        )
    mapped = sum(1 for _, staff_id, _, _ in rows if staff_id is not None)
    return {"mapped": mapped, "unmapped": len(rows) - mapped}


async def all_operators(session: AsyncSession) -> dict[int, int | None]:
    """employee_id → staff_id (None: unmapped) for every operator row."""
    rows = await session.execute(select(Operator.employee_id, Operator.staff_id))
    return dict(rows.tuples().all())


async def all_staff(session: AsyncSession) -> list[Staff]:
    """Every staff member by id (the import's proposals compare against all of them)."""
    return list(await session.scalars(select(Staff).order_by(Staff.id)))


# --- users (R7) ---------------------------------------------------------------------------


def _text(key: str, value: object) -> str | None:
    if value is None:
        return None
    if not isinstance(value, str):
        raise InvalidError("invalid_field", f"Field '{key}' must be a string or null.")
    value = value.strip()
    if len(value) > USER_TEXT_LIMITS[key]:
        raise InvalidError(
            "invalid_field", f"Field '{key}' is longer than {USER_TEXT_LIMITS[key]} characters."
        )
    return value or None


def _phones(value: object) -> list[tuple[str, str]]:
    """(as entered, normalised) pairs, first occurrence of a number wins."""
    if not isinstance(value, list) or len(value) > _MAX_PHONES:
        raise InvalidError(
            "invalid_field", f"Field 'phones' must be a list of at most {_MAX_PHONES} strings."
        )
    result: dict[str, str] = {}
    for raw in value:
        if not isinstance(raw, str) or len(raw.strip()) > 64:
            raise InvalidError("invalid_phone", "Each phone must be a string of 64 characters max.")
        normalized = normalize_phone(raw)
        if normalized is None:
            raise InvalidError("invalid_phone", f"Phone '{raw}' has no digits.")
        result.setdefault(normalized, raw.strip())
    return [(raw, normalized) for normalized, raw in result.items()]


async def _custom_fields(
    session: AsyncSession, value: object, current: Mapping[str, Any]
) -> dict[str, Any]:
    """`current` with `value` merged in (null removes a key); 422 for unknown keys."""
    if not isinstance(value, dict):
        raise InvalidError("invalid_field", "Field 'custom_fields' must be an object.")
    known = await custom_field_keys(session) if value else set()
    merged = dict(current)
    for key, item in value.items():
        if key not in known:
            raise InvalidError("unknown_field", f"No custom field '{key}' is defined.")
        if item is None:
            merged.pop(key, None)
        elif isinstance(item, str | int | float | bool):
            if isinstance(item, str) and len(item) > _MAX_CUSTOM_VALUE:
                raise InvalidError("invalid_field", f"Custom field '{key}' is too long.")
            merged[key] = item
        else:
            raise InvalidError("invalid_field", f"Custom field '{key}' must be a plain value.")
    return merged


async def _replace_phones(
    session: AsyncSession, user_id: int, phones: Iterable[tuple[str, str]]
) -> None:
    # A Core DELETE runs now; the ORM would flush the inserts first and trip the unique
    # (user_id, normalized) constraint when a kept number is re-added.
    await session.execute(delete(UserPhone).where(UserPhone.user_id == user_id))
    for position, (raw, normalized) in enumerate(phones):
        session.add(UserPhone(user_id=user_id, phone=raw, normalized=normalized, position=position))


@dataclass(frozen=True, slots=True)
class _UserChanges:
    """Validated user data, ready to write."""

    texts: dict[str, str | None]
    phones: list[tuple[str, str]] | None
    custom: dict[str, Any] | None


async def _validate(
    session: AsyncSession, data: Mapping[str, Any], current_custom: Mapping[str, Any]
) -> _UserChanges:
    unknown = sorted(set(data) - USER_KEYS)
    if unknown:
        raise InvalidError("unknown_field", f"Unknown user field(s): {', '.join(unknown)}.")
    return _UserChanges(
        texts={key: _text(key, data[key]) for key in USER_TEXT_LIMITS if key in data},
        phones=_phones(data["phones"]) if "phones" in data else None,
        custom=(
            await _custom_fields(session, data["custom_fields"], current_custom)
            if "custom_fields" in data
            else None
        ),
    )


async def _write(session: AsyncSession, user: User, changes: _UserChanges, now: datetime) -> None:
    for key, text in changes.texts.items():
        setattr(user, key, text)
    if changes.custom is not None:
        user.custom_fields = changes.custom
    user.updated_at = now
    await session.flush()
    if changes.phones is not None:
        await _replace_phones(session, user.id, changes.phones)
        await session.flush()


async def create_user(
    session: AsyncSession, data: Mapping[str, Any], *, now: datetime | None = None
) -> User:
    """A user from API data (`full_name`, `email`, `company`, `note`, `phones`,
    `custom_fields`, all optional); `InvalidError` (422) for bad content, before any write."""
    changes = await _validate(session, data, {})
    at = _now(now)
    user = User(custom_fields={}, created_at=at, updated_at=at)
    session.add(user)
    await _write(session, user, changes, at)
    return user


async def get_user(session: AsyncSession, user_id: int) -> User | None:
    """One user, or None."""
    return await session.get(User, user_id)


async def patch_user(
    session: AsyncSession, user_id: int, data: Mapping[str, Any], *, now: datetime | None = None
) -> User:
    """Change some fields: `phones` replaces the list, `custom_fields` merges (null removes a
    key); 404 for an unknown user."""
    user = await session.get(User, user_id)
    if user is None:
        raise NotFoundError("user_not_found", f"No user {user_id}.")
    changes = await _validate(session, data, user.custom_fields or {})
    await _write(session, user, changes, _now(now))
    return user


async def find_user_by_phone(session: AsyncSession, phone: str | None) -> User | None:
    """The user having this number (compared as digits); the oldest one if several do."""
    normalized = normalize_phone(phone)
    if normalized is None:
        return None
    stmt = (
        select(User)
        .join(UserPhone, UserPhone.user_id == User.id)
        .where(UserPhone.normalized == normalized)
        .order_by(User.created_at, User.id)
        .limit(1)
    )
    return await session.scalar(stmt)


async def create_user_with_phone(
    session: AsyncSession, phone: str, *, now: datetime | None = None
) -> User:
    """A user with only this phone (R8: a case for an unknown caller)."""
    return await create_user(session, {"phones": [phone]}, now=now)


async def add_phone(
    session: AsyncSession, user_id: int, phone: str, *, now: datetime | None = None
) -> bool:
    """Add a number to a user's phones (R7: linking a caller); False when it is already there.
    404 for an unknown user, 422 for a number without digits."""
    user = await session.get(User, user_id)
    if user is None:
        raise NotFoundError("user_not_found", f"No user {user_id}.")
    [(raw, normalized)] = _phones([phone])
    last = await session.scalar(
        select(func.max(UserPhone.position)).where(UserPhone.user_id == user_id)
    )
    insert = _insert(session)
    stmt = (
        insert(UserPhone)
        .values(
            user_id=user_id,
            phone=raw,
            normalized=normalized,
            position=0 if last is None else last + 1,
        )
        .on_conflict_do_nothing(index_elements=["user_id", "normalized"])
    )
    added: bool = (await session.execute(stmt)).rowcount > 0  # type: ignore[attr-defined]
    if added:
        user.updated_at = _now(now)
        await session.flush()
    return added


async def phones_of(session: AsyncSession, user_ids: Iterable[int]) -> dict[int, list[str]]:
    """Each user's phones as entered, in their order (users without phones map to [])."""
    ids = list(user_ids)
    result: dict[int, list[str]] = {user_id: [] for user_id in ids}
    if ids:
        rows = await session.execute(
            select(UserPhone.user_id, UserPhone.phone)
            .where(UserPhone.user_id.in_(ids))
            .order_by(UserPhone.user_id, UserPhone.position, UserPhone.id)
        )
        for user_id, phone in rows.tuples():
            result[user_id].append(phone)
    return result


def user_json(user: User, phones: Sequence[str]) -> dict[str, Any]:
    """The API shape of a user."""
    return {
        "id": user.id,
        "full_name": user.full_name,
        "email": user.email,
        "company": user.company,
        "phones": list(phones),
        "note": user.note,
        "custom_fields": dict(user.custom_fields or {}),
    }


async def user_view(session: AsyncSession, user: User) -> dict[str, Any]:
    """`user_json` with the phones loaded."""
    return user_json(user, (await phones_of(session, [user.id]))[user.id])


def _lower(value: object) -> str | None:
    return None if value is None else str(value).lower()


async def _fold_ready(session: AsyncSession) -> None:
    """Give this SQLite connection a Unicode `lower` (SQLite's own folds ASCII only, and the
    users are Russian). PostgreSQL's `lower` already follows the database's UTF-8 locale."""
    if session.get_bind().dialect.name != "sqlite":
        return
    raw = await (await session.connection()).get_raw_connection()
    await raw.driver_connection.create_function(  # type: ignore[union-attr]
        "cr_lower", 1, _lower, deterministic=True
    )


def _fold(
    column: ColumnElement[Any] | InstrumentedAttribute[Any], dialect: str
) -> ColumnElement[Any]:
    return func.lower(column) if dialect == "postgresql" else func.cr_lower(column)


def _like_pattern(text: str) -> str:
    """`%text%` with LIKE's wildcards escaped (escape character: backslash)."""
    escaped = text.replace("\\", "\\\\").replace("%", "\\%").replace("_", "\\_")
    return f"%{escaped}%"


def _search_condition(session: AsyncSession, q: str) -> ColumnElement[bool]:
    pattern = _like_pattern(q.lower())
    dialect = session.get_bind().dialect.name
    conditions: list[ColumnElement[bool]] = [
        _fold(column, dialect).like(pattern, escape="\\")
        for column in (User.full_name, User.email, User.company, User.note)
    ]
    # Values only (not keys): JSON text would also match key names and escaped non-ASCII.
    if dialect == "postgresql":
        # json_each_text raises on a non-object (a JSON null written by other code).
        custom = case(
            (func.json_typeof(User.custom_fields) == "object", User.custom_fields),
            else_=cast(literal("{}"), JSON),
        )
        each = func.json_each_text(custom).table_valued("value")
    else:
        each = func.json_each(User.custom_fields).table_valued("value")
    conditions.append(
        exists(
            select(1)
            .select_from(each)
            .where(_fold(each.c.value, dialect).like(pattern, escape="\\"))
        )
    )
    digits = "".join(c for c in q if c.isascii() and c.isdigit())
    if len(digits) >= 3:
        patterns = {f"%{digits}%", f"%{normalize_phone(q) or digits}%"}
        if digits.startswith("8"):
            # A number typed with the trunk prefix ("8 926 …") is stored as "7926…"; the
            # prefix only means that at the start of a number.
            patterns.add(f"7{digits[1:]}%")
        conditions.append(
            exists(
                select(1).where(
                    UserPhone.user_id == User.id,
                    or_(*(UserPhone.normalized.like(p) for p in sorted(patterns))),
                )
            )
        )
    return or_(*conditions)


async def search_users(
    session: AsyncSession, q: str | None, limit: int = 50, offset: int = 0
) -> tuple[list[User], int]:
    """Users matching `q` in name, email, company, note, a custom field value, or (3+ digits)
    a phone, case-insensitively; newest first, and the total. Empty `q` lists everyone."""
    stmt = select(User).order_by(User.created_at.desc(), User.id.desc())
    if q and q.strip():
        await _fold_ready(session)
        stmt = stmt.where(_search_condition(session, q.strip()))
    return await paged(session, stmt, limit, offset)


async def popup_fields(session: AsyncSession, user: User) -> list[dict[str, Any]]:
    """The R3 popup: `{"key", "title", "value"}` for each field flagged `incoming_call`, in
    field order. Phones are one comma-separated string; empty values are null."""
    fields = [f for f in await list_fields(session) if f.incoming_call]
    phones = (
        (await phones_of(session, [user.id]))[user.id]
        if any(f.key == "phones" for f in fields)
        else []
    )
    values = {key: getattr(user, key) for key in BUILTIN_KEYS if key != "phones"}
    return popup(fields, values, user.custom_fields or {}, phones)


def popup(
    fields: Sequence[Field], values: Mapping[str, Any], custom: Mapping[str, Any], phones: list[str]
) -> list[dict[str, Any]]:
    """The popup of one user from its field values: `fields` are the flagged ones, in order."""
    result = []
    for field in fields:
        value: Any
        if field.key == "phones":
            value = ", ".join(phones) or None
        elif field.key in BUILTIN_KEYS:
            value = values.get(field.key)
        else:
            value = custom.get(field.key)
        result.append({"key": field.key, "title": field.title, "value": value})
    return result


# --- rejected notifications (R33) ---------------------------------------------------------


async def list_rejected(
    session: AsyncSession, limit: int = 50, offset: int = 0
) -> tuple[list[Rejected], int]:
    """Refused webhook bodies, newest first, and how many there are."""
    return await paged(session, select(Rejected).order_by(Rejected.id.desc()), limit, offset)


T = TypeVar("T")


async def paged(
    session: AsyncSession, stmt: Select[T], limit: int, offset: int
) -> tuple[list[T], int]:
    """One page of `stmt` and the total, read by one statement: a count taken separately could
    disagree with the page while rows are being added."""
    rows = (
        await session.execute(stmt.add_columns(func.count().over()).limit(limit).offset(offset))
    ).all()
    if rows:
        return [row[0] for row in rows], int(rows[0][1])
    if offset == 0 and limit > 0:
        return [], 0
    # Past the last page: only the count is left to tell (nothing on the page to disagree).
    total = await session.scalar(select(func.count()).select_from(stmt.order_by(None).subquery()))
    return [], int(total or 0)


# --- units of work the HTTP handlers have the writer run (plain answers, not ORM rows) ------


async def change_settings(session: AsyncSession, changes: Mapping[str, Any]) -> Account:
    """`PUT /api/v1/settings`: the account after the change."""
    return await save_settings(session, **changes)


async def add_user(session: AsyncSession, data: Mapping[str, Any]) -> dict[str, Any]:
    """`POST /api/v1/users`: the new user's view."""
    return await user_view(session, await create_user(session, data))


async def change_user(
    session: AsyncSession, user_id: int, data: Mapping[str, Any]
) -> dict[str, Any]:
    """`PATCH /api/v1/users/{id}`: the user's view after the change."""
    return await user_view(session, await patch_user(session, user_id, data))


async def link_phone(session: AsyncSession, user_id: int, phone: str | None) -> dict[str, Any]:
    """R7: the calling number joins the user's phones (when there is one); the user's view."""
    if phone is not None and normalize_phone(phone) is not None:
        await add_phone(session, user_id, phone)
    user = await get_user(session, user_id)
    if user is None:
        raise NotFoundError("user_not_found", f"No user {user_id}.")
    return await user_view(session, user)


async def add_staff(session: AsyncSession, full_name: str, email: str) -> dict[str, Any]:
    """`POST /api/v1/staff`: the staff member with their token (shown this once)."""
    staff, token = await create_staff(session, full_name, email)
    return staff_json(staff) | {"token": token}


STAFF_ROLES: Final = ("staff", "admin")


async def change_staff(
    session: AsyncSession, staff_id: int, changes: Mapping[str, Any]
) -> dict[str, Any]:
    """`PATCH /api/v1/staff/{id}`: any of `full_name`, `email` (409 `email_taken` when another
    member has it), `active`, `role` and `password_hash` (hashed by the caller: the plain
    password never reaches the writer). Deactivating revokes the member's token (replaced by
    one nobody knows: reactivating needs a token reset) and ends their sessions; a new
    password ends their sessions too. 404 `staff_not_found`."""
    staff = await session.get(Staff, staff_id)
    if staff is None:
        raise NotFoundError("staff_not_found", f"No staff member {staff_id}.")
    if "email" in changes:
        email = str(changes["email"]).strip()
        local, at, domain = email.partition("@")
        if not (local and at and domain):
            raise InvalidError("invalid_email", "Field 'email' must be an email address.")
        await _check_email_free(session, email, except_id=staff_id)
        staff.email = email
    if "full_name" in changes:
        staff.full_name = str(changes["full_name"])
    if "role" in changes:
        if changes["role"] not in STAFF_ROLES:
            raise InvalidError("invalid_role", "Field 'role' must be 'staff' or 'admin'.")
        staff.role = changes["role"]
    end_sessions = False
    if "password_hash" in changes:
        staff.password_hash = changes["password_hash"]
        end_sessions = True
    if "active" in changes:
        staff.active = bool(changes["active"])
        if not staff.active:
            staff.token_hash = hash_token(secrets.token_urlsafe(32))
            end_sessions = True
    if end_sessions:
        await session.execute(delete(WebSession).where(WebSession.staff_id == staff_id))
    await session.flush()
    return staff_json(staff)


async def reset_staff_token(session: AsyncSession, staff_id: int) -> dict[str, Any]:
    """`POST /api/v1/staff/{id}/token`: a new token for the member (the old one stops working),
    shown this once; 404 `staff_not_found`."""
    staff = await session.get(Staff, staff_id)
    if staff is None:
        raise NotFoundError("staff_not_found", f"No staff member {staff_id}.")
    token = secrets.token_urlsafe(32)
    staff.token_hash = hash_token(token)
    await session.flush()
    return {"id": staff.id, "token": token}


async def map_operator(
    session: AsyncSession, employee_id: int, staff_id: int | None, phones: list[str] | None = None
) -> dict[str, Any]:
    """`PUT /api/v1/operators/{employee_id}`; `phones` (smart routing rings them) replace the
    operator's when given, without repeats."""
    operator = await put_operator(session, employee_id, staff_id)
    if phones is not None:
        operator.phones = list(dict.fromkeys(phones))
        await session.flush()
    return operator_json(operator)


async def add_field(
    session: AsyncSession, key: str, title: str, incoming_call: bool
) -> dict[str, Any]:
    """`POST /api/v1/fields`."""
    return field_json(await create_field(session, key, title, incoming_call))


async def change_field(
    session: AsyncSession, key: str, incoming_call: bool | None, title: str | None
) -> dict[str, Any]:
    """`PATCH /api/v1/fields/{key}`."""
    return field_json(await update_field(session, key, incoming_call=incoming_call, title=title))
