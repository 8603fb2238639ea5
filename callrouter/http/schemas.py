"""The HTTP contract as pydantic models (API.md): every request body, query and response.

One table for the whole API: handlers validate through these (`http.operation`), and the
OpenAPI document (`http.openapi`) is generated from them, so the document cannot drift from
what the code accepts. Bodies are strict (JSON `true` is not a number, `"5"` is not an id) and
refuse unknown keys (typos); queries are lax, because a query string has only strings.
"""

from __future__ import annotations

from typing import Annotated, Any, ClassVar, Generic, Literal, TypeVar

from pydantic import BaseModel, ConfigDict, Field, StringConstraints

from callrouter.domain.account import DEFAULT_CALL_API_URL

# 2**63 - 1: ids are BIGINT; a larger number cannot name anything.
MAX_ID = (1 << 63) - 1

Id = Annotated[int, Field(ge=1, le=MAX_ID)]
Text = Annotated[str, StringConstraints(strip_whitespace=True, max_length=200)]
Required = Annotated[str, StringConstraints(strip_whitespace=True, min_length=1, max_length=200)]
Subject = Annotated[str, StringConstraints(strip_whitespace=True, min_length=1, max_length=500)]
Summary = Annotated[str, StringConstraints(strip_whitespace=True, max_length=20_000)]
Seconds = Annotated[int, Field(ge=0)]
Moment = Annotated[str, Field(description="ISO 8601 with the account's offset")]
Status = Literal["open", "waiting", "closed"]
DIGIT = r"\d"  # a phone number is anything with digits in it (domain.phones keeps the digits)
EMAIL = r"^[^@]+@.+$"

T = TypeVar("T")


def _absent_is_not_null(schema: dict[str, Any]) -> None:
    """A field that may be left out but not sent as null has the Python default None, which
    is not a value of its type: the document must not show it as the default."""
    for prop in schema.get("properties", {}).values():
        nullable = prop.get("type") == "null" or any(
            alt.get("type") == "null" for alt in prop.get("anyOf", ())
        )
        if "default" in prop and prop["default"] is None and not nullable:
            del prop["default"]


class Body(BaseModel):
    """A JSON request body: strict types, unknown keys refused."""

    model_config = ConfigDict(strict=True, extra="forbid", json_schema_extra=_absent_is_not_null)


class Query(BaseModel):
    """A query string: strings converted, unknown parameters ignored."""

    model_config = ConfigDict(extra="ignore")


class Out(BaseModel):
    """A response shape (documentation and contract tests; handlers answer plain JSON)."""


# --- common ---------------------------------------------------------------------------------


class ErrorDetail(Out):
    code: str = Field(examples=["missing_field"], description="snake_case, stable")
    message: str = Field(examples=["Field 'api_key' is required."])


class Error(Out):
    """Every error answer (API.md "Conventions")."""

    error: ErrorDetail


class Page(Out, Generic[T]):
    """A list: newest first, `limit` and `offset` in the query."""

    items: list[T]
    total: int = Field(ge=0)


class Paging(Query):
    limit: int = Field(50, ge=0, le=500)
    offset: int = Field(0, ge=0, le=MAX_ID)


class Ok(Out):
    ok: Literal[True]


class Health(Out):
    ok: Literal[True]
    queued: int = Field(ge=0, description="notifications accepted, not yet handed to the writer")


class System(Out):
    model_config = ConfigDict(extra="allow")
    inbox_pending: int
    ingest_queue: int
    shards: list[ShardLoad]  # section "Multi-node (issue 13)" at the end
    nodes: list[RayNode]


