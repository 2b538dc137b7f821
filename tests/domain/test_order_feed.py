"""Order records from the shop (dicts, CSV, JSON, JSONL) into validated orders."""

from __future__ import annotations

import json
from datetime import UTC, date, datetime
from pathlib import Path
from typing import Any

import pytest

from domain.order_feed import (
    FileOrders,
    FileProblem,
    NestedTooDeep,
    OrdersFileError,
    RecordInvalid,
    apply_patch,
    order_from_record,
    parse_json,
    read_orders_file,
)
from domain.orders import (
    Condition,
    Order,
    OrderItem,
    OrderStatus,
    Repair,
    StatusChange,
    order_to_record,
)
from tests.factories import DEEP_ARRAY, DEEP_OBJECT, longest_record


def record(**changes: Any) -> dict[str, Any]:
    """A minimal valid record, with `changes` on top (None removes a key)."""
    base: dict[str, Any] = {
        "number": "A-1001",
        "email": "miner@example.com",
        "status": "paid",
        "items": [{"brand": "Bitmain", "model": "Antminer S21"}],
    }
    base.update(changes)
    return {key: value for key, value in base.items() if value is not None}


def problems_of(bad: dict[str, Any]) -> list[tuple[str, str]]:
    with pytest.raises(RecordInvalid) as caught:
        order_from_record(bad)
    return caught.value.problems


def write(tmp_path: Path, name: str, text: str, encoding: str = "utf-8") -> Path:
    path = tmp_path / name
    path.write_bytes(text.encode(encoding))
    return path


FULL = {
    "number": " #A-1001 ",
    "email": " Miner.Joe@Example.com ",
    "phone": "+49 170 1234567",
    "status": "In Transit",
    "carrier": "DHL",
    "tracking_number": "JD0146000012345",
    "ddp": "yes",
    "paid_on": "2026-01-05",
    "shipped_on": "2026-01-10",
    "delivered_on": "",
    "expected_on": None,
    "tracking_updated_at": "2026-01-12T08:30:00",
    "items": [
        {
            "brand": "Bitmain",
            "model": "Antminer S21 Pro",
            "quantity": 2,
            "condition": "Refurbished",
            "serials": "sn-0001, sn-0002",
            "repairs": [
                {"part": "hashboard", "shipped_on": "2026-01-08", "serial": "HB-77"},
            ],
        },
        {"brand": "MicroBT", "model": "Whatsminer M60S"},
    ],
    "history": [
        {"status": "paid", "at": "2026-01-05T10:00:00+01:00"},
        {"status": "in_transit", "at": "2026-01-10T09:00:00Z"},
    ],
}


# --- one record -------------------------------------------------------------------------


def test_full_record_is_normalised() -> None:
    order = order_from_record(FULL)

    assert order == Order(
        number="#A-1001",
        email="Miner.Joe@Example.com",
        status=OrderStatus.IN_TRANSIT,
        items=(
            OrderItem(
                "Bitmain",
                "Antminer S21 Pro",
                2,
                Condition.REFURBISHED,
                ("SN-0001", "SN-0002"),
                (Repair("hashboard", date(2026, 1, 8), "HB-77"),),
            ),
            OrderItem("MicroBT", "Whatsminer M60S"),
        ),
        phone="+49 170 1234567",
        carrier="DHL",
        tracking_number="JD0146000012345",
        ddp=True,
        paid_on=date(2026, 1, 5),
        shipped_on=date(2026, 1, 10),
        tracking_updated_at=datetime(2026, 1, 12, 8, 30, tzinfo=UTC),
        history=(
            StatusChange(OrderStatus.PAID, datetime(2026, 1, 5, 9, 0, tzinfo=UTC)),
            StatusChange(OrderStatus.IN_TRANSIT, datetime(2026, 1, 10, 9, 0, tzinfo=UTC)),
        ),
    )
    assert order.tracking_updated_at is not None
    assert order.tracking_updated_at.tzinfo is UTC


def test_round_trip_through_order_to_record() -> None:
    order = order_from_record(FULL)

    data = order_to_record(order)

    assert json.loads(json.dumps(data)) == data
    assert data["status"] == "in_transit"
    assert data["paid_on"] == "2026-01-05"
    assert data["delivered_on"] is None
    assert data["items"][0]["condition"] == "refurbished"
    assert data["items"][0]["serials"] == ["SN-0001", "SN-0002"]
    assert data["history"][1] == {"status": "in_transit", "at": "2026-01-10T09:00:00+00:00"}
    assert order_from_record(data) == order


