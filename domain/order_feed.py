"""Turn the shop's order records (JSON, JSONL, CSV, API bodies) into validated `Order`s.

One set of rules, `order_from_record`; every other entry point converts its input to the
record shape and calls it, so a file import and the HTTP API can never disagree.
"""

from __future__ import annotations

import bisect
import csv
import io
import json
import re
from collections.abc import Callable, Mapping
from contextlib import suppress
from dataclasses import dataclass, field
from datetime import UTC, date, datetime
from pathlib import Path
from typing import Any, TypeVar

from domain.identifiers import MAX_EMAIL, ORDER_NUMBER, email_address, serial_number
from domain.orders import (
    Condition,
    Order,
    OrderItem,
    OrderStatus,
    Repair,
    StatusChange,
    order_to_record,
)

T = TypeVar("T")

ORDER_FIELDS = (
    "number",
    "email",
    "phone",
    "status",
    "carrier",
    "tracking_number",
    "ddp",
    "paid_on",
    "shipped_on",
    "delivered_on",
    "expected_on",
    "tracking_updated_at",
    "items",
    "history",
)
ITEM_FIELDS = ("brand", "model", "quantity", "condition", "serials", "repairs")
REPAIR_FIELDS = ("part", "shipped_on", "serial", "ticket_id")
CHANGE_FIELDS = ("status", "at")

# A CSV file has one row per item: the order's own columns repeat on each of its rows.
CSV_ORDER_COLUMNS = tuple(name for name in ORDER_FIELDS if name not in ("items", "history"))
CSV_ITEM_COLUMNS = ("brand", "model", "quantity", "condition", "serials")
CSV_COLUMNS = CSV_ORDER_COLUMNS + CSV_ITEM_COLUMNS
CSV_REQUIRED = ("number", "email", "status", "brand", "model")

# Bounds on what the shop sends: far above any real order, yet low enough that a card
# stays one message and a value in the wrong column is caught.
MAX_NAME = 80  # brand, model, carrier, repaired part
MAX_CODE = 64  # tracking number, a repaired part's serial, the service centre's ticket id
MAX_PHONE = 32  # E.164 has at most 15 digits; room for spaces, brackets and an extension
# The biggest real orders are a few thousand machines (10,000 S21s draw some 35 MW); a bigger
# figure is a serial number, a price or a phone number in the wrong column.
MAX_QUANTITY = 10_000
MAX_ITEMS = 100  # an item is one model in one condition
MAX_SERIALS = MAX_QUANTITY  # one per machine
MAX_REPAIRS = 100  # per item
MAX_HISTORY = 100  # status changes; an order goes through five or six
# An order nests 5 levels (order, items, item, repairs, repair); the slack lets a wrong shape
# still get its field's message. Deeper JSON is never decoded: Python's decoder recurses.
ORDER_DEPTH, MAX_DEPTH = 5, 10
# Numbers travel in button payloads ("orders:warranty:<number>"), capped at 64 bytes.
SERIAL_SEPARATORS = re.compile(r"[\s,;]+")
ISO_DATE = re.compile(r"\d{4}-\d{2}-\d{2}")
STATUS_ALIASES = {"preorder": OrderStatus.PRE_ORDER, "canceled": OrderStatus.CANCELLED}
YES = frozenset({"true", "yes", "1"})
NO = frozenset({"false", "no", "0"})


class RecordInvalid(ValueError):
    """A record that cannot become an order; `problems` are (field, message) pairs, all of them."""

    def __init__(self, problems: list[tuple[str, str]]) -> None:
        self.problems = problems
        super().__init__("; ".join(f"{name}: {message}" for name, message in problems))


class OrdersFileError(ValueError):
    """An orders file that cannot be read at all; the message names the file (and line)."""


class NestedTooDeep(ValueError):
    """JSON nested deeper than MAX_DEPTH; `end` is where the value ends, so reading goes on."""

    def __init__(self, end: int) -> None:
        self.end = end
        super().__init__(f"nested deeper than {MAX_DEPTH} levels (an order has {ORDER_DEPTH})")


