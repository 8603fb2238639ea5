"""Which staff member a UIS employee probably is (issue 11, "Import operators"): pure.

By email first (compared without regard to case or surrounding spaces), then by full name
normalised: case, «ё», punctuation and spacing ignored, and the order of the words too, since
UIS accounts often write «Смирнова Анна» where the staff list has «Анна Смирнова». A name two
staff members share proposes nobody: the admin picks. Only active staff are proposed.
"""

from __future__ import annotations

import re
from collections.abc import Iterable
from dataclasses import dataclass
from typing import Literal

Reason = Literal["email", "name"]

_WORD = re.compile(r"[^\W_]+")


@dataclass(frozen=True, slots=True)
class StaffRef:
    id: int
    full_name: str
    email: str
    active: bool = True


@dataclass(frozen=True, slots=True)
class Proposal:
    staff_id: int
    reason: Reason


def email_key(email: str | None) -> str | None:
    """An email as compared: stripped, case-folded; None when empty."""
    key = (email or "").strip().casefold()
    return key or None


def name_key(full_name: str | None) -> str | None:
    """A full name as compared: its words case-folded, «ё» as «е», in sorted order."""
    words = _WORD.findall((full_name or "").casefold().replace("ё", "е"))
    return " ".join(sorted(words)) or None


class Matcher:
    """Proposals against one staff list, built once for all the employees."""

    def __init__(self, staff: Iterable[StaffRef]) -> None:
        self._by_email: dict[str, int] = {}
        self._by_name: dict[str, int | None] = {}  # None: more than one member has the name
        for member in sorted(staff, key=lambda s: s.id):
            if not member.active:
                continue
            email = email_key(member.email)
            if email is not None:
                self._by_email.setdefault(email, member.id)
            name = name_key(member.full_name)
            if name is not None:
                self._by_name[name] = None if name in self._by_name else member.id

    def propose(self, full_name: str | None, email: str | None) -> Proposal | None:
        """The staff member an employee with this name and email probably is, and why."""
        by_email = self._by_email.get(email_key(email) or "")
        if by_email is not None:
            return Proposal(by_email, "email")
        by_name = self._by_name.get(name_key(full_name) or "")
        return Proposal(by_name, "name") if by_name is not None else None
