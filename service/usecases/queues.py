"""Review queues, shared by the REST API and the pages: a queue by name, its view with today's budget
use, and its honest failure rate (the selection runs' designs, certainty picks plus a random audit,
turned into an estimate with a 95% interval by ``core.estimate``)."""

from __future__ import annotations

from sqlalchemy.orm import Session

from core import estimate
from core.budget import start_of_day
from service.domain_queues import QueueStats, QueueView
from service.errors import NotFound
from service.settings import QueueConfig, Settings
from service.storage import population as population_repo
from service.storage import queues as queues_repo
from service.storage import scorers
from service.storage.population import as_output
from service.storage.tables import utcnow
from service.views import model_view, rate_view


def queue_config(settings: Settings, name: str) -> QueueConfig:
    """A configured queue by name (404 naming the known ones otherwise)."""
    config = settings.queue(name)
    if config is None:
        raise NotFound(f"no queue named {name!r}", details={"known": [q.name for q in settings.queues]})
    return config


def queue_view(session: Session, config: QueueConfig) -> QueueView:
    """A queue with its waiting count and today's budget use."""
    today = start_of_day(utcnow())
    return QueueView(
        name=config.name,
        apps=config.apps,
        budget_per_day=config.budget_per_day,
        backlog_limit=config.backlog_limit,
        audit_share=config.audit_share,
        audit_share_now=queues_repo.current_audit_share(session, queue=config.name) or config.audit_share,
        target_width=config.target_width,
        junk=queues_repo.junk_counts(session, queue=config.name),
        waiting=queues_repo.count_waiting(session, queue=config.name),
        picked_today=queues_repo.count_picked_since(session, queue=config.name, since=today),
        reviewed_today=queues_repo.count_reviewed_since(session, queue=config.name, since=today),
    )


Population = list[population_repo.PopulationRow]


def queue_stats(session: Session, *, queue: str, rows: Population | None = None) -> QueueStats:
    """A queue's failure rate two ways: every review counted (``estimate``) and from the audit
    members alone (``audit_only``).
    ``rows``: the queue's ``estimate_population`` when the caller has it already."""
    if rows is None:
        rows = population_repo.estimate_population(session, queue=queue)
    population = [as_output(row) for row in rows]
    audit = estimate.audit_only(population)
    counted = [o for o in population if o.failed is not None]
    return QueueStats(
        queue=queue,
        outputs=len(population),
        reviews=len(counted),
        failures=sum(bool(o.failed) for o in counted),
        estimate=rate_view(estimate.every_review(population)) if counted else None,
        audit_only=rate_view(audit) if audit else None,
        windows=None,
        runs_used=0,
        runs_pending=0,
        junk=queues_repo.junk_counts(session, queue=queue),
        model=model_view(active) if (active := scorers.active_model_info(session, queue=queue)) else None,
    )
