"""Logs: the formatters (text, JSON lines), the masking of secrets, the frontend's event lines,
and the real service with `--log-format json`: the events that matter are there, one line
each, and no secret is anywhere in what it wrote."""

from __future__ import annotations

import io
import json
import logging
from collections.abc import Iterator
from datetime import datetime, timedelta
from typing import Any
from zoneinfo import ZoneInfo

import pytest
from service_kit import Service

from callrouter import logs
from callrouter.http.oplog import WriterWatch, config_kind
from callrouter.testing import uis_bodies as uis

MSK = ZoneInfo("Europe/Moscow")


def _record(msg: str, *args: Any, extra: dict[str, Any] | None = None, **kw: Any) -> str:
    """`msg` logged through a JSON formatter: the line it writes."""
    stream = io.StringIO()
    handler = logging.StreamHandler(stream)
    handler.setFormatter(logs.JsonFormatter())
    logger = logging.getLogger(f"test.logs.{id(stream)}")
    logger.propagate = False
    logger.addHandler(handler)
    logger.setLevel(logging.DEBUG)
    logger.info(msg, *args, extra=extra, **kw)
    return stream.getvalue()


# --- the formatters ----------------------------------------------------------------------------


def test_json_line_has_the_fixed_fields_and_the_extra_ones() -> None:
    line = _record("rejected %s", "invalid_json", extra={"event": "x", "size": 12, "ok": True})
    assert line.endswith("\n") and line.count("\n") == 1
    doc = json.loads(line)
    assert list(doc)[:4] == ["ts", "level", "logger", "message"]
    assert doc["level"] == "INFO"
    assert doc["logger"].startswith("test.logs.")
    assert doc["message"] == "rejected invalid_json"
    assert (doc["event"], doc["size"], doc["ok"]) == ("x", 12, True)
    ts = datetime.fromisoformat(doc["ts"])
    assert ts.utcoffset() == timedelta(0)
    assert "args" not in doc and "msg" not in doc and "exception" not in doc


def test_json_line_carries_the_exception_and_odd_values() -> None:
    try:
        raise ValueError("boom")
    except ValueError:
        line = _record("failed", exc_info=True, extra={"when": datetime(2024, 1, 2), "s": {1}})
    doc = json.loads(line)
    assert "ValueError: boom" in doc["exception"]
    assert doc["when"] == "2024-01-02T00:00:00"
    assert doc["s"] == "{1}"  # not JSON: its str()


def test_secrets_are_masked_in_text_and_json() -> None:
    logs.hide("hidden-admin-token-value")
    lines = [
        "unhandled error on POST /webhooks/uis/AbCdEf0123456789secret",
        "sent Authorization: Bearer staff-token-0123456789",
        "GET /api/v1/events?token=staff-token-abcdef&x=1",
        '{"api_key": "uis-api-key-123", "password": "pw"}',
        "the admin token is hidden-admin-token-value",
    ]
    text = logs.TextFormatter()
    for message in lines:
        record = logging.LogRecord("callrouter", logging.ERROR, __file__, 1, message, None, None)
        for out in (text.format(record), logs.JsonFormatter().format(record)):
            for secret in (
                "AbCdEf0123456789secret",
                "staff-token-0123456789",
                "staff-token-abcdef",
                "uis-api-key-123",
                '"pw"',
                "hidden-admin-token-value",
            ):
                assert secret not in out, out
            assert logs.MASK in out
    assert logs.redact("/webhooks/uis/s3cret/route") == "/webhooks/uis/***/route"
    assert logs.redact("nothing to hide here") == "nothing to hide here"


def test_text_lines_keep_their_shape() -> None:
    record = logging.LogRecord("callrouter.x", logging.WARNING, __file__, 1, "a %s", ("b",), None)
    out = logs.TextFormatter().format(record)
    assert out.endswith(" WARNING callrouter.x: a b")


def test_urls_lose_their_password() -> None:
    assert logs.mask_url("postgresql://app:s3cret@db:5432/x") == "postgresql://app:***@db:5432/x"
    assert logs.mask_url("redis://:s3cret@cache") == "redis://:***@cache"
    assert (
        logs.mask_url("sqlite+aiosqlite:////data/x.sqlite3")
        == "sqlite+aiosqlite:////data/x.sqlite3"
    )
    assert logs.mask_url(None) is None


def test_setup_writes_the_chosen_format_to_the_stream() -> None:
    root = logging.getLogger()
    saved = (list(root.handlers), root.level)
    stream = io.StringIO()
    try:
        logs.setup("json", stream=stream)
        logging.getLogger("callrouter.test").info("hello", extra={"event": "t"})
        logging.getLogger("ray.test").info("from ray")  # Ray's logger goes the same way
        with pytest.raises(ValueError):
            logs.setup("xml", stream=stream)
    finally:
        for handler in list(root.handlers):
            root.removeHandler(handler)
        for handler in saved[0]:
            root.addHandler(handler)
        root.setLevel(saved[1])
    docs = [json.loads(line) for line in stream.getvalue().splitlines()]
    assert [(d["logger"], d["message"]) for d in docs] == [
        ("callrouter.test", "hello"),
        ("ray.test", "from ray"),
    ]


# --- the frontend's event lines ------------------------------------------------------------------


def test_config_kinds() -> None:
    assert config_kind("PUT", "/api/v1/integrations/uis") == "integration"
    assert config_kind("PUT", "/api/v1/settings") == "settings"
    assert config_kind("POST", "/api/v1/staff") == "staff"
    assert config_kind("POST", "/api/v1/staff/3/token") == "staff"
    assert config_kind("PUT", "/api/v1/operators/5001") == "operator"
    assert config_kind("PATCH", "/api/v1/fields/vip") == "popup_field"
    assert config_kind("DELETE", "/api/v1/wallboard/links/2") == "wallboard_link"
    assert config_kind("GET", "/api/v1/settings") is None
    assert config_kind("PATCH", "/api/v1/cases/1") is None


