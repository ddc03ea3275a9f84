"""Bearer tokens (JWT) in, callers out: signature, issuer, audience, lifetime, subject.

Verified tokens are remembered until they expire (a bounded number of them), so a client that
sends the same token with every request pays for one signature check, not one per request.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Sequence
from typing import Any, Final

import jwt

from orders.domain.callers import Caller, RoleNames, is_valid_owner
from orders.identity.signing_keys import SigningKeyError, SigningKeys

MAX_TOKEN_LENGTH: Final = 8192
"""Longer tokens are refused before any parsing (real ones are well under 2 KiB)."""


class InvalidToken(Exception):
    """The token does not prove who is calling; the message says why (safe to show)."""


class TokenVerifier:
    def __init__(
        self,
        keys: SigningKeys,
        *,
        issuer: str,
        audience: str,
        algorithms: Sequence[str],
        leeway_seconds: float,
        role_names: RoleNames,
        remembered: int = 10_000,
        clock: Callable[[], float] = time.time,
    ) -> None:
        self._keys = keys
        self._issuer = issuer
        self._audience = audience
        self._algorithms = list(algorithms)
        self._leeway = leeway_seconds
        self._role_names = role_names
        self._capacity = remembered
        self._clock = clock
        self._verified: dict[str, tuple[Caller, float]] = {}

    async def caller(self, token: str) -> Caller:
        """The caller `token` proves; InvalidToken if it proves nothing."""
        if len(token) > MAX_TOKEN_LENGTH:
            raise InvalidToken(f"the token is over {MAX_TOKEN_LENGTH} characters")
        known = self._verified.get(token)
        if known is not None:
            caller, expires = known
            if self._clock() <= expires:
                return caller
            del self._verified[token]
        claims = await self._claims(token)
        caller = self._caller_of(claims)
        self._remember(token, caller, float(claims["exp"]) + self._leeway)
        return caller

    async def _claims(self, token: str) -> dict[str, Any]:
        try:
            key_id = jwt.get_unverified_header(token).get("kid")
            if key_id is not None and not isinstance(key_id, str):
                raise InvalidToken("`kid` must be a string")
            key = await self._keys.key_for(key_id)
            claims: dict[str, Any] = jwt.decode(
                token,
                key,
                algorithms=self._algorithms,
                audience=self._audience,
                issuer=self._issuer,
                leeway=self._leeway,
                options={"require": ["exp", "iss", "aud", "sub"]},
            )
        except SigningKeyError as exc:
            raise InvalidToken(str(exc)) from None
        except jwt.PyJWTError as exc:
            raise InvalidToken(str(exc) or type(exc).__name__) from None
        return claims

    def _caller_of(self, claims: dict[str, Any]) -> Caller:
        subject = claims["sub"]
        if not isinstance(subject, str) or not is_valid_owner(subject):
            raise InvalidToken("`sub` must be 1 to 255 printable characters")
        return Caller.with_roles(subject, _roles(claims), self._role_names)

    def _remember(self, token: str, caller: Caller, expires: float) -> None:
        if self._capacity <= 0:
            return
        if len(self._verified) >= self._capacity:
            # Oldest first: dicts keep insertion order.
            del self._verified[next(iter(self._verified))]
        self._verified[token] = (caller, expires)


def _roles(claims: dict[str, Any]) -> set[str]:
    """The token's roles and scopes: OAuth 2 `scope` (space-separated) or `scp`, or `roles`."""
    found: set[str] = set()
    for name in ("scope", "scp", "roles"):
        value = claims.get(name)
        if isinstance(value, str):
            found.update(value.split())
        elif isinstance(value, list):
            found.update(item for item in value if isinstance(item, str))
    return found
