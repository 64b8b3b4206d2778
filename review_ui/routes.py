"""The reviewer's workbench: queues, a queue's items, one item with its verdict form, and the
keyboard-driven walk through a queue (claim next, verdict, skip, undo).

Every page needs a signed-in person (a browser without a session is sent to the sign-in page);
forms carry the session's CSRF token. Model output is untrusted text and is only ever escaped.
"""

from __future__ import annotations

from typing import Annotated, Any, Literal
from urllib.parse import parse_qs, urlencode

from fastapi import APIRouter, FastAPI, Query, Request
from fastapi.responses import HTMLResponse, Response
from fastapi.staticfiles import StaticFiles

from core.budget import start_of_day
from core.candidates import STRATA
from core.scoring import SIGNALS
from review_ui import accounts as account_pages
from review_ui import collections as collection_pages
from review_ui import dashboard as dashboard_pages
from review_ui import my_work as my_work_pages
from review_ui import quality as quality_pages
from review_ui.pages import HERE, VerdictFormDep, real_correction, render, render_error, see_other
from service.auth import Permission
from service.deps import ItemFilterDep, ReaderDep, ReviewerDep, SessionDep, SettingsDep
from service.deps import item_filter as filter_from_query
from service.domain import OutputStatus
from service.errors import ServiceError
from service.followups import after_commit_review
from service.hygiene import MAX_INT
from service.settings import Settings
from service.storage import accounts, quality, reviewing
from service.storage import collections as collection_store
from service.storage import queues as queues_repo
from service.storage import repository as repo
from service.storage.filters import ItemFilter
from service.storage.tables import utcnow
from service.usecases import my_work, related, workbench
from service.usecases.queues import queue_config, queue_view
from service.views import output_view, queue_item

__all__ = ["mount_ui", "render_error"]

router = APIRouter(prefix="/ui", include_in_schema=False)


@router.get("/", response_class=HTMLResponse)
def queues_page(request: Request, _: ReaderDep, session: SessionDep, settings: SettingsDep) -> HTMLResponse:
    today = start_of_day(utcnow())
    queues = [
        {
            "view": queue_view(session, q),
            "progress": reviewing.reviewer_progress(session, queue=q.name, since=today),
            "second_reviews": quality.count_qc_waiting(session, queue=q.name),
        }
        for q in settings.queues
    ]
    unscorable = repo.count_in_status(session, status=OutputStatus.error.value)
    return render(
        request,
        "queues.html",
        {"queues": queues, "disputed": quality.count_disputed(session), "unscorable": unscorable},
    )


@router.get("/queues/{name}", response_class=HTMLResponse)
def queue_page(
    request: Request,
    name: str,
    _: ReaderDep,
    session: SessionDep,
    settings: SettingsDep,
    item_filter: ItemFilterDep,
    done: Annotated[int, Query(ge=0, le=1)] = 0,
    clear: Annotated[int, Query(ge=0, le=1)] = 0,
) -> HTMLResponse:
    """The queue's waiting items. A filter given here stays on for this queue (a cookie), so Enter,
    j and each verdict's "next" give only the items it keeps, until it is cleared."""
    config = queue_config(settings, name)
    if clear:
        item_filter = ItemFilter()
    elif not item_filter.active:
        item_filter = saved_filter(request) or item_filter
    total, rows = queues_repo.waiting_items(
        session, queue=config.name, limit=100, offset=0, item_filter=item_filter
    )
    now = utcnow()
    held = {p.id: p.claimed_by for p, _ in rows if p.claimed_by and p.claimed_until and p.claimed_until > now}
    names = accounts.usernames(session, user_ids=set(held.values()))
    items = [{"item": queue_item(p, o), "holder": names.get(held.get(p.id, ""))} for p, o in rows]
    page = render(
        request,
        "queue.html",
        {
            "queue": queue_view(session, config),
            "total": total,
            "audit_waiting": queues_repo.count_audit_waiting(session, queue=config.name),
            "items": items,
            "done": bool(done),
            "item_filter": item_filter,
            "filtered": item_filter.active,
            "strata": STRATA,
        },
    )
    path = f"/ui/queues/{config.name}"
    if item_filter.active:
        page.set_cookie(FILTER_COOKIE, item_filter.query(), path=path, httponly=True, samesite="lax")
    else:
        page.delete_cookie(FILTER_COOKIE, path=path)
    return page


