"""The six UIS notifications as one typed value (R4).

`callrouter.domain.uis.parse_notification` turns a raw body into a `Notification`; everything
downstream works on this type only, never on UIS's JSON.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from enum import StrEnum

from callrouter.domain.wire import wire


class Kind(StrEnum):
    """What happened, whatever the admin named the notification."""

    LEG_START = "leg_start"  # «Исходящее плечо»: the PBX dials a leg out
    ANSWER = "answer"  # «Поднятие трубки»: someone on a leg answered
    LEG_END = "leg_end"  # «Завершение плеча»: one leg ended
    CALL_END = "call_end"  # «Завершение звонка»: the whole call ended
    RECORDING = "recording"  # «Записанный разговор»: a recording is ready
    OUTGOING_CALL = "outgoing_call"  # «Исходящий звонок»: staff started an outgoing call


class NotificationError(ValueError):
    """A body that is JSON but not a usable notification (HTTP 422).

    `code` is a snake_case reason for the API error, `message` a human sentence.
    """

    def __init__(self, code: str, message: str) -> None:
        super().__init__(message)
        self.code = code
        self.message = message


@wire
@dataclass(frozen=True, slots=True)
class Notification:
    """One parsed notification. Missing values (null, absent, `{{placeholder}}`) are None.

    `time` is `notification_time` read in the account's zone (timezone-aware); when UIS sent
    none, the time the body was received. Phone numbers are kept as UIS sent them.
    """

    kind: Kind
    call_session_id: int
    time: datetime
    phone: str | None = None  # contact_phone_number: the user's side
    virtual_phone_number: str | None = None
    communication_number: str | None = None
    direction: str | None = None  # "in" / "out"
    call_source: str | None = None  # "va", "sip", "callapi", ...
    external_id: str | None = None  # ours, when the call was started through the Call API
    employee_id: int | None = None
    employee_name: str | None = None
    leg_id: int | None = None
    is_operator: bool | None = None  # leg end: is this an operator's leg
    is_lost: bool | None = None
    talk_seconds: int | None = None
    total_seconds: int | None = None
    wait_seconds: int | None = None
    file_link: str | None = None
    record_urls: tuple[str, ...] = ()  # record_file_links, else (file_link,) when present
    record_seconds: int | None = None