@dataclass(frozen=True)
class FileProblem:
    """A record of an orders file that was not imported, located for whoever fixes the file."""

    line: int
    message: str

    def __str__(self) -> str:
        return f"line {self.line}: {self.message}"


@dataclass(frozen=True)
class FileOrders:
    """What a file held: the good orders with their starting lines, and what was skipped."""

    orders: list[tuple[int, Order]]
    problems: list[FileProblem]


# --- one record -------------------------------------------------------------------------


def order_from_record(record: Mapping[str, Any]) -> Order:
    """The order a record describes; raise RecordInvalid listing every problem at once."""
    if not isinstance(record, Mapping):
        message = f"expected an object with the order's fields, got {_show(record)}"
        raise RecordInvalid([("record", message)])
    problems: list[tuple[str, str]] = []
    fields = _Fields(record, "", ORDER_FIELDS, problems)
    number = fields.get("number", _order_number, required=True)
    email = fields.get("email", _email, required=True)
    status = fields.get("status", _status, required=True)
    items = fields.each("items", ITEM_FIELDS, _item, MAX_ITEMS, required=True)
    if items == ():
        fields.problem("items", "at least one item is required")
    paid_on = fields.get("paid_on", _date)
    shipped_on = fields.get("shipped_on", _date)
    delivered_on = fields.get("delivered_on", _date)
    if paid_on and shipped_on and shipped_on < paid_on:
        fields.problem("shipped_on", f"{shipped_on} is before paid_on ({paid_on})")
    if shipped_on and delivered_on and delivered_on < shipped_on:
        fields.problem("delivered_on", f"{delivered_on} is before shipped_on ({shipped_on})")
    phone = fields.get("phone", _phone)
    carrier = fields.get("carrier", _name)
    tracking_number = fields.get("tracking_number", _code)
    ddp = fields.get("ddp", _yes_no)
    expected_on = fields.get("expected_on", _date)
    tracking_updated_at = fields.get("tracking_updated_at", _moment)
    history = fields.each("history", CHANGE_FIELDS, _change, MAX_HISTORY)
    if problems or number is None or email is None or status is None or not items:
        raise RecordInvalid(problems)
    return Order(
        number,
        email,
        status,
        items,
        phone=phone,
        carrier=carrier,
        tracking_number=tracking_number,
        ddp=bool(ddp),
        paid_on=paid_on,
        shipped_on=shipped_on,
        delivered_on=delivered_on,
        expected_on=expected_on,
        tracking_updated_at=tracking_updated_at,
        history=history or (),
    )


def apply_patch(order: Order, patch: Mapping[str, Any]) -> Order:
    """The order with a PATCH body applied, checked by the same rules as a whole record."""
    problems: list[tuple[str, str]] = []
    if "number" in patch and _stripped(patch["number"]) != order.number:
        problems.append(("number", "cannot be changed"))
    record = {**order_to_record(order), **patch, "number": order.number}
    try:
        patched = order_from_record(record)
    except RecordInvalid as exc:
        raise RecordInvalid(problems + exc.problems) from exc
    if patched.history != order.history:
        problems.append(("history", "cannot be changed (the store records status changes)"))
    if problems:
        raise RecordInvalid(problems)
    return patched


