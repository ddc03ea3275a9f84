"""Upgrades roll: the previous release serves under load while this one migrates the database
and starts beside it; then the previous one gets SIGTERM, as Kubernetes sends it, and the load
goes on against this one. Nothing is lost, nothing answers 5xx, the previous release stays
ready through the migration, and a key's answer is the same bytes whichever release gives it.
Once this release serves, it pays orders too (what only it can do), and either release reads
them back; and it publishes, beside the previous release, every event either one recorded.

It never looks at which migrations this release adds: it holds for none, and for any that keep
the previous release working."""

from __future__ import annotations

import asyncio
import contextlib
import random
import signal
import time
import uuid
from collections import Counter, defaultdict
from pathlib import Path
from typing import Any, NamedTuple

import httpx
import pytest

from orders.eventstore.pool import create_pool
from tests.processes.clients import ORDERS, order_payload, recorded
from tests.processes.services import Service, run_command, served
from tests.projections.support import eventually
from tests.publishing.support import (
    Recorder,
    assert_exactly_the_store,
    delivered_all,
    publisher,
    stored_events,
)
from tests.support.broker import Broker
from tests.support.databases import DatabaseFactory, service_login
from tests.upgrade.previous_release import previous_release

pytestmark = pytest.mark.slow

LOAD_TASKS = 4
KEYS_PER_PHASE = 40
CROSS_RELEASE_REPLAYS = 5  # at least, each way: created on one release, replayed on the other
CLIENT_TIMEOUT_SECONDS = 10.0
PHASE_WITHIN_SECONDS = 60.0
# How often the previous release's readiness is probed during the upgrade (the kubelet's
# period is seconds; this is finer, not a synchronisation).
READY_PROBE_SECONDS = 0.05

PREVIOUS, CURRENT = "previous", "current"  # the releases; also the phases where one serves alone
UPGRADING = "upgrading"  # this release migrates and starts; the previous one serves alone
BOTH = "both"  # both serve
STOPPING = "stopping"  # the previous release has had SIGTERM; only this one takes requests


class Sent(NamedTuple):
    """One request of the load: to which release, in which phase it was sent and in which it
    was answered, and the answer (status None: the connection dropped)."""

    key: str
    method: str
    release: str
    phase: str
    answered_in: str
    status: int | None
    body: bytes
    replayed: str | None


class RollingLoad:
    """Clients that each take a new random key, create its order on a serving release, send it
    once more (to the other release while both serve) and read the order back."""

    def __init__(self, client: httpx.AsyncClient) -> None:
        self.client = client
        self.serving: dict[str, str] = {}  # release -> base URL, for those taking requests
        self.phase = PREVIOUS
        self.sent: list[Sent] = []
        self.payments: list[tuple[Sent, Sent]] = []
        """Each pay this release took, and its retry."""
        self.keys_done: Counter[str] = Counter()
        self.progress = asyncio.Condition()
        self.running = True

    async def run(self) -> None:
        while self.running:
            await self.one_key()

    async def one_key(self) -> None:
        phase = self.phase
        key = f"upgrade-{uuid.uuid4()}"
        payload = order_payload(quantity=random.randint(1, 9))
        first = await self.send("POST", self.pick(), key, ORDERS, payload)
        again = await self.send("POST", self.pick(avoid=first.release), key, ORDERS, payload)
        created = next((s for s in (first, again) if s.status == 201), None)
        if created is not None:
            path = f"{ORDERS}/{order_id(created.body)}"
            if CURRENT in self.serving:
                pay = (CURRENT, f"{key}-pay", f"{path}/pay", payment_of(payload))
                self.payments.append(
                    (await self.request("POST", *pay), await self.request("POST", *pay))
                )
            await self.send("GET", self.pick(), key, path)
        async with self.progress:
            self.keys_done[phase] += 1
            self.progress.notify_all()

    def pick(self, avoid: str | None = None) -> str:
        """A serving release, other than `avoid` when there is another."""
        return random.choice([r for r in self.serving if r != avoid] or list(self.serving))

    async def send(
        self, method: str, release: str, key: str, path: str, payload: Any = None
    ) -> Sent:
        """A create or a read, kept in `sent`."""
        sent = await self.request(method, release, key, path, payload)
        self.sent.append(sent)
        return sent

    async def request(
        self, method: str, release: str, key: str, path: str, payload: Any = None
    ) -> Sent:
        phase = self.phase
        headers = {"Idempotency-Key": key} if method == "POST" else {}
        try:
            response = await self.client.request(
                method, self.serving[release] + path, json=payload, headers=headers
            )
        except httpx.TransportError as error:
            status, body, replayed = None, repr(error).encode(), None
        else:
            status, body = response.status_code, response.content
            replayed = response.headers.get("Idempotent-Replayed")
        return Sent(key, method, release, phase, self.phase, status, body, replayed)

    async def wait_for_keys(self, phase: str) -> None:
        async with self.progress:
            await asyncio.wait_for(
                self.progress.wait_for(lambda: self.keys_done[phase] >= KEYS_PER_PHASE),
                timeout=PHASE_WITHIN_SECONDS,
            )


