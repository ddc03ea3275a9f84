"""The request log: one JSON line per request, in the shape of every other log line."""

from __future__ import annotations

import logging
from collections.abc import Iterator

import msgspec
import pytest

from orders.api.access_log import LOGGER, AccessLog


@pytest.fixture
def info_level() -> Iterator[None]:
    previous = LOGGER.level
    LOGGER.setLevel(logging.INFO)
    yield
    LOGGER.setLevel(previous)


def test_each_request_becomes_one_json_line_on_flush(
    info_level: None, capsys: pytest.CaptureFixture[str]
) -> None:
    access_log = AccessLog()
    access_log.record("POST", "/api/v1/orders", 201, 0.0123, "key-1")
    access_log.record("GET", "/health/live", 200, 0.0004, None)
    assert capsys.readouterr().err == ""

    access_log.flush()

    lines = [msgspec.json.decode(line) for line in capsys.readouterr().err.splitlines()]
    assert [(e["method"], e["route"], e["status"], e["idempotency_key"]) for e in lines] == [
        ("POST", "/api/v1/orders", 201, "key-1"),
        ("GET", "/health/live", 200, None),
    ]
    assert lines[0]["duration_ms"] == 12.3
    assert {e["msg"] for e in lines} == {"request"}
    assert {e["level"] for e in lines} == {"info"}
    assert all(e["ts"].endswith("+00:00") for e in lines)


def test_no_line_is_kept_when_the_request_logger_is_above_info(
    capsys: pytest.CaptureFixture[str],
) -> None:
    previous = LOGGER.level
    LOGGER.setLevel(logging.WARNING)
    try:
        access_log = AccessLog()
        access_log.record("GET", "/health/live", 200, 0.001, None)
        access_log.flush()
    finally:
        LOGGER.setLevel(previous)

    assert capsys.readouterr().err == ""
