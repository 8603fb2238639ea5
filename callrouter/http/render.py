"""How values leave the API: times in the account's zone, lists as `{"items", "total"}`."""

from __future__ import annotations

from collections.abc import Sequence
from datetime import datetime, tzinfo
from typing import Any, overload


@overload
def iso(dt: datetime, tz: tzinfo) -> str: ...
@overload
def iso(dt: None, tz: tzinfo) -> None: ...
def iso(dt: datetime | None, tz: tzinfo) -> str | None:
    """ISO 8601 with the offset of `tz` (the account's zone); None stays None."""
    if dt is None:
        return None
    return dt.astimezone(tz).isoformat()


def page(items: Sequence[Any], total: int) -> dict[str, Any]:
    """The list shape of API.md."""
    return {"items": list(items), "total": total}
