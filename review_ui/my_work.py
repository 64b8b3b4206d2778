"""A reviewer's own work: the verdicts they gave (filtered by verdict, queue and period), their counts
today and this week, what is left of each queue's day; and revising a past verdict from its item
page, as a new verdict with the old one kept in the history."""

from __future__ import annotations

from typing import Literal

from fastapi import APIRouter, Request, Response
from fastapi.responses import HTMLResponse

from review_ui.pages import VerdictFormDep, real_correction, render, see_other
from service.deps import ReviewerDep, SessionDep, SettingsDep
from service.followups import after_commit_review
from service.storage import repository as repo
from service.usecases import my_work

router = APIRouter(prefix="/ui", include_in_schema=False)


@router.get("/my-work", response_class=HTMLResponse)
def my_work_page(
    request: Request,
    principal: ReviewerDep,
    session: SessionDep,
    settings: SettingsDep,
    verdict: Literal["pass", "fail", ""] = "",
    queue: str = "",
    period: my_work.Period = "week",
) -> HTMLResponse:
    with session.begin():
        work = my_work.my_work(
            session,
            settings,
            principal,
            verdict=verdict or None,
            queue=queue or None,
            period=period,
        )
    return render(
        request,
        "my_work.html",
        {
            "work": work,
            "filters": {"verdict": verdict, "queue": queue, "period": period},
            "queues": [q.name for q in settings.queues],
        },
    )


@router.post("/outputs/{output_id}/revise")
def revise_form(
    request: Request,
    output_id: str,
    principal: ReviewerDep,
    session: SessionDep,
    settings: SettingsDep,
    submitted: VerdictFormDep,
) -> Response:
    """Revise the output's verdict, then show the item with its history."""
    with session.begin():
        submitted = real_correction(submitted, repo.get_output(session, output_id=output_id).response)
        review = my_work.revise(session, settings, principal, output_id=output_id, submitted=submitted)
        queue, verdict = review.queue, review.verdict
    after_commit_review(request, queue, verdict)
    return see_other(f"/ui/outputs/{output_id}?revised={verdict}")
