"""Eval suites and fine-tuning sets: collections, immutable versions, diffs, promotion by hand and
in bulk, promotion rules, and export downloads with their leakage report."""

from __future__ import annotations

from typing import Annotated, Any

from fastapi import APIRouter, Query, Response, status

from core import exports
from service.deps import AdminDep, ReaderDep, ReviewerDep, SessionDep, SettingsDep
from service.domain_collections import (
    BulkPromoteIn,
    CollectionDetail,
    CollectionIn,
    CollectionView,
    ExportFormat,
    PromoteIn,
    PromotionResult,
    RerunIn,
    RerunResult,
    RuleIn,
    RulePatch,
    RuleView,
    VersionDetail,
    VersionView,
)
from service.hygiene import MAX_INT
from service.storage import collection_exports as exporting
from service.storage import collections as store
from service.storage import promotion_rules
from service.storage.tables import Collection, CollectionVersion
from service.usecases import collections as curation
from service.usecases.collections import resolved
from service.views import collection_view, item_view, rule_view, version_view

collections = APIRouter(prefix="/collections", tags=["collections"])
rules = APIRouter(prefix="/promotion-rules", tags=["collections"])


def _result(matched: int, made: CollectionVersion | None) -> PromotionResult:
    return PromotionResult(matched=matched, version=version_view(made) if made is not None else None)


@collections.get("", response_model=list[CollectionView])
def list_collections(principal: ReaderDep, session: SessionDep) -> list[CollectionView]:
    """Every eval suite and fine-tuning set with its latest version."""
    return [collection_view(c, v) for c, v in store.list_collections(session)]


@collections.post("", status_code=status.HTTP_201_CREATED, response_model=CollectionView)
def create_collection(body: CollectionIn, principal: AdminDep, session: SessionDep) -> CollectionView:
    """A new, empty eval suite or fine-tuning set."""
    with session.begin():
        row = curation.create(
            session, principal, name=body.name, kind=body.kind, description=body.description
        )
        return collection_view(row, None)


@collections.get("/{name}", response_model=CollectionDetail)
def get_collection(name: str, principal: ReaderDep, session: SessionDep) -> CollectionDetail:
    """A collection and all its versions, oldest first."""
    row = store.get_collection(session, name=name)
    versions = store.list_versions(session, name=name)
    view = collection_view(row, versions[-1] if versions else None)
    return CollectionDetail(**view.model_dump(), versions=[version_view(v) for v in versions])


@collections.delete("/{name}", status_code=status.HTTP_204_NO_CONTENT)
def delete_collection(name: str, principal: AdminDep, session: SessionDep) -> Response:
    """Delete a collection with all its versions and rules."""
    with session.begin():
        store.delete_collection(session, name=name)
    return Response(status_code=status.HTTP_204_NO_CONTENT)


@collections.get("/{name}/versions/{version}", response_model=VersionDetail)
def get_version(
    name: str, version: str, principal: ReaderDep, session: SessionDep, settings: SettingsDep
) -> VersionDetail:
    """One version (a number or ``latest``) with its items, their provenance and leakage status."""
    row, entries, held = curation.contents(session, name=name, number=resolved(session, settings, version))
    items = [item_view(i, held=held) for i in entries]
    return VersionDetail(**version_view(row).model_dump(), collection=name, entries=items)


@collections.post("/{name}/versions", status_code=status.HTTP_201_CREATED, response_model=VersionView)
def recheck(name: str, principal: ReviewerDep, session: SessionDep, settings: SettingsDep) -> VersionView:
    """A new version with the same items, its leakage checked again against today's other side."""
    with session.begin():
        return version_view(curation.recheck(session, settings, principal, name=name))


@collections.get("/{name}/diff")
def diff(
    name: str,
    principal: ReaderDep,
    session: SessionDep,
    old: Annotated[int, Query(alias="from", ge=1, le=MAX_INT)],
    new: Annotated[int, Query(alias="to", ge=1, le=MAX_INT)],
) -> dict[str, Any]:
    """What changed between two versions: items added, removed, newly held back and released."""
    return exporting.diff_versions(session, name=name, old=old, new=new)


@collections.post("/{name}/promotions", response_model=PromotionResult)
def promote(
    name: str, body: PromoteIn, principal: ReviewerDep, session: SessionDep, settings: SettingsDep
) -> PromotionResult:
    """Promote outputs (their current verdicts) by hand: one new version, or none if all were there."""
    with session.begin():
        made = curation.promote(
            session, settings, principal, name=name, output_ids=body.output_ids, note=body.note
        )
        return _result(len(set(body.output_ids)), made)


