"""The UIS Call API client against the fake UIS over real HTTP (R18, UIS.md "Call API")."""

from __future__ import annotations

import socket
import time
from collections.abc import AsyncIterator
from typing import Any

import aiohttp
import pytest

from callrouter.callapi import CallApiClient, CallApiError, CallStarter
from callrouter.testing.fake_uis import FIRST_CALL_SESSION_ID, FakeUis

TOKEN = "test-key"
CALL: dict[str, Any] = {
    "virtual_phone_number": "74950000000",
    "contact": "79260000000",
    "employee_id": 25,
    "external_id": "case-42-1",
}


@pytest.fixture
async def fake() -> AsyncIterator[FakeUis]:
    async with FakeUis(access_token=TOKEN) as fake:
        yield fake


@pytest.fixture
async def session() -> AsyncIterator[aiohttp.ClientSession]:
    async with aiohttp.ClientSession() as session:
        yield session


def make_client(
    session: aiohttp.ClientSession, url: str, *, token: str = TOKEN, **options: Any
) -> CallApiClient:
    # No backoff: the retry tests count requests, they need not wait.
    return CallApiClient(session, url, token, backoff=0.0, **options)


async def start_call(starter: CallStarter, **overrides: Any) -> int:
    return await starter.start_employee_call(**{**CALL, **overrides})


async def test_success_returns_call_session_id_and_sends_exactly_the_documented_request(
    fake: FakeUis, session: aiohttp.ClientSession
) -> None:
    """R18: staff first, our virtual number, the user's number, our external_id."""
    starter: CallStarter = make_client(session, fake.url)

    assert await start_call(starter) == FIRST_CALL_SESSION_ID
    assert await start_call(starter) == FIRST_CALL_SESSION_ID + 1

    first, second = fake.requests
    assert first == {
        "jsonrpc": "2.0",
        "id": first["id"],
        "method": "start.employee_call",
        "params": {
            "access_token": TOKEN,
            "first_call": "employee",
            "virtual_phone_number": "74950000000",
            "contact": "79260000000",
            "employee": {"id": 25},
            "external_id": "case-42-1",
            "direction": "out",
            "switch_at_once": True,
            "show_virtual_phone_number": False,
        },
    }
    assert first["id"] != second["id"]
    assert fake.headers[0]["Content-Type"] == "application/json; charset=UTF-8"


async def test_employee_phone_is_sent_as_employee_phone_number(
    fake: FakeUis, session: aiohttp.ClientSession
) -> None:
    """R18: a chosen staff phone rings instead of all the employee's phones in turn."""
    await start_call(make_client(session, fake.url), employee_phone="79261112233")

    assert fake.requests[0]["params"]["employee"] == {"id": 25, "phone_number": "79261112233"}


@pytest.mark.parametrize("typed", ["+7 916 123-45-67", "8 (916) 123-45-67", "79161234567"])
async def test_contact_is_sent_as_the_digits_uis_expects(
    fake: FakeUis, session: aiohttp.ClientSession, typed: str
) -> None:
    """R18, UIS.md: `contact` is digits only, however the number was typed in the profile."""
    await start_call(make_client(session, fake.url), contact=typed)

    assert fake.requests[0]["params"]["contact"] == "79161234567"
    assert [params["contact"] for _, params in fake.calls] == ["79161234567"]


async def test_contact_without_digits_is_refused_before_asking_uis(
    fake: FakeUis, session: aiohttp.ClientSession
) -> None:
    """R18: a number UIS could not dial is our error to explain, not a request to UIS."""
    with pytest.raises(CallApiError) as caught:
        await start_call(make_client(session, fake.url), contact="доб. —")

    assert (caught.value.code, caught.value.retryable) == ("invalid_contact", False)
    assert "phone number" in caught.value.message
    assert fake.requests == []


