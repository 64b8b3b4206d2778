"""Repository functions for eval suites and fine-tuning sets: promotion, versions, withdrawal.

Every change to a collection makes a new immutable version; nothing here updates or deletes a
version, an item or an entry, so any version exports to the same bytes later. A version is made by
:func:`freeze`: duplicates (same input) merge into one item, then each item is checked for
leakage against the other side's collections (``core.leakage``) and what must be held back is
recorded with the version. Several collections changed by one verdict are frozen together, so a
failure promoted to both sides at once is assigned to exactly one of them.

The session comes first, keyword-only arguments after, and nothing commits.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

from sqlalchemy import or_, select
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Session

from core import leakage, promotion
from service.errors import Conflict, NotFound, ValidationFailed
from service.settings import Settings
from service.storage.repository import get_output
from service.storage.tables import (
    Collection,
    CollectionEntry,
    CollectionItem,
    CollectionVersion,
    Pick,
    Review,
    new_id,
)


@dataclass(frozen=True)
class LeakagePolicy:
    cosine: float = 0.9
    same_cluster: bool = True
    eval_share: float = 0.5

    @classmethod
    def from_settings(cls, settings: Settings) -> LeakagePolicy:
        return cls(settings.leakage_cosine, settings.leakage_same_cluster, settings.leakage_eval_share)


# --- collections ---------------------------------------------------------------------------------


def create_collection(
    session: Session, *, name: str, kind: str, description: str, created_by: str | None, now: datetime
) -> Collection:
    """A new, empty eval suite or fine-tuning set (its first version comes with its first item)."""
    if kind not in promotion.COLLECTION_KINDS:
        raise ValidationFailed(f"kind must be one of {', '.join(promotion.COLLECTION_KINDS)}")
    row = Collection(
        id=new_id(), name=name, kind=kind, description=description, created_at=now, created_by=created_by
    )
    try:
        with session.begin_nested():
            session.add(row)
    except IntegrityError as exc:
        raise Conflict(f"a collection named {name!r} exists already", details={"name": name}) from exc
    return row


def get_collection(session: Session, *, name: str) -> Collection:
    row = session.scalars(select(Collection).where(Collection.name == name)).one_or_none()
    if row is None:
        raise NotFound(f"no collection named {name!r}", details={"name": name})
    return row


def list_collections(session: Session) -> list[tuple[Collection, CollectionVersion | None]]:
    """Every collection with its latest version, by name."""
    rows = session.scalars(select(Collection).order_by(Collection.name))
    return [(c, latest_version(session, collection_id=c.id)) for c in rows]


def delete_collection(session: Session, *, name: str) -> None:
    """Remove a collection with all its versions and rules."""
    session.delete(get_collection(session, name=name))
    session.flush()


def latest_version(session: Session, *, collection_id: str) -> CollectionVersion | None:
    return session.scalars(
        select(CollectionVersion)
        .where(CollectionVersion.collection_id == collection_id)
        .order_by(CollectionVersion.number.desc())
        .limit(1)
    ).first()


def get_version(
    session: Session, *, name: str, number: int | None = None
) -> tuple[Collection, CollectionVersion]:
    """A collection's version ``number`` (the latest when None), or NotFound."""
    collection = get_collection(session, name=name)
    if number is None:
        version = latest_version(session, collection_id=collection.id)
    else:
        version = session.scalars(
            select(CollectionVersion).where(
                CollectionVersion.collection_id == collection.id, CollectionVersion.number == number
            )
        ).one_or_none()
    if version is None:
        which = "any version yet" if number is None else f"version {number}"
        raise NotFound(f"collection {name!r} has no {which}", details={"name": name, "version": number})
    return collection, version


def list_versions(session: Session, *, name: str) -> list[CollectionVersion]:
    collection = get_collection(session, name=name)
    return list(
        session.scalars(
            select(CollectionVersion)
            .where(CollectionVersion.collection_id == collection.id)
            .order_by(CollectionVersion.number)
        )
    )


def version_members(
    session: Session, *, version: CollectionVersion
) -> list[tuple[CollectionItem, CollectionEntry]]:
    """A version's items with their entries, in export order: the spans that cover its number."""
    rows = session.execute(
        select(CollectionItem, CollectionEntry)
        .join(CollectionEntry, CollectionEntry.id == CollectionItem.entry_id)
        .where(
            CollectionItem.collection_id == version.collection_id,
            CollectionItem.from_version <= version.number,
            or_(CollectionItem.to_version.is_(None), CollectionItem.to_version > version.number),
        )
        .order_by(CollectionItem.position)
    )
    return [(i, e) for i, e in rows]