def test_minimal_record_gets_defaults() -> None:
    order = order_from_record(record())

    assert order.items == (OrderItem("Bitmain", "Antminer S21", 1, Condition.NEW, (), ()),)
    assert order.ddp is False
    assert order.phone is None
    assert order.history == ()


REPAIR = {"part": "hashboard", "shipped_on": "2026-01-08"}


def repaired(**changes: str) -> dict[str, Any]:
    """Changes that give the record's item one repair, with `changes` on top."""
    return {"items": [{"brand": "Bitmain", "model": "S21", "repairs": [REPAIR | changes]}]}


@pytest.mark.parametrize(
    ("changes", "field", "message"),
    [
        (
            {"paid_on": "2026-02-30"},
            "paid_on",
            "'2026-02-30' is not a date (expected YYYY-MM-DD)",
        ),
        (
            {"expected_on": "01/03/2026"},
            "expected_on",
            "'01/03/2026' is not a date (expected YYYY-MM-DD)",
        ),
        (
            {"status": "lost"},
            "status",
            "'lost' is not a status (expected one of paid, pre_order, processing, shipped, "
            "in_transit, in_customs, delivered, cancelled, refunded)",
        ),
        (
            {"email": "miner@localhost"},
            "email",
            "'miner@localhost' is not an email address "
            "(expected name@domain.tld, at most 254 characters)",
        ),
        (
            {"number": "A 1001"},
            "number",
            "'A 1001' is not an order number (expected 1-40 letters, digits and - _ / # .)",
        ),
        (
            {"number": 1001},
            "number",
            "1001 is not an order number (expected 1-40 letters, digits and - _ / # .)",
        ),
        ({"phone": 4917012345}, "phone", "expected text, got 4917012345"),
        (
            {"ddp": "maybe"},
            "ddp",
            "'maybe' is not yes or no (expected true/false, yes/no or 1/0)",
        ),
        (
            {"tracking_updated_at": "yesterday"},
            "tracking_updated_at",
            "'yesterday' is not a date and time (expected ISO 8601, e.g. 2026-03-01T14:30:00Z)",
        ),
        (
            {"colour": "red"},
            "colour",
            "unknown field (expected one of number, email, phone, status, carrier, "
            "tracking_number, ddp, paid_on, shipped_on, delivered_on, expected_on, "
            "tracking_updated_at, items, history)",
        ),
        ({"items": []}, "items", "at least one item is required"),
        ({"items": "S21"}, "items", "expected a list, got 'S21'"),
        (
            {"items": ["S21"]},
            "items[0]",
            "expected an object with brand, model, quantity, condition, serials, repairs, "
            "got 'S21'",
        ),
        (
            {"items": [{"brand": "Bitmain", "model": "S21", "quantity": 0}]},
            "items[0].quantity",
            "0 is not a quantity (expected a whole number from 1 to 10000)",
        ),
        (
            {"items": [{"brand": "Bitmain", "model": "S21", "quantity": "two"}]},
            "items[0].quantity",
            "'two' is not a quantity (expected a whole number from 1 to 10000)",
        ),
        (
            {"items": [{"brand": "Bitmain", "model": "S21", "quantity": True}]},
            "items[0].quantity",
            "True is not a quantity (expected a whole number from 1 to 10000)",
        ),
        (
            {"items": [{"brand": "Bitmain", "model": "S21", "condition": "broken"}]},
            "items[0].condition",
            "'broken' is not a condition (expected new, used or refurbished)",
        ),
        (
            {"items": [{"brand": "Bitmain", "model": "S21", "serials": "ABCD1 X!"}]},
            "items[0].serials",
            "'X!' is not a serial number (expected 4-40 letters, digits and -)",
        ),
        (
            {"items": [{"brand": "Bitmain", "model": "S21", "serials": ["ABC"]}]},
            "items[0].serials",
            "'ABC' is not a serial number (expected 4-40 letters, digits and -)",
        ),
        (
            {"items": [{"brand": "Bitmain", "model": "x" * 81}]},
            "items[0].model",
            "longer than 80 characters (81)",
        ),
        (
            {"items": [{"brand": " ", "model": "S21"}]},
            "items[0].brand",
            "required",
        ),
        # A 900 KB carrier would split the tracking card into hundreds of messages.
        ({"carrier": "x" * 900_000}, "carrier", "longer than 80 characters (900000)"),
        ({"tracking_number": "1" * 65}, "tracking_number", "longer than 64 characters (65)"),
        ({"phone": "+1" * 17}, "phone", "longer than 32 characters (34)"),
        (
            {"email": "e" * 64 + "@" + "d" * 187 + ".com"},
            "email",
            f"'{'e' * 56}... is not an email address "
            "(expected name@domain.tld, at most 254 characters)",
        ),
        (
            {"items": [{"brand": "Bitmain", "model": "S21", "quantity": 10_001}]},
            "items[0].quantity",
            "10001 is not a quantity (expected a whole number from 1 to 10000)",
        ),
        (
            # More digits than int() reads: refused, not a crash.
            {"items": [{"brand": "Bitmain", "model": "S21", "quantity": "9" * 5000}]},
            "items[0].quantity",
            f"'{'9' * 56}... is not a quantity (expected a whole number from 1 to 10000)",
        ),
        (
            {"items": [{"brand": "Bitmain", "model": "S21"}] * 101},
            "items",
            "more than 100 entries (101)",
        ),
        (
            {"items": [{"brand": "Bitmain", "model": "S21", "serials": ["SN-0001"] * 10_001}]},
            "items[0].serials",
            "more than 10000 serial numbers (10001)",
        ),
        (
            {"items": [{"brand": "Bitmain", "model": "S21", "repairs": [REPAIR] * 101}]},
            "items[0].repairs",
            "more than 100 entries (101)",
        ),
        (repaired(part="p" * 81), "items[0].repairs[0].part", "longer than 80 characters (81)"),
        (repaired(serial="S" * 65), "items[0].repairs[0].serial", "longer than 64 characters (65)"),
        (
            repaired(ticket_id="T" * 65),
            "items[0].repairs[0].ticket_id",
            "longer than 64 characters (65)",
        ),
        (
            {"history": [{"status": "paid", "at": "2026-01-05T10:00:00Z"}] * 101},
            "history",
            "more than 100 entries (101)",
        ),
        (
            {"x" * 1000: 1},
            "x" * 57 + "...",
            "unknown field (expected one of number, email, phone, status, carrier, "
            "tracking_number, ddp, paid_on, shipped_on, delivered_on, expected_on, "
            "tracking_updated_at, items, history)",
        ),
        (
            {"items": [{"brand": "Bitmain", "model": "S21", "price": 10}]},
            "items[0].price",
            "unknown field (expected one of brand, model, quantity, condition, serials, repairs)",
        ),
        (
            {"items": [{"brand": "Bitmain", "model": "S21", "repairs": [{"part": "psu"}]}]},
            "items[0].repairs[0].shipped_on",
            "required",
        ),
        (
            {"history": [{"status": "paid", "at": "soon"}]},
            "history[0].at",
            "'soon' is not a date and time (expected ISO 8601, e.g. 2026-03-01T14:30:00Z)",
        ),
        (
            {"paid_on": "2026-03-05", "shipped_on": "2026-03-01"},
            "shipped_on",
            "2026-03-01 is before paid_on (2026-03-05)",
        ),
        (
            {"shipped_on": "2026-03-05", "delivered_on": "2026-03-04"},
            "delivered_on",
            "2026-03-04 is before shipped_on (2026-03-05)",
        ),
    ],
)
def test_each_rule_has_its_message(changes: dict[str, Any], field: str, message: str) -> None:
    assert problems_of(record(**changes)) == [(field, message)]


