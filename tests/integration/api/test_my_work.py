"""A reviewer's own work over the REST API, and revising a past verdict as a new verdict with its
history: who may revise, what counts afterwards (estimate labels, collections), and the counts.
Real SQLite and PostgreSQL, rolled back per test."""

from __future__ import annotations

from collections.abc import Iterator

import pytest
from fastapi.testclient import TestClient

from service.settings import QueueConfig
from service.storage import repository as repo
from tests.conftest import Database, credentials, rolled_back_app
from tests.integration.api.test_workbench import seed_items


@pytest.fixture
def bench(db: Database, settings_for) -> Iterator[tuple[TestClient, list[str]]]:  # type: ignore[no-untyped-def]
    settings = settings_for(db, qc_share=0.0, queues=[QueueConfig(name="default", budget_per_day=50)])
    with rolled_back_app(db, settings) as app:
        with app.state.sessions() as session, session.begin():
            items = seed_items(session, 4)
        with TestClient(app) as client:
            yield client, items


def test_a_reviewer_sees_their_own_verdicts_counts_and_the_days_budget(bench) -> None:  # type: ignore[no-untyped-def]
    client, items = bench
    ana = credentials(client.app, "reviewer", "ana")  # type: ignore[arg-type]
    bob = credentials(client.app, "reviewer", "bob")  # type: ignore[arg-type]
    for output_id, verdict in zip(items[:3], ("fail", "pass", "fail"), strict=True):
        made = client.post("/v1/reviews", json={"output_id": output_id, "verdict": verdict}, headers=ana)
        assert made.status_code == 201
    client.post("/v1/reviews", json={"output_id": items[3], "verdict": "pass"}, headers=bob)

    mine = client.get("/v1/reviews/mine", headers=ana).json()
    assert (mine["reviewer"], mine["today"], mine["this_week"]) == ("ana", 3, 3)
    assert [r["review"]["output_id"] for r in mine["reviews"]] == items[2::-1]  # newest first, hers only
    assert all(r["current"] for r in mine["reviews"])
    assert mine["reviews"][0]["response"] == "answer 2"
    assert mine["budgets"] == [
        {"queue": "default", "budget_per_day": 50, "reviewed_today": 4, "left_today": 46, "waiting": 0}
    ]
    fails = client.get("/v1/reviews/mine", params={"verdict": "fail"}, headers=ana).json()["reviews"]
    assert [r["review"]["output_id"] for r in fails] == [items[2], items[0]]
    assert client.get("/v1/reviews/mine", params={"queue": "other"}, headers=ana).json()["reviews"] == []
    bad = client.get("/v1/reviews/mine", params={"period": "year"}, headers=ana)
    assert bad.status_code == 422 and bad.json()["error"]["code"] == "validation_failed"
    # An application's key is no person: it has no work of its own to read.
    key = credentials(client.app, "app")  # type: ignore[arg-type]
    assert client.get("/v1/reviews/mine", headers=key).status_code == 403


def test_revising_a_verdict_adds_one_and_keeps_the_history(bench) -> None:  # type: ignore[no-untyped-def]
    client, items = bench
    ana = credentials(client.app, "reviewer", "ana")  # type: ignore[arg-type]
    bob = credentials(client.app, "reviewer", "bob")  # type: ignore[arg-type]
    admin = credentials(client.app, "admin", "ada")  # type: ignore[arg-type]
    client.post("/v1/reviews", json={"output_id": items[0], "verdict": "fail"}, headers=ana)

    # Someone who gave none of its verdicts may not revise it; an output with no verdict has none to revise.
    refused = client.post(
        "/v1/reviews/revisions", json={"output_id": items[0], "verdict": "pass"}, headers=bob
    )
    assert refused.status_code == 403 and refused.json()["error"]["code"] == "forbidden"
    none_yet = client.post(
        "/v1/reviews/revisions", json={"output_id": items[1], "verdict": "pass"}, headers=ana
    )
    assert none_yet.status_code == 409

    revised = client.post(
        "/v1/reviews/revisions",
        json={"output_id": items[0], "verdict": "pass", "note": "misread the date"},
        headers=ana,
    )
    assert revised.status_code == 201
    assert (revised.json()["kind"], revised.json()["verdict"], revised.json()["queue"]) == (
        "revision",
        "pass",
        "default",
    )
    history = client.get(f"/v1/outputs/{items[0]}", headers=ana).json()["reviews"]
    assert [(r["kind"], r["verdict"]) for r in history] == [("primary", "fail"), ("revision", "pass")]
    with client.app.state.sessions() as session:  # type: ignore[attr-defined]
        assert repo.verdicts_of(session, output_ids=[items[0]]) == {items[0]: "pass"}
    mine = client.get("/v1/reviews/mine", headers=ana).json()
    assert [(r["review"]["kind"], r["current"]) for r in mine["reviews"]] == [
        ("revision", True),
        ("primary", False),
    ]
    # An admin may revise anyone's verdict; the latest revision is the verdict.
    ruled = client.post(
        "/v1/reviews/revisions", json={"output_id": items[0], "verdict": "fail"}, headers=admin
    )
    assert ruled.status_code == 201
    with client.app.state.sessions() as session:  # type: ignore[attr-defined]
        assert repo.verdicts_of(session, output_ids=[items[0]]) == {items[0]: "fail"}
    unknown = client.post(
        "/v1/reviews/revisions",
        json={"output_id": items[0], "verdict": "fail", "categories": ["no_such_category"]},
        headers=ana,
    )
    assert unknown.status_code == 422


def test_a_revised_verdict_leaves_the_collections_it_no_longer_belongs_in(bench) -> None:  # type: ignore[no-untyped-def]
    client, items = bench
    ana = credentials(client.app, "reviewer", "ana")  # type: ignore[arg-type]
    admin = credentials(client.app, "admin", "ada")  # type: ignore[arg-type]
    client.post("/v1/collections", json={"name": "regressions", "kind": "eval_suite"}, headers=admin)
    rule = {"name": "fails", "collection": "regressions", "condition": {"verdict": "fail"}}
    assert client.post("/v1/promotion-rules", json=rule, headers=admin).status_code == 201
    client.post("/v1/reviews", json={"output_id": items[0], "verdict": "fail"}, headers=ana)
    client.post("/v1/reviews", json={"output_id": items[1], "verdict": "fail"}, headers=ana)
    first = client.get("/v1/collections/regressions/versions/latest", headers=ana).json()
    assert (first["number"], first["items"]) == (1, 2)

    client.post("/v1/reviews/revisions", json={"output_id": items[0], "verdict": "pass"}, headers=ana)
    second = client.get("/v1/collections/regressions/versions/latest", headers=ana).json()
    assert (second["number"], second["items"]) == (2, 1)
    assert [e["bad_output"] for e in second["entries"]] == ["answer 1"]
