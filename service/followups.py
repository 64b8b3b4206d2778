"""Enqueueing from the edge, after the transaction committed; a failure here never loses an output."""

from __future__ import annotations

import logging
from collections.abc import Mapping, Sequence

from fastapi import Request

from service import queueing, telemetry
from service.deps import work_queue
from service.errors import ServiceError

log = logging.getLogger(__name__)


def after_commit_score(request: Request, output_ids: Sequence[str]) -> bool:
    """Enqueue scoring; if Redis is unreachable the output stays `received` and the sweep finds it."""
    if not output_ids:
        return True
    settings = request.app.state.settings
    try:
        queueing.enqueue_scoring(work_queue(request), settings, output_ids)
    except ServiceError as exc:
        log.warning("scoring not enqueued (%s); the sweep will pick up %d outputs", exc, len(output_ids))
        return False
    return True


def after_commit_ingest(request: Request, apps: Mapping[str, int], new_ids: Sequence[str]) -> None:
    """After a batch of outputs committed: count them per app and enqueue scoring of the new ones."""
    for app, count in apps.items():
        telemetry.ingested(app, count)
    after_commit_score(request, new_ids)


def after_commit_review(request: Request, queue_name: str | None, verdict: str | None = None) -> None:
    """After a verdict (or its undo, ``verdict`` None): count it, refill the queue it freed a slot in,
    and let the scorer learn from it."""
    if verdict is not None:
        telemetry.reviewed(queue_name, verdict)
    settings = request.app.state.settings
    try:
        queue = work_queue(request)
        if queue_name is not None:
            queueing.enqueue_refresh(queue, settings, queue_name)
    except ServiceError as exc:
        log.warning("follow-up of a review not enqueued (%s); the sweep will catch up", exc)
