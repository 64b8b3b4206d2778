"""The selection job: fill one review queue from its window of scored outputs (thin: load, call the
pure selector in ``core.selection``, store the selection run, its picks and the junk bucket)."""

from __future__ import annotations

import logging
import math
from collections.abc import Mapping
from datetime import timedelta
from typing import Any

import numpy as np
from sqlalchemy.orm import Session

from core import budget, estimate, notifications, selection
from core.candidates import Candidate, SelectionParams
from core.reasons import neighbour_evidence
from service import queueing
from service.settings import QueueConfig, Settings
from service.storage import audit as audit_repo
from service.storage import population as population_repo
from service.storage import queues as queues_repo
from service.storage import repository as repo
from service.storage.db import transaction
from service.storage.population import as_output
from service.storage.tables import Output, utcnow
from workers.runtime import runtime

log = logging.getLogger(__name__)


def params_for(
    settings: Settings,
    config: QueueConfig,
    *,
    drifting: bool = False,
    needed: int = 0,
    pace: int | None = None,
) -> SelectionParams:
    """The queue's selection parameters: while its traffic drifts, a larger audit (if configured);
    while ``needed`` more audit reviews are wanted for its ``target_width``, as much more of a day's
    reviews as they need (up to ``max_audit_share``): of ``pace``, the reviews of the last 24 hours
    when there were any and fewer than the budget, else of the budget."""
    audit_share = max(config.audit_share, settings.drift_audit_share) if drifting else config.audit_share
    cap = max(settings.max_audit_share, audit_share)
    day = min(config.budget_per_day, pace) if pace else config.budget_per_day
    audit_share = budget.audit_share_for(audit_share, reviews=day, needed=needed, cap=cap)
    return SelectionParams(
        audit_share=audit_share,
        explore_share=config.explore_share,
        cluster_share=config.cluster_share,
        candidate_multiple=settings.candidate_multiple,
        pca_components=settings.selection_pca_components,
        min_cluster_size=settings.min_cluster_size,
        near_duplicate=settings.duplicate_cosine,
        junk_repeat_prompts=settings.junk_repeat_prompts,
    )


def candidate(output: Output) -> Candidate:
    vector = np.frombuffer(output.embedding, dtype=np.float32) if output.embedding else None
    return Candidate(
        output_id=output.id,
        score=output.score,
        drivers=output.drivers or (),
        vector=vector,
        prompt=output.prompt,
        response=output.response,
        finish_reason=output.finish_reason,
        exploration=(output.signals or {}).get("reviewed_novelty"),
        fresh=output.audit_rate is None,
    )


def similar_verdicts(
    session: Session, similar: Mapping[str, list[dict[str, Any]] | None], floor: float
) -> dict[str, list[tuple[float, str]]]:
    """Output id -> (cosine, verdict) of its nearest reviewed outputs (``Output.similar``, found when
    it was scored) that are at least ``floor`` alike and still have a verdict."""
    wanted = {
        oid: [(str(s["id"]), float(s.get("similarity", 0.0))) for s in (found or [])]
        for oid, found in similar.items()
    }
    wanted = {oid: [(i, c) for i, c in pairs if c >= floor] for oid, pairs in wanted.items()}
    verdicts = repo.verdicts_of(
        session, output_ids=sorted({i for pairs in wanted.values() for i, _ in pairs})
    )
    return {oid: [(c, verdicts[i]) for i, c in pairs if i in verdicts] for oid, pairs in wanted.items()}


def audits_wanted(session: Session, config: QueueConfig) -> int:
    """How many more audit reviews the queue's estimate needs to be ``target_width`` wide (0 without
    a target, or once it is met). Members waiting are not reviews: the audit's turns are what count."""
    if config.target_width is None:
        return 0
    traffic = [as_output(row) for row in population_repo.estimate_population(session, queue=config.name)]
    if not any(o.failed is not None for o in traffic):
        return 0
    now = estimate.every_review(traffic)
    if now.high - now.low <= config.target_width:
        return 0
    return max(0, estimate.audits_needed(now, config.target_width) - now.n_audit)


