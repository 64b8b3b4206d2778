"""Collections over HTTP on real SQLite and PostgreSQL (rolled back per test): roles, promotion,
rules, versions, diffs, downloads with their leakage report, and the collection pages."""

from __future__ import annotations

import json
from collections.abc import Iterator
from typing import Any

import pytest
from fastapi import FastAPI
from fastapi.testclient import TestClient

from review_ui.pages import templates
from service.storage import collections as store
from service.storage.tables import utcnow
from tests.conftest import Database, credentials, rolled_back_app
from tests.integration.storage.test_collections import judge, output, rules_on, vector


@pytest.fixture
def app(db: Database, settings_for) -> Iterator[FastAPI]:  # type: ignore[no-untyped-def]
    with rolled_back_app(db, settings_for(db)) as app:
        yield app


def client(app: FastAPI, role: str) -> TestClient:
    return TestClient(app, headers=credentials(app, role))


def reviewed(app: FastAPI, prompt: str, **fields: Any) -> str:
    """An output with a failed verdict and a correction; returns the output id."""
    embedding = fields.pop("embedding", None)
    with app.state.sessions() as session, session.begin():
        row = output(session, prompt, fields.pop("response", "wrong"), embedding=embedding)
        return judge(session, row, **fields).output_id


def test_admins_create_collections_and_readers_only_read(app: FastAPI) -> None:
    admin, viewer = client(app, "admin"), client(app, "viewer")
    made = admin.post("/v1/collections", json={"name": "support-regressions", "kind": "eval_suite"})
    assert made.status_code == 201 and made.json()["latest"] is None
    refused = viewer.post("/v1/collections", json={"name": "x", "kind": "eval_suite"})
    assert refused.status_code == 403 and refused.json()["error"]["code"] == "forbidden"
    assert [c["name"] for c in viewer.get("/v1/collections").json()] == ["support-regressions"]
    again = admin.post("/v1/collections", json={"name": "support-regressions", "kind": "finetune_set"})
    assert again.status_code == 409
    bad = admin.post("/v1/collections", json={"name": "Bad Name", "kind": "eval_suite"})
    assert bad.status_code == 422 and bad.json()["error"]["code"] == "validation_failed"
    missing = viewer.get("/v1/collections/nope")
    assert missing.status_code == 404 and missing.json()["error"]["code"] == "not_found"


def test_a_reviewer_promotes_by_hand_and_downloads_the_same_bytes_again(app: FastAPI) -> None:
    admin, reviewer = client(app, "admin"), client(app, "reviewer")
    admin.post("/v1/collections", json={"name": "corrections", "kind": "finetune_set"})
    first = reviewed(app, "What is 2 + 2?", response="5", correction="4")
    promoted = reviewer.post("/v1/collections/corrections/promotions", json={"output_ids": [first]})
    assert promoted.status_code == 200 and promoted.json()["version"]["number"] == 1
    url = "/v1/collections/corrections/versions/1/export?format=openai-chat"
    download = reviewer.get(url)
    assert download.status_code == 200
    assert download.headers["x-held-back"] == "0" and download.headers["x-exported"] == "1"
    assert 'filename="corrections-v1-openai-chat.jsonl"' in download.headers["content-disposition"]
    assert json.loads(download.text)["messages"][-1] == {"role": "assistant", "content": "4"}
    second = reviewed(app, "What is 3 + 3?", response="7", correction="6")
    reviewer.post("/v1/collections/corrections/promotions", json={"output_ids": [second]})
    assert reviewer.get(url).content == download.content
    latest = reviewer.get("/v1/collections/corrections/versions/latest/export?format=openai-chat")
    assert latest.headers["x-collection-version"] == "2" and len(latest.text.splitlines()) == 2
    detail = reviewer.get("/v1/collections/corrections/versions/2").json()
    assert [e["provenance"]["output_id"] for e in detail["entries"]] == [first, second]
    diff = reviewer.get("/v1/collections/corrections/diff", params={"from": 1, "to": 2}).json()
    assert [d["output_id"] for d in diff["added"]] == [second] and diff["removed"] == []
    viewer = client(app, "viewer")
    assert (
        viewer.post("/v1/collections/corrections/promotions", json={"output_ids": [first]}).status_code == 403
    )


