"""UIS notification bodies → `Notification` (R4, R33; UIS.md "Notifications").

Pure: bytes → dict → Notification, no I/O. Tolerant of what UIS really sends (the guide's nested
layout or a flat one, nulls, leftover `{{placeholders}}`, numbers as strings); what it cannot use
is a `BodyError` (not JSON: HTTP 400) or a `NotificationError` (JSON, but unusable: HTTP 422).
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from datetime import UTC, datetime, timedelta
from zoneinfo import ZoneInfo

import orjson

from callrouter.domain.notifications import Kind, Notification, NotificationError

# The guide's six notification names, compared after `_fold`.
NAMES: dict[str, Kind] = {
    "исходящее плечо": Kind.LEG_START,
    "поднятие трубки": Kind.ANSWER,
    "завершение плеча": Kind.LEG_END,
    "завершение звонка": Kind.CALL_END,
    "записанный разговор": Kind.RECORDING,
    "исходящий звонок": Kind.OUTGOING_CALL,
}

# Where each field sits in the guide's nested templates; flat templates have it at the top level.
# Fields not listed here (notification_name, notification_time, leg_id, ...) are top-level only.
_SECTION: dict[str, str] = {
    "contact_phone_number": "contact_info",
    "communication_number": "contact_info",
    "employee_full_name": "employee_info",
    "employee_id": "employee_info",
    "call_source": "call_info",
    "direction": "call_info",
    "call_session_id": "call_info",
    "is_operator": "call_info",
    "is_lost": "call_info",
    "talk_time_duration": "call_info",
    "total_time_duration": "call_info",
    "wait_time_duration": "call_info",
    "file_link": "call_record_file_info",
    "call_record_duration": "call_record_file_info",
    "record_file_links": "call_record_file_info",
}
# The guide writes `"call_record_duration": {{file_duration}}`; flat templates use either name.
_VARIABLE: dict[str, str] = {"call_record_duration": "file_duration"}

_PLACEHOLDER = re.compile(r"\s*\{\{.*\}\}\s*", re.DOTALL)
_INTEGER = re.compile(r"[0-9]{1,19}")
_TIME = re.compile(
    r"[0-9]{4}-[0-9]{2}-[0-9]{2}[T ][0-9]{2}:[0-9]{2}(:[0-9]{2}(\.[0-9]+)?)?"
    r"(Z|[+-][0-9]{2}(:?[0-9]{2})?)?"
)
_MAX_ID = 2**63 - 1  # ids are stored as signed 64-bit integers

# Bounds UIS can never legitimately exceed (R33, issue "nothing lost"). Whatever passes them can
# be stored, timed and counted without overflow anywhere downstream, so one body never raises
# later, far from its own call.
EARLIEST = datetime(2000, 1, 1, tzinfo=UTC)  # no UIS account is older
MAX_LEAD = timedelta(days=1)  # a PBX clock (or a wrong account zone) this far ahead is broken
MAX_SECONDS = 7 * 86400  # no call, wait or recording lasts a week
MAX_TEXT = {  # characters: phone numbers (with dial suffixes), our external ids, names
    "contact_phone_number": 64,
    "communication_number": 64,
    "virtual_phone_number": 64,
    "external_id": 128,
    "call_source": 32,
    "direction": 16,
    "employee_full_name": 500,
}
MAX_URL = 1000  # any other text field: recording links (the column holds 1000)
MAX_LINKS = 100


class BodyError(ValueError):
    """A webhook body that is not JSON (HTTP 400)."""


def body_text(raw: bytes) -> str:
    """A body as kept for inspection: undecodable bytes and NULs (PostgreSQL text holds none)
    shown as U+FFFD."""
    return raw.decode("utf-8", "replace").replace("\x00", "\ufffd")


def parse_body(raw: bytes) -> object:
    """Decode a webhook body; raise `BodyError` unless it is JSON (HTTP 400). JSON that is not
    an object is `parse_notification`'s to refuse (HTTP 422, API.md).

    The Content-Type header is ignored (UIS documents none). A leftover unquoted `{{variable}}`
    makes the body invalid JSON, so it is a `BodyError` too; the message says where.
    """
    # Some editors save templates with a BOM, which orjson refuses; it carries no meaning.
    body = raw.removeprefix(b"\xef\xbb\xbf")
    try:
        return orjson.loads(body)
    except orjson.JSONDecodeError as error:
        # orjson counts characters, not bytes.
        text = body.decode("utf-8", "replace")
        near = text[max(0, error.pos - 20) : error.pos + 20]
        raise BodyError(
            f"body is not valid JSON: {error.msg} at line {error.lineno}, column {error.colno}"
            f" (character {error.pos}), near {near!r}"
        ) from None


def parse_notification(doc: object, tz: ZoneInfo, received_at: datetime) -> Notification:
    """Read one decoded body as a `Notification`; raise `NotificationError` if it is unusable.

    Accepts the guide's nested layout and the flat one (a nested value wins unless missing).
    Absent keys, nulls, `{{placeholders}}` and bare variable names are None. A naive
    `notification_time` is local time in `tz`; without one, the time is `received_at` (aware).
    Raises only `NotificationError`, whatever JSON value `doc` is.
    """
    if not isinstance(doc, Mapping):
        raise NotificationError(
            "not_an_object", f"a notification must be a JSON object, not {_describe(doc)}"
        )
    kind = _kind(doc)
    call_session_id = _int(doc, "call_session_id")
    if call_session_id is None:
        raise NotificationError(
            "missing_call_session_id",
            "call_session_id is missing (looked in call_info and at the top level)",
        )
    if call_session_id == 0:
        raise NotificationError(
            "invalid_field", "call_session_id must be a positive integer, got 0"
        )
    file_link = _text(doc, "file_link")
    links = _links(doc)
    direction = _text(doc, "direction")
    return Notification(
        kind=kind,
        call_session_id=call_session_id,
        time=_time(doc, tz, received_at) or received_at,
        phone=_text(doc, "contact_phone_number"),
        virtual_phone_number=_text(doc, "virtual_phone_number"),
        communication_number=_text(doc, "communication_number"),
        direction=direction.lower() if direction else None,
        call_source=_text(doc, "call_source"),
        external_id=_text(doc, "external_id"),
        employee_id=_int(doc, "employee_id"),
        employee_name=_text(doc, "employee_full_name"),
        leg_id=_int(doc, "leg_id"),
        is_operator=_bool(doc, "is_operator"),
        is_lost=_bool(doc, "is_lost"),
        talk_seconds=_seconds(doc, "talk_time_duration"),
        total_seconds=_seconds(doc, "total_time_duration"),
        wait_seconds=_seconds(doc, "wait_time_duration"),
        file_link=file_link,
        record_urls=links or ((file_link,) if file_link else ()),
        record_seconds=_seconds(doc, "call_record_duration"),
    )


def _fold(name: str) -> str:
    """Trim, collapse inner whitespace and casefold: admins type names by hand."""
    return " ".join(name.split()).casefold()


def _kind(doc: Mapping[str, object]) -> Kind:
    name = _value(doc, "notification_name")
    kind = NAMES.get(_fold(name)) if isinstance(name, str) else None
    if kind is None:
        expected = ", ".join(f"«{known.capitalize()}»" for known in NAMES)
        got = "is missing" if name is None else f"{_describe(name)} is not one of them"
        raise NotificationError(
            "unknown_notification",
            f"notification_name must be one of the guide's six names ({expected}); {got}",
        )
    return kind


def _value(doc: Mapping[str, object], key: str) -> object:
    """The raw value of `key`: nested in its section unless missing there, else top-level."""
    names = (key, _VARIABLE[key]) if key in _VARIABLE else (key,)
    section = doc.get(_SECTION.get(key, ""))
    # A section that is not an object (null, a placeholder) is as good as absent.
    places = (section, doc) if isinstance(section, Mapping) else (doc,)
    for place in places:
        for name in names:
            value = place.get(name)
            if not _missing(value, names):
                return value
    return None


def _missing(value: object, names: tuple[str, ...]) -> bool:
    """None, blank, a `{{placeholder}}` UIS left unreplaced, or the bare variable name."""
    if value is None:
        return True
    if not isinstance(value, str):
        return False
    return not value.strip() or value.strip() in names or bool(_PLACEHOLDER.fullmatch(value))


def _int(doc: Mapping[str, object], key: str) -> int | None:
    value = _value(doc, key)
    number: int | None = None
    if isinstance(value, bool):
        pass  # JSON true is not a number, although Python's bool is an int
    elif isinstance(value, int):
        number = value
    elif isinstance(value, float) and value.is_integer():
        number = int(value)
    elif isinstance(value, str) and _INTEGER.fullmatch(value.strip()):
        number = int(value.strip())
    elif value is None:
        return None
    if number is None or not 0 <= number <= _MAX_ID:
        raise _invalid(key, value, "a non-negative integer")
    return number


def _seconds(doc: Mapping[str, object], key: str) -> int | None:
    """A duration: an integer number of seconds no call can exceed."""
    number = _int(doc, key)
    if number is not None and number > MAX_SECONDS:
        raise _invalid(key, number, f"a duration of at most {MAX_SECONDS} seconds (a week)")
    return number


def _bool(doc: Mapping[str, object], key: str) -> bool | None:
    value = _value(doc, key)
    if value is None or isinstance(value, bool):
        return value
    if value in (0, 1) and not isinstance(value, str):
        return bool(value)
    if isinstance(value, str) and value.strip().casefold() in ("true", "false", "0", "1"):
        return value.strip().casefold() in ("true", "1")
    raise _invalid(key, value, "true or false")


def _text(doc: Mapping[str, object], key: str) -> str | None:
    value = _value(doc, key)
    if value is None:
        return None
    if isinstance(value, str):
        text = value.strip()
    # A flat template may leave a phone number or our external_id unquoted.
    elif isinstance(value, int) and not isinstance(value, bool):
        text = str(value)
    else:
        raise _invalid(key, value, "a string")
    return _bounded(key, text, MAX_TEXT.get(key, MAX_URL))


def _bounded(key: str, text: str, limit: int) -> str:
    """`text` unless it is longer than `limit`. A NUL (PostgreSQL text holds none) reads as
    U+FFFD: a number with one has a non-digit, so it is an unknown caller, never an error."""
    if len(text) > limit:
        raise NotificationError(
            "invalid_field", f"{key} is {len(text)} characters long; at most {limit} are accepted"
        )
    return text.replace("\x00", "\ufffd")


def _links(doc: Mapping[str, object]) -> tuple[str, ...]:
    value = _value(doc, "record_file_links")
    if value is None:
        return ()
    items = [value] if isinstance(value, str) else value  # one link may come unwrapped
    if not isinstance(items, list):
        raise _invalid("record_file_links", value, "an array of URLs")
    if len(items) > MAX_LINKS:
        raise NotificationError(
            "invalid_field", f"record_file_links has {len(items)} links; at most {MAX_LINKS}"
        )
    links: list[str] = []
    for item in items:
        if _missing(item, ("record_file_links", "file_link")):
            continue
        if not isinstance(item, str):
            raise _invalid("record_file_links", item, "an array of URLs (strings)")
        links.append(_bounded("record_file_links", item.strip(), MAX_URL))
    return tuple(links)


def _time(doc: Mapping[str, object], tz: ZoneInfo, received_at: datetime) -> datetime | None:
    value = _value(doc, "notification_time")
    if value is None:
        return None
    moment = None
    if isinstance(value, str) and _TIME.fullmatch(value.strip()):
        try:
            moment = datetime.fromisoformat(value.strip())
            # UIS sends the account's local time without a zone; an explicit offset wins.
            # Converting to `tz` also rejects times that do not exist in UTC (year 1 at +03).
            moment = (moment if moment.tzinfo else moment.replace(tzinfo=tz)).astimezone(tz)
        except (ValueError, OverflowError):
            moment = None
    if moment is None:
        raise _invalid("notification_time", value, 'a time like "2024-05-17 14:03:27.512"')
    if moment < EARLIEST:
        raise NotificationError(
            "invalid_field", f"notification_time {value!r} is before the year 2000"
        )
    if moment > received_at + MAX_LEAD:
        raise NotificationError(
            "invalid_field",
            f"notification_time {value!r} is more than a day ahead of this server's clock;"
            " check the account's time zone setting",
        )
    return moment


def _invalid(key: str, value: object, expected: str) -> NotificationError:
    return NotificationError("invalid_field", f"{key} must be {expected}, got {_describe(value)}")


def _describe(value: object) -> str:
    """A short, safe rendering of a bad value for messages (bodies may be huge or deep)."""
    if isinstance(value, Mapping):
        return "an object"
    if isinstance(value, list):
        return "an array"
    if isinstance(value, str):
        return repr(value if len(value) <= 40 else value[:40] + "…")
    if isinstance(value, int) and not isinstance(value, bool) and value.bit_length() > 64:
        return "a number too large"
    if isinstance(value, bool) or value is None:
        return orjson.dumps(value).decode()  # true/false/null, as the admin wrote them
    return repr(value)