@pytest.mark.parametrize(
    ("mnemonic", "rpc_code", "retryable", "hint"),
    [
        ("access_token_invalid", -32001, False, "api key"),
        ("access_token_expired", -32001, False, "expired"),
        ("ip_not_whitelisted", -32003, False, "allow list"),
        ("virtual_phone_number_not_found", -32007, False, "virtual phone number"),
        ("limit_exceeded", -32029, False, "wait a minute"),
        ("employee_not_found", -32602, False, "employee"),
        ("no_active_phone_number", -32602, False, "active phone number"),
        ("data_type_error", -32602, False, "phone number"),
        ("internal_error", -32603, True, "try again"),
    ],
)
async def test_uis_error_maps_to_call_api_error_and_only_retryable_ones_are_retried(
    fake: FakeUis,
    session: aiohttp.ClientSession,
    mnemonic: str,
    rpc_code: int,
    retryable: bool,
    hint: str,
) -> None:
    """R18: each UIS refusal has its mnemonic as code and tells staff what to do."""
    for _ in range(3):
        fake.fail_next(mnemonic, rpc_code)

    with pytest.raises(CallApiError) as caught:
        await start_call(make_client(session, fake.url, retries=2))

    error = caught.value
    assert (error.code, error.rpc_code, error.retryable) == (mnemonic, rpc_code, retryable)
    assert hint in error.message.lower()
    assert error.message.endswith(".")
    assert len(fake.requests) == (3 if retryable else 1)


@pytest.mark.parametrize(
    ("rpc_code", "code"),
    [(-32001, "access_token_invalid"), (-32003, "ip_not_whitelisted"), (-32603, "internal_error")],
)
async def test_error_without_mnemonic_falls_back_to_its_rpc_code(
    fake: FakeUis, session: aiohttp.ClientSession, rpc_code: int, code: str
) -> None:
    """R18: UIS's error group is enough to tell staff what to do."""
    fake.fail_next(None, rpc_code)

    with pytest.raises(CallApiError) as caught:
        await start_call(make_client(session, fake.url, retries=0))

    assert caught.value.code == code


async def test_undocumented_mnemonic_keeps_uis_code_and_text(
    fake: FakeUis, session: aiohttp.ClientSession
) -> None:
    """R18: an error UIS adds later still reaches staff with UIS's own words."""
    fake.fail_next("unexpected_parameters")

    with pytest.raises(CallApiError) as caught:
        await start_call(make_client(session, fake.url))

    assert caught.value.code == "unexpected_parameters"
    assert "Unexpected method parameter(s)" in caught.value.message
    assert not caught.value.retryable


async def test_retryable_error_then_success_returns_the_id(
    fake: FakeUis, session: aiohttp.ClientSession
) -> None:
    """R18: a passing UIS hiccup is invisible to staff; the retry is the same call."""
    fake.fail_next("internal_error")

    assert await start_call(make_client(session, fake.url, retries=2)) == FIRST_CALL_SESSION_ID

    first, second = fake.requests
    assert first["id"] != second["id"]
    assert first["params"] == second["params"]


async def test_no_retries_means_one_request(fake: FakeUis, session: aiohttp.ClientSession) -> None:
    """R18: retries=0 sends once."""
    fake.fail_next("internal_error")

    with pytest.raises(CallApiError):
        await start_call(make_client(session, fake.url, retries=0))

    assert len(fake.requests) == 1


async def test_timeout_is_uis_timeout_and_not_retried(
    fake: FakeUis, session: aiohttp.ClientSession
) -> None:
    """R18: after a timeout UIS may already be ringing staff, so a resend could ring twice."""
    fake.delay_next(5.0)
    began = time.monotonic()

    with pytest.raises(CallApiError) as caught:
        await start_call(make_client(session, fake.url, timeout=0.2, retries=2))

    assert (caught.value.code, caught.value.retryable) == ("uis_timeout", False)
    assert caught.value.rpc_code is None
    assert "phone to ring" in caught.value.message
    assert len(fake.requests) == 1
    assert time.monotonic() - began < 2.0


async def test_closed_port_is_uis_unreachable(session: aiohttp.ClientSession) -> None:
    """R18: nothing was sent, so it is retryable and staff are told to try again."""
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port = sock.getsockname()[1]
    # The socket is closed: nothing listens on that port any more.

    with pytest.raises(CallApiError) as caught:
        await start_call(make_client(session, f"http://127.0.0.1:{port}/v4.0", retries=2))

    assert (caught.value.code, caught.value.retryable) == ("uis_unreachable", True)
    assert "try again" in caught.value.message.lower()


