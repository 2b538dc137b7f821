"""What the warranty of a verified order covers, written for the customer.

The rules (180 days from shipment, none for used or refurbished machines, 30 days for a
repaired part) live in `domain.warranty`; this module only words them. The repair
flow reuses `warranty_lines` for its pre-check.
"""

from __future__ import annotations

from collections.abc import Mapping
from datetime import date

from markupsafe import Markup

from domain.orders import Order, OrderItem, OrderRules, Repair
from domain.warranty import Coverage, Warranty, machine_warranty, repair_warranty
from handlers.i18n import Translate, format_date

# The manufacturer's look-up page is configured per brand; customers and shops spell
# brands many ways, so a brand matches a key found anywhere in "brand model".
_BRAND_ALIASES = {"microbt": "whatsminer", "canaan": "avalon", "antminer": "bitmain"}


def warranty_card(
    _: Translate,
    language: str,
    order: Order,
    today: date,
    rules: OrderRules,
    contacts: Mapping[str, str],
    serial: str | None = None,
) -> Markup:
    """The warranty of each item of the order (only the one with `serial`, when given)."""
    items = [item for item in order.items if serial is None or _carries(item, serial)]
    # Plain strings in a message's lines are text: joining them escapes them.
    lines: list[str] = [_("🛡 <b>Warranty for order {number}</b>").format(number=order.number)]
    for item in items or order.items:
        lines.append("")
        lines += warranty_lines(_, language, order, item, today, rules, contacts)
    lines += [
        "",
        _(
            "The warranty is void if the warranty label or serial number is torn or removed, "
            "after unauthorized disassembly, after damage from a wrong voltage or other "
            "misuse, after modifications (cooling, fans, heat sinks, power cables), or if the "
            "serial number on the case was changed. Damage found on arrival must be reported "
            "within 24 hours."
        ),
        _("Shipping and customs costs of a return are paid by the customer."),
    ]
    return Markup("\n").join(lines)


def warranty_lines(
    _: Translate,
    language: str,
    order: Order,
    item: OrderItem,
    today: date,
    rules: OrderRules,
    contacts: Mapping[str, str],
) -> list[Markup]:
    """One item: our warranty, its repaired parts, and where to check the manufacturer's."""
    title = Markup("<b>{}</b>").format(item.title)
    if item.serials:
        title += Markup(" (SN {})").format(", ".join(item.serials))
    lines = [title, machine_sentence(_, language, machine_warranty(order, item, today, rules))]
    for repair in item.repairs:
        lines.append(repair_sentence(_, language, repair, repair_warranty(repair, today, rules)))
    url = manufacturer_url(item, contacts)
    if url:
        lines.append(
            _("Manufacturer's warranty: check it with the serial number at {url}").format(url=url)
        )
    else:
        lines.append(
            _("Manufacturer's warranty: write to {email} with the serial number.").format(
                email=contacts.get("support_email", "")
            )
        )
    return lines


def machine_sentence(_: Translate, language: str, warranty: Warranty) -> Markup:
    match warranty.coverage:
        case Coverage.ACTIVE:
            assert warranty.ends_on
            assert warranty.starts_on
            return _(
                "✅ In warranty until {end} ({days} days left), counted from shipment on {start}."
            ).format(
                end=format_date(warranty.ends_on, language),
                days=warranty.days_left,
                start=format_date(warranty.starts_on, language),
            )
        case Coverage.EXPIRED:
            assert warranty.ends_on
            assert warranty.starts_on
            return _(
                "⌛ The warranty ended on {end} (counted from shipment on {start}). Repairs are "
                "still possible at the customer's cost."
            ).format(
                end=format_date(warranty.ends_on, language),
                start=format_date(warranty.starts_on, language),
            )
        case Coverage.NONE:
            return _("ℹ️ Used and refurbished machines come without warranty.")
        case Coverage.NOT_STARTED:
            return _("🕓 Not shipped yet: the warranty starts on the day it ships.")
        case _:
            return _("❔ Our records do not show this machine's warranty; a sales rep can check.")


def repair_sentence(_: Translate, language: str, repair: Repair, warranty: Warranty) -> Markup:
    assert warranty.ends_on
    values = {
        "part": repair.part,
        "shipped": format_date(repair.shipped_on, language),
        "end": format_date(warranty.ends_on, language),
        "days": warranty.days_left,
    }
    if warranty.coverage is Coverage.ACTIVE:
        return _(
            "🔧 Repaired {part} (sent back {shipped}): covered until {end} ({days} days left)."
        ).format(**values)
    return _("🔧 Repaired {part} (sent back {shipped}): its cover ended on {end}.").format(**values)


def manufacturer_url(item: OrderItem, contacts: Mapping[str, str]) -> str | None:
    """The configured warranty look-up page for the item's brand, if any."""
    words = f"{item.brand} {item.model}".lower()
    for alias, brand in _BRAND_ALIASES.items():
        words = words.replace(alias, brand)
    for key, url in contacts.items():
        if key.startswith("warranty_url_") and key.removeprefix("warranty_url_") in words:
            return url
    return None


def _carries(item: OrderItem, serial: str) -> bool:
    return serial.upper() in (s.upper() for s in item.serials)
