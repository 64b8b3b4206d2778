"""Drift: a change of what the traffic is about is found in the embeddings, and the same traffic is
left alone."""

from __future__ import annotations

import numpy as np

from core.drift import ALPHA, MIN_EACH, embedding_shift, of_recent


def unit_rows(n: int, centre: np.ndarray, rng: np.random.Generator) -> np.ndarray:
    rows = centre + rng.normal(scale=1.0, size=(n, len(centre)))
    return rows / np.linalg.norm(rows, axis=1, keepdims=True)


def test_the_same_traffic_rarely_raises_an_alarm() -> None:
    rng = np.random.default_rng(0)
    centre = rng.normal(size=64)
    alarms = [
        embedding_shift(unit_rows(200, centre, rng), unit_rows(1000, centre, rng)).drifted  # type: ignore[union-attr]
        for _ in range(100)
    ]
    assert sum(alarms) <= 1  # alpha is 1e-4 per check


def test_traffic_about_something_else_is_found_from_a_quarter_of_the_window() -> None:
    rng = np.random.default_rng(1)
    old, new = rng.normal(size=64), rng.normal(size=64)
    reference = unit_rows(1000, old, rng)
    mixed = np.vstack([unit_rows(50, new, rng), unit_rows(150, old, rng)])
    found = embedding_shift(mixed, reference)
    assert found is not None and found.drifted and found.p_value < ALPHA and found.shift > 0.3
    assert (found.recent, found.reference) == (200, 1000)


def test_too_few_outputs_are_not_compared() -> None:
    rng = np.random.default_rng(2)
    centre = rng.normal(size=16)
    assert embedding_shift(unit_rows(MIN_EACH - 1, centre, rng), unit_rows(500, centre, rng)) is None
    newest_first = list(unit_rows(200 + MIN_EACH - 1, centre, rng))
    assert of_recent(newest_first, window=200, reference=1000) is None
    assert of_recent([*newest_first, newest_first[0]], window=200, reference=1000) is not None