class UisNotification(BaseModel):
    """A UIS notification as the guide's templates send it (nested sections or flat); read by
    `domain.uis`, which takes what it knows and ignores the rest."""

    model_config = ConfigDict(
        extra="allow",
        json_schema_extra={
            "examples": [
                {
                    "notification_name": "Поднятие трубки",
                    "notification_time": "2026-11-02 10:15:03",
                    "call_session_id": 3385712345,
                    "leg_id": 7123456,
                    "call_info": {"direction": "in", "is_operator": True},
                    "contact_info": {"contact_phone_number": "79161234567"},
                    "employee_info": {"employee_id": 4321},
                }
            ]
        },
    )
    notification_name: str = Field(
        description="one of the guide's six names, e.g. «Исходящее плечо», «Завершение звонка»"
    )
    call_session_id: int


# --- admin ----------------------------------------------------------------------------------


class IntegrationIn(Body):
    error_codes: ClassVar[dict[str, str]] = {"virtual_phone_number": "invalid_phone"}
    api_key: Annotated[str, StringConstraints(strip_whitespace=True, min_length=1, max_length=500)]
    virtual_phone_number: Annotated[
        str, StringConstraints(strip_whitespace=True, min_length=1, max_length=64, pattern=DIGIT)
    ] = Field(examples=["74951234567"])
    call_api_url: Annotated[
        str, StringConstraints(strip_whitespace=True, min_length=1, max_length=500)
    ] = DEFAULT_CALL_API_URL


class IntegrationOut(Out):
    webhook_path: str = Field(examples=["/webhooks/uis/3kq…"])
    webhook_url: str = Field(
        description="the absolute URL to paste into UIS (from --public-url or the request's host)"
    )
    virtual_phone_number: str
    call_api_url: str


class SettingsIn(Body):
    """Any of the settings; absent ones stay as they are. Ranges (checked with the cross-field
    rule in `storage.directory`): close SLA 1 s–10 years, service level 1–3600 s, silent-call
    timeout 60 s–7 days and longer than the lateness bound, lateness 1–3600 s."""

    # The settings' own error codes, which clients of the settings form already know.
    error_codes: ClassVar[dict[str, str]] = {
        "extra_forbidden": "unknown_setting",
        "timezone": "invalid_timezone",
        "": "invalid_setting",
    }
    timezone: Annotated[str, StringConstraints(min_length=1, max_length=64)] = Field(  # type: ignore[assignment]
        None, examples=["Europe/Moscow"], description="an IANA time zone"
    )
    close_sla_seconds: int = None  # type: ignore[assignment]
    service_level_seconds: int = None  # type: ignore[assignment]
    silent_call_timeout_seconds: int = None  # type: ignore[assignment]
    lateness_seconds: int = None  # type: ignore[assignment]


class SettingsOut(Out):
    timezone: str
    close_sla_seconds: int
    service_level_seconds: int
    silent_call_timeout_seconds: int
    lateness_seconds: int


class StaffIn(Body):
    error_codes: ClassVar[dict[str, str]] = {"email": "invalid_email"}
    full_name: Required
    email: Annotated[Required, StringConstraints(pattern=EMAIL)] = Field(
        examples=["anna@example.com"]
    )


class StaffOut(Out):
    id: int
    full_name: str
    email: str
    active: bool = Field(description="false: deactivated, cannot sign in (issue 9)")
    role: Literal["staff", "admin"]
    has_password: bool = Field(description="whether the member can sign in with a password")


class NewStaff(StaffOut):
    token: str = Field(description="the staff member's API token, shown this once")


class OperatorIn(Body):
    error_codes: ClassVar[dict[str, str]] = {"phones.*": "invalid_phone"}
    staff_id: Id | None = Field(description="the staff member, or null to unmap")
    phones: (
        list[
            Annotated[
                str,
                StringConstraints(
                    strip_whitespace=True, min_length=1, max_length=64, pattern=DIGIT
                ),
            ]
        ]
        | None
    ) = Field(
        None, max_length=50, description="the phones smart routing rings; absent or null: kept"
    )


class OperatorOut(Out):
    employee_id: int
    staff_id: int | None
    full_name: str | None = Field(None, description="as UIS named the employee at the import")
    phones: list[str] = Field(default_factory=list, description="rung by smart routing")