def underlying(session: Session, version: CollectionVersion | None) -> list[CollectionEntry]:
    """Every entry a version holds: its items and the duplicates merged into them."""
    if version is None:
        return []
    members = version_members(session, version=version)
    merged_ids = [m for item, _ in members for m in item.merged]
    merged = (
        list(session.scalars(select(CollectionEntry).where(CollectionEntry.id.in_(merged_ids))))
        if merged_ids
        else []
    )
    return [e for _, e in members] + merged


# --- entries -------------------------------------------------------------------------------------


def entry_for(
    session: Session,
    *,
    collection: Collection,
    review: Review,
    by: str | None,
    rule: str | None,
    now: datetime,
) -> CollectionEntry:
    existing = session.scalars(
        select(CollectionEntry).where(
            CollectionEntry.collection_id == collection.id, CollectionEntry.review_id == review.id
        )
    ).one_or_none()
    if existing is not None:
        return existing
    output = get_output(session, output_id=review.output_id)
    pick = session.scalars(select(Pick).where(Pick.output_id == output.id)).one_or_none()
    cluster = pick.cluster if pick is not None and pick.cluster is not None and pick.cluster >= 0 else None
    selection_id = pick.selection_id if pick is not None else None
    provenance: dict[str, Any] = {
        "output_id": output.id,
        "review_id": review.id,
        "verdict": review.verdict,
        "review_kind": review.kind,
        "reviewer": review.reviewer,
        "app": output.app,
        "model": output.model,
        "queue": review.queue or output.queue,
        "cluster": cluster,
        "selection_id": selection_id,
        "received_at": promotion.iso(output.received_at),
        "reviewed_at": promotion.iso(review.created_at),
        "promoted_at": promotion.iso(now),
        "promoted_by": by,
        "rule": rule,
    }
    content = promotion.entry_content(
        prompt=output.prompt,
        messages=output.messages,
        response=output.response,
        verdict=review.verdict,
        correction=review.correction,
        categories=review.categories or [],
        provenance=provenance,
    )
    entry = CollectionEntry(
        id=new_id(),
        collection_id=collection.id,
        output_id=output.id,
        review_id=review.id,
        input=content.input,
        bad_output=content.bad_output,
        ideal=content.ideal,
        categories=content.categories,
        provenance=content.provenance,
        input_hash=promotion.input_hash(content.input),
        embedding=output.embedding,
        cluster=f"{selection_id}:{cluster}" if cluster is not None and selection_id else None,
        created_at=now,
    )
    session.add(entry)
    session.flush()
    return entry


# --- versions ------------------------------------------------------------------------------------


@dataclass
class Change:
    """What one operation does to one collection's next version."""

    collection: Collection
    add: list[CollectionEntry] = field(default_factory=list)
    remove: set[str] = field(default_factory=set)  # entry ids
    force: bool = False  # make a version even if nothing changed (to re-check leakage)


def _candidates(
    session: Session, changed: dict[str, tuple[Collection, list[CollectionEntry], set[str]]]
) -> tuple[list[leakage.Candidate], dict[str, int]]:
    """Items being versioned (assessed) and the kept items of every other collection's latest version."""
    out: list[leakage.Candidate] = []
    for collection, winners, anchored in changed.values():
        out += [_candidate(e, collection, anchored=e.id in anchored, assess=True) for e in winners]
    checked: dict[str, int] = {}
    for other in session.scalars(select(Collection).where(Collection.id.not_in(list(changed)))):
        version = latest_version(session, collection_id=other.id)
        if version is None:
            continue
        checked[other.name] = version.number
        held = {h["entry_id"] for h in version.held_back}
        for _, entry in version_members(session, version=version):
            if entry.id not in held:
                out.append(_candidate(entry, other, anchored=True, assess=False))
    return out, checked


def _candidate(
    entry: CollectionEntry, collection: Collection, *, anchored: bool, assess: bool
) -> leakage.Candidate:
    return leakage.Candidate(
        entry_id=entry.id,
        output_id=entry.output_id,
        collection=collection.name,
        kind=collection.kind,
        input_hash=entry.input_hash,
        embedding=leakage.unit_vector(entry.embedding),
        cluster=entry.cluster,
        anchored=anchored,
        assess=assess,
    )


