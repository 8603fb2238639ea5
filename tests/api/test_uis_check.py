"""The admin page's UIS helpers (issue 9): the API key check against a fake UIS for each
outcome, and the six notifications of the guide with their exact names and bodies."""

from __future__ import annotations

import json
import re
import socket
from collections.abc import AsyncIterator, Awaitable, Callable
from pathlib import Path
from typing import Any

import pytest
from aiohttp import web
from aiohttp.test_utils import TestClient

from callrouter.domain.templates import NAMES, TEMPLATES
from callrouter.http import admin, dial, uis_check
from callrouter.storage.engine import Database
from callrouter.testing.fake_uis import FakeUis

ADMIN_TOKEN_VALUE = "admin-secret"
ADMIN = {"Authorization": f"Bearer {ADMIN_TOKEN_VALUE}"}
KEY = "uis-key-1"
NUMBER = "74950000000"
CHECK = "/api/v1/integrations/uis/check"
NOTIFICATIONS = "/api/v1/integrations/uis/notifications"
Client = TestClient[web.Request, web.Application]
# The guide's order (а … е): admins add them in this order.
GUIDE_NAMES = [
    "Поднятие трубки",
    "Завершение плеча",
    "Завершение звонка",
    "Записанный разговор",
    "Исходящее плечо",
    "Исходящий звонок",
]


@pytest.fixture
async def client(
    aiohttp_client: Callable[[web.Application], Awaitable[Client]],
    sqlite_database: Database,
    control: Any,
    app_base: Callable[[Database, Any], web.Application],
) -> Client:
    """The admin routes and the UIS helpers, with the app's outgoing HTTP session."""
    app = app_base(sqlite_database, control)
    app.cleanup_ctx.append(dial.http_client)
    app.add_routes(admin.routes)
    app.add_routes(uis_check.routes)
    return await aiohttp_client(app)


@pytest.fixture
async def fake() -> AsyncIterator[FakeUis]:
    async with FakeUis(access_token=KEY) as running:
        yield running


async def _save(client: Client, url: str, key: str = KEY, number: str = NUMBER) -> None:
    body = {"api_key": key, "virtual_phone_number": number, "call_api_url": url}
    resp = await client.put("/api/v1/integrations/uis", json=body, headers=ADMIN)
    assert resp.status == 200, await resp.text()


async def _check(client: Client, body: dict[str, Any] | None = None) -> dict[str, Any]:
    resp = await client.post(CHECK, json=body or {}, headers=ADMIN)
    assert resp.status == 200, await resp.text()
    verdict: dict[str, Any] = await resp.json()
    assert set(verdict) == {
        "ok",
        "code",
        "message",
        "ip",
        "call_api_url",
        "virtual_phone_number",
        "active_calls",
    }
    return verdict


def _closed_port_url() -> str:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port = sock.getsockname()[1]
    return f"http://127.0.0.1:{port}/v4.0"  # nothing listens there any more


# --- who may ----------------------------------------------------------------------------------


@pytest.mark.parametrize(("method", "path"), [("POST", CHECK), ("GET", NOTIFICATIONS)])
async def test_only_the_admin(
    client: Client, new_staff: Any, expect_error: Any, method: str, path: str
) -> None:
    staff = await new_staff(client)
    for headers, status, code in (
        ({}, 401, "unauthorized"),
        ({"Authorization": "Bearer wrong"}, 401, "unauthorized"),
        ({"Authorization": f"Bearer {staff['token']}"}, 403, "forbidden"),
    ):
        resp = await client.request(method, path, json={}, headers=headers)
        await expect_error(resp, status, code)


# --- the check, one outcome each ---------------------------------------------------------------


async def test_valid_key_is_ok_and_starts_no_call(client: Client, fake: FakeUis) -> None:
    await _save(client, fake.url)
    fake.active_calls = [{"call_session_id": 1}, {"call_session_id": 2}]

    verdict = await _check(client)

    assert verdict["ok"] is True and verdict["code"] == "ok"
    assert verdict["active_calls"] == 2 and verdict["ip"] is None
    assert (verdict["call_api_url"], verdict["virtual_phone_number"]) == (fake.url, NUMBER)
    assert "accepted" in verdict["message"]
    [request] = fake.requests
    assert request["method"] == "list.calls"
    assert request["params"] == {"access_token": KEY, "virtual_phone_number": NUMBER}
    assert fake.calls == []  # nothing rang anywhere