class FieldIn(Body):
    error_codes: ClassVar[dict[str, str]] = {"key": "invalid_field_key"}
    key: Annotated[str, StringConstraints(pattern=r"^[a-z][a-z0-9_]{0,63}$")] = Field(
        examples=["contract"], description="a-z, 0-9 and _, starting with a letter"
    )
    title: Required
    incoming_call: bool = False


class FieldChange(Body):
    incoming_call: bool | None = None
    title: Required | None = None


class FieldOut(Out):
    key: str
    title: str
    incoming_call: bool


class Rejected(Out):
    id: int
    received_at: Moment
    status: int
    code: str
    message: str
    body: str
    size: int


class QuarantineQuery(Paging):
    status: Literal["open", "retried"] | None = None


class QuarantineEntry(Out):
    id: int
    call_session_id: int | None
    stage: str
    error: str
    inbox_ids: list[int] | None
    body: str | None
    status: str
    created_at: Moment
    updated_at: Moment


class Retried(Out):
    retried: int


# --- users ----------------------------------------------------------------------------------


class UserIn(Body):
    """Every field optional; on PATCH `phones` replaces the list and `custom_fields` merges
    (a null value removes that field)."""

    full_name: Text | None = None
    email: Text | None = None
    company: Text | None = None
    error_codes: ClassVar[dict[str, str]] = {"phones.*": "invalid_phone"}
    phones: list[Annotated[str, StringConstraints(max_length=64, pattern=DIGIT)]] | None = Field(
        None, max_length=50, examples=[["+7 916 123-45-67"]]
    )
    note: Annotated[str, StringConstraints(max_length=20_000)] | None = None
    custom_fields: dict[str, str | int | float | bool | None] | None = None


class UserOut(Out):
    id: int
    full_name: str | None
    email: str | None
    company: str | None
    phones: list[str]
    note: str | None
    custom_fields: dict[str, Any]


class UserQuery(Paging):
    q: str = Field("", max_length=200)


# --- calls ----------------------------------------------------------------------------------


class CallsQuery(Paging):
    active: bool = False


class CallOut(Out):
    call_session_id: int
    direction: Literal["in", "out"]
    state: Literal["ringing", "talking", "ended"]
    phone: str | None
    user_id: int | None
    staff_ids: list[int]
    case_ids: list[int]
    started_at: Moment | None
    answered_at: Moment | None
    ended_at: Moment | None
    outcome: str | None = Field(None, description="ended calls only")
    talk_seconds: int | None = Field(None, description="ended calls only")
    routing: list[RoutingDecisionOut] = Field(
        default_factory=list, description="what smart routing told UIS for this call"
    )


class LinkUser(Body):
    user_id: Id


class CaseFromCall(Body):
    subject: Subject
    summary: Summary = ""


class Attach(Body):
    case_id: Id
    summary: Summary = ""


class Draft(Body):
    subject: Annotated[str, StringConstraints(strip_whitespace=True, max_length=500)] | None = None
    summary: Summary | None = None


# --- cases ----------------------------------------------------------------------------------


class CasesQuery(Paging):
    user_id: Id | None = None
    status: Status | None = None
    channel: Annotated[str, StringConstraints(max_length=32)] | None = None


class CaseChange(Body):
    # Absent means unchanged; only the assignee may be set to null (unassigned).
    status: Status = None  # type: ignore[assignment]
    assignee_id: Id | None = None
    subject: Subject = None  # type: ignore[assignment]


class MessageIn(Body):
    body: Annotated[str, StringConstraints(strip_whitespace=True, min_length=1, max_length=100_000)]
    kind: Literal["reply", "note"] = "reply"


class CallRecord(Out):
    call_session_id: int
    direction: Literal["in", "out"] | None
    outcome: Literal["in_progress", "answered", "missed", "attempt"] | None
    talk_seconds: int | None
    recording_urls: list[str]


