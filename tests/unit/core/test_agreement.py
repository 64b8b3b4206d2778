"""Reviewer agreement: percent agreement and Cohen's kappa, checked against worked examples."""

from __future__ import annotations

import pytest
from sklearn.metrics import cohen_kappa_score

from core.agreement import DoubleReview, by_category, by_pair, cohen_kappa, overall


def test_kappa_matches_a_textbook_example_and_scikit_learn() -> None:
    # 50 items: both yes 20, both no 15, first yes/second no 5, first no/second yes 10 -> kappa 0.4
    pairs = [("y", "y")] * 20 + [("n", "n")] * 15 + [("y", "n")] * 5 + [("n", "y")] * 10
    assert cohen_kappa(pairs) == pytest.approx(0.4)
    a, b = zip(*pairs, strict=True)
    assert cohen_kappa(pairs) == pytest.approx(cohen_kappa_score(a, b))


def test_kappa_is_undefined_when_both_always_give_one_label_and_empty_is_none() -> None:
    assert cohen_kappa([("pass", "pass")] * 5) is None
    assert cohen_kappa([]) is None
    assert cohen_kappa([("pass", "fail"), ("fail", "pass")]) == pytest.approx(-1.0)


def review(first: str, second: str, v1: str, v2: str, c1: set[str], c2: set[str]) -> DoubleReview:
    return DoubleReview(first, second, v1, v2, frozenset(c1), frozenset(c2))


def test_pairs_are_counted_whichever_reviewer_came_first() -> None:
    reviews = [
        review("bo", "ann", "fail", "fail", {"unsafe"}, {"unsafe"}),
        review("ann", "bo", "pass", "fail", set(), {"incomplete"}),
        review("ann", "cy", "pass", "pass", set(), set()),
    ]
    pairs = by_pair(reviews)
    assert set(pairs) == {("ann", "bo"), ("ann", "cy")}
    assert pairs["ann", "bo"].items == 2 and pairs["ann", "bo"].agreed == 1
    assert pairs["ann", "bo"].percent == pytest.approx(0.5)
    assert overall(reviews).agreed == 2
    categories = by_category(reviews, ["unsafe", "incomplete"])
    assert categories["unsafe"].percent == pytest.approx(1.0)
    assert categories["incomplete"].agreed == 2 and categories["incomplete"].items == 3