def payment_of(order: Any) -> dict[str, Any]:
    total = sum(line["price"] * line.get("quantity", 1) for line in order["products"])
    return {"amount": total, "reference": "upgrade"}


def order_id(body: bytes) -> str:
    found: str = httpx.Response(200, content=body).json()["order_id"]
    return found


async def probe_readiness(
    client: httpx.AsyncClient, service: Service, until: asyncio.Event
) -> list[int | None]:
    """GET /health/ready on `service` until `until` is set: every status (None: no answer)."""
    statuses: list[int | None] = []
    while not until.is_set():
        try:
            statuses.append((await client.get(f"{service.base_url}/health/ready")).status_code)
        except httpx.TransportError:
            statuses.append(None)
        await asyncio.sleep(READY_PROBE_SECONDS)
    return statuses


async def test_the_previous_release_serves_on_while_this_one_migrates_and_takes_over(
    databases: DatabaseFactory, broker: Broker, tmp_path: Path
) -> None:
    started = time.monotonic()
    owner_url = await databases.create(migrated=False)
    previous = previous_release(tmp_path)
    code, output = await run_command(["migrate"], owner_url, previous)
    assert code == 0, output
    exchange = f"orders-upgrade-{uuid.uuid4().hex[:8]}"
    consumer = Recorder(broker, exchange)
    await consumer.start()

    async with (
        service_login(owner_url) as service_url,
        httpx.AsyncClient(timeout=CLIENT_TIMEOUT_SECONDS) as client,
        served(service_url, tmp_path, release=previous) as old,
        await create_pool(owner_url, size=2) as pool,
        contextlib.AsyncExitStack() as publishers,
    ):
        load = RollingLoad(client)
        load.serving[PREVIOUS] = old.base_url
        tasks = [asyncio.create_task(load.run()) for _ in range(LOAD_TASKS)]
        upgraded = asyncio.Event()
        try:
            await load.wait_for_keys(PREVIOUS)

            load.phase = UPGRADING
            readiness = asyncio.create_task(probe_readiness(client, old, upgraded))
            code, migrated = await run_command(["migrate"], owner_url)
            assert code == 0, migrated
            ready_after_migration = await client.get(f"{old.base_url}/health/ready")
            # What a pod of the previous release does first when it restarts now, as the
            # service's role; meanwhile this release starts.
            restart = asyncio.create_task(run_command(["migrate"], service_url, previous))
            async with served(service_url, tmp_path) as new:
                code, restarted = await restart
                assert code == 0, restarted
                load.serving[CURRENT] = new.base_url
                publishers.enter_context(publisher(service_url, tmp_path, broker, exchange))
                load.phase = BOTH
                await load.wait_for_keys(BOTH)
                upgraded.set()
                ready_statuses = await readiness

                # Kubernetes takes the pod out of the Service's endpoints and sends SIGTERM.
                load.phase = STOPPING
                del load.serving[PREVIOUS]
                await old.stop()
                load.phase = CURRENT
                await load.wait_for_keys(CURRENT)
                load.running = False
                await asyncio.gather(*tasks)

                orders = {s.key: order_id(s.body) for s in load.sent if s.status == 201}
                reads = await asyncio.gather(
                    *(client.get(f"{new.base_url}{ORDERS}/{oid}") for oid in orders.values())
                )
                await eventually(lambda: delivered_all(consumer, pool), "every event published")
                published = await stored_events(pool)
        finally:
            load.running = False
            upgraded.set()
            await asyncio.gather(*tasks, return_exceptions=True)
            await consumer.close()
    logs = {PREVIOUS: old.log_text(), CURRENT: new.log_text()}

    report(load, ready_statuses, time.monotonic() - started)
    assert ready_after_migration.status_code == 200, ready_after_migration.text
    assert ready_statuses and set(ready_statuses) == {200}, Counter(ready_statuses)
    assert load.keys_done[UPGRADING] > 0, "no load while this release migrated and started"
    assert old.process.returncode != -signal.SIGKILL, "the previous release did not drain"
    assert_every_answer_is_sound(load.sent)
    assert_every_key_has_one_outcome_across_releases(load.sent)
    paid = assert_every_payment_is_recorded_once(load.payments)
    assert paid, "this release paid no order"
    found = await recorded(owner_url, list(orders))
    assert found.events == {key: 1 + (key in paid) for key in orders}
    assert found.orders == {key: [uuid.UUID(oid)] for key, oid in orders.items()}
    assert [(r.status_code, order_id(r.content)) for r in reads] == [
        (200, oid) for oid in orders.values()
    ]
    assert_exactly_the_store(consumer.deliveries, published)
    for release, log in logs.items():
        error = log.find('"level":"error"')
        assert error == -1, f"{release}: {log[error:][:3000]}"