@collections.post("/{name}/promotions/bulk", response_model=PromotionResult)
def promote_bulk(
    name: str, body: BulkPromoteIn, principal: ReviewerDep, session: SessionDep, settings: SettingsDep
) -> PromotionResult:
    """Promote every verdict that meets the filters (queue, verdict, category, app, review dates)."""
    where = promotion_rules.VerdictFilter(**body.model_dump(exclude={"limit"}))
    with session.begin():
        matched, made = curation.promote_matching(
            session, settings, principal, name=name, where=where, limit=body.limit
        )
        return _result(matched, made)


@collections.post("/{name}/removals", response_model=PromotionResult)
def remove(
    name: str, body: PromoteIn, principal: ReviewerDep, session: SessionDep, settings: SettingsDep
) -> PromotionResult:
    """A new version without these outputs; older versions keep them."""
    with session.begin():
        made = curation.remove(session, settings, principal, name=name, output_ids=body.output_ids)
        return _result(len(set(body.output_ids)), made)


@collections.get("/{name}/versions/{version}/export")
def export(
    name: str,
    version: str,
    principal: ReaderDep,
    session: SessionDep,
    settings: SettingsDep,
    fmt: Annotated[ExportFormat, Query(alias="format")] = "eval-jsonl",
) -> Response:
    """Download a version in a format. The same version gives the same bytes every time; headers
    count what it held back (leakage) and skipped; ``/leakage`` has the full report."""
    row, result, report = exporting.export_version(
        session, name=name, number=resolved(session, settings, version), fmt=fmt
    )
    filename = f"{name}-v{row.number}-{fmt}.{exports.EXTENSIONS[fmt]}"
    return Response(
        content=result.text.encode(),
        media_type=exports.MEDIA_TYPES[fmt],
        headers={
            "Content-Disposition": f'attachment; filename="{filename}"',
            "X-Collection-Version": str(row.number),
            "X-Exported": str(report["exported"]),
            "X-Held-Back": str(len(report["held_back"])),
            "X-Skipped": str(len(report["skipped"])),
            "Link": f'</v1/collections/{name}/versions/{row.number}/leakage>; rel="describedby"',
        },
    )


@collections.get("/{name}/versions/{version}/leakage")
def leakage(
    name: str, version: str, principal: ReaderDep, session: SessionDep, settings: SettingsDep
) -> dict[str, Any]:
    """What every export of this version holds back and why, and which duplicates it merged."""
    return exporting.leakage_report(session, name=name, number=resolved(session, settings, version))


@rules.get("", response_model=list[RuleView])
def list_rules(principal: ReaderDep, session: SessionDep) -> list[RuleView]:
    return [rule_view(r, c) for r, c in promotion_rules.list_rules(session)]


@rules.post("", status_code=status.HTTP_201_CREATED, response_model=RuleView)
def create_rule(body: RuleIn, principal: AdminDep, session: SessionDep) -> RuleView:
    """A rule promotes every verdict meeting its condition as it is recorded (re-run for history)."""
    with session.begin():
        row = curation.create_rule(
            session, principal, name=body.name, collection=body.collection, condition=body.condition
        )
        return rule_view(row, session.get_one(Collection, row.collection_id))


@rules.patch("/{name}", response_model=RuleView)
def update_rule(name: str, body: RulePatch, principal: AdminDep, session: SessionDep) -> RuleView:
    """Switch a rule on or off."""
    with session.begin():
        row = promotion_rules.set_rule_active(session, name=name, active=body.active)
        return rule_view(row, session.get_one(Collection, row.collection_id))


@rules.delete("/{name}", status_code=status.HTTP_204_NO_CONTENT)
def delete_rule(name: str, principal: AdminDep, session: SessionDep) -> Response:
    with session.begin():
        promotion_rules.delete_rule(session, name=name)
    return Response(status_code=status.HTTP_204_NO_CONTENT)


@rules.post("/rerun", response_model=RerunResult)
def rerun(body: RerunIn, principal: AdminDep, session: SessionDep, settings: SettingsDep) -> RerunResult:
    """Apply the active rules (or the named ones) to every verdict on record."""
    with session.begin():
        made = curation.rerun_rules(session, settings, principal, rules=body.rules)
        names = {v.collection_id: session.get_one(Collection, v.collection_id).name for v in made}
        return RerunResult(versions={names[v.collection_id]: v.number for v in made})


router = APIRouter()
router.include_router(collections)
router.include_router(rules)
