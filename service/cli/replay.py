"""`review-router replay FILE`: post a labelled history to a running instance and play its reviewers."""

from __future__ import annotations

import argparse
import json
import os
import subprocess
from pathlib import Path
from typing import Any

from service.replay.data import FAIL_VALUES, Columns, ReplayDataError, load

REPO_ROOT = Path(__file__).resolve().parents[2]


def commit() -> str | None:
    """The commit the figures were measured on (with '-dirty' when the tree has changes)."""
    try:
        head = subprocess.run(
            ["git", "rev-parse", "HEAD"], cwd=REPO_ROOT, capture_output=True, text=True, check=True
        ).stdout.strip()
        dirty = subprocess.run(
            ["git", "status", "--porcelain", "--untracked-files=no"],
            cwd=REPO_ROOT,
            capture_output=True,
            text=True,
            check=True,
        ).stdout.strip()
    except (OSError, subprocess.CalledProcessError):
        return None
    return f"{head}-dirty" if dirty else head


def columns_of(args: argparse.Namespace) -> Columns:
    return Columns(
        messages=args.messages_field,
        prompt=args.prompt_field,
        response=args.response_field,
        completion=args.completion_field,
        samples=args.samples_field,
        label=args.label_field,
        id=args.id_field,
        fail_values=tuple(v.strip() for v in args.fail_values.split(",") if v.strip()),
        label_means_correct=args.label_means_correct,
    )


def _reviewers(values: list[str]) -> list[tuple[str, str]]:
    out = []
    for value in values:
        name, sep, password = value.partition(":")
        if not sep:
            raise SystemExit(f"--reviewer takes NAME:PASSWORD, got {value!r}")
        out.append((name, password))
    return out


def write_results(
    name: str,
    report: dict[str, Any],
    options: dict[str, Any],
    *,
    measured_on: str | None,
    out: Path | None,
    plot_to: Path | None,
) -> None:
    """The figures as JSON (with the commit measured on, taken when the run started) and a plot."""
    from service.replay.report import plot

    if out is not None:
        out.parent.mkdir(parents=True, exist_ok=True)
        out.write_text(
            json.dumps({"name": name, "commit": measured_on, "options": options, **report}, indent=1)
        )
        print(f"written to {out}")
    if plot_to is not None:
        plot(name, report, plot_to)
        print(f"plot: {plot_to}")


def cmd_replay(args: argparse.Namespace) -> int:
    from service.replay.report import table
    from service.replay.run import ReplayError, ReplayOptions, replay, report

    path = Path(args.file)
    try:
        loaded = load(path, columns_of(args), app=args.app, limit=args.limit, skip=args.skip)
    except (OSError, ReplayDataError) as exc:
        print(f"cannot replay {path}: {exc}")
        return 2
    items = loaded.items
    if loaded.unlabelled:
        print(f"left out {loaded.unlabelled} rows with an empty label (never judged)")
    key = args.api_key or os.environ.get("RR_API_KEY", "")
    reviewers = _reviewers(args.reviewer or [r for r in [os.environ.get("RR_REVIEWER", "")] if r])
    if not key or not reviewers:
        print(
            "replay needs an ingest key (--api-key or RR_API_KEY) and a reviewer (--reviewer NAME:PASSWORD)"
        )
        return 2
    opts = ReplayOptions(
        url=args.url,
        api_key=key,
        reviewers=reviewers,
        queue=args.queue,
        app=args.app,
        reviews=args.reviews,
        settle=not args.no_settle,
    )
    measured_on = commit()
    try:
        run = replay(items, opts)
    except ReplayError as exc:
        print(f"replay stopped: {exc}")
        return 1
    figures = report(run)
    print(table(path.name, figures))
    options = {
        "url": args.url,
        "queue": args.queue,
        "app": args.app,
        "reviewers": len(reviewers),
        "file": str(path),
    }
    write_results(
        path.name,
        figures,
        options,
        measured_on=measured_on,
        out=Path(args.out) if args.out else None,
        plot_to=Path(args.plot) if args.plot else None,
    )
    return 0


def add_commands(sub: Any) -> None:
    replay = sub.add_parser(
        "replay",
        help="post a labelled history to a running instance and play its reviewers "
        "(what would it have caught?)",
    )
    replay.add_argument("file", help="JSONL or CSV (optionally .gz), one labelled output a row")
    replay.add_argument("--url", default="http://127.0.0.1:8000", help="the running instance")
    replay.add_argument("--api-key", default=None, help="an ingest key (default: RR_API_KEY)")
    replay.add_argument(
        "--reviewer",
        action="append",
        help="NAME:PASSWORD of a reviewer account to play (repeatable; default: RR_REVIEWER)",
    )
    replay.add_argument("--queue", default="default", help="the queue the replay's app is routed to")
    replay.add_argument("--app", default="replay", help="app name the outputs are posted under")
    replay.add_argument(
        "--reviews", type=int, default=None, help="verdicts to give (default: 30%% of the pool)"
    )
    replay.add_argument("--limit", type=int, default=None, help="only the first N rows (after --skip)")
    replay.add_argument("--skip", type=int, default=0, help="leave out the file's first N rows")
    replay.add_argument(
        "--no-settle", action="store_true", help="don't wait for the worker after each verdict"
    )
    replay.add_argument("--out", default=None, help="write the figures as JSON here")
    replay.add_argument("--plot", default=None, help="write a PNG plot here")
    for name, what in (
        ("messages", "chat messages (a list or its JSON)"),
        ("prompt", "prompt text"),
        ("response", "response text"),
        ("completion", "a chat-completion object"),
        ("samples", "extra samples (a list)"),
        ("label", "the human label"),
        ("id", "a unique id ('' numbers the rows)"),
    ):
        replay.add_argument(f"--{name}-field", default=None, help=f"column with {what}")
    replay.add_argument(
        "--fail-values",
        default=",".join(FAIL_VALUES),
        help="label values that mean failure (comma-separated)",
    )
    replay.add_argument(
        "--label-means-correct",
        action=argparse.BooleanOptionalAction,
        default=None,
        help="the label says the output is right (default: only for columns named correct/is_correct)",
    )
    replay.set_defaults(func=cmd_replay)
