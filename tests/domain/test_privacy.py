"""What the question log keeps of personal data: nothing usable, while model names stay."""

from __future__ import annotations

import pytest

from domain.privacy import mask_email, mask_personal_data, mask_phone


@pytest.mark.parametrize(
    ("text", "masked"),
    [
        ("call me on +7 912 345-67-89 please", "call me on [phone] please"),
        ("my number is (555) 123-4567", "my number is [phone]"),
        ("wa 89123456789", "wa [number]"),
        ("where is order 4521987", "where is order [number]"),
        ("order #100234 not shipped", "order #[number] not shipped"),
        ("status of A-1001234", "status of A-[number]"),
        ("card 4111 1111 1111 1111 was charged twice", "card [number] was charged twice"),
        ("tracking 1Z999AA10123456784", "tracking 1Z999AA[number]"),
        ("mail me at john.doe@gmail.com", "mail me at j***e@g***l.com"),
    ],
)
def test_contact_and_identifying_numbers_are_masked(text: str, masked: str) -> None:
    assert mask_personal_data(text) == masked


@pytest.mark.parametrize(
    "text",
    [
        "is the S19j Pro 104TH in stock",
        "M50S++ or KS5 Pro, which is quieter",
        "I have 2 S19 and 3 L7 at 3250W each",
        "price for 12000 usd order",
        "paid on 2026-11-23, shipped 25.11.2026",
        "serial YNAHD4BBCJABI0B9Z",
    ],
)
def test_model_names_figures_and_dates_stay_readable(text: str) -> None:
    assert mask_personal_data(text) == text


def test_the_masked_email_is_the_one_customers_recognise() -> None:
    assert mask_personal_data("j.doe@mail.com") == mask_email("j.doe@mail.com")


@pytest.mark.parametrize(
    ("phone", "masked"),
    [("+15551234567", "+•••••••4567"), ("15551234567", "•••••••4567"), ("123", "123")],
)
def test_a_phone_number_shows_its_last_four_digits(phone: str, masked: str) -> None:
    assert mask_phone(phone) == masked
