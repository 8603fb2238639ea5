"""Phone numbers reduced to digits (UIS.md "Phone numbers"), for matching and for dialling.

The digits are for comparing numbers and for what the Call API dials; everything shown to
people keeps the number as UIS sent it or as it was typed.
"""

from __future__ import annotations

import re

# ASCII only: `\D` would keep Arabic-Indic and other Unicode digits, which no dialler sends.
_NON_DIGITS = re.compile(r"[^0-9]")


def normalize_phone(raw: str | None) -> str | None:
    """The digits of `raw` for matching, or None when it has none.

    "74955140578...2345" (a number plus the extension UIS dialled after it) is "74955140578";
    "+7 (926) 000-00-00" and "89260000000" are "79260000000"; a 10-digit "926…" gets the 7.
    Short SIP/extension numbers stay as they are ("2345").
    """
    if raw is None:
        return None
    digits = _NON_DIGITS.sub("", raw.split("...", 1)[0])
    # Russian numbers: a trunk prefix 8 means country code 7, and a bare 10-digit mobile
    # number (9xx…) lacks it; both must match the E.164 digits UIS sends.
    if len(digits) == 11 and digits.startswith("8"):
        digits = "7" + digits[1:]
    elif len(digits) == 10 and digits.startswith("9"):
        digits = "7" + digits
    return digits or None


def dial_digits(raw: str) -> str | None:
    """The number as the Call API takes it in `start.employee_call`'s `contact` (UIS.md: digits
    only, "79161234567"), or None when `raw` has no digits to dial.

    These are the digits `normalize_phone` matches on, which is the form UIS itself sends
    numbers in: a profile's "+7 916 123-45-67" is dialled as "79161234567", and the call that
    results is matched back to the same user (R5).
    """
    return normalize_phone(raw)


def known_number(raw: str | None) -> str | None:
    """The number as UIS sent it when it is one; None for a hidden or SIP caller ("anonymous",
    "+", "sip:operator@pbx"): such a call is handled as one from an unknown number (R5, R15)."""
    return raw if normalize_phone(raw) is not None else None


def caller_key(raw: str | None, call_session_id: int) -> str:
    """Whose calls these are, for ordering and grouping (R16): the number's digits, or the call
    itself when the number is unknown, so two hidden callers are never taken for one."""
    return normalize_phone(raw) or f"call:{call_session_id}"
