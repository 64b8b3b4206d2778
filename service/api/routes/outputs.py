"""Ingest: applications post their LLM outputs; scoring happens later, in a worker."""

from __future__ import annotations

from collections import Counter
from typing import Any

from fastapi import APIRouter, Query, Request, Response, status
from pydantic import ValidationError

from service import ratelimit, telemetry
from service.auth import Permission, Principal
from service.deps import IngestDep, ReaderDep, SessionDep, SettingsDep, work_queue
from service.domain import (
    BatchIn,
    BatchItemResult,
    BatchResult,
    OutputAccepted,
    OutputIn,
    OutputPage,
    OutputStatus,
    OutputView,
)
from service.errors import PayloadTooLarge, ServiceError, validation_details
from service.followups import after_commit_score
from service.settings import Settings
from service.storage import repository as repo
from service.storage import reviewing
from service.views import output_summary, output_view

router = APIRouter(prefix="/outputs", tags=["outputs"])


@router.post(
    "",
    status_code=status.HTTP_202_ACCEPTED,
    response_model=OutputAccepted,
    responses={200: {"description": "A repeat of a stored external_id: the stored record, nothing added."}},
)
def post_output(
    output_in: OutputIn,
    principal: IngestDep,
    session: SessionDep,
    settings: SettingsDep,
    request: Request,
    response: Response,
) -> OutputAccepted:
    """Store one output and enqueue its scoring; answers before scoring runs."""
    _within_rate(request, principal, settings, 1)
    with session.begin():
        row, duplicate = repo.ingest_output(session, output_in=output_in)
    if duplicate:
        response.status_code = status.HTTP_200_OK
    else:
        telemetry.ingested(row.app)
        after_commit_score(request, [row.id])
    return OutputAccepted(
        id=row.id, external_id=row.external_id, status=OutputStatus(row.status), duplicate=duplicate
    )


@router.post(
    "/batch",
    status_code=status.HTTP_202_ACCEPTED,
    response_model=BatchResult,
    responses={200: {"description": "Nothing new was accepted (all duplicates or errors)."}},
)
def post_batch(
    batch: BatchIn,
    principal: IngestDep,
    session: SessionDep,
    settings: SettingsDep,
    request: Request,
    response: Response,
) -> BatchResult:
    """Store many outputs; each item gets its own status and one bad item never loses the good ones."""
    if len(batch.outputs) > settings.max_batch_outputs:
        raise PayloadTooLarge(
            f"a batch holds at most {settings.max_batch_outputs} outputs, got {len(batch.outputs)}",
            details={"max_batch_outputs": settings.max_batch_outputs},
        )
    _within_rate(request, principal, settings, len(batch.outputs))
    results: list[BatchItemResult] = []
    new_ids: list[str] = []
    apps: Counter[str] = Counter()
    with session.begin():
        for index, raw in enumerate(batch.outputs):
            results.append(_ingest_one(session, index, raw, new_ids, apps))
    for app, count in apps.items():
        telemetry.ingested(app, count)
    if new_ids:
        after_commit_score(request, new_ids)
    else:
        response.status_code = status.HTTP_200_OK
    counts = {s: sum(r.status == s for r in results) for s in ("accepted", "duplicate", "error")}
    return BatchResult(
        accepted=counts["accepted"], duplicates=counts["duplicate"], errors=counts["error"], results=results
    )


def _within_rate(request: Request, principal: Principal, settings: Settings, outputs: int) -> None:
    """Count these outputs against the key's per-minute limit (429 with Retry-After past it)."""
    if ratelimit.limit_of(principal, settings.ingest_rate_per_minute) > 0:
        ratelimit.take(
            work_queue(request).connection, principal, outputs, default=settings.ingest_rate_per_minute
        )


def _ingest_one(
    session: Any, index: int, raw: dict[str, Any], new_ids: list[str], apps: Counter[str]
) -> BatchItemResult:
    try:
        output_in = OutputIn.model_validate(raw)
        row, duplicate = repo.ingest_output(session, output_in=output_in)
    except ValidationError as exc:
        error = {
            "code": "validation_failed",
            "message": "invalid output",
            "details": validation_details(exc.errors()),
        }
        return BatchItemResult(index=index, status="error", error=error)
    except ServiceError as exc:
        return BatchItemResult(index=index, status="error", error=exc.envelope()["error"])
    if not duplicate:
        new_ids.append(row.id)
        apps[row.app] += 1
    return BatchItemResult(index=index, status="duplicate" if duplicate else "accepted", id=row.id)


@router.get("", response_model=OutputPage)
def list_outputs(
    _: ReaderDep,
    session: SessionDep,
    app: str | None = None,
    queue: str | None = None,
    stage: OutputStatus | None = Query(default=None, alias="status"),
    after: str = "",
    limit: int = Query(default=500, ge=1, le=2000),
    signals: bool = Query(default=False, description="Include each output's signals."),
) -> OutputPage:
    """Outputs page by page (stable id order): status, score and scorer version, for dashboards,
    exports and replays."""
    rows = repo.list_outputs(
        session,
        app=app,
        queue=queue,
        status=stage.value if stage is not None else None,
        after=after,
        limit=limit,
        with_signals=signals,
    )
    items = [output_summary(o, with_signals=signals) for o in rows]
    return OutputPage(items=items, next=rows[-1].id if len(rows) == limit else None)


@router.get("/{output_id}", response_model=OutputView)
def get_output(output_id: str, principal: ReaderDep, session: SessionDep) -> OutputView:
    """An output's status, its signals so far, its score, its pick and its reviews (hidden from a
    reviewer who owes it a blind second verdict)."""
    output = repo.get_output(session, output_id=output_id)
    blind = principal.can(Permission.review) and reviewing.owes_second_review(
        session, output=output, user_id=principal.id
    )
    return output_view(session, output, hide_reviews=blind)
