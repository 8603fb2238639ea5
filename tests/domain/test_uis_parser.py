"""The UIS notification parser: R4 (the six names, nested and flat layouts) and R33 (bad input
gets a clear error, never a crash). Bodies are rendered the way UIS renders the guide's templates.
"""

from __future__ import annotations

import copy
import json
import re
from datetime import UTC, datetime, timedelta
from typing import Any
from zoneinfo import ZoneInfo

import orjson
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from callrouter.domain.notifications import Kind, Notification, NotificationError
from callrouter.domain.uis import NAMES, BodyError, body_text, parse_body, parse_notification

MOSCOW = ZoneInfo("Europe/Moscow")
RECEIVED = datetime(2024, 5, 17, 11, 5, tzinfo=UTC)
LINK = "https://media.uiscom.ru/237859081/0123456789abcdef0123456789abcdef"

# The guide's six templates (seed, step 2) differ by a few keys only (is_operator on leg end,
# record_file_links on the recording, two more on call end), so one template with all of them
# stands for the six: UIS renders a variable that does not apply to an event as null.
TEMPLATE = """{ "notification_name":{{notification_name}},
"virtual_phone_number":{{virtual_phone_number}}, "notification_time":{{notification_time}},
"external_id": {{external_id}}, "contact_info":{ "contact_phone_number":{{contact_phone_number}},
"communication_number":{{communication_number}}, "contact_id": {{contact_id}},
"contact_full_name": {{contact_full_name}} }, "employee_info": { "employee_full_name":
{{employee_full_name}}, "employee_id": {{employee_id}} }, "call_info": { "call_source":
{{call_source}}, "direction": {{direction}}, "call_session_id":{{call_session_id}},
"scenario_name": {{scenario_name}}, "is_operator":{{is_operator}}, "talk_time_duration":
{{talk_time_duration}}, "total_time_duration": {{total_time_duration}}, "wait_time_duration":
{{wait_time_duration}}, "tag_names": {{tag_names}}, "is_lost" : {{is_lost}} },
"call_record_file_info": { "file_link": {{file_link}}, "call_record_duration": {{file_duration}},
"record_file_links": {{record_file_links}} }, "leg_id": {{leg_id}}, "leg_ids": {{leg_ids}},
"last_scenario_operation_name":{{last_scenario_operation_name}}, "group_ids":{{group_ids}} }"""

# An incoming call to the virtual number, ringing operator 323409 (values as UIS sends them).
VALUES: dict[str, Any] = {
    "virtual_phone_number": "74950000000",
    "notification_time": "2024-05-17 14:03:27.512",
    "contact_phone_number": "79260000000",
    "communication_number": "74950000000",
    "employee_full_name": "Анна Смирнова",
    "employee_id": 323409,
    "call_source": "va",
    "direction": "in",
    "call_session_id": 237859081,
    "scenario_name": "Основной сценарий",
    "leg_id": 2378590811,
    "leg_ids": [2378590811],
}

LEAVE = object()  # a value UIS did not replace: the `{{variable}}` text stays in the body


def render(name: str, **values: Any) -> bytes:
    """The body UIS sends for `name`: each variable as its JSON literal, null when unknown."""
    given = VALUES | {"notification_name": name} | values

    def literal(match: re.Match[str]) -> str:
        value = given.get(match[1])
        # json, not orjson: it renders integers beyond 64 bits too.
        return match[0] if value is LEAVE else json.dumps(value, ensure_ascii=False)

    return re.sub(r"\{\{(\w+)\}\}", literal, TEMPLATE).encode()


def parse(doc: dict[str, Any], tz: ZoneInfo = MOSCOW) -> Notification:
    return parse_notification(doc, tz, RECEIVED)


def notification(name: str, **values: Any) -> Notification:
    return parse(parse_body(render(name, **values)))


def flatten(doc: dict[str, Any]) -> dict[str, Any]:
    """The flat layout (R4): the same leaves, all at the top level."""
    flat: dict[str, Any] = {}
    for key, value in doc.items():
        flat |= value if isinstance(value, dict) else {key: value}
    return flat


def error_of(doc: Any) -> NotificationError:
    with pytest.raises(NotificationError) as caught:
        parse_notification(doc, MOSCOW, RECEIVED)
    return caught.value


# --- R4: the six notifications ------------------------------------------------------------


