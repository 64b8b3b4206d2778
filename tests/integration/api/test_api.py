"""The REST API on real SQLite and PostgreSQL (rolled back per test) and a real Redis."""

from __future__ import annotations

from collections.abc import Iterator

import pytest
from fastapi.testclient import TestClient
from redis import Redis
from rq import Queue

from service.settings import Settings
from tests.conftest import Database, credentials, rolled_back_app

COMPLETION = {
    "id": "chatcmpl-1",
    "object": "chat.completion",
    "model": "gpt-4o-mini",
    "choices": [
        {
            "index": 0,
            "message": {"role": "assistant", "content": "The Eiffel Tower is in Berlin."},
            "logprobs": {
                "content": [
                    {"token": "The", "logprob": -0.1, "top_logprobs": [{"token": "The", "logprob": -0.1}]},
                    {
                        "token": " Berlin",
                        "logprob": -4.2,
                        "top_logprobs": [
                            {"token": " Paris", "logprob": -0.3},
                            {"token": " Berlin", "logprob": -4.2},
                        ],
                    },
                ]
            },
            "finish_reason": "stop",
        },
        {"index": 1, "message": {"role": "assistant", "content": "It is in Paris."}, "finish_reason": "stop"},
    ],
}


@pytest.fixture
def api(db: Database, settings_for) -> Iterator[tuple[TestClient, Settings]]:  # type: ignore[no-untyped-def]
    settings = settings_for(db, max_body_bytes=50_000, max_batch_outputs=5)
    with (
        rolled_back_app(db, settings) as app,
        TestClient(app, headers=credentials(app, "admin", "ana")) as client,
    ):
        yield client, settings


def waiting_jobs(settings: Settings) -> int:
    return len(Queue(settings.rq_queue, connection=Redis.from_url(settings.redis_url)))


def test_posting_an_sdk_completion_is_accepted_and_enqueued(api) -> None:  # type: ignore[no-untyped-def]
    client, settings = api
    r = client.post(
        "/v1/outputs",
        json={
            "external_id": "ticket-1",
            "app": "support",
            "messages": [{"role": "user", "content": "Where is it?"}],
            "completion": COMPLETION,
            "metadata": {"ticket": 1},
        },
    )
    assert r.status_code == 202, r.text
    body = r.json()
    assert body["status"] == "received" and body["duplicate"] is False
    assert waiting_jobs(settings) == 1
    stored = client.get(f"/v1/outputs/{body['id']}").json()
    assert stored["response"] == "The Eiffel Tower is in Berlin."
    assert stored["samples"] == ["It is in Paris."]
    assert stored["model"] == "gpt-4o-mini" and stored["metadata"] == {"ticket": 1}
    assert stored["score"] is None and stored["pick"] is None


def test_a_repeat_is_idempotent_and_a_changed_repeat_conflicts(api) -> None:  # type: ignore[no-untyped-def]
    client, settings = api
    payload = {"external_id": "e-1", "prompt": "q", "response": "a"}
    first = client.post("/v1/outputs", json=payload)
    again = client.post("/v1/outputs", json=payload)
    assert (first.status_code, again.status_code) == (202, 200)
    assert again.json()["id"] == first.json()["id"] and again.json()["duplicate"] is True
    assert waiting_jobs(settings) == 1
    changed = client.post("/v1/outputs", json={**payload, "response": "b"})
    assert changed.status_code == 409
    assert changed.json()["error"]["code"] == "conflict"
    assert client.get("/v1/stats").json()["total"] == 1


def test_batch_keeps_good_items_when_one_is_bad(api) -> None:  # type: ignore[no-untyped-def]
    client, settings = api
    outputs = [
        {"external_id": "b-1", "prompt": "q1", "response": "a1"},
        {"external_id": "b-2", "prompt": "q2"},
        {"external_id": "b-1", "prompt": "q1", "response": "a1"},
        {"external_id": "b-3", "prompt": "q3", "completion": COMPLETION},
    ]
    r = client.post("/v1/outputs/batch", json={"outputs": outputs})
    assert r.status_code == 202
    body = r.json()
    assert [x["status"] for x in body["results"]] == ["accepted", "error", "duplicate", "accepted"]
    assert body["results"][1]["error"]["code"] == "validation_failed"
    assert (body["accepted"], body["duplicates"], body["errors"]) == (2, 1, 1)
    assert body["results"][2]["id"] == body["results"][0]["id"]
    assert waiting_jobs(settings) == 1  # one scoring job for the whole batch
    again = client.post("/v1/outputs/batch", json={"outputs": outputs[:1]})
    assert again.status_code == 200 and again.json()["duplicates"] == 1


def test_oversized_batches_and_bodies_get_413(api) -> None:  # type: ignore[no-untyped-def]
    client, _ = api
    many = [{"prompt": "q", "response": str(i)} for i in range(6)]
    r = client.post("/v1/outputs/batch", json={"outputs": many})
    assert r.status_code == 413 and r.json()["error"]["code"] == "payload_too_large"
    big = client.post("/v1/outputs", json={"prompt": "q", "response": "x" * 60_000})
    assert big.status_code == 413 and big.json()["error"]["details"] == {"max_body_bytes": 50_000}

    def chunks() -> Iterator[bytes]:  # no Content-Length: the limit still holds while streaming
        yield b'{"prompt": "q", "response": "'
        for _ in range(10):
            yield b"y" * 10_000
        yield b'"}'

    streamed = client.post("/v1/outputs", content=chunks(), headers={"content-type": "application/json"})
    assert streamed.status_code == 413
    assert client.get("/v1/stats").json()["total"] == 0