class _Fields:
    """One mapping of a record being read; problems are noted under their path, not raised."""

    def __init__(
        self,
        data: Mapping[str, Any],
        where: str,
        allowed: tuple[str, ...],
        problems: list[tuple[str, str]],
    ) -> None:
        self.data = data
        self.where = where
        self.problems = problems
        self.start = len(problems)
        for key in data:
            if key not in allowed:
                expected = ", ".join(allowed)
                self.problem(_shortened(str(key)), f"unknown field (expected one of {expected})")

    @property
    def failed(self) -> bool:
        return len(self.problems) > self.start

    def problem(self, key: str, message: str) -> None:
        self.problems.append((self.where + key, message))

    def get(self, key: str, convert: Callable[[Any], T], *, required: bool = False) -> T | None:
        """The converted value at `key`; None when absent, blank or wrong (wrong is noted)."""
        value = self.data.get(key)
        if isinstance(value, str):
            value = value.strip()
        if value is None or value == "":
            if required:
                self.problem(key, "required")
            return None
        try:
            return convert(value)
        except _Bad as exc:
            self.problem(key, str(exc))
            return None

    def each(
        self,
        key: str,
        allowed: tuple[str, ...],
        parse: Callable[[_Fields], T | None],
        limit: int,
        *,
        required: bool = False,
    ) -> tuple[T, ...] | None:
        """Each object of the list at `key` (at most `limit`), parsed; None when absent or
        any of them is wrong."""
        values = self.get(key, lambda value: _list(value, limit), required=required)
        if values is None:
            return None
        parsed = []
        for index, value in enumerate(values):
            where = f"{self.where}{key}[{index}]"
            if isinstance(value, Mapping):
                result = parse(_Fields(value, where + ".", allowed, self.problems))
                if result is not None:
                    parsed.append(result)
            else:
                expected = ", ".join(allowed)
                self.problems.append(
                    (where, f"expected an object with {expected}, got {_show(value)}")
                )
        return tuple(parsed) if len(parsed) == len(values) else None


def _item(fields: _Fields) -> OrderItem | None:
    brand = fields.get("brand", _name, required=True)
    model = fields.get("model", _name, required=True)
    quantity = fields.get("quantity", _quantity)
    condition = fields.get("condition", _condition)
    serials = fields.get("serials", _serials)
    repairs = fields.each("repairs", REPAIR_FIELDS, _repair, MAX_REPAIRS)
    if fields.failed or brand is None or model is None:
        return None
    return OrderItem(
        brand, model, quantity or 1, condition or Condition.NEW, serials or (), repairs or ()
    )


def _repair(fields: _Fields) -> Repair | None:
    part = fields.get("part", _name, required=True)
    shipped_on = fields.get("shipped_on", _date, required=True)
    serial = fields.get("serial", _code)
    ticket_id = fields.get("ticket_id", _code)
    if fields.failed or part is None or shipped_on is None:
        return None
    return Repair(part, shipped_on, serial, ticket_id)


def _change(fields: _Fields) -> StatusChange | None:
    status = fields.get("status", _status, required=True)
    at = fields.get("at", _moment, required=True)
    if fields.failed or status is None or at is None:
        return None
    return StatusChange(status, at)


class _Bad(Exception):
    """A value a converter rejects; the message says what was expected."""


def _short_text(value: Any, limit: int) -> str:
    if not isinstance(value, str):
        raise _Bad(f"expected text, got {_show(value)}")
    if len(value) > limit:
        raise _Bad(f"longer than {limit} characters ({len(value)})")
    return value


def _name(value: Any) -> str:
    return _short_text(value, MAX_NAME)


def _code(value: Any) -> str:
    return _short_text(value, MAX_CODE)


def _phone(value: Any) -> str:
    return _short_text(value, MAX_PHONE)


def _order_number(value: Any) -> str:
    if not (isinstance(value, str) and ORDER_NUMBER.fullmatch(value)):
        raise _Bad(
            f"{_show(value)} is not an order number (expected 1-40 letters, digits and - _ / # .)"
        )
    return value


def _email(value: Any) -> str:
    if not (isinstance(value, str) and email_address(value) == value):
        raise _Bad(
            f"{_show(value)} is not an email address "
            f"(expected name@domain.tld, at most {MAX_EMAIL} characters)"
        )
    return value