@pytest.mark.parametrize(
    ("name", "kind"),
    [
        ("Исходящее плечо", Kind.LEG_START),
        ("Поднятие трубки", Kind.ANSWER),
        ("Завершение плеча", Kind.LEG_END),
        ("Завершение звонка", Kind.CALL_END),
        ("Записанный разговор", Kind.RECORDING),
        ("Исходящий звонок", Kind.OUTGOING_CALL),
    ],
)
def test_r4_each_guide_name_gives_its_kind(name: str, kind: Kind) -> None:
    parsed = notification(name)
    assert parsed.kind is kind
    assert parsed.call_session_id == 237859081
    assert NAMES[name.casefold()] is kind


def test_r4_leg_start_reads_every_field_of_the_nested_template() -> None:
    parsed = notification("Исходящее плечо")
    assert parsed == Notification(
        kind=Kind.LEG_START,
        call_session_id=237859081,
        time=datetime(2024, 5, 17, 14, 3, 27, 512000, tzinfo=MOSCOW),
        phone="79260000000",
        virtual_phone_number="74950000000",
        communication_number="74950000000",
        direction="in",
        call_source="va",
        employee_id=323409,
        employee_name="Анна Смирнова",
        leg_id=2378590811,
    )


def test_r4_answer_of_a_call_api_call_carries_our_external_id() -> None:
    parsed = notification("Поднятие трубки", external_id="case-42-7", call_source="callapi")
    assert (parsed.kind, parsed.external_id, parsed.call_source) == (
        Kind.ANSWER,
        "case-42-7",
        "callapi",
    )


def test_r4_leg_end_tells_an_operator_leg() -> None:
    parsed = notification(
        "Завершение плеча", is_operator=True, talk_time_duration=0, total_time_duration=14
    )
    assert (parsed.is_operator, parsed.talk_seconds, parsed.total_seconds) == (True, 0, 14)


def test_r4_call_end_gives_the_outcome() -> None:
    parsed = notification(
        "Завершение звонка",
        is_lost=False,
        talk_time_duration=95,
        total_time_duration=121,
        wait_time_duration=26,
        last_scenario_operation_name="Звонок оператору",
        group_ids=[11],
    )
    assert (parsed.is_lost, parsed.talk_seconds, parsed.total_seconds, parsed.wait_seconds) == (
        False,
        95,
        121,
        26,
    )


def test_r4_voice_menu_hang_up_has_no_employee() -> None:
    parsed = notification(
        "Завершение звонка", employee_id=None, employee_full_name=None, leg_id=None, is_lost=True
    )
    assert (parsed.employee_id, parsed.employee_name, parsed.leg_id, parsed.is_lost) == (
        None,
        None,
        None,
        True,
    )


def test_r4_recording_gives_links_and_duration() -> None:
    second = LINK.replace("0123", "4567")
    parsed = notification(
        "Записанный разговор", file_link=LINK, file_duration=95, record_file_links=[LINK, second]
    )
    assert parsed.file_link == LINK
    assert parsed.record_urls == (LINK, second)
    assert parsed.record_seconds == 95


def test_r4_outgoing_call_from_the_softphone() -> None:
    parsed = notification(
        "Исходящий звонок", direction="out", call_source="sip", contact_phone_number="79508418541"
    )
    assert (parsed.kind, parsed.direction, parsed.phone) == (
        Kind.OUTGOING_CALL,
        "out",
        "79508418541",
    )


@pytest.mark.parametrize(
    "name",
    [
        "  Поднятие трубки ",
        "поднятие ТРУБКИ",
        "Поднятие\t \n трубки",
        "Поднятие\u00a0трубки",  # a no-break space pasted from the guide
    ],
)
def test_r4_names_match_whatever_the_whitespace_and_case(name: str) -> None:
    assert notification(name).kind is Kind.ANSWER


def test_r4_flat_layout_reads_the_same_as_nested() -> None:
    doc = parse_body(
        render("Записанный разговор", file_link=LINK, file_duration=95, record_file_links=[LINK])
    )
    assert "call_info" not in flatten(doc)
    assert parse(flatten(doc)) == parse(doc)


def test_r4_flat_layout_as_seen_in_the_wild() -> None:
    """UIS.md: flat bodies with only some fields and extra constant fields the admin added."""
    doc = {
        "notification_name": "Исходящее плечо",
        "call_session_id": 3141592653,
        "contact_phone_number": "79508418541",
        "employee_id": 323409,
        "source": "omni",
        "file_duration": 12,
    }
    parsed = parse(doc)
    assert (parsed.phone, parsed.employee_id, parsed.record_seconds) == ("79508418541", 323409, 12)
    assert parsed.time == RECEIVED


