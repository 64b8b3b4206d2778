"""Eval suites and fine-tuning sets on real SQLite and real PostgreSQL: promotion by hand and by
rules, immutable versions, withdrawal on undo, duplicate merging, leakage control and exports."""

from __future__ import annotations

import csv
import io
import json
import threading
from concurrent.futures import ThreadPoolExecutor
from datetime import timedelta
from typing import Any

import numpy as np
import pytest
from sqlalchemy import func, select
from sqlalchemy.orm import Session

from core import exports
from core.promotion import RuleCondition
from service.domain import OutputIn
from service.errors import Conflict, NotFound
from service.settings import Settings
from service.storage import collection_exports as exporting
from service.storage import collections as store
from service.storage import promotion_rules, staging
from service.storage import queues as queues_repo
from service.storage import repository as repo
from service.storage.accounts import add_user
from service.storage.quality import adjudicate
from service.storage.reviewing import VerdictIn, record_verdict, undo_last
from service.storage.tables import CollectionItem, CollectionVersion, Output, Pick, Review, utcnow
from tests.conftest import Database

SETTINGS = Settings(leakage_cosine=0.9, leakage_same_cluster=True, leakage_eval_share=0.5)


def rules_on(session: Session, review_id: str) -> list[CollectionVersion]:
    """What a verdict's rules promote, made into versions (as asking for the latest version does)."""
    promotion_rules.apply_rules(session, review_id=review_id, now=utcnow())
    return staging.cut_pending(session, now=utcnow(), settings=SETTINGS)


def withdrawn(session: Session, review_id: str) -> list[CollectionVersion]:
    """An undone verdict withdrawn from every collection, made into versions."""
    promotion_rules.withdraw_review(session, review_id=review_id, now=utcnow())
    return staging.cut_pending(session, now=utcnow(), settings=SETTINGS)


def vector(seed: int, near: np.ndarray | None = None) -> np.ndarray:
    rng = np.random.default_rng(seed)
    v = rng.normal(size=384).astype(np.float32)
    if near is not None:
        v = near + 0.05 * v / np.linalg.norm(v)
    return (v / np.linalg.norm(v)).astype(np.float32)


def output(
    session: Session,
    prompt: str,
    response: str = "a wrong answer",
    *,
    embedding: np.ndarray | None = None,
    app: str = "support",
    queue: str = "default",
    cluster: int | None = None,
    selection_id: str | None = None,
    messages: list[dict[str, Any]] | None = None,
) -> Output:
    posted = OutputIn(
        app=app,
        model="m-1",
        response=response,
        **({"messages": messages} if messages else {"prompt": prompt}),
    )
    row, _ = repo.ingest_output(session, output_in=posted)
    row.status, row.queue = "scored", queue
    row.embedding = (embedding if embedding is not None else vector(hash(prompt) % 10_000)).tobytes()
    session.flush()
    if cluster is not None:
        queues_repo.add_pick(
            session,
            queue=queue,
            output_id=row.id,
            stratum="top",
            reason="r",
            score=0.9,
            selection_id=selection_id,
            cluster=cluster,
        )
        session.flush()
    return row


def judge(
    session: Session,
    row: Output,
    verdict: str = "fail",
    *,
    categories: tuple[str, ...] = ("factual_error",),
    correction: str | None = "the right answer",
    user_id: str | None = None,
    at: Any = None,
) -> Review:
    return record_verdict(
        session,
        output_id=row.id,
        user_id=user_id,
        reviewer="ann",
        verdict=VerdictIn(verdict=verdict, categories=list(categories), correction=correction, note=None),
        now=at or utcnow(),
        qc_share=0.0,
    )


def make(session: Session, name: str, kind: str) -> None:
    store.create_collection(session, name=name, kind=kind, description="", created_by="eve", now=utcnow())


def rule(session: Session, name: str, collection: str, **condition: Any) -> None:
    promotion_rules.create_rule(
        session,
        name=name,
        collection=collection,
        condition=RuleCondition(**condition),
        created_by="eve",
        now=utcnow(),
    )


