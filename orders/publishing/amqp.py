"""The broker side of `orders publish`: RabbitMQ over AMQP 0-9-1, through aio-pika.

One connection, one channel in publisher-confirm mode. On connecting, the publisher declares
what it publishes to, so that a new broker (or one that lost its definitions) needs nothing
set up by hand:

- the durable topic exchange `<exchange>` (default `orders`), where each event is published
  with its CloudEvents type as the routing key (`orders.OrderCreated`, ...);
- its alternate exchange `<exchange>.unrouted` (fanout, durable) and the durable queue
  `<exchange>.unrouted` bound to it: a message that no consumer's binding takes is kept there
  rather than dropped, and the broker confirms it only once that queue holds it.

Every message is published `mandatory`, so a message that not even the alternate exchange
could route (its queue deleted or unbound) comes back as a return: that fails the batch, as a
nack, a confirm timeout or a lost connection does. A batch is published only as a whole:
`publish` returns once the broker has confirmed every message of it, else raises
`PublishFailed` and the caller retries the batch from its checkpoint on a new connection.
"""

from __future__ import annotations

import asyncio
from collections.abc import Sequence
from typing import Final

import aio_pika
import aiormq
from aio_pika.abc import AbstractChannel, AbstractConnection, AbstractExchange

from orders.publishing.cloudevents import CONTENT_TYPE, CloudEvent, encode

UNROUTED_SUFFIX: Final = ".unrouted"


class PublishFailed(Exception):
    """The batch was not confirmed as a whole: retry it."""


class Unroutable(PublishFailed):
    """The broker returned a message: no queue took it, not even the alternate exchange's."""

    def __init__(self, returned: int) -> None:
        super().__init__(f"{returned} message(s) returned unroutable")
        self.returned = returned


BROKER_FAILURES: Final[tuple[type[BaseException], ...]] = (
    aiormq.exceptions.AMQPError,
    aio_pika.exceptions.ChannelInvalidStateError,
    ConnectionError,
    OSError,
    TimeoutError,
)
"""What a publication or a connection attempt can fail with, short of a bug."""

BATCH_FAILURES: Final[tuple[type[BaseException], ...]] = (PublishFailed, *BROKER_FAILURES)
"""What fails a batch: the broker's refusal or silence, or the connection."""


def amqp_message(event: CloudEvent) -> aio_pika.Message:
    """The message of one event: the CloudEvent as its body, persistent, with the event's id,
    content type, time and type as its properties."""
    return aio_pika.Message(
        encode(event),
        message_id=event.id,
        content_type=CONTENT_TYPE,
        timestamp=event.time,
        type=event.type,
        delivery_mode=aio_pika.DeliveryMode.PERSISTENT,
    )


class Broker:
    """A connection to RabbitMQ and the exchange, declared on its confirming channel."""

    def __init__(
        self,
        connection: AbstractConnection,
        exchange: AbstractExchange,
        confirm_timeout: float,
    ) -> None:
        self._connection = connection
        self._exchange = exchange
        self._confirm_timeout = confirm_timeout

    @classmethod
    async def connect(cls, url: str, exchange: str, *, confirm_timeout: float) -> Broker:
        """Connect, open the confirming channel and declare the topology (see the module)."""
        # A plain connection, not aio-pika's robust one: after a loss the publisher starts over
        # from its checkpoint on a new connection, so nothing may be re-sent behind its back.
        connection = await aio_pika.connect(url, timeout=confirm_timeout)
        try:
            channel = await connection.channel(publisher_confirms=True, on_return_raises=True)
            declared = await declare_topology(channel, exchange)
        except BaseException:
            await connection.close()
            raise
        return cls(connection, declared, confirm_timeout)

    async def publish(self, events: Sequence[CloudEvent]) -> None:
        """Publish `events` (persistent, mandatory, in order) and wait until the broker
        confirmed every one; raise PublishFailed (or Unroutable) if any is nacked, returned,
        or not confirmed within the confirm timeout, or if the connection fails."""
        try:
            async with asyncio.timeout(self._confirm_timeout):
                outcomes = await asyncio.gather(
                    *(self._publish_one(e) for e in events), return_exceptions=True
                )
        except TimeoutError as exc:
            raise PublishFailed(
                f"not every message was confirmed within {self._confirm_timeout} s"
            ) from exc
        failures = [o for o in outcomes if isinstance(o, BaseException)]
        returned = sum(isinstance(f, aiormq.exceptions.PublishError) for f in failures)
        if returned:
            raise Unroutable(returned)
        if failures:
            raise PublishFailed(f"{len(failures)} message(s) not confirmed") from failures[0]

    async def _publish_one(self, event: CloudEvent) -> None:
        confirmation = await self._exchange.publish(amqp_message(event), event.type, mandatory=True)
        if not isinstance(confirmation, aiormq.spec.Basic.Ack):
            raise PublishFailed(f"the broker answered {confirmation!r}")

    async def close(self) -> None:
        await self._connection.close()


async def declare_topology(channel: AbstractChannel, exchange: str) -> AbstractExchange:
    """Declare the exchange, its alternate exchange and the queue that keeps unrouted
    messages; return the exchange."""
    unrouted_name = exchange + UNROUTED_SUFFIX
    unrouted = await channel.declare_exchange(
        unrouted_name, aio_pika.ExchangeType.FANOUT, durable=True
    )
    kept = await channel.declare_queue(unrouted_name, durable=True)
    await kept.bind(unrouted)
    return await channel.declare_exchange(
        exchange,
        aio_pika.ExchangeType.TOPIC,
        durable=True,
        arguments={"alternate-exchange": unrouted_name},
    )