def test_every_bound_takes_its_longest_value() -> None:
    longest = longest_record()

    order = order_from_record(longest)

    assert order_to_record(order) == order_to_record(order) | {
        key: value for key, value in longest.items() if key != "items"
    }
    assert order_to_record(order)["items"][0] == longest["items"][0] | {"condition": "new"}


def test_missing_required_fields_are_reported_together() -> None:
    with pytest.raises(RecordInvalid) as caught:
        order_from_record({"phone": "123", "status": ""})

    assert caught.value.problems == [
        ("number", "required"),
        ("email", "required"),
        ("status", "required"),
        ("items", "required"),
    ]
    assert (
        str(caught.value) == "number: required; email: required; status: required; items: required"
    )


def test_all_problems_are_collected_into_one_error() -> None:
    with pytest.raises(RecordInvalid) as caught:
        order_from_record(record(paid_on="2026-13-01", status="lost", email="nope"))

    message = str(caught.value)
    assert message.startswith(
        "email: 'nope' is not an email address "
        "(expected name@domain.tld, at most 254 characters); "
        "status: 'lost' is not a status (expected one of paid, pre_order,"
    )
    assert message.endswith("paid_on: '2026-13-01' is not a date (expected YYYY-MM-DD)")
    assert isinstance(caught.value, ValueError)


