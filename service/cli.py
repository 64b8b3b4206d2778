"""`review-router`: serve the API and review pages, run workers, run the demo, migrate, benchmark."""

from __future__ import annotations

import argparse
import logging
import os
import sys
from collections.abc import Sequence
from pathlib import Path

from service.cli_accounts import add_commands as add_account_commands
from service.cli_collections import add_commands as add_collection_commands
from service.cli_replay import add_commands as add_replay_commands
from service.settings import get_settings
from service.stack import embedded_stack

log = logging.getLogger("review_router")
REPO_ROOT = Path(__file__).resolve().parents[1]
DEMO_DATA = REPO_ROOT / "data" / "halueval" / "general_data.jsonl.gz"


def _logging(verbose: bool) -> None:
    logging.basicConfig(
        level=logging.DEBUG if verbose else logging.INFO,
        format="%(asctime)s %(levelname)s %(name)s: %(message)s",
        datefmt="%H:%M:%S",
    )
    if not verbose:
        for noisy in ("alembic", "httpx", "sentence_transformers", "rq.worker", "uvicorn.access"):
            logging.getLogger(noisy).setLevel(logging.WARNING)


def cmd_serve(args: argparse.Namespace) -> int:
    import uvicorn

    from service.app import create_app

    with embedded_stack(get_settings()) as settings:
        uvicorn.run(create_app(settings, sweeper=True), host=args.host, port=args.port, log_level="info")
    return 0


def cmd_worker(args: argparse.Namespace) -> int:
    from workers.main import run_worker

    run_worker(get_settings(), burst=args.burst, name=args.name)
    return 0


def cmd_demo(args: argparse.Namespace) -> int:
    from service.demo import run_demo

    return run_demo(get_settings(), data=Path(args.data), count=args.count, host=args.host, port=args.port)


def cmd_db(args: argparse.Namespace) -> int:
    from service.storage.db import engine_for, upgrade

    settings = get_settings()
    upgrade(engine_for(settings))
    print(f"database at head: {settings.resolved_database_url.split('@')[-1]}")
    return 0


def cmd_train(args: argparse.Namespace) -> int:
    from service.storage.db import engine_for, upgrade
    from workers import jobs, training

    settings = get_settings()
    upgrade(engine_for(settings))
    jobs.use_runtime(jobs.Runtime(settings=settings, engine=engine_for(settings)))
    names = [args.queue] if args.queue else [q.name for q in settings.queues]
    for name in names:
        version = training.train_scorer(name, force=args.force)
        print(
            f"{name}: active scorer {version}"
            if version
            else f"{name}: not trained: too few reviews or too few new ones"
        )
    return 0


def cmd_stats(args: argparse.Namespace) -> int:
    from service.estimates import queue_stats
    from service.storage.db import engine_for, transaction

    settings = get_settings()
    names = [args.queue] if args.queue else [q.name for q in settings.queues]
    with transaction(engine_for(settings)) as session:
        for name in names:
            stats = queue_stats(session, queue=name)
            print(f"{name}: {stats.reviews} reviews, {stats.failures} failures; junk {stats.junk or 'none'}")
            for label, rate in (("estimate", stats.estimate), ("audit only", stats.audit_only)):
                if rate is None:
                    print(f"  {label:<10} not available yet")
                else:
                    print(
                        f"  {label:<10} {rate.rate:6.1%}  95% CI [{rate.low:.1%}, {rate.high:.1%}]  "
                        f"({rate.n_audit} audited, {rate.method})"
                    )
            print(f"  selection runs used {stats.runs_used}, pending {stats.runs_pending}")
    return 0


def cmd_bench(args: argparse.Namespace) -> int:
    if args.suite == "collections":
        from service.bench_collections import QA_DATA, run_collections

        return run_collections(
            database_url=args.database_url,
            redis_url=os.environ.get("REDIS_URL") or "redis://127.0.0.1:6379/14",
            data=QA_DATA,
            items=args.items,
            out=Path(args.out),
        )
    if args.suite == "ui":
        from service.bench_ui import run_ui

        return run_ui(
            database_url=args.database_url
            or os.environ.get("DATABASE_URL")
            or "postgresql://postgres@127.0.0.1:5432/test",
            redis_url=os.environ.get("REDIS_URL") or "redis://127.0.0.1:6379/14",
            data=Path(args.data),
            rows=args.rows,
            requests=args.requests,
            out=Path(args.out),
            keep=args.keep,
        )
    if args.suite == "load":
        from service.bench_load import run_load

        return run_load(
            database_url=args.database_url
            or os.environ.get("DATABASE_URL")
            or "postgresql://postgres@127.0.0.1:5432/test",
            redis_url=os.environ.get("REDIS_URL") or "redis://127.0.0.1:6379/12",
            data=Path(args.data),
            rate=args.rate,
            seconds=args.seconds,
            drain_s=args.drain_seconds,
            out=Path(args.out),
        )
    if args.suite == "selection-scale":
        from service.bench_selection import run_selection_scale

        run_selection_scale(out=Path(args.out))
        return 0
    if args.suite == "loop":
        from service.bench_loop import run_loop

        return run_loop(
            datasets=args.dataset or ["halueval_general", "generated", "halueval_qa"],
            database_url=args.database_url
            or os.environ.get("DATABASE_URL")
            or "postgresql://postgres@127.0.0.1:5432/test",
            redis_url=os.environ.get("REDIS_URL") or "redis://127.0.0.1:6379/13",
            out=Path(args.out),
            limit=args.limit,
            reviews=args.reviews,
        )
    if args.suite == "scoring":
        from service.bench_scoring import run_scoring

        benchmark = [Path(b) for b in args.benchmark] if args.benchmark else _generated_benchmark()
        return run_scoring(
            get_settings(),
            benchmark=benchmark,
            general=Path(args.data),
            general_count=args.general_count,
            out=Path(args.out),
            rounds=args.rounds,
            folds=args.folds,
        )
    from service.bench import run_throughput

    return run_throughput(get_settings(), data=Path(args.data), count=args.count, out=Path(args.out))