def _figures(incarnation: int, recovered: int | None, restarts: list[int]) -> dict[str, Any]:
    return {"incarnation": incarnation, "recovered": recovered, "shard_restarts": restarts}


def test_writer_watch_logs_each_event_once(caplog: pytest.LogCaptureFixture) -> None:
    caplog.set_level(logging.INFO, logger="callrouter.events")
    watch = WriterWatch()
    for figures in (
        _figures(1, None, [0, 0]),  # recovering still
        _figures(1, 7, [0, 0]),
        _figures(1, 7, [0, 0]),
        _figures(1, 7, [0, 1]),
        _figures(1, 7, [0, 1]),
        _figures(2, 0, [0, 0]),  # the writer itself restarted
    ):
        watch.see(figures)
    events = [(r.event, r.getMessage()) for r in caplog.records]  # type: ignore[attr-defined]
    assert [e for e, _ in events] == ["recovery", "shard_restart", "writer_restart", "recovery"]
    assert "7 notification(s)" in events[0][1]
    assert events[1][1].startswith("shard 1 restarted (1 time(s)")
    assert caplog.records[1].levelno == logging.WARNING


# --- the real service ---------------------------------------------------------------------------


@pytest.fixture(scope="module")
def svc(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Service]:
    """The service with JSON logs and an admin token of its own making (printed once)."""
    service = Service(tmp_path_factory.mktemp("logging"), None, "--log-format", "json")
    try:
        service.wait_ready()
        yield service
    finally:
        service.stop()


@pytest.mark.e2e
def test_service_logs_events_and_no_secret(svc: Service) -> None:
    api_key = "uis-api-key-LOGTEST-0001"
    integration = svc.admin(
        "PUT",
        "/api/v1/integrations/uis",
        {"api_key": api_key, "virtual_phone_number": "74950000000"},
    )
    assert integration.status == 200, integration
    path = integration.json["webhook_path"]
    webhook_secret = path.rsplit("/", 1)[-1]
    assert svc.admin("PUT", "/api/v1/settings", {"close_sla_seconds": 3600}).status == 200
    staff = svc.admin("POST", "/api/v1/staff", {"full_name": "Anna", "email": "anna@example.test"})
    assert staff.status == 201, staff
    staff_token = staff.json["token"]
    assert svc.admin("PUT", "/api/v1/operators/5001", {"staff_id": staff.json["id"]}).status == 200
    assert svc.request("GET", "/api/v1/system", token=staff_token).status == 403

    start = datetime.now(MSK).replace(tzinfo=None, microsecond=0) - timedelta(hours=1)
    [(_, doc), *_] = uis.incoming_answered(7_100_001, start, "79160000001", 5001, talk_seconds=9)
    good = uis.encode(doc)
    unknown = uis.encode({**doc, "notification_name": "BODY-MARKER-unknown"})
    broken = b'{"notification_name": "BODY-MARKER-broken", '
    huge = b'{"pad": "' + b"BODY-MARKER-huge" * 5000 + b'"}'
    assert svc.request("POST", path, data=good).status == 200
    assert svc.request("POST", path, data=unknown).status == 422
    assert svc.request("POST", path, data=broken).status == 400
    assert svc.request("POST", path, data=huge).status == 413
    assert svc.request("POST", "/webhooks/uis/not-the-secret", data=good).status == 404
    assert svc.admin("GET", "/metrics").status == 200

    svc.stop()  # everything it will write is written
    stdout, stderr = svc.stdout(), svc.stderr()
    secrets = {
        "admin token": svc.admin_token,
        "staff token": staff_token,
        "api_key": api_key,
        "webhook secret": webhook_secret,
    }
    # The admin token was made at this first start: printed once on stdout (API.md), no more.
    assert stdout.count(svc.admin_token) == 1, stdout
    assert "Admin token" in stdout
    for name, secret in secrets.items():
        assert secret not in stderr, f"the {name} is in the log"
        if name != "admin token":
            assert secret not in stdout, f"the {name} is on stdout"
    assert "BODY-MARKER" not in stderr + stdout  # rejected bodies are never logged

    docs = []
    for line in stderr.splitlines():
        if line.startswith("{"):
            docs.append(json.loads(line))
        else:  # only what is not a log record (Ray's own C++ lines) may be other than JSON
            assert "callrouter" not in line, line
    for doc in docs:
        assert {"ts", "level", "logger", "message"} <= set(doc), doc
    events: dict[str, list[dict[str, Any]]] = {}
    for doc in docs:
        events.setdefault(doc.get("event", ""), []).append(doc)

    [started] = events["start"]
    assert started["log_format"] == "json" and started["admin_token_from"] == "generated"
    assert started["database"].startswith("sqlite")
    [recovery] = events["recovery"]
    assert recovery["replayed"] == 0
    kinds = sorted(d["kind"] for d in events["config_changed"])
    assert kinds == ["integration", "operator", "settings", "staff"], kinds
    assert all(d["level"] == "INFO" for d in events["config_changed"])
    rejected = sorted((d["status"], d["code"], d["size"]) for d in events["webhook_rejected"])
    assert rejected == [
        (400, "invalid_json", len(broken)),
        (413, "body_too_large", len(huge)),
        (422, "unknown_notification", len(unknown)),
    ]
    assert any(d["message"].startswith("callrouter ready") for d in docs)