def _status(value: Any) -> OrderStatus:
    if isinstance(value, str):
        key = re.sub(r"[\s-]+", "_", value.strip().lower())
        if key in STATUS_ALIASES:
            return STATUS_ALIASES[key]
        with suppress(ValueError):
            return OrderStatus(key)
    expected = ", ".join(status.value for status in OrderStatus)
    raise _Bad(f"{_show(value)} is not a status (expected one of {expected})")


def _condition(value: Any) -> Condition:
    if isinstance(value, str):
        with suppress(ValueError):
            return Condition(value.lower())
    raise _Bad(f"{_show(value)} is not a condition (expected new, used or refurbished)")


def _yes_no(value: Any) -> bool:
    if isinstance(value, bool):
        return value
    answer = str(value).strip().lower() if isinstance(value, str | int) else None
    if answer in YES or answer in NO:
        return answer in YES
    raise _Bad(f"{_show(value)} is not yes or no (expected true/false, yes/no or 1/0)")


def _quantity(value: Any) -> int:
    number = value
    if isinstance(value, str) and value.isdecimal():
        # Beyond int()'s 4,300 digits a string is no quantity either.
        with suppress(ValueError):
            number = int(value)
    if isinstance(number, bool) or not isinstance(number, int) or not 1 <= number <= MAX_QUANTITY:
        raise _Bad(
            f"{_show(value)} is not a quantity (expected a whole number from 1 to {MAX_QUANTITY})"
        )
    return number


def _serials(value: Any) -> tuple[str, ...]:
    if isinstance(value, str):
        value = SERIAL_SEPARATORS.split(value)
    if not isinstance(value, list):
        raise _Bad(f"expected a list of serial numbers or one string, got {_show(value)}")
    if len(value) > MAX_SERIALS:
        raise _Bad(f"more than {MAX_SERIALS} serial numbers ({len(value)})")
    serials = []
    for serial in value:
        if isinstance(serial, str) and not serial.strip():
            continue
        cleaned = serial_number(serial) if isinstance(serial, str) else None
        if cleaned is None:
            raise _Bad(
                f"{_show(serial)} is not a serial number (expected 4-40 letters, digits and -)"
            )
        serials.append(cleaned)
    return tuple(serials)


def _date(value: Any) -> date:
    if isinstance(value, str) and ISO_DATE.fullmatch(value):
        with suppress(ValueError):
            return date.fromisoformat(value)
    raise _Bad(f"{_show(value)} is not a date (expected YYYY-MM-DD)")


def _moment(value: Any) -> datetime:
    """A tz-aware UTC datetime; the shop's naive times are taken as UTC."""
    if isinstance(value, str):
        with suppress(ValueError):
            at = datetime.fromisoformat(value)
            return at.replace(tzinfo=UTC) if at.tzinfo is None else at.astimezone(UTC)
    raise _Bad(
        f"{_show(value)} is not a date and time (expected ISO 8601, e.g. 2026-03-01T14:30:00Z)"
    )


def _list(value: Any, limit: int) -> list[Any]:
    if not isinstance(value, list):
        raise _Bad(f"expected a list, got {_show(value)}")
    if len(value) > limit:
        raise _Bad(f"more than {limit} entries ({len(value)})")
    return value


def _show(value: Any) -> str:
    """The value as the shop wrote it, cut short so one message stays one line."""
    return _shortened(repr(value))


def _shortened(text: str) -> str:
    return text if len(text) <= 60 else text[:57] + "..."


def _stripped(value: Any) -> Any:
    return value.strip() if isinstance(value, str) else value


# --- files ------------------------------------------------------------------------------


def read_orders_file(path: Path) -> FileOrders:
    """The orders of a .csv, .json, .jsonl or .ndjson file; bad records are reported, not fatal."""
    readers = {
        ".csv": _read_csv,
        ".json": _read_json,
        ".jsonl": _read_jsonl,
        ".ndjson": _read_jsonl,
    }
    read = readers.get(path.suffix.lower())
    if read is None:
        raise OrdersFileError(
            f"{path}: unknown file type {path.suffix or '(no extension)'} "
            "(expected .csv, .json, .jsonl or .ndjson)"
        )
    return read(path, _read_text(path))