class MessageOut(Out):
    id: int
    kind: Literal["reply", "note", "call"]
    author_staff_id: int | None
    body: str
    created_at: Moment
    call: CallRecord | None


class CaseOut(Out):
    id: int
    subject: str
    status: Status
    channel: str
    user_id: int | None
    assignee_id: int | None
    call_icon: Literal["missed", "normal"] | None
    created_at: Moment
    updated_at: Moment
    closed_at: Moment | None


class CaseWithMessages(CaseOut):
    messages: list[MessageOut] = Field(description="oldest first")


class Dialed(Out):
    call_session_id: int
    external_id: str


# --- statistics and wallboard ---------------------------------------------------------------


class Period(Query):
    from_: str | None = Field(
        None,
        alias="from",
        examples=["2026-11-01"],
        description="a date or a datetime in the account's time zone; default today",
    )
    to: str | None = Field(None, description="exclusive; default one day after `from`")


class Load(Out):
    new_total: int
    new_from_users: int
    reopened: int
    in_work: int
    answered: int
    closed: int


class HourLoad(Out):
    hour: int = Field(ge=0, le=23)
    new_and_reopened: int
    in_work: int


class WeekdayLoad(Out):
    weekday: int = Field(ge=1, le=7, description="1 is Monday")
    new_and_reopened: int
    in_work: int


class Peak(Out):
    by_hour: list[HourLoad]
    by_weekday: list[WeekdayLoad]


class ChannelLoad(Out):
    new_and_reopened: int
    in_work: int
    closed: int


class Channels(Out):
    calls: ChannelLoad


class CloseTime(Out):
    mean_seconds: float
    median_seconds: float


class Response(Out):
    first_response: None = Field(description="not applicable to calls (R28)")
    any_response: None
    reply_writing: None
    replies_to_close: float | None
    close_time: CloseTime | None


class Sla(Out):
    first_response_breached: None = Field(description="not applicable to calls (R29)")
    any_response_breached: None
    close_sla_breached: int


class TeamRow(Out):
    staff_id: int
    new_total: int
    new_from_users: int
    reopened: int
    in_work: int
    answered: int
    replies: int
    replies_to_close: float | None
    closed: int
    close_time: CloseTime | None
    close_sla_breached: int


class Team(Out):
    items: list[TeamRow]


REPORT_MODELS: dict[str, type[Out]] = {
    "load": Load,
    "peak": Peak,
    "channels": Channels,
    "response": Response,
    "sla": Sla,
    "team": Team,
}


class StaffCounts(Out):
    free: int
    ringing: int
    talking: int
    offline: int


class Today(Out):
    answered: int
    missed: int
    service_level: float | None
    avg_answer_seconds: float | None
    avg_talk_seconds: float | None


class StaffBoard(Out):
    model_config = ConfigDict(extra="allow")
    staff_id: int
    state: Literal["free", "ringing", "talking", "offline"]
    answered: int
    missed: int
    talk_seconds: float
    routed: int = Field(0, description="today's calls smart routing sent to this member")
    reached: int = Field(0, description="of those, calls this member answered")


class Wallboard(Out):
    """The R31 snapshot; the WebSocket sends it with `"type": "wallboard"`."""

    model_config = ConfigDict(extra="allow")
    ringing: int
    longest_wait_seconds: float
    talking: int
    staff: StaffCounts
    today: Today
    per_staff: list[StaffBoard]
    seq: int
    routed: RoutedToday


class RoutedToday(Out):
    """Today's calls smart routing sent to a staff member (issue 11), and how many of them
    that member answered: callers who reached their own agent."""

    routed: int = Field(ge=0)
    reached: int = Field(ge=0)


class Token(Query):
    token: str | None = Field(
        None, description="browsers cannot set headers on a WebSocket handshake"
    )


# --- console --------------------------------------------------------------------------------


