"""Tokens for tests, signed with the test-only keys beside this file (see README.md)."""

from __future__ import annotations

import time
from pathlib import Path
from typing import Any, Final

import jwt

from orders.settings import Settings

HERE: Final = Path(__file__).parent
ISSUER: Final = "https://issuer.orders.test/"
AUDIENCE: Final = "orders"
RSA_KID: Final = "test-rsa-1"
EC_KID: Final = "test-ec-1"
RSA_PRIVATE: Final = (HERE / "test-only-rsa-private.pem").read_text()
RSA_PUBLIC: Final = (HERE / "test-only-rsa-public.pem").read_text()
EC_PRIVATE: Final = (HERE / "test-only-ec-private.pem").read_text()
JWKS_FILE: Final = HERE / "test-only-jwks.json"


def claims(sub: str | None = "alice", **overrides: Any) -> dict[str, Any]:
    """Valid claims for `sub` (an hour to live), with `overrides` (None removes a claim)."""
    now = int(time.time())
    base: dict[str, Any] = {
        "iss": ISSUER,
        "aud": AUDIENCE,
        "sub": sub,
        "iat": now,
        "exp": now + 3600,
    }
    merged = {**base, **overrides}
    return {name: value for name, value in merged.items() if value is not None}


def token(sub: str | None = "alice", **overrides: Any) -> str:
    """An RS256 token signed by the test-only RSA key, with key id `test-rsa-1`."""
    return jwt.encode(
        claims(sub, **overrides), RSA_PRIVATE, algorithm="RS256", headers={"kid": RSA_KID}
    )


def bearer(sub: str | None = "alice", **overrides: Any) -> dict[str, str]:
    return {"Authorization": f"Bearer {token(sub, **overrides)}"}


def jwt_settings(**overrides: Any) -> Settings:
    """Settings of a service that trusts the test-only keys (by default from the JWKS file)."""
    base: dict[str, Any] = {
        "pool_size": 4,
        "auth": "jwt",
        "jwt_jwks_url": JWKS_FILE.resolve().as_uri(),
        "jwt_issuer": ISSUER,
        "jwt_audience": AUDIENCE,
    }
    return Settings(**{**base, **overrides})
