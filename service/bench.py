"""`review-router bench throughput`: raw encoder rate, ingest rate over HTTP and scoring-worker rate,
measured on the same outputs in one run, so the worker's overhead over the encoder is visible.
"""

from __future__ import annotations

import json
import os
import tempfile
import threading
import time
from itertools import cycle, islice
from pathlib import Path
from typing import Any

import httpx

from service.demo import halueval_outputs
from service.settings import Settings

BATCH = 100


def _outputs(data: Path, count: int) -> list[dict[str, Any]]:
    base = list(halueval_outputs(data, count))
    return [
        {**o, "external_id": f"bench-{i}", "app": "bench"} for i, o in enumerate(islice(cycle(base), count))
    ]


def _serve(settings: Settings) -> tuple[Any, threading.Thread, str]:
    import uvicorn

    from service.app import create_app

    server = uvicorn.Server(
        uvicorn.Config(create_app(settings), host="127.0.0.1", port=0, log_level="warning", access_log=False)
    )
    thread = threading.Thread(target=server.run, daemon=True)
    thread.start()
    while not server.started:
        time.sleep(0.02)
    port = server.servers[0].sockets[0].getsockname()[1]
    return server, thread, f"http://127.0.0.1:{port}"


def run_throughput(settings: Settings, *, data: Path, count: int, out: Path) -> int:
    """Run the throughput benchmark and print (and save as JSON) its figures."""
    from service.queueing import EmbeddedRedis
    from service.storage.db import engine_for, upgrade
    from workers import scoring
    from workers.clients import get_embedder
    from workers.main import run_worker

    outputs = _outputs(data, count)
    with tempfile.TemporaryDirectory(prefix="rr-bench-") as tmp:
        overrides: dict[str, Any] = {"data_dir": Path(tmp), "rq_queue": f"rr-bench-{os.getpid()}"}
        if not os.environ.get("DATABASE_URL"):
            overrides["database_url"] = ""
        settings = settings.model_copy(update=overrides)
        embedded = None
        if not settings.redis_url:
            embedded = EmbeddedRedis(settings)
            embedded.start()
            settings = settings.model_copy(update={"redis_url": embedded.url})
        try:
            upgrade(engine_for(settings))
            embedder = get_embedder(settings.embedding_model_path, settings.embedding_batch_size)
            texts = [
                scoring.embedding_text(
                    o["messages"][0]["content"], o["response"], max_chars=settings.embedding_max_chars
                )
                for o in outputs
            ]
            embedder.encode(texts[:64])  # warm-up
            t0 = time.perf_counter()
            embedder.encode(texts)
            encode_s = time.perf_counter() - t0

            server, thread, base = _serve(settings)
            half = len(outputs) // 2
            with httpx.Client(base_url=base, timeout=60) as client:
                t0 = time.perf_counter()
                for o in outputs[:half]:
                    client.post("/v1/outputs", json=o).raise_for_status()
                single_s = time.perf_counter() - t0
                t0 = time.perf_counter()
                for start in range(half, len(outputs), BATCH):
                    client.post(
                        "/v1/outputs/batch", json={"outputs": outputs[start : start + BATCH]}
                    ).raise_for_status()
                batch_s = time.perf_counter() - t0

                t0 = time.perf_counter()
                run_worker(settings, burst=True)
                score_s = time.perf_counter() - t0
                stats = client.get("/v1/stats").json()["outputs"]
            server.should_exit = True
            thread.join(10)
        finally:
            if embedded is not None:
                embedded.stop()

    scored = count - stats["received"]
    figures = {
        "outputs": count,
        "database": settings.resolved_database_url.split(":", 1)[0],
        "encoder_outputs_per_s": count / encode_s,
        "ingest_single_outputs_per_s": half / single_s,
        "ingest_batch_outputs_per_s": (count - half) / batch_s,
        "worker_outputs_per_s": scored / score_s,
        "worker_to_encoder_ratio": (scored / score_s) / (count / encode_s),
        "scored": scored,
        "cpu_threads": os.cpu_count(),
    }
    out.mkdir(parents=True, exist_ok=True)
    (out / "throughput.json").write_text(json.dumps(figures, indent=2))
    print(f"throughput on {count} HaluEval outputs ({figures['database']}, {os.cpu_count()} CPUs)")
    print(f"  raw encoder (all-MiniLM-L6-v2)   {figures['encoder_outputs_per_s']:8.1f} outputs/s")
    print(f"  ingest, one POST per output      {figures['ingest_single_outputs_per_s']:8.1f} outputs/s")
    print(f"  ingest, batches of {BATCH}           {figures['ingest_batch_outputs_per_s']:8.1f} outputs/s")
    print(
        f"  scoring worker (1, end to end)   {figures['worker_outputs_per_s']:8.1f} outputs/s "
        f"({scored} scored)"
    )
    print(f"  worker / raw encoder             {figures['worker_to_encoder_ratio']:8.2f}")
    print(f"written to {out / 'throughput.json'}")
    return 0
