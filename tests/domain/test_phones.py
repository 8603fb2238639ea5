"""Phone numbers normalised for matching (UIS.md "Phone numbers"; R5, R7, R16 match on them)."""

from __future__ import annotations

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from callrouter.domain.phones import dial_digits, normalize_phone


@pytest.mark.parametrize(
    ("raw", "expected"),
    [
        ("79260000000", "79260000000"),  # what UIS sends: E.164 digits without "+"
        ("+7 (926) 000-00-00", "79260000000"),
        ("89260000000", "79260000000"),  # Russian trunk prefix 8
        ("8 (495) 514-05-78", "74955140578"),
        ("9260000000", "79260000000"),  # a mobile number typed without the country code
        ("74955140578...2345", "74955140578"),  # dial suffix: the extension dialled after it
        ("84955140578...2345", "74955140578"),
        ("2345", "2345"),  # SIP/extension numbers stay as they are
        ("4955140578", "4955140578"),  # 10 digits not starting with 9: not guessed at
        ("380441234567", "380441234567"),  # foreign numbers untouched
        (" 7926 000 00 00 ", "79260000000"),
    ],
)
def test_normalize_phone(raw: str, expected: str) -> None:
    assert normalize_phone(raw) == expected


@pytest.mark.parametrize("raw", [None, "", "   ", "...", "...2345", "anonymous", "٧٩٢٦"])
def test_normalize_phone_without_digits_is_none(raw: str | None) -> None:
    """No ASCII digits before the dial suffix: nothing to match on."""
    assert normalize_phone(raw) is None


@settings(max_examples=300)
@given(st.text())
def test_normalize_phone_gives_ascii_digits_and_is_idempotent(raw: str) -> None:
    normal = normalize_phone(raw)
    assert normal is None or (normal.isascii() and normal.isdigit())
    assert normalize_phone(normal) == normal


@pytest.mark.parametrize(
    ("raw", "expected"),
    [
        ("+7 916 123-45-67", "79161234567"),  # as typed in a profile
        ("8 (916) 123-45-67", "79161234567"),
        ("9161234567", "79161234567"),
        ("79161234567", "79161234567"),  # what UIS.md's `contact` looks like
        ("74955140578...2345", "74955140578"),
        ("+380 44 123 45 67", "380441234567"),
    ],
)
def test_dial_digits_are_what_the_call_api_takes_as_contact(raw: str, expected: str) -> None:
    """R18, UIS.md `start.employee_call`: `contact` is digits only, in the form UIS sends
    numbers in, so a call back to a user is matched like their calls in (R5)."""
    assert dial_digits(raw) == expected
    assert dial_digits(raw) == normalize_phone(raw)


@pytest.mark.parametrize("raw", ["", "  ", "anonymous", "+", "...2345", "доб. —"])
def test_dial_digits_of_a_number_without_digits_is_none(raw: str) -> None:
    assert dial_digits(raw) is None