def test_a_record_that_is_not_an_object() -> None:
    with pytest.raises(RecordInvalid, match="record: expected an object"):
        order_from_record(["A-1"])  # type: ignore[arg-type]


@pytest.mark.parametrize(
    ("given", "status"),
    [
        ("Pre-order", OrderStatus.PRE_ORDER),
        ("preorder", OrderStatus.PRE_ORDER),
        ("pre order", OrderStatus.PRE_ORDER),
        ("in transit", OrderStatus.IN_TRANSIT),
        ("IN_CUSTOMS", OrderStatus.IN_CUSTOMS),
        (" Delivered ", OrderStatus.DELIVERED),
        ("canceled", OrderStatus.CANCELLED),
    ],
)
def test_status_aliases(given: str, status: OrderStatus) -> None:
    assert order_from_record(record(status=given)).status is status


@pytest.mark.parametrize(
    ("given", "ddp"),
    [
        ("true", True),
        ("Yes", True),
        ("1", True),
        (True, True),
        (1, True),
        ("false", False),
        ("NO", False),
        ("0", False),
        (False, False),
        ("", False),
    ],
)
def test_ddp_values(given: Any, ddp: bool) -> None:
    assert order_from_record(record(ddp=given)).ddp is ddp


@pytest.mark.parametrize(
    "serials",
    ["sn-0001 SN-0002", "sn-0001,SN-0002", " sn-0001 ; sn-0002; ", ["sn-0001 ", "SN-0002", ""]],
)
def test_serials_as_string_or_list(serials: Any) -> None:
    item = {"brand": "Bitmain", "model": "S21", "quantity": "2", "serials": serials}

    order = order_from_record(record(items=[item]))

    assert order.items[0].serials == ("SN-0001", "SN-0002")
    assert order.items[0].quantity == 2


def test_empty_optional_fields_become_none() -> None:
    order = order_from_record(record(phone="  ", carrier="", paid_on="", tracking_number=None))

    assert (order.phone, order.carrier, order.paid_on, order.tracking_number) == (None,) * 4


# --- apply_patch ------------------------------------------------------------------------


@pytest.fixture
def shipped() -> Order:
    return order_from_record(
        record(
            status="shipped",
            carrier="DHL",
            paid_on="2026-01-05",
            shipped_on="2026-01-10",
            history=[{"status": "shipped", "at": "2026-01-10T09:00:00Z"}],
        )
    )


def test_patch_changes_status_and_keeps_history(shipped: Order) -> None:
    patched = apply_patch(shipped, {"status": "Delivered", "delivered_on": "2026-01-20"})

    assert patched.status is OrderStatus.DELIVERED
    assert patched.delivered_on == date(2026, 1, 20)
    assert patched.history == shipped.history
    assert patched.carrier == "DHL"


def test_patch_null_clears_optional_field(shipped: Order) -> None:
    assert apply_patch(shipped, {"carrier": None}).carrier is None


def test_patch_items_replace_the_list(shipped: Order) -> None:
    patched = apply_patch(shipped, {"items": [{"brand": "MicroBT", "model": "M60S"}]})

    assert patched.items == (OrderItem("MicroBT", "M60S"),)


def test_patch_cannot_change_number(shipped: Order) -> None:
    with pytest.raises(RecordInvalid) as caught:
        apply_patch(shipped, {"number": "A-2002", "status": "lost"})

    assert caught.value.problems[0] == ("number", "cannot be changed")
    assert caught.value.problems[1][0] == "status"
    assert apply_patch(shipped, {"number": " A-1001 "}) == shipped


def test_patch_cannot_rewrite_history(shipped: Order) -> None:
    with pytest.raises(RecordInvalid, match="history: cannot be changed"):
        apply_patch(shipped, {"history": []})


