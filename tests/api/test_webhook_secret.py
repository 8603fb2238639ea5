"""The webhook secret on a frontend that has not seen the integration yet (R4, R32).

An admin saves the integration on one frontend; the others reread the settings every few
seconds. A notification (or smart routing's question) that comes to another frontend in
between must not be refused: an unknown secret makes the frontend read the settings again
before its 404 — once for everyone asking at that moment, at most once a second."""

from __future__ import annotations

import asyncio
from typing import Any

import pytest
from aiohttp import web
from aiohttp.test_utils import TestClient

from callrouter.domain.account import Account
from callrouter.http import webhook
from callrouter.http.errors import error_middleware, json_response
from callrouter.http.keys import ACCOUNT, DB, AccountBox
from callrouter.storage.engine import Database

ADMIN = {"Authorization": "Bearer admin-secret"}  # the admin app's token (conftest)
Client = TestClient[web.Request, web.Application]


async def _probe(request: web.Request) -> web.Response:
    account = await webhook.webhook_account(request)
    assert account.integration is not None
    return json_response({"ok": True})


def _other_frontend(db: Database) -> web.Application:
    """A frontend that loaded the settings before the integration was saved."""
    app = web.Application(middlewares=[error_middleware])
    app[DB] = db
    app[ACCOUNT] = AccountBox(Account())
    app.router.add_post("/webhooks/uis/{secret}", _probe)
    return app


async def _save_integration(admin: Client) -> str:
    """Save the integration through the admin app (another frontend on the same database)."""
    body = {"api_key": "k", "virtual_phone_number": "74951234567"}
    resp = await admin.put("/api/v1/integrations/uis", json=body, headers=ADMIN)
    assert resp.status == 200, await resp.text()
    path: str = (await resp.json())["webhook_path"]
    return path


async def test_a_secret_saved_on_another_frontend_opens_at_once(
    aiohttp_client: Any, sqlite_database: Database, client: Client
) -> None:
    other = await aiohttp_client(_other_frontend(sqlite_database))
    path = await _save_integration(client)

    resp = await other.post(path, json={})

    assert resp.status == 200, await resp.text()
    assert other.app[ACCOUNT].value.integration is not None


async def test_unknown_secrets_reread_the_settings_once_a_second_at_most(
    aiohttp_client: Any,
    sqlite_database: Database,
    client: Client,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    reads: list[float] = []
    real = webhook._load_account

    async def counted(db: Database) -> Any:
        reads.append(asyncio.get_running_loop().time())
        await asyncio.sleep(0.05)  # a read that takes a moment: others arrive meanwhile
        return await real(db)

    monkeypatch.setattr(webhook, "_load_account", counted)
    other = await aiohttp_client(_other_frontend(sqlite_database))

    answers = await asyncio.gather(*(other.post(f"/webhooks/uis/wrong{i}") for i in range(20)))
    assert [a.status for a in answers] == [404] * 20
    assert len(reads) == 1  # twenty at once share one read

    again = await other.post("/webhooks/uis/wrong-again")
    assert again.status == 404 and len(reads) == 1  # within the second: no new read

    await asyncio.sleep(AccountBox.RELOAD_SPACING)
    path = await _save_integration(client)
    assert (await other.post(path)).status == 200 and len(reads) == 2
    body = await (await other.post("/webhooks/uis/wrong")).json()
    assert body["error"]["code"] == "unknown_webhook"
