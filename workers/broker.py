"""The broker chosen by settings: in-process (stub), Redis or RabbitMQ.

On Redis a consumer polls: dramatiq backs off on an empty queue 5 ms·2^n (with jitter) up
to the worker's timeout, 1 s, and a live meeting crosses about four queues (extract, plan,
push.<connector>, the recap woken after the others), so on an idle system each hop waited
up to that second. Polling faster is dear: an idle `meetsync worker --processes 2` polls
~44 queues, and a 100 ms cap costs ~3,200 Redis commands/s and a quarter of a core doing
nothing (`python -m bench.idle_poll`).

So `WakingRedisBroker` announces each enqueue on a pub/sub channel of its namespace
(one PUBLISH per message) and a consumer waits on its queue's wake-up instead of sleeping:
a message is fetched as soon as it is sent, while the idle poll stays at
`broker_idle_poll_ms` (default dramatiq's 1 s). The poll remains the safety net: a wake-up
lost while Redis restarts costs at most one poll. A consumer of a delay queue also wakes
when the earliest message it holds falls due, so a short `Later` is not stretched to the
poll. RabbitMQ pushes messages to its consumers: it has no idle poll to shorten.

With wake-ups a consumer fetches only when there may be something to take: it was woken,
its last fetch filled every free slot (so the queue may hold more) and an ack freed one,
or the idle poll is due. dramatiq's own back-off re-polls an empty queue 5 ms·2^n after
every message — ~30 empty fetches (Lua calls) per meeting under load, the most frequent
Redis command a worker sent (`bench.pipeline`).

Backfill yields to live work before it is even fetched (`backfill_yield_ms`): each live
message sent marks live work in flight for that long, and while the mark holds a worker
process runs at most `backfill_live_inflight` backfill messages, fetching the next as one
ends: a trickle. The same work in bursts (a run free for its share of the time at full
concurrency) tripled live p99 on 2 cores. With `backfill_live_inflight` 0, consumers of
the backfill lanes fetch nothing while the mark holds, at most `backfill_yield_max_ms` in
a row; then they fetch freely for their share of the time (`backfill_yield_share`: a run
of `max · share / (1 − share)`). Without any yield, a backfill message fetched while its
org's live meetings run is turned away by the throttle only after its stage has read the
database, again and again: the backfill worker is niced, but the PostgreSQL backends and
Redis serving it are not.
"""

from __future__ import annotations

import heapq
import logging
import threading
import time
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any
from urllib.parse import parse_qsl, urlencode, urlsplit, urlunsplit

import redis
from dramatiq import Broker, Message
from dramatiq.broker import MessageProxy
from dramatiq.brokers.redis import RedisBroker, _RedisConsumer
from dramatiq.brokers.stub import StubBroker
from dramatiq.common import compute_backoff, current_millis, q_name
from dramatiq.errors import ConnectionClosed

from workers.lanes import is_backfill_queue

if TYPE_CHECKING:
    from meetsync.settings import Settings

log = logging.getLogger(__name__)

DRAMATIQ_IDLE_POLL_MS = 1000  # dramatiq's worker_timeout: the longest idle back-off
RECONNECT_S = 1.0  # the wake-up listener's pause after losing Redis
LIVE_MARK_MS = 60_000  # how long the mark of the last live message lives (its age is read)


class UnknownBroker(ValueError):
    """The broker URL's scheme is none of stub, redis or amqp."""


@dataclass(frozen=True)
class Yielding:
    """How long backfill consumers hold back after a live message (0: never), at most how
    long in a row, and the share of the time they still run under steady live work (0:
    one message after each longest hold)."""

    after_live_ms: int = 0
    max_ms: int = 10_000
    share: float = 0.0
    live_inflight: int = 0  # backfill messages a process still runs beside live work

    @classmethod
    def of(cls, settings: Settings) -> Yielding:
        """The yielding the settings ask for (`backfill_yield_ms`, `_max_ms`, `_share`,
        `backfill_live_inflight`)."""
        return cls(
            settings.backfill_yield_ms,
            settings.backfill_yield_max_ms,
            settings.backfill_yield_share,
            settings.backfill_live_inflight,
        )

    @property
    def free_ms(self) -> float:
        """How long a backfill consumer runs free after its longest hold."""
        share = min(max(self.share, 0.0), 0.95)
        return self.max_ms * share / (1.0 - share)