def export_text(session: Session, name: str, number: int | None, fmt: str) -> str:
    return exporting.export_version(session, name=name, number=number, fmt=fmt)[1].text


def test_failed_review_with_correction_lands_in_finetune_export_through_a_rule(session: Session) -> None:
    make(session, "corrections", "finetune_set")
    rule(session, "fail-with-correction", "corrections", verdict="fail", has_correction=True)
    row = output(session, "What is the capital of Australia?", "Sydney")
    review = judge(session, row, correction="Canberra")
    made = rules_on(session, review.id)
    assert [v.number for v in made] == [1]
    lines = export_text(session, "corrections", 1, "openai-chat").splitlines()
    assert [json.loads(x) for x in lines] == [
        {
            "messages": [
                {"role": "user", "content": "What is the capital of Australia?"},
                {"role": "assistant", "content": "Canberra"},
            ]
        }
    ]
    dpo = json.loads(export_text(session, "corrections", 1, "openai-dpo"))
    assert dpo["preferred_output"] == [{"role": "assistant", "content": "Canberra"}]
    assert dpo["non_preferred_output"] == [{"role": "assistant", "content": "Sydney"}]


def test_rules_skip_what_they_do_not_match_and_second_verdicts(session: Session) -> None:
    make(session, "support-regressions", "eval_suite")
    rule(session, "refusals", "support-regressions", verdict="fail", categories=["refusal"])
    passed = judge(session, output(session, "q1"), "pass", categories=(), correction=None)
    other = judge(session, output(session, "q2"), categories=("formatting",))
    assert rules_on(session, passed.id) == []
    assert rules_on(session, other.id) == []
    hit = judge(session, output(session, "q3"), categories=("refusal", "other"))
    assert len(rules_on(session, hit.id)) == 1


def test_versions_are_immutable_and_export_byte_for_byte_again(session: Session) -> None:
    make(session, "suite", "eval_suite")
    first = judge(session, output(session, "first question"))
    v1 = promotion_rules.promote(
        session, name="suite", output_ids=[first.output_id], by="eve", now=utcnow(), settings=SETTINGS
    )
    assert v1 is not None and v1.number == 1
    before = {fmt: export_text(session, "suite", 1, fmt) for fmt in exports.FORMATS}
    second = judge(session, output(session, "second question"))
    v2 = promotion_rules.promote(
        session, name="suite", output_ids=[second.output_id], by="eve", now=utcnow(), settings=SETTINGS
    )
    assert v2 is not None and (v2.number, v2.items) == (2, 2)
    promotion_rules.remove(
        session, name="suite", output_ids=[first.output_id], by="eve", now=utcnow(), settings=SETTINGS
    )
    session.expire_all()
    assert {fmt: export_text(session, "suite", 1, fmt) for fmt in exports.FORMATS} == before
    assert len(export_text(session, "suite", 3, "eval-jsonl").splitlines()) == 1
    assert len(export_text(session, "suite", None, "eval-jsonl").splitlines()) == 1


def test_promoting_what_is_there_already_makes_no_version(session: Session) -> None:
    make(session, "suite", "eval_suite")
    review = judge(session, output(session, "q"))
    kwargs = dict(name="suite", output_ids=[review.output_id], by="eve", settings=SETTINGS)
    assert promotion_rules.promote(session, now=utcnow(), **kwargs) is not None  # type: ignore[arg-type]
    assert promotion_rules.promote(session, now=utcnow(), **kwargs) is None  # type: ignore[arg-type]
    assert [v.number for v in store.list_versions(session, name="suite")] == [1]


def test_an_output_without_verdict_cannot_be_promoted(session: Session) -> None:
    make(session, "suite", "eval_suite")
    row = output(session, "unreviewed")
    with pytest.raises(Conflict):
        promotion_rules.promote(
            session, name="suite", output_ids=[row.id], by="eve", now=utcnow(), settings=SETTINGS
        )
    with pytest.raises(NotFound):
        promotion_rules.promote(
            session, name="nope", output_ids=[row.id], by="eve", now=utcnow(), settings=SETTINGS
        )


