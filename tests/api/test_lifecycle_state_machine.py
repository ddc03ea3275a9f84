"""The order's life as a state machine: hypothesis drives random sequences of creates, commands,
reads and histories from several callers against two real apps on one real database (the
second has no memory of what the first answered, so retries are answered from the stream too),
and every answer is checked against the pure model below, written here from the README rather
than taken from `orders.domain`: the transition table, who may do what, the order of the
checks (existence, permission, key, recorded key, If-Match, rule), and replays.

Hypothesis's stateful rules are synchronous, so the machine runs in a thread of its own and
sends each request to the apps on the test's event loop (where the fixtures live) and waits.
"""

from __future__ import annotations

import asyncio
import uuid
from collections import Counter
from collections.abc import AsyncIterator, Coroutine
from dataclasses import dataclass, field
from typing import Any, Final, TypeVar

import asyncpg
import httpx
import msgspec
import pytest_asyncio
from hypothesis import HealthCheck, settings
from hypothesis import strategies as st
from hypothesis.stateful import (
    Bundle,
    RuleBasedStateMachine,
    invariant,
    precondition,
    rule,
    run_state_machine_as_test,
)

from orders.api.app import create_app
from orders.settings import Settings
from tests.api.conftest import running
from tests.api.helpers import ORDERS, assert_problem, quoted
from tests.support.asgi import asgi_transport
from tests.support.lifecycle_model import ACTIONS, EVENT_OF, TRANSITIONS, allowed

T = TypeVar("T")

# A few dozen sequences of up to 30 steps: well under a minute on a shared machine, and enough
# to reach replays after the order moved on, keys reused across callers and stale ETags.
MACHINE_SETTINGS: Final = settings(
    max_examples=25,
    stateful_step_count=30,
    deadline=None,
    suppress_health_check=[HealthCheck.too_slow],
)
ANSWER_WITHIN_SECONDS: Final = 30.0
# Few orders, so that each lives long: paid, shipped, retried after it moved on.
MAX_ORDERS: Final = 3
FULFILMENT_ROLE: Final = "orders:fulfilment"
ADMIN_ROLE: Final = "orders:admin"

# -- the model (the transition table is tests/support/lifecycle_model.py) -------------------------


@dataclass(frozen=True)
class Caller:
    """Who sends a request, as the gateway names it: an id and the roles it holds now."""

    id: str
    fulfilment: bool = False
    admin: bool = False

    def headers(self) -> dict[str, str]:
        roles = [FULFILMENT_ROLE] * self.fulfilment + [ADMIN_ROLE] * self.admin
        return {"X-User-Id": self.id, "X-User-Roles": " ".join(roles)}

    def sees(self, order: ModelOrder) -> bool:
        return self.admin or self.fulfilment or self.id == order.owner

    def may(self, action: str, order: ModelOrder) -> bool:
        return self.admin or self.fulfilment or (self.id == order.owner and action == "cancel")


ALICE, BOB = Caller("alice"), Caller("bob")
CALLERS: Final = (
    ALICE,
    BOB,
    Caller("alice", fulfilment=True),  # alice's id with a role: her keys, other permissions
    Caller("warehouse", fulfilment=True),
    Caller("ops", admin=True),
)


@dataclass(frozen=True)
class Command:
    """A command as sent: its action and body, and what identifies its payload (a cancel's
    reason omitted and spelled `null` is one payload)."""

    action: str
    body: dict[str, Any]
    payload: tuple[Any, ...]


@dataclass(frozen=True)
class Recorded:
    """The first answer a key got: what every retry with it must get back."""

    command: Command
    content: bytes
    etag: str


@dataclass
class ModelOrder:
    order_id: str
    owner: str
    total: int
    current: bytes
    """The order as a GET shows it now."""
    status: str = "created"
    history: list[tuple[str, dict[str, Any]]] = field(default_factory=list)
    """Every event after the create: its type and the public facts it must show."""
    recorded: dict[tuple[str, str], Recorded] = field(default_factory=dict)
    """(caller id, key) -> what that key recorded on this order."""

    @property
    def version(self) -> int:
        return 1 + len(self.history)

    @property
    def etag(self) -> str:
        return f'"{self.version}"'

    def event_types(self) -> list[str]:
        return ["OrderCreated", *(kind for kind, _ in self.history)]


