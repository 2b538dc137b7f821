"""Masking personal data for messages and logs: enough to recognise, not enough to misuse."""

from __future__ import annotations

import re

_EMAIL = re.compile(r"[A-Za-z0-9._%+\-]+@[A-Za-z0-9.\-]+\.[A-Za-z]{2,}")


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


def mask_emails_in(text: str) -> str:
    """Every e-mail address in free text masked, for logs of what customers typed."""
    return _EMAIL.sub(lambda match: mask_email(match.group()), text)
