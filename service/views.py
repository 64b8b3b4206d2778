"""Stored rows become the API's models here and nowhere else (the REST routes, the review pages and
the use cases all call these)."""

from __future__ import annotations

from sqlalchemy.orm import Session

from core import agreement, estimate
from core.exports import ExportItem
from core.promotion import RuleCondition
from core.reviews import ReviewKind
from service.domain import (
    OutputStatus,
    OutputSummary,
    OutputView,
    PickView,
    ReviewView,
    Verdict,
)
from service.domain_accounts import ApiKeyView, UserView
from service.domain_collections import CollectionView, ItemView, RuleView, VersionView
from service.domain_queues import ModelView, QueueItem, RateView, ReliabilityPoint
from service.domain_workbench import AgreementView
from service.hygiene import printable
from service.storage import queues as queues_repo
from service.storage import repository as repo
from service.storage.tables import (
    ApiKey,
    Collection,
    CollectionVersion,
    Output,
    Pick,
    PromotionRule,
    Review,
    ScorerModel,
    User,
)


def pick_view(pick: Pick) -> PickView:
    return PickView(
        queue=pick.queue,
        reason=pick.reason,
        stratum=pick.stratum,
        score=pick.score,
        inclusion_probability=pick.inclusion_probability,
        cluster=pick.cluster,
        duplicates=pick.duplicates or [],
        members=pick.members or [],
        picked_at=pick.picked_at,
        reviewed=pick.reviewed_at is not None,
    )


def review_view(review: Review) -> ReviewView:
    return ReviewView(
        id=review.id,
        output_id=review.output_id,
        verdict=Verdict(review.verdict),
        categories=review.categories or [],
        correction=review.correction,
        note=review.note,
        reviewer=review.reviewer,
        kind=ReviewKind(review.kind),
        queue=review.queue,
        created_at=review.created_at,
    )


def output_summary(output: Output, *, with_signals: bool) -> OutputSummary:
    """An output in a listing; its signals only when asked for (they were loaded only then)."""
    return OutputSummary(
        id=output.id,
        external_id=output.external_id,
        app=output.app,
        queue=output.queue,
        status=OutputStatus(output.status),
        score=output.score,
        scorer_version=output.scorer_version,
        signals=(output.signals or {}) if with_signals else None,
    )


def output_view(session: Session, output: Output, *, hide_reviews: bool = False) -> OutputView:
    """An output as the API shows it; ``hide_reviews`` for a reviewer who owes it a blind verdict."""
    pick = queues_repo.pick_for(session, output_id=output.id)
    return OutputView(
        id=output.id,
        external_id=output.external_id,
        app=output.app,
        model=output.model,
        status=OutputStatus(output.status),
        received_at=output.received_at,
        scored_at=output.scored_at,
        prompt=printable(output.prompt),
        messages=printable(output.messages),
        response=printable(output.response),
        finish_reason=output.finish_reason,
        samples=printable(output.samples or []),
        sampling=output.sampling,
        error=printable(output.error),
        metadata=printable(output.meta or {}),
        signals=output.signals or {},
        score=output.score,
        scorer_version=output.scorer_version,
        drivers=output.drivers or [],
        pick=pick_view(pick) if pick is not None else None,
        reviews=[]
        if hide_reviews
        else [review_view(r) for r in repo.reviews_for(session, output_id=output.id)],
        reviews_hidden=hide_reviews,
    )


def queue_item(pick: Pick, output: Output) -> QueueItem:
    return QueueItem(
        output_id=output.id,
        external_id=output.external_id,
        app=output.app,
        model=output.model,
        prompt=output.prompt,
        response=output.response,
        score=pick.score,
        reason=pick.reason,
        stratum=pick.stratum,
        routed=pick.in_routing,
        inclusion_probability=pick.inclusion_probability,
        cluster=pick.cluster,
        duplicates=len(pick.duplicates or []),
        picked_at=pick.picked_at,
    )


def user_view(user: User) -> UserView:
    return UserView.model_validate(user)


def key_view(key: ApiKey) -> ApiKeyView:
    return ApiKeyView.model_validate(key)


def version_view(version: CollectionVersion) -> VersionView:
    return VersionView(
        number=version.number,
        created_at=version.created_at,
        created_by=version.created_by,
        note=version.note,
        items=version.items,
        held_back=len(version.held_back),
        checked_against=dict(version.checked_against),
    )


def collection_view(collection: Collection, latest: CollectionVersion | None) -> CollectionView:
    return CollectionView(
        name=collection.name,
        kind=collection.kind,  # type: ignore[arg-type]
        description=collection.description,
        created_at=collection.created_at,
        created_by=collection.created_by,
        latest=version_view(latest) if latest is not None else None,
    )


def rule_view(rule: PromotionRule, collection: Collection) -> RuleView:
    return RuleView(
        name=rule.name,
        collection=collection.name,
        condition=RuleCondition.model_validate(rule.condition),
        active=rule.active,
        created_at=rule.created_at,
        created_by=rule.created_by,
    )


def rate_view(e: estimate.Estimate) -> RateView:
    return RateView(
        rate=e.rate,
        low=e.low,
        high=e.high,
        method=e.method,
        n_audit=e.n_audit,
        n_reviews=e.n_reviews,
        withheld=e.withheld,
        gain=e.gain,
    )


def agreement_view(a: agreement.Agreement) -> AgreementView:
    return AgreementView(items=a.items, agreed=a.agreed, percent=a.percent, kappa=a.kappa)


def item_view(item: ExportItem, *, held: set[str]) -> ItemView:
    """One item of a collection version, and whether this version holds it back (leakage)."""
    return ItemView(
        entry_id=item.entry_id,
        input=item.input,
        bad_output=item.bad_output,
        ideal=item.ideal,
        categories=item.categories,
        provenance=item.provenance,
        merged_output_ids=item.merged_output_ids,
        held_back=item.entry_id in held,
    )


def model_view(row: ScorerModel) -> ModelView:
    """A stored scorer version with the held-out calibration figures it was trained with."""
    held = (row.metrics or {}).get("held_out") or {}
    return ModelView(
        version=row.version,
        created_at=row.created_at,
        reviews=row.n_labels,
        failures=row.n_failures,
        calibration=row.calibration,
        cv_auroc=(row.metrics or {}).get("cv_auroc"),
        brier=held.get("brier"),
        ece=held.get("ece"),
        reliability=[ReliabilityPoint(**pt) for pt in held.get("reliability", [])],
    )