def test_invalid_patch_is_refused_with_the_same_rules(shipped: Order) -> None:
    with pytest.raises(RecordInvalid) as caught:
        apply_patch(shipped, {"shipped_on": "2026-01-01", "email": None, "size": 3})

    assert caught.value.problems == [
        (
            "size",
            "unknown field (expected one of number, email, phone, status, carrier, "
            "tracking_number, ddp, paid_on, shipped_on, delivered_on, expected_on, "
            "tracking_updated_at, items, history)",
        ),
        ("email", "required"),
        ("shipped_on", "2026-01-01 is before paid_on (2026-01-05)"),
    ]


# --- CSV --------------------------------------------------------------------------------

HEADER = "number,email,status,paid_on,brand,model,quantity,serials\n"


def test_csv_rows_with_the_same_number_form_one_order(tmp_path: Path) -> None:
    path = write(
        tmp_path,
        "orders.csv",
        HEADER
        + "A-1,a@example.com,shipped,2026-01-05,Bitmain,S21,2,SN-0001 SN-0002\n"
        + "A-2,b@example.com,paid,,MicroBT,M60S,,\n"
        + "A-1,,,,MicroBT,M50,1,\n",
    )

    result = read_orders_file(path)

    assert result.problems == []
    assert [(line, order.number) for line, order in result.orders] == [(2, "A-1"), (3, "A-2")]
    first = result.orders[0][1]
    assert first.status is OrderStatus.SHIPPED
    assert first.paid_on == date(2026, 1, 5)
    assert first.items == (
        OrderItem("Bitmain", "S21", 2, serials=("SN-0001", "SN-0002")),
        OrderItem("MicroBT", "M50", 1),
    )


def test_csv_broken_row_skips_only_its_order(tmp_path: Path) -> None:
    path = write(
        tmp_path,
        "orders.csv",
        HEADER
        + "A-1,a@example.com,paid,2026-01-05,Bitmain,S21,1,\n"
        + "A-2,b@example.com,paid,2026-02-30,Bitmain,S21,1,\n"
        + "A-3,c@example.com,paid,,Bitmain,S19,0,\n"
        + "A-4,d@example.com,paid,,Bitmain,S19,1,\n",
    )

    result = read_orders_file(path)

    assert [(line, order.number) for line, order in result.orders] == [(2, "A-1"), (5, "A-4")]
    assert result.problems == [
        FileProblem(3, "order A-2: paid_on: '2026-02-30' is not a date (expected YYYY-MM-DD)"),
        FileProblem(
            4,
            "order A-3: quantity: '0' is not a quantity (expected a whole number from 1 to 10000)",
        ),
    ]
    assert str(result.problems[0]).startswith("line 3: order A-2: paid_on:")


def test_csv_bad_second_item_row_is_reported_on_its_line(tmp_path: Path) -> None:
    path = write(
        tmp_path,
        "orders.csv",
        HEADER
        + "A-1,a@example.com,paid,,Bitmain,S21,1,\n"
        + "A-1,,,,,S19,1,AB\n"
        + "A-2,b@example.com,paid,,Bitmain,S21,1,\n",
    )

    result = read_orders_file(path)

    assert [order.number for _, order in result.orders] == ["A-2"]
    assert result.problems == [
        FileProblem(
            3,
            "order A-1: brand: required; serials: 'AB' is not a serial number "
            "(expected 4-40 letters, digits and -)",
        )
    ]


def test_csv_repeated_row_is_ignored_and_reported(tmp_path: Path) -> None:
    row = "A-1,a@example.com,paid,,Bitmain,S21,1,SN-0001\n"
    path = write(
        tmp_path,
        "orders.csv",
        HEADER + row + "A-1,a@example.com,paid,,MicroBT,M60S,1,\n" + row,
    )

    result = read_orders_file(path)

    assert result.problems == [FileProblem(4, "line 4 repeats line 2; ignored")]
    assert len(result.orders[0][1].items) == 2


