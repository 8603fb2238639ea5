"""Account-wide settings (API.md "Admin"), as one frozen value passed down."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Final
from zoneinfo import ZoneInfo

DEFAULT_CALL_API_URL = "https://callapi.uiscom.ru/v4.0"

# The accepted range of each number setting, in seconds: what a contact centre can mean.
SETTING_RANGES: Final = {
    "close_sla_seconds": (1, 10 * 366 * 86400),
    "service_level_seconds": (1, 3600),
    # Shorter than a minute would end calls that merely wait in a queue without news.
    "silent_call_timeout_seconds": (60, 7 * 86400),
    "lateness_seconds": (1, 3600),
}


@dataclass(frozen=True, slots=True)
class Integration:
    """The UIS integration (R1): Call API key, virtual number, and the webhook secret."""

    api_key: str
    virtual_phone_number: str
    call_api_url: str
    webhook_secret: str


@dataclass(frozen=True, slots=True)
class Account:
    timezone: str = "Europe/Moscow"
    close_sla_seconds: int = 86400
    service_level_seconds: int = 20
    silent_call_timeout_seconds: int = 7200
    # How late UIS may deliver a notification and still be ordered by its time: a call is
    # decided once the event clock has passed its end by this much (R32, docs/decisions.md).
    lateness_seconds: int = 30
    integration: Integration | None = None

    @property
    def tz(self) -> ZoneInfo:
        return ZoneInfo(self.timezone)

    def settings_json(self) -> dict[str, object]:
        """The body of `PUT/GET /api/v1/settings`."""
        return {
            "timezone": self.timezone,
            "close_sla_seconds": self.close_sla_seconds,
            "service_level_seconds": self.service_level_seconds,
            "silent_call_timeout_seconds": self.silent_call_timeout_seconds,
            "lateness_seconds": self.lateness_seconds,
        }
