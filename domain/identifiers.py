"""The identifiers customers and the shop give us, each read by one parser: e-mail
addresses, order numbers, serial numbers, phone numbers and the service centre's ticket
ids."""

from __future__ import annotations

import re

# name@domain.tld; `\w` takes accented and non-Latin letters, as mail servers do.
EMAIL = re.compile(r"[\w.%+'\-]{1,64}@(?:[\w\-]+\.)+[\w\-]{2,}")
# RFC 5321: no mail server takes a longer address.
MAX_EMAIL = 254
ORDER_NUMBER = re.compile(r"[A-Za-z0-9_/#.-]{1,40}")
SERIAL = re.compile(r"[A-Z0-9-]{4,40}")
# "SN: JYZZ…", "S/N JYZZ…" as copied from a label; an SN may itself start with "SN".
_SERIAL_LABEL = re.compile(r"^\s*S/?N\s*[:#]\s*|^\s*S/?N\s+", re.IGNORECASE)
SERVICE_TICKET_ID = re.compile(r"[A-Z0-9][A-Z0-9/_.-]{2,39}")
# E.164: a country code (never starting with 0) and the number, 15 digits at most.
E164 = re.compile(r"\+[1-9][0-9]{6,14}")
# What people write between a phone number's digits: spaces, dashes, brackets.
_PHONE_SEPARATORS = re.compile(r"[\s\-\u2010-\u2015()\[\]]+")


def email_address(text: str) -> str | None:
    """The address, trimmed, when `text` is exactly one e-mail address."""
    address = text.strip()
    return address if len(address) <= MAX_EMAIL and EMAIL.fullmatch(address) else None


def order_lookup(text: str) -> str | None:
    """An order number (or serial number) as typed, "#" dropped; None when the text is not
    a short code worth a look-up."""
    lookup = text.strip().removeprefix("#").strip()
    return lookup if ORDER_NUMBER.fullmatch(lookup) else None


def serial_number(text: str) -> str | None:
    """A serial number in its canonical form (upper case, no spaces, a label's "SN:"
    dropped), or None when `text` cannot be one."""
    serial = "".join(_SERIAL_LABEL.sub("", text).split()).upper()
    return serial if SERIAL.fullmatch(serial) else None


def service_ticket_id(text: str) -> str | None:
    """The service centre's repair ticket id as typed ("#rt-2291" -> "RT-2291")."""
    ticket = "".join(text.split()).upper().removeprefix("#")
    return ticket if SERVICE_TICKET_ID.fullmatch(ticket) else None


def e164_phone(text: str) -> str | None:
    """A phone number as written ("+7 (701) 123-45-67", "0049 30 1234567") in E.164
    ("+77011234567"); None without an international prefix (+ or 00) or with anything but
    digits, spaces, dashes and brackets: a national number's country is a guess, and a
    wrong guess could match a stranger's number."""
    # "+44 (0)20 …": the trunk prefix a caller inside the country dials, not part of E.164.
    compact = _PHONE_SEPARATORS.sub("", text.replace("(0)", ""))
    if compact.startswith("00"):
        compact = "+" + compact[2:]
    return compact if E164.fullmatch(compact) else None