class MissedQuery(Paging):
    mine: bool = Field(False, description="only the cases assigned to the acting staff member")


class MissedCase(Out):
    """An open missed-call case (R15) on the call-back worklist, with its grouped calls (R16)."""

    case_id: int
    subject: str
    assignee_id: int | None
    user_id: int | None
    user_name: str | None
    phone: str | None = Field(description="the number a call-back dials (the user's first)")
    missed_calls: int = Field(ge=0, description="missed calls grouped in the case (R16)")
    attempts: int = Field(ge=0, description="call-backs the user did not answer (R20)")
    first_missed_at: Moment | None
    last_missed_at: Moment | None
    created_at: Moment


class CaseBrief(Out):
    id: int
    subject: str
    status: Status
    call_icon: Literal["missed", "normal"] | None


class LoggedCall(Out):
    """An ended call of the acting staff member, with the cases it is recorded in."""

    call_session_id: int
    direction: Literal["in", "out"] | None
    outcome: str | None = Field(description="answered / missed / attempt / ignored")
    phone: str | None
    user_id: int | None
    user_name: str | None
    started_at: Moment | None
    answered_at: Moment | None
    ended_at: Moment | None
    talk_seconds: int | None
    cases: list[CaseBrief]
    routing: list[RoutingDecisionOut] = Field(
        default_factory=list, description="what smart routing told UIS for this call"
    )


# --- stats (issue 9: CSV export) -------------------------------------------------------------


class StatsCsvQuery(Period):
    lang: Literal["ru", "en"] = Field(
        "ru",
        description="headings and number format: ru (`;`, decimal comma, as Excel reads CSV in "
        "a Russian locale) or en (`,`, decimal point)",
    )


# --- admin page (issue 9: the UIS key check, the notifications to set up in UIS) -------------

ApiKey = Annotated[str, StringConstraints(strip_whitespace=True, min_length=1, max_length=500)]


class UisCheckIn(Body):
    """What to check. A field left out is taken from the saved integration, so the form can
    check what is typed before saving it, and an empty body checks what is saved."""

    error_codes: ClassVar[dict[str, str]] = {"virtual_phone_number": "invalid_phone"}
    api_key: ApiKey = None  # type: ignore[assignment]
    virtual_phone_number: Annotated[
        str, StringConstraints(strip_whitespace=True, min_length=1, max_length=64, pattern=DIGIT)
    ] = Field(None, examples=["74951234567"])  # type: ignore[assignment]
    call_api_url: ApiKey = Field(None, examples=[DEFAULT_CALL_API_URL])  # type: ignore[assignment]


class UisCheck(Out):
    """The verdict of the key check (`list.calls` at the Call API URL; it starts no call)."""

    ok: bool
    code: str = Field(
        examples=["access_token_invalid"],
        description='"ok", UIS\'s error mnemonic (access_token_invalid, ip_not_whitelisted, '
        "component_disabled, virtual_phone_number_not_found, …) or uis_unreachable, uis_timeout, "
        "uis_bad_response when UIS could not be asked",
    )
    message: str = Field(description="what is wrong and where to fix it, for the admin")
    ip: str | None = Field(description="ip_not_whitelisted: the address UIS saw, to allow")
    call_api_url: str
    virtual_phone_number: str
    active_calls: int | None = Field(description="calls in progress on the account, when ok")


class UisNotificationOut(Out):
    """One of the guide's six notifications, as the admin adds it in UIS."""

    kind: Literal["answer", "leg_end", "call_end", "recording", "leg_start", "outgoing_call"]
    name: str = Field(examples=["Поднятие трубки"], description="the notification's name in UIS")
    body: str = Field(description="the notification text: JSON with bare {{variable}} values")


# --- auth (issue 9: sign-in, who am I, staff directory, staff management, wallboard links) ---

Role = Literal["staff", "admin"]