#: The cookie that keeps a queue's filter while its reviewer walks it.
FILTER_COOKIE = "rr_filter"


def saved_filter(request: Request) -> ItemFilter | None:
    """The filter this reviewer set on this queue's page (the cookie's path is the queue's), None when
    there is none or it is unreadable."""
    saved = request.cookies.get(FILTER_COOKIE)
    if not saved:
        return None
    values = parse_qs(saved)
    try:
        found = filter_from_query(
            app=_one(values, "app"),
            model=_one(values, "model"),
            stratum=_one(values, "stratum"),
            min_score=_one(values, "min_score"),
            max_score=_one(values, "max_score"),
            metadata=values.get("metadata", []),
            q=_one(values, "q"),
        )
    except (ValueError, ServiceError):
        return None
    return found if found.active else None


def _one(values: dict[str, list[str]], name: str) -> str | None:
    return values[name][0] if values.get(name) else None


@router.get("/queues/{name}/next")
def next_item(
    request: Request,
    name: str,
    principal: ReviewerDep,
    session: SessionDep,
    settings: SettingsDep,
    after: str = "",
    recorded: str = "",
) -> Response:
    """Claim the next item for this reviewer and open it (leaving ``after`` without a verdict)."""
    config = queue_config(settings, name)
    with session.begin():
        pick = workbench.claim_next(
            session,
            settings,
            principal,
            queue=config,
            after=after or None,
            item_filter=saved_filter(request),
        )
    if pick is None:
        return see_other(f"/ui/queues/{config.name}?done=1")
    query = urlencode({k: v for k, v in {"recorded": recorded}.items() if v})
    return see_other(f"/ui/outputs/{pick.output_id}" + (f"?{query}" if query else ""))


@router.get("/outputs/{output_id}", response_class=HTMLResponse)
def item_page(
    request: Request,
    output_id: str,
    principal: ReaderDep,
    session: SessionDep,
    settings: SettingsDep,
    recorded: str = "",
    revised: Literal["pass", "fail", ""] = "",
    undone: Annotated[int, Query(ge=0, le=MAX_INT)] = 0,
    promoted: str = "",
    draft_categories: Annotated[list[str], Query()] = [],  # noqa: B006 (FastAPI copies defaults)
    draft_note: Annotated[str, Query(max_length=1000)] = "",
    draft_correction: Annotated[str | None, Query()] = None,
) -> HTMLResponse:
    """One item. Looking claims nothing: a reviewer judges an open item nobody holds, or claims it
    first to keep it for the lease (items reached through "next" come claimed)."""
    reviewer = principal.id if principal.can(Permission.review) else None
    with session.begin():
        claim = reviewing.open_item(
            session,
            output_id=output_id,
            user_id=reviewer,
            now=utcnow(),
            lease=workbench.lease(settings),
            take=False,
        )
    output = repo.get_output(session, output_id=output_id)
    view = output_view(session, output)
    cold = not output.scorer_version or output.scorer_version.startswith("coldstart")
    rank_share = (
        repo.top_share(session, score=output.score, window=settings.reference_window)
        if cold and output.score is not None
        else None
    )
    blind = claim.mode == "second_review"
    return render(
        request,
        "item.html",
        {
            "output": view,
            "cold": cold,
            "rank_share": rank_share,
            "claim": claim,
            "blind": blind,
            # A blind second reviewer must not see the first verdict.
            "reviews": [] if blind else view.reviews,
            "can_judge": reviewer is not None
            and claim.mode in ("review", "second_review")
            and claim.holder is None,
            "taxonomy": settings.failure_categories,
            "routing_keys": routing_keys(settings),
            "samples": related.compare_samples(view.response, view.samples),
            "cluster": related.cluster_members(session, claim.pick),
            "similar": related.similar_reviewed(session, output.similar, floor=settings.similar_floor),
            "signal_names": SIGNALS,
            "recorded": recorded,
            "revised": revised,
            "can_revise": not blind and my_work.may_revise(session, principal, output_id=output_id),
            "undone": bool(undone),
            # what the taken-back verdict said, so undo never throws a reviewer's work away
            "draft": {"categories": draft_categories, "note": draft_note, "correction": draft_correction},
            "promoted": promoted,
            "collections": collection_store.list_collections(session)
            if principal.can(Permission.review)
            else [],
        },
    )


