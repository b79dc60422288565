"""A Python load generator, used when wrk is not installed: several processes, each with
threads holding one keep-alive connection (http.client), each sending its share of the
pre-signed events once. Slower per request than wrk: its CPU is reported, so check it is
not the limit.
"""

from __future__ import annotations

import http.client
import multiprocessing
import threading
import time
from collections.abc import Sequence
from typing import Any

from bench.events import Signed, post_signed


def _connection_worker(
    port: int, share: Sequence[Signed], deadline: float, out: list[Any], lock: threading.Lock
) -> None:
    latencies: list[float] = []
    non200 = errors = 0
    first = last = 0.0
    connection = http.client.HTTPConnection("127.0.0.1", port, timeout=10)
    for event in share:
        if time.monotonic() > deadline:
            break
        start = time.perf_counter()
        if not first:
            first = time.monotonic()
        try:
            status, _ = post_signed(connection, event)
            if status != 200:
                non200 += 1
        except (OSError, http.client.HTTPException):
            errors += 1
            connection.close()
            connection = http.client.HTTPConnection("127.0.0.1", port, timeout=10)
            continue
        latencies.append(time.perf_counter() - start)
        last = time.monotonic()
    connection.close()
    with lock:
        out.append((latencies, non200, errors, first, last))


def _process_main(
    port: int, shares: Sequence[Sequence[Signed]], deadline: float, queue: Any
) -> None:
    out: list[Any] = []
    lock = threading.Lock()
    threads = [
        threading.Thread(target=_connection_worker, args=(port, share, deadline, out, lock))
        for share in shares
    ]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    # this process's CPU, which the parent cannot read once the process has exited
    queue.put((out, time.process_time()))


def run(
    port: int,
    events: Sequence[Signed],
    *,
    connections: int,
    processes: int = 2,
    max_seconds: float = 300.0,
    on_start: Any = None,
) -> dict[str, Any]:
    """Send every event once over `connections` connections; a user's events share one."""
    shares: list[list[Signed]] = [[] for _ in range(connections)]
    slot: dict[str, int] = {}
    for event in events:
        shares[slot.setdefault(event.user_id, len(slot) % connections)].append(event)
    context = multiprocessing.get_context("fork")
    queue = context.Queue()
    deadline = time.monotonic() + max_seconds
    children = [
        context.Process(
            target=_process_main,
            args=(port, shares[p::processes], deadline, queue),
            daemon=True,
        )
        for p in range(processes)
    ]
    for child in children:
        child.start()
    if on_start is not None:
        on_start([child.pid for child in children])
    results: list[Any] = []
    cpu_seconds = 0.0
    for _ in children:
        out, cpu = queue.get(timeout=max_seconds + 30)
        results += out
        cpu_seconds += cpu
    for child in children:
        child.join(timeout=10)
    latencies = sorted(x for r in results for x in r[0])
    firsts = [r[3] for r in results if r[3]]
    lasts = [r[4] for r in results if r[4]]
    window = (max(lasts) - min(firsts)) if firsts and lasts else 0.0

    def pct(p: float) -> float:
        if not latencies:
            return float("nan")
        return latencies[min(len(latencies) - 1, int(p / 100 * len(latencies)))] * 1000

    return {
        "requests": len(latencies),
        "responses": len(latencies),
        "non200": sum(r[1] for r in results),
        "window_s": window,
        "unfinished_threads": 0,
        "latency_ms": {
            "p50": pct(50),
            "p90": pct(90),
            "p99": pct(99),
            "max": latencies[-1] * 1000 if latencies else float("nan"),
            "mean": sum(latencies) / len(latencies) * 1000 if latencies else float("nan"),
        },
        "errors": {"other": sum(r[2] for r in results)},
        "children_cpu_s": cpu_seconds,
    }
