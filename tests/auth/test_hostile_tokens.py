"""Every token that does not prove a caller is a 401 problem with a Bearer challenge, and
nothing is recorded or read."""

from __future__ import annotations

import base64
import hashlib
import hmac
import json
import time
from collections.abc import Callable

import asyncpg
import httpx
import jwt
import pytest
from cryptography.hazmat.primitives.asymmetric.rsa import RSAPrivateKey
from jwt.algorithms import RSAAlgorithm

from tests.api.helpers import ORDERS, assert_problem, new_key, order_body, post_order, row_counts
from tests.auth.tokens import EC_PRIVATE, RSA_KID, RSA_PRIVATE, RSA_PUBLIC, claims, token


def _b64(data: bytes) -> str:
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode()


def _unsigned(header: dict[str, object], body: dict[str, object]) -> str:
    return f"{_b64(json.dumps(header).encode())}.{_b64(json.dumps(body).encode())}"


def alg_none() -> str:
    return _unsigned({"alg": "none", "typ": "JWT"}, claims()) + "."


def hs256_signed_with_the_public_key() -> str:
    """The classic key-confusion attack: the public key (which anyone has) as an HMAC secret."""
    signing_input = _unsigned({"alg": "HS256", "typ": "JWT", "kid": RSA_KID}, claims())
    mac = hmac.new(RSA_PUBLIC.encode(), signing_input.encode(), hashlib.sha256).digest()
    return f"{signing_input}.{_b64(mac)}"


def tampered_signature() -> str:
    head, body, signature = token().split(".")
    flipped = ("A" if signature[10] != "A" else "B").join((signature[:10], signature[11:]))
    return f"{head}.{body}.{flipped}"


def tampered_subject() -> str:
    head, _, signature = token("alice").split(".")
    return f"{head}.{_b64(json.dumps(claims('mallory')).encode())}.{signature}"


def signed_by_another_key_under_a_known_kid() -> str:
    return jwt.encode(claims(), EC_PRIVATE, algorithm="ES256", headers={"kid": RSA_KID})


def kid_that_is_not_a_string() -> str:
    """Signed for real (PyJWT will not encode such a header, so the signature is made here)."""
    signing_input = _unsigned({"alg": "RS256", "typ": "JWT", "kid": ["a", "b"]}, claims())
    rs256 = RSAAlgorithm(RSAAlgorithm.SHA256)
    key = rs256.prepare_key(RSA_PRIVATE)
    assert isinstance(key, RSAPrivateKey)
    signature = rs256.sign(signing_input.encode(), key)
    return f"{signing_input}.{_b64(signature)}"


def unknown_kid() -> str:
    return jwt.encode(claims(), RSA_PRIVATE, algorithm="RS256", headers={"kid": "rotated-away"})


HOUR = 3600
TOKENS: dict[str, Callable[[], str]] = {
    "alg none": alg_none,
    "HS256 signed with the public key": hs256_signed_with_the_public_key,
    "expired": lambda: token(exp=int(time.time()) - HOUR, iat=int(time.time()) - 2 * HOUR),
    "not yet valid": lambda: token(nbf=int(time.time()) + HOUR),
    "issued in the future": lambda: token(iat=int(time.time()) + HOUR),
    "wrong issuer": lambda: token(iss="https://evil.example/"),
    "wrong audience": lambda: token(aud="another-service"),
    "no audience": lambda: token(aud=None),
    "no expiry": lambda: token(exp=None),
    "tampered signature": tampered_signature,
    "tampered subject": tampered_subject,
    "signed by another key under a known kid": signed_by_another_key_under_a_known_kid,
    "unknown kid": unknown_kid,
    "kid not a string": kid_that_is_not_a_string,
    "missing sub": lambda: token(None),
    "empty sub": lambda: token(""),
    "sub not a string": lambda: token(12345),  # type: ignore[arg-type]
    "sub with a control character": lambda: token("alice\nadmin"),
    "sub with NUL": lambda: token("alice\x00"),
    "sub over 255 characters": lambda: token("a" * 256),
    "garbage": lambda: "not.a.jwt",
    "a 10 KB token": lambda: "a" * 10_000,
}


