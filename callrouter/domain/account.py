"""Account-wide settings (API.md "Admin"), as one frozen value passed down."""

from __future__ import annotations

from dataclasses import dataclass
from zoneinfo import ZoneInfo

DEFAULT_CALL_API_URL = "https://callapi.uiscom.ru/v4.0"


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
        }
