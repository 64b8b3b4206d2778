"""Agreement between reviewers on blindly double-reviewed items: percent agreement and Cohen's kappa.

Pure functions on plain data. Kappa corrects agreement for chance: kappa = (p_o - p_e) / (1 - p_e)
with p_o the observed agreement and p_e the agreement expected from each reviewer's own label
rates. When both reviewers always give the same single label, p_e = 1 and kappa is undefined
(None): agreement is perfect but says nothing about judgement.
"""

from __future__ import annotations

from collections import Counter, defaultdict
from collections.abc import Hashable, Iterable, Sequence
from dataclasses import dataclass


@dataclass(frozen=True)
class DoubleReview:
    """One item judged by two reviewers: who, their verdicts and their failure categories."""

    first: str
    second: str
    first_verdict: str
    second_verdict: str
    first_categories: frozenset[str]
    second_categories: frozenset[str]


@dataclass(frozen=True)
class Agreement:
    items: int
    agreed: int
    percent: float | None
    kappa: float | None


def cohen_kappa(pairs: Sequence[tuple[Hashable, Hashable]]) -> float | None:
    """Cohen's kappa of two raters' labels on the same items; None when it is undefined."""
    n = len(pairs)
    if n == 0:
        return None
    observed = sum(a == b for a, b in pairs) / n
    first = Counter(a for a, _ in pairs)
    second = Counter(b for _, b in pairs)
    expected = sum(first[label] * second[label] for label in first) / (n * n)
    if expected >= 1.0:
        return None
    return (observed - expected) / (1.0 - expected)


def agreement(pairs: Sequence[tuple[Hashable, Hashable]]) -> Agreement:
    agreed = sum(a == b for a, b in pairs)
    return Agreement(
        items=len(pairs),
        agreed=agreed,
        percent=agreed / len(pairs) if pairs else None,
        kappa=cohen_kappa(pairs),
    )


def by_pair(reviews: Iterable[DoubleReview]) -> dict[tuple[str, str], Agreement]:
    """Verdict agreement per reviewer pair (the pair's names in alphabetical order)."""
    grouped: dict[tuple[str, str], list[tuple[Hashable, Hashable]]] = defaultdict(list)
    for r in reviews:
        a, b = (r.first_verdict, r.second_verdict)
        key = (r.first, r.second)
        if r.second < r.first:
            key, (a, b) = (r.second, r.first), (b, a)
        grouped[key].append((a, b))
    return {key: agreement(pairs) for key, pairs in sorted(grouped.items())}


def by_category(reviews: Sequence[DoubleReview], categories: Iterable[str]) -> dict[str, Agreement]:
    """Per failure category, agreement on whether the item shows it (both reviewers' yes/no)."""
    out: dict[str, Agreement] = {}
    for category in categories:
        pairs = [(category in r.first_categories, category in r.second_categories) for r in reviews]
        out[category] = agreement(pairs)
    return out


def overall(reviews: Sequence[DoubleReview]) -> Agreement:
    """Verdict agreement over every double-reviewed item."""
    return agreement([(r.first_verdict, r.second_verdict) for r in reviews])