def test_r4_nested_value_wins_unless_missing() -> None:
    doc: dict[str, Any] = parse_body(render("Поднятие трубки"))
    doc["employee_id"] = 111  # also at the top level
    assert parse(doc).employee_id == 323409
    doc["employee_info"]["employee_id"] = None
    assert parse(doc).employee_id == 111
    doc["employee_info"] = None  # a whole section null
    assert parse(doc).employee_id == 111


def test_r4_extra_fields_and_unknown_sections_are_ignored() -> None:
    doc = parse_body(render("Поднятие трубки", tag_names=["VIP"], contact_id=5))
    doc["helpdesk"] = {"anything": [1, 2]}
    assert parse(doc).call_session_id == 237859081


def test_r4_direction_is_lowercased() -> None:
    assert notification("Исходящее плечо", direction=" OUT ").direction == "out"


# --- R33: missing values and placeholders ---------------------------------------------------


@pytest.mark.parametrize(
    "missing",
    [None, "{{employee_id}}", " {{ employee_id }} ", "{{employee_full_name}}", "employee_id", ""],
)
def test_r33_missing_optional_values_are_none(missing: Any) -> None:
    """null, a leftover quoted `{{placeholder}}` or the bare variable name all mean "no value"."""
    parsed = notification("Поднятие трубки", employee_id=missing)
    assert parsed.employee_id is None
    assert parsed.employee_name == "Анна Смирнова"


def test_r33_placeholders_in_every_optional_field_are_none() -> None:
    """A template pasted into a notification UIS has no such variables for (quoted here)."""
    optional = set(VALUES) | {"external_id", "is_lost", "is_operator", "file_link"}
    optional -= {"call_session_id"}
    parsed = notification(
        "Завершение звонка",
        **{name: "{{" + name + "}}" for name in optional},
        file_duration="file_duration",
        record_file_links=["{{file_link}}", None],
    )
    assert parsed == Notification(Kind.CALL_END, 237859081, RECEIVED)


def test_r33_unquoted_placeholder_is_not_json() -> None:
    """UIS left `{{employee_id}}` unreplaced: invalid JSON, rejected with where it broke."""
    with pytest.raises(BodyError) as caught:
        parse_body(render("Поднятие трубки", employee_id=LEAVE))
    message = str(caught.value)
    assert "not valid JSON" in message
    assert re.search(r"line \d+, column \d+", message)
    assert "{{employee_id}}" in message


@pytest.mark.parametrize(
    "name", [None, "{{notification_name}}", "notification_name", "Входящий звонок", 7, ["x"]]
)
def test_r33_unknown_or_missing_name(name: Any) -> None:
    doc = parse_body(render("x", notification_name=name))
    error = error_of(doc)
    assert error.code == "unknown_notification"
    assert "«Поднятие трубки»" in error.message


@pytest.mark.parametrize("value", [None, "{{call_session_id}}", "call_session_id", ""])
def test_r33_missing_call_session_id(value: Any) -> None:
    error = error_of(parse_body(render("Завершение звонка", call_session_id=value)))
    assert error.code == "missing_call_session_id"
    assert "call_session_id" in error.message


@pytest.mark.parametrize("value", ["abc", -1, 0, 1.5, True, [1], {"id": 1}, 2**64, "١٢٣"])
def test_r33_invalid_call_session_id(value: Any) -> None:
    error = error_of(parse_body(render("Завершение звонка", call_session_id=value)))
    assert error.code == "invalid_field"
    assert "call_session_id" in error.message


@pytest.mark.parametrize(
    ("field", "value"),
    [
        ("employee_id", {"a": 1}),
        ("employee_id", True),
        ("leg_id", 2**64),
        ("talk_time_duration", "abc"),
        ("wait_time_duration", -3),
        ("file_duration", 1.5),
        ("is_lost", "maybe"),
        ("is_operator", 2),
        ("contact_phone_number", ["79260000000"]),
        ("employee_full_name", 1.5),
        ("direction", False),
        ("file_link", {"url": LINK}),
        ("record_file_links", 5),
        ("record_file_links", [LINK, 5]),
        ("notification_time", "yesterday"),
        ("notification_time", "2024-05-17"),
        ("notification_time", "2024-13-01 10:00:00"),
        ("notification_time", 1715943807),
    ],
)
def test_r33_wrong_types_name_the_field(field: str, value: Any) -> None:
    error = error_of(parse_body(render("Завершение звонка", **{field: value})))
    assert error.code == "invalid_field"
    key = "call_record_duration" if field == "file_duration" else field
    assert error.message.startswith(key + " must be")


