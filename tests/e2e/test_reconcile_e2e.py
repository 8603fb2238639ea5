"""Reconciliation with the UIS Data API (issue 11 part 2) end to end: a real service whose
Data API is the fake UIS (`--data-api-url`), traffic posted to its webhook with some
notifications never sent, `POST /api/v1/reconcile`, and the cases then equal — fingerprint for
fingerprint — to those the complete stream makes (the in-process pipeline fed every body, the
same staff and operators); a second run repairs nothing.

At the default lateness bound (30 s): the calls whose own facts show a gap are held for the run
(`held_calls` counts them), the call whose end never came stays live, and a whole call that
never arrived is repaired as a new call (its caller calls no more: R16 has nothing to order).
"""

from __future__ import annotations

import asyncio
import random
import tempfile
import uuid
from collections import Counter
from collections.abc import Iterator
from datetime import datetime, timedelta
from pathlib import Path
from types import ModuleType
from typing import Any
from zoneinfo import ZoneInfo

import pytest

from callrouter.domain.uis import parse_body, parse_notification
from callrouter.storage import directory
from callrouter.storage.engine import Database
from callrouter.testing import fingerprint
from callrouter.testing import uis_bodies as ub
from callrouter.testing.fake_uis import FakeUisThread, reports_from_stream
from callrouter.testing.pipeline import Pipeline

pytestmark = [pytest.mark.e2e]

MSK = ZoneInfo("Europe/Moscow")
KEY = "reconcile-e2e-key"
STAFF = (("Анна Смирнова", "anna@reconcile.test"), ("Борис Орлов", "boris@reconcile.test"))
E1, E2 = 5101, 5102


@pytest.fixture(scope="module")
def uis() -> Iterator[FakeUisThread]:
    fake = FakeUisThread(KEY)
    try:
        yield fake
    finally:
        fake.close()


@pytest.fixture(scope="module")
def svc(
    e2e_kit: ModuleType, tmp_path_factory: pytest.TempPathFactory, uis: FakeUisThread
) -> Iterator[Any]:
    root = tmp_path_factory.mktemp("reconcile")
    service = e2e_kit.ServiceProcess(
        root / "data",
        admin_token=f"reconcile-{uuid.uuid4().hex}",
        name="reconcile",
        extra_args=("--data-api-url", uis.fake.data_url),
    )
    service.start()
    try:
        service.wait_ready()
        yield service
    finally:
        service.interrupt()
        service.stop()


def whole_seconds(events: list[ub.Event]) -> list[ub.Event]:
    """The Data API reports whole seconds: only such a stream is rebuilt exactly from it."""
    out = []
    for t, body in events:
        t = t.replace(microsecond=0)
        out.append((t, {**body, "notification_time": ub.format_time(t)}))
    return out


def traffic(start: datetime) -> tuple[list[ub.Event], list[bool]]:
    """Five callers' calls and which bodies UIS "never sent"."""
    rng = random.Random(11)
    at = [start + timedelta(minutes=15 * i) for i in range(6)]
    calls = [
        ub.incoming_answered(7001, at[0], "79160000101", E1, rng=rng),  # answer, leg end lost
        ub.incoming_missed(7002, at[1], "79160000101", [E1, E2], rng=rng),  # waits for 7001
        ub.transfer(7003, at[2], "79160000102", E1, E2, rng=rng),  # 2nd leg start + record lost
        ub.outgoing_softphone(7004, at[3], "79160000103", E2, True, rng=rng),  # call end lost
        ub.incoming_missed(7005, at[4], "79160000104", [E1, E2], rng=rng),  # never arrived
        ub.outgoing_softphone(7006, at[5], "79160000105", E1, True, rng=rng),  # outgoing lost
    ]
    events = whole_seconds(sorted((e for c in calls for e in c), key=lambda e: e[0]))
    leg_starts_of_7003 = 0
    dropped = []
    for t, body in events:
        n = parse_notification(parse_body(ub.encode(body)), MSK, t.replace(tzinfo=MSK))
        kind, call = n.kind.value, n.call_session_id
        if call == 7003 and kind == "leg_start":
            leg_starts_of_7003 += 1
        drop = (
            (call == 7001 and kind in ("answer", "leg_end"))
            or (call == 7003 and kind == "leg_start" and leg_starts_of_7003 == 2)
            or (call == 7003 and kind == "recording" and n.employee_id == E2)
            or (call == 7004 and kind == "call_end")
            or call == 7005
            or (call == 7006 and kind == "outgoing_call")
        )
        dropped.append(drop)
    return events, dropped


def epoch(t: datetime) -> float:
    return t.replace(tzinfo=MSK).timestamp()


