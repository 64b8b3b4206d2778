"""Per-key ingest limits, counted in the real Redis and shared by every API process."""

from __future__ import annotations

from collections.abc import Iterator

import pytest
from fastapi import FastAPI
from fastapi.testclient import TestClient
from redis import Redis

from service import ratelimit
from service.auth import Principal
from service.errors import TooManyRequests
from tests.conftest import Database, credentials, rolled_back_app


@pytest.fixture
def app(db: Database, settings_for) -> Iterator[FastAPI]:  # type: ignore[no-untyped-def]
    with rolled_back_app(db, settings_for(db, ingest_rate_per_minute=0)) as application:
        yield application


def output(i: int) -> dict[str, object]:
    return {"prompt": f"question {i}", "response": "answer"}


def test_a_key_past_its_own_limit_gets_429_with_retry_after_and_nothing_is_stored(app: FastAPI) -> None:
    admin = TestClient(app, headers=credentials(app, "admin"))
    made = admin.post("/v1/api-keys", json={"name": "limited", "rate_per_minute": 3}).json()
    assert made["rate_per_minute"] == 3
    limited = TestClient(app, headers={"Authorization": f"Bearer {made['key']}"})
    free = TestClient(app, headers=credentials(app, "app", "unlimited"))
    assert [limited.post("/v1/outputs", json=output(i)).status_code for i in range(3)] == [202] * 3
    refused = limited.post("/v1/outputs", json=output(3))
    assert refused.status_code == 429 and refused.json()["error"]["code"] == "too_many_requests"
    assert 1 <= int(refused.headers["Retry-After"]) <= 61
    assert refused.json()["error"]["details"]["limit_per_minute"] == 3
    batch = limited.post("/v1/outputs/batch", json={"outputs": [output(10), output(11)]})
    assert batch.status_code == 429
    # another key is not held back, and the refused outputs were never stored
    assert (
        free.post("/v1/outputs/batch", json={"outputs": [output(i) for i in range(20, 30)]}).status_code
        == 202
    )
    assert admin.get("/v1/stats").json()["total"] == 13


def test_the_window_counts_outputs_and_gives_back_what_it_refused(redis_url: str) -> None:
    redis = Redis.from_url(redis_url)
    key = Principal(kind="api_key", id="k-window-test", name="k", role="app", rate_per_minute=None)
    now = 1_000_000 * 60 + 30.0  # halfway through a window
    redis.delete(f"rr:rate:{key.id}:{int(now // 60)}")
    ratelimit.take(redis, key, 4, default=5, now=now)
    with pytest.raises(TooManyRequests) as refused:
        ratelimit.take(redis, key, 2, default=5, now=now)
    assert refused.value.details["retry_after"] == 31
    ratelimit.take(redis, key, 1, default=5, now=now)  # the refused 2 were given back: 5 of 5
    ratelimit.take(redis, key, 5, default=5, now=now + 30)  # a new window
    person = Principal(kind="user", id="u", name="ana", role="admin")
    ratelimit.take(redis, person, 10_000, default=5, now=now)  # people signed in are not limited
