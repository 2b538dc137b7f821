"""Phone numbers as the shop writes them, read into E.164 once."""

from __future__ import annotations

import pytest

from domain.identifiers import e164_phone


@pytest.mark.parametrize(
    ("written", "e164"),
    [
        ("+7 (701) 123-45-67", "+77011234567"),
        ("+1 555-123-4567", "+15551234567"),
        ("0049 30 1234567", "+49301234567"),
        ("00 7 701 123 45 67", "+77011234567"),
        ("+44 (0)20 7946 0958", "+442079460958"),
        ("+971\u201050\u20101234567", "+971501234567"),
        ("  +15551234567  ", "+15551234567"),
        ("[+86] 138 0013 8000", "+8613800138000"),
    ],
)
def test_numbers_with_an_international_prefix_are_read(written: str, e164: str) -> None:
    assert e164_phone(written) == e164


@pytest.mark.parametrize(
    "written",
    [
        "",
        "15551234567",  # no prefix: which country is a guess
        "8 (701) 123-45-67",  # a national trunk prefix
        "030 1234567",
        "+0 555 1234567",  # no country code starts with 0
        "000 555 1234567",
        "+1 555 12",  # too short: E.164 numbers have 7 digits at least
        "+1234567890123456",  # 16 digits: longer than E.164 allows
        "+1 555 123 4567 ext. 12",
        "+1.555.123.4567",
        "+1 555 CALL NOW",
        "++15551234567",
        "+١٥٥٥١٢٣٤٥٦٧",  # Arabic-Indic digits
    ],
)
def test_numbers_that_cannot_be_read_give_none(written: str) -> None:
    assert e164_phone(written) is None
