"""`review-router bench throughput` runs end to end: it signs in, ingests, scores and reports."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from benchmarks.throughput import run_throughput
from service.settings import Settings

DATA = Path(__file__).resolve().parents[3] / "data" / "halueval" / "general_data.jsonl.gz"


def test_throughput_bench_ingests_scores_and_writes_its_figures(
    redis_url: str, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    settings = Settings(redis_url=redis_url, rq_queue="rr-test-throughput")
    assert run_throughput(settings, data=DATA, count=24, out=tmp_path) == 0
    figures = json.loads((tmp_path / "throughput.json").read_text())
    assert figures["outputs"] == 24 and figures["scored"] == 24
    assert figures["ingest_single_outputs_per_s"] > 0 and figures["worker_outputs_per_s"] > 0
    assert "worker / raw encoder" in capsys.readouterr().out
