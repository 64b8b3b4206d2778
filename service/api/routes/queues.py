"""Review queues: what is waiting for a human, and why each item was picked."""

from __future__ import annotations

from typing import Literal

from fastapi import APIRouter, Query

from service.deps import ItemFilterDep, ReaderDep, SessionDep, SettingsDep
from service.domain_queues import QueueItems, QueueReport, QueueStats, QueueView
from service.hygiene import MAX_INT
from service.storage import queues as queues_repo
from service.usecases.queues import queue_config, queue_stats, queue_view
from service.usecases.report import queue_report
from service.views import queue_item

router = APIRouter(prefix="/queues", tags=["queues"])


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
    item_filter: ItemFilterDep,
    limit: int = Query(50, ge=1, le=500),
    offset: int = Query(0, ge=0, le=MAX_INT),
) -> QueueItems:
    """The unreviewed items routing chose for a queue, most likely failures first, each with its
    reason; narrowed by app, model, stratum, score range, metadata values and text when asked. Audit
    members waiting for their turns are counted, not listed."""
    config = queue_config(settings, name)
    total, rows = queues_repo.waiting_items(
        session, queue=config.name, limit=limit, offset=offset, item_filter=item_filter
    )
    return QueueItems(
        queue=config.name,
        total=total,
        items=[queue_item(p, o) for p, o in rows],
        audit_waiting=queues_repo.count_audit_waiting(session, queue=config.name),
    )


@router.get("/{name}/stats", response_model=QueueStats)
def queue_statistics(name: str, _: ReaderDep, session: SessionDep, settings: SettingsDep) -> QueueStats:
    """The failure rate of the queue's traffic with a 95% interval, from the random audit and the
    inclusion probability of every reviewed pick; junk counts by reason."""
    return queue_stats(session, queue=queue_config(settings, name).name)


@router.get("/{name}/report", response_model=QueueReport)
def queue_evidence(
    name: str,
    _: ReaderDep,
    session: SessionDep,
    settings: SettingsDep,
    period: Literal["day", "week"] = "day",
) -> QueueReport:
    """What the queue's reviews bought: its stats, the failure rate per day or week with its
    interval, what routing found against the audit (lift), and reviews per day."""
    return queue_report(session, settings, queue=queue_config(settings, name).name, period=period)
