"""Counts for operators and the demo: how much traffic is in each stage of the pipeline."""

from __future__ import annotations

from fastapi import APIRouter
from pydantic import BaseModel

from service.api.deps import PrincipalDep, SessionDep
from service.storage import repository as repo

router = APIRouter(prefix="/stats", tags=["stats"])


class Stats(BaseModel):
    outputs: dict[str, int]
    total: int


@router.get("", response_model=Stats)
def get_stats(_: PrincipalDep, session: SessionDep) -> Stats:
    """Outputs per status (received, scored, queued, reviewed); any signed-in caller or API key."""
    counts = repo.count_by_status(session)
    return Stats(outputs=counts, total=sum(counts.values()))
