"""Service configurations the API benchmark measures beside the default one.

Each variant runs the create and replay scenarios against its own `orders serve`, started with
the variant's extra environment, with its extra headers on every request; the report gives its
rates as ratios to the baseline's. To add one, append a `Variant` to VARIANTS, e.g.

    Variant("big-pool", env={"ORDERS_POOL_SIZE": "16"}, headers={"X-Client": "bench"})
    Variant("tracing", side=traced)

    @contextmanager
    def traced() -> Iterator[Extra]:
        with some_sink() as sink:
            yield Extra(env={"OTEL_EXPORTER_OTLP_ENDPOINT": sink.endpoint}, headers={})

`versus` names the variant its rates are compared with (the baseline unless said), and `goal`
the least ratio to it that its replays must reach, judged as a target.

`side` is for what the variant needs beside the service (a sink it sends to, keys it signs
with): entered before the service starts, left after it stops; it yields the environment and
headers known only once it runs (a port, a token), added to `env` and `headers`.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator, Mapping
from contextlib import AbstractContextManager, contextmanager
from dataclasses import dataclass, field
from typing import Final, NamedTuple

from bench.otlp_sink import otlp_sink
from tests.auth import tokens


class Extra(NamedTuple):
    env: Mapping[str, str]
    """Added to the environment of `orders serve`."""
    headers: Mapping[str, str]
    """Added to every request the load generator sends."""


@dataclass(frozen=True)
class Variant:
    name: str
    env: Mapping[str, str] = field(default_factory=dict)
    headers: Mapping[str, str] = field(default_factory=dict)
    side: Callable[[], AbstractContextManager[Extra]] | None = None
    versus: str = "baseline"
    goal: float | None = None

    @contextmanager
    def started(self) -> Iterator[Extra]:
        """This variant's whole environment and headers, with its side service running."""
        if self.side is None:
            yield Extra(self.env, self.headers)
            return
        with self.side() as extra:
            yield Extra({**self.env, **extra.env}, {**self.headers, **extra.headers})


BASELINE: Final = Variant("baseline")
"""The default configuration: what every scenario runs against."""


@contextmanager
def _authenticated() -> Iterator[Extra]:
    """`ORDERS_AUTH=jwt` trusting the test-only key, and a bearer token signed by it: one
    client reusing its token, as clients do (the service verifies it once, then remembers)."""
    env = {
        "ORDERS_AUTH": "jwt",
        "ORDERS_JWT_PUBLIC_KEY": str(tokens.HERE / "test-only-rsa-public.pem"),
        "ORDERS_JWT_ISSUER": tokens.ISSUER,
        "ORDERS_JWT_AUDIENCE": tokens.AUDIENCE,
    }
    yield Extra(env, {"Authorization": f"Bearer {tokens.token('bench-client')}"})


@contextmanager
def _traced() -> Iterator[Extra]:
    """Tracing on, every span exported over OTLP/HTTP to a local sink."""
    with otlp_sink() as sink:
        yield Extra({"OTEL_EXPORTER_OTLP_ENDPOINT": sink.endpoint}, {})


# Replays read from the database: no worker remembers an outcome, so every replay is a
# START_STREAMS that finds its row (in batches, under load). With the barrier on (`always`,
# as if synchronous standbys were configured), each of those statements also commits a
# logical message, flushing WAL; issue 20 asks for at least 0.8 of the rate without it.
_FROM_DATABASE: Final = {"ORDERS_REPLAY_CACHE_SIZE": "0"}
_BARRIER: Final = {"ORDERS_REPLICATION_BARRIER": "always"}

VARIANTS: Final[list[Variant]] = [
    Variant("jwt", side=_authenticated),
    Variant("tracing", side=_traced),
    Variant("replays-from-db", env=_FROM_DATABASE),
    Variant(
        "replays-from-db+barrier",
        env={**_FROM_DATABASE, **_BARRIER},
        versus="replays-from-db",
        goal=0.8,
    ),
    # Replays from memory need no barrier: this shows they do not pay for it.
    Variant("barrier", env=_BARRIER),
]
"""Measured after the baseline, in this order (`bench.api --variants` picks some)."""
