"""Topics of a queue's traffic: a partition by embeddings, stable between reports."""

from __future__ import annotations

import numpy as np

from core.topics import MIN_PER_TOPIC, topics_of


def three_subjects(n: int, seed: int) -> tuple[np.ndarray, np.ndarray]:
    """Unit vectors around three orthogonal directions of a 384-d space, ``n`` each."""
    rng = np.random.default_rng(seed)
    subject = np.repeat(np.arange(3), n)
    x = rng.normal(0, 0.15, size=(3 * n, 384))
    x[np.arange(3 * n), subject] += 1.0
    return x / np.linalg.norm(x, axis=1, keepdims=True), subject


def test_every_output_falls_in_one_topic_and_a_subject_is_not_split_across_others() -> None:
    vectors, subject = three_subjects(300, seed=1)
    found = topics_of(vectors, max_topics=3)
    assert found is not None and found.labels.shape == (900,)
    for s in range(3):  # each subject is one topic
        assert len(set(found.labels[subject == s].tolist())) == 1
    assert sorted(set(found.labels.tolist())) == [0, 1, 2]
    assert all(found.labels[c] == t for t, c in enumerate(found.centre))  # each named by its own member


def test_topics_are_the_same_between_two_reports_and_largest_first() -> None:
    vectors, _ = three_subjects(200, seed=2)
    vectors = np.vstack([vectors, three_subjects(150, seed=3)[0][:150]])  # subject 0 grows
    first, second = topics_of(vectors), topics_of(vectors)
    assert first is not None and second is not None
    assert np.array_equal(first.labels, second.labels)
    sizes = np.bincount(first.labels)
    assert sizes.tolist() == sorted(sizes.tolist(), reverse=True)


def test_too_little_traffic_has_no_topics_and_k_grows_with_the_square_root() -> None:
    assert topics_of(three_subjects(MIN_PER_TOPIC // 2, seed=4)[0]) is None
    small = topics_of(three_subjects(40, seed=5)[0])  # 120 outputs: two topics
    large = topics_of(three_subjects(1000, seed=5)[0])  # 3,000: as many as allowed
    assert small is not None and large is not None
    assert len(small.centre) == 2 and len(large.centre) == 8