@dataclass(frozen=True)
class Expected:
    """What the model says a command gets: a kind, and what that kind carries."""

    kind: str
    recorded: Recorded | None = None


def matches(if_match: str | None, order: ModelOrder) -> bool:
    """A strong comparison of the model's If-Match spellings (see `tag_value`)."""
    if if_match is None or if_match == "*":
        return True
    return order.etag in [tag.strip() for tag in if_match.split(",")]


def expect(
    order: ModelOrder, caller: Caller, command: Command, key: str | None, if_match: str | None
) -> Expected:
    """The model's answer, in the order of the README's checks."""
    if not caller.sees(order):
        return Expected("not_found")
    if not caller.may(command.action, order):
        return Expected("forbidden")
    if key is None:
        return Expected("bad_key")
    recorded = order.recorded.get((caller.id, key))
    if recorded is not None:
        if recorded.command.payload != command.payload:
            return Expected("key_reused")
        return Expected("replayed", recorded)
    if not matches(if_match, order):
        return Expected("precondition_failed")
    if (order.status, command.action) not in TRANSITIONS:
        return Expected("invalid_transition")
    if command.action == "pay" and command.body["amount"] != order.total:
        return Expected("amount_mismatch")
    return Expected("applied")


def facts(order: ModelOrder, caller: Caller, command: Command) -> dict[str, Any]:
    """The public facts the event of an applied command records."""
    shown: dict[str, Any] = {"order_id": order.order_id, "by": caller.id}
    if command.action == "cancel":
        refund = order.total if order.status == "paid" else 0
        shown.update(reason=command.body.get("reason"), refund_owed=refund)
    else:
        shown.update(command.body)
    return shown


# -- what the machine draws ----------------------------------------------------------------------

products = st.lists(
    st.fixed_dictionaries(
        {"id": st.integers(1, 9), "price": st.integers(1, 2000), "quantity": st.integers(1, 3)}
    ),
    min_size=1,
    max_size=3,
)
KEY_CHOICES: Final = ("fresh", "fresh", "fresh", "recorded", "used", "missing")
KEY_SPELLINGS: Final = ("bare", "quoted", "x-request-id")
IF_MATCH_CHOICES: Final = (None, None, None, "*", "current", "weak", "stale", "list")
IF_NONE_MATCH_CHOICES: Final = (None, "*", "current", "weak", "stale")


def make_command(action: str, body: dict[str, Any]) -> Command:
    canonical = {"reason": None, **body} if action == "cancel" else body
    return Command(action, body, (action, *sorted(canonical.items())))


def command_of(
    action: str, total: int, amount_off: int, text: int, reason: int | None, null: bool
) -> Command:
    """A command body for `action`, from the choices the machine drew."""
    if action == "pay":
        body: dict[str, Any] = {"amount": total + amount_off, "reference": f"psp-{text}"}
    elif action == "ship":
        body = {"carrier": ("DHL", "UPS")[text % 2], "tracking": f"T{text}"}
    elif action == "cancel" and reason is not None:
        body = {"reason": f"reason {reason}"}
    else:
        body = {"reason": None} if action == "cancel" and null else {}
    return make_command(action, body)


def other_payload(command: Command) -> Command:
    """`command` with another body for the same action (a deliver has none: another reason
    for a cancel stands in)."""
    if command.action == "pay":
        body = {**command.body, "reference": command.body["reference"] + "-again"}
    elif command.action == "ship":
        body = {**command.body, "tracking": command.body["tracking"] + "-again"}
    elif command.action == "cancel":
        body = {"reason": f"{command.body.get('reason')} again"}
    else:
        return make_command("cancel", {"reason": "delivered instead"})
    return make_command(command.action, body)


def tag_value(choice: str | None, version: int) -> str | None:
    """An If-Match or If-None-Match value for the order at `version`."""
    return {
        None: None,
        "*": "*",
        "current": f'"{version}"',
        "weak": f'W/"{version}"',
        "stale": f'"{version + 1}"' if version == 1 else f'"{version - 1}"',
        "list": f'"{version + 7}", "{version}"',
    }[choice]