class LoginIn(Body):
    """A staff member: `email` and `password`. The admin of the first start: `admin_token`
    alone (the token printed when the service first started)."""

    email: Annotated[
        str, StringConstraints(strip_whitespace=True, min_length=1, max_length=200)
    ] = Field(None, examples=["anna@example.com"])  # type: ignore[assignment]
    password: Annotated[str, StringConstraints(min_length=1, max_length=1000)] = None  # type: ignore[assignment]
    admin_token: Annotated[
        str, StringConstraints(strip_whitespace=True, min_length=1, max_length=500)
    ] = None  # type: ignore[assignment]


class SignedIn(Out):
    staff_id: int | None = Field(description="null for the admin of the admin token")
    full_name: str | None
    role: Role


class Me(Out):
    staff_id: int | None = Field(description="null for the admin of the admin token")
    full_name: str | None = Field(description="null for the admin of the admin token")
    email: str | None
    role: Role


class DirectoryQuery(Query):
    limit: int = Field(1000, ge=0, le=5000)
    offset: int = Field(0, ge=0, le=MAX_ID)


class DirectoryEntry(Out):
    id: int
    full_name: str
    active: bool


class StaffChange(Body):
    """Any of these; absent ones stay as they are. `"active": false` revokes the member's
    token and ends their sessions at once; a new `password` ends their sessions too."""

    error_codes: ClassVar[dict[str, str]] = {
        "email": "invalid_email",
        "password": "invalid_password",
        "role": "invalid_role",
    }
    full_name: Required = None  # type: ignore[assignment]
    email: Annotated[Required, StringConstraints(pattern=EMAIL)] = None  # type: ignore[assignment]
    active: bool = None  # type: ignore[assignment]
    password: Annotated[str, StringConstraints(min_length=8, max_length=1000)] = Field(  # type: ignore[assignment]
        None, description="at least 8 characters; stored as an argon2id hash"
    )
    role: Role = None  # type: ignore[assignment]


class StaffToken(Out):
    id: int
    token: str = Field(description="the member's new API token, shown this once")


class LinkIn(Body):
    label: Text = Field("", examples=["Hall screen"], description="what the link is for")


class LinkOut(Out):
    id: int
    label: str
    created_at: Moment


class NewLink(LinkOut):
    url: str = Field(
        description="the wallboard page with the link's secret (`/wallboard?link=…`), absolute;"
        " shown this once"
    )


# --- import of operators from UIS (issue 11) -------------------------------------------------


class ImportedEmployee(Out):
    """A UIS employee (`get.employees`), its mapping here, and the staff member proposed."""

    employee_id: int
    full_name: str
    email: str | None
    groups: list[str]
    phones: list[str] = Field(
        description="as UIS writes them (a dial suffix such as `74955140578...2345` kept), "
        "active ones first"
    )
    extension: str | None
    mapped: bool = Field(description="whether this employee has an operator row here")
    staff_id: int | None = Field(description="the staff member it is mapped to now")
    proposed_staff_id: int | None = Field(
        description="who it probably is: the active staff member with its email (any case), "
        "else the one with its name (case, «ё» and word order ignored; none when two share it)"
    )
    proposed_by: Literal["email", "name"] | None


class EmployeeList(Out):
    """Every employee of the UIS account, in UIS's order (all pages read)."""

    items: list[ImportedEmployee]
    total: int = Field(ge=0)


ImportPhone = Annotated[str, StringConstraints(strip_whitespace=True, min_length=1, max_length=64)]


class ImportMapping(Body):
    employee_id: Id
    staff_id: Id | None = Field(description="the staff member, or null to unmap")
    full_name: Text | None = Field(None, description="the employee's name, as the list showed it")
    phones: list[ImportPhone] | None = Field(
        None, max_length=50, description="the employee's phones, kept for routing callers"
    )


class OperatorImportIn(Body):
    """Mappings to apply at once: one transaction, one reload of the operators everywhere."""

    mappings: list[ImportMapping] = Field(min_length=1, max_length=10_000)


