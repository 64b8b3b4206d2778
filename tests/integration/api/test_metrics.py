"""`/metrics` is what a Prometheus server scrapes: read here by prometheus-client's own parser. Ingest
and reviews are counted by the API, scoring latency by a worker in another process, and one scrape
adds them up; the state gauges come from the database."""

from __future__ import annotations

import subprocess
import sys
from collections import defaultdict
from pathlib import Path

import pytest
from fastapi.testclient import TestClient
from prometheus_client.parser import text_string_to_metric_families

from benchmarks.throughput import process_env
from service.app import create_app
from service.demo import halueval_outputs
from tests.conftest import Database, credentials

ROOT = Path(__file__).resolve().parents[3]
DATA = ROOT / "data" / "halueval" / "general_data.jsonl.gz"
Samples = dict[str, dict[tuple[tuple[str, str], ...], float]]


def scrape(client: TestClient) -> Samples:
    assert client.get("/metrics").status_code == 401  # Prometheus scrapes with a key as bearer token
    response = client.get("/metrics", headers=client.app.state.scraper)  # type: ignore[attr-defined]
    assert response.status_code == 200, response.text
    assert response.headers["content-type"].startswith("text/plain")
    samples: Samples = defaultdict(dict)
    for family in text_string_to_metric_families(response.text):
        for sample in family.samples:
            samples[sample.name][tuple(sorted(sample.labels.items()))] = sample.value
    return samples


def value(samples: Samples, name: str, **labels: str) -> float:
    return samples.get(name, {}).get(tuple(sorted(labels.items())), 0.0)


@pytest.mark.parametrize("backend", ["sqlite"])
def test_metrics_add_up_the_api_and_a_worker_process(fresh_db: Database, settings_for) -> None:  # type: ignore[no-untyped-def]
    settings = settings_for(fresh_db)  # the worker process reads the environment: default queues
    app = create_app(settings)
    client = TestClient(app)
    app.state.scraper = credentials(app, "app")
    before = scrape(client)  # other tests of this process may have counted already: compare deltas

    outputs = [{**o, "app": "metrics-app"} for o in halueval_outputs(DATA, 8)]
    posted = client.post("/v1/outputs/batch", json={"outputs": outputs}, headers=credentials(app, "app"))
    assert posted.status_code == 202 and posted.json()["accepted"] == 8
    again = client.post("/v1/outputs", json=outputs[0], headers=credentials(app, "app"))
    assert again.status_code == 200  # a repeat is not counted again
    worker = [sys.executable, "-m", "service.cli", "worker", "--burst"]
    subprocess.run(worker, env=process_env(settings), cwd=ROOT, check=True, timeout=300)

    reviewer = credentials(app, "reviewer")
    items = client.get("/v1/queues/default/items", headers=reviewer).json()["items"]
    assert items
    for n, item in enumerate(items[:3]):
        verdict = "fail" if n == 0 else "pass"
        review = {"output_id": item["output_id"], "verdict": verdict}
        assert client.post("/v1/reviews", json=review, headers=reviewer).status_code == 201
    after = scrape(client)

    def grew(name: str, **labels: str) -> float:
        return value(after, name, **labels) - value(before, name, **labels)

    assert grew("review_router_outputs_ingested_total", app="metrics-app") == 8
    assert grew("review_router_scoring_latency_seconds_count") == 8  # observed by the worker process
    assert grew("review_router_reviews_total", queue="default", verdict="pass") == 2
    assert grew("review_router_reviews_total", queue="default", verdict="fail") == 1
    statuses = after["review_router_outputs"]
    assert sum(statuses.values()) == 8 and value(after, "review_router_outputs", status="reviewed") == 3
    assert value(after, "review_router_queue_depth", queue="default") == len(items) - 3
    low, rate, high = (
        value(after, "review_router_failure_rate", queue="default", bound=b)
        for b in ("low", "estimate", "high")
    )
    assert 0.0 <= low <= rate <= high <= 1.0 and high > 0
    assert ("state", "failed") in {k for labels in after["review_router_jobs"] for k in labels}