def test_csv_disagreeing_order_columns_skip_the_order(tmp_path: Path) -> None:
    path = write(
        tmp_path,
        "orders.csv",
        HEADER
        + "A-1,a@example.com,paid,,Bitmain,S21,1,\n"
        + "A-2,b@example.com,paid,,Bitmain,S21,1,\n"
        + "A-1,other@example.com,paid,,MicroBT,M60S,1,\n",
    )

    result = read_orders_file(path)

    assert [order.number for _, order in result.orders] == ["A-2"]
    assert result.problems == [
        FileProblem(
            4,
            "order A-1: email 'other@example.com' differs from line 2 ('a@example.com'); "
            "an order's rows must agree",
        )
    ]


def test_csv_with_bom_semicolons_and_fewer_columns(tmp_path: Path) -> None:
    path = write(
        tmp_path,
        "orders.csv",
        "Number;Email;Status;Brand;Model;DDP\r\nA-1;a@example.com;Pre-order;Bitmain;S21;yes\r\n",
        encoding="utf-8-sig",
    )

    result = read_orders_file(path)

    assert result.problems == []
    ((line, order),) = result.orders
    assert line == 2
    assert order.status is OrderStatus.PRE_ORDER
    assert order.ddp is True


def test_csv_quoted_multiline_cell_keeps_line_numbers(tmp_path: Path) -> None:
    path = write(
        tmp_path,
        "orders.csv",
        HEADER
        + 'A-1,a@example.com,paid,,Bitmain,"Antminer\nS21 Hydro",1,\n'
        + "A-2,b@example.com,lost,,Bitmain,S21,1,\n"
        + "A-3,c@example.com,paid,,Bitmain,S21,1,\n",
    )

    result = read_orders_file(path)

    assert [(line, order.number) for line, order in result.orders] == [(2, "A-1"), (5, "A-3")]
    assert result.orders[0][1].items[0].model == "Antminer\nS21 Hydro"
    assert [problem.line for problem in result.problems] == [4]
    assert result.problems[0].message.startswith("order A-2: status: 'lost' is not a status")


def test_csv_row_with_extra_cells_is_a_problem(tmp_path: Path) -> None:
    path = write(tmp_path, "orders.csv", HEADER + "A-1,a@example.com,paid,,Bitmain,S21,1,,x\n")

    result = read_orders_file(path)

    assert result.orders == []
    assert result.problems == [
        FileProblem(2, "order A-1: row has 9 cells but the header has 8 columns")
    ]


def test_csv_unknown_columns_are_an_error(tmp_path: Path) -> None:
    path = write(tmp_path, "orders.csv", "number,email,status,brand,model,colour,notes\n")

    with pytest.raises(OrdersFileError) as caught:
        read_orders_file(path)

    assert str(caught.value).startswith(f"{path}:1: unknown columns 'colour', 'notes' (expected: ")


def test_csv_missing_required_columns_are_an_error(tmp_path: Path) -> None:
    path = write(tmp_path, "orders.csv", "number,email,brand,model\nA-1,a@example.com,B,M\n")

    with pytest.raises(OrdersFileError, match=r"orders\.csv:1: missing columns status"):
        read_orders_file(path)


def test_csv_empty_file_is_an_error(tmp_path: Path) -> None:
    with pytest.raises(OrdersFileError, match="missing columns number, email"):
        read_orders_file(write(tmp_path, "orders.csv", ""))


# --- JSON and JSONL ---------------------------------------------------------------------


def test_json_list_of_records(tmp_path: Path) -> None:
    path = write(tmp_path, "orders.json", json.dumps([record(), record(number="A-2")], indent=2))

    result = read_orders_file(path)

    assert result.problems == []
    assert [(line, order.number) for line, order in result.orders] == [(2, "A-1001"), (13, "A-2")]


def test_json_orders_object_accepts_other_keys(tmp_path: Path) -> None:
    data = {"exported_at": "2026-01-01", "orders": [record()]}
    path = write(tmp_path, "orders.JSON", json.dumps(data, indent=2))

    result = read_orders_file(path)

    assert [(line, order.number) for line, order in result.orders] == [(4, "A-1001")]


