"""`review-router bench load`: ingest latency and rate at a fixed offered load against two API
processes on PostgreSQL, then how fast one and two scoring workers drain the backlog.

Everything runs on this machine over loopback, as an operator would deploy it: two `review-router
serve` processes (each its own uvicorn), one PostgreSQL schema of its own, Redis, and `review-router
worker` processes. The client sends on a schedule from 32 concurrent senders: a request leaves at its
time whether or not earlier ones have answered (while a sender is free), so a slow server shows up
as latency; if every sender is waiting, the achieved rate falls below the offered one and says so.
"""

from __future__ import annotations

import asyncio
import json
import os
import socket
import sys
import tempfile
import time
import uuid
from datetime import timedelta
from itertools import cycle, islice
from pathlib import Path
from typing import Any

import httpx
import numpy as np

from benchmarks.throughput import bench_schema, drop_work_queue, process_env, processes
from service.cli.replay import commit
from service.demo import halueval_outputs
from service.progress import Progress
from service.settings import Settings

REPO_ROOT = Path(__file__).resolve().parents[1]
TARGET_P99_MS = 50.0
SENDERS = 32
#: Outputs per request in the batched phase: what the client library's background sender posts.
BATCH = 10


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def _wait_up(urls: list[str], timeout: float = 60) -> None:
    deadline = time.monotonic() + timeout
    for url in urls:
        while True:
            try:
                if httpx.get(f"{url}/healthz", timeout=2).status_code == 200:
                    break
            except httpx.HTTPError:
                pass
            if time.monotonic() > deadline:
                raise SystemExit(f"{url} did not start")
            time.sleep(0.2)


async def _offer(
    urls: list[str], key: str, outputs: list[dict[str, Any]], rate: float, *, batch: int = 1
) -> dict[str, Any]:
    """Post output i at ``i / rate`` seconds (open loop: a slow answer does not delay the next
    send while a sender is free), round-robin over the API processes, from SENDERS concurrent
    senders each with its own keep-alive connection. With ``batch`` > 1, outputs go ``batch`` at a
    time to ``/v1/outputs/batch`` at the same rate of outputs, as the client library sends them."""
    latencies: list[float] = []
    failures: dict[str, int] = {}
    if batch > 1:
        groups = [outputs[i : i + batch] for i in range(0, len(outputs), batch)]
        bodies = [json.dumps({"outputs": g}).encode() for g in groups]
        path, rate, accepted = "/v1/outputs/batch", rate / batch, "202"
    else:
        bodies = [json.dumps(b).encode() for b in outputs]
        path, accepted = "/v1/outputs", "202"
    headers = {"Authorization": f"Bearer {key}", "Content-Type": "application/json"}
    next_index = 0
    started = time.perf_counter()

    async def sender() -> None:
        nonlocal next_index
        async with httpx.AsyncClient(headers=headers, timeout=30) as client:
            while next_index < len(bodies):
                i = next_index
                next_index += 1
                delay = started + i / rate - time.perf_counter()
                if delay > 0:
                    await asyncio.sleep(delay)
                t0 = time.perf_counter()
                try:
                    r = await client.post(f"{urls[i % len(urls)]}{path}", content=bodies[i])
                    status = str(r.status_code)
                except httpx.HTTPError as exc:
                    status = type(exc).__name__
                latencies.append((time.perf_counter() - t0) * 1000)
                progress.update(batch)
                if status != accepted:
                    failures[status] = failures.get(status, 0) + 1

    with Progress(total=len(outputs), what="outputs posted") as progress:
        await asyncio.gather(*(sender() for _ in range(SENDERS)))
    elapsed = time.perf_counter() - started
    lat = np.asarray(latencies)
    return {
        "offered_per_s": round(rate * batch, 1),
        "outputs": len(outputs),
        "outputs_per_request": batch,
        "requests": len(bodies),
        "senders": SENDERS,
        "achieved_per_s": round(len(outputs) / elapsed, 1),
        "p50_ms": round(float(np.percentile(lat, 50)), 1),
        "p99_ms": round(float(np.percentile(lat, 99)), 1),
        "max_ms": round(float(lat.max()), 1),
        "errors": failures,
    }


def _scored(settings: Settings) -> int:
    from sqlalchemy import func, select

    from service.storage.db import engine_for, transaction
    from service.storage.tables import Output

    with transaction(engine_for(settings)) as session:
        return int(session.scalar(select(func.count()).where(Output.scored_at.is_not(None))) or 0)


