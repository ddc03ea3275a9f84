"""The issuer's public keys that token signatures are checked against.

A JWKS is fetched once at start and kept; a token naming a key id not seen yet (the issuer
rotated its keys) fetches it again, at most once per `refresh_interval`, so a stream of tokens
with made-up key ids costs one fetch per interval, never one per request.
"""

from __future__ import annotations

import asyncio
import logging
import time
import urllib.request
from collections.abc import Callable
from pathlib import Path
from typing import Any, Final, Protocol

import jwt
import msgspec
from cryptography.hazmat.primitives.serialization import load_pem_public_key

log = logging.getLogger(__name__)

FETCH_TIMEOUT_SECONDS: Final = 5.0
MAX_JWKS_BYTES: Final = 1024 * 1024


class SigningKeyError(Exception):
    """No key can check this token's signature (unknown key id, unusable key set)."""


VerificationKey = jwt.PyJWK | Any
"""A PyJWK (bound to its algorithm) or a `cryptography` public key object."""


class SigningKeys(Protocol):
    async def key_for(self, key_id: str | None) -> VerificationKey:
        """The key for a token whose header names `key_id`; SigningKeyError if none."""
        ...


class PublicKey:
    """One PEM public key, whatever key id a token names."""

    def __init__(self, pem: str) -> None:
        text = Path(pem).read_text(encoding="utf-8") if not pem.startswith("-----") else pem
        self._key = load_pem_public_key(text.encode())

    async def key_for(self, key_id: str | None) -> VerificationKey:
        return self._key


class JwksKeys:
    """The keys of a JWKS document at `url` (https://, http:// or file://)."""

    def __init__(
        self,
        url: str,
        *,
        refresh_interval: float = 30.0,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self._url = url
        self._refresh_interval = refresh_interval
        self._clock = clock
        self._keys: dict[str | None, jwt.PyJWK] = {}
        self._fetched_at = float("-inf")
        self._refreshing = asyncio.Lock()

    async def load(self) -> None:
        """The first fetch, at start: a service that cannot get its keys should not start."""
        self._keys = await asyncio.to_thread(self._fetch)
        self._fetched_at = self._clock()

    async def key_for(self, key_id: str | None) -> VerificationKey:
        key = self._keys.get(key_id)
        if key is None:
            await self._refresh()
            key = self._keys.get(key_id)
        if key is None:
            raise SigningKeyError(f"no signing key with id {key_id!r}")
        return key

    async def _refresh(self) -> None:
        async with self._refreshing:
            if self._clock() - self._fetched_at < self._refresh_interval:
                return
            # Whatever happens, the next attempt waits for the interval.
            self._fetched_at = self._clock()
            try:
                self._keys = await asyncio.to_thread(self._fetch)
            except (OSError, ValueError, SigningKeyError) as exc:
                log.warning("could not refresh the JWKS from %s: %s", self._url, exc)

    def _fetch(self) -> dict[str | None, jwt.PyJWK]:
        with urllib.request.urlopen(self._url, timeout=FETCH_TIMEOUT_SECONDS) as answer:
            document = answer.read(MAX_JWKS_BYTES + 1)
        if len(document) > MAX_JWKS_BYTES:
            raise SigningKeyError(f"the JWKS at {self._url} is over {MAX_JWKS_BYTES} bytes")
        return parse_jwks(document)


def parse_jwks(document: bytes) -> dict[str | None, jwt.PyJWK]:
    """The signature keys of a JWKS document by key id; keys of other uses or of unsupported
    types are left out (a JWKS may hold encryption keys too)."""
    try:
        entries = msgspec.json.decode(document, type=_Jwks).keys
    except msgspec.DecodeError as exc:
        raise SigningKeyError(f"not a JWKS document: {exc}") from exc
    keys: dict[str | None, jwt.PyJWK] = {}
    for entry in entries:
        if entry.get("use", "sig") != "sig":
            continue
        try:
            key = jwt.PyJWK(entry)
        except jwt.PyJWTError as exc:
            log.warning("JWKS key %r left out: %s", entry.get("kid"), exc)
            continue
        keys[entry.get("kid")] = key
    if not keys:
        raise SigningKeyError("the JWKS holds no usable signature key")
    return keys


class _Jwks(msgspec.Struct):
    keys: list[dict[str, Any]]