@router.post("/outputs/{output_id}/review")
def review_form(
    request: Request,
    output_id: str,
    principal: ReviewerDep,
    session: SessionDep,
    settings: SettingsDep,
    submitted: VerdictFormDep,
) -> Response:
    """Record the verdict, then open the next item of the same queue for this reviewer."""
    with session.begin():
        submitted = real_correction(submitted, repo.get_output(session, output_id=output_id).response)
        review = workbench.record(session, settings, principal, output_id=output_id, submitted=submitted)
        queue = review.queue
    after_commit_review(request, queue, review.verdict)
    if queue is None:
        return see_other(f"/ui/outputs/{output_id}?recorded={review.verdict}")
    return see_other(f"/ui/queues/{queue}/next?recorded={review.verdict}")


@router.post("/outputs/{output_id}/claim")
def claim_form(
    output_id: str, principal: ReviewerDep, session: SessionDep, settings: SettingsDep
) -> Response:
    """Keep this item for the lease, so nobody else takes it while it is being judged."""
    with session.begin():
        reviewing.open_item(
            session, output_id=output_id, user_id=principal.id, now=utcnow(), lease=workbench.lease(settings)
        )
    return see_other(f"/ui/outputs/{output_id}")


@router.post("/outputs/{output_id}/skip")
def skip_form(output_id: str, principal: ReviewerDep, session: SessionDep) -> Response:
    """Pass on this item (it goes back to the queue for others) and open the next one."""
    with session.begin():
        reviewing.skip(session, output_id=output_id, user_id=principal.id, now=utcnow())
        pick = queues_repo.pick_for(session, output_id=output_id)
    return see_other(f"/ui/queues/{pick.queue}/next" if pick is not None else f"/ui/outputs/{output_id}")


@router.post("/undo")
def undo_form(
    request: Request, principal: ReviewerDep, session: SessionDep, settings: SettingsDep
) -> Response:
    """Take back my last verdict and reopen that item."""
    with session.begin():
        review = workbench.undo(session, settings, principal)
    after_commit_review(request, review.queue)
    return see_other(f"/ui/outputs/{review.output_id}?{undo_query(review)}")


def routing_keys(settings: Settings) -> set[str]:
    """The metadata keys some queue's routing rules read (``tags`` when a queue routes by tags)."""
    keys = {key for q in settings.queues for key in q.metadata}
    return keys | ({"tags"} if any(q.tags for q in settings.queues) else set())


#: A correction longer than this is not carried back in the address (the editor restarts from the
#: response); categories and note always are.
DRAFT_CORRECTION_CHARS = 4000


def undo_query(review: Any) -> str:
    """The item page's address after an undo: the taken-back categories, note and correction come
    back into the form, so the reviewer fixes the verdict instead of retyping it."""
    params: list[tuple[str, str]] = [("undone", "1")]
    params += [("draft_categories", c) for c in review.categories or []]
    if review.note:
        params.append(("draft_note", review.note))
    if review.correction and len(review.correction) <= DRAFT_CORRECTION_CHARS:
        params.append(("draft_correction", review.correction))
    return urlencode(params)


def mount_ui(app: FastAPI) -> None:
    """Attach the review pages and their static files to the app."""
    app.include_router(router)
    app.include_router(account_pages.router)
    app.include_router(dashboard_pages.router)
    app.include_router(my_work_pages.router)
    app.include_router(quality_pages.router)
    app.include_router(collection_pages.router)
    app.mount("/ui/static", StaticFiles(directory=str(HERE / "static")), name="ui-static")

    @app.get("/favicon.ico", include_in_schema=False)
    def favicon() -> Response:
        # Browsers ask for it on every page; without it each page logs a 404.
        return see_other("/ui/static/favicon.svg")