def test_r33_error_messages_stay_short_for_huge_values() -> None:
    error = error_of(parse_body(render("Завершение звонка", talk_time_duration="x" * 100_000)))
    assert len(error.message) < 200


def test_r33_a_non_object_is_not_a_notification() -> None:
    assert error_of([1, 2]).code == "not_an_object"


# --- numbers and booleans as strings ---------------------------------------------------------


def test_numbers_given_as_strings_are_accepted() -> None:
    parsed = notification(
        "Завершение звонка",
        call_session_id="237859081",
        employee_id=" 323409 ",
        talk_time_duration="95",
        file_duration="95",
        leg_id=2378590811.0,
    )
    assert (parsed.call_session_id, parsed.employee_id, parsed.talk_seconds) == (
        237859081,
        323409,
        95,
    )
    assert (parsed.record_seconds, parsed.leg_id) == (95, 2378590811)


@pytest.mark.parametrize(
    ("value", "expected"),
    [(True, True), (False, False), ("true", True), (" FALSE ", False), (1, True), (0, False)]
    + [("1", True), ("0", False)],
)
def test_booleans_from_strings_and_numbers(value: Any, expected: bool) -> None:
    assert notification("Завершение звонка", is_lost=value).is_lost is expected


def test_unquoted_numbers_in_text_fields_are_kept_as_text() -> None:
    """A hand-made flat template may leave a phone number or our external id bare."""
    parsed = notification("Поднятие трубки", contact_phone_number=79260000000, external_id=42)
    assert (parsed.phone, parsed.external_id) == ("79260000000", "42")


def test_phone_numbers_are_kept_as_uis_sent_them() -> None:
    """Dial suffixes stay: only matching normalises (R4; callrouter.domain.phones)."""
    assert notification("Исходящее плечо", contact_phone_number="74955140578...2345").phone == (
        "74955140578...2345"
    )


# --- notification_time ---------------------------------------------------------------------


@pytest.mark.parametrize(
    "text",
    [
        "2024-05-17 14:03:27.512",
        "2024-05-17T14:03:27.512",
        "2024-05-17 11:03:27.512Z",
        "2024-05-17T13:03:27.512+02:00",
        "2024-05-17 16:03:27.512+0500",
    ],
)
def test_time_is_local_to_the_account_unless_it_has_an_offset(text: str) -> None:
    parsed = notification("Поднятие трубки", notification_time=text)
    assert parsed.time == datetime(2024, 5, 17, 11, 3, 27, 512000, tzinfo=UTC)
    assert parsed.time.utcoffset() == timedelta(hours=3)  # shown in the account's zone


def test_time_without_fraction() -> None:
    parsed = notification("Поднятие трубки", notification_time="2024-05-17 14:03:27")
    assert parsed.time == datetime(2024, 5, 17, 14, 3, 27, tzinfo=MOSCOW)


@pytest.mark.parametrize(
    ("zone", "utc_hour"),
    [("Asia/Yekaterinburg", 9), ("America/New_York", 18), ("UTC", 14)],
)
def test_time_in_another_account_zone(zone: str, utc_hour: int) -> None:
    doc = parse_body(render("Поднятие трубки"))
    parsed = parse(doc, tz=ZoneInfo(zone))
    assert parsed.time.tzinfo == ZoneInfo(zone)
    assert parsed.time.astimezone(UTC).hour == utc_hour


@pytest.mark.parametrize("value", [None, "{{notification_time}}", "notification_time"])
def test_missing_time_is_the_receipt_time(value: Any) -> None:
    assert notification("Поднятие трубки", notification_time=value).time == RECEIVED


# --- recording links -------------------------------------------------------------------------


def test_record_links_tolerate_a_single_string() -> None:
    parsed = notification("Записанный разговор", file_link=LINK, record_file_links=LINK)
    assert parsed.record_urls == (LINK,)


@pytest.mark.parametrize("links", [None, [], "{{record_file_links}}"])
def test_record_links_fall_back_to_the_file_link(links: Any) -> None:
    parsed = notification("Записанный разговор", file_link=LINK, record_file_links=links)
    assert parsed.record_urls == (LINK,)


def test_no_recording_no_links() -> None:
    assert notification("Завершение звонка").record_urls == ()


# --- parse_body ------------------------------------------------------------------------------


def test_body_is_parsed_whatever_the_bytes_around_it() -> None:
    body = render("Поднятие трубки")
    assert parse_body(b"\xef\xbb\xbf" + body + b"\r\n") == parse_body(body)


