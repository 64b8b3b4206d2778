"""The whole loop over real HTTP: post outputs, a worker scores them, a reviewer works the queue."""

from __future__ import annotations

import re
import threading
import time
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest
import uvicorn

from core.scoring import SIGNALS
from service.app import create_app
from service.demo import halueval_outputs
from service.settings import QueueConfig, Settings
from service.storage.db import engine_for, session_factory
from tests.conftest import PASSWORD, Database, credentials_in
from workers.main import run_worker
from workers.runtime import use_runtime

DATA = Path(__file__).resolve().parents[2] / "data" / "halueval" / "general_data.jsonl.gz"
XSS = '<script>alert("x")</script><img src=x onerror="alert(1)">'


@pytest.fixture
def server(fresh_db: Database, settings_for) -> Iterator[tuple[str, Settings]]:  # type: ignore[no-untyped-def]
    settings = settings_for(
        fresh_db, queues=[QueueConfig(name="default", budget_per_day=10, audit_share=0.0)], qc_share=0.0
    )
    config = uvicorn.Config(create_app(settings), host="127.0.0.1", port=0, log_level="warning")
    srv = uvicorn.Server(config)
    thread = threading.Thread(target=srv.run, daemon=True)
    thread.start()
    deadline = time.monotonic() + 20
    while not srv.started and time.monotonic() < deadline:
        time.sleep(0.02)
    assert srv.started, "server did not start"
    port = srv.servers[0].sockets[0].getsockname()[1]
    sessions = session_factory(engine_for(settings))
    credentials_in(sessions, "reviewer", "ana")
    yield f"http://127.0.0.1:{port}", settings
    srv.should_exit = True
    thread.join(10)
    use_runtime(None)


def test_posted_outputs_are_scored_queued_and_reviewed_over_http(server) -> None:  # type: ignore[no-untyped-def]
    base, settings = server
    outputs = list(halueval_outputs(DATA, 30))
    outputs[0] = {**outputs[0], "response": XSS}
    keys = accounts_of(server)
    admin = keys["admin"]
    with httpx.Client(base_url=base, timeout=30, headers=keys["app"]) as app_client:
        single = app_client.post("/v1/outputs", json=outputs[0])
        assert single.status_code == 202
        batch = app_client.post("/v1/outputs/batch", json={"outputs": outputs[1:]})
        assert batch.status_code == 202 and batch.json()["accepted"] == 29
        # An application's key ingests and nothing else.
        assert app_client.get("/v1/queues/default/items").status_code == 403
    with httpx.Client(base_url=base, timeout=30, headers=admin) as client:
        assert client.get("/v1/stats").json()["outputs"]["received"] == 30

        run_worker(settings, burst=True)

        stats = client.get("/v1/stats").json()["outputs"]
        assert stats["received"] == 0 and stats["queued"] == 10 and stats["scored"] == 20
        items = client.get("/v1/queues/default/items").json()
        assert items["total"] == 10
        scores = [i["score"] for i in items["items"]]
        assert scores == sorted(scores, reverse=True)
        first = items["items"][0]
        detail = client.get(f"/v1/outputs/{first['output_id']}").json()
        assert detail["status"] == "queued" and detail["pick"]["reason"] == first["reason"]
        assert set(detail["signals"]) == set(SIGNALS)
        assert detail["signals"]["novelty"] is not None and detail["signals"]["mean_nll"] is None

        page = client.get("/ui/queues/default")
        assert page.status_code == 200 and first["output_id"] in page.text
    with httpx.Client(base_url=base, timeout=30) as browser:
        sign_in(browser, "ana")
        opened = browser.get(f"/ui/outputs/{first['output_id']}")
        assert opened.status_code == 200 and "Nobody holds this item" in opened.text  # looking claims nothing
        form = browser.post(
            f"/ui/outputs/{first['output_id']}/review",
            data={
                "verdict": "fail",
                "categories": ["factual_error", "hallucination"],
                "correction": "Fixed.",
                "csrf_token": csrf_of(opened.text),
            },
        )
        assert form.status_code == 303 and form.headers["location"].startswith("/ui/queues/default/next")
        following = browser.get(form.headers["location"])
        assert following.headers["location"] == f"/ui/outputs/{items['items'][1]['output_id']}?recorded=fail"
    with httpx.Client(base_url=base, timeout=30, headers=admin) as client:
        reviewed = client.get(f"/v1/outputs/{first['output_id']}").json()
        assert reviewed["status"] == "reviewed"
        assert reviewed["reviews"][0] | {"id": None, "created_at": None} == {
            "id": None,
            "created_at": None,
            "output_id": first["output_id"],
            "verdict": "fail",
            "categories": ["factual_error", "hallucination"],
            "correction": "Fixed.",
            "note": None,
            "reviewer": "ana",
            "kind": "primary",
            "queue": "default",
        }
        assert client.get("/v1/queues").json()[0]["reviewed_today"] == 1


def sign_in(browser: httpx.Client, username: str) -> None:
    """Sign in through the login form, as a browser does (its double-submit token included)."""
    page = browser.get("/ui/login")
    token = re.search(r'name="login_csrf" value="([^"]+)"', page.text)
    assert token is not None
    done = browser.post(
        "/ui/login", data={"username": username, "password": PASSWORD, "login_csrf": token[1], "next": "/ui/"}
    )
    assert done.status_code == 303 and "rr_session" in browser.cookies


def csrf_of(html: str) -> str:
    found = re.search(r'name="csrf_token" value="([^"]+)"', html)
    assert found is not None, "the page has no CSRF token"
    return found[1]


def test_model_output_is_shown_as_inert_text(server) -> None:  # type: ignore[no-untyped-def]
    base, _ = server
    with httpx.Client(base_url=base, timeout=30, headers=accounts_of(server)["admin"]) as client:
        out = client.post("/v1/outputs", json={"prompt": XSS, "response": XSS, "samples": [XSS]}).json()
        page = client.get(f"/ui/outputs/{out['id']}")
        assert page.status_code == 200
        assert "<script>alert" not in page.text and "<img src=x" not in page.text
        assert "&lt;script&gt;alert(&#34;x&#34;)&lt;/script&gt;" in page.text
        missing = client.get("/ui/outputs/missing", headers={"accept": "text/html"})
        assert missing.status_code == 404 and "text/html" in missing.headers["content-type"]


def accounts_of(server: tuple[str, Settings]) -> dict[str, dict[str, str]]:
    """Fresh credentials on the running server's database: an ingest key and an admin."""
    sessions = session_factory(engine_for(server[1]))
    return {"app": credentials_in(sessions, "app"), "admin": credentials_in(sessions, "admin")}
