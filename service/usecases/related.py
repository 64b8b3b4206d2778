"""What the item page shows besides the output itself: its cluster's other members, similar past
items with their verdicts, and how each self-consistency sample compares with the response."""

from __future__ import annotations

import re
from dataclasses import dataclass
from typing import Any

from sqlalchemy.orm import Session

from service.storage import queues as queues_repo
from service.storage import repository as repo
from service.storage.tables import Pick

WORD = re.compile(r"\w+")


@dataclass(frozen=True)
class Related:
    output_id: str
    response: str
    score: float | None
    verdict: str | None
    similarity: float | None = None
    categories: tuple[str, ...] = ()
    correction: str | None = None


@dataclass(frozen=True)
class SampleView:
    text: str
    overlap: float  # share of words in common with the response (Jaccard)
    agrees: bool


def word_overlap(a: str, b: str) -> float:
    """Jaccard overlap of the two texts' lower-cased word sets (1.0 for two empty texts)."""
    x, y = set(WORD.findall(a.lower())), set(WORD.findall(b.lower()))
    if not x and not y:
        return 1.0
    return len(x & y) / len(x | y)


def compare_samples(response: str, samples: list[str], threshold: float = 0.5) -> list[SampleView]:
    """Each sample with its word overlap to the response; below the threshold it visibly disagrees."""
    views = []
    for text in samples:
        overlap = word_overlap(response, text)
        views.append(SampleView(text=text, overlap=overlap, agrees=overlap >= threshold))
    return views


def cluster_members(session: Session, pick: Pick | None, limit: int = 5) -> list[Related]:
    """Other items the same selection run put in this item's cluster."""
    if pick is None:
        return []
    rows = queues_repo.cluster_members(session, pick=pick, limit=limit)
    verdicts = repo.verdicts_of(session, output_ids=[r[0] for r in rows])
    return [
        Related(output_id=i, response=text, score=score, verdict=verdicts.get(i)) for i, text, score in rows
    ]


def similar_reviewed(
    session: Session, similar: list[dict[str, Any]] | None, *, floor: float, limit: int = 5
) -> list[Related]:
    """The nearest reviewed outputs found when this output was scored, at least ``floor`` alike
    (cosine) and still reviewed, with their verdicts, categories and corrections; none when nothing
    is that alike."""
    wanted = [
        (str(s["id"]), float(s.get("similarity", 0.0)))
        for s in (similar or [])
        if float(s.get("similarity", 0.0)) >= floor
    ][:limit]
    texts = repo.responses_of(session, output_ids=[i for i, _ in wanted])
    found = []
    for output_id, similarity in wanted:
        review = repo.verdict_review(session, output_id=output_id)
        if review is None or output_id not in texts:
            continue  # deleted, or its verdict was taken back since
        found.append(
            Related(
                output_id=output_id,
                response=texts[output_id],
                score=None,
                verdict=review.verdict,
                similarity=similarity,
                categories=tuple(review.categories or ()),
                correction=review.correction,
            )
        )
    return found