def test_an_unknown_format_or_version_is_refused_in_the_envelope(app: FastAPI) -> None:
    admin = client(app, "admin")
    admin.post("/v1/collections", json={"name": "suite", "kind": "eval_suite"})
    admin.post("/v1/collections/suite/promotions", json={"output_ids": [reviewed(app, "q")]})
    assert admin.get("/v1/collections/suite/versions/1/export?format=xml").status_code == 422
    assert admin.get("/v1/collections/suite/versions/one/export").json()["error"]["code"] == "bad_request"
    assert admin.get("/v1/collections/suite/versions/9/export").status_code == 404


def test_the_leakage_report_says_what_the_finetune_export_held_back(app: FastAPI) -> None:
    admin = client(app, "admin")
    admin.post("/v1/collections", json={"name": "suite", "kind": "eval_suite"})
    admin.post("/v1/collections", json={"name": "tune", "kind": "finetune_set"})
    base = vector(7)
    in_suite = reviewed(app, "Refund for order 1?", embedding=base)
    twin = reviewed(app, "Refund for order 2?", embedding=vector(8, near=base))
    admin.post("/v1/collections/suite/promotions", json={"output_ids": [in_suite]})
    admin.post("/v1/collections/tune/promotions", json={"output_ids": [twin]})
    download = admin.get("/v1/collections/tune/versions/1/export?format=openai-dpo")
    assert download.headers["x-held-back"] == "1" and download.text == ""
    assert "/leakage" in download.headers["link"]
    report = admin.get("/v1/collections/tune/versions/1/leakage").json()
    assert report["checked_against"] == {"suite": 1}
    assert report["held_back"][0]["output_id"] == twin
    assert report["held_back"][0]["matches"][0]["output_id"] == in_suite


def test_rules_are_managed_by_admins_and_rerun_over_history(app: FastAPI) -> None:
    admin, reviewer = client(app, "admin"), client(app, "reviewer")
    admin.post("/v1/collections", json={"name": "refusals", "kind": "eval_suite"})
    old = reviewed(app, "Tell me a joke", categories=("refusal",))
    reviewed(app, "Format this", categories=("formatting",))
    rule = {
        "name": "refusals",
        "collection": "refusals",
        "condition": {"verdict": "fail", "categories": ["refusal"]},
    }
    assert reviewer.post("/v1/promotion-rules", json=rule).status_code == 403
    made = admin.post("/v1/promotion-rules", json=rule)
    assert made.status_code == 201 and made.json()["condition"]["categories"] == ["refusal"]
    bad = admin.post("/v1/promotion-rules", json={**rule, "name": "x", "condition": {"colour": "red"}})
    assert bad.status_code == 422
    assert admin.post("/v1/promotion-rules/rerun", json={}).json() == {"versions": {"refusals": 1}}
    assert admin.post("/v1/promotion-rules/rerun", json={}).json() == {"versions": {}}
    detail = admin.get("/v1/collections/refusals/versions/1").json()
    assert [e["provenance"]["output_id"] for e in detail["entries"]] == [old]
    assert detail["entries"][0]["provenance"]["rule"] == "refusals"
    off = admin.patch("/v1/promotion-rules/refusals", json={"active": False})
    assert off.json()["active"] is False
    assert admin.delete("/v1/promotion-rules/refusals").status_code == 204
    assert admin.get("/v1/promotion-rules").json() == []


