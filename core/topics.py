"""Topics of a queue's traffic, for the failure rate and the stop-or-keep advice per topic.

A topic partition is k-means over the embeddings' leading principal components: unlike the
selection's HDBSCAN clusters (one batch at a time, with noise left out), every output of the
traffic falls in exactly one topic, which an estimate per topic needs. The seed is fixed, so the
same traffic gives the same topics between two reports. Topics are drawn from the embeddings alone,
never from verdicts, scores or the audit's draws, so within a topic the audit members routing has
not reached are still a uniform sample of what routing has not reached there (``core.estimate``).
Each topic is named by its most central output.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np

MAX_TOPICS = 8
#: Outputs per topic on average before a partition is worth making (and at least two topics).
MIN_PER_TOPIC = 40
COMPONENTS = 16


@dataclass(frozen=True)
class Topics:
    labels: np.ndarray  # topic of each row, 0 the largest
    centre: list[int]  # each topic's most central row


def topics_of(vectors: np.ndarray, *, max_topics: int = MAX_TOPICS, seed: int = 0) -> Topics | None:
    """Partition rows of embeddings into topics (None: too few rows for two topics).

    k grows with the square root of the traffic (``sqrt(n / MIN_PER_TOPIC)``), between 2 and
    ``max_topics``: enough to separate what the traffic is about, few enough that each topic has
    reviews behind its estimate."""
    from sklearn.cluster import KMeans

    n = len(vectors)
    if n < 2 * MIN_PER_TOPIC:
        return None
    k = max(2, min(max_topics, round(math.sqrt(n / MIN_PER_TOPIC))))
    x = np.asarray(vectors, dtype=np.float64)
    x = x - x.mean(axis=0)
    _, _, vt = np.linalg.svd(x, full_matrices=False)
    points = x @ vt[: min(COMPONENTS, vt.shape[0])].T
    model = KMeans(n_clusters=k, n_init=4, random_state=seed).fit(points)
    raw = np.asarray(model.labels_)
    by_size = np.argsort(-np.bincount(raw, minlength=k), kind="stable")
    relabel = np.empty(k, dtype=np.int64)
    relabel[by_size] = np.arange(k)
    labels = relabel[raw]
    centres = model.cluster_centers_[by_size]
    centre = [
        int(np.flatnonzero(labels == t)[np.argmin(((points[labels == t] - centres[t]) ** 2).sum(axis=1))])
        for t in range(k)
    ]
    return Topics(labels=labels, centre=centre)