def _expose(session: Session, config: QueueConfig, settings: Settings) -> None:
    """No selection this time: the audit still draws the new traffic, at the share it draws with now,
    or at the drift share while the traffic drifts (a full backlog must not keep a change of traffic
    at the old share). The drift test runs only when there is new traffic to draw."""
    current = queues_repo.current_audit_share(session, queue=config.name)
    share = config.audit_share if current is None else current
    if settings.drift_audit_share > share and audit_repo.has_unexposed(session, queue=config.name):
        shift = queues_repo.traffic_drift(session, settings, queue=config.name)
        if shift is not None and shift.drifted:
            share = settings.drift_audit_share
            log.warning(
                "queue %s: traffic drifts (shift %.2f SD, p=%.1e); new traffic audited at %.0f%%",
                config.name,
                shift.shift,
                shift.p_value,
                100 * share,
            )
    joined = audit_repo.expose(
        session, queue=config.name, share=share, rng=np.random.default_rng(), limit=settings.selection_window
    )
    if joined:
        log.info("queue %s: %d new outputs drawn into the audit while no slot was open", config.name, joined)


def with_neighbours(reason: str, similar: list[tuple[float, str]]) -> str:
    """The pick's reason, and what its most similar reviewed outputs say when any of them failed
    (unless the learned model's own neighbour vote already says so)."""
    evidence = neighbour_evidence(similar)
    if evidence is None or "most similar reviewed outputs" in reason:
        return reason
    return f"{reason}; {evidence}"


def _may_select(settings: Settings, config: QueueConfig, *, picked_today: int, waiting: int) -> bool:
    """Whether a selection could be worth it (``budget.worth_selecting``) at any audit share the
    queue may draw with (its own, raised on drift or for its ``target_width``). A higher share only
    leaves routing fewer slots, so with fewer than a batch open at the queue's own share, and a batch
    still left of the day's routing budget at the highest share, no share makes it worth it: asking
    ``worth_selecting`` with the most slots any share leaves and the least budget is that bound."""
    slots = budget.open_slots(
        budget_per_day=budget.routing_budget(config.budget_per_day, config.audit_share),
        picked_today=picked_today,
        backlog_limit=config.backlog_limit,
        waiting=waiting,
    )
    highest = max(config.audit_share, settings.drift_audit_share, settings.max_audit_share)
    least_left = budget.routing_budget(config.budget_per_day, highest) - picked_today
    return budget.worth_selecting(
        slots=slots, waiting=waiting, budget_left=least_left, batch=_batch(settings, config)
    )


def _batch(settings: Settings, config: QueueConfig) -> int:
    """The slots a refill waits for (``RR_REFILL_SHARE`` of the backlog)."""
    return math.ceil(settings.refill_share * config.backlog_limit)


