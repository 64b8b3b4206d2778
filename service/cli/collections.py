"""`review-router export`, `collections` and `rules`: eval suites and fine-tuning sets from the shell.

``export`` writes a version in a format to a file or stdout and prints its leakage report to stderr,
so ``review-router export corrections --format openai-chat > train.jsonl`` keeps the data clean.
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path
from typing import Any

from core import exports
from service.settings import get_settings

KINDS = ("eval_suite", "finetune_set")


def _session() -> Any:
    from service.storage.db import engine_for, transaction, upgrade

    settings = get_settings()
    engine = engine_for(settings)
    upgrade(engine)
    return settings, transaction(engine)


def _version(text: str) -> int | None:
    return None if text == "latest" else int(text)


def _summary(report: dict[str, Any]) -> str:
    lines = [
        f"{report['collection']} v{report['version']} ({report['kind']}) as {report['format']}: "
        f"{report['exported']} exported, {len(report['held_back'])} held back (leakage), "
        f"{len(report['skipped'])} skipped, {len(report['merged'])} with merged duplicates",
    ]
    if report["checked_against"]:
        against = ", ".join(f"{n} v{v}" for n, v in report["checked_against"].items())
        lines.append(f"  checked against: {against}")
    for held in report["held_back"]:
        shown = "; ".join(f"{m['collection']}:{m['output_id']} ({m['why']})" for m in held["matches"])
        lines.append(f"  held back {held['output_id']}: {held['reason']} [{shown}]")
    for skipped in report["skipped"]:
        lines.append(f"  skipped {skipped['output_id']}: {skipped['reason']}")
    return "\n".join(lines)


def cmd_export(args: argparse.Namespace) -> int:
    from service.storage import staging
    from service.storage.collection_exports import export_version
    from service.storage.tables import utcnow

    _, transaction = _session()
    with transaction as session:
        if args.version == "latest":  # staged rule promotions become a version first
            staging.cut_pending(session, now=utcnow(), settings=get_settings())
        _, result, report = export_version(
            session, name=args.collection, number=_version(args.version), fmt=args.format
        )
    if args.out in (None, "-"):
        sys.stdout.write(result.text)
        sys.stdout.flush()
    else:
        Path(args.out).write_text(result.text, encoding="utf-8", newline="")
    print(_summary(report), file=sys.stderr)
    if args.report:
        Path(args.report).write_text(json.dumps(report, indent=2, sort_keys=True) + "\n", encoding="utf-8")
    return 0


def cmd_collections(args: argparse.Namespace) -> int:
    from service.storage import collections as store
    from service.storage import promotion_rules
    from service.storage.tables import utcnow

    settings, transaction = _session()
    with transaction as session:
        if args.action == "create":
            store.create_collection(
                session,
                name=args.name,
                kind=args.kind,
                description=args.description,
                created_by="cli",
                now=utcnow(),
            )
            print(f"created {args.kind} {args.name}")
        elif args.action == "promote":
            made = promotion_rules.promote(
                session, name=args.name, output_ids=args.output_ids, by="cli", now=utcnow(), settings=settings
            )
            print(f"{args.name}: version {made.number}" if made else f"{args.name}: nothing new")
        else:
            for collection, latest in store.list_collections(session):
                state = (
                    f"v{latest.number}, {latest.items} items, {len(latest.held_back)} held back"
                    if latest
                    else "empty"
                )
                print(f"{collection.name:<32} {collection.kind:<13} {state}")
    return 0


def cmd_rules(args: argparse.Namespace) -> int:
    from core.promotion import RuleCondition
    from service.storage import promotion_rules
    from service.storage.tables import Collection, utcnow

    settings, transaction = _session()
    with transaction as session:
        if args.action == "add":
            condition = RuleCondition.model_validate_json(args.condition)
            promotion_rules.create_rule(
                session,
                name=args.name,
                collection=args.collection,
                condition=condition,
                created_by="cli",
                now=utcnow(),
            )
            print(
                f"rule {args.name} -> {args.collection}: {condition.model_dump_json(exclude_defaults=True)}"
            )
        elif args.action == "apply":
            made = promotion_rules.rerun_rules(
                session, now=utcnow(), settings=settings, by="cli", rules=args.rule or None
            )
            for version in made:
                name = session.get_one(Collection, version.collection_id).name
                held = len(version.held_back)
                print(f"{name}: version {version.number}, {version.items} items, {held} held back")
            if not made:
                print("no collection changed")
        else:
            for rule, collection in promotion_rules.list_rules(session):
                state = "active" if rule.active else "off"
                shown = json.dumps(rule.condition, sort_keys=True)
                print(f"{rule.name:<32} -> {collection.name:<24} {state:<7} {shown}")
    return 0


def add_commands(sub: Any) -> None:
    """Add ``export``, ``collections`` and ``rules`` to the CLI's subparsers."""
    export = sub.add_parser(
        "export", help="write a collection version as JSONL or CSV (leakage report on stderr)"
    )
    export.add_argument("collection")
    export.add_argument("--version", default="latest", help="a version number or 'latest'")
    export.add_argument("--format", choices=exports.FORMATS, default="eval-jsonl")
    export.add_argument("--out", default=None, help="file to write; stdout when absent or '-'")
    export.add_argument("--report", default=None, help="also write the full leakage report (JSON) here")
    export.set_defaults(func=cmd_export)

    coll = sub.add_parser("collections", help="eval suites and fine-tuning sets: list, create, promote")
    coll.add_argument("action", choices=["list", "create", "promote"], nargs="?", default="list")
    coll.add_argument("name", nargs="?")
    coll.add_argument("output_ids", nargs="*", help="promote: output ids")
    coll.add_argument("--kind", choices=KINDS, default="eval_suite")
    coll.add_argument("--description", default="")
    coll.set_defaults(func=cmd_collections)

    rules = sub.add_parser("rules", help="promotion rules: list, add, apply over the history")
    rules.add_argument("action", choices=["list", "add", "apply"], nargs="?", default="list")
    rules.add_argument("name", nargs="?")
    rules.add_argument("--collection", help="add: the collection the rule promotes into")
    rules.add_argument("--condition", default="{}", help='add: JSON, e.g. \'{"verdict": "fail"}\'')
    rules.add_argument("--rule", action="append", default=[], help="apply: only this rule (repeatable)")
    rules.set_defaults(func=cmd_rules)