async def test_wrong_key_says_so(client: Client, fake: FakeUis) -> None:
    await _save(client, fake.url, key="not-the-key")

    verdict = await _check(client)

    assert (verdict["ok"], verdict["code"]) == (False, "access_token_invalid")
    assert "UIS does not know this API key" in verdict["message"]
    assert "Use API key" in verdict["message"]  # where in UIS to copy it from


async def test_ip_not_on_the_allow_list_names_the_address(client: Client) -> None:
    async with FakeUis(access_token=KEY, allowed_ips={"203.0.113.7"}) as fake:
        await _save(client, fake.url)
        verdict = await _check(client)

    assert (verdict["ok"], verdict["code"]) == (False, "ip_not_whitelisted")
    assert verdict["ip"] == "127.0.0.1"
    assert "UIS saw the request come from 127.0.0.1" in verdict["message"]
    assert "0.0.0.0/0" in verdict["message"]  # what the guide adds


async def test_allowed_ip_passes(client: Client) -> None:
    async with FakeUis(access_token=KEY, allowed_ips={"127.0.0.1"}) as fake:
        await _save(client, fake.url)
        assert (await _check(client))["ok"] is True


async def test_unreachable_url(client: Client) -> None:
    url = _closed_port_url()
    await _save(client, url)

    verdict = await _check(client)

    assert (verdict["ok"], verdict["code"]) == (False, "uis_unreachable")
    assert verdict["call_api_url"] == url
    assert "could not connect" in verdict["message"]
    assert "https://callapi.uiscom.ru/v4.0" in verdict["message"]