def select_queue(queue_name: str) -> int:
    """Fill one review queue up to today's budget and its backlog limit; returns how many were added."""
    rt = runtime()
    settings = rt.settings
    config = settings.queue(queue_name)
    if config is None:
        log.warning("selection for unknown queue %r ignored", queue_name)
        return 0
    now = utcnow()
    with transaction(rt.engine) as session:
        queues_repo.release_stale_picks(
            session,
            queue=config.name,
            picked_before=now - timedelta(hours=settings.stale_pick_hours),
            now=now,
        )
        picked_today = queues_repo.count_picked_since(
            session, queue=config.name, since=budget.start_of_day(now)
        )
        waiting = queues_repo.count_waiting(session, queue=config.name)
        # A raised audit share only leaves routing less: when no share could make a selection worth
        # it, the drift test and the estimate need not run (the drift test alone cost about 0.1 s of
        # every verdict's refresh, measured in a 1,500-output replay: half of its review phase).
        if not _may_select(settings, config, picked_today=picked_today, waiting=waiting):
            _expose(session, config, settings)
            return 0
        shift = queues_repo.traffic_drift(session, settings, queue=config.name)
        needed = audits_wanted(session, config)
        pace = (
            population_repo.reviews_since(session, queue=config.name, since=now - timedelta(days=1))
            if needed
            else None
        )
        params = params_for(
            settings, config, drifting=shift is not None and shift.drifted, needed=needed, pace=pace
        )
        routing_budget = budget.routing_budget(config.budget_per_day, params.audit_share)
        slots = budget.open_slots(
            budget_per_day=routing_budget,
            picked_today=picked_today,
            backlog_limit=config.backlog_limit,
            waiting=waiting,
        )
        worth_it = budget.worth_selecting(
            slots=slots,
            waiting=waiting,
            budget_left=routing_budget - picked_today,
            batch=_batch(settings, config),
        )
        window = (
            queues_repo.queue_window(session, queue=config.name, limit=settings.selection_window)
            if worth_it
            else []
        )
        candidates = [candidate(o) for o in window]
        drawn = (
            [
                candidate(o)
                for o in queues_repo.routable_audit(
                    session, queue=config.name, now=now, limit=settings.selection_window
                )
            ]
            if candidates
            else []
        )
        by_id = {o.id: o.similar for o in window}
        if not candidates:
            _expose(session, config, settings)
    if not candidates:
        return 0
    if shift is not None and shift.drifted:
        log.warning(
            "queue %s: traffic drifts (latest %d outputs against the %d before: shift %.2f SD, p=%.1e); "
            "audit share raised to %.0f%%",
            config.name,
            shift.recent,
            shift.reference,
            shift.shift,
            shift.p_value,
            100 * max(config.audit_share, settings.drift_audit_share),
        )
    rng = np.random.default_rng()
    if needed > 0:
        log.info(
            "queue %s: its failure-rate interval is wider than %.2f; %d more audit reviews wanted, "
            "audit share %.0f%%",
            config.name,
            config.target_width,
            needed,
            100 * params.audit_share,
        )
    result = selection.select_window(candidates, slots=slots, params=params, rng=rng, drawn=drawn)
    members = {d.output_id for d in drawn}
    fresh = [c.output_id for c in candidates if c.fresh]
    ranks = selection.review_ranks(result.picks, rng)
    junk = sum(len(ids) for ids in result.junk.values())
    added = 0
    with transaction(rt.engine) as session:
        for reason, ids in result.junk.items():
            queues_repo.mark_junk(session, output_ids=ids, reason=reason)
        run = queues_repo.add_selection(
            session,
            queue=config.name,
            window_size=len(candidates) - junk,
            junk=junk,
            clusters=result.clusters,
            noise=result.noise,
            audit_share=params.audit_share,
        )
        neighbours = similar_verdicts(
            session, {p.output_id: by_id.get(p.output_id) for p in result.picks}, settings.similar_floor
        )
        for pick, rank in zip(result.picks, ranks, strict=True):
            if pick.output_id in members:  # an earlier window's audit member, chosen by routing now
                queues_repo.route_audit_pick(
                    session,
                    output_id=pick.output_id,
                    reason=pick.reason,
                    score=pick.score,
                    cluster=pick.cluster,
                    members=pick.members,
                    now=now,
                )
                continue
            added += queues_repo.add_pick(
                session,
                queue=config.name,
                output_id=pick.output_id,
                stratum=pick.stratum,
                reason=with_neighbours(pick.reason, neighbours.get(pick.output_id, [])),
                score=pick.score,
                inclusion_probability=pick.inclusion_probability,
                selection_id=run.id,
                cluster=pick.cluster,
                duplicates=pick.duplicates,
                queue_rank=rank,
                members=pick.members,
                routed_at=now if pick.routed else None,
            )
        queues_repo.mark_exposed(session, output_ids=fresh, audit_rate=params.audit_share)
        if needed:  # the outputs already seen, at the raised share too: a backlog can buy its width
            joined = audit_repo.top_up(
                session, queue=config.name, share=params.audit_share, selection_id=run.id, rng=rng
            )
            if joined:
                log.info(
                    "queue %s: %d outputs seen before joined the audit at its raised share",
                    config.name,
                    joined,
                )
    log.info("queue %s: %d picked, %d junk, %d clusters", queue_name, added, junk, result.clusters)
    outcome = notifications.Selected(
        queue=config.name,
        waiting_before=waiting,
        added=added,
        picked_today_before=picked_today,
        budget_per_day=routing_budget,
        drifting=shift is not None and shift.drifted,
        audit_share=params.audit_share,
    )
    notify(config, outcome)
    return added


def notify(config: QueueConfig, outcome: notifications.Selected) -> None:
    """Hand the run's notifications to the webhook job; a drift alarm at most once a day per queue.
    A failure here is logged: selection has already been stored and must not be undone by it."""
    if not config.webhook_url:
        return
    rt = runtime()
    try:
        queue = rt.work_queue()
        for payload in notifications.events(outcome, link=_queue_link(rt.settings, config.name)):
            key = f"rr:notified:{rt.settings.rq_queue}:{config.name}:{payload['event']}"
            if payload["event"] == "drift" and not queue.connection.set(key, 1, nx=True, ex=24 * 3600):
                continue
            queueing.enqueue_notification(queue, rt.settings, config.webhook_url, payload)
    except Exception:
        log.exception("queue %s: could not send its notifications", config.name)


def _queue_link(settings: Settings, name: str) -> str:
    return f"{settings.public_url.rstrip('/')}/ui/queues/{name}" if settings.public_url else ""
