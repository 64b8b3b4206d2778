"""PostgreSQL restarted under ingest (a private cluster the test crashes with `pg_ctl stop -m
immediate` and starts again): requests during the outage get a 503 envelope with Retry-After, never a
traceback, and the service recovers by itself, without a restart, when the database is back."""

from __future__ import annotations

import time
from collections.abc import Iterator

import pytest
from fastapi.testclient import TestClient

from service.app import create_app
from service.storage.db import make_engine, upgrade
from tests.conftest import Database, credentials
from tests.servers import PrivatePostgres


@pytest.fixture
def private_pg() -> Iterator[tuple[PrivatePostgres, Database]]:
    server = PrivatePostgres()
    server.start()
    engine = make_engine(server.url)
    upgrade(engine)
    yield server, Database("postgres", server.url, engine)
    engine.dispose()
    server.close()


def test_a_database_restart_is_a_503_with_retry_after_and_the_service_recovers(
    private_pg: tuple[PrivatePostgres, Database], settings_for
) -> None:  # type: ignore[no-untyped-def]
    server, pg = private_pg
    app = create_app(settings_for(pg))
    key = credentials(app, "app")
    with TestClient(app, raise_server_exceptions=False) as client:
        post = {"prompt": "Where is the Eiffel Tower?", "response": "In Paris."}
        assert client.post("/v1/outputs", json=post, headers=key).status_code == 202
        server.crash()
        started = time.monotonic()
        for _ in range(3):
            down = client.post("/v1/outputs", json=post, headers=key)
            assert down.status_code == 503, down.text
            assert down.json()["error"]["code"] == "unavailable"
            assert down.headers["Retry-After"] == "5"
            assert "Traceback" not in down.text and "psycopg" not in down.text
        server.start()
        restarted = time.monotonic()
        deadline = time.monotonic() + 30
        while (back := client.post("/v1/outputs", json=post, headers=key)).status_code != 202:
            assert back.status_code == 503 and time.monotonic() < deadline, back.text
            time.sleep(0.2)
        down_s, back_s = restarted - started, time.monotonic() - restarted
        print(f"\nPostgreSQL restart drill: down {down_s:.1f} s; ingest back {back_s:.2f} s later")
        # what was accepted before the crash is still there, and nothing was stored twice
        assert client.get("/v1/stats", headers=key).json()["total"] == 2