async def test_slow_uis_is_a_timeout(
    client: Client, fake: FakeUis, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(uis_check, "CHECK_TIMEOUT", 0.2)
    await _save(client, fake.url)
    fake.delay_next(5.0)

    verdict = await _check(client)

    assert (verdict["ok"], verdict["code"]) == (False, "uis_timeout")
    assert "did not answer in time" in verdict["message"]


async def test_not_uis_at_that_address(client: Client, fake: FakeUis) -> None:
    await _save(client, fake.url)
    fake.garble_next()

    verdict = await _check(client)

    assert (verdict["ok"], verdict["code"]) == (False, "uis_bad_response")
    assert "not the UIS Call API" in verdict["message"]


async def test_virtual_number_not_the_accounts(client: Client) -> None:
    async with FakeUis(access_token=KEY, virtual_phone_numbers={NUMBER}) as fake:
        await _save(client, fake.url, number="74951112233")
        verdict = await _check(client)

    assert (verdict["ok"], verdict["code"]) == (False, "virtual_phone_number_not_found")
    assert "virtual phone number" in verdict["message"]


async def test_virtual_number_not_as_digits(client: Client, fake: FakeUis) -> None:
    await _save(client, fake.url, number="+7 (495) 000-00-00")

    verdict = await _check(client)

    # Click-to-call sends the saved number as it is, so the check must catch this form too.
    assert (verdict["ok"], verdict["code"]) == (False, "invalid_parameter_value")
    assert "digits starting with 7" in verdict["message"]


@pytest.mark.parametrize(
    ("mnemonic", "words"),
    [
        ("component_disabled", "Call API Управление вызовами"),
        ("access_token_expired", "expired"),
        ("access_token_blocked", "blocked"),
        ("forbidden", "access to the Call API"),
        ("limit_exceeded", "limit"),
        ("account_inactive", "UIS support"),
        ("internal_error", "Try again"),
    ],
)
async def test_other_refusals_in_words(
    client: Client, fake: FakeUis, mnemonic: str, words: str
) -> None:
    await _save(client, fake.url)
    fake.fail_next(mnemonic)

    verdict = await _check(client)

    assert (verdict["ok"], verdict["code"]) == (False, mnemonic)
    assert words in verdict["message"]
    assert len(fake.requests) == 1  # the check is never retried


async def test_unknown_refusal_keeps_uis_words(client: Client, fake: FakeUis) -> None:
    await _save(client, fake.url)
    fake.fail_next("something_new", -32602)

    verdict = await _check(client)

    assert (verdict["ok"], verdict["code"]) == (False, "something_new")
    assert "something_new" in verdict["message"]


# --- what is checked ----------------------------------------------------------------------------


async def test_typed_values_are_checked_before_saving(client: Client, fake: FakeUis) -> None:
    """The form checks what the admin typed; nothing needs saving first, nothing is saved."""
    verdict = await _check(
        client, {"api_key": KEY, "virtual_phone_number": NUMBER, "call_api_url": fake.url}
    )

    assert verdict["ok"] is True
    resp = await client.get("/api/v1/integrations/uis", headers=ADMIN)
    assert resp.status == 404  # still not set up


async def test_left_out_fields_come_from_the_saved_integration(
    client: Client, fake: FakeUis
) -> None:
    await _save(client, fake.url, key="old-key")

    verdict = await _check(client, {"api_key": KEY})  # a new key, typed, not saved yet

    assert verdict["ok"] is True
    assert fake.requests[-1]["params"] == {"access_token": KEY, "virtual_phone_number": NUMBER}


async def test_nothing_to_check(client: Client, expect_error: Any) -> None:
    resp = await client.post(CHECK, json={"api_key": KEY}, headers=ADMIN)
    await expect_error(resp, 409, "integration_not_configured")


@pytest.mark.parametrize(
    ("body", "code"),
    [
        ({"call_api_url": "ftp://example.test/v4.0"}, "invalid_url"),
        ({"call_api_url": "not a url"}, "invalid_url"),
        ({"call_api_url": "http://127.0.0.1:99999/v4.0"}, "invalid_url"),
        ({"virtual_phone_number": "no digits"}, "invalid_phone"),
        ({"api_key": ""}, "missing_field"),
        ({"api_key": 42}, "invalid_field"),
        ({"api_key": None}, "invalid_field"),
        ({"apikey": KEY}, "unknown_field"),
    ],
)
async def test_bad_input(
    client: Client, fake: FakeUis, expect_error: Any, body: dict[str, Any], code: str
) -> None:
    await _save(client, fake.url)
    resp = await client.post(CHECK, json=body, headers=ADMIN)
    await expect_error(resp, 422, code)
    assert fake.requests == []


async def test_not_json(client: Client, expect_error: Any) -> None:
    resp = await client.post(CHECK, data=b"{nope", headers=ADMIN)
    await expect_error(resp, 400, "invalid_json")


# --- the six notifications ----------------------------------------------------------------------


def _as_json(text: str) -> Any:
    """A template's text as JSON, each `{{variable}}` read as the string "variable"."""
    return json.loads(re.sub(r"\{\{\s*(\w+)\s*\}\}", r'"\1"', text))


def _guide_templates() -> dict[str, str] | None:
    """name -> template text, from the integration guide (seed), when it is here."""
    here = Path(__file__).resolve()
    for seed in (here.parents[3] / "shared" / "seed", here.parents[2] / "docs" / "seed"):
        if seed.is_dir():
            break
    else:
        return None
    found: dict[str, str] = {}
    name = None
    for path in sorted(seed.glob("*.txt")):
        for line in path.read_text(encoding="utf-8").splitlines():
            if line.startswith("Название уведомления:"):
                name = line.split(":", 1)[1].strip()
            elif name is not None and line.lstrip().startswith("{"):
                found[name] = line
                name = None
    return found


async def test_the_six_notifications_with_exact_names(client: Client) -> None:
    resp = await client.get(NOTIFICATIONS, headers=ADMIN)
    assert resp.status == 200
    answer = await resp.json()

    assert answer["total"] == 6
    assert [item["name"] for item in answer["items"]] == GUIDE_NAMES
    for item in answer["items"]:
        assert set(item) == {"kind", "name", "body"}
        assert NAMES[item["kind"]] == item["name"]
        # Every value is a bare placeholder, as UIS wants (it renders JSON literals).
        assert '"{{' not in item["body"]
        assert _as_json(item["body"]) == TEMPLATES[item["kind"]]


async def test_the_notifications_are_the_guides_templates(client: Client) -> None:
    """Key for key, in the guide's order and nesting, with the guide's variables."""
    guide = _guide_templates()
    if guide is None:
        pytest.skip("the integration guide (seed) is not available")
    assert sorted(guide) == sorted(GUIDE_NAMES)
    resp = await client.get(NOTIFICATIONS, headers=ADMIN)
    for item in (await resp.json())["items"]:
        ours, theirs = _as_json(item["body"]), _as_json(guide[item["name"]])
        assert ours == theirs
        assert json.dumps(ours, ensure_ascii=False) == json.dumps(theirs, ensure_ascii=False)