async def complete_streams_cases(events: list[ub.Event], work: Path) -> fingerprint.Fingerprint:
    """The cases of the complete stream: the in-process pipeline fed every body."""
    path = work / "complete.sqlite3"
    db = Database(f"sqlite:///{path}")
    await db.create_schema()
    try:
        async with db.sessions() as session, session.begin():
            ids = [await directory.create_staff(session, n, e) for n, e in STAFF]
        staff_of = {E1: ids[0][0].id, E2: ids[1][0].id}
        pipeline = Pipeline(db, staff_of)
        wall = 0.0
        for t, body in events:
            wall = epoch(t) + 0.01
            await pipeline.tick(wall)
            await pipeline.post(ub.encode(body), wall)
        await pipeline.settle(wall + 1.0, step=60.0)
    finally:
        await db.dispose()
    return await fingerprint.from_database(path)


def test_dropped_notifications_are_repaired_into_the_complete_streams_cases(
    svc: Any, uis: FakeUisThread, e2e_kit: ModuleType
) -> None:
    desk = e2e_kit.Desk(svc)  # saves the integration (key, number)
    admin = desk.admin
    integration = {"api_key": KEY, "virtual_phone_number": "74950000000"}
    e2e_kit.expect(admin.put("/api/v1/integrations/uis", integration), 200)
    for (name, email), employee in zip(STAFF, (E1, E2), strict=True):
        made = e2e_kit.expect(admin.post("/api/v1/staff", {"full_name": name, "email": email}), 201)
        e2e_kit.expect(admin.put(f"/api/v1/operators/{employee}", {"staff_id": made["id"]}), 200)
    on = {"enabled": True}
    settings = e2e_kit.expect(admin.put("/api/v1/reconcile/settings", on), 200)
    assert settings["enabled"] and settings["hold_seconds"] == 600 + 120 + 60

    start = datetime.now(MSK).replace(tzinfo=None, microsecond=0) - timedelta(hours=3)
    events, dropped = traffic(start)
    bodies = [ub.encode(b) for _, b in events]
    calls, legs = reports_from_stream(bodies, MSK)
    uis.apply(lambda f: (setattr(f, "call_rows", calls), setattr(f, "leg_rows", legs)))
    desk.post_call([e for e, d in zip(events, dropped, strict=True) if not d])

    # 7001 (answer and leg end missing), 7002 behind it (R16), 7003 (a leg without its start)
    # and 7006 (no outgoing call) wait for the run; 7004 never ended.
    desk.wait(
        lambda: admin.get("/api/v1/reconcile").json["held_calls"] == 3,
        "three calls with gaps held for the reconciliation",
    )
    begin, now = start - timedelta(minutes=1), datetime.now(MSK).replace(tzinfo=None)
    period = {"from": begin.isoformat(), "to": now.isoformat()}
    first = e2e_kit.expect(admin.post("/api/v1/reconcile", period), 202)
    run = _finished(desk, admin, first["id"])
    expected = Counter(
        parse_notification(parse_body(ub.encode(b)), MSK, t.replace(tzinfo=MSK)).kind.value
        for (t, b), d in zip(events, dropped, strict=True)
        if d
    )
    assert run["status"] == "done", run
    assert run["counts"] == {**expected, "whole_calls": 1}
    assert run["calls_seen"] == 6
    assert {r["call_session_id"] for r in run["repairs"] if r["whole_call"]} == {7005}

    with tempfile.TemporaryDirectory() as work:
        want = asyncio.run(complete_streams_cases(events, Path(work)))

    def same() -> bool:
        return fingerprint.read_database(svc.data_dir) == want

    desk.wait(same, "the cases of the complete stream")
    assert admin.get("/api/v1/reconcile").json["held_calls"] == 0

    second = e2e_kit.expect(admin.post("/api/v1/reconcile", period), 202)
    again = _finished(desk, admin, second["id"])
    assert (again["status"], again["counts"], again["repairs"]) == ("done", {}, [])
    assert fingerprint.read_database(svc.data_dir) == want

    # Errors in words: no key at UIS, a period the wrong way round, one too long.
    uis.apply(lambda f: setattr(f, "access_token", "another-key"))
    third = e2e_kit.expect(admin.post("/api/v1/reconcile", period), 202)
    refused = _finished(desk, admin, third["id"])
    assert refused["status"] == "failed" and refused["error"], refused
    bad = admin.post("/api/v1/reconcile", {"from": period["to"], "to": period["from"]})
    assert (bad.status, bad.json["error"]["code"]) == (422, "invalid_period")
    long = admin.post("/api/v1/reconcile", {"from": "2026-01-01", "to": "2026-06-01"})
    assert (long.status, long.json["error"]["code"]) == (422, "period_too_long")


def _finished(desk: Any, admin: Any, run_id: int) -> dict[str, Any]:
    def probe() -> dict[str, Any] | None:
        runs = admin.get("/api/v1/reconcile").json["items"]
        run = next(r for r in runs if r["id"] == run_id)
        return run if run["status"] in ("done", "failed") else None

    found: dict[str, Any] = desk.wait(probe, f"reconciliation run {run_id}")
    return found


# -- the admin page's section ---------------------------------------------------------------

