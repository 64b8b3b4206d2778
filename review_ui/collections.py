"""Pages for eval suites and fine-tuning sets: the list with rules, one collection with its
versions, diff, leakage report and downloads, and bulk promotion from a filtered list of verdicts.

Every form posts its CSRF token; the item page's promote button is ``_promote.html``.
"""

from __future__ import annotations

from datetime import UTC, date, datetime, time, timedelta
from typing import Annotated, Any
from urllib.parse import urlencode

from fastapi import APIRouter, Form, Query, Request
from fastapi.responses import HTMLResponse, Response
from pydantic import ValidationError

from core import exports
from core.promotion import COLLECTION_KINDS, RuleCondition
from review_ui.pages import local_path, render, see_other
from service.deps import AdminDep, ReaderDep, ReviewerDep, SessionDep, SettingsDep
from service.domain_collections import CollectionIn
from service.errors import BadRequest, invalid
from service.hygiene import MAX_INT
from service.storage import collection_exports as exporting
from service.storage import collections as store
from service.storage import promotion_rules
from service.usecases import collections as curation

router = APIRouter(prefix="/ui/collections", include_in_schema=False)
BULK_PREVIEW = 200


def _day(text: str, *, end: bool = False) -> datetime | None:
    """A date from a form as a UTC moment: its start, or (for an inclusive end) the next day's."""
    if not text:
        return None
    try:
        day = date.fromisoformat(text)
    except ValueError as exc:
        raise BadRequest(f"not a date (YYYY-MM-DD): {text!r}") from exc
    return datetime.combine(day + timedelta(days=1 if end else 0), time(), tzinfo=UTC)


def _filter(params: dict[str, str]) -> promotion_rules.VerdictFilter:
    return promotion_rules.VerdictFilter(
        queue=params.get("queue") or None,
        verdict=params.get("verdict") or None,
        category=params.get("category") or None,
        app=params.get("app") or None,
        reviewed_from=_day(params.get("reviewed_from", "")),
        reviewed_to=_day(params.get("reviewed_to", ""), end=True),
    )


@router.get("", response_class=HTMLResponse)
def collections_page(
    request: Request, _: ReaderDep, session: SessionDep, settings: SettingsDep, done: str = ""
) -> HTMLResponse:
    return render(
        request,
        "collections.html",
        {
            "collections": store.list_collections(session),
            "rules": promotion_rules.list_rules(session),
            "kinds": COLLECTION_KINDS,
            "taxonomy": settings.failure_categories,
            "done": done,
        },
    )


@router.get("/{name}", response_class=HTMLResponse)
def collection_page(
    request: Request,
    name: str,
    _: ReaderDep,
    session: SessionDep,
    settings: SettingsDep,
    v: Annotated[int | None, Query(ge=1, le=MAX_INT)] = None,
    done: str = "",
) -> HTMLResponse:
    if v is None:  # the latest version includes what rules staged since the last one
        curation.cut_staged(session, settings)
    collection = store.get_collection(session, name=name)
    versions = store.list_versions(session, name=name)
    # The other kind's collections, versioned or not: leakage is checked against their versions.
    others = [c.name for c, _ in store.list_collections(session) if c.kind != collection.kind]
    context: dict[str, Any] = {
        "others": others,
        "collection": collection,
        "versions": versions,
        "version": None,
        "items": [],
        "held": set(),
        "report": None,
        "diff": None,
        "formats": exports.FORMATS,
        "done": done,
    }
    if versions:
        number = v if v is not None else versions[-1].number
        version, entries, held = curation.contents(session, name=name, number=number)
        context.update(
            version=version,
            items=entries,
            held=held,
            report=exporting.leakage_report(session, name=name, number=number),
            diff=exporting.diff_versions(session, name=name, old=number - 1, new=number)
            if number > 1
            else None,
        )
    return render(request, "collections_one.html", context)


