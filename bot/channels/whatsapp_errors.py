"""The Cloud API's error codes as delivery failures: one table for errors a call answers with
and for errors a `failed` status reports later (Meta uses either, sometimes both).

Meta asks apps to key on `code`, never on titles or texts, so only codes decide here; the
reason kept with a failed message is Meta's title and details (phone numbers masked).
"""

from __future__ import annotations

import random
import re

from bot.delivery import DeliveryError, RetryAfter, TemporaryFailure, Undeliverable

# The customer's last message is more than 24 hours old: only a template may go out.
OUTSIDE_WINDOW = 131047
ACCESS_TOKEN_INVALID = 190
# Sent too fast: the account's throughput (about 80 messages a second by default), the pair
# rate to one customer (about one message every 6 seconds, after a short burst), and the
# Graph API's own call limits. Meta names no time to wait: these are the waits.
RATE_LIMITS: dict[int, float] = {
    130429: 2.0,  # Cloud API throughput reached
    131056: 6.0,  # (business, customer) pair rate limit
    80007: 60.0,  # WhatsApp Business Account rate limit
    4: 60.0,  # application request limit
    613: 60.0,  # calls to this API exceeded the rate limit
}
# Meta's side failed or is overloaded: the same call may well work a little later.
TEMPORARY = frozenset({1, 2, 131000, 131016})
HTTP_TOO_MANY_REQUESTS = 429
DEFAULT_RATE_LIMIT_SECONDS = 5.0

_LONG_NUMBER = re.compile(r"\+?\d[\d ()-]{5,}\d")


class OutsideWindow(Undeliverable):
    """Error 131047: the 24-hour customer-service window is closed; a template may go out."""


class TokenRejected(Undeliverable):
    """Error 190: the access token is invalid or expired; nothing will go out until an
    operator sets a new one."""


def mask(number: str) -> str:
    """A phone number or WhatsApp id as logs show it: its last four digits only."""
    digits = re.sub(r"\D", "", number)
    return "…" + digits[-4:] if len(digits) > 4 else "…"


def mask_numbers(text: str) -> str:
    """`text` with every phone-number-like run of digits masked to its last four."""
    return _LONG_NUMBER.sub(lambda match: mask(match.group()), text)


def delivery_error(code: int | None, http_status: int, reason: str) -> DeliveryError:
    """The delivery failure for an error `code` (None: no Graph error, e.g. a network
    failure or a proxy's page) that came with `http_status` (0: no answer at all)."""
    reason = mask_numbers(reason)
    if code == OUTSIDE_WINDOW:
        return OutsideWindow(reason)
    if code == ACCESS_TOKEN_INVALID:
        return TokenRejected(reason)
    if code in RATE_LIMITS or (code is None and http_status == HTTP_TOO_MANY_REQUESTS):
        base = RATE_LIMITS.get(code or 0, DEFAULT_RATE_LIMIT_SECONDS)
        # Jitter, so that chats throttled together do not all come back together.
        return RetryAfter(base * random.uniform(1.0, 1.5), reason)
    if code in TEMPORARY or http_status == 0 or http_status >= 500:
        return TemporaryFailure(reason)
    return Undeliverable(reason)


def describe(code: int | None, title: str, details: str = "") -> str:
    """Meta's words for an error, as kept with a failed message: "title: details (#code)"."""
    words = title.strip() or "error"
    if details.strip() and details.strip() != words:
        words = f"{words}: {details.strip()}"
    return f"{words} (#{code})" if code is not None else words