ARTIFACTS = Path(__file__).resolve().parents[2] / "test-artifacts"
TOKEN_KEY = "callrouter.admin_token"


def _tab(browser: Any, service: Any, locale: str) -> Any:
    context = browser.new_context(
        viewport={"width": 1366, "height": 900}, base_url=service.base_url, locale=locale
    )
    context.set_default_timeout(10_000)
    token = service.admin_token
    context.add_init_script(f"localStorage.setItem('{TOKEN_KEY}', '{token}')")
    page = context.new_page()
    errors: list[str] = []
    page.on("pageerror", lambda exc: errors.append(str(exc)))
    page.goto("/admin#reconcile")
    page.wait_for_selector("body.ready")
    page.get_by_test_id("reconcile").evaluate("(n) => n.scrollIntoView({block: 'start'})")
    return page, errors


def _shot(page: Any, name: str) -> None:
    ARTIFACTS.mkdir(exist_ok=True)
    page.screenshot(path=str(ARTIFACTS / f"reconcile-{name}.png"))


@pytest.mark.browser
def test_the_admin_sets_runs_and_reads_the_reconciliation_in_the_page(
    svc: Any, uis: FakeUisThread, e2e_kit: ModuleType, browser: Any
) -> None:
    """Russian by default: settings checked in words, a run now that UIS refuses (explained),
    one that works, the counts per kind and a run's repairs; then the same in English."""
    from playwright.sync_api import expect as ui

    desk = e2e_kit.Desk(svc)
    integration = {"api_key": KEY, "virtual_phone_number": "74950000000"}
    e2e_kit.expect(desk.admin.put("/api/v1/integrations/uis", integration), 200)
    off = {"enabled": False, "interval_seconds": 600}
    e2e_kit.expect(desk.admin.put("/api/v1/reconcile/settings", off), 200)
    page, errors = _tab(browser, svc, "ru-RU")
    section = page.get_by_test_id("reconcile")
    ui(page.get_by_test_id("reconcile-state")).to_have_text("Выключена")
    ui(page.get_by_test_id("reconcile-hold")).to_contain_text("не ждут")
    _shot(page, "off")
    ui(page.locator("#reconcile-interval")).to_have_value("10")
    page.check("#reconcile-enabled")
    section.get_by_role("button", name="Сохранить").click()
    ui(page.get_by_test_id("reconcile-state")).to_have_text("Включена")
    ui(page.get_by_test_id("reconcile-hold")).to_contain_text("13 мин")
    page.fill("#reconcile-interval", "0")
    section.get_by_role("button", name="Сохранить").click()
    ui(section.locator('.field-error[data-for="interval_seconds"]')).to_have_text(
        "Целое число от 1 до 1440."
    )
    _shot(page, "settings-error")
    page.fill("#reconcile-interval", "15")
    section.get_by_role("button", name="Сохранить").click()
    ui(page.get_by_test_id("reconcile-hold")).to_contain_text("18 мин")
    assert (
        e2e_kit.expect(desk.admin.get("/api/v1/reconcile/settings"), 200)["interval_seconds"] == 900
    )

    today = datetime.now(MSK).date()
    page.fill("#reconcile-from", (today - timedelta(days=1)).isoformat())
    page.fill("#reconcile-to", (today + timedelta(days=1)).isoformat())
    uis.apply(lambda f: setattr(f, "access_token", "not-this-key"))
    page.get_by_role("button", name="Сверить").click()
    ui(page.get_by_test_id("reconcile-run-status")).to_contain_text("запущена")
    first = page.get_by_test_id("reconcile-runs").locator("tr[data-run]").first
    ui(first).to_contain_text("Ошибка")
    ui(first).to_contain_text("UIS не знает этот ключ API")
    _shot(page, "refused")

    uis.apply(lambda f: setattr(f, "access_token", KEY))
    page.get_by_role("button", name="Сверить").click()
    first = page.get_by_test_id("reconcile-runs").locator("tr[data-run]").first
    ui(first).to_contain_text("Готово")
    ui(first).to_contain_text("вручную")
    # Earlier runs of this module (the end-to-end test) repaired calls: their counts show.
    repaired = page.locator("tr[data-run-repairs]")
    if repaired.count():
        ui(page.get_by_test_id("reconcile-runs")).to_contain_text("конец плеча")
        repaired.first.locator("summary").click()
        ui(repaired.first.locator("li").first).to_contain_text("звонок")
    _shot(page, "runs")
    assert not errors, errors
    page.context.close()

    page, errors = _tab(browser, svc, "en-US")
    ui(page.get_by_test_id("reconcile").locator("h2")).to_have_text("Reconciliation with UIS")
    ui(page.get_by_test_id("reconcile-runs")).to_contain_text("UIS does not know this API key")
    ui(page.get_by_test_id("reconcile-held")).to_contain_text("Calls waiting for a reconciliation")
    _shot(page, "english")
    assert not errors, errors
    page.context.close()