def test_diff_names_added_and_removed_items(session: Session) -> None:
    make(session, "suite", "eval_suite")
    a, b = judge(session, output(session, "qa")), judge(session, output(session, "qb"))
    promotion_rules.promote(
        session, name="suite", output_ids=[a.output_id], by="eve", now=utcnow(), settings=SETTINGS
    )
    promotion_rules.promote(
        session, name="suite", output_ids=[b.output_id], by="eve", now=utcnow(), settings=SETTINGS
    )
    promotion_rules.remove(
        session, name="suite", output_ids=[a.output_id], by="eve", now=utcnow(), settings=SETTINGS
    )
    diff = exporting.diff_versions(session, name="suite", old=1, new=3)
    assert [d["output_id"] for d in diff["added"]] == [b.output_id]
    assert [d["output_id"] for d in diff["removed"]] == [a.output_id]
    assert diff["held_back"] == diff["released"] == []


def test_undone_verdict_is_withdrawn_in_a_new_version(session: Session) -> None:
    user = add_user(session, username="ann", password_hash="x", role="reviewer", now=utcnow())
    make(session, "corrections", "finetune_set")
    rule(session, "all-corrections", "corrections", has_correction=True)
    keep = judge(session, output(session, "kept question"), user_id=user.id)
    rules_on(session, keep.id)
    gone = judge(session, output(session, "undone question"), user_id=user.id)
    rules_on(session, gone.id)
    undone = undo_last(
        session, user_id=user.id, now=utcnow(), window=timedelta(minutes=30), lease=timedelta(minutes=5)
    )
    assert undone.id == gone.id
    made = withdrawn(session, undone.id)
    assert [v.number for v in made] == [3]
    latest = exporting.export_version(session, name="corrections", number=None, fmt="eval-jsonl")[1]
    assert [json.loads(x)["metadata"]["review_id"] for x in latest.text.splitlines()] == [keep.id]
    assert len(export_text(session, "corrections", 2, "eval-jsonl").splitlines()) == 2  # v2 unchanged
    assert withdrawn(session, undone.id) == []


def test_rules_rerun_over_history_promote_old_verdicts_once(session: Session) -> None:
    old = [
        judge(session, output(session, f"old question {i}"), categories=("hallucination",)) for i in range(3)
    ]
    judge(session, output(session, "a pass"), "pass", categories=(), correction=None)
    make(session, "hallucinations", "eval_suite")
    rule(session, "hallucinated", "hallucinations", verdict="fail", categories=["hallucination"])
    made = promotion_rules.rerun_rules(session, now=utcnow(), settings=SETTINGS, by="eve")
    assert [(v.number, v.items) for v in made] == [(1, 3)]
    items = exporting.export_items(session, version=made[0])
    assert {i.output_id for i in items} == {r.output_id for r in old}
    assert promotion_rules.rerun_rules(session, now=utcnow(), settings=SETTINGS, by="eve") == []


def test_duplicates_within_a_collection_merge_into_one_item(session: Session) -> None:
    make(session, "suite", "eval_suite")
    first = judge(session, output(session, "How do I reset my password?", "Call us."), correction=None)
    again = judge(
        session, output(session, "how do I  reset my PASSWORD?", "Email us."), correction="Use the link."
    )
    version = promotion_rules.promote(
        session,
        name="suite",
        output_ids=[first.output_id, again.output_id],
        by="eve",
        now=utcnow(),
        settings=SETTINGS,
    )
    assert version is not None and version.items == 1
    [item] = exporting.export_items(session, version=version)
    assert (item.output_id, item.ideal, item.merged_output_ids) == (
        again.output_id,
        "Use the link.",
        [first.output_id],
    )
    report = exporting.leakage_report(session, name="suite", number=1)
    assert report["merged"] == [
        {"entry_id": item.entry_id, "output_id": again.output_id, "merged_output_ids": [first.output_id]}
    ]