class LiveHold:
    """One backfill consumer's (or feeder's) yielding to live work: how long to hold back
    now, counting how long it has held back in a row and how long it may run free."""

    def __init__(self, broker: WakingRedisBroker) -> None:
        self.broker = broker
        self.yielding = broker.backfill_yield
        self.since: float | None = None  # monotonic s this run of holds began
        self.escaped = False  # the last answer was the one item a long hold lets through
        self.free_until = 0.0  # monotonic s: its share of the time, after a long hold

    def ms(self) -> int:
        """How long to hold back for live work; 0: go on (its share of the time, or one
        item, after a long hold)."""
        self.escaped = False
        if self.yielding.after_live_ms <= 0:
            return 0
        now = time.monotonic()
        if now < self.free_until:
            return 0  # no Redis call while running free
        age = self.broker.live_for_ms()
        if age < 0 or age >= self.yielding.after_live_ms:
            self.since = None
            return 0
        if self.since is None:
            self.since = now
        elif (now - self.since) * 1000 >= self.yielding.max_ms:
            self.since = None  # held back long enough: run free a while, then hold again
            if (free_ms := self.yielding.free_ms) > 0:
                self.free_until = now + free_ms / 1000
            else:
                self.escaped = True  # no share: one item
            return 0
        return max(1, self.yielding.after_live_ms - age)


def make_broker(
    url: str,
    *,
    idle_poll_ms: int = DRAMATIQ_IDLE_POLL_MS,
    wakeups: bool = True,
    backfill_yield: Yielding | None = None,
) -> Broker:
    """A dramatiq broker for `stub`, `redis://…[?namespace=…]` or `amqp://…`. On Redis,
    enqueues wake the consumers (`wakeups`), which poll an empty queue at least every
    `idle_poll_ms`, and backfill consumers yield to live messages (`backfill_yield`)."""
    if url == "stub":
        broker = StubBroker()
        broker.emit_after("process_boot")
        return broker
    if url.startswith(("redis://", "rediss://", "unix://")):
        url, namespace = _namespace(url)
        return WakingRedisBroker(
            url=url,
            namespace=namespace,
            idle_poll_ms=idle_poll_ms,
            wakeups=wakeups,
            backfill_yield=backfill_yield or Yielding(),
        )
    if url.startswith(("amqp://", "amqps://")):
        from dramatiq.brokers.rabbitmq import RabbitmqBroker

        return RabbitmqBroker(url=url)
    raise UnknownBroker(f"broker URL {url!r}: expected 'stub', redis://… or amqp://…")