class OperatorImported(Out):
    mapped: int = Field(ge=0, description="operators now mapped to a staff member")
    unmapped: int = Field(ge=0, description="operators now unmapped")


# --- smart routing (issue 11 part 1) ---------------------------------------------------------


class RouteRequest(BaseModel):
    """What UIS's interactive call processing sends, as form fields, a JSON object or a query
    (POST or GET); values arrive as strings. Anything unusable is answered with the fallback,
    never an error: UIS must not be left waiting."""

    model_config = ConfigDict(extra="allow")
    call_session_id: int | None = Field(None, description="UIS's id of the whole call")
    numa: str | None = Field(None, examples=["79260000000"], description="the caller's number")
    numb: str | None = Field(None, examples=["74951234567"], description="the number called")
    cdr_id: str | None = None
    start_time: str | None = None
    input_result: str | None = Field(None, description="what the caller pressed, if asked")


class RouteQuery(Query):
    """The same fields in a query string (GET), as strings; never refused."""

    call_session_id: str | None = None
    numa: str | None = Field(None, description="the caller's number")
    numb: str | None = Field(None, description="the number called")
    cdr_id: str | None = None
    start_time: str | None = None
    input_result: str | None = None


class RouteAnswer(Out):
    """Either `phones` (UIS rings them) or `returned_code` (UIS goes on with that branch)."""

    phones: list[str] | None = Field(None, examples=[["74959876543"]])
    returned_code: int | None = Field(None, examples=[1])


class RoutingIn(Body):
    """Any of the routing settings; absent ones stay as they are."""

    error_codes: ClassVar[dict[str, str]] = {"": "invalid_setting"}
    enabled: bool = Field(None, description="routing on or off")  # type: ignore[assignment]
    open_case: bool = Field(  # type: ignore[assignment]
        None, description="ring the free assignee of the caller's open or waiting case"
    )
    last_talked: bool = Field(  # type: ignore[assignment]
        None, description="else the free staff member who last talked with the caller"
    )
    fallback_code: int = Field(  # type: ignore[assignment]
        None, ge=0, le=1000, description="the UIS scenario branch (`returned_code`) otherwise"
    )


class RoutingView(Out):
    loaded: bool = Field(description="whether this frontend's view has loaded")
    callers: int = Field(ge=0, description="numbers with an open case or a past conversation")
    states_age_seconds: float | None = Field(
        description="since the staff states last came from the wallboard"
    )


class RoutingOut(Out):
    enabled: bool
    open_case: bool
    last_talked: bool
    fallback_code: int
    route_url: str | None = Field(
        description="the absolute URL to put into the UIS scenario's interactive step; null "
        "before the integration is set up"
    )
    view: RoutingView


class RoutingSkip(Out):
    staff_id: int
    why: Literal["busy", "offline", "inactive", "no_phones"]


class RoutingDecisionOut(Out):
    """What smart routing told UIS for a call, and why."""

    at: Moment
    reason: str = Field(
        examples=["open_case_assignee"],
        description="open_case_assignee / last_talked (routed); disabled / unknown_caller / "
        "no_free_agent / not_ready / stale_view / bad_request / error (fell through)",
    )
    staff_id: int | None
    case_id: int | None
    phones: list[str]
    returned_code: int | None
    skipped: list[RoutingSkip] = Field(description="candidates passed over, and why")


class RoutingStaffStats(Out):
    staff_id: int
    routed: int = Field(ge=0, description="calls routed to this staff member")
    reached: int = Field(ge=0, description="of those, calls this staff member answered")


class RoutingStats(Out):
    """Calls routed in the period (by when they were routed) and how many reached their own
    agent; a call still in progress has not reached anyone yet."""

    from_: Moment = Field(alias="from")
    to: Moment
    routed: int = Field(ge=0)
    reached: int = Field(ge=0)
    by_reason: dict[str, int] = Field(description="every decision of the period by reason")
    per_staff: list[RoutingStaffStats]


