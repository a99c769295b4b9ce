"""The broker chosen by settings: in-process (stub), Redis or RabbitMQ."""

from __future__ import annotations

from urllib.parse import parse_qsl, urlencode, urlsplit, urlunsplit

from dramatiq import Broker
from dramatiq.brokers.stub import StubBroker


class UnknownBroker(ValueError):
    """The broker URL's scheme is none of stub, redis or amqp."""


def make_broker(url: str) -> Broker:
    """A dramatiq broker for `stub`, `redis://…[?namespace=…]` or `amqp://…`."""
    if url == "stub":
        broker = StubBroker()
        broker.emit_after("process_boot")
        return broker
    if url.startswith(("redis://", "rediss://", "unix://")):
        from dramatiq.brokers.redis import RedisBroker

        url, namespace = _namespace(url)
        return RedisBroker(url=url, namespace=namespace)
    if url.startswith(("amqp://", "amqps://")):
        from dramatiq.brokers.rabbitmq import RabbitmqBroker

        return RabbitmqBroker(url=url)
    raise UnknownBroker(f"broker URL {url!r}: expected 'stub', redis://… or amqp://…")


def _namespace(url: str) -> tuple[str, str]:
    """Split `?namespace=…` off a Redis URL: several deployments can share one Redis."""
    parts = urlsplit(url)
    query = parse_qsl(parts.query)
    namespace = next((v for k, v in query if k == "namespace"), "dramatiq")
    rest = urlencode([(k, v) for k, v in query if k != "namespace"])
    return urlunsplit(parts._replace(query=rest)), namespace