def assert_every_answer_is_sound(sent: list[Sent]) -> None:
    """No 5xx from anyone; a dropped connection only from the previous release, after its
    SIGTERM; every read answered 200."""
    for s in sent:
        if s.status is None:
            assert s.release == PREVIOUS and s.answered_in in (STOPPING, CURRENT), s
        else:
            assert s.status < 500, s
            if s.method == "GET":
                assert s.status == 200, s


def assert_every_payment_is_recorded_once(payments: list[tuple[Sent, Sent]]) -> set[str]:
    """Each pay answered 200 and its retry the same bytes, replayed: the orders' keys."""
    for first, again in payments:
        assert (first.status, first.replayed) == (200, "false"), first
        assert (again.status, again.body, again.replayed) == (200, first.body, "true"), again
    return {first.key.removesuffix("-pay") for first, _ in payments}


def assert_every_key_has_one_outcome_across_releases(sent: list[Sent]) -> None:
    """Each key's first answer is a 201; each later one the same bytes, replayed, on either
    release; and replays crossed releases both ways."""
    posts: defaultdict[str, list[Sent]] = defaultdict(list)
    for s in sent:
        if s.method == "POST" and s.status is not None:
            posts[s.key].append(s)
    assert set(posts) == {s.key for s in sent}, "a key got no answer at all"
    crossed: Counter[tuple[str, str]] = Counter()
    for key, (first, *later) in posts.items():
        assert first.status == 201, first
        for again in later:
            assert (again.status, again.body) == (first.status, first.body), (key, first, again)
            assert again.replayed == "true", again
            crossed[first.release, again.release] += 1
    assert crossed[PREVIOUS, CURRENT] >= CROSS_RELEASE_REPLAYS, crossed
    assert crossed[CURRENT, PREVIOUS] >= CROSS_RELEASE_REPLAYS, crossed


def report(load: RollingLoad, ready_statuses: list[int | None], seconds: float) -> None:
    dropped = Counter(s.answered_in for s in load.sent if s.status is None)
    statuses = Counter((s.method, s.release, s.status) for s in load.sent)
    print(
        f"\nrolling upgrade in {seconds:.1f} s: keys per phase {dict(load.keys_done)}; "
        f"answers {dict(statuses)}; dropped by phase {dict(dropped)}; "
        f"previous release ready {Counter(ready_statuses)} during the upgrade"
    )