class WakingRedisBroker(RedisBroker):
    """dramatiq's RedisBroker whose enqueues wake idle consumers at once."""

    def __init__(
        self,
        *,
        idle_poll_ms: int,
        wakeups: bool = True,
        backfill_yield: Yielding | None = None,
        **options: Any,
    ) -> None:
        super().__init__(**options)
        self.idle_poll_ms = max(1, idle_poll_ms)
        self.wakeups = wakeups
        self.backfill_yield = backfill_yield or Yielding()
        self.live_key = f"{self.namespace}:live-in-flight"
        # pub/sub channels span a server's databases: the database keeps deployments apart
        db = self.client.connection_pool.connection_kwargs.get("db", 0)
        self.channel = f"{self.namespace}:wakeup:{db}"
        self._events: dict[str, threading.Event] = {}
        self._lock = threading.Lock()
        self._listener: threading.Thread | None = None
        # backfill consumers of this process by queue (one restarted after a lost connection
        # replaces the last), and a fetch beside live work at a time
        self.backfill_consumers: dict[str, WakingConsumer] = {}
        self.trickle_lock = threading.Lock()
        self.trickle_freed = threading.Event()  # a backfill message beside live work ended

    @property
    def consumer_class(self) -> type[_RedisConsumer]:
        return WakingConsumer

    def consume(self, queue_name: str, prefetch: int = 1, timeout: int = 5000) -> Any:
        self.wakeup(queue_name)  # known before the listener's first wake-all
        if self.wakeups:
            self._listen()
        return super().consume(queue_name, prefetch, min(timeout, self.idle_poll_ms))

    def enqueue(self, message: Message[Any], *, delay: int | None = None) -> Message[Any]:
        sent: Message[Any] = super().enqueue(message, delay=delay)
        # every producer announces and marks, whatever its own settings: consumers decide
        pipe = self.client.pipeline(transaction=False)
        pipe.publish(self.channel, sent.queue_name)
        if not is_backfill_queue(sent.queue_name):
            pipe.set(self.live_key, 1, px=LIVE_MARK_MS)
        try:
            pipe.execute()
        except redis.RedisError:
            log.debug("wake-up for %s not sent; consumers poll", sent.queue_name)
        return sent

    def backfill_in_flight(self) -> int:
        """Backfill messages this process's consumers hold (fetched, not yet acked), but a
        delay queue's: what it holds only waits for its time, then goes to its queue."""
        consumers = list(self.backfill_consumers.items())
        return sum(c.outstanding_message_count for name, c in consumers if q_name(name) == name)

    def live_for_ms(self) -> int:
        """How long ago a live message was last sent, in ms; -1: not within the mark."""
        left = int(self.client.pttl(self.live_key))
        return LIVE_MARK_MS - left if left > 0 else -1

    def wakeup(self, queue_name: str) -> threading.Event:
        """The event set when a message is sent to `queue_name`."""
        with self._lock:
            return self._events.setdefault(queue_name, threading.Event())

    def _listen(self) -> None:
        """Start the one thread per process that turns announcements into wake-ups."""
        with self._lock:
            if self._listener is None or not self._listener.is_alive():
                self._listener = threading.Thread(
                    target=self._run_listener, name="broker-wakeups", daemon=True
                )
                self._listener.start()

    def _run_listener(self) -> None:
        while True:
            try:
                pubsub = self.client.pubsub(ignore_subscribe_messages=True)
                pubsub.subscribe(self.channel)
                # a wake-up may have been missed while (re)subscribing: everyone fetches once
                self._wake_all()
                for item in pubsub.listen():
                    name = item["data"]
                    event = self._events.get(name.decode() if isinstance(name, bytes) else name)
                    if event is not None:
                        event.set()
            except (redis.RedisError, OSError):
                time.sleep(RECONNECT_S)  # Redis is away: consumers poll on their own meanwhile

    def _wake_all(self) -> None:
        with self._lock:
            events = list(self._events.values())
        for event in events:
            event.set()


