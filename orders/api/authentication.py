"""Who is calling, per request, as `ORDERS_AUTH` says: nobody in particular, a bearer token, or
a trusted gateway's header. No identity, no answer: 401 before anything is read or recorded."""

from __future__ import annotations

import re
from typing import Any, Final, Protocol

from litestar import Request

from orders.api import problems
from orders.api.problems import ProblemError
from orders.domain.callers import ANONYMOUS, Caller, RoleNames, is_valid_owner
from orders.identity.signing_keys import JwksKeys, PublicKey, SigningKeys
from orders.identity.tokens import InvalidToken, TokenVerifier
from orders.settings import Settings

REALM: Final = 'realm="orders"'

# RFC 6750: the scheme (case-insensitive), one or more spaces, one token68. Two tokens, or any
# parameter after the token, do not match.
_BEARER = re.compile(r"(?i:bearer) +([A-Za-z0-9\-._~+/]+=*)")


class Authenticator(Protocol):
    async def __call__(self, request: Request[Any, Any, Any]) -> Caller:
        """The caller; ProblemError (401) when the request proves none."""
        ...


async def anonymous(request: Request[Any, Any, Any]) -> Caller:
    """`ORDERS_AUTH=none`: everyone is the one anonymous caller."""
    return ANONYMOUS


class BearerAuthenticator:
    """`ORDERS_AUTH=jwt`: `Authorization: Bearer <JWT>`, and the caller is its `sub`."""

    def __init__(self, verifier: TokenVerifier) -> None:
        self._verifier = verifier

    async def __call__(self, request: Request[Any, Any, Any]) -> Caller:
        # Every field: two Authorization headers are as ambiguous as two tokens in one.
        fields = request.headers.getall("authorization", [])
        if not fields:
            raise _unauthenticated("send `Authorization: Bearer <token>`", f"Bearer {REALM}")
        match = _BEARER.fullmatch(fields[0]) if len(fields) == 1 else None
        if match is None:
            raise _invalid_token("send exactly one `Authorization: Bearer <token>`")
        try:
            return await self._verifier.caller(match[1])
        except InvalidToken as exc:
            raise _invalid_token(f"the bearer token is not valid: {exc}") from None


class GatewayAuthenticator:
    """`ORDERS_AUTH=gateway`: the caller is in a header that a trusted gateway in front sets
    (and overwrites when a client sends it: see deployments/README.md)."""

    def __init__(self, header: str, roles_header: str, role_names: RoleNames) -> None:
        self._header = header
        self._roles_header = roles_header
        self._role_names = role_names

    async def __call__(self, request: Request[Any, Any, Any]) -> Caller:
        values = request.headers.getall(self._header, [])
        challenge = f'Gateway {REALM}, header="{self._header}"'
        if len(values) != 1 or not is_valid_owner(values[0].strip()):
            raise _unauthenticated(
                f"the gateway must send exactly one {self._header} header: 1 to 255 printable "
                "characters",
                challenge,
            )
        roles = (
            role
            for field in request.headers.getall(self._roles_header, [])
            for role in re.split(r"[\s,]+", field)
        )
        return Caller.with_roles(values[0].strip(), roles, self._role_names)


def _unauthenticated(detail: str, challenge: str) -> ProblemError:
    return ProblemError(problems.UNAUTHENTICATED, detail, headers={"WWW-Authenticate": challenge})


def _invalid_token(detail: str) -> ProblemError:
    # The description is fixed text: a challenge's quoted string cannot carry every message.
    challenge = f'Bearer {REALM}, error="invalid_token", error_description="invalid token"'
    return _unauthenticated(detail, challenge)


async def authenticator_for(settings: Settings) -> Authenticator:
    """The authenticator `settings.auth` names, its signing keys loaded (a JWKS that cannot be
    fetched fails the start: a service that could verify no token should not take traffic)."""
    if settings.auth == "gateway":
        return GatewayAuthenticator(
            settings.auth_header, settings.auth_roles_header, settings.role_names
        )
    if settings.auth == "none":
        return anonymous
    keys: SigningKeys
    if settings.jwt_jwks_url is not None:
        keys = JwksKeys(settings.jwt_jwks_url)
        await keys.load()
    else:
        assert settings.jwt_public_key is not None  # load_settings checked it
        keys = PublicKey(settings.jwt_public_key)
    assert settings.jwt_issuer is not None and settings.jwt_audience is not None
    verifier = TokenVerifier(
        keys,
        issuer=settings.jwt_issuer,
        audience=settings.jwt_audience,
        algorithms=settings.jwt_algorithm_list,
        leeway_seconds=settings.jwt_leeway_seconds,
        role_names=settings.role_names,
    )
    return BearerAuthenticator(verifier)