@pytest.mark.parametrize(
    "method, path, body, status, code",
    [
        ("post", "/v1/outputs", {"prompt": "q"}, 422, "validation_failed"),
        ("post", "/v1/outputs", b"{not json", 400, "bad_request"),
        ("get", "/v1/outputs/nope", None, 404, "not_found"),
        ("get", "/v1/queues/nope/items", None, 404, "not_found"),
        ("get", "/v1/nothing-here", None, 404, "not_found"),
        ("delete", "/v1/outputs", None, 405, "method_not_allowed"),
        ("post", "/v1/reviews", {"output_id": "nope", "verdict": "pass"}, 404, "not_found"),
        ("post", "/v1/reviews", {"output_id": "x", "verdict": "maybe"}, 422, "validation_failed"),
    ],
)
def test_bad_requests_get_the_one_error_envelope(api, method, path, body, status, code) -> None:  # type: ignore[no-untyped-def]
    client, _ = api
    kwargs = (
        {"content": body, "headers": {"content-type": "application/json"}}
        if isinstance(body, bytes)
        else ({"json": body} if body is not None else {})
    )
    r = client.request(method.upper(), path, **kwargs)
    assert r.status_code == status
    error = r.json()["error"]
    assert error["code"] == code and error["message"]
    assert "Traceback" not in r.text


def test_reviewing_an_unscored_output_is_refused_and_nothing_is_lost(api) -> None:  # type: ignore[no-untyped-def]
    client, _ = api
    out = client.post("/v1/outputs", json={"prompt": "q", "response": "a"}).json()
    r = client.post("/v1/reviews", json={"output_id": out["id"], "verdict": "fail"})
    assert r.status_code == 409
    assert client.get(f"/v1/outputs/{out['id']}").json()["status"] == "received"


def test_ingest_still_answers_when_redis_is_down(db: Database, settings_for) -> None:  # type: ignore[no-untyped-def]
    settings = settings_for(db, redis_url="redis://127.0.0.1:1/0")
    with rolled_back_app(db, settings) as app, TestClient(app, headers=credentials(app, "admin")) as client:
        r = client.post("/v1/outputs", json={"prompt": "q", "response": "a"})
        assert r.status_code == 202
        assert client.get(f"/v1/outputs/{r.json()['id']}").json()["status"] == "received"


def test_queues_are_listed_with_their_budgets(api) -> None:  # type: ignore[no-untyped-def]
    client, _ = api
    [queue] = client.get("/v1/queues").json()
    assert queue["name"] == "default" and queue["waiting"] == 0 and queue["budget_per_day"] == 50
    assert client.get("/v1/queues/default/items").json() == {
        "queue": "default",
        "total": 0,
        "items": [],
        "audit_waiting": 0,
    }
    assert client.get("/openapi.json").json()["paths"]["/v1/outputs"]["post"]


def test_outputs_are_listed_page_by_page_with_filters_and_signals_on_request(api) -> None:  # type: ignore[no-untyped-def]
    client, _ = api
    for i in range(5):
        app = "support" if i % 2 else "search"
        r = client.post(
            "/v1/outputs", json={"external_id": f"l-{i}", "app": app, "prompt": "q", "response": f"a{i}"}
        )
        assert r.status_code == 202
    first = client.get("/v1/outputs", params={"limit": 2}).json()
    assert len(first["items"]) == 2 and first["next"] == first["items"][-1]["id"]
    rest = client.get("/v1/outputs", params={"limit": 2, "after": first["next"]}).json()
    last = client.get("/v1/outputs", params={"limit": 2, "after": rest["next"]}).json()
    assert len(last["items"]) == 1 and last["next"] is None
    everything = first["items"] + rest["items"] + last["items"]
    assert sorted(o["external_id"] for o in everything) == [f"l-{i}" for i in range(5)]
    assert all(o["status"] == "received" and o["score"] is None and o["signals"] is None for o in everything)
    support = client.get("/v1/outputs", params={"app": "support", "signals": "true"}).json()["items"]
    assert {o["external_id"] for o in support} == {"l-1", "l-3"} and all(o["signals"] == {} for o in support)
    assert client.get("/v1/outputs", params={"status": "reviewed"}).json() == {"items": [], "next": None}
    bad = client.get("/v1/outputs", params={"status": "lost"})
    assert bad.status_code == 422 and bad.json()["error"]["code"] == "validation_failed"


def test_stats_say_how_much_work_the_workers_have(api) -> None:  # type: ignore[no-untyped-def]
    client, settings = api
    assert client.get("/v1/stats").json()["work"] == {"queued": 0, "running": 0}
    client.post("/v1/outputs", json={"external_id": "w-1", "prompt": "q", "response": "a"})
    assert client.get("/v1/stats").json()["work"] == {"queued": waiting_jobs(settings), "running": 0}
    assert waiting_jobs(settings) == 1