def freeze(
    session: Session,
    changes: Iterable[Change],
    *,
    policy: LeakagePolicy,
    by: str | None,
    note: str | None,
    now: datetime,
) -> list[CollectionVersion]:
    """Make the next version of every changed collection, together (see the module docstring)."""
    changes = list(changes)
    # Two operations at once would both make "the next" version of a collection, or each miss the
    # other's near-duplicate on the other side: lock every collection row, in id order, first.
    # NO KEY UPDATE, because the entries just inserted hold KEY SHARE locks (foreign keys) on them
    # that a plain FOR UPDATE would deadlock against.
    if changes:
        session.execute(select(Collection.id).order_by(Collection.id).with_for_update(key_share=True))
    plans: dict[
        str,
        tuple[Collection, CollectionVersion | None, list[tuple[str, list[str]]], dict[str, CollectionEntry]],
    ] = {}
    for change in changes:
        previous = latest_version(session, collection_id=change.collection.id)
        entries = {e.id: e for e in underlying(session, previous)}
        added = {e.id for e in change.add}
        superseded = {e.output_id for e in change.add}  # a newer verdict on the same output replaces it
        entries = {
            i: e
            for i, e in entries.items()
            if i not in change.remove and (e.output_id not in superseded or i in added)
        }
        entries.update({e.id: e for e in change.add})
        ordered = sorted(entries.values(), key=lambda e: (e.created_at, e.id))
        members = [
            leakage.Member(e.id, e.input_hash, bool(e.ideal), str(e.provenance.get("reviewed_at") or ""))
            for e in ordered
        ]
        merged = leakage.merge_duplicates(members)
        if not change.force and previous is not None and _same(session, previous, merged):
            continue
        if previous is None and not merged and not change.force:
            continue
        plans[change.collection.id] = (change.collection, previous, merged, entries)
    if not plans:
        return []
    changed = {}
    for cid, (collection, previous, merged, entries) in plans.items():
        kept_before: set[str] = set()
        if previous is not None:
            held = {h["entry_id"] for h in previous.held_back}
            kept_before = {e.id for _, e in version_members(session, version=previous)} - held
        changed[cid] = (collection, [entries[w] for w, _ in merged], kept_before)
    candidates, checked = _candidates(session, changed)
    held_back = leakage.hold_back(
        candidates, cosine=policy.cosine, same_cluster=policy.same_cluster, eval_share=policy.eval_share
    )
    made = []
    for collection, previous, merged, _entries in plans.values():
        version = CollectionVersion(
            id=new_id(),
            collection_id=collection.id,
            number=(previous.number + 1) if previous is not None else 1,
            created_at=now,
            created_by=by,
            note=note,
            items=len(merged),
            held_back=[held_back[w] for w, _ in merged if w in held_back],
            checked_against={},
        )
        made.append((collection, version))
        session.add(version)
        session.flush()
        _write_spans(session, collection, previous, version, merged)
    numbers = {c.name: v.number for c, v in made}
    for collection, version in made:
        against = {**checked, **numbers}
        version.checked_against = {
            name: n
            for name, n in sorted(against.items())
            if name != collection.name and _kind_of(session, name) != collection.kind
        }
    session.flush()
    return [v for _, v in made]


def _kind_of(session: Session, name: str) -> str:
    return str(session.scalar(select(Collection.kind).where(Collection.name == name)))


def _write_spans(
    session: Session,
    collection: Collection,
    previous: CollectionVersion | None,
    version: CollectionVersion,
    merged: Sequence[tuple[str, list[str]]],
) -> None:
    """Close the spans of items that left or changed place or merges, open spans for new ones; an
    unchanged item's span simply covers the new version too."""
    open_spans = (
        {item.entry_id: item for item, _ in version_members(session, version=previous)} if previous else {}
    )
    for position, (entry_id, merges) in enumerate(merged):
        span = open_spans.pop(entry_id, None)
        if span is not None and span.position == position and list(span.merged) == list(merges):
            continue
        if span is not None:
            span.to_version = version.number
        session.add(
            CollectionItem(
                collection_id=collection.id,
                entry_id=entry_id,
                from_version=version.number,
                to_version=None,
                position=position,
                merged=list(merges),
            )
        )
    for span in open_spans.values():
        span.to_version = version.number


def _same(session: Session, previous: CollectionVersion, merged: Sequence[tuple[str, list[str]]]) -> bool:
    before = [(item.entry_id, list(item.merged)) for item, _ in version_members(session, version=previous)]
    return before == [(w, list(m)) for w, m in merged]
