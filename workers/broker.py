"""The broker chosen by settings: in-process (stub), Redis or RabbitMQ."""

from __future__ import annotations

from dramatiq import Broker
from dramatiq.brokers.stub import StubBroker


class UnknownBroker(ValueError):
    """The broker URL's scheme is none of stub, redis or amqp."""


def make_broker(url: str) -> Broker:
    """A dramatiq broker for `stub`, `redis://…` or `amqp://…`."""
    if url == "stub":
        broker = StubBroker()
        broker.emit_after("process_boot")
        return broker
    if url.startswith(("redis://", "rediss://", "unix://")):
        from dramatiq.brokers.redis import RedisBroker

        return RedisBroker(url=url)
    if url.startswith(("amqp://", "amqps://")):
        from dramatiq.brokers.rabbitmq import RabbitmqBroker

        return RabbitmqBroker(url=url)
    raise UnknownBroker(f"broker URL {url!r}: expected 'stub', redis://… or amqp://…")
