"""`review-router bench ui` at a tiny size: it fills a schema of its own, times every page with
real requests, records real verdicts, reports sane figures and leaves nothing behind."""

from __future__ import annotations

import json
import os
from pathlib import Path

import pytest
from sqlalchemy import text

from benchmarks.ui import run_ui
from service.storage.db import make_engine
from tests.conftest import POSTGRES_URL, _pg_url

DATA = Path(__file__).resolve().parents[3] / "data" / "halueval" / "general_data.jsonl.gz"
PAGES = [
    "queue list",
    "queue page",
    "API claim",
    "next item",
    "item page",
    "verdict post",
    "API items, filtered",
    "API claim, filtered",
    "queue page, filtered",
]


def _bench_schemas() -> list[str]:
    engine = make_engine(_pg_url())
    with engine.connect() as conn:
        names = conn.execute(
            text("SELECT nspname FROM pg_namespace WHERE nspname LIKE :prefix"),
            {"prefix": f"bench_ui_{os.getpid()}_%"},
        ).scalars()
        found = list(names)
    engine.dispose()
    return found


def test_ui_bench_times_every_page_on_its_own_filled_schema_and_drops_it(
    redis_url: str, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    code = run_ui(
        database_url=POSTGRES_URL,
        redis_url=redis_url,
        data=DATA,
        rows=300,
        requests=10,
        warmup=2,
        out=tmp_path,
    )
    printed = capsys.readouterr().out
    figures = json.loads((tmp_path / "ui.json").read_text())

    assert code == 0, printed
    fill = figures["fill"]
    assert fill["outputs"] == 300
    assert fill["waiting"] == 2 + 10 + 50
    assert fill["reviewed"] + fill["waiting"] + fill["scored"] + fill["junk"] == 300
    assert fill["picks"] == fill["reviewed"] + fill["waiting"]
    assert fill["reviews"] >= fill["reviewed"]
    assert fill["seconds"] > 0
    assert figures["verdicts_recorded"] == 12  # one per verdict post, warm-up included

    assert [p["page"] for p in figures["pages"]] == PAGES
    for page in figures["pages"]:
        assert page["n"] == 10
        assert 0 < page["server_p50"] <= page["server_p95"]
        # The client's round trip holds the server's time, request by request.
        assert page["server_p50"] <= page["client_p50"] and page["server_p95"] <= page["client_p95"]
        assert sum(page["statuses"].values()) == 12
        assert all(code.isdigit() and 200 <= int(code) < 400 for code in page["statuses"]), page
    by_page = {p["page"]: p["statuses"] for p in figures["pages"]}
    assert by_page["item page"] == {"200": 12} and by_page["verdict post"] == {"303": 12}

    for name in PAGES:
        assert name in printed
    assert "fill" in printed and "p95 under 50 ms" in printed
    assert _bench_schemas() == []
