"""Review queues: what is waiting for a human, and why each item was picked."""

from __future__ import annotations

from datetime import UTC, datetime

from fastapi import APIRouter, Query
from sqlalchemy.orm import Session

from service.api.deps import ReaderDep, SessionDep, SettingsDep
from service.api.views import queue_item
from service.domain import QueueItems, QueueView
from service.errors import NotFound
from service.estimates import QueueStats, queue_stats
from service.hygiene import MAX_INT
from service.settings import QueueConfig, Settings
from service.storage import queues as queues_repo

router = APIRouter(prefix="/queues", tags=["queues"])


def start_of_day() -> datetime:
    return datetime.now(UTC).replace(hour=0, minute=0, second=0, microsecond=0)


def queue_config(settings: Settings, name: str) -> QueueConfig:
    config = settings.queue(name)
    if config is None:
        raise NotFound(f"no queue named {name!r}", details={"known": [q.name for q in settings.queues]})
    return config


def queue_view(session: Session, config: QueueConfig) -> QueueView:
    today = start_of_day()
    return QueueView(
        name=config.name,
        apps=config.apps,
        budget_per_day=config.budget_per_day,
        backlog_limit=config.backlog_limit,
        audit_share=config.audit_share,
        junk=queues_repo.junk_counts(session, queue=config.name),
        waiting=queues_repo.count_waiting(session, queue=config.name),
        picked_today=queues_repo.count_picked_since(session, queue=config.name, since=today),
        reviewed_today=queues_repo.count_reviewed_since(session, queue=config.name, since=today),
    )


@router.get("", response_model=list[QueueView])
def list_queues(_: ReaderDep, session: SessionDep, settings: SettingsDep) -> list[QueueView]:
    """Every configured queue with its waiting count and today's budget use."""
    return [queue_view(session, q) for q in settings.queues]


@router.get("/{name}/items", response_model=QueueItems)
def list_items(
    name: str,
    _: ReaderDep,
    session: SessionDep,
    settings: SettingsDep,
    limit: int = Query(50, ge=1, le=500),
    offset: int = Query(0, ge=0, le=MAX_INT),
) -> QueueItems:
    """The unreviewed items of a queue, most likely failures first, each with its reason."""
    config = queue_config(settings, name)
    total, rows = queues_repo.waiting_items(session, queue=config.name, limit=limit, offset=offset)
    return QueueItems(queue=config.name, total=total, items=[queue_item(p, o) for p, o in rows])


@router.get("/{name}/stats", response_model=QueueStats)
def queue_statistics(name: str, _: ReaderDep, session: SessionDep, settings: SettingsDep) -> QueueStats:
    """The failure rate of the queue's traffic with a 95% interval, from the random audit and the
    inclusion probability of every reviewed pick; junk counts by reason."""
    return queue_stats(session, queue=queue_config(settings, name).name)
