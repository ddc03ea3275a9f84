"""How `make image-check` reports: one line per check that passed; the first that fails ends
the run with what it saw."""

from __future__ import annotations


class CheckFailed(Exception):
    """A check saw something other than what it expects; the message says what."""


def ok(text: str) -> None:
    print(f"image-check: ok: {text}", flush=True)


def note(text: str) -> None:
    print(f"image-check: {text}", flush=True)


def expect(condition: bool, failure: str) -> None:
    if not condition:
        raise CheckFailed(failure)
