"""Smart routing (issue 11 part 1): where UIS's interactive call processing sends a caller.

Pure: the rules, the in-memory index of who each caller belongs to (`Affinity`), the one
decision function (`decide`) and the counts of routed calls. The HTTP shell keeps a view of
live staff states and this index current in the background and asks `decide` on each request,
so an answer never waits on the database or another process.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from typing import Any, Final, Literal

from callrouter.domain.phones import normalize_phone

StaffState = Literal["free", "ringing", "talking", "offline"]

# Why a decision went as it did: the first two ring a staff member, the rest fall through.
ROUTED_REASONS: Final = ("open_case_assignee", "last_talked")
FALLBACK_REASONS: Final = (
    "disabled",  # routing is switched off
    "unknown_caller",  # no digits, or nobody here belongs to this number
    "no_free_agent",  # the caller's staff are busy, offline, inactive or have no phones
    "not_ready",  # the view has not loaded yet (just started)
    "stale_view",  # the staff states stopped coming: better the scenario than a busy agent
    "bad_request",  # UIS sent something unusable
    "error",  # a bug or a failure in the shell: never a 5xx to UIS
)
REASONS: Final = ROUTED_REASONS + FALLBACK_REASONS
DEFAULT_FALLBACK_CODE: Final = 1
MAX_RETURNED_CODE: Final = 1000
ACTIVE_CASE: Final = frozenset({"open", "waiting"})


@dataclass(frozen=True, slots=True)
class RoutingRules:
    """What the admin set (`GET/PUT /api/v1/routing`). Off by default: routing only matters
    once the admin has put the URL into a UIS scenario, and turns it on there."""

    enabled: bool = False
    open_case: bool = True  # ring the assignee of the caller's open or waiting case
    last_talked: bool = True  # else the staff member who last talked with the caller
    fallback_code: int = DEFAULT_FALLBACK_CODE  # the scenario branch UIS goes on with

    def json(self) -> dict[str, Any]:
        return {
            "enabled": self.enabled,
            "open_case": self.open_case,
            "last_talked": self.last_talked,
            "fallback_code": self.fallback_code,
        }

    @classmethod
    def from_json(cls, value: object) -> RoutingRules:
        """Stored settings, tolerant of what an older or hand-edited row holds."""
        if not isinstance(value, dict):
            return cls()
        base = cls()
        code = value.get("fallback_code", base.fallback_code)
        return cls(
            enabled=value.get("enabled") is True,
            open_case=bool(value.get("open_case", base.open_case)),
            last_talked=bool(value.get("last_talked", base.last_talked)),
            fallback_code=code
            if isinstance(code, int) and 0 <= code <= MAX_RETURNED_CODE
            else base.fallback_code,
        )


@dataclass(frozen=True, slots=True)
class CaseLink:
    """An open or waiting case of a caller, with its assignee."""

    case_id: int
    assignee_id: int
    updated: float  # POSIX seconds: the most recently updated case is tried first


@dataclass(frozen=True, slots=True)
class Caller:
    """Whom a caller belongs to, as the index knows it."""

    cases: tuple[CaseLink, ...] = ()  # most recently updated first
    last_talked: int | None = None


@dataclass(frozen=True, slots=True)
class Decision:
    reason: str
    returned_code: int | None = None
    staff_id: int | None = None
    phones: tuple[str, ...] = ()
    case_id: int | None = None
    # Candidates passed over and why ("busy", "offline", "inactive", "no_phones"), so the
    # admin can see why a caller did not reach their own agent.
    skipped: tuple[tuple[int, str], ...] = ()

    @property
    def routed(self) -> bool:
        return bool(self.phones)

    def answer(self) -> dict[str, Any]:
        """The body UIS takes: ring these phones, or go on with the scenario branch."""
        if self.phones:
            return {"phones": list(self.phones)}
        return {"returned_code": self.returned_code}


def fallback(reason: str, rules: RoutingRules | None = None, **kw: Any) -> Decision:
    """Fall through to the scenario's branch (the default one when no rules are loaded)."""
    code = (rules or RoutingRules()).fallback_code
    return Decision(reason, returned_code=code, **kw)


def _unavailable(
    staff_id: int,
    states: Mapping[int, str],
    active: frozenset[int] | set[int],
    phones: Mapping[int, tuple[str, ...]],
) -> str | None:
    """Why `staff_id` cannot take the call now, or None when they can."""
    if staff_id not in active:
        return "inactive"
    if not phones.get(staff_id):
        return "no_phones"
    state = states.get(staff_id, "offline")
    if state == "free":
        return None
    return "offline" if state == "offline" else "busy"