def _read_text(path: Path) -> str:
    try:
        data = path.read_bytes()
    except FileNotFoundError as exc:
        raise OrdersFileError(f"{path}: no such file") from exc
    except OSError as exc:
        raise OrdersFileError(f"{path}: cannot read: {exc.strerror or exc}") from exc
    try:
        return data.decode("utf-8-sig")
    except UnicodeDecodeError as exc:
        line = data.count(b"\n", 0, exc.start) + 1
        raise OrdersFileError(f"{path}:{line}: not UTF-8 text (save the file as UTF-8)") from exc


def parse_json(text: str) -> Any:
    """The one JSON value of `text` (an API body, a JSON Lines line); raise NestedTooDeep or
    json.JSONDecodeError."""
    value, end = _json_value(text, _skip_space(text, 0))
    rest = _skip_space(text, end)
    if rest < len(text):
        raise json.JSONDecodeError("Extra data", text, rest)
    return value


# A string (its brackets are text) or a bracket; an unclosed string runs to the end.
_STRING_OR_BRACKET = re.compile(r'"[^"\\]*(?:\\.[^"\\]*)*"?|[\[\]{}]', re.DOTALL)


def _json_value(text: str, at: int) -> tuple[Any, int]:
    """The JSON value at `at` and its end; too deep a value is refused before decoding."""
    if text.startswith(("[", "{"), at):
        deepest, end = _nesting(text, at)
        if deepest > MAX_DEPTH:
            raise NestedTooDeep(end)
    return json.JSONDecoder(parse_int=_json_int).raw_decode(text, at)


def _json_int(digits: str) -> int | str:
    """The integer; past int()'s 4,300 digits, the digits themselves (no field takes them),
    so the field is named in the problem instead of the whole text failing."""
    try:
        return int(digits)
    except ValueError:
        return digits


def _nesting(text: str, at: int) -> tuple[int, int]:
    """How deep the array or object at `at` nests and where it ends (unclosed: the text's
    end), counted without recursion and without checking the rest of its syntax."""
    depth = deepest = 0
    for token in _STRING_OR_BRACKET.finditer(text, at):
        if token[0] in ("[", "{"):
            depth += 1
            deepest = max(deepest, depth)
        elif token[0] in ("]", "}"):
            depth -= 1
            if depth == 0:
                return deepest, token.end()
    return deepest, len(text)


def _read_json(path: Path, text: str) -> FileOrders:
    newlines = [match.start() for match in re.finditer("\n", text)]

    def line_at(offset: int) -> int:
        return bisect.bisect_left(newlines, offset) + 1

    try:
        start = _skip_space(text, 0)
        if start == len(text):
            raise OrdersFileError(f"{path}: empty file (expected a list of orders)")
        if text.startswith("{", start):
            # Only "orders" is read: another member may even be too deep to decode.
            members, end = _json_members(text, start)
            start = next((at for key, at, _ in members if key == "orders"), start)
        else:
            end = start
        if not text.startswith("[", start):
            raise OrdersFileError(
                f'{path}:{line_at(start)}: expected a list of orders or {{"orders": [...]}}'
            )
        records, array_end = _json_members(text, start)
        rest = _skip_space(text, max(end, array_end))
        if rest < len(text):
            raise json.JSONDecodeError("Extra data", text, rest)
    except json.JSONDecodeError as exc:
        raise OrdersFileError(
            f"{path}:{exc.lineno}: not valid JSON: {exc.msg} (column {exc.colno})"
        ) from exc
    too_deep = [
        FileProblem(line_at(at), str(record))
        for _, at, record in records
        if isinstance(record, NestedTooDeep)
    ]
    readable = [
        (line_at(at), record) for _, at, record in records if not isinstance(record, NestedTooDeep)
    ]
    return _orders_from_records(readable, too_deep)