def test_a_failure_in_an_eval_suite_is_held_back_from_the_finetune_export(session: Session) -> None:
    make(session, "support-regressions", "eval_suite")
    make(session, "corrections", "finetune_set")
    base = vector(1)
    evaluated = judge(session, output(session, "Where is my parcel 123?", embedding=base))
    twin = judge(session, output(session, "Where is my parcel 456?", embedding=vector(2, near=base)))
    unrelated = judge(session, output(session, "Do you ship to Norway?", embedding=vector(3)))
    promotion_rules.promote(
        session,
        name="support-regressions",
        output_ids=[evaluated.output_id],
        by="eve",
        now=utcnow(),
        settings=SETTINGS,
    )
    version = promotion_rules.promote(
        session,
        name="corrections",
        output_ids=[twin.output_id, unrelated.output_id],
        by="eve",
        now=utcnow(),
        settings=SETTINGS,
    )
    assert version is not None
    assert [h["output_id"] for h in version.held_back] == [twin.output_id]
    [held] = version.held_back
    assert held["kept_in"] == "eval suite" and "already kept it" in held["reason"]
    assert held["matches"][0]["output_id"] == evaluated.output_id and held["matches"][0]["cosine"] >= 0.9
    assert version.checked_against == {"support-regressions": 1}
    _, result, report = exporting.export_version(session, name="corrections", number=None, fmt="openai-chat")
    assert len(result.text.splitlines()) == 1 and report["exported"] == 1
    assert [h["output_id"] for h in report["held_back"]] == [twin.output_id]
    assert (
        exporting.export_version(session, name="support-regressions", number=None, fmt="eval-jsonl")[2][
            "held_back"
        ]
        == []
    )


def test_the_same_cluster_counts_as_the_same_failure(session: Session) -> None:
    selection = queues_repo.add_selection(
        session, queue="default", window_size=10, junk=0, clusters=2, noise=0
    )
    make(session, "suite", "eval_suite")
    make(session, "tune", "finetune_set")
    a = judge(session, output(session, "alpha", embedding=vector(10), cluster=4, selection_id=selection.id))
    b = judge(session, output(session, "beta", embedding=vector(11), cluster=4, selection_id=selection.id))
    promotion_rules.promote(
        session, name="suite", output_ids=[a.output_id], by="eve", now=utcnow(), settings=SETTINGS
    )
    version = promotion_rules.promote(
        session, name="tune", output_ids=[b.output_id], by="eve", now=utcnow(), settings=SETTINGS
    )
    assert version is not None and [h["matches"][0]["why"] for h in version.held_back] == ["same cluster"]
    lenient = Settings(leakage_same_cluster=False)
    again = store.freeze(
        session,
        [store.Change(store.get_collection(session, name="tune"), force=True)],
        policy=store.LeakagePolicy.from_settings(lenient),
        by="eve",
        note=None,
        now=utcnow(),
    )
    assert again[0].held_back == []


def test_one_verdict_promoted_to_both_sides_at_once_is_kept_on_one_side_only(session: Session) -> None:
    make(session, "support-regressions", "eval_suite")
    make(session, "corrections", "finetune_set")
    rule(session, "to-suite", "support-regressions", verdict="fail")
    rule(session, "to-tune", "corrections", has_correction=True)
    sides = []
    for i in range(12):
        review = judge(session, output(session, f"distinct question {i}", embedding=vector(100 + i)))
        made = rules_on(session, review.id)
        assert len(made) == 2
        holding = [v.collection_id for v in made if review.output_id in {h["output_id"] for h in v.held_back}]
        assert len(holding) == 1  # held back on exactly one side, kept on the other
        sides.append(holding[0])
    assert len(set(sides)) == 2  # the draw sends some groups each way


def test_adjudication_replaces_the_disputed_verdict_where_it_was_promoted(session: Session) -> None:
    admin = add_user(session, username="root", password_hash="x", role="admin", now=utcnow())
    make(session, "corrections", "finetune_set")
    row = output(session, "Is 7 prime?", "No")
    queues_repo.add_pick(session, queue="default", output_id=row.id, stratum="top", reason="r", score=0.5)
    first = judge(session, row, correction="Yes, 7 is prime.")
    promotion_rules.promote(
        session, name="corrections", output_ids=[row.id], by="eve", now=utcnow(), settings=SETTINGS
    )
    pick = session.scalars(select(Pick).where(Pick.output_id == row.id)).one()
    pick.qc_state = "disputed"
    ruling = adjudicate(
        session,
        output_id=row.id,
        user_id=admin.id,
        reviewer="root",
        verdict=VerdictIn(
            verdict="fail", categories=["factual_error"], correction="Yes: 7 is prime.", note=None
        ),
        now=utcnow() + timedelta(seconds=1),
    )
    made = rules_on(session, ruling.id)
    assert [v.number for v in made] == [2]
    [item] = exporting.export_items(session, version=made[0])
    assert (item.provenance["review_id"], item.ideal) == (ruling.id, "Yes: 7 is prime.")
    assert first.id != ruling.id


