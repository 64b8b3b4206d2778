"""Text that storage, the encoder or a page cannot take, and integers no column holds, are refused
with a 4xx in the one envelope on SQLite and PostgreSQL, and one bad item never costs the others."""

from __future__ import annotations

import json
from collections.abc import Iterator

import pytest
from fastapi.testclient import TestClient

from tests.conftest import Database, credentials, rolled_back_app

NUL = "\x00"
SURROGATE = "\ud800"
HUGE = 2**63


@pytest.fixture
def client(db: Database, settings_for) -> Iterator[TestClient]:  # type: ignore[no-untyped-def]
    with (
        rolled_back_app(db, settings_for(db)) as app,
        TestClient(app, headers=credentials(app, "admin", "ana"), raise_server_exceptions=False) as c,
    ):
        yield c


def post(client: TestClient, url: str, body: object):  # type: ignore[no-untyped-def]
    """POST JSON as applications send it: json.dumps escapes a lone surrogate as \\ud800."""
    return client.post(url, content=json.dumps(body), headers={"Content-Type": "application/json"})


def output(**fields: object) -> dict[str, object]:
    return {"prompt": "Where is the Eiffel Tower?", "response": "In Paris.", **fields}


@pytest.mark.parametrize(
    ("fields", "where"),
    [
        ({"response": f"In Paris{NUL}."}, "response"),
        ({"external_id": f"a{NUL}b"}, "external_id"),
        ({"metadata": {"tier": f"gold{NUL}"}}, "metadata.tier"),
        ({"metadata": {f"ti{SURROGATE}er": "gold"}}, "metadata.ti\ufffder (key)"),
        ({"samples": ["fine", f"{SURROGATE} bad"]}, "samples[1]"),
        (
            {"prompt": None, "messages": [{"role": "user", "content": f"Where{SURROGATE}?"}]},
            "messages[0].content",
        ),
    ],
)
def test_text_that_cannot_be_stored_is_refused_with_a_422_that_says_where(
    client: TestClient, fields: dict[str, object], where: str
) -> None:
    body = {k: v for k, v in output(**fields).items() if v is not None}
    r = post(client, "/v1/outputs", body)
    assert r.status_code == 422, r.text
    error = r.json()["error"]
    assert error["code"] == "validation_failed"
    assert where in str(error["details"]) and (
        "NUL" in str(error["details"]) or "surrogate" in str(error["details"])
    )
    assert client.get("/v1/stats").json()["total"] == 0
    # the connection still answers normally afterwards
    assert client.post("/v1/outputs", json=output()).status_code == 202


def test_a_bad_item_in_a_batch_costs_only_itself(client: TestClient) -> None:
    outputs = [
        output(external_id="good-1"),
        output(external_id="nul", response=f"bad{NUL}"),
        output(external_id="surrogate", response=f"bad{SURROGATE}"),
        output(external_id="good-2"),
    ]
    r = post(client, "/v1/outputs/batch", {"outputs": outputs})
    assert r.status_code == 202, r.text
    results = r.json()["results"]
    assert [x["status"] for x in results] == ["accepted", "error", "error", "accepted"]
    assert "NUL" in str(results[1]) and "surrogate" in str(results[2])
    assert client.get("/v1/stats").json()["total"] == 2


def test_a_promotion_rule_with_unstorable_text_is_refused_and_the_rules_stay_readable(
    client: TestClient,
) -> None:
    client.post("/v1/collections", json={"name": "refusals", "kind": "eval_suite"})
    rule = {"name": "r", "collection": "refusals", "condition": {"categories": [f"ref{SURROGATE}"]}}
    assert post(client, "/v1/promotion-rules", rule).status_code == 422
    assert client.get("/v1/promotion-rules").status_code == 200
    assert client.get("/ui/collections").status_code == 200


def test_huge_integers_are_refused_not_passed_to_the_database(client: TestClient) -> None:
    client.post("/v1/collections", json={"name": "suite", "kind": "eval_suite"})
    for url, code in [
        (f"/v1/queues/default/items?offset={HUGE}", 422),
        (f"/v1/collections/suite/versions/{HUGE}", 400),
        (f"/v1/collections/suite/versions/{HUGE}/export", 400),
        (f"/v1/collections/suite/versions/{HUGE}/leakage", 400),
        (f"/v1/collections/suite/diff?from=1&to={HUGE}", 422),
        (f"/ui/collections/suite?v={HUGE}", 422),
    ]:
        r = client.get(url)
        assert r.status_code == code, (url, r.status_code, r.text[:200])
        if url.startswith("/v1"):
            assert "error" in r.json()


def test_nul_or_invalid_utf8_in_the_path_query_or_a_form_is_a_400(client: TestClient) -> None:
    for url in ["/v1/outputs/abc%00def", "/v1/qc?queue=x%00", "/v1/outputs?app=%ff%fe"]:
        r = client.get(url)
        assert r.status_code == 400, (url, r.status_code)
        assert r.json()["error"]["code"] == "bad_request"
    form = client.post(
        "/ui/collections",
        content=b"name=a%00b&kind=eval_suite",
        headers={"Content-Type": "application/x-www-form-urlencoded"},
    )
    assert form.status_code == 400


def test_numbers_json_does_not_have_are_refused_not_stored(client: TestClient) -> None:
    # Python's JSON reader takes NaN and -Infinity; PostgreSQL's JSON does not (found by fuzzing).
    for raw in [
        '{"prompt": "p", "response": "r", "metadata": {"x": -Infinity}}',
        '{"prompt": "p", "response": "r", "metadata": {"x": [NaN]}}',
    ]:
        r = client.post("/v1/outputs", content=raw, headers={"Content-Type": "application/json"})
        assert r.status_code == 422 and "not a finite number" in r.text, r.text
    assert client.get("/v1/stats").json()["total"] == 0
