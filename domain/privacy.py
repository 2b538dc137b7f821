"""Masking personal data for messages and logs: enough to recognise, not enough to misuse."""

from __future__ import annotations

import re

from domain.identifiers import EMAIL

# Phone numbers have 7 to 15 digits (E.164); other numbers from 6 digits on are order,
# account or card numbers. Shorter ones (quantities, hashrates, prices, years) stay.
PHONE_DIGITS = range(7, 16)
LONG_NUMBER_DIGITS = 6
PHONE = "[phone]"
NUMBER = "[number]"
# A run of digits with the separators people type inside phone and card numbers, standing
# on its own: digits glued to letters ("S19j", "M50S", "3250W") are model names and specs.
_DIGIT_RUN = re.compile(r"(?<![\w+])\+?\(?\d(?:[ ().\-]{0,2}\d)*\)?(?!\w)")
# Long runs inside a word are identifiers all the same: "ORD20261123", "1Z999AA10123456784".
_LONG_DIGITS = re.compile(rf"\d{{{LONG_NUMBER_DIGITS},}}")
# Dates are not personal, and staff want them readable: 2026-11-23, 23.11.2026, 23/11/26.
_DATE = re.compile(r"\d{4}-\d{1,2}-\d{1,2}|\d{1,2}[./]\d{1,2}[./]\d{2,4}")


def mask_email(email: str) -> str:
    """ "john.doe@gmail.com" -> "j***e@g***.com": the owner recognises it, others learn little."""
    local, at, domain = email.strip().partition("@")
    if not at:
        return "***"
    host, dot, tld = domain.rpartition(".")
    if not dot:
        host, tld = domain, ""
    return f"{_mask(local)}@{_mask(host)}{dot}{tld}"


def _mask(part: str) -> str:
    if len(part) <= 2:
        return part[:1] + "***"
    return f"{part[0]}***{part[-1]}"


def mask_phone(phone: str) -> str:
    """ "+15551234567" -> "+•••••••4567": every digit but the last 4 hidden, so staff can
    match it against what the customer says without the number showing in the staff chat."""
    digits = sum(char.isdigit() for char in phone)
    seen = 0
    masked = []
    for char in phone:
        if char.isdigit():
            seen += 1
            masked.append(char if seen > digits - 4 else "•")
        else:
            masked.append(char)
    return "".join(masked)


def mask_emails_in(text: str) -> str:
    """Every e-mail address in free text masked, for logs of what customers typed."""
    return EMAIL.sub(lambda match: mask_email(match.group()), text)


def mask_personal_data(text: str) -> str:
    """Free text with e-mails masked and phone, order and card numbers replaced by
    "[phone]" / "[number]", for logs kept for months (the questions `faq gaps` reads).

    Model names and short figures stay readable: "S19j Pro", "M50S++", "110 TH/s", "2 units".
    """
    masked = _DIGIT_RUN.sub(_mask_digits, mask_emails_in(text))
    return _LONG_DIGITS.sub(NUMBER, masked)


def _mask_digits(match: re.Match[str]) -> str:
    run = match.group()
    if _DATE.fullmatch(run.strip("()")):
        return run
    digits = sum(char.isdigit() for char in run)
    looks_like_phone = run.startswith(("+", "(")) or not run.isdigit()
    if looks_like_phone and digits in PHONE_DIGITS:
        return PHONE
    if digits >= LONG_NUMBER_DIGITS:
        return NUMBER
    return run
