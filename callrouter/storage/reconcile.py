"""Storage of the reconciliation (issue 11 part 2): what arrived of some calls (read from the
inbox, where every stored notification is, whatever became of it), the runs and their repairs,
and the job's settings."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import asdict, dataclass, replace
from datetime import datetime
from typing import Any, Final, cast
from zoneinfo import ZoneInfo

from sqlalchemy import Table, func, select, update
from sqlalchemy.ext.asyncio import AsyncSession

from callrouter.domain.reconcile import Arrived, arrived_of
from callrouter.domain.uis import parse_body, parse_notification
from callrouter.storage.contexts import chunks
from callrouter.storage.directory import InvalidError
from callrouter.storage.engine import Conn
from callrouter.storage.models import InboxEntry, ReconcileRun, Setting

inbox_t = cast(Table, InboxEntry.__table__)
runs_t = cast(Table, ReconcileRun.__table__)
SETTINGS_KEY: Final = "reconcile"
MAX_LISTED: Final = 2000  # repairs kept per run in its list; the counts are always complete


@dataclass(frozen=True, slots=True)
class ReconcileSettings:
    """When the periodic job runs: every `interval_seconds`, over the calls that started in the
    last `lookback_seconds`, repairing those UIS finished at least `margin_seconds` ago. Off
    until the admin turns it on: it holds calls with gaps for up to `hold_seconds` (their
    cases come that much later) and spends Data API points."""

    enabled: bool = False
    interval_seconds: int = 600
    lookback_seconds: int = 6 * 3600
    margin_seconds: int = 120


# Seconds a held call waits beyond the run that covers it (the run itself, its repairs' way
# through the writer to the shard).
HOLD_SLACK: Final = 60


def hold_seconds(settings: ReconcileSettings, integrated: bool) -> float:
    """How long (wall seconds after its call end arrived) an ended call whose facts show gaps
    waits to be decided: until the scheduled run that covers it is surely over — that run
    starts at most `interval` after the call is `margin` old. 0 when no run will come (off,
    or no integration saved)."""
    if not settings.enabled or not integrated:
        return 0.0
    return float(settings.interval_seconds + settings.margin_seconds + HOLD_SLACK)


RANGES: Final = {
    "interval_seconds": (60, 86400),
    "lookback_seconds": (600, 7 * 86400),
    "margin_seconds": (30, 3600),
}


async def arrived(conn: Conn, call_ids: Sequence[int], tz: ZoneInfo) -> dict[int, Arrived]:
    """What arrived here of these calls: every stored notification of theirs, parsed again."""
    notes = []
    for part in chunks(call_ids):
        rows = await conn.execute(
            select(inbox_t.c.body, inbox_t.c.received_at).where(inbox_t.c.call_session_id.in_(part))
        )
        for body, received_at in rows:
            try:
                notes.append(parse_notification(parse_body(body.encode()), tz, received_at))
            except Exception:  # noqa: BLE001,S112 - a body the parser fails on says nothing here
                continue
    return arrived_of(notes)


async def create_run(
    session: AsyncSession, trigger: str, start: datetime, end: datetime, now: datetime
) -> int:
    """A new run, queued; its id."""
    run = ReconcileRun(
        trigger=trigger,
        period_from=start,
        period_to=end,
        started_at=now,
        status="queued",
        counts={},
        repairs=[],
        body_hashes=[],
    )
    session.add(run)
    await session.flush()
    return int(run.id)


async def update_run(session: AsyncSession, run_id: int, values: dict[str, Any]) -> None:
    """Change a run's status, figures or error."""
    if "repairs" in values:
        values["repairs"] = values["repairs"][:MAX_LISTED]
    await session.execute(update(runs_t).where(runs_t.c.id == run_id).values(**values))


async def interrupt_runs(session: AsyncSession, now: datetime) -> int:
    """Runs a stopped writer left unfinished are failed (a new run repairs what they did not)."""
    result = await session.execute(
        update(runs_t)
        .where(runs_t.c.status.in_(("queued", "running")))
        .values(
            status="failed",
            finished_at=now,
            error_code="interrupted",
            error="The service stopped during this run; the next run covers its period again.",
        )
    )
    return int(getattr(result, "rowcount", 0) or 0)


async def list_runs(session: AsyncSession, limit: int, offset: int) -> tuple[list[Any], int]:
    """Runs, newest first, and how many there are."""
    total = int(await session.scalar(select(func.count()).select_from(runs_t)) or 0)
    rows = await session.execute(
        select(runs_t).order_by(runs_t.c.id.desc()).limit(limit).offset(offset)
    )
    return list(rows.all()), total


async def load_settings(session: AsyncSession) -> ReconcileSettings:
    row = await session.get(Setting, SETTINGS_KEY)
    stored = row.value if row is not None and isinstance(row.value, dict) else {}
    known = {k: v for k, v in stored.items() if k in ReconcileSettings.__dataclass_fields__}
    return replace(ReconcileSettings(), **known)


async def save_settings(session: AsyncSession, /, **changes: Any) -> ReconcileSettings:
    """Change some settings, all checked before any is written; the settings after."""
    for key, value in changes.items():
        if key == "enabled":
            if not isinstance(value, bool):
                raise InvalidError("invalid_setting", "Field 'enabled' must be true or false.")
            continue
        if key not in RANGES:
            raise InvalidError("unknown_setting", f"Unknown setting '{key}'.")
        low, high = RANGES[key]
        if isinstance(value, bool) or not isinstance(value, int) or not low <= value <= high:
            raise InvalidError(
                "invalid_setting",
                f"Field '{key}' must be a whole number of seconds from {low} to {high}.",
            )
    settings = replace(await load_settings(session), **changes)
    row = await session.get(Setting, SETTINGS_KEY)
    if row is None:
        session.add(Setting(key=SETTINGS_KEY, value=asdict(settings)))
    else:
        row.value = asdict(settings)
    return settings