@router.get("/{name}/promote", response_class=HTMLResponse)
def bulk_page(
    request: Request, name: str, _: ReviewerDep, session: SessionDep, settings: SettingsDep
) -> HTMLResponse:
    """A filtered list of verdicts, and one button promoting all of them."""
    collection = store.get_collection(session, name=name)
    params = dict(request.query_params)
    found = promotion_rules.matching_verdicts(session, where=_filter(params), limit=BULK_PREVIEW + 1)
    return render(
        request,
        "collections_promote.html",
        {
            "collection": collection,
            "params": params,
            "rows": found[:BULK_PREVIEW],
            "more": len(found) > BULK_PREVIEW,
            "taxonomy": settings.failure_categories,
            "queues": [q.name for q in settings.queues],
        },
    )


@router.post("/{name}/promote")
async def bulk_form(
    request: Request, name: str, principal: ReviewerDep, session: SessionDep, settings: SettingsDep
) -> Response:
    form = await request.form()
    params = {k: str(v) for k, v in form.items() if k != "csrf_token"}
    with session.begin():
        matched, made = curation.promote_matching(
            session, settings, principal, name=name, where=_filter(params)
        )
    done = f"version {made.number}: {matched} promoted" if made else f"{matched} matched, nothing new"
    return see_other(f"/ui/collections/{name}?" + urlencode({"done": done}))


@router.post("/promote")
def promote_form(
    principal: ReviewerDep,
    session: SessionDep,
    settings: SettingsDep,
    output_id: str = Form(...),
    collection: str = Form(...),
    back: str = Form(""),
) -> Response:
    """The item page's promote button: this output's verdict into one collection."""
    with session.begin():
        made = curation.promote(session, settings, principal, name=collection, output_ids=[output_id])
    done = f"{collection} version {made.number}" if made else f"already in {collection}"
    target = local_path(back, f"/ui/outputs/{output_id}")
    return see_other(target + ("&" if "?" in target else "?") + urlencode({"promoted": done}))


@router.post("/{name}/recheck")
def recheck_form(name: str, principal: ReviewerDep, session: SessionDep, settings: SettingsDep) -> Response:
    with session.begin():
        made = curation.recheck(session, settings, principal, name=name)
    return see_other(
        f"/ui/collections/{name}?" + urlencode({"done": f"version {made.number}: leakage checked"})
    )


@router.post("")
def create_form(
    principal: AdminDep,
    session: SessionDep,
    name: str = Form(...),
    kind: str = Form(...),
    description: str = Form(""),
) -> Response:
    try:
        body = CollectionIn(name=name.strip(), kind=kind, description=description)  # type: ignore[arg-type]
    except ValidationError as exc:
        raise invalid("the collection form is invalid", exc) from exc
    with session.begin():
        curation.create(session, principal, name=body.name, kind=body.kind, description=body.description)
    return see_other(f"/ui/collections/{body.name}")


def _split(text: str) -> list[str]:
    return [t.strip() for t in text.split(",") if t.strip()]


@router.post("/rules")
def rule_form(
    principal: AdminDep,
    session: SessionDep,
    name: str = Form(...),
    collection: str = Form(...),
    verdict: str = Form(""),
    has_correction: str = Form(""),
    categories: list[str] = Form([]),
    queues: str = Form(""),
    apps: str = Form(""),
) -> Response:
    try:
        condition = RuleCondition(
            verdict=verdict or None,  # type: ignore[arg-type]
            has_correction={"yes": True, "no": False}.get(has_correction),
            categories=categories,
            queues=_split(queues),
            apps=_split(apps),
        )
    except ValidationError as exc:
        raise invalid("the rule form is invalid", exc) from exc
    with session.begin():
        curation.create_rule(
            session, principal, name=name.strip(), collection=collection, condition=condition
        )
    return see_other("/ui/collections?" + urlencode({"done": f"rule {name.strip()} added"}))


@router.post("/rules/{rule}/toggle")
def toggle_form(rule: str, principal: AdminDep, session: SessionDep) -> Response:
    with session.begin():
        row = promotion_rules.get_rule(session, name=rule)
        promotion_rules.set_rule_active(session, name=rule, active=not row.active)
    return see_other("/ui/collections")


@router.post("/rules/rerun")
def rerun_form(principal: AdminDep, session: SessionDep, settings: SettingsDep) -> Response:
    with session.begin():
        made = curation.rerun_rules(session, settings, principal)
    return see_other("/ui/collections?" + urlencode({"done": f"rules re-run: {len(made)} new version(s)"}))
