"""Quality control pages: agreement of blind double reviews, and the adjudication queue."""

from __future__ import annotations

from fastapi import APIRouter, Request
from fastapi.responses import HTMLResponse, Response

from review_ui.pages import VerdictFormDep, render, see_other
from service.deps import AdjudicatorDep, ReaderDep, SessionDep, SettingsDep
from service.followups import after_commit_review
from service.storage import quality
from service.storage import repository as repo
from service.usecases import workbench
from service.views import queue_item, review_view

router = APIRouter(prefix="/ui", include_in_schema=False)


@router.get("/qc", response_class=HTMLResponse)
def qc_page(request: Request, _: ReaderDep, session: SessionDep, settings: SettingsDep) -> HTMLResponse:
    return render(request, "qc.html", {"report": workbench.qc_report(session, settings)})


@router.get("/adjudication", response_class=HTMLResponse)
def adjudication_page(
    request: Request, _: AdjudicatorDep, session: SessionDep, settings: SettingsDep
) -> HTMLResponse:
    disputes = [
        {
            "item": queue_item(pick, output),
            "reviews": [review_view(r) for r in repo.reviews_for(session, output_id=output.id)],
        }
        for pick, output in quality.disputed(session)
    ]
    return render(
        request, "adjudication.html", {"disputes": disputes, "taxonomy": settings.failure_categories}
    )


@router.post("/adjudication/{output_id}")
def adjudicate_form(
    request: Request,
    output_id: str,
    principal: AdjudicatorDep,
    session: SessionDep,
    settings: SettingsDep,
    submitted: VerdictFormDep,
) -> Response:
    with session.begin():
        review = workbench.adjudicate(session, settings, principal, output_id=output_id, submitted=submitted)
    after_commit_review(request, review.queue, review.verdict)
    return see_other("/ui/adjudication")
