"""`review-router bench loop`: `review-router replay` on the committed labelled datasets, against a
fresh instance it starts itself: the API under uvicorn and one `review-router worker` process, on
PostgreSQL (a throwaway schema) and Redis, with product defaults except a raised daily budget.

A benchmark figure is therefore a product figure: the outputs go in through the REST API, the real
worker scores, selects, learns and re-ranks, and reviewers work the queue through claims and
verdicts.
"""

from __future__ import annotations

import json
import os
import sys
import tempfile
import time
import uuid
from collections.abc import Iterator, Mapping, Sequence
from contextlib import contextmanager
from pathlib import Path
from typing import Any

from benchmarks.throughput import bench_schema, drop_work_queue, process_env, processes, serving
from service.cli.replay import commit, write_results
from service.replay.data import Columns, load, read_rows
from service.settings import QueueConfig, Settings

REPO_ROOT = Path(__file__).resolve().parents[1]
DATASETS: dict[str, tuple[Path, Columns]] = {
    "halueval_general": (
        REPO_ROOT / "data" / "halueval" / "general_data.jsonl.gz",
        # One row's ID is the word "ID", repeated: rows are numbered instead.
        Columns(prompt="user_query", response="chatgpt_response", label="hallucination", id=""),
    ),
    "generated": (REPO_ROOT / "benchmarks" / "qa_smollm2.jsonl.gz", Columns(label="correct", id="id")),
    # Text-only QA like most apps send: each HaluEval QA question with its right or its hallucinated
    # answer (a seeded draw, 37.6% hallucinated), no passage, no log-probs, no samples.
    "halueval_qa": (
        REPO_ROOT / "data" / "halueval" / "qa_one_turn.jsonl.gz",
        Columns(label="failed", id="id"),
    ),
    # Model answers that people judged: 700 of TruthfulQA's 22,434 GPT-3-family answers to its 817
    # questions (a seeded draw), each judged true or not by a person. Text only.
    "truthfulqa_judged": (
        REPO_ROOT / "data" / "truthfulqa" / "finetune_truth.jsonl.gz",
        Columns(label="failed", id="id"),
    ),
}
QA_FAILURE_SHARE = 0.376
JUDGED_ANSWERS = 700


def text_only_qa(source: Path, into: Path, *, seed: int = 7) -> Path:
    """HaluEval QA as text-only traffic: each question answered once, right or hallucinated."""
    import gzip
    import json
    import random

    rng = random.Random(seed)
    with gzip.open(source, "rt", encoding="utf-8") as rows, into.open("w") as out:
        for i, line in enumerate(rows):
            row = json.loads(line)
            bad = rng.random() < QA_FAILURE_SHARE
            answer = row["hallucinated_answer"] if bad else row["right_answer"]
            out.write(
                json.dumps({"id": i, "question": row["question"], "answer": answer, "failed": bad}) + "\n"
            )
    return into


def judged_answers(source: Path, into: Path, *, count: int = JUDGED_ANSWERS, seed: int = 11) -> Path:
    """TruthfulQA's judged answers as text-only traffic: ``count`` rows drawn without replacement.

    A row is ``{"prompt": "Q: <question>\\nA: <answer>\\nTrue:", "completion": " yes" | " no"}``; an
    answer judged untrue is a failure."""
    import json
    import random

    rows = list(read_rows(source))
    chosen = sorted(random.Random(seed).sample(range(len(rows)), min(count, len(rows))))
    with into.open("w") as out:
        for i in chosen:
            text = rows[i]["prompt"].removeprefix("Q: ").removesuffix("\nTrue:")
            question, answer = text.split("\nA: ", 1)
            failed = rows[i]["completion"].strip() == "no"
            out.write(json.dumps({"id": i, "question": question, "answer": answer.strip(), "failed": failed}))
            out.write("\n")
    return into


#: Datasets whose rows are drawn or reshaped into replay traffic first.
PREPARE = {"halueval_qa": text_only_qa, "truthfulqa_judged": judged_answers}


