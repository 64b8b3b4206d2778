"""Eval suites and fine-tuning sets, shared by the REST API and the collection pages: creating them,
promoting verdicts by hand or in bulk, re-checking leakage, rules, and reading a version.

None commits: the route owns the transaction. ``cut_staged`` is the exception that proves it: a read
of the latest version first makes what rules staged a version, in a transaction of its own.
"""

from __future__ import annotations

from collections.abc import Sequence

from sqlalchemy.orm import Session

from core import exports
from core.promotion import RuleCondition
from service.auth import Principal
from service.errors import BadRequest
from service.hygiene import MAX_INT
from service.settings import Settings
from service.storage import collection_exports as exporting
from service.storage import collections as store
from service.storage import promotion_rules, staging
from service.storage.tables import Collection, CollectionVersion, PromotionRule, utcnow

#: The most verdicts one bulk promotion takes.
BULK_LIMIT = 10_000


def version_number(version: str) -> int | None:
    """A version as addressed: a number, or ``latest`` (None); 400 for anything else."""
    if version == "latest":
        return None
    if not version.isdigit() or not 1 <= int(version) <= MAX_INT:
        raise BadRequest(f"a version is a number from 1 to {MAX_INT} or 'latest', not {version[:40]!r}")
    return int(version)


def cut_staged(session: Session, settings: Settings) -> None:
    """Make every collection's staged rule promotions a version now (its own transaction)."""
    with session.begin():
        staging.cut_pending(session, now=utcnow(), settings=settings)


def resolved(session: Session, settings: Settings, version: str) -> int | None:
    """Like ``version_number``; asking for ``latest`` first makes staged rule promotions a version."""
    number = version_number(version)
    if number is None:
        cut_staged(session, settings)
    return number


def contents(
    session: Session, *, name: str, number: int | None
) -> tuple[CollectionVersion, list[exports.ExportItem], set[str]]:
    """One version (None: the latest) with its items and the ids of the entries it holds back."""
    _, row = store.get_version(session, name=name, number=number)
    held = {str(h["entry_id"]) for h in row.held_back}
    return row, exporting.export_items(session, version=row), held


def create(session: Session, principal: Principal, *, name: str, kind: str, description: str) -> Collection:
    """A new, empty eval suite or fine-tuning set."""
    return store.create_collection(
        session, name=name, kind=kind, description=description, created_by=principal.name, now=utcnow()
    )


def promote(
    session: Session,
    settings: Settings,
    principal: Principal,
    *,
    name: str,
    output_ids: Sequence[str],
    note: str | None = None,
) -> CollectionVersion | None:
    """Promote outputs (their current verdicts) by hand: one new version, or None if all were there."""
    return promotion_rules.promote(
        session,
        name=name,
        output_ids=output_ids,
        by=principal.name,
        now=utcnow(),
        settings=settings,
        note=note,
    )


def promote_matching(
    session: Session,
    settings: Settings,
    principal: Principal,
    *,
    name: str,
    where: promotion_rules.VerdictFilter,
    limit: int = BULK_LIMIT,
) -> tuple[int, CollectionVersion | None]:
    """Promote every verdict the filter matches in one new version; how many matched, and the version."""
    return promotion_rules.promote_matching(
        session, name=name, where=where, limit=limit, by=principal.name, now=utcnow(), settings=settings
    )


def remove(
    session: Session, settings: Settings, principal: Principal, *, name: str, output_ids: Sequence[str]
) -> CollectionVersion | None:
    """A new version without these outputs; older versions keep them."""
    return promotion_rules.remove(
        session, name=name, output_ids=output_ids, by=principal.name, now=utcnow(), settings=settings
    )


def recheck(session: Session, settings: Settings, principal: Principal, *, name: str) -> CollectionVersion:
    """A new version with the same items, its leakage checked again against today's other side."""
    return promotion_rules.refresh(session, name=name, by=principal.name, now=utcnow(), settings=settings)


def create_rule(
    session: Session, principal: Principal, *, name: str, collection: str, condition: RuleCondition
) -> PromotionRule:
    """A rule promotes every verdict meeting its condition as it is recorded (re-run for history)."""
    return promotion_rules.create_rule(
        session,
        name=name,
        collection=collection,
        condition=condition,
        created_by=principal.name,
        now=utcnow(),
    )


def rerun_rules(
    session: Session, settings: Settings, principal: Principal, *, rules: list[str] | None = None
) -> list[CollectionVersion]:
    """Apply the active rules (or the named ones) to every verdict on record."""
    return promotion_rules.rerun_rules(
        session, now=utcnow(), settings=settings, by=principal.name, rules=rules
    )