def test_json_bad_record_in_the_middle_is_reported_with_its_line(tmp_path: Path) -> None:
    text = (
        "[\n"
        '  {"number": "A-1", "email": "a@example.com", "status": "paid",\n'
        '   "items": [{"brand": "Bitmain", "model": "S21"}]},\n'
        '  {"number": "A-2", "email": "b@example.com", "status": "paid",\n'
        '   "paid_on": "2026-02-30",\n'
        '   "items": [{"brand": "Bitmain", "model": "S21"}]},\n'
        '  {"number": "A-3", "email": "c@example.com", "status": "paid",\n'
        '   "items": [{"brand": "Bitmain", "model": "S21"}]}\n'
        "]\n"
    )

    result = read_orders_file(write(tmp_path, "orders.json", text))

    assert [(line, order.number) for line, order in result.orders] == [(2, "A-1"), (7, "A-3")]
    assert result.problems == [
        FileProblem(4, "order A-2: paid_on: '2026-02-30' is not a date (expected YYYY-MM-DD)")
    ]


def test_json_record_without_a_number_is_reported_without_one(tmp_path: Path) -> None:
    result = read_orders_file(write(tmp_path, "orders.json", '[\n  "A-1",\n  {}\n]'))

    assert [problem.line for problem in result.problems] == [2, 3]
    assert result.problems[0].message.startswith("record: expected an object")
    assert result.problems[1].message.startswith("number: required; email: required")


def test_json_duplicate_numbers_later_one_wins(tmp_path: Path) -> None:
    records = [record(number="A-1"), record(number="A-2"), record(number="a-1", status="shipped")]
    text = "[\n" + ",\n".join(json.dumps(r) for r in records) + "\n]"

    result = read_orders_file(write(tmp_path, "orders.json", text))

    assert [(line, order.number) for line, order in result.orders] == [(3, "A-2"), (4, "a-1")]
    assert result.problems == [
        FileProblem(2, "order A-1 appears again on line 4; this one is ignored")
    ]


@pytest.mark.parametrize(
    ("text", "where"),
    [
        ('[\n  {"number": "A-1"},\n  {"number": "A-2",}\n]', ":3: not valid JSON: "),
        ('[\n  {"number": "A-1"}\n  {"number": "A-2"}\n]', ":3: not valid JSON: Expecting ','"),
        ('[\n  {"number": "A-1"},\n]', ":3: not valid JSON: Expecting value"),
        ('{"orders": [\n  {"number": "A-1"}\n], }', ":3: not valid JSON: Expecting property"),
        ('[{"number": "A-1"}]\n[]', ":2: not valid JSON: Extra data"),
        ('{"order": []}', ":1: expected a list of orders or"),
        ('"A-1"', ":1: expected a list of orders or"),
        (" \n", ": empty file"),
    ],
)
def test_json_syntax_error_names_file_and_line(tmp_path: Path, text: str, where: str) -> None:
    path = write(tmp_path, "orders.json", text)

    with pytest.raises(OrdersFileError) as caught:
        read_orders_file(path)

    assert str(caught.value).startswith(f"{path}{where}")
    assert "\n" not in str(caught.value)


def test_jsonl_skips_blank_lines_and_reports_bad_ones(tmp_path: Path) -> None:
    lines = [
        json.dumps(record(number="A-1")),
        "",
        "{not json",
        json.dumps(record(number="A-2", status="lost")),
        "   ",
        json.dumps(record(number="A-3")),
    ]

    result = read_orders_file(write(tmp_path, "orders.ndjson", "\n".join(lines) + "\n"))

    assert [(line, order.number) for line, order in result.orders] == [(1, "A-1"), (6, "A-3")]
    assert [problem.line for problem in result.problems] == [3, 4]
    assert result.problems[0].message.startswith("not valid JSON: Expecting property name")
    assert result.problems[1].message.startswith("order A-2: status: 'lost' is not a status")


def test_jsonl_duplicates_are_reported(tmp_path: Path) -> None:
    lines = [json.dumps(record(number="A-1")), json.dumps(record(number="A-1", status="shipped"))]

    result = read_orders_file(write(tmp_path, "orders.jsonl", "\n".join(lines)))

    assert [(line, order.status) for line, order in result.orders] == [(2, OrderStatus.SHIPPED)]
    assert result.problems == [
        FileProblem(1, "order A-1 appears again on line 2; this one is ignored")
    ]


TOO_DEEP = "nested deeper than 10 levels (an order has 5)"


def with_raw(number: str, field: str, raw: str) -> str:
    """A record as JSON text whose `field` holds `raw` JSON text."""
    return json.dumps(record(number=number, **{field: "@raw@"})).replace('"@raw@"', raw)


