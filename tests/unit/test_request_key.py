"""The key parser against RFC 8941's grammar for sf-string (section 3.3.3), written out here from
the RFC rather than taken from the parser, and the contract every parsed key keeps."""

from __future__ import annotations

import re

import pytest
from hypothesis import example, given
from hypothesis import strategies as st

from orders.api.keys import IDEMPOTENCY_KEY_PATTERN, REQUEST_ID_PATTERN, request_key
from orders.api.problems import ProblemError
from tests.api.helpers import quoted

# sf-string = DQUOTE *chr DQUOTE; chr = unescaped / escaped; unescaped = %x20-21 / %x23-5B /
# %x5D-7E; escaped = "\" ( DQUOTE / "\" ). So every string of printable ASCII has exactly one
# spelling, `quoted(value)`: `"` and `\` escaped, nothing else.
PRINTABLE = st.characters(min_codepoint=0x20, max_codepoint=0x7E)
VISIBLE = st.characters(min_codepoint=0x21, max_codepoint=0x7E)
KEYS = st.text(PRINTABLE, min_size=1, max_size=255)


def key_of(*fields: tuple[str, str | bytes]) -> str:
    """The key of a request with these header fields, values decoded as Litestar decodes them."""
    values = [
        (name, value.decode("latin-1") if isinstance(value, bytes) else value)
        for name, value in fields
    ]
    return request_key(
        [value for name, value in values if name == "Idempotency-Key"],
        [value for name, value in values if name == "X-Request-Id"],
    )


def refused(*fields: tuple[str, str | bytes]) -> str:
    """The problem type the fields are refused with."""
    with pytest.raises(ProblemError) as refusal:
        key_of(*fields)
    return refusal.value.problem.type.removeprefix("/problems/")


def assert_keeps_the_contract(key: str, lowest: int = 0x20) -> None:
    """What stream ids are built on: a str of 1 to 255 characters, each in lowest..0x7E."""
    assert isinstance(key, str)
    assert 1 <= len(key) <= 255
    assert all(lowest <= ord(character) <= 0x7E for character in key)


@given(KEYS)
@example('"\\')
@example(" ")
def test_an_sf_string_parses_to_the_string_it_holds(value: str) -> None:
    assert key_of(("Idempotency-Key", quoted(value))) == value


@given(st.text(PRINTABLE, min_size=256, max_size=300))
@example('"' * 256)
def test_an_sf_string_over_255_characters_is_refused_however_it_is_spelled(value: str) -> None:
    assert refused(("Idempotency-Key", quoted(value))) == "invalid-idempotency-key"


@given(KEYS, st.sampled_from([chr(c) for c in range(0x20, 0x7F) if chr(c) not in '"\\']))
def test_an_escape_of_anything_but_a_quote_or_a_backslash_is_refused(
    value: str, escaped: str
) -> None:
    wire = quoted(value)[:-1] + "\\" + escaped + '"'
    assert refused(("Idempotency-Key", wire)) == "invalid-idempotency-key"


@given(st.text(VISIBLE, min_size=1, max_size=255).filter(lambda k: "," not in k and k[0] != '"'))
def test_a_bare_key_is_itself_and_names_the_same_key_as_its_quoted_form(key: str) -> None:
    assert key_of(("Idempotency-Key", key)) == key
    assert key_of(("Idempotency-Key", quoted(key))) == key
    assert key_of(("Idempotency-Key", quoted(key)), ("X-Request-Id", key)) == key


@given(KEYS, st.sampled_from([";a=1", ";a", ";", "x", " x", '"', "\\", ",", '"x"']))
def test_an_sf_string_followed_by_anything_but_a_list_member_is_refused(
    value: str, suffix: str
) -> None:
    assert refused(("Idempotency-Key", quoted(value) + suffix)) == "invalid-idempotency-key"


@given(KEYS, st.sampled_from([", ", ","]), st.sampled_from(['"x"', "x", "1", "(x)", "?0"]))
def test_an_sf_list_of_more_than_one_member_is_ambiguous(
    value: str, comma: str, member: str
) -> None:
    value = quoted(value) + comma + member
    assert refused(("Idempotency-Key", value)) == "ambiguous-idempotency-key"


@given(st.binary(max_size=300))
@example(b'"\\x"')
@example(b"\xff")
def test_any_idempotency_key_is_refused_or_keeps_the_contract(value: bytes) -> None:
    try:
        key = key_of(("Idempotency-Key", value))
    except ProblemError:
        return
    assert_keeps_the_contract(key)


@given(st.binary(max_size=300))
def test_any_x_request_id_is_refused_or_keeps_the_narrower_contract(value: bytes) -> None:
    try:
        key = key_of(("X-Request-Id", value))
    except ProblemError:
        return
    assert_keeps_the_contract(key, lowest=0x21)
    assert key.encode() == value


# Values as HTTP delivers them: a field value has no whitespace at either end (RFC 9110, 5.5).
FIELD_VALUES = st.one_of(
    st.text(PRINTABLE, max_size=300).map(quoted),
    st.text(PRINTABLE, min_size=1, max_size=300),
    st.text(st.sampled_from('"\\,; ab'), min_size=1, max_size=12),
).filter(lambda value: value == value.strip())


@given(FIELD_VALUES)
def test_the_documented_pattern_accepts_exactly_what_the_parser_accepts(value: str) -> None:
    try:
        key_of(("Idempotency-Key", value))
        accepted = True
    except ProblemError:
        accepted = False
    assert (re.fullmatch(IDEMPOTENCY_KEY_PATTERN, value) is not None) == accepted


@given(FIELD_VALUES)
def test_the_documented_x_request_id_pattern_accepts_exactly_what_is_accepted(value: str) -> None:
    try:
        key_of(("X-Request-Id", value))
        accepted = True
    except ProblemError:
        accepted = False
    assert (re.fullmatch(REQUEST_ID_PATTERN, value) is not None) == accepted


@pytest.mark.parametrize(
    ("fields", "problem"),
    [
        ([], "invalid-idempotency-key"),
        ([("Idempotency-Key", "a"), ("Idempotency-Key", "a")], "ambiguous-idempotency-key"),
        ([("X-Request-Id", "a"), ("X-Request-Id", "b")], "ambiguous-idempotency-key"),
        ([("X-Request-Id", "a,b")], "ambiguous-idempotency-key"),
        ([("Idempotency-Key", "a"), ("X-Request-Id", "b")], "conflicting-idempotency-keys"),
        ([("Idempotency-Key", '"a"'), ("X-Request-Id", '"a"')], "conflicting-idempotency-keys"),
        ([("Idempotency-Key", '"a b"'), ("X-Request-Id", "a b")], "invalid-idempotency-key"),
    ],
    ids=[
        "no key",
        "Idempotency-Key twice",
        "X-Request-Id twice",
        "X-Request-Id joined",
        "different keys",
        "X-Request-Id keeps its quotes",
        "X-Request-Id holds no space",
    ],
)
def test_what_is_refused_across_fields(fields: list[tuple[str, str]], problem: str) -> None:
    assert refused(*fields) == problem
