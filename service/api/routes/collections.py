"""Eval suites and fine-tuning sets: collections, immutable versions, diffs, promotion by hand and
in bulk, promotion rules, and export downloads with their leakage report."""

from __future__ import annotations

from typing import Annotated, Any

from fastapi import APIRouter, Query, Response, status
from sqlalchemy.orm import Session

from service.api.deps import AdminDep, ReaderDep, ReviewerDep, SessionDep, SettingsDep
from service.domain_collections import (
    BulkPromoteIn,
    CollectionDetail,
    CollectionIn,
    CollectionView,
    ExportFormat,
    ItemView,
    PromoteIn,
    PromotionResult,
    RerunIn,
    RerunResult,
    RuleIn,
    RulePatch,
    RuleView,
    VersionDetail,
    VersionView,
    collection_view,
    rule_view,
    version_view,
)
from service.errors import BadRequest
from service.hygiene import MAX_INT
from service.settings import Settings
from service.storage import collection_exports as exporting
from service.storage import collections as store
from service.storage import promotions, staging
from service.storage.tables import Collection, CollectionVersion, utcnow
from workers import exports

collections = APIRouter(prefix="/collections", tags=["collections"])
rules = APIRouter(prefix="/promotion-rules", tags=["collections"])


def version_number(version: str) -> int | None:
    """A version path segment: a number, or ``latest``."""
    if version == "latest":
        return None
    if not version.isdigit() or not 1 <= int(version) <= MAX_INT:
        raise BadRequest(f"a version is a number from 1 to {MAX_INT} or 'latest', not {version[:40]!r}")
    return int(version)


def resolved(session: Session, settings: Settings, name: str, version: str) -> int | None:
    """Like ``version_number``; asking for ``latest`` first makes staged rule promotions a version."""
    number = version_number(version)
    if number is None:
        with session.begin():
            staging.cut_pending(session, now=utcnow(), settings=settings)
    return number


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
        row = store.create_collection(
            session,
            name=body.name,
            kind=body.kind,
            description=body.description,
            created_by=principal.name,
            now=utcnow(),
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
    _, row = store.get_version(session, name=name, number=resolved(session, settings, name, version))
    held = {h["entry_id"] for h in row.held_back}
    items = [
        ItemView(
            entry_id=i.entry_id,
            input=i.input,
            bad_output=i.bad_output,
            ideal=i.ideal,
            categories=i.categories,
            provenance=i.provenance,
            merged_output_ids=i.merged_output_ids,
            held_back=i.entry_id in held,
        )
        for i in exporting.export_items(session, version=row)
    ]
    return VersionDetail(**version_view(row).model_dump(), collection=name, entries=items)


@collections.post("/{name}/versions", status_code=status.HTTP_201_CREATED, response_model=VersionView)
def recheck(name: str, principal: ReviewerDep, session: SessionDep, settings: SettingsDep) -> VersionView:
    """A new version with the same items, its leakage checked again against today's other side."""
    with session.begin():
        made = promotions.refresh(session, name=name, by=principal.name, now=utcnow(), settings=settings)
        return version_view(made)


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
        made = promotions.promote(
            session,
            name=name,
            output_ids=body.output_ids,
            by=principal.name,
            now=utcnow(),
            settings=settings,
            note=body.note,
        )
        return PromotionResult(
            matched=len(set(body.output_ids)), version=version_view(made) if made else None
        )


@collections.post("/{name}/promotions/bulk", response_model=PromotionResult)
def promote_bulk(
    name: str, body: BulkPromoteIn, principal: ReviewerDep, session: SessionDep, settings: SettingsDep
) -> PromotionResult:
    """Promote every verdict that meets the filters (queue, verdict, category, app, review dates)."""
    where = promotions.VerdictFilter(**body.model_dump(exclude={"limit"}))
    with session.begin():
        matched, made = promotions.promote_matching(
            session,
            name=name,
            where=where,
            limit=body.limit,
            by=principal.name,
            now=utcnow(),
            settings=settings,
        )
        return _result(matched, made)


@collections.post("/{name}/removals", response_model=PromotionResult)
def remove(
    name: str, body: PromoteIn, principal: ReviewerDep, session: SessionDep, settings: SettingsDep
) -> PromotionResult:
    """A new version without these outputs; older versions keep them."""
    with session.begin():
        made = promotions.remove(
            session, name=name, output_ids=body.output_ids, by=principal.name, now=utcnow(), settings=settings
        )
        return PromotionResult(
            matched=len(set(body.output_ids)), version=version_view(made) if made else None
        )


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
        session, name=name, number=resolved(session, settings, name, version), fmt=fmt
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
    return exporting.leakage_report(session, name=name, number=resolved(session, settings, name, version))


@rules.get("", response_model=list[RuleView])
def list_rules(principal: ReaderDep, session: SessionDep) -> list[RuleView]:
    return [rule_view(r, c) for r, c in promotions.list_rules(session)]


@rules.post("", status_code=status.HTTP_201_CREATED, response_model=RuleView)
def create_rule(body: RuleIn, principal: AdminDep, session: SessionDep) -> RuleView:
    """A rule promotes every verdict meeting its condition as it is recorded (re-run for history)."""
    with session.begin():
        row = promotions.create_rule(
            session,
            name=body.name,
            collection=body.collection,
            condition=body.condition,
            created_by=principal.name,
            now=utcnow(),
        )
        return rule_view(row, session.get_one(Collection, row.collection_id))


@rules.patch("/{name}", response_model=RuleView)
def update_rule(name: str, body: RulePatch, principal: AdminDep, session: SessionDep) -> RuleView:
    """Switch a rule on or off."""
    with session.begin():
        row = promotions.set_rule_active(session, name=name, active=body.active)
        return rule_view(row, session.get_one(Collection, row.collection_id))


@rules.delete("/{name}", status_code=status.HTTP_204_NO_CONTENT)
def delete_rule(name: str, principal: AdminDep, session: SessionDep) -> Response:
    with session.begin():
        promotions.delete_rule(session, name=name)
    return Response(status_code=status.HTTP_204_NO_CONTENT)


@rules.post("/rerun", response_model=RerunResult)
def rerun(body: RerunIn, principal: AdminDep, session: SessionDep, settings: SettingsDep) -> RerunResult:
    """Apply the active rules (or the named ones) to every verdict on record."""
    with session.begin():
        made = promotions.rerun_rules(
            session, now=utcnow(), settings=settings, by=principal.name, rules=body.rules
        )
        names = {v.collection_id: session.get_one(Collection, v.collection_id).name for v in made}
        return RerunResult(versions={names[v.collection_id]: v.number for v in made})


router = APIRouter()
router.include_router(collections)
router.include_router(rules)