def _json_members(text: str, start: int) -> tuple[list[tuple[str | None, int, Any]], int]:
    """Members (key, offset, value) of the JSON array/object at `start`: offsets give lines.
    A value nested too deep is its NestedTooDeep, so the members after it are still read."""
    decoder = json.JSONDecoder()
    is_object = text.startswith("{", start)
    close = "}" if is_object else "]"
    members: list[tuple[str | None, int, Any]] = []

    at = _skip_space(text, start + 1)
    if text.startswith(close, at):
        return members, at + 1
    while True:
        key = None
        if is_object:
            if not text.startswith('"', at):
                raise json.JSONDecodeError(
                    "Expecting property name enclosed in double quotes", text, at
                )
            key, at = decoder.raw_decode(text, at)
            at = _skip_space(text, at)
            if not text.startswith(":", at):
                raise json.JSONDecodeError("Expecting ':' delimiter", text, at)
            at = _skip_space(text, at + 1)
        try:
            value, end = _json_value(text, at)
        except NestedTooDeep as exc:
            value, end = exc, exc.end
        members.append((key, at, value))
        at = _skip_space(text, end)
        if text.startswith(close, at):
            return members, at + 1
        if not text.startswith(",", at):
            raise json.JSONDecodeError("Expecting ',' delimiter", text, at)
        at = _skip_space(text, at + 1)


def _skip_space(text: str, at: int) -> int:
    while at < len(text) and text[at] in " \t\n\r":
        at += 1
    return at


def _read_jsonl(path: Path, text: str) -> FileOrders:
    records: list[tuple[int, Any]] = []
    problems: list[FileProblem] = []
    # Not splitlines(): JSON strings may hold U+2028 and friends unescaped.
    for line, content in enumerate(text.split("\n"), start=1):
        if not content.strip():
            continue
        try:
            records.append((line, parse_json(content)))
        except NestedTooDeep as exc:
            problems.append(FileProblem(line, str(exc)))
        except json.JSONDecodeError as exc:
            problems.append(FileProblem(line, f"not valid JSON: {exc.msg} (column {exc.colno})"))
    return _orders_from_records(records, problems)


def _orders_from_records(records: list[tuple[int, Any]], problems: list[FileProblem]) -> FileOrders:
    """Validate each record; of two with the same number the later wins (it is the newer)."""
    next_line: dict[int, int] = {}
    last_line: dict[str, int] = {}
    for line, record in records:
        key = _number_key(record)
        if key is not None:
            if key in last_line:
                next_line[last_line[key]] = line
            last_line[key] = line
    orders: list[tuple[int, Order]] = []
    for line, record in records:
        number = _record_number(record)
        if line in next_line:
            problems.append(
                FileProblem(
                    line,
                    f"order {number} appears again on line {next_line[line]}; this one is ignored",
                )
            )
            continue
        try:
            orders.append((line, order_from_record(record)))
        except RecordInvalid as exc:
            problems.append(FileProblem(line, _about(number, str(exc))))
    return FileOrders(orders, sorted(problems, key=lambda problem: problem.line))


def _record_number(record: Any) -> str | None:
    number = record.get("number") if isinstance(record, Mapping) else None
    return (number.strip() or None) if isinstance(number, str) else None


def _number_key(record: Any) -> str | None:
    """The store matches numbers case-insensitively, so duplicates are found the same way."""
    number = _record_number(record)
    return number.casefold() if number is not None else None


def _about(number: str | None, message: str) -> str:
    return f"order {number}: {message}" if number else message


@dataclass
class _CsvOrder:
    """The rows of one order in a CSV file, and what makes it unusable."""

    first_line: int
    rows: list[tuple[int, dict[str, str]]] = field(default_factory=list)
    problems: list[FileProblem] = field(default_factory=list)