async def test_garbled_answer_is_uis_bad_response_and_not_retried(
    fake: FakeUis, session: aiohttp.ClientSession
) -> None:
    """R18: an unreadable answer may hide a started call, so it is not resent."""
    fake.garble_next()

    with pytest.raises(CallApiError) as caught:
        await start_call(make_client(session, fake.url, retries=2))

    assert (caught.value.code, caught.value.retryable) == ("uis_bad_response", False)
    assert len(fake.requests) == 1


async def test_fake_checks_the_key_like_uis(fake: FakeUis, session: aiohttp.ClientSession) -> None:
    """R18: a wrong key is refused by validation, not by a script."""
    with pytest.raises(CallApiError) as caught:
        await start_call(make_client(session, fake.url, token="wrong"))

    assert (caught.value.code, caught.value.rpc_code) == ("access_token_invalid", -32001)
    assert fake.calls == []


@pytest.mark.parametrize(
    ("change", "mnemonic", "rpc_code"),
    [
        ({"method": "start.simple_call"}, "method_not_found", -32601),
        ({"jsonrpc": "1.0"}, "invalid_request", -32600),
        ({"params": {"contact": None}}, "data_type_error", -32602),
        ({"params": {"contact": ...}}, "required_parameter_missed", -32602),
        ({"params": {"employee": {}}}, "required_parameter_missed", -32602),
        ({"params": {"employee": {"id": "25"}}}, "data_type_error", -32602),
        ({"params": {"direction": "up"}}, "invalid_parameter_value", -32602),
        ({"params": {"colour": "red"}}, "unexpected_parameters", -32602),
    ],
)
async def test_fake_validates_requests_like_uis(
    fake: FakeUis,
    session: aiohttp.ClientSession,
    change: dict[str, Any],
    mnemonic: str,
    rpc_code: int,
) -> None:
    """The fake refuses what UIS documents refusing, so client bugs show up in tests."""
    params: dict[str, Any] = {
        "access_token": TOKEN,
        "first_call": "employee",
        "virtual_phone_number": "74950000000",
        "contact": "79260000000",
        "employee": {"id": 25},
    }
    params.update(change.pop("params", {}))
    params = {name: value for name, value in params.items() if value is not ...}
    body = {"jsonrpc": "2.0", "id": 1, "method": "start.employee_call", "params": params, **change}

    async with session.post(fake.url, json=body) as response:
        answer = await response.json()

    assert answer["error"]["code"] == rpc_code
    assert answer["error"]["data"]["mnemonic"] == mnemonic


async def test_fake_knows_only_the_configured_employees_and_numbers(
    session: aiohttp.ClientSession,
) -> None:
    """R18: with a directory configured, unknown ids and numbers fail like at UIS."""
    async with FakeUis(TOKEN, employee_ids={25}, virtual_phone_numbers={"74950000000"}) as fake:
        starter = make_client(session, fake.url)
        with pytest.raises(CallApiError) as unknown_employee:
            await start_call(starter, employee_id=26)
        with pytest.raises(CallApiError) as unknown_number:
            await start_call(starter, virtual_phone_number="74951111111")
        session_id = await start_call(starter)

    assert unknown_employee.value.code == "employee_not_found"
    assert unknown_number.value.code == "virtual_phone_number_not_found"
    assert fake.calls == [(session_id, fake.requests[-1]["params"])]


def _closed_port_url() -> str:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port = sock.getsockname()[1]
    return f"http://127.0.0.1:{port}/v4.0"  # the socket is closed: nothing listens there


@pytest.mark.parametrize(
    ("failure", "code", "outcome"),
    [
        ("closed_port", "uis_unreachable", "the call was not started"),
        ("garbled", "uis_bad_response", "the call may still start"),
        ("slow", "uis_timeout", "the call may still start"),
    ],
)
async def test_transport_failures_say_what_happened_not_that_uis_refused(
    fake: FakeUis, session: aiohttp.ClientSession, failure: str, code: str, outcome: str
) -> None:
    """R18: UIS never said no here; staff learn whether the call started and what to do."""
    url = _closed_port_url() if failure == "closed_port" else fake.url
    if failure == "garbled":
        fake.garble_next()
    if failure == "slow":
        fake.delay_next(5.0)

    with pytest.raises(CallApiError) as caught:
        await start_call(make_client(session, url, timeout=0.2, retries=0))

    message = caught.value.message.lower()
    assert caught.value.code == code
    assert "refuse" not in message and "reject" not in message
    assert outcome in message
    assert "try again" in message or "before trying again" in message
