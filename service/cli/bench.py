"""`review-router bench SUITE`: the benchmarks that print figures. They live in `benchmarks/` and are
loaded only when asked for, so the app never imports them."""

from __future__ import annotations

import argparse
import importlib
import json
import os
from collections.abc import Callable
from pathlib import Path
from typing import Any

from service.cli import DEMO_DATA, REPO_ROOT
from service.settings import get_settings
from service.stack import exit_on_sigterm


def _database_url(args: argparse.Namespace) -> str:
    return args.database_url or os.environ.get("DATABASE_URL") or "postgresql://postgres@127.0.0.1:5432/test"


def _redis_url(db: int) -> str:
    return os.environ.get("REDIS_URL") or f"redis://127.0.0.1:6379/{db}"


def _collections(args: argparse.Namespace) -> int:
    curation = importlib.import_module("benchmarks.curation")
    data = importlib.import_module("benchmarks.curation_data")
    return int(
        curation.run_collections(
            database_url=args.database_url,
            redis_url=_redis_url(14),
            data=data.QA_DATA,
            items=args.items,
            out=Path(args.out),
        )
    )


def _ui(args: argparse.Namespace) -> int:
    return int(
        importlib.import_module("benchmarks.ui").run_ui(
            database_url=_database_url(args),
            redis_url=_redis_url(14),
            data=Path(args.data),
            rows=args.rows,
            requests=args.requests,
            out=Path(args.out),
            keep=args.keep,
        )
    )


def _load(args: argparse.Namespace) -> int:
    return int(
        importlib.import_module("benchmarks.load").run_load(
            database_url=_database_url(args),
            redis_url=_redis_url(12),
            data=Path(args.data),
            rate=args.rate,
            seconds=args.seconds,
            drain_s=args.drain_seconds,
            out=Path(args.out),
        )
    )


def _selection_scale(args: argparse.Namespace) -> int:
    importlib.import_module("benchmarks.selection_scale").run_selection_scale(out=Path(args.out))
    return 0


def _loop(args: argparse.Namespace) -> int:
    return int(
        importlib.import_module("benchmarks.loop").run_loop(
            datasets=args.dataset or ["halueval_general", "generated", "halueval_qa", "truthfulqa_judged"],
            database_url=_database_url(args),
            redis_url=_redis_url(13),
            out=Path(args.out),
            limit=args.limit,
            reviews=args.reviews,
            queue=json.loads(args.queue) if args.queue else None,
            suffix=args.suffix,
        )
    )


def _scoring(args: argparse.Namespace) -> int:
    benchmark = [Path(b) for b in args.benchmark] if args.benchmark else _generated_benchmark()
    return int(
        importlib.import_module("benchmarks.scoring").run_scoring(
            get_settings(),
            benchmark=benchmark,
            general=Path(args.data),
            general_count=args.general_count,
            out=Path(args.out),
            rounds=args.rounds,
            folds=args.folds,
        )
    )


def _throughput(args: argparse.Namespace) -> int:
    return int(
        importlib.import_module("benchmarks.throughput").run_throughput(
            get_settings(), data=Path(args.data), count=args.count, out=Path(args.out)
        )
    )


def _coverage(args: argparse.Namespace) -> int:
    coverage = importlib.import_module("benchmarks.coverage")
    path, columns = importlib.import_module("benchmarks.loop").DATASETS["halueval_general"]
    result = coverage.run_coverage(
        path=path,
        columns=columns,
        replays=args.replays,
        batches=args.batches,
        review_share=args.review_share,
        worked=1.0,
        rerank=args.rerank,
        out=Path(args.out) / f"coverage_halueval_general_{round(100 * args.review_share)}pct.json",
    )
    print(coverage.table(result))
    return 0


def _drift(args: argparse.Namespace) -> int:
    drift = importlib.import_module("benchmarks.drift")
    result = drift.run_drift(
        database_url=_database_url(args),
        redis_url=_redis_url(13),
        out=Path(args.out) / "drift.json",
    )
    print(drift.table(result))
    return 0


SUITES: dict[str, Callable[[argparse.Namespace], int]] = {
    "coverage": _coverage,
    "drift": _drift,
    "throughput": _throughput,
    "scoring": _scoring,
    "loop": _loop,
    "selection-scale": _selection_scale,
    "ui": _ui,
    "collections": _collections,
    "load": _load,
}


def cmd_bench(args: argparse.Namespace) -> int:
    exit_on_sigterm()  # `kill` runs the benches' cleanup: their workers, schemas and RQ queues go
    return SUITES[args.suite](args)


def _generated_benchmark() -> list[Path]:
    """The generated QA benchmark: the finished .gz and any part files still being written."""
    names = ("qa_smollm2.jsonl.gz", "qa_smollm2.jsonl", "qa_smollm2.shard1.jsonl")
    return [p for name in names if (p := REPO_ROOT / "benchmarks" / name).exists()]


def add_commands(sub: Any) -> None:
    bench = sub.add_parser("bench", help="benchmarks that print figures")
    bench.add_argument("suite", choices=list(SUITES))
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
        choices=["halueval_general", "generated", "halueval_qa", "truthfulqa_judged"],
        help="loop: (repeatable)",
    )
    bench.add_argument("--limit", type=int, default=None, help="loop: only the first N rows of each dataset")
    bench.add_argument("--reviews", type=int, default=None, help="loop: verdicts (default 30%% of the pool)")
    bench.add_argument(
        "--queue",
        default=None,
        help="loop: more of the default queue's configuration as JSON, e.g. '{\"target_width\": 0.1}'",
    )
    bench.add_argument("--suffix", default="", help="loop: added to the results' file names")
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
    bench.add_argument("--replays", type=int, default=500, help="coverage: simulated replays")
    bench.add_argument("--batches", type=int, default=9, help="coverage: selection runs per replay")
    bench.add_argument("--review-share", type=float, default=0.1, help="coverage: share of the pool reviewed")
    bench.add_argument(
        "--rerank",
        type=float,
        default=0.5,
        help="coverage: SDs of fresh score noise per run (new model versions)",
    )
    bench.set_defaults(func=cmd_bench)
