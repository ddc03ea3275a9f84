"""The payload fingerprint: tells a retry of a request from another request under its key."""

from __future__ import annotations

import hashlib

import msgspec

from orders.domain.commands import CreateOrder, LifecycleRequest

_encoder = msgspec.json.Encoder()


def fingerprint(command: CreateOrder) -> str:
    """SHA-256 of the canonical validated payload (the key itself excluded).

    Canonical because it is encoded from the decoded command: field order is fixed, defaults
    are filled in, so `{"quantity": 1}` omitted or spelled out, and any JSON whitespace or key
    order, give the same fingerprint.
    """
    canonical = _encoder.encode((command.products, command.shipping_to))
    return hashlib.sha256(canonical).hexdigest()


def command_fingerprint(request: LifecycleRequest) -> str:
    """SHA-256 of a lifecycle command's kind and canonical body: the same key sent for another
    command, or with another body, never matches."""
    canonical = _encoder.encode((type(request).__name__, request))
    return hashlib.sha256(canonical).hexdigest()