# The call's and the call log's decisions are declared above this section's models.
Wallboard.model_rebuild()
CallOut.model_rebuild()
LoggedCall.model_rebuild()


# --- Multi-node (issue 13) ------------------------------------------------------------------


class ShardLoad(Out):
    """One shard actor, in shard order (its index is its position)."""

    model_config = ConfigDict(extra="allow")
    node: str = Field(description="the Ray node id (hex) of the process hosting it now")
    calls: int = Field(ge=0)
    live_calls: int = Field(ge=0, description="calls not finished yet")
    agents: int = Field(ge=0)
    quarantined: int = Field(ge=0)


class RayNode(Out):
    """A node of the Ray cluster, dead ones included (a lost node stays listed, alive false)."""

    node_id: str
    address: str = Field(description="the node's IP address")
    head: bool = Field(description="runs the GCS; the writer, wallboard and statistics go here")
    alive: bool
    shards: list[int] = Field(description="indexes of the shards running on it now")


System.model_rebuild()


# --- Reconciliation with the UIS Data API (issue 11 part 2) ---------------------------------


class ReconcileIn(Body):
    from_: str = Field(
        alias="from",
        examples=["2026-11-02"],
        description="calls that started from this date or datetime (the account's zone)",
    )
    to: str = Field(examples=["2026-11-03"], description="exclusive; at most 92 days after")


class ReconcileQueued(Out):
    id: int = Field(description="the run; `GET /api/v1/reconcile` shows how it went")
    status: Literal["queued"]


class ReconcileRepair(Out):
    """A notification UIS never sent, derived from the Data API's reports and stored."""

    kind: str = Field(
        examples=["leg_end"],
        description="outgoing_call / leg_start / answer / leg_end / call_end / recording",
    )
    call_session_id: int
    leg_id: int | None
    at: Moment = Field(description="its event time (whole seconds: what the Data API reports)")
    whole_call: bool = Field(description="nothing of its call had arrived")
    stored: bool = Field(description="false: the same body was in the inbox already")


class ReconcileRunOut(Out):
    id: int
    trigger: Literal["schedule", "admin"]
    from_: Moment = Field(alias="from")
    to: Moment
    started_at: Moment
    finished_at: Moment | None
    status: Literal["queued", "running", "done", "failed"]
    error_code: str | None = Field(
        examples=["wrong_api_key"],
        description="integration_not_configured / interrupted / internal_error / UIS's "
        "mnemonic / uis_unreachable / uis_timeout / uis_bad_response",
    )
    error: str | None = Field(description="what went wrong, in words for the admin")
    calls_seen: int = Field(ge=0, description="calls the Data API reported for the period")
    counts: dict[str, int] = Field(
        description="repairs per kind; `whole_calls`: calls of which nothing had arrived"
    )
    repairs: list[ReconcileRepair] = Field(description="in call and time order (first 2000)")


class ReconcileRuns(Page[ReconcileRunOut]):
    held_calls: int = Field(
        ge=0,
        description="ended calls whose own facts show a gap, held past the lateness bound "
        "for the run that repairs them",
    )


class ReconcileSettingsIn(Body):
    enabled: bool | None = Field(None, description="the periodic run (a run on demand always)")
    interval_seconds: int | None = Field(None, ge=60, le=86400)
    lookback_seconds: int | None = Field(None, ge=600, le=7 * 86400)
    margin_seconds: int | None = Field(None, ge=30, le=3600)


class ReconcileSettingsOut(Out):
    enabled: bool
    interval_seconds: int = Field(description="a run every this many seconds")
    lookback_seconds: int = Field(description="over the calls that started this long ago")
    margin_seconds: int = Field(description="repairing calls UIS finished this long ago at least")
    hold_seconds: int = Field(
        description="how long an ended call with gaps waits for its repairs (0: off, or no "
        "integration): interval + margin + 60"
    )
