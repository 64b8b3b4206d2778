"""What the README's tables promise, where the API once answered otherwise (found by trying it)."""

from __future__ import annotations

from collections.abc import Iterator

import pytest
from fastapi import FastAPI
from fastapi.testclient import TestClient

from tests.conftest import Database, credentials, rolled_back_app


@pytest.fixture
def app(db: Database, settings_for) -> Iterator[FastAPI]:  # type: ignore[no-untyped-def]
    with rolled_back_app(db, settings_for(db)) as application:
        yield application


def as_(app: FastAPI, role: str) -> TestClient:
    return TestClient(app, headers=credentials(app, role))


def test_an_api_key_is_not_a_person(app: FastAPI) -> None:
    key = as_(app, "app")
    for method, url in [("GET", "/v1/me"), ("DELETE", "/v1/sessions/current")]:
        r = key.request(method, url)
        assert r.status_code == 403 and r.json()["error"]["code"] == "forbidden", (method, url)
    person = as_(app, "viewer")
    assert person.get("/v1/me").json()["role"] == "viewer"


def test_only_those_who_may_adjudicate_see_the_disagreements(app: FastAPI) -> None:
    for role in ("viewer", "reviewer"):
        assert as_(app, role).get("/v1/adjudications").status_code == 403, role
    assert as_(app, "admin").get("/v1/adjudications").status_code == 200


def test_json_sent_as_something_else_is_a_415(app: FastAPI) -> None:
    key = as_(app, "app")
    body = '{"prompt": "p", "response": "r"}'
    r = key.post("/v1/outputs", content=body, headers={"Content-Type": "text/plain"})
    assert r.status_code == 415 and r.json()["error"]["code"] == "unsupported_media_type"
    ok = key.post("/v1/outputs", content=body, headers={"Content-Type": "application/json; charset=utf-8"})
    assert ok.status_code == 202


def test_an_unknown_queue_in_the_qc_report_is_a_404(app: FastAPI) -> None:
    viewer = as_(app, "viewer")
    assert viewer.get("/v1/qc", params={"queue": "../../x"}).status_code == 404
    assert viewer.get("/v1/qc", params={"queue": "default"}).status_code == 200


def test_401_has_the_documented_code_and_messages_read_right(app: FastAPI) -> None:
    anonymous = TestClient(app)
    r = anonymous.get("/v1/outputs")
    assert r.status_code == 401 and r.json()["error"]["code"] == "unauthenticated"
    admin = as_(app, "admin")
    admin.post("/v1/collections", json={"name": "suite", "kind": "eval_suite"})
    missing = admin.get("/v1/collections/suite/versions/3").json()["error"]["message"]
    assert missing == "collection 'suite' has no version 3"
