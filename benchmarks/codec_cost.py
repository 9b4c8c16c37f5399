"""What the typed codec costs per item, against boto3's `TypeSerializer`/`TypeDeserializer`.

Run it with `python -m benchmarks.codec_cost` (add `--quick` for a fast, rough run).

It measures microseconds per item for one realistic record of 13 fields (strings,
int, Decimal, float, bool, timezone-aware datetime, a set, a list, a nested map,
a free-form dict and bytes):

* encode: `uow.codec.codec_for(Customer).encode_item(obj)` against
  `{k: TypeSerializer().serialize(v) for k, v in d.items()}` on the equivalent
  plain dict (floats as `Decimal` and the datetime as an ISO string, since boto3
  accepts neither);
* decode: `codec.decode_item(item)` (back to a typed attrs instance) against
  `{k: TypeDeserializer().deserialize(v) for k, v in item.items()}` (a dict of
  `Decimal`s and `Binary`s).

Each figure is the best of several `timeit` repeats (uow and boto3 timed in
alternation), divided by the number of calls per repeat; the ratio is boto3's
time over uow's (above 1: uow is faster). On a busy machine the figures move
together; compare the ratio. No server is involved, and nothing is asserted
about speed: it prints, it does not judge.
"""

from __future__ import annotations

import argparse
import datetime as dt
import platform
import sys
import timeit
from collections.abc import Callable
from decimal import Decimal
from typing import Any

import attrs
import boto3
from boto3.dynamodb.types import TypeDeserializer, TypeSerializer

from uow.codec import codec_for


@attrs.define
class PostalAddress:
    """A nested attrs class, stored as a map."""

    street: str
    city: str
    postcode: str
    country: str = "NO"


@attrs.define
class Customer:
    """A realistic record: 13 fields, a nested map, a set, a list and a document."""

    customer_id: str
    email: str
    name: str
    age: int
    balance: Decimal
    rating: float
    active: bool
    created_at: dt.datetime
    tags: set[str]
    recent_order_totals: list[int]
    address: PostalAddress
    preferences: dict[str, Any]
    avatar: bytes


def sample() -> Customer:
    """One customer with every field filled in."""
    return Customer(
        customer_id="c-000123",
        email="ann.example@example.com",
        name="Ann Example",
        age=41,
        balance=Decimal("1234.56"),
        rating=4.75,
        active=True,
        created_at=dt.datetime(2024, 5, 1, 12, 30, 15, 123000, tzinfo=dt.UTC),
        tags={"vip", "newsletter", "eu"},
        recent_order_totals=[1999, 4500, 120, 78000, 2500],
        address=PostalAddress(street="Storgata 1", city="Oslo", postcode="0155"),
        preferences={"language": "nb", "currency": "NOK", "marketing": False, "page_size": 50},
        avatar=b"\x89PNG\r\n\x1a\n" + bytes(range(56)),
    )


def as_boto3_dict(customer: Customer) -> dict[str, Any]:
    """The plain dict a boto3 user would build for the same item."""
    return {
        "customer_id": customer.customer_id,
        "email": customer.email,
        "name": customer.name,
        "age": customer.age,
        "balance": customer.balance,
        "rating": Decimal(repr(customer.rating)),
        "active": customer.active,
        "created_at": customer.created_at.isoformat(),
        "tags": set(customer.tags),
        "recent_order_totals": list(customer.recent_order_totals),
        "address": attrs.asdict(customer.address),
        "preferences": dict(customer.preferences),
        "avatar": customer.avatar,
    }


def _canonical(av: Any) -> Any:
    """An attribute value with set members sorted (set order is not part of the item)."""
    if isinstance(av, dict):
        return {
            tag: sorted(v) if tag in ("SS", "NS", "BS") else _canonical(v) for tag, v in av.items()
        }
    if isinstance(av, list):
        return [_canonical(v) for v in av]
    return av


def per_call_us(
    ours: Callable[[], object], theirs: Callable[[], object], *, repeat: int, min_time: float
) -> tuple[float, float]:
    """Best-of-`repeat` time of one call of each function, in microseconds.

    The two are timed in alternation, so that a machine busy with something
    else slows both alike instead of skewing the ratio.
    """
    timers = [timeit.Timer(ours), timeit.Timer(theirs)]
    numbers = []
    for timer in timers:
        number, elapsed = timer.autorange()  # calls that take at least 0.2 s together
        numbers.append(max(number, round(number * min_time / elapsed)))
    best = [float("inf"), float("inf")]
    for _ in range(repeat):
        for i, timer in enumerate(timers):
            best[i] = min(best[i], timer.timeit(numbers[i]) / numbers[i])
    return best[0] * 1e6, best[1] * 1e6


def main(argv: list[str] | None = None) -> None:
    """Measure and print the table."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="fewer repeats, rougher figures")
    args = parser.parse_args(argv)
    repeat, min_time = (3, 0.2) if args.quick else (9, 0.5)

    customer = sample()
    codec = codec_for(Customer)
    plain = as_boto3_dict(customer)
    serializer = TypeSerializer()
    deserializer = TypeDeserializer()

    # Both encoders must produce the same wire item, which both decoders then read.
    item: dict[str, Any] = {k: serializer.serialize(v) for k, v in plain.items()}
    ours = codec.encode_item(customer)
    assert ours.keys() == item.keys()
    assert all(_canonical(ours[k]) == _canonical(item[k]) for k in item)
    assert codec.decode_item(item) == customer
    assert {k: deserializer.deserialize(v) for k, v in item.items()}.keys() == plain.keys()

    rows = [
        (
            "encode",
            *per_call_us(
                lambda: codec.encode_item(customer),
                lambda: {k: serializer.serialize(v) for k, v in plain.items()},
                repeat=repeat,
                min_time=min_time,
            ),
        ),
        (
            "decode",
            *per_call_us(
                lambda: codec.decode_item(item),
                lambda: {k: deserializer.deserialize(v) for k, v in item.items()},
                repeat=repeat,
                min_time=min_time,
            ),
        ),
    ]

    print(
        f"codec cost per item: {len(attrs.fields(Customer))} fields, "
        f"Python {platform.python_version()}, boto3 {boto3.__version__}"
    )
    print(f"{'':8}{'uow codec':>12}{'boto3':>12}{'boto3 / uow':>14}")
    for name, uow_us, boto3_us in rows:
        print(f"{name:8}{uow_us:>9.2f} µs{boto3_us:>9.2f} µs{boto3_us / uow_us:>13.2f}x")
    sys.stdout.flush()


if __name__ == "__main__":
    main()