def items_of(name: str, *, limit: int | None = None) -> list[Any]:
    """A dataset's rows as replay items, posted under the app named after it."""
    path, columns = DATASETS[name]
    app = name.replace("_", "-")
    if name not in PREPARE:
        return load(path, columns, app=app, limit=limit).items
    with tempfile.TemporaryDirectory() as tmp:
        return load(PREPARE[name](path, Path(tmp) / f"{name}.jsonl"), columns, app=app, limit=limit).items


BUDGET = 1_000_000  # the one setting raised: a day's budget that never runs out during a replay
PASSWORD = "replay-" + uuid.uuid4().hex


@contextmanager
def instance(
    database_url: str, redis_url: str, queue: Mapping[str, Any] | None = None
) -> Iterator[tuple[str, Settings]]:
    """A fresh API + worker on its own schema and RQ queue; yields the base URL and the settings.
    ``queue`` sets more of the default queue's configuration (its budget is always ``BUDGET``)."""
    from service.storage.db import engine_for, upgrade

    config = {**(queue or {}), "name": "default", "budget_per_day": BUDGET}

    with (
        tempfile.TemporaryDirectory(prefix="rr-loop-") as tmp,
        bench_schema(database_url, prefix="loop") as url,
    ):
        settings = Settings(
            database_url=url,
            redis_url=redis_url,
            data_dir=Path(tmp),
            rq_queue=f"rr-loop-{os.getpid()}-{uuid.uuid4().hex[:6]}",
            queues=[QueueConfig(**config)],
        )
        upgrade(engine_for(settings))
        env = process_env(settings, RR_QUEUES=json.dumps([config]))
        worker = [sys.executable, "-m", "service.cli", "worker", "--name", f"loop-{uuid.uuid4().hex[:8]}"]
        try:
            with processes([worker], env), serving(settings) as base:
                yield base, settings
        finally:
            drop_work_queue(settings)
            engine_for(settings).dispose()


def accounts(settings: Settings) -> tuple[str, list[tuple[str, str]]]:
    """An ingest key and one reviewer account for the replay."""
    from service import auth
    from service.storage import accounts as repo
    from service.storage.db import engine_for, transaction
    from service.storage.tables import utcnow

    with transaction(engine_for(settings)) as session:
        repo.add_user(
            session,
            username="replayer",
            password_hash=auth.hash_password(PASSWORD),
            role="reviewer",
            now=utcnow(),
        )
        key, _ = repo.create_api_key(session, name="replay", created_by=None, now=utcnow())
    return key, [("replayer", PASSWORD)]


def run_loop(
    *,
    datasets: Sequence[str],
    database_url: str,
    redis_url: str,
    out: Path,
    limit: int | None = None,
    reviews: int | None = None,
    queue: Mapping[str, Any] | None = None,
    suffix: str = "",
) -> int:
    """Replay each dataset through a fresh instance; print, plot and save its figures. ``queue``
    sets more of the default queue's configuration than its budget (``target_width``, say); the
    results then go to ``loop_<name><suffix>.json``."""
    from service.replay.report import table
    from service.replay.run import ReplayOptions, replay, report

    for name in datasets:
        path, _ = DATASETS[name]
        items = items_of(name, limit=limit)
        with instance(database_url, redis_url, queue) as (base, settings):
            key, reviewers = accounts(settings)
            opts = ReplayOptions(
                url=base, api_key=key, reviewers=reviewers, app=name.replace("_", "-"), reviews=reviews
            )
            t0 = time.perf_counter()
            measured_on = commit()
            run = replay(items, opts)
            figures = report(run)
        print(table(name, figures))
        print(f"  wall time {time.perf_counter() - t0:.0f} s")
        options: dict[str, Any] = {
            "path": "REST API -> review-router worker (PostgreSQL + Redis) -> claims and verdicts",
            "settings": f"product defaults; default queue budget_per_day={BUDGET}"
            + "".join(f", {k}={v}" for k, v in (queue or {}).items()),
            "dataset": str(path.relative_to(REPO_ROOT)),
            "cpus": os.cpu_count(),
        }
        write_results(
            name,
            figures,
            options,
            measured_on=measured_on,
            out=out / f"loop_{name}{suffix}.json",
            plot_to=out / f"loop_{name}{suffix}.png",
        )
    return 0
