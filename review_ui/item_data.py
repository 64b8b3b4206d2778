"""What the item page shows besides the output itself: its cluster's other members, similar past
items with their verdicts, and how each self-consistency sample compares with the response."""

from __future__ import annotations

import re
from dataclasses import dataclass
from typing import Any

from sqlalchemy import select
from sqlalchemy.orm import Session

from service.storage.tables import Output, Pick, Review

WORD = re.compile(r"\w+")


@dataclass(frozen=True)
class Related:
    output_id: str
    response: str
    score: float | None
    verdict: str | None
    similarity: float | None = None


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


def verdicts_of(session: Session, output_ids: list[str]) -> dict[str, str]:
    """The verdict (latest first review or adjudication) of each of these outputs that has one."""
    if not output_ids:
        return {}
    rows = session.execute(
        select(Review.output_id, Review.verdict)
        .where(Review.output_id.in_(output_ids), Review.kind != "qc")
        .order_by(Review.created_at)
    )
    return {output_id: verdict for output_id, verdict in rows}


def cluster_members(session: Session, pick: Pick | None, limit: int = 5) -> list[Related]:
    """Other items the same selection run put in this item's cluster."""
    if pick is None or pick.selection_id is None or pick.cluster is None or pick.cluster < 0:
        return []
    rows = list(
        session.execute(
            select(Output.id, Output.response, Pick.score)
            .join(Output, Output.id == Pick.output_id)
            .where(Pick.selection_id == pick.selection_id, Pick.cluster == pick.cluster, Pick.id != pick.id)
            .order_by(Pick.score.desc().nulls_last())
            .limit(limit)
        )
    )
    verdicts = verdicts_of(session, [r[0] for r in rows])
    return [
        Related(output_id=i, response=text, score=score, verdict=verdicts.get(i)) for i, text, score in rows
    ]


def similar_reviewed(session: Session, similar: list[dict[str, Any]] | None, limit: int = 5) -> list[Related]:
    """The nearest reviewed outputs found when this output was scored, with their verdicts."""
    wanted = [(str(s["id"]), float(s.get("similarity", 0.0))) for s in (similar or [])][:limit]
    if not wanted:
        return []
    ids = [i for i, _ in wanted]
    texts = {i: t for i, t in session.execute(select(Output.id, Output.response).where(Output.id.in_(ids)))}
    verdicts = verdicts_of(session, ids)
    return [
        Related(output_id=i, response=texts[i], score=None, verdict=verdicts.get(i), similarity=sim)
        for i, sim in wanted
        if i in texts
    ]
