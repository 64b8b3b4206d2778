"""Sampled audit members are rescored by a model that never saw their verdicts: otherwise routing
would pick their failures out of the sample the estimate rests on."""

from __future__ import annotations

import numpy as np

from service.storage.tables import Output
from workers.training import _learned_scores, _without_sampled


def reviews(
    n: int, seed: int
) -> tuple[list[tuple[dict, bytes, bool, float, bool, str]], list[tuple[dict, bytes]]]:
    """Reviews where ``length`` says a little about failure, plus 30 sampled members that all failed
    and carry a quirk nothing else has: a model that saw them learns the quirk."""
    rng = np.random.default_rng(seed)
    rows = []
    for i in range(n):
        sampled = i < 30
        failed = True if sampled else bool(rng.random() < 0.3)
        signals = {"length": float(rng.normal(1.0 if failed else 0.0, 1.0)), "quirk": 3.0 if sampled else 0.0}
        vector = rng.normal(size=16).astype(np.float32)
        rows.append(
            (signals, (vector / np.linalg.norm(vector)).tobytes(), failed, 0.1 if sampled else 1.0, sampled)
        )
    return rows, [(r[0], r[1]) for r in rows]


def test_sampled_members_are_scored_by_a_model_that_never_saw_their_verdicts() -> None:
    from core import learned

    rows, traffic = reviews(300, seed=1)
    vectors = np.stack([np.frombuffer(r[1], dtype=np.float32) for r in rows])
    model = learned.train(
        [r[0] for r in rows],
        vectors,
        [r[2] for r in rows],
        learned.review_weights([r[3] for r in rows]),
        pool_embeddings=vectors,
        pool_rows=[r[0] for r in rows],
    )
    blind = _without_sampled(rows, traffic, model)
    assert blind is not model and blind.n_labels == 270
    outputs = [Output(id=f"o{i}", signals=r[0], drivers=[]) for i, r in enumerate(rows[:60])]
    sampled = {f"o{i}" for i in range(30)}
    scored = [p for p, _ in _learned_scores(model, outputs, vectors[:60], blind=blind, sampled=sampled)]
    seen = model.score([r[0] for r in rows[:60]], vectors[:60])[0]
    unseen = blind.score([r[0] for r in rows[:60]], vectors[:60])[0]
    assert np.allclose(scored[:30], unseen[:30]) and np.allclose(scored[30:], seen[30:])
    # the model that saw them knows the quirk means failure; the scores routing uses do not
    assert float(np.mean(seen[:30])) > float(np.mean(unseen[:30])) + 0.1
