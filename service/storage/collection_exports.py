"""Reading versions back: their items as the exporters take them, exports with their leakage
report, and the difference between two versions.

Everything here reads immutable rows only, so the same version always gives the same bytes. The
session comes first, keyword-only arguments after, and nothing writes.
"""

from __future__ import annotations

from typing import Any

from sqlalchemy import select
from sqlalchemy.orm import Session

from core import exports
from service.errors import ValidationFailed
from service.storage import collections as store
from service.storage.tables import Collection, CollectionEntry, CollectionVersion


def export_items(session: Session, *, version: CollectionVersion) -> list[exports.ExportItem]:
    """A version's items in export order, each with the output ids of the duplicates merged into it."""
    members = store.version_members(session, version=version)
    merged_ids = sorted({m for item, _ in members for m in item.merged})
    outputs: dict[str, str] = {}
    if merged_ids:
        rows = session.execute(
            select(CollectionEntry.id, CollectionEntry.output_id).where(CollectionEntry.id.in_(merged_ids))
        )
        outputs = {entry_id: output_id for entry_id, output_id in rows}
    return [
        exports.ExportItem(
            entry_id=entry.id,
            input=list(entry.input),
            bad_output=entry.bad_output,
            ideal=entry.ideal,
            categories=list(entry.categories or []),
            provenance=dict(entry.provenance or {}),
            merged_output_ids=sorted(outputs[m] for m in item.merged if m in outputs),
        )
        for item, entry in members
    ]


def _merged(items: list[exports.ExportItem]) -> list[dict[str, Any]]:
    return [
        {"entry_id": i.entry_id, "output_id": i.output_id, "merged_output_ids": i.merged_output_ids}
        for i in items
        if i.merged_output_ids
    ]


def _report(
    collection: Collection,
    version: CollectionVersion,
    items: list[exports.ExportItem],
    fmt: str | None,
    result: exports.Export | None,
) -> dict[str, Any]:
    return exports.report(
        collection=collection.name,
        kind=collection.kind,
        version=version.number,
        fmt=fmt,
        held_back=version.held_back,
        merged=_merged(items),
        checked_against=version.checked_against,
        result=result,
    )


def export_version(
    session: Session, *, name: str, number: int | None, fmt: str
) -> tuple[CollectionVersion, exports.Export, dict[str, Any]]:
    """A version rendered in a format, with the report of what it held back, skipped and merged."""
    if fmt not in exports.FORMATS:
        raise ValidationFailed(
            f"unknown export format {fmt!r}", details={"format": fmt, "formats": list(exports.FORMATS)}
        )
    collection, version = store.get_version(session, name=name, number=number)
    items = export_items(session, version=version)
    held = {h["entry_id"] for h in version.held_back}
    result = exports.export(fmt, items, held_back=held)
    return version, result, _report(collection, version, items, fmt, result)


def leakage_report(session: Session, *, name: str, number: int | None) -> dict[str, Any]:
    """What a version holds back from every export (leakage) and which duplicates it merged."""
    collection, version = store.get_version(session, name=name, number=number)
    return _report(collection, version, export_items(session, version=version), None, None)


def _summary(item: exports.ExportItem) -> dict[str, Any]:
    return {
        "entry_id": item.entry_id,
        "output_id": item.output_id,
        "review_id": item.provenance.get("review_id"),
        "categories": item.categories,
    }


def diff_versions(session: Session, *, name: str, old: int, new: int) -> dict[str, Any]:
    """What changed from version ``old`` to version ``new``: items added and removed, and items
    newly held back or released by the leakage check."""
    _, a = store.get_version(session, name=name, number=old)
    _, b = store.get_version(session, name=name, number=new)
    before = {i.entry_id: i for i in export_items(session, version=a)}
    after = {i.entry_id: i for i in export_items(session, version=b)}
    held_a = {h["entry_id"] for h in a.held_back}
    held_b = {h["entry_id"] for h in b.held_back}
    return {
        "collection": name,
        "from": old,
        "to": new,
        "added": [_summary(after[k]) for k in after if k not in before],
        "removed": [_summary(before[k]) for k in before if k not in after],
        "held_back": [_summary(after[k]) for k in after if k in held_b and k not in held_a],
        "released": [_summary(after[k]) for k in after if k in held_a and k not in held_b],
    }
