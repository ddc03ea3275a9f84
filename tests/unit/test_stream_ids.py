"""(caller, key) -> stream id is injective: no two different pairs ever share a stream."""

from __future__ import annotations

import pytest
from hypothesis import example, given
from hypothesis import strategies as st

from orders.domain.callers import ANONYMOUS_OWNER, MAX_CALLER_LENGTH, is_valid_owner
from orders.domain.streams import NAMED_PREFIX, order_stream_id, parse_order_stream_id

# Keys as the API accepts them: 1 to 255 printable ASCII characters.
keys = st.text(st.characters(min_codepoint=0x20, max_codepoint=0x7E), min_size=1, max_size=255)
# Callers as adversarial as a token's `sub` may be: separators, digits, the named prefix, other
# scripts; and the anonymous caller.
hostile_alphabet = st.sampled_from([":", NAMED_PREFIX, "0", "1", "9", " ", "a", "名", "\u00e9"])
callers = st.one_of(
    st.just(ANONYMOUS_OWNER),
    st.text(hostile_alphabet, min_size=1, max_size=12),
    st.text(min_size=1, max_size=MAX_CALLER_LENGTH).filter(is_valid_owner),
)
pairs = st.tuples(callers, keys)


@given(pairs)
@example(("a:b", "c"))
@example((f"{NAMED_PREFIX}1:a", "b"))
def test_the_pair_comes_back_from_its_stream_id(pair: tuple[str, str]) -> None:
    assert parse_order_stream_id(order_stream_id(*pair)) == pair


@given(pairs, pairs)
@example(("a:b", "c"), ("a", "b:c"))
@example(("ab", "c"), ("a", "bc"))
@example(("1", "1:ab"), ("1:a", "b"))
def test_different_pairs_never_share_a_stream_id(
    first: tuple[str, str], second: tuple[str, str]
) -> None:
    if first != second:
        assert order_stream_id(*first) != order_stream_id(*second)


def test_an_anonymous_key_that_would_look_like_a_named_stream_is_refused() -> None:
    with pytest.raises(ValueError):
        order_stream_id(ANONYMOUS_OWNER, f"{NAMED_PREFIX}1:ab")


@given(keys)
def test_the_anonymous_callers_stream_is_the_key_as_before_callers_existed(key: str) -> None:
    assert order_stream_id(ANONYMOUS_OWNER, key) == key


@given(st.text(hostile_alphabet, min_size=1, max_size=12), keys)
def test_a_named_callers_stream_never_looks_like_an_anonymous_key(caller: str, key: str) -> None:
    stream = order_stream_id(caller, key)

    assert not all(0x20 <= ord(c) <= 0x7E for c in stream)