def test_bulk_promotion_from_a_filter(app: FastAPI) -> None:
    admin = client(app, "admin")
    admin.post("/v1/collections", json={"name": "suite", "kind": "eval_suite"})
    hit = reviewed(app, "A", categories=("unsafe",))
    reviewed(app, "B", categories=("other",))
    body = {
        "verdict": "fail",
        "category": "unsafe",
        "reviewed_from": utcnow().date().isoformat() + "T00:00:00Z",
    }
    result = admin.post("/v1/collections/suite/promotions/bulk", json=body).json()
    assert result["matched"] == 1 and result["version"]["items"] == 1
    assert (
        admin.get("/v1/collections/suite/versions/1").json()["entries"][0]["provenance"]["output_id"] == hit
    )


def test_a_verdict_promoted_by_a_rule_reaches_the_export(app: FastAPI) -> None:
    admin = client(app, "admin")
    admin.post("/v1/collections", json={"name": "corrections", "kind": "finetune_set"})
    rule = {"name": "fixes", "collection": "corrections", "condition": {"has_correction": True}}
    admin.post("/v1/promotion-rules", json=rule)
    with app.state.sessions() as session, session.begin():
        review = judge(session, output(session, "Capital of Peru?", "Quito"), correction="Lima")
        rules_on(session, review.id)
    lines = admin.get(
        "/v1/collections/corrections/versions/latest/export?format=openai-chat"
    ).text.splitlines()
    assert [json.loads(x)["messages"][-1]["content"] for x in lines] == ["Lima"]


def test_collection_pages_render_and_their_forms_promote(app: FastAPI) -> None:
    admin = client(app, "admin")
    made = admin.post("/ui/collections", data={"name": "suite", "kind": "eval_suite"}, follow_redirects=False)
    assert made.status_code == 303
    target = reviewed(app, "<script>alert(1)</script> question", response="<b>bold</b>")
    page = admin.get("/ui/collections/suite/promote", params={"verdict": "fail"})
    assert page.status_code == 200 and "1 verdict(s) match." in page.text
    assert "<script>alert(1)</script>" not in page.text and "&lt;script&gt;" in page.text
    promoted = admin.post("/ui/collections/suite/promote", data={"verdict": "fail"}, follow_redirects=False)
    assert promoted.status_code == 303 and "version+1" in promoted.headers["location"]
    one = admin.get("/ui/collections/suite")
    assert one.status_code == 200 and "/v1/collections/suite/versions/1/export?format=eval-jsonl" in one.text
    assert "<b>bold</b>" not in one.text and "&lt;b&gt;bold&lt;/b&gt;" in one.text
    again = admin.post(
        "/ui/collections/promote", data={"output_id": target, "collection": "suite"}, follow_redirects=False
    )
    assert again.headers["location"] == f"/ui/outputs/{target}?promoted=already+in+suite"
    listing = admin.get("/ui/collections")
    assert listing.status_code == 200 and "suite" in listing.text
    rule = admin.post(
        "/ui/collections/rules",
        data={"name": "unsafe", "collection": "suite", "verdict": "fail", "categories": ["unsafe"]},
        follow_redirects=False,
    )
    assert rule.status_code == 303
    assert (
        client(app, "viewer").post("/ui/collections/rules/rerun", follow_redirects=False).status_code == 403
    )


def test_the_promote_partial_posts_the_output_and_token_to_the_promote_route(app: FastAPI) -> None:
    admin = client(app, "admin")
    admin.post("/v1/collections", json={"name": "suite", "kind": "eval_suite"})
    with app.state.sessions() as session:
        html = templates.get_template("_promote.html").render(
            output_id="o-1", collections=store.list_collections(session), csrf_token="tok<en>"
        )
    assert 'action="/ui/collections/promote"' in html and 'value="o-1"' in html
    assert 'value="tok&lt;en&gt;"' in html and '<option value="suite">suite (eval suite)</option>' in html
    assert (
        templates.get_template("_promote.html").render(output_id="o", collections=[], csrf_token="t").strip()
        == ""
    )
