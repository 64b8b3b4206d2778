"""`review-router`: serve the API and review pages, run workers, run the demo, migrate, benchmark."""

from __future__ import annotations

import argparse
import logging
import os
import sys
from collections.abc import Sequence
from pathlib import Path

from service.cli import DEMO_DATA
from service.cli.accounts import add_commands as add_account_commands
from service.cli.bench import add_commands as add_bench_commands
from service.cli.collections import add_commands as add_collection_commands
from service.cli.importing import add_commands as add_import_commands
from service.cli.replay import add_commands as add_replay_commands
from service.settings import get_settings
from service.stack import embedded_stack

log = logging.getLogger("review_router")


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
    from workers import training
    from workers.runtime import Runtime, use_runtime

    settings = get_settings()
    upgrade(engine_for(settings))
    use_runtime(Runtime(settings=settings, engine=engine_for(settings)))
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
    from service.storage.db import engine_for, transaction
    from service.usecases.queues import queue_stats

    settings = get_settings()
    names = [args.queue] if args.queue else [q.name for q in settings.queues]
    with transaction(engine_for(settings)) as session:
        for name in names:
            stats = queue_stats(session, queue=name)
            print(
                f"{name}: {stats.outputs} outputs, {stats.reviews} reviews, {stats.failures} failures; "
                f"junk {stats.junk or 'none'}"
            )
            rates = (("estimate", stats.estimate), ("audit only", stats.audit_only))
            for label, rate in rates:
                if rate is None:
                    print(f"  {label:<10} not available yet")
                else:
                    print(
                        f"  {label:<10} {rate.rate:6.1%}  95% CI [{rate.low:.1%}, {rate.high:.1%}]  "
                        f"({rate.n_reviews} reviews, {rate.n_audit} audited"
                        + (
                            f", {rate.withheld} skipped audit members at both extremes"
                            if rate.withheld
                            else ""
                        )
                        + f"; {rate.method})"
                    )
            model = stats.model
            if model is None:
                print("  scorer     cold start (no learned model yet)")
            else:
                held = "not yet" if model.brier is None else f"Brier {model.brier:.3f}, ECE {model.ece:.3f}"
                print(
                    f"  scorer     {model.version} on {model.reviews} reviews, {model.calibration}; "
                    f"held-out calibration {held}"
                )
    return 0


def cmd_report(args: argparse.Namespace) -> int:
    from service.storage.db import engine_for, transaction
    from service.usecases.report import queue_report

    settings = get_settings()
    names = [args.queue] if args.queue else [q.name for q in settings.queues]
    with transaction(engine_for(settings)) as session:
        for name in names:
            report = queue_report(session, settings, queue=name, period=args.period)
            lift = report.lift
            print(f"{name}: {report.stats.outputs} outputs, {report.stats.reviews} reviews")
            print(f"  advice     {report.recommendation.action}: {report.recommendation.why}")
            if lift.lift is not None:
                print(
                    f"  routing    {lift.failures_per_100_routed:.0f} failures per 100 routed reviews, "
                    f"{(lift.audit_rate or 0) * 100:.0f} per 100 audited: {lift.lift:.2f}x "
                    f"[{lift.low:.2f}, {lift.high:.2f}]"
                )
            if report.marginal is not None:
                m = report.marginal
                print(
                    f"  latest     {m.failures} failures in the last {m.reviews} reviews, "
                    f"{m.new_modes} unlike any failure before (cosine < {m.floor:.2f})"
                )
            print(f"  {args.period:<10} {'outputs':>8} {'reviews':>8}  failure rate [95% interval]")
            for row in report.over_time:
                rate = row.estimate
                shown = "-" if rate is None else f"{rate.rate:6.1%} [{rate.low:.1%}, {rate.high:.1%}]"
                print(f"  {row.start:%Y-%m-%d} {row.outputs:>8} {row.reviews:>8}  {shown}")
            if report.groups:
                print(f"  {'by':<6} {'name':<24} {'outputs':>8} {'reviews':>8}  failure rate [95% interval]")
            for group in report.groups:
                rate = group.estimate
                shown = "-" if rate is None else f"{rate.rate:6.1%} [{rate.low:.1%}, {rate.high:.1%}]"
                print(f"  {group.by:<6} {group.name[:24]:<24} {group.outputs:>8} {group.reviews:>8}  {shown}")
            for topic in report.topics:
                rate = topic.estimate
                shown = "-" if rate is None else f"{rate.rate:6.1%} [{rate.low:.1%}, {rate.high:.1%}]"
                print(
                    f"  topic {topic.topic} {topic.example[:24]:<24} {topic.outputs:>8} {topic.reviews:>8}  "
                    f"{shown}  {topic.recommendation.action}"
                )
            print("  reviews per day: " + " ".join(str(d.reviews) for d in report.throughput))
            curve = [f"{p.labels}:{p.cv_auroc:.2f}" for p in report.learning if p.cv_auroc is not None]
            if curve:
                gain = report.auroc_gain_per_100_labels
                slope = "" if gain is None else f"; {gain:+.3f} per 100 labels lately"
                print(f"  learning   cross-validated AUROC by labels {' '.join(curve)}{slope}")
            shift = report.drift
            if shift is not None:
                state = "DRIFTING" if shift.drifted else "no drift"
                print(
                    f"  traffic    {state}: latest {shift.recent} against {shift.reference} before, "
                    f"shift {shift.shift:.2f} SD, p={shift.p_value:.1e}; audit share {shift.audit_share:.0%}"
                )
    return 0


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

    report = sub.add_parser(
        "report", help="what each queue's reviews bought: rate over time, lift, throughput"
    )
    report.add_argument("queue", nargs="?", default=None)
    report.add_argument("--period", choices=["day", "week"], default="day")
    report.set_defaults(func=cmd_report)

    add_bench_commands(sub)
    add_collection_commands(sub)
    add_account_commands(sub)
    add_replay_commands(sub)
    add_import_commands(sub)
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