# -- the machine ---------------------------------------------------------------------------------


@dataclass
class World:
    """What every run of the machine shares: the loop the apps run on, a client per app, the
    module's database."""

    loop: asyncio.AbstractEventLoop
    clients: list[httpx.AsyncClient]
    pool: asyncpg.Pool
    outcomes: Counter[str] = field(default_factory=Counter)
    """How often each kind of answer was expected, for the report."""

    def run(self, work: Coroutine[Any, Any, T]) -> T:
        return asyncio.run_coroutine_threadsafe(work, self.loop).result(ANSWER_WITHIN_SECONDS)


class LifecycleMachine(RuleBasedStateMachine):
    orders = Bundle("orders")

    def __init__(self, world: World) -> None:
        super().__init__()
        self.world = world
        self.keys: list[str] = []
        self.created: list[ModelOrder] = []
        self.events_before = self.events_in_store()
        self.unknown_id = str(uuid.uuid4())
        self.unknown = self.send(0, "GET", f"{ORDERS}/{self.unknown_id}", CALLERS[-1].headers())

    def send(
        self, app: int, method: str, path: str, headers: dict[str, str], body: object = None
    ) -> httpx.Response:
        content = None if body is None else msgspec.json.encode(body)
        if content is not None:
            headers = {**headers, "Content-Type": "application/json"}
        request = self.world.clients[app].request(method, path, content=content, headers=headers)
        return self.world.run(request)

    def events_in_store(self) -> int:
        count: int = self.world.run(self.world.pool.fetchval("SELECT count(*) FROM events"))
        return count

    def assert_not_found(self, answer: httpx.Response, order: ModelOrder) -> None:
        """The 404 of an order the caller may not see is an unknown order's, byte for byte."""
        assert_problem(answer, 404, "order-not-found")
        assert answer.content == self.unknown.content.replace(
            self.unknown_id.encode(), order.order_id.encode()
        )

    @precondition(lambda self: len(self.created) < MAX_ORDERS)
    @rule(
        target=orders,
        owner=st.sampled_from([ALICE, BOB]),
        lines=products,
        app=st.integers(0, 1),
    )
    def create(self, owner: Caller, lines: list[dict[str, int]], app: int) -> ModelOrder:
        body = {"products": lines, "shipping_to": "1 Main St"}
        headers = {**owner.headers(), "Idempotency-Key": f"create-{uuid.uuid4()}"}
        created = self.send(app, "POST", ORDERS, headers, body)
        assert created.status_code == 201, created.text
        assert created.headers["ETag"] == '"1"'
        shown = created.json()
        read = self.send(1 - app, "GET", f"{ORDERS}/{shown['order_id']}", owner.headers())
        assert read.json() == {**shown, "version": 1, "updated_at": shown["created_at"]}
        total = sum(line["price"] * line["quantity"] for line in lines)
        assert shown["total"] == total
        order = ModelOrder(shown["order_id"], owner.id, total, read.content)
        self.created.append(order)
        return order

    @rule(
        order=orders,
        caller=st.sampled_from(CALLERS),
        action=st.sampled_from(ACTIONS),
        amount_off=st.sampled_from([0, 0, 0, 1, -1]),
        text=st.integers(1, 2),
        reason=st.none() | st.integers(1, 2),
        null=st.booleans(),
        key_choice=st.sampled_from(KEY_CHOICES),
        pick=st.integers(0, 7),
        spelling=st.sampled_from(KEY_SPELLINGS),
        if_match_choice=st.sampled_from(IF_MATCH_CHOICES),
        app=st.integers(0, 1),
    )
    def command(
        self,
        order: ModelOrder,
        caller: Caller,
        action: str,
        amount_off: int,
        text: int,
        reason: int | None,
        null: bool,
        key_choice: str,
        pick: int,
        spelling: str,
        if_match_choice: str | None,
        app: int,
    ) -> None:
        command = command_of(action, order.total, amount_off, text, reason, null)
        key = self.key_for(order, caller, key_choice, pick)
        self.attempt(order, caller, command, key, spelling, if_match_choice, app)

    @rule(
        order=orders,
        pick=st.integers(0, 7),
        as_role=st.booleans(),
        change=st.sampled_from(["none", "none", "action", "payload"]),
        spelling=st.sampled_from(KEY_SPELLINGS),
        if_match_choice=st.sampled_from(IF_MATCH_CHOICES),
        app=st.integers(0, 1),
    )
    def retry(
        self,
        order: ModelOrder,
        pick: int,
        as_role: bool,
        change: str,
        spelling: str,
        if_match_choice: str | None,
        app: int,
    ) -> None:
        """A key recorded on the order sent again, after whatever happened since: as it was,
        or with another action or body; by the caller that recorded it, or by its id holding
        other roles now (alice with and without the fulfilment role)."""
        if not order.recorded:
            return
        (by, key), recorded = sorted(order.recorded.items())[pick % len(order.recorded)]
        callers = [caller for caller in CALLERS if caller.id == by]
        caller = callers[as_role % len(callers)]
        command = recorded.command
        if change == "action":
            action = ACTIONS[(ACTIONS.index(command.action) + 1 + pick) % len(ACTIONS)]
            command = command_of(action, order.total, 0, 1, None, False)
        elif change == "payload":
            command = other_payload(command)
        self.attempt(order, caller, command, key, spelling, if_match_choice, app)

    def attempt(
        self,
        order: ModelOrder,
        caller: Caller,
        command: Command,
        key: str | None,
        spelling: str,
        if_match_choice: str | None,
        app: int,
    ) -> None:
        """Send the command and check its answer against the model's."""
        if_match = tag_value(if_match_choice, order.version)
        headers = caller.headers()
        if key is not None:
            headers.update(key_headers(key, spelling))
        if if_match is not None:
            headers["If-Match"] = if_match
        expected = expect(order, caller, command, key, if_match)
        self.world.outcomes[expected.kind] += 1

        path = f"{ORDERS}/{order.order_id}/{command.action}"
        answer = self.send(app, "POST", path, headers, command.body)

        if expected.kind == "applied":
            assert key is not None
            self.applied(answer, order, caller, command, key)
        elif expected.kind == "replayed":
            assert expected.recorded is not None
            assert answer.status_code == 200, answer.text
            assert answer.content == expected.recorded.content
            assert answer.headers["ETag"] == expected.recorded.etag
            assert answer.headers["Idempotent-Replayed"] == "true"
        elif expected.kind == "not_found":
            self.assert_not_found(answer, order)
        else:
            self.refused(answer, order, expected.kind)

    def key_for(self, order: ModelOrder, caller: Caller, choice: str, pick: int) -> str | None:
        """A key for the command: new, one this caller recorded on this order, one used
        anywhere before (by anyone, on any order, refused or not), or none at all; `pick`
        chooses among those there are."""
        if choice == "missing":
            return None
        mine = [key for (by, key) in order.recorded if by == caller.id]
        if choice == "recorded" and mine:
            return mine[pick % len(mine)]
        if choice == "used" and self.keys:
            return self.keys[-1 - pick % len(self.keys)]
        key = f"cmd-{uuid.uuid4()}"
        self.keys.append(key)
        return key

    def applied(
        self,
        answer: httpx.Response,
        order: ModelOrder,
        caller: Caller,
        command: Command,
        key: str,
    ) -> None:
        assert answer.status_code == 200, answer.text
        shown = facts(order, caller, command)
        order.status = TRANSITIONS[(order.status, command.action)]
        order.history.append((EVENT_OF[command.action], shown))
        assert answer.headers["ETag"] == order.etag
        assert answer.headers["Idempotent-Replayed"] == "false"
        assert answer.headers["content-type"] == "application/json"
        body = answer.json()
        assert (body["order_id"], body["status"], body["version"], body["total"]) == (
            order.order_id,
            order.status,
            order.version,
            order.total,
        )
        order.current = answer.content
        order.recorded[(caller.id, key)] = Recorded(command, answer.content, order.etag)

    def refused(self, answer: httpx.Response, order: ModelOrder, kind: str) -> None:
        status, slug = REFUSALS[kind]
        problem = assert_problem(answer, status, slug)
        if kind == "precondition_failed":
            assert answer.headers["ETag"] == order.etag
        if kind == "invalid_transition":
            assert problem["order_status"] == order.status
            assert problem["allowed_actions"] == allowed(order.status)

    @rule(
        order=orders,
        caller=st.sampled_from(CALLERS),
        history=st.booleans(),
        choice=st.sampled_from(IF_NONE_MATCH_CHOICES),
        app=st.integers(0, 1),
    )
    def look(
        self, order: ModelOrder, caller: Caller, history: bool, choice: str | None, app: int
    ) -> None:
        """Read the order (with If-None-Match), or its history."""
        if history:
            self.history(order, caller, app)
        else:
            self.read(order, caller, choice, app)

    def read(self, order: ModelOrder, caller: Caller, choice: str | None, app: int) -> None:
        headers = caller.headers()
        if_none_match = tag_value(choice, order.version)
        if if_none_match is not None:
            headers["If-None-Match"] = if_none_match

        answer = self.send(app, "GET", f"{ORDERS}/{order.order_id}", headers)

        if not caller.sees(order):
            self.assert_not_found(answer, order)
        elif choice in ("*", "current", "weak"):
            assert answer.status_code == 304, answer.text
            assert answer.content == b""
            assert answer.headers["ETag"] == order.etag
        else:
            assert answer.status_code == 200, answer.text
            assert answer.content == order.current
            assert answer.headers["ETag"] == order.etag

    def history(self, order: ModelOrder, caller: Caller, app: int) -> None:
        answer = self.send(app, "GET", f"{ORDERS}/{order.order_id}/history", caller.headers())

        if not caller.sees(order):
            self.assert_not_found(answer, order)
            return
        assert answer.status_code == 200, answer.text
        events = answer.json()["events"]
        assert [(e["type"], e["version"]) for e in events] == [
            (kind, version) for version, kind in enumerate(order.event_types(), start=1)
        ]
        for event, (_, shown) in zip(events[1:], order.history, strict=True):
            assert {name: event["data"].get(name) for name in shown} == shown

    @invariant()
    def only_applied_commands_are_recorded(self) -> None:
        recorded = sum(order.version for order in self.created)
        assert self.events_in_store() == self.events_before + recorded