class WakingConsumer(_RedisConsumer):
    """A consumer that waits for its queue's wake-up (or a held message's eta), not a sleep."""

    broker: WakingRedisBroker

    def __init__(self, broker: WakingRedisBroker, queue_name: str, prefetch: int, timeout: int):
        super().__init__(broker, queue_name, prefetch, timeout)
        self.woken = broker.wakeup(queue_name)
        self.etas: list[int] = []  # of delayed messages handed to the worker, soonest first
        backfill = is_backfill_queue(queue_name) and broker.backfill_yield.after_live_ms > 0
        self.hold = LiveHold(broker) if backfill else None
        self.trickle = False  # the one message a long yield lets through
        self.more = False  # the last fetch took all it could: the queue may hold more
        self.fetched_at = 0.0  # monotonic s of the last fetch: the idle poll counts from it
        if backfill:
            # what a yielding consumer holds is what a live meeting arriving must wait out:
            # its threads' worth (dramatiq prefetches twice that), not more
            self.prefetch = max(1, prefetch // 2)
            broker.backfill_consumers[queue_name] = self

    def __next__(self) -> MessageProxy | None:
        if not self.message_cache and (wait_ms := self._yield_ms()) > 0 and not self._beside_live():
            # a live message must not wake a yielding consumer; one beside it ending may
            self.broker.trickle_freed.wait(wait_ms / 1000)
            return None
        if not self.message_cache:
            if self.broker.wakeups and not self._fetch_due():
                self.woken.wait(self._until_due(self._idle_left_ms()) / 1000)
                return None  # the worker moves what fell due; we fetch when there is cause
            # cleared before the fetch: a message sent after it sets the event again
            self.woken.clear()
            self.fetched_at = time.monotonic()
            wanted = self.prefetch - self.outstanding_message_count
            try:
                if wanted > 0:
                    if self.trickle:
                        wanted, self.trickle = 1, False
                    self.message_cache = self.broker.do_fetch(self.queue_name, wanted)
            except redis.ConnectionError as exc:
                raise ConnectionClosed(exc) from None
            self.more = len(self.message_cache) >= wanted  # full (or no slot): maybe more
            if not self.message_cache:
                if self.broker.wakeups:
                    self.woken.wait(self._until_due(self.timeout) / 1000)
                    return None
                self.misses, backoff_ms = compute_backoff(self.misses, max_backoff=self.timeout)
                self.woken.wait(self._until_due(backoff_ms) / 1000)
                return None
        message: MessageProxy | None = super().__next__()
        eta = message.options.get("eta") if message is not None else None
        if isinstance(eta, int):
            heapq.heappush(self.etas, eta)
        return message

    def ack(self, message: MessageProxy) -> None:
        try:
            super().ack(message)
        finally:
            self._freed()

    def nack(self, message: MessageProxy) -> None:
        try:
            super().nack(message)
        finally:
            self._freed()

    def _freed(self) -> None:
        """A slot came free (called from a worker thread): fetch again if the queue may
        hold more than the last fetch could take."""
        if self.more:
            self.woken.set()
        if self.hold is not None and self.broker.backfill_yield.live_inflight > 0:
            self.broker.trickle_freed.set()  # the next backfill message beside live work

    def _beside_live(self) -> bool:
        """While live work runs, fetch one message if this process's backfill consumers
        hold fewer than `live_inflight` (the trickle: module docstring); whether one came."""
        limit = self.broker.backfill_yield.live_inflight
        if limit <= 0:
            return False
        with self.broker.trickle_lock:
            self.broker.trickle_freed.clear()  # set again when what is fetched here ends
            if self.broker.backfill_in_flight() >= limit:
                return False
            self.fetched_at = time.monotonic()
            try:
                self.message_cache = self.broker.do_fetch(self.queue_name, 1)
            except redis.ConnectionError as exc:
                raise ConnectionClosed(exc) from None
        return bool(self.message_cache)

    def _fetch_due(self) -> bool:
        """Whether a fetch may find something: woken, a slot free for a queue that may hold
        more, or the idle poll (the safety net for a wake-up lost) due."""
        if self.woken.is_set() or self._idle_left_ms() <= 0:
            return True
        return self.more and self.outstanding_message_count < self.prefetch

    def _idle_left_ms(self) -> int:
        return int(self.timeout - (time.monotonic() - self.fetched_at) * 1000)

    def _yield_ms(self) -> int:
        """How long this backfill consumer holds back for live work; 0: fetch now."""
        if self.hold is None:
            return 0
        try:
            wait = self.hold.ms()
        except redis.ConnectionError as exc:
            raise ConnectionClosed(exc) from None
        if wait <= 0:
            self.trickle = self.hold.escaped
            return 0
        return max(1, min(wait, self.timeout, self._until_due(wait) or 1))

    def _until_due(self, backoff_ms: int) -> int:
        """The back-off, shortened to when the soonest held delayed message falls due (the
        worker moves due messages to their queue only between two of our calls)."""
        now = current_millis()
        due = False
        while self.etas and self.etas[0] <= now:
            heapq.heappop(self.etas)
            due = True
        if due:
            return 0  # back to the worker at once: it moves what fell due
        if not self.etas:
            return backoff_ms
        return max(1, min(backoff_ms, self.etas[0] - now + 1))


def _namespace(url: str) -> tuple[str, str]:
    """Split `?namespace=…` off a Redis URL: several deployments can share one Redis."""
    parts = urlsplit(url)
    query = parse_qsl(parts.query)
    namespace = next((v for k, v in query if k == "namespace"), "dramatiq")
    rest = urlencode([(k, v) for k, v in query if k != "namespace"])
    return urlunsplit(parts._replace(query=rest)), namespace
