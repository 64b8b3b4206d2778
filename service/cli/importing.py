"""`review-router import FILE`: post the outputs another tool wrote down to a running instance, through
`POST /v1/outputs/batch` with an ingest key, with a progress bar and a summary."""

from __future__ import annotations

import argparse
import os
from collections import Counter
from pathlib import Path
from typing import Any

from service.imports import FORMATS, ImportFileError, Row, rows_of
from service.progress import Progress

BATCH = 200


def cmd_import(args: argparse.Namespace) -> int:
    import httpx

    key = args.api_key or os.environ.get("RR_API_KEY")
    if not key:
        raise SystemExit(
            "import needs an ingest key: --api-key or RR_API_KEY (review-router keys create NAME)"
        )
    try:
        mapping = dict(_pair(m) for m in args.map)
        rows = list(
            rows_of(
                Path(args.file),
                fmt=args.format,
                batch_input=Path(args.input) if args.input else None,
                mapping=mapping,
                app=args.app,
            )
        )
    except ImportFileError as exc:
        raise SystemExit(f"cannot import {args.file}: {exc}") from exc
    counts: Counter[str] = Counter()
    reasons: Counter[str] = Counter()
    for row in rows:
        if row.body is None:
            counts["rejected"] += 1
            reasons[row.error or "unreadable row"] += 1
    good = [r for r in rows if r.body is not None]
    with (
        httpx.Client(base_url=args.url, headers={"Authorization": f"Bearer {key}"}, timeout=60) as client,
        Progress(total=len(good), what="outputs") as progress,
    ):
        for start in range(0, len(good), args.batch_size):
            chunk = good[start : start + args.batch_size]
            _post(client, chunk, counts, reasons)
            progress.update(len(chunk))
    print(
        f"{args.file}: {len(rows)} rows; accepted {counts['accepted']}, duplicate {counts['duplicate']}, "
        f"rejected {counts['rejected']}"
    )
    for reason, n in reasons.most_common(10):
        print(f"  {n:>5} x {reason}")
    return 1 if counts["rejected"] else 0


def _post(client: Any, chunk: list[Row], counts: Counter[str], reasons: Counter[str]) -> None:
    answer = client.post("/v1/outputs/batch", json={"outputs": [r.body for r in chunk]})
    if answer.status_code >= 400:
        error = (
            answer.json().get("error", {})
            if answer.headers.get("content-type", "").startswith("application/json")
            else {}
        )
        raise SystemExit(
            f"the instance refused the import: {answer.status_code} {error.get('message', answer.text[:200])}"
        )
    for item in answer.json()["results"]:
        counts[item["status"] if item["status"] != "error" else "rejected"] += 1
        if item["status"] == "error":
            row = chunk[item["index"]]
            reasons[f"row {row.number}: {_reason(item['error'])}"] += 1


def _reason(error: dict[str, Any]) -> str:
    details = error.get("details")
    if isinstance(details, list) and details:
        first = details[0]
        return f"{error.get('message')}: {first.get('field', '')} {first.get('message', '')}".strip()
    return str(error.get("message"))


def _pair(value: str) -> tuple[str, str]:
    name, sep, column = value.partition("=")
    if not sep or not name or not column:
        raise ImportFileError(f"--map takes FIELD=COLUMN, got {value!r}")
    return name.strip(), column.strip()


def add_commands(sub: Any) -> None:
    imp = sub.add_parser(
        "import", help="post outputs from a file (OpenAI Batch, JSONL/CSV, Langfuse, LangSmith)"
    )
    imp.add_argument("file", help="JSONL or CSV (optionally .gz)")
    imp.add_argument("--format", choices=FORMATS, default="auto", help="what wrote the file (default: look)")
    imp.add_argument("--input", default=None, help="openai-batch: the batch's input JSONL (for the messages)")
    imp.add_argument(
        "--map",
        action="append",
        default=[],
        metavar="FIELD=COLUMN",
        help="table: which column holds messages, prompt, response, completion, app, model, id, samples, "
        "or metadata.KEY (repeatable)",
    )
    imp.add_argument("--app", default="import", help="app name when the file gives none")
    imp.add_argument("--url", default="http://127.0.0.1:8000", help="the running instance")
    imp.add_argument("--api-key", default=None, help="an ingest key (default: RR_API_KEY)")
    imp.add_argument("--batch-size", type=int, default=BATCH, help="outputs per request")
    imp.set_defaults(func=cmd_import)