REFUSALS: Final = {
    "forbidden": (403, "forbidden"),
    "bad_key": (400, "invalid-idempotency-key"),
    "key_reused": (422, "idempotency-key-reused"),
    "precondition_failed": (412, "precondition-failed"),
    "invalid_transition": (409, "invalid-transition"),
    "amount_mismatch": (422, "amount-mismatch"),
}


def key_headers(key: str, spelling: str) -> dict[str, str]:
    """`key` in one of the three spellings that name it."""
    if spelling == "x-request-id":
        return {"X-Request-Id": key}
    return {"Idempotency-Key": quoted(key) if spelling == "quoted" else key}


@pytest_asyncio.fixture(scope="module", loop_scope="session")
async def clients(database_url: str) -> AsyncIterator[list[httpx.AsyncClient]]:
    """Two apps on one database, as two replicas: neither remembers what the other answered."""
    apps = [create_app(Settings(pool_size=2, auth="gateway"), database_url) for _ in range(2)]
    transports = [asgi_transport(app) for app in apps]
    async with (
        running(apps[0]),
        running(apps[1]),
        httpx.AsyncClient(transport=transports[0], base_url="http://testserver") as first,
        httpx.AsyncClient(transport=transports[1], base_url="http://testserver") as second,
    ):
        yield [first, second]


async def test_every_answer_of_the_lifecycle_is_the_models(
    clients: list[httpx.AsyncClient], pool: asyncpg.Pool
) -> None:
    world = World(asyncio.get_running_loop(), clients, pool)
    await asyncio.to_thread(
        run_state_machine_as_test,
        # Hypothesis takes any factory of a machine (its docstring says so) but annotates a class.
        lambda: LifecycleMachine(world),  # type: ignore[arg-type]
        settings=MACHINE_SETTINGS,
    )
    print(f"\ncommands by expected answer: {dict(world.outcomes)}")
