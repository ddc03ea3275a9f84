"""Entity tags and the conditional headers of RFC 9110 (section 13): an order's ETag is its
stream version, `"<version>"`, a strong validator (the version names exactly one state).

`If-Match` compares strongly: `W/"3"` never matches, `*` matches any existing order. A value
that is no list of entity tags is refused (400) rather than ignored: a client that sent a
precondition it cannot express must not have its command run unconditionally.
`If-None-Match` compares weakly (`W/"3"` matches `"3"`), as a GET's cache validation does.
"""

from __future__ import annotations

import re
from collections.abc import Sequence
from typing import Final, NamedTuple

from orders.api.problems import INVALID_PARAMETER, ProblemError
from orders.order_lifecycle import IfMatch

# One list member (RFC 9110 5.6.1: empty members are allowed and ignored): `*`, or an entity
# tag, `"..."` with an optional `W/` (etagc: 0x21, 0x23-0x7E, obs-text).
_MEMBER: Final = re.compile(r'[ \t]*(?:(\*)|(W/)?"([\x21\x23-\x7e\x80-\xff]*)")?[ \t]*(,|\Z)')
_TAG_PATTERN: Final = r'(?:W/)?"[\x21\x23-\x7e]*"'
IF_MATCH_PATTERN: Final = rf"^(?:\*|{_TAG_PATTERN}(?:[ \t]*,[ \t]*{_TAG_PATTERN})*)$"
"""Every If-Match value this module accepts (without obs-text or empty members), as a regular
expression for OpenAPI."""
_VERSION: Final = re.compile(r"[1-9][0-9]{0,9}")


def etag(version: int) -> str:
    return f'"{version}"'


class _Tag(NamedTuple):
    weak: bool
    opaque: str


def _members(values: Sequence[str], header: str) -> tuple[bool, list[_Tag]]:
    """(whether `*` was sent, the entity tags) of every field of `header`; ProblemError (400)
    for a value that is not a list of them, an empty one, or `*` beside anything else."""
    star = False
    tags: list[_Tag] = []
    for value in values:
        position = 0
        while True:
            match = _MEMBER.match(value, position)
            if match is None:
                raise ProblemError(
                    INVALID_PARAMETER,
                    f'`{header}` must be `*` or a list of entity tags such as `"3"`',
                )
            if match[1]:
                star = True
            elif match[3] is not None:
                tags.append(_Tag(bool(match[2]), match[3]))
            if not match[4]:  # the end of the field
                break
            position = match.end()
    if not star and not tags:
        raise ProblemError(INVALID_PARAMETER, f"`{header}` names no entity tag")
    if star and (tags or len(values) > 1):
        raise ProblemError(INVALID_PARAMETER, f"`{header}: *` stands alone")
    return star, tags


def _version(opaque: str) -> int | None:
    return int(opaque) if _VERSION.fullmatch(opaque) else None


def if_match(values: Sequence[str]) -> IfMatch | None:
    """The `If-Match` precondition of a request's fields, None when it sent none."""
    if not values:
        return None
    star, tags = _members(values, "If-Match")
    versions = {_version(tag.opaque) for tag in tags if not tag.weak}
    return IfMatch(star, frozenset(version for version in versions if version is not None))


def none_match(values: Sequence[str], version: int) -> bool:
    """Whether `If-None-Match` (weak comparison) matches the order at `version`: then a GET
    answers 304."""
    if not values:
        return False
    star, tags = _members(values, "If-None-Match")
    return star or any(_version(tag.opaque) == version for tag in tags)