def _generated_benchmark() -> list[Path]:
    """The generated QA benchmark: the finished .gz and any part files still being written."""
    names = ("qa_smollm2.jsonl.gz", "qa_smollm2.jsonl", "qa_smollm2.shard1.jsonl")
    return [p for name in names if (p := REPO_ROOT / "benchmarks" / name).exists()]


def parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(prog="review-router", description=__doc__)
    p.add_argument("-v", "--verbose", action="store_true")
    sub = p.add_subparsers(dest="command", required=True)

    serve = sub.add_parser(
        "serve", help="API + review pages (+ embedded Redis and workers without REDIS_URL)"
    )
    serve.add_argument("--host", default="127.0.0.1")
    serve.add_argument("--port", type=int, default=8000)
    serve.set_defaults(func=cmd_serve)

    worker = sub.add_parser("worker", help="an RQ worker: scoring, selection and the sweep")
    worker.add_argument("--burst", action="store_true", help="stop when the queue is empty")
    worker.add_argument("--name", default=None)
    worker.set_defaults(func=cmd_worker)

    demo = sub.add_parser("demo", help="serve on embedded defaults and post real HaluEval responses")
    demo.add_argument("--host", default="127.0.0.1")
    demo.add_argument("--port", type=int, default=8000)
    demo.add_argument("--count", type=int, default=300)
    demo.add_argument("--data", default=str(DEMO_DATA))
    demo.set_defaults(func=cmd_demo)

    db = sub.add_parser("db", help="database schema")
    db.add_argument("action", choices=["upgrade"])
    db.set_defaults(func=cmd_db)

    train = sub.add_parser("train", help="train each queue's learned scorer from its reviews now")
    train.add_argument("--force", action="store_true", help="even if few reviews are new")
    train.add_argument("--queue", help="only this review queue (default: every queue)")
    train.set_defaults(func=cmd_train)

    stats = sub.add_parser("stats", help="each queue's failure rate with a 95%% interval")
    stats.add_argument("queue", nargs="?", default=None)
    stats.set_defaults(func=cmd_stats)

    bench = sub.add_parser("bench", help="benchmarks that print figures")
    bench.add_argument(
        "suite", choices=["throughput", "scoring", "loop", "selection-scale", "ui", "collections", "load"]
    )
    bench.add_argument("--count", type=int, default=2000, help="throughput: outputs to push through")
    bench.add_argument("--data", default=str(DEMO_DATA), help="HaluEval general data")
    bench.add_argument("--out", default="bench-output")
    bench.add_argument(
        "--benchmark", action="append", default=[], help="scoring: a generated QA file (repeatable)"
    )
    bench.add_argument("--general-count", type=int, default=4507, help="scoring: HaluEval general rows")
    bench.add_argument("--rounds", type=int, default=1000, help="scoring: bootstrap rounds")
    bench.add_argument("--folds", type=int, default=5, help="scoring: folds for the learned scorer")
    bench.add_argument(
        "--dataset",
        action="append",
        choices=["halueval_general", "generated", "halueval_qa"],
        help="loop: (repeatable)",
    )
    bench.add_argument("--limit", type=int, default=None, help="loop: only the first N rows of each dataset")
    bench.add_argument("--reviews", type=int, default=None, help="loop: verdicts (default 30%% of the pool)")
    bench.add_argument("--rows", type=int, default=100_000, help="ui: outputs stored before timing")
    bench.add_argument("--requests", type=int, default=200, help="ui: timed requests per page")
    bench.add_argument(
        "--database-url",
        default=None,
        help="ui, loop, load: PostgreSQL to use (in a schema of its own, dropped afterwards; default "
        "DATABASE_URL, else the local test database); collections: PostgreSQL instead of a temporary SQLite",
    )
    bench.add_argument("--keep", action="store_true", help="ui: keep the filled schema")
    bench.add_argument("--rate", type=float, default=300.0, help="load: outputs a second offered")
    bench.add_argument("--seconds", type=float, default=20.0, help="load: seconds of offered load")
    bench.add_argument("--drain-seconds", type=float, default=45.0, help="load: seconds each drain is timed")
    bench.add_argument("--items", type=int, default=200, help="collections: HaluEval QA items to post")
    bench.set_defaults(func=cmd_bench)
    add_collection_commands(sub)
    add_account_commands(sub)
    add_replay_commands(sub)
    return p


def main(argv: Sequence[str] | None = None) -> int:
    os.environ.setdefault("HF_HUB_OFFLINE", "1")
    args = parser().parse_args(argv)
    _logging(args.verbose)
    try:
        return int(args.func(args) or 0)
    except KeyboardInterrupt:
        return 130


if __name__ == "__main__":
    sys.exit(main())