@pytest.mark.parametrize("raw", [b"", b"  ", b"\xff\xfe", b"{", b"[1,"])
def test_body_that_is_not_json(raw: bytes) -> None:
    with pytest.raises(BodyError):
        parse_body(raw)


@pytest.mark.parametrize("raw", [b"[1, 2]", b'"text"', b"null", b"5"])
def test_json_that_is_not_an_object_is_unusable_not_malformed(raw: bytes) -> None:
    """API.md: 400 only for a body that is not JSON; JSON that is not a notification is 422."""
    with pytest.raises(NotificationError) as caught:
        parse_notification(parse_body(raw), MOSCOW, RECEIVED)
    assert caught.value.code == "not_an_object"


def test_body_error_is_a_value_error() -> None:
    assert issubclass(BodyError, ValueError)


# --- R33 properties: nothing but NotificationError, whatever the JSON ---------------------

json_values = st.recursive(
    st.none()
    | st.booleans()
    | st.integers()
    | st.floats(allow_nan=False, allow_infinity=False)
    | st.text(max_size=30)
    | st.sampled_from(["{{employee_id}}", "12", " true ", "2024-05-17 14:03:27", "in", LINK]),
    lambda children: (
        st.lists(children, max_size=4) | st.dictionaries(st.text(max_size=12), children, max_size=4)
    ),
    max_leaves=12,
)

# Every key of the nested template, as (section or None, key), plus each section itself.
_BASE = parse_body(render("Записанный разговор", file_link=LINK, record_file_links=[LINK]))
PLACES = [(None, key) for key in _BASE] + [
    (section, key) for section, inner in _BASE.items() if isinstance(inner, dict) for key in inner
]
CODES = {"unknown_notification", "missing_call_session_id", "invalid_field", "not_an_object"}


def outcome(doc: Any) -> Notification | NotificationError:
    """Parse, allowing only a Notification or a NotificationError with a code and message."""
    try:
        parsed = parse_notification(doc, MOSCOW, RECEIVED)
    except NotificationError as error:
        assert error.code in CODES
        assert error.message
        return error
    assert parsed.time.tzinfo is not None
    return parsed


@settings(max_examples=300, deadline=None)
@given(json_values)
def test_r33_any_json_document_is_a_notification_or_an_error(doc: Any) -> None:
    outcome(doc)


@settings(max_examples=300, deadline=None)
@given(json_values, st.sampled_from(PLACES), st.booleans())
def test_r33_any_value_in_any_field_is_a_notification_or_an_error(
    value: Any, place: tuple[str | None, str], flat: bool
) -> None:
    doc: dict[str, Any] = copy.deepcopy(_BASE)
    section, key = place
    if flat:
        doc = flatten(doc)
        doc[key] = value
    else:
        (doc[section] if section else doc)[key] = value
    result = outcome(doc)
    if value is None and key not in ("notification_name", "call_session_id", "call_info"):
        assert isinstance(result, Notification)  # a missing optional value is never an error


@settings(max_examples=300, deadline=None)
@given(st.binary(max_size=64) | json_values.map(lambda value: json.dumps(value).encode()))
def test_r33_any_body_is_json_or_a_body_error(raw: bytes) -> None:
    try:
        doc = parse_body(raw)
    except BodyError as error:
        assert str(error)
    else:
        assert orjson.dumps(doc)  # decoded JSON, whatever its type


@pytest.mark.parametrize(
    ("field", "attr", "value", "read"),
    [
        ("contact_phone_number", "phone", "a\u0000b", "a\ufffdb"),
        ("employee_full_name", "employee_name", "Анна\u0000", "Анна\ufffd"),
        ("file_link", "file_link", LINK + "\u0000", LINK + "\ufffd"),
    ],
)
def test_r33_a_nul_in_text_reads_as_a_replacement_character(
    field: str, attr: str, value: str, read: str
) -> None:
    """Issue 12: PostgreSQL text holds no NUL, so one would fail after the 200. It reads as
    U+FFFD: such a caller is an unknown number (its own case), never refused."""
    n = parse_notification(
        parse_body(render("Завершение звонка", **{field: value})), MOSCOW, RECEIVED
    )
    assert getattr(n, attr) == read
    assert "\x00" not in "".join(n.record_urls)


def test_r33_kept_body_text_has_no_nul() -> None:
    assert body_text(b'{"a": "x\x00y"}\xff') == '{"a": "x\ufffdy"}\ufffd'
