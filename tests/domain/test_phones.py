"""Phone numbers normalised for matching (UIS.md "Phone numbers"; R5, R7, R16 match on them)."""

from __future__ import annotations

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from callrouter.domain.phones import normalize_phone


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
