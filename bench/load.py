"""A paced open-loop load driver for the HTTP benches (bench.webhook, bench.interactions).

`paced` sends prepared raw HTTP/1.1 requests at a fixed rate on keep-alive connections,
whatever the answers do (open loop: a slow server shows up as latency, not as fewer
requests); waiting for a free connection counts as latency, and the client costs little
next to the server. `cpu_load` adds busy processes, to measure a server on a loaded
machine on purpose rather than by chance.
"""

from __future__ import annotations

import asyncio
import multiprocessing
import socket
import statistics
import time
from collections.abc import Callable, Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass, field
from typing import Any

import httpx

CONNECTIONS = 32
Connection = tuple[asyncio.StreamReader, asyncio.StreamWriter]


@dataclass
class Run:
    """Latencies (ms) and answers by status of the requests sent at pace."""

    latencies: list[float] = field(default_factory=list)
    statuses: dict[int, int] = field(default_factory=dict)
    elapsed_s: float = 0.0

    def add(self, other: Run) -> None:
        self.latencies += other.latencies
        self.elapsed_s += other.elapsed_s
        for status, count in other.statuses.items():
            self.statuses[status] = self.statuses.get(status, 0) + count

    def summary(self) -> dict[str, float]:
        """{"rps", "p50_ms", "p99_ms"} of what was measured."""
        ordered = sorted(self.latencies)
        return {
            "rps": round(len(ordered) / self.elapsed_s, 1) if self.elapsed_s else 0.0,
            "p50_ms": round(statistics.median(ordered), 2) if ordered else 0.0,
            "p99_ms": round(ordered[max(0, int(len(ordered) * 0.99) - 1)], 2) if ordered else 0.0,
        }


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def wait_up(url: str, timeout: float = 120.0) -> None:
    """Until `url` answers anything at /openapi.json."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        try:
            httpx.get(url + "/openapi.json", timeout=1, trust_env=False)
            return
        except httpx.TransportError:
            time.sleep(0.1)
    raise RuntimeError(f"{url} did not start")


def serve(target: Callable[..., None], *args: Any) -> multiprocessing.process.BaseProcess:
    """A server in a fresh (spawned) process of its own."""
    process = multiprocessing.get_context("spawn").Process(target=target, args=args, daemon=True)
    process.start()
    return process


def stop(*processes: multiprocessing.process.BaseProcess) -> None:
    for process in processes:
        process.terminate()
        process.join(timeout=10)


async def exchange(
    reader: asyncio.StreamReader, writer: asyncio.StreamWriter, request: bytes
) -> int:
    """Send one raw request on a keep-alive connection; the answer's status."""
    writer.write(request)
    head = await reader.readuntil(b"\r\n\r\n")
    status = int(head.split(b" ", 2)[1])
    length = 0
    for line in head.split(b"\r\n"):
        if line.lower().startswith(b"content-length:"):
            length = int(line.split(b":", 1)[1])
    await reader.readexactly(length)
    return status


async def paced(
    port: int, requests: Sequence[bytes], rate: float, warmup: Sequence[bytes] = ()
) -> Run:
    """Send `requests` at `rate` per second (the `warmup` ones first, one at a time and
    not counted); the idle connections are closed at the end."""
    idle: asyncio.Queue[Connection] = asyncio.Queue()
    for _ in range(CONNECTIONS):
        idle.put_nowait(await asyncio.open_connection("127.0.0.1", port))
    run = Run()

    async def one(request: bytes, counted: bool = True) -> None:
        started = time.perf_counter()  # waiting for a free connection counts as latency
        reader, writer = await idle.get()
        status = await exchange(reader, writer, request)
        if counted:
            run.latencies.append((time.perf_counter() - started) * 1000)
            run.statuses[status] = run.statuses.get(status, 0) + 1
        idle.put_nowait((reader, writer))

    try:
        for request in warmup:
            await one(request, counted=False)
        began = time.perf_counter()
        tasks = []
        for i, request in enumerate(requests):
            delay = began + i / rate - time.perf_counter()
            if delay > 0:
                await asyncio.sleep(delay)
            tasks.append(asyncio.create_task(one(request)))
        await asyncio.gather(*tasks)
        run.elapsed_s = time.perf_counter() - began
    finally:
        while not idle.empty():
            _, writer = idle.get_nowait()
            writer.close()
    return run


def _spin(stop_at: float) -> None:
    while time.monotonic() < stop_at:
        sum(range(1000))


@contextmanager
def cpu_load(processes: int, seconds: float = 3600.0) -> Iterator[None]:
    """`processes` busy loops beside the bench (nothing when 0), stopped on exit."""
    context = multiprocessing.get_context("spawn")
    spinners = [
        context.Process(target=_spin, args=(time.monotonic() + seconds,), daemon=True)
        for _ in range(processes)
    ]
    for spinner in spinners:
        spinner.start()
    try:
        yield
    finally:
        stop(*spinners)