def decide(
    rules: RoutingRules,
    caller: Caller | None,
    states: Mapping[int, str],
    active: frozenset[int] | set[int],
    phones: Mapping[int, tuple[str, ...]],
) -> Decision:
    """Where to send a caller: the assignee of their open or waiting case when free (the most
    recently updated case first), else the staff member who last talked with them when free,
    else the scenario's fallback branch. "Free" is the wallboard's: a console connected, not
    ringing, not talking; the member must also be active and have operator phones. A rule the
    admin switched off is skipped; everything off falls through as `disabled`."""
    if not rules.enabled:
        return fallback("disabled", rules)
    if caller is None:
        return fallback("unknown_caller", rules)
    candidates: list[tuple[int, str, int | None]] = []
    if rules.open_case:
        candidates += [(c.assignee_id, "open_case_assignee", c.case_id) for c in caller.cases]
    if rules.last_talked and caller.last_talked is not None:
        candidates.append((caller.last_talked, "last_talked", None))
    if not candidates:
        return fallback("unknown_caller", rules)
    skipped: list[tuple[int, str]] = []
    for staff_id, reason, case_id in candidates:
        if any(s == staff_id for s, _ in skipped):
            continue  # asked once already (the assignee of two cases, or also last talked)
        why = _unavailable(staff_id, states, active, phones)
        if why is None:
            return Decision(
                reason,
                staff_id=staff_id,
                phones=phones[staff_id],
                case_id=case_id,
                skipped=tuple(skipped),
            )
        skipped.append((staff_id, why))
    return fallback("no_free_agent", rules, skipped=tuple(skipped))


def uis_phone(raw: str) -> str | None:
    """An operator phone as UIS takes it in `phones`: the product's digits (UIS.md "Phone
    numbers"), keeping a dial suffix UIS itself writes (`74955140578...2345`); None without
    digits."""
    main, sep, suffix = raw.partition("...")
    digits = normalize_phone(main)
    if digits is None:
        return None
    extra = "".join(ch for ch in suffix if "0" <= ch <= "9")
    return f"{digits}...{extra}" if sep and extra else digits


def staff_phones(
    operators: Iterable[tuple[int, Iterable[str] | None]],
) -> dict[int, tuple[str, ...]]:
    """Each staff member's routable phones from their operators' (staff_id, phones), in
    order, without repeats."""
    found: dict[int, dict[str, None]] = {}
    for staff_id, raw in operators:
        for phone in raw or ():
            if (number := uis_phone(phone)) is not None:
                found.setdefault(staff_id, {})[number] = None
    return {staff_id: tuple(numbers) for staff_id, numbers in found.items() if numbers}


@dataclass(slots=True)
class Affinity:
    """Callers' digits → their open or waiting cases' assignees and the staff member who last
    talked with them. A number belongs to the oldest user having it, as a call's case does
    (`directory.find_user_by_phone`)."""

    cases: dict[int, tuple[int, int, float]] = field(default_factory=dict)  # case → user, staff
    user_cases: dict[int, set[int]] = field(default_factory=dict)
    phone_users: dict[str, dict[int, tuple[float, int]]] = field(default_factory=dict)
    user_phones: dict[int, set[str]] = field(default_factory=dict)
    talked: dict[str, tuple[float, int]] = field(default_factory=dict)  # digits → (at, staff)

    def set_case(
        self, case_id: int, user_id: int | None, assignee_id: int | None, status: str, at: float
    ) -> None:
        """A case as it is now: kept while open or waiting with a user and an assignee."""
        old = self.cases.pop(case_id, None)
        if old is not None:
            self.user_cases.get(old[0], set()).discard(case_id)
        if user_id is None or assignee_id is None or status not in ACTIVE_CASE:
            return
        self.cases[case_id] = (user_id, assignee_id, at)
        self.user_cases.setdefault(user_id, set()).add(case_id)

    def add_phone(self, user_id: int, digits: str, created: float) -> None:
        """A user has this number (`created`: the user's creation, to find the oldest)."""
        self.phone_users.setdefault(digits, {})[user_id] = (created, user_id)
        self.user_phones.setdefault(user_id, set()).add(digits)

    def talk(self, digits: str, staff_id: int, at: float) -> None:
        """`staff_id` talked with this number at `at`; an older talk never replaces a newer."""
        if (before := self.talked.get(digits)) is None or at >= before[0]:
            self.talked[digits] = (at, staff_id)

    def caller(self, raw: str | None) -> Caller | None:
        """What the index knows of a calling number; None for an unknown or hidden one."""
        digits = normalize_phone(raw)
        if digits is None:
            return None
        cases: tuple[CaseLink, ...] = ()
        if users := self.phone_users.get(digits):
            _, user_id = min(users.values())
            links = [
                CaseLink(case_id, row[1], row[2])
                for case_id in self.user_cases.get(user_id, ())
                if (row := self.cases.get(case_id)) is not None
            ]
            cases = tuple(sorted(links, key=lambda c: (-c.updated, -c.case_id)))
        talk = self.talked.get(digits)
        if not cases and talk is None:
            return None
        return Caller(cases, talk[1] if talk else None)

    def tracked_users(self) -> set[int]:
        return set(self.user_cases)

    def __len__(self) -> int:
        return len(self.phone_users.keys() | self.talked.keys())


def reached(routed_to: int, talked: Iterable[int]) -> bool:
    """A routed caller reached their own agent when that staff member talked in the call."""
    return routed_to in set(talked)


def tally(
    routed: Iterable[tuple[int, int]], talked: Mapping[int, Iterable[int]]
) -> dict[int, list[int]]:
    """staff → [calls routed to them, of which they answered], from (call, staff) routings
    and each finished call's talking staff. A call routed twice (UIS asked again) counts once,
    for the staff member it was routed to last."""
    last: dict[int, int] = {}
    for call_id, staff_id in routed:
        last[call_id] = staff_id
    counts: dict[int, list[int]] = {}
    for call_id, staff_id in last.items():
        row = counts.setdefault(staff_id, [0, 0])
        row[0] += 1
        row[1] += reached(staff_id, talked.get(call_id, ()))
    return counts
