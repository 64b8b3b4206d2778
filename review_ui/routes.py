"""Server-rendered review pages: queues, a queue's items, and one item with its verdict form.

Model output is untrusted text: templates autoescape everything and never mark it safe.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

from fastapi import APIRouter, FastAPI, Form, Request
from fastapi.responses import HTMLResponse, RedirectResponse, Response
from fastapi.staticfiles import StaticFiles
from fastapi.templating import Jinja2Templates
from jinja2 import Environment, FileSystemLoader
from pydantic import ValidationError

from service.api.deps import SessionDep, SettingsDep
from service.api.enqueue import after_commit_review
from service.api.routes.queues import queue_config, queue_view
from service.api.views import output_view, queue_item
from service.domain import ReviewIn
from service.errors import ValidationFailed
from service.storage import queues as queues_repo
from service.storage import repository as repo
from service.storage.tables import utcnow

HERE = Path(__file__).parent
# Autoescape everywhere: LLM output is untrusted and must never become live HTML.
templates = Jinja2Templates(env=Environment(loader=FileSystemLoader(HERE / "templates"), autoescape=True))
router = APIRouter(prefix="/ui", include_in_schema=False)
REVIEWER_COOKIE = "rr_reviewer"


def render(request: Request, name: str, context: dict[str, Any], status_code: int = 200) -> HTMLResponse:
    return templates.TemplateResponse(request, name, context, status_code=status_code)


def render_error(request: Request, status_code: int, error: dict[str, Any]) -> HTMLResponse:
    """The HTML face of the error envelope, for people browsing the review pages."""
    return render(request, "error.html", {"status_code": status_code, "error": error}, status_code)


@router.get("/", response_class=HTMLResponse)
def queues_page(request: Request, session: SessionDep, settings: SettingsDep) -> HTMLResponse:
    views = [queue_view(session, q) for q in settings.queues]
    return render(request, "queues.html", {"queues": views})


@router.get("/queues/{name}", response_class=HTMLResponse)
def queue_page(request: Request, name: str, session: SessionDep, settings: SettingsDep) -> HTMLResponse:
    config = queue_config(settings, name)
    total, rows = queues_repo.waiting_items(session, queue=config.name, limit=100, offset=0)
    items = [queue_item(p, o) for p, o in rows]
    return render(
        request, "queue.html", {"queue": queue_view(session, config), "total": total, "items": items}
    )


@router.get("/outputs/{output_id}", response_class=HTMLResponse)
def item_page(request: Request, output_id: str, session: SessionDep) -> HTMLResponse:
    output = output_view(session, repo.get_output(session, output_id=output_id))
    reviewer = request.cookies.get(REVIEWER_COOKIE, "")
    return render(request, "item.html", {"output": output, "reviewer": reviewer})


@router.post("/outputs/{output_id}/review")
def review_form(
    request: Request,
    output_id: str,
    session: SessionDep,
    verdict: str = Form(...),
    reviewer: str = Form(...),
    tags: str = Form(""),
    correction: str = Form(""),
    note: str = Form(""),
) -> Response:
    """Record the verdict, then go to the next waiting item of the same queue (or back to the list)."""
    try:
        review_in = ReviewIn(
            output_id=output_id,
            verdict=verdict,  # type: ignore[arg-type]
            reviewer=reviewer.strip() or "anonymous",
            tags=[t for t in tags.split(",") if t.strip()],
            correction=correction if correction.strip() else None,
            note=note.strip() or None,
        )
    except ValidationError as exc:
        details = [{"loc": list(e["loc"]), "msg": e["msg"]} for e in exc.errors()]
        raise ValidationFailed("the verdict form is incomplete", details=details) from exc
    with session.begin():
        review = repo.add_review(session, review_in=review_in, now=utcnow())
        queue = review.queue
        next_url = "/ui/"
        if queue is not None:
            _, rows = queues_repo.waiting_items(session, queue=queue, limit=1, offset=0)
            next_url = f"/ui/outputs/{rows[0][1].id}" if rows else f"/ui/queues/{queue}"
    after_commit_review(request, queue)
    response = RedirectResponse(next_url, status_code=303)
    response.set_cookie(REVIEWER_COOKIE, review_in.reviewer, httponly=True, samesite="strict")
    return response


def mount_ui(app: FastAPI) -> None:
    """Attach the review pages and their static files to the app."""
    app.include_router(router)
    app.mount("/ui/static", StaticFiles(directory=str(HERE / "static")), name="ui-static")