def test_bulk_promotion_takes_the_filtered_verdicts(session: Session) -> None:
    make(session, "suite", "eval_suite")
    hit = judge(session, output(session, "bulk 1", app="billing"), categories=("refusal",))
    judge(session, output(session, "bulk 2", app="billing"), categories=("formatting",))
    judge(session, output(session, "bulk 3", app="support"), categories=("refusal",))
    where = promotion_rules.VerdictFilter(verdict="fail", category="refusal", app="billing")
    count, version = promotion_rules.promote_matching(
        session, name="suite", where=where, limit=100, by="eve", now=utcnow(), settings=SETTINGS
    )
    assert count == 1 and version is not None
    assert [i.output_id for i in exporting.export_items(session, version=version)] == [hit.output_id]


@pytest.mark.parametrize("fmt", exports.FORMATS)
def test_every_export_line_parses_with_exactly_its_fields_and_round_trips(session: Session, fmt: str) -> None:
    make(session, "mixed", "eval_suite")
    chat = [
        {"role": "system", "content": "Be brief."},
        {"role": "user", "content": "Café opening hours, ünïcode?"},
    ]
    reviews = [
        judge(session, output(session, "", "We never close", messages=chat), correction='9 to 5, "daily"'),
        judge(session, output(session, "No correction here", "Wrong"), correction=None),
        judge(
            session,
            output(session, "A good answer, kept", "Fine, with a comma"),
            "pass",
            categories=(),
            correction=None,
        ),
    ]
    version = promotion_rules.promote(
        session,
        name="mixed",
        output_ids=[r.output_id for r in reviews],
        by="eve",
        now=utcnow(),
        settings=SETTINGS,
    )
    assert version is not None
    _, result, report = exporting.export_version(session, name="mixed", number=1, fmt=fmt)
    required = {
        "openai-chat": exports.CHAT_FIELDS,
        "openai-dpo": exports.DPO_FIELDS,
        "eval-jsonl": exports.EVAL_FIELDS,
    }
    if fmt == "csv":
        header, *rows = list(csv.reader(io.StringIO(result.text)))
        assert tuple(header) == exports.CSV_COLUMNS and all(len(r) == len(header) for r in rows)
    else:
        for raw in result.text.splitlines():
            assert set(json.loads(raw)) == required[fmt]
    items = {i.entry_id: i for i in exporting.export_items(session, version=version)}
    parsed = exports.parse(fmt, result.text)
    assert len(parsed) == len(result.exported) == report["exported"]
    assert len(result.exported) + len(report["skipped"]) == len(items)
    for entry_id, back in zip(result.exported, parsed, strict=True):
        item = items[entry_id]
        for key, value in back.items():
            expected = {"id": item.entry_id, "output_id": item.output_id}.get(key, getattr(item, key, None))
            assert value == expected, (fmt, key)
    expected_count = {"openai-chat": 2, "openai-dpo": 1, "eval-jsonl": 3, "csv": 3}[fmt]
    assert len(result.exported) == expected_count


def test_collections_and_rules_have_unique_names_and_deleting_a_collection_removes_its_versions(
    session: Session,
) -> None:
    make(session, "suite", "eval_suite")
    with pytest.raises(Conflict):
        make(session, "suite", "finetune_set")
    rule(session, "r1", "suite", verdict="fail")
    with pytest.raises(Conflict):
        rule(session, "r1", "suite", verdict="pass")
    promotion_rules.set_rule_active(session, name="r1", active=False)
    review = judge(session, output(session, "q"))
    assert rules_on(session, review.id) == []
    promotion_rules.promote(
        session, name="suite", output_ids=[review.output_id], by="eve", now=utcnow(), settings=SETTINGS
    )
    store.delete_collection(session, name="suite")
    assert session.scalar(select(func.count()).select_from(CollectionVersion)) == 0
    assert promotion_rules.list_rules(session) == []