def test_parse_json_measures_depth_before_decoding() -> None:
    ten = "[" * 10 + "]" * 10
    assert parse_json(f" {ten}\n") == json.loads(ten)
    # Brackets in strings are text, escaped quotes included.
    assert parse_json(r'{"a": "[[[[[[[[[[[{{{{{{{{{{{\""}') == {"a": '[[[[[[[[[[[{{{{{{{{{{{"'}
    for text in ("[" * 11 + "]" * 11, DEEP_ARRAY, DEEP_OBJECT, "[" * 100_000):
        with pytest.raises(NestedTooDeep) as caught:
            parse_json(text)
        assert str(caught.value) == TOO_DEEP
    with pytest.raises(json.JSONDecodeError, match="Extra data"):
        parse_json("[] []")


def test_json_records_nested_too_deep_are_reported_and_the_rest_read(tmp_path: Path) -> None:
    text = (
        "[\n"
        + ",\n".join(
            [
                json.dumps(record(number="A-1")),
                DEEP_ARRAY,
                with_raw("A-2", "phone", DEEP_OBJECT),
                DEEP_OBJECT,
                with_raw(
                    "A-3", "items", f'[{{"brand": "B", "model": "M", "serials": {DEEP_ARRAY}}}]'
                ),
                json.dumps(record(number="A-4")),
            ]
        )
        + "\n]"
    )

    result = read_orders_file(write(tmp_path, "orders.json", text))

    assert [(line, order.number) for line, order in result.orders] == [(2, "A-1"), (7, "A-4")]
    assert result.problems == [FileProblem(line, TOO_DEEP) for line in (3, 4, 5, 6)]


def test_json_nested_too_deep_at_the_top(tmp_path: Path) -> None:
    array = read_orders_file(write(tmp_path, "array.json", DEEP_ARRAY))
    orders = read_orders_file(write(tmp_path, "orders.json", f'{{"orders": {DEEP_ARRAY}}}'))
    beside = write(
        tmp_path, "beside.json", f'{{"orders": [{json.dumps(record())}], "a": {DEEP_OBJECT}}}'
    )
    deep_object = write(tmp_path, "object.json", DEEP_OBJECT)

    assert array == orders == FileOrders([], [FileProblem(1, TOO_DEEP)])
    assert [order.number for _, order in read_orders_file(beside).orders] == ["A-1001"]
    with pytest.raises(OrdersFileError, match=r"object\.json:1: expected a list of orders"):
        read_orders_file(deep_object)


def test_jsonl_lines_nested_too_deep_or_with_huge_numbers_are_reported(tmp_path: Path) -> None:
    lines = [
        json.dumps(record(number="A-1")),
        DEEP_ARRAY,
        DEEP_OBJECT,
        with_raw("A-2", "phone", DEEP_ARRAY),
        # More digits than int() reads.
        with_raw("A-3", "items", f'[{{"brand": "B", "model": "M", "quantity": {"9" * 5000}}}]'),
        json.dumps(record(number="A-4")),
    ]

    result = read_orders_file(write(tmp_path, "orders.jsonl", "\n".join(lines)))

    assert [(line, order.number) for line, order in result.orders] == [(1, "A-1"), (6, "A-4")]
    assert result.problems[:3] == [FileProblem(line, TOO_DEEP) for line in (2, 3, 4)]
    assert result.problems[3] == FileProblem(
        5,
        f"order A-3: items[0].quantity: '{'9' * 56}... is not a quantity "
        "(expected a whole number from 1 to 10000)",
    )


# --- files that cannot be read ----------------------------------------------------------


def test_unknown_extension(tmp_path: Path) -> None:
    path = write(tmp_path, "orders.xlsx", "")

    with pytest.raises(OrdersFileError, match=r"orders\.xlsx: unknown file type \.xlsx"):
        read_orders_file(path)


def test_missing_file(tmp_path: Path) -> None:
    path = tmp_path / "missing.csv"

    with pytest.raises(OrdersFileError) as caught:
        read_orders_file(path)

    assert str(caught.value) == f"{path}: no such file"


def test_file_that_is_not_utf8(tmp_path: Path) -> None:
    path = tmp_path / "orders.csv"
    path.write_bytes(HEADER.encode() + "A-1,müller@example.com\n".encode("latin-1"))

    with pytest.raises(OrdersFileError, match=r"orders\.csv:2: not UTF-8 text"):
        read_orders_file(path)
