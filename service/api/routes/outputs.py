"""Ingest: applications post their LLM outputs; scoring happens later, in a worker."""

from __future__ import annotations

from fastapi import APIRouter, Query, Request, Response, status

from service.auth import Permission
from service.deps import IngestDep, ReaderDep, SessionDep, SettingsDep, within_ingest_rate
from service.domain import (
    BatchIn,
    BatchResult,
    OutputAccepted,
    OutputIn,
    OutputPage,
    OutputStatus,
    OutputView,
)
from service.errors import PayloadTooLarge
from service.followups import after_commit_ingest
from service.storage import repository as repo
from service.storage import reviewing
from service.usecases.ingest import ingest_many
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
    within_ingest_rate(request, principal, settings, 1)
    with session.begin():
        row, duplicate = repo.ingest_output(session, output_in=output_in)
    if duplicate:
        response.status_code = status.HTTP_200_OK
    else:
        after_commit_ingest(request, {row.app: 1}, [row.id])
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
    within_ingest_rate(request, principal, settings, len(batch.outputs))
    with session.begin():
        done = ingest_many(session, batch.outputs)
    after_commit_ingest(request, done.apps, done.new_ids)
    if not done.new_ids:
        response.status_code = status.HTTP_200_OK
    return done.summary()


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