def _drain(settings: Settings, env: dict[str, str], workers: int, seconds: float) -> dict[str, Any]:
    """Scoring rate of ``workers`` worker processes over ``seconds``, after they loaded the encoder."""
    command = [sys.executable, "-m", "service.cli", "worker"]
    names = [f"load-{uuid.uuid4().hex[:6]}" for _ in range(workers)]
    with processes([[*command, "--name", name] for name in names], env, quiet=True):
        before, t0 = _scored(settings), time.monotonic()
        while _scored(settings) == before and time.monotonic() - t0 < 120:  # encoder loading
            time.sleep(0.5)
        start_n, start_t = _scored(settings), time.monotonic()
        time.sleep(seconds)
        done = _scored(settings) - start_n
        rate = done / (time.monotonic() - start_t)
    return {"workers": workers, "scored": done, "per_s": round(rate, 1), "window_s": seconds}


def run_load(
    *, database_url: str, redis_url: str, data: Path, rate: float, seconds: float, drain_s: float, out: Path
) -> int:
    from service.storage import accounts
    from service.storage.db import engine_for, transaction, upgrade
    from service.storage.tables import utcnow

    count = int(rate * seconds)
    base = list(halueval_outputs(data, 500))
    outputs, batched = (
        [
            {**o, "external_id": f"load-{uuid.uuid4().hex[:8]}-{i}", "app": "load"}
            for i, o in enumerate(islice(cycle(base), count))
        ]
        for _ in range(2)
    )
    with (
        tempfile.TemporaryDirectory(prefix="rr-load-") as tmp,
        bench_schema(database_url, prefix="load") as url,
    ):
        settings = Settings(
            database_url=url,
            redis_url=redis_url,
            data_dir=Path(tmp),
            rq_queue=f"rr-load-{uuid.uuid4().hex[:6]}",
        )
        upgrade(engine_for(settings))
        with transaction(engine_for(settings)) as session:
            key, _ = accounts.create_api_key(session, name="load", created_by=None, now=utcnow())
        env = process_env(settings, RR_SWEEP_INTERVAL_SECONDS=str(timedelta(hours=1).total_seconds()))
        ports = [_free_port(), _free_port()]
        urls = [f"http://127.0.0.1:{p}" for p in ports]
        serve = [[sys.executable, "-m", "service.cli", "serve", "--port", str(p)] for p in ports]
        try:
            with processes(serve, env, quiet=True):
                _wait_up(urls)
                print(f"offering {rate:g} outputs/s for {seconds:g} s to 2 API processes ...", flush=True)
                ingest = asyncio.run(_offer(urls, key, outputs, rate))
                print(f"... and again in batches of {BATCH} (/v1/outputs/batch) ...", flush=True)
                in_batches = asyncio.run(_offer(urls, key, batched, rate, batch=BATCH))
            print(f"draining the backlog of {2 * count} with 1, then 2 workers ...", flush=True)
            drains = [_drain(settings, env, n, drain_s) for n in (1, 2)]
        finally:
            drop_work_queue(settings)
            engine_for(settings).dispose()
    met = ingest["p99_ms"] < TARGET_P99_MS
    met_batched = in_batches["p99_ms"] < TARGET_P99_MS and in_batches["achieved_per_s"] >= 0.95 * rate
    report = {
        "commit": commit(),
        "setup": "2 `review-router serve` processes, PostgreSQL, Redis, loopback, open-loop asyncio client",
        "cpus": os.cpu_count(),
        "ingest": ingest,
        "ingest_batched": in_batches,
        "target": {"p99_ms_below": TARGET_P99_MS, "at_per_s": rate, "met": met, "met_batched": met_batched},
        "drain": drains,
    }
    for name, figures, ok in (
        ("single posts", ingest, met),
        (f"batches of {BATCH}", in_batches, met_batched),
    ):
        print(
            f"ingest ({name}) at {rate:g} outputs/s offered: achieved {figures['achieved_per_s']}/s, "
            f"p50 {figures['p50_ms']} ms, p99 {figures['p99_ms']} ms per request "
            f"(target < {TARGET_P99_MS:g} ms: {'met' if ok else 'not met'}), "
            f"errors {figures['errors'] or 'none'}"
        )
    for d in drains:
        print(f"drain with {d['workers']} worker(s): {d['per_s']} outputs/s over {d['window_s']:g} s")
    out.mkdir(parents=True, exist_ok=True)
    (out / "load_postgres.json").write_text(json.dumps(report, indent=2) + "\n")
    print(f"written to {out / 'load_postgres.json'}")
    return 0
