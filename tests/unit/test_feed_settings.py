"""The feed's settings come from the environment like every other, and a bad one fails the
start."""

from __future__ import annotations

import pytest

from orders.domain.callers import Caller
from orders.settings import SettingsError, load_settings


def test_the_events_role_source_and_poll_come_from_the_environment() -> None:
    settings = load_settings(
        {
            "ORDERS_EVENTS_ROLE": "shop:feed",
            "ORDERS_EVENTS_SOURCE": "urn:shop:orders",
            "ORDERS_FEED_POLL_SECONDS": "0.25",
        }
    )

    assert settings.role_names.events == "shop:feed"
    assert settings.events_source == "urn:shop:orders"
    assert settings.feed_poll_seconds == 0.25
    assert Caller.with_roles("reader", ["shop:feed"], settings.role_names).reads_events
    assert not Caller.with_roles("reader", ["orders:events"], settings.role_names).reads_events


def test_the_defaults() -> None:
    settings = load_settings({})
    assert (settings.events_role, settings.events_source) == ("orders:events", "/orders")


@pytest.mark.parametrize("poll", ["0", "-1", "soon"])
def test_a_poll_interval_that_is_not_positive_fails_the_start(poll: str) -> None:
    with pytest.raises(SettingsError):
        load_settings({"ORDERS_FEED_POLL_SECONDS": poll})
