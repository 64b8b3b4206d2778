"""`review-router replay` against a real instance: the REST API, a real worker process on PostgreSQL
and Redis, reviewers working the queue through claims and verdicts."""

from __future__ import annotations

import gzip
import json
from pathlib import Path

from sqlalchemy import func, select

from benchmarks import loop as bench_loop
from service.replay.data import Columns, load
from service.replay.report import table
from service.replay.run import ReplayOptions, replay, report
from service.storage.db import engine_for
from service.storage.tables import Review, ScorerModel
from tests.conftest import POSTGRES_URL

DATA = Path(__file__).resolve().parents[3] / "data" / "halueval" / "general_data.jsonl.gz"


def history(path: Path, n: int) -> Path:
    """The first n HaluEval general rows as a user's labelled export (renamed columns, CSV-like labels)."""
    with gzip.open(DATA, "rt", encoding="utf-8") as fh:
        rows = [json.loads(line) for _, line in zip(range(n), fh, strict=False)]
    path.write_text(
        "\n".join(
            json.dumps(
                {"question": r["user_query"], "answer": r["chatgpt_response"], "verdict": r["hallucination"]}
            )
            for r in rows
        )
    )
    return path


def test_a_replay_posts_the_history_works_the_queue_and_reports_what_the_router_caught(
    tmp_path: Path, redis_url: str
) -> None:
    items = load(history(tmp_path / "history.jsonl", 60), Columns(label="verdict"), app="replay-test").items
    truth = sum(i.failed for i in items)
    with bench_loop.instance(POSTGRES_URL, redis_url) as (base, settings):
        key, reviewers = bench_loop.accounts(settings)
        opts = ReplayOptions(url=base, api_key=key, reviewers=reviewers, app="replay-test", reviews=30)
        said: list[str] = []
        run = replay(items, opts, say=said.append)
        figures = report(run)
        with engine_for(settings).connect() as conn:
            verdicts = conn.scalar(select(func.count()).select_from(Review))
            models = conn.scalar(
                select(func.count()).select_from(ScorerModel).where(ScorerModel.queue == "default")
            )
    assert figures["pool"] == 60 and figures["failures"] == truth and figures["reviews"] == 30
    assert verdicts == 30  # every verdict went in through POST /v1/reviews
    assert models >= 1  # the queue learned from its first reviews
    assert figures["failures_found"] == sum(c.failed for c in run.claimed)
    assert figures["failures_found_curve"][-1] == figures["failures_found"]
    assert figures["base_rate"] == truth / 60
    assert set(figures["lift"]) == {"5%", "10%", "20%", "30%"} and None not in figures["lift"].values()
    # The audit drew its members from the 60 when they were first in a window; routing took the rest.
    assert set(figures["strata"]) <= {"uncertain", "diverse", "audit", "audit+routed"}
    assert sum(s["picks"] for s in figures["strata"].values()) == 30
    assert figures["auroc_unreviewed"][0]["reviews"] == 0 and len(figures["auroc_unreviewed"]) >= 3
    names = {row["signal"] for row in figures["signals"]}
    assert {"length", "disclaimer", "novelty"} <= names
    assert any(line.startswith("posted 60 outputs") for line in said)
    printed = table("history.jsonl", figures)
    assert "router lift" in printed and "audit" in printed
