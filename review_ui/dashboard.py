"""The dashboard: what each queue's reviews bought. Its failure rate over time with the interval,
what routing found against the random audit, the learned scorer's calibration on held-out reviews,
and reviewer throughput; the numbers are ``GET /v1/queues/{name}/report``'s."""

from __future__ import annotations

from typing import Literal

from fastapi import APIRouter, Request
from fastapi.responses import HTMLResponse

from review_ui import plots
from review_ui.pages import render
from service.deps import ReaderDep, SessionDep, SettingsDep
from service.usecases.queues import queue_view
from service.usecases.report import queue_report

router = APIRouter(prefix="/ui", include_in_schema=False)


@router.get("/dashboard", response_class=HTMLResponse)
def dashboard_page(
    request: Request,
    _: ReaderDep,
    session: SessionDep,
    settings: SettingsDep,
    period: Literal["day", "week"] = "day",
) -> HTMLResponse:
    panels = []
    for config in settings.queues:
        report = queue_report(session, settings, queue=config.name, period=period)
        model = report.stats.model
        panels.append(
            {
                "report": report,
                "view": queue_view(session, config),
                "rate_plot": plots.failure_rate(report.over_time, period),
                "reliability_plot": plots.reliability(model.reliability)
                if model and model.reliability
                else None,
                "throughput_plot": plots.throughput(report.throughput),
                "learning_plot": plots.learning_curve(report.learning)
                if sum(p.cv_auroc is not None for p in report.learning) >= 2
                else None,
            }
        )
    return render(request, "dashboard.html", {"panels": panels, "period": period})