def test_concurrent_promotions_into_one_collection_each_get_their_own_version(fresh_db: Database) -> None:
    from service.storage.db import transaction

    with transaction(fresh_db.engine) as session:
        make(session, "suite", "eval_suite")
        ids = [judge(session, output(session, f"concurrent {i}")).output_id for i in range(6)]
    barrier = threading.Barrier(len(ids))

    def promote_one(output_id: str) -> None:
        barrier.wait()
        with transaction(fresh_db.engine) as session:
            promotion_rules.promote(
                session, name="suite", output_ids=[output_id], by="eve", now=utcnow(), settings=SETTINGS
            )

    with ThreadPoolExecutor(len(ids)) as pool:
        list(pool.map(promote_one, ids))
    with transaction(fresh_db.engine) as session:
        assert [v.number for v in store.list_versions(session, name="suite")] == [1, 2, 3, 4, 5, 6]
        latest = store.get_version(session, name="suite")[1]
        assert {i.output_id for i in exporting.export_items(session, version=latest)} == set(ids)


def test_verdicts_only_stage_their_promotions_until_a_version_is_asked_for_or_due(session: Session) -> None:
    make(session, "corrections", "finetune_set")
    rule(session, "fail-with-correction", "corrections", verdict="fail", has_correction=True)
    first = judge(session, output(session, "q one"), correction="a1")
    second = judge(session, output(session, "q two"), correction="a2")
    assert promotion_rules.apply_rules(session, review_id=first.id, now=utcnow()) == ["corrections"]
    assert promotion_rules.apply_rules(session, review_id=second.id, now=utcnow()) == ["corrections"]
    collection = store.get_collection(session, name="corrections")
    # Recording verdicts made no version; they are staged, and undo follows what is staged.
    assert store.latest_version(session, collection_id=collection.id) is None
    assert staging.count_pending(session, collection_id=collection.id) == 2
    assert promotion_rules.withdraw_review(session, review_id=second.id, now=utcnow()) == ["corrections"]
    # The sweep cuts only when the oldest staged change is due.
    soon = utcnow() - timedelta(minutes=5)
    assert staging.cut_pending(session, now=utcnow(), settings=SETTINGS, due_before=soon) == []
    later = utcnow() + timedelta(seconds=1)
    [version] = staging.cut_pending(session, now=utcnow(), settings=SETTINGS, due_before=later)
    assert version.number == 1 and version.items == 1
    assert staging.count_pending(session, collection_id=collection.id) == 0
    [line] = export_text(session, "corrections", 1, "openai-chat").splitlines()
    assert json.loads(line)["messages"][-1]["content"] == "a1"


def test_versions_store_only_what_changed_and_old_versions_stay_as_they_were(session: Session) -> None:
    make(session, "suite", "eval_suite")
    ids = []
    for n in range(12):
        row = output(session, f"question {n}")
        judge(session, row)
        promotion_rules.promote(
            session, name="suite", output_ids=[row.id], by="eve", now=utcnow(), settings=SETTINGS
        )
        ids.append(row.id)
    collection = store.get_collection(session, name="suite")
    spans = session.scalars(select(CollectionItem).where(CollectionItem.collection_id == collection.id)).all()
    assert len(spans) == 12  # one span per item, not one row per item per version (78)
    v5 = export_text(session, "suite", 5, "eval-jsonl")
    promotion_rules.remove(
        session, name="suite", output_ids=[ids[0]], by="eve", now=utcnow(), settings=SETTINGS
    )
    assert export_text(session, "suite", 5, "eval-jsonl") == v5 and len(v5.splitlines()) == 5
    assert len(export_text(session, "suite", None, "eval-jsonl").splitlines()) == 11
