"""Schemathesis against our own OpenAPI document, through the ASGI app in-process: every
operation, headers included, with data that fits the schema and data that does not, never
answers 5xx and always answers as documented."""

from __future__ import annotations

import uuid
from collections import Counter
from collections.abc import Iterator
from typing import Any, TypeAlias

import pytest
import schemathesis
from hypothesis import HealthCheck, given, settings
from requests.structures import CaseInsensitiveDict
from schemathesis import GenerationMode
from schemathesis.config import SchemathesisConfig
from schemathesis.core import NotSet
from schemathesis.core.jsonschema.types import JsonValue
from schemathesis.core.result import Ok
from schemathesis.python.asgi import shutdown_lifespans
from schemathesis.schemas import BaseSchema

from orders.api.app import create_app
from orders.api.feed_query import MAX_WAIT_SECONDS, encode_cursor
from orders.eventstore import Position
from orders.settings import Settings
from tests.api.helpers import ORDERS, quoted
from tests.feed.feed import EVENTS

OPERATIONS = [
    ("POST", ORDERS),
    ("POST", f"{ORDERS}/create"),
    ("GET", ORDERS),
    ("GET", f"{ORDERS}/{{order_id}}"),
    ("GET", f"{ORDERS}/count"),
    ("GET", f"{ORDERS}/health"),
    ("GET", "/health/live"),
    ("GET", "/health/ready"),
    *(
        ("POST", f"{ORDERS}/{{order_id}}/{action}")
        for action in ("pay", "ship", "deliver", "cancel")
    ),
    ("GET", f"{ORDERS}/{{order_id}}/history"),
    ("GET", EVENTS),
]
# Operations without any parameter or body (or only a path's free text) have no invalid input
# to generate.
WITHOUT_INPUT = {
    ("GET", f"{ORDERS}/health"),
    ("GET", "/health/live"),
    ("GET", "/health/ready"),
    ("GET", f"{ORDERS}/{{order_id}}/history"),
}
RUNS = [(*op, GenerationMode.POSITIVE) for op in OPERATIONS] + [
    (*op, GenerationMode.NEGATIVE) for op in OPERATIONS if op not in WITHOUT_INPUT
]
EXAMPLES_PER_RUN = 50
IDEMPOTENCY_KEY, REQUEST_ID = "Idempotency-Key", "X-Request-Id"
# A schema-valid order may still break a business rule (422, recorded), and a schema-valid key
# may have been used by an earlier example with another payload (422).
CONFIG = SchemathesisConfig.from_dict(
    {"checks": {"positive_data_acceptance": {"expected-statuses": ["2xx", "404", "409", "422"]}}}
)
cases_run: Counter[str] = Counter()
Case: TypeAlias = schemathesis.Case[Any]
"""A case of any of the schema's operations."""


def integers_as_integers(value: JsonValue) -> JsonValue:
    if isinstance(value, float) and value.is_integer():
        return int(value)
    if isinstance(value, list):
        return [integers_as_integers(item) for item in value]
    if isinstance(value, dict):
        return {name: integers_as_integers(item) for name, item in value.items()}
    return value


def as_the_contract_reads_it(case: Case) -> Case:
    """A schema-valid create, made valid where the contract says more than a schema can.

    The key: it must come in one of two optional headers, naming the same key when both are
    sent, and a schema cannot say "one of" or "the same key": when both are generated,
    Idempotency-Key becomes X-Request-Id's key in the draft's quoted form; when neither, a fresh
    bare key is added.
    A feed cursor: any string of the pattern is made a cursor the feed could have issued.
    Integers: JSON Schema counts 1.0 as an integer; the API takes integers only as written
    without a fraction (msgspec's strict decoding: a float amount is a client bug).
    """
    if case.method == "POST":
        headers = CaseInsensitiveDict(case.headers)
        if REQUEST_ID in headers and IDEMPOTENCY_KEY in headers:
            headers[IDEMPOTENCY_KEY] = quoted(headers[REQUEST_ID])
        elif REQUEST_ID not in headers and IDEMPOTENCY_KEY not in headers:
            headers[IDEMPOTENCY_KEY] = f"fuzz-{uuid.uuid4()}"
        case.headers = headers
        if not isinstance(case.body, bytes | NotSet):
            case.body = integers_as_integers(case.body)
    if case.path == EVENTS and case.query and "after" in case.query:
        # A cursor is what the feed issued, and a pattern cannot say which strings those are.
        place = int.from_bytes(str(case.query["after"]).encode()[:7], "big")
        case.query = {**case.query, "after": encode_cursor(Position(place, place))}
    return case


def without_long_polls(case: Case) -> Case:
    """A feed request that would wait, made not to: a fuzzed wait of up to 30 s on a page with
    nothing new would make the run minutes long (tests/feed measures waits)."""
    wait = (case.query or {}).get("wait")
    if case.path == EVENTS and isinstance(wait, int) and 0 < wait <= MAX_WAIT_SECONDS:
        case.query = {**(case.query or {}), "wait": 0}
    return case


@pytest.fixture(scope="module")
def api_schema(database_url: str) -> Iterator[BaseSchema]:
    app = create_app(Settings(pool_size=2), database_url)
    yield schemathesis.openapi.from_asgi("/schema/openapi.json", app, config=CONFIG)
    shutdown_lifespans()  # closes the app's pool before the module's database is dropped


def test_the_fuzzed_operations_are_every_documented_operation(api_schema: BaseSchema) -> None:
    documented: set[tuple[str, str]] = set()
    for result in api_schema.get_all_operations():
        assert isinstance(result, Ok), result.err()
        documented.add((result.ok().method.upper(), result.ok().path))
    assert documented == set(OPERATIONS)


@pytest.mark.parametrize(("method", "path", "mode"), RUNS)
def test_every_operation_answers_as_documented(
    api_schema: BaseSchema, method: str, path: str, mode: GenerationMode
) -> None:
    operation = api_schema[path][method]

    cases = operation.as_strategy(generation_mode=mode).map(without_long_polls)
    if mode is GenerationMode.POSITIVE:
        cases = cases.map(as_the_contract_reads_it)

    @given(cases)
    @settings(
        max_examples=EXAMPLES_PER_RUN,
        deadline=None,
        suppress_health_check=list(HealthCheck),
    )
    def answers_as_documented(case: Case) -> None:
        cases_run[f"{method} {path} {mode}"] += 1
        case.call_and_validate()

    answers_as_documented()
    assert cases_run[f"{method} {path} {mode}"] > 0