def bearer(make: Callable[[], str]) -> Callable[[], list[tuple[str, str]]]:
    """The Authorization field of a Bearer token that `make` makes (anew at each call)."""
    return lambda: [("Authorization", f"Bearer {make()}")]


AUTHORIZATION: dict[str, Callable[[], list[tuple[str, str]]]] = {
    "no Authorization": list,
    "Basic credentials": lambda: [("Authorization", "Basic YWxpY2U6c2VjcmV0")],
    "Bearer without a token": lambda: [("Authorization", "Bearer")],
    "two tokens in one header": lambda: [("Authorization", f"Bearer {token()}, Bearer {token()}")],
    "two Authorization fields": lambda: [
        ("Authorization", f"Bearer {token()}"),
        ("Authorization", f"Bearer {token('bob')}"),
    ],
    "a parameter after the token": lambda: [("Authorization", f"Bearer {token()} realm=x")],
    **{name: bearer(make) for name, make in TOKENS.items()},
}


async def _refused(response: httpx.Response) -> None:
    assert_problem(response, 401, "unauthenticated")
    assert response.headers["WWW-Authenticate"].startswith('Bearer realm="orders"')


@pytest.mark.parametrize("case", list(AUTHORIZATION))
async def test_a_create_without_a_valid_token_is_refused_and_records_nothing(
    client: httpx.AsyncClient, db: asyncpg.Pool, case: str
) -> None:
    before = await row_counts(db)
    headers = [("Content-Type", "application/json"), ("Idempotency-Key", new_key())]

    response = await client.post(
        ORDERS, content=json.dumps(order_body()), headers=[*headers, *AUTHORIZATION[case]()]
    )

    await _refused(response)
    assert await row_counts(db) == before


@pytest.mark.parametrize(
    "path", [ORDERS, f"{ORDERS}/count", f"{ORDERS}/{'0' * 8}-0000-0000-0000-{'0' * 12}"]
)
@pytest.mark.parametrize("case", ["no Authorization", "expired", "alg none"])
async def test_a_read_without_a_valid_token_is_refused(
    client: httpx.AsyncClient, path: str, case: str
) -> None:
    await _refused(await client.get(path, headers=AUTHORIZATION[case]()))


async def test_a_100_kb_token_is_refused_before_it_is_read(
    client: httpx.AsyncClient, db: asyncpg.Pool
) -> None:
    before = await row_counts(db)

    response = await post_order(
        client, order_body(), new_key(), headers={"Authorization": "Bearer " + "a" * 100_000}
    )

    # The 32 KiB limit on all request headers answers first (431), before any token parsing.
    assert_problem(response, 431, "headers-too-large")
    assert await row_counts(db) == before


async def test_a_missing_token_gets_a_challenge_without_an_error_code(
    client: httpx.AsyncClient,
) -> None:
    response = await client.get(ORDERS)

    assert response.headers["WWW-Authenticate"] == 'Bearer realm="orders"'


async def test_an_invalid_token_gets_the_invalid_token_error_code(
    client: httpx.AsyncClient,
) -> None:
    response = await client.get(ORDERS, headers={"Authorization": f"Bearer {alg_none()}"})

    assert 'error="invalid_token"' in response.headers["WWW-Authenticate"]


async def test_an_es256_token_from_the_jwks_is_accepted(client: httpx.AsyncClient) -> None:
    signed = jwt.encode(
        claims("ec-user"), EC_PRIVATE, algorithm="ES256", headers={"kid": "test-ec-1"}
    )

    response = await client.get(f"{ORDERS}/count", headers={"Authorization": f"Bearer {signed}"})

    assert response.status_code == 200
