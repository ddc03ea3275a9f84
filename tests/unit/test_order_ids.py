"""Order ids are UUIDv7: version 7, the RFC variant, their millisecond first, and so ordered by
creation time across milliseconds."""

from __future__ import annotations

import time
import uuid

from hypothesis import given
from hypothesis import strategies as st

from orders.order_ids import new_order_id, uuid7

milliseconds = st.integers(min_value=0, max_value=(1 << 48) - 1)
random_bytes = st.binary(min_size=10, max_size=10)


@given(unix_ms=milliseconds, random=random_bytes)
def test_an_id_is_a_version_7_uuid_that_starts_with_its_millisecond(
    unix_ms: int, random: bytes
) -> None:
    order_id = uuid7(unix_ms, random)

    assert (order_id.version, order_id.variant) == (7, uuid.RFC_4122)
    assert order_id.int >> 80 == unix_ms


@given(earlier=milliseconds, later=milliseconds, first=random_bytes, second=random_bytes)
def test_ids_of_later_milliseconds_sort_after_earlier_ones(
    earlier: int, later: int, first: bytes, second: bytes
) -> None:
    if earlier < later:
        assert uuid7(earlier, first) < uuid7(later, second)
        # PostgreSQL's uuid order is that of the bytes.
        assert uuid7(earlier, first).bytes < uuid7(later, second).bytes


@given(unix_ms=milliseconds, first=random_bytes, second=random_bytes)
def test_ids_of_one_millisecond_differ_where_their_random_bits_do(
    unix_ms: int, first: bytes, second: bytes
) -> None:
    kept = int("0" * 48 + "0000" + "1" * 12 + "00" + "1" * 62, 2)
    same_bits = (int.from_bytes(first, "big") ^ int.from_bytes(second, "big")) & kept == 0
    assert (uuid7(unix_ms, first) == uuid7(unix_ms, second)) == same_bits


def test_a_new_id_carries_the_time_it_was_made() -> None:
    before = time.time_ns() // 1_000_000
    order_id = new_order_id()
    after = time.time_ns() // 1_000_000

    assert before <= order_id.int >> 80 <= after
    assert len({new_order_id() for _ in range(10_000)}) == 10_000
