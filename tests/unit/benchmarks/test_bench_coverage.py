"""bench coverage's replay: the product's selection and estimate over shuffled arrivals."""

from __future__ import annotations

import numpy as np

from benchmarks.coverage import Traffic, one_replay, table
from core.candidates import SelectionParams


def synthetic(n: int, seed: int = 0) -> Traffic:
    rng = np.random.default_rng(seed)
    scores = rng.random(n)
    failed = rng.random(n) < 0.1 + 0.5 * scores  # the score ranks failures
    return Traffic(
        ids=[str(i) for i in range(n)],
        scores=scores,
        failed=failed,
        prompts=[f"question {i}" for i in range(n)],
        responses=[f"answer number {i}" for i in range(n)],
    )


def test_a_replay_reviews_its_budget_and_estimates_the_pools_rate() -> None:
    data = synthetic(600)
    truth, estimate = one_replay(
        data, np.random.default_rng(1), batches=3, reviews=90, params=SelectionParams(), worked=1.0
    )
    assert truth == data.failed.mean()  # no junk among these texts
    assert estimate.n_reviews == 90 and estimate.n_audit >= 6  # a tenth of each run's picks audited
    assert estimate.low <= estimate.rate <= estimate.high
    # Routed picks are the top scores, so they fail more than the pool: more failures were known
    # than a random tenth of the pool would hold.
    assert estimate.known_failures > 0.1 * data.failed.sum()


def test_over_many_replays_the_interval_covers_the_truth_about_as_often_as_it_says() -> None:
    data = synthetic(400, seed=3)
    rng = np.random.default_rng(2)
    covered = 0
    for _ in range(60):
        truth, estimate = one_replay(data, rng, batches=4, reviews=80, params=SelectionParams(), worked=1.0)
        covered += estimate.covers(truth)
    assert covered >= 52  # 95% nominal; 52 of 60 leaves room for chance, not for a broken interval


def test_when_new_models_re_rank_the_pool_the_estimate_stays_on_the_truth() -> None:
    """Each run re-ranks the traffic and routing goes back into the rests earlier audits were drawn
    from: the audit members it reaches count as routing's, so the estimate does not drift upward."""
    data = synthetic(400, seed=3)
    rng = np.random.default_rng(4)
    runs = [
        one_replay(data, rng, batches=5, reviews=120, params=SelectionParams(), worked=1.0, rerank=1.0)
        for _ in range(80)
    ]
    assert sum(e.covers(truth) for truth, e in runs) >= 70
    assert abs(np.mean([e.rate - truth for truth, e in runs])) < 0.01
    assert sum(e.rest < 400 - 100 for _, e in runs) == 80  # routing's reviews are known


def test_the_table_names_the_coverage_and_the_target() -> None:
    result = {
        "replays": 500,
        "dataset": "general_data.jsonl.gz",
        "outputs": 4507,
        "failure_rate": 0.181,
        "reviews": 451,
        "batches": 9,
        "coverage": 0.966,
        "coverage_interval": [0.946, 0.979],
        "mean_width": 0.195,
        "mean_error": -0.0007,
        "rmse": 0.049,
    }
    printed = table(result)
    assert "96.6% [94.6%, 97.9%]" in printed and "target 93-97%" in printed