def _read_csv(path: Path, text: str) -> FileOrders:
    header_line = text.split("\n", 1)[0]
    delimiter = ";" if "," not in header_line and ";" in header_line else ","
    reader = csv.reader(io.StringIO(text, newline=""), delimiter=delimiter)
    columns = [name.strip().lower() for name in next(reader, [])]
    _check_columns(path, columns)
    groups: dict[str, _CsvOrder] = {}
    problems: list[FileProblem] = []
    while True:
        # line_num counts physical lines, so quoted multi-line cells keep lines right.
        line = reader.line_num + 1
        try:
            cells = next(reader, None)
        except csv.Error as exc:
            raise OrdersFileError(f"{path}:{line}: not valid CSV: {exc}") from exc
        if cells is None:
            break
        # A short row (trailing blank cells dropped by an editor) is fine; a long one is not.
        pairs = zip(columns, cells, strict=False)
        values = {name: cell.strip() for name, cell in pairs if cell.strip()}
        if not values:
            continue
        number = values.get("number")
        group = groups.setdefault(number.casefold() if number else f"line {line}", _CsvOrder(line))
        if len(cells) > len(columns):
            message = f"row has {len(cells)} cells but the header has {len(columns)} columns"
            group.problems.append(FileProblem(line, _about(number, message)))
            continue
        repeated = next((seen for seen, earlier in group.rows if earlier == values), None)
        if repeated is not None:
            problems.append(FileProblem(line, f"line {line} repeats line {repeated}; ignored"))
            continue
        group.rows.append((line, values))
    orders: list[tuple[int, Order]] = []
    for group in groups.values():
        order, skipped = _csv_order(group)
        if order is not None:
            orders.append((group.first_line, order))
        problems.extend(skipped)
    return FileOrders(orders, sorted(problems, key=lambda problem: problem.line))


def _check_columns(path: Path, columns: list[str]) -> None:
    unknown = [name for name in columns if name not in CSV_COLUMNS]
    if unknown:
        raise OrdersFileError(
            f"{path}:1: unknown columns {', '.join(map(repr, unknown))} "
            f"(expected: {', '.join(CSV_COLUMNS)})"
        )
    twice = sorted({name for name in columns if columns.count(name) > 1})
    if twice:
        raise OrdersFileError(f"{path}:1: columns appearing twice: {', '.join(twice)}")
    missing = [name for name in CSV_REQUIRED if name not in columns]
    if missing:
        raise OrdersFileError(
            f"{path}:1: missing columns {', '.join(missing)} "
            f"(a header row with at least {', '.join(CSV_REQUIRED)} is required)"
        )


def _csv_order(group: _CsvOrder) -> tuple[Order | None, list[FileProblem]]:
    """The order of one CSV group, or the problems (each on its row's line) that skip it."""
    problems = list(group.problems)
    record: dict[str, Any] = {}
    source: dict[str, int] = {}
    # A blank order-level cell on a later row means "same as above".
    for line, values in group.rows:
        for name in CSV_ORDER_COLUMNS:
            value = values.get(name)
            if value is None:
                continue
            if name in record and record[name] != value:
                message = (
                    f"{name} {value!r} differs from line {source[name]} ({record[name]!r}); "
                    "an order's rows must agree"
                )
                problems.append(FileProblem(line, _about(record.get("number"), message)))
            else:
                record.setdefault(name, value)
                source.setdefault(name, line)
    if problems:
        return None, problems
    record["items"] = [
        {name: values[name] for name in CSV_ITEM_COLUMNS if name in values}
        for _, values in group.rows
    ]
    try:
        return order_from_record(record), []
    except RecordInvalid as exc:
        messages: dict[int, list[str]] = {}
        for name, message in exc.problems:
            row = re.match(r"items\[(\d+)\]\.", name)
            if row:
                line, name = group.rows[int(row[1])][0], name[row.end() :]
            else:
                line = source.get(name, group.first_line)
            messages.setdefault(line, []).append(f"{name}: {message}")
        number = record.get("number")
        return None, [
            FileProblem(line, _about(number, "; ".join(found)))
            for line, found in sorted(messages.items())
        ]
