"""A queue's webhook, called by a real worker over real HTTP: items waiting again and the budget
spent are announced once each; a receiver that hangs is cut off at the timeout and retried later,
and never holds up scoring or selection."""

from __future__ import annotations

import json
import threading
import time
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

import pytest
from redis import Redis
from rq.registry import ScheduledJobRegistry

from service import queueing
from service.settings import QueueConfig
from service.storage.db import transaction
from service.storage.tables import Pick
from tests.conftest import Database
from tests.integration.worker.test_jobs import enqueue, ingest
from workers.main import run_worker
from workers.runtime import use_runtime


class Receiver:
    """A webhook receiver on a free port: it records each JSON body, after ``delay`` seconds."""

    def __init__(self, delay: float = 0.0) -> None:
        self.calls: list[dict[str, Any]] = []
        receiver = self

        class Handler(BaseHTTPRequestHandler):
            def do_POST(self) -> None:
                time.sleep(receiver.delay)
                length = int(self.headers.get("Content-Length", "0"))
                receiver.calls.append(json.loads(self.rfile.read(length)))
                self.send_response(200)
                self.end_headers()

            def log_message(self, *args: object) -> None:
                pass

        self.delay = delay
        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.url = f"http://127.0.0.1:{self.server.server_address[1]}/hook"
        threading.Thread(target=self.server.serve_forever, daemon=True).start()

    def close(self) -> None:
        self.server.shutdown()
        self.server.server_close()


@pytest.fixture
def receiver() -> Iterator[Receiver]:
    hook = Receiver()
    yield hook
    hook.close()
    use_runtime(None)


@pytest.fixture
def backend() -> str:
    return "postgres"


def test_new_items_and_a_spent_budget_are_announced_once_each(
    fresh_db: Database, settings_for, receiver: Receiver
) -> None:  # type: ignore[no-untyped-def]
    queue = QueueConfig(name="support", budget_per_day=6, audit_share=0.0, webhook_url=receiver.url)
    settings = settings_for(fresh_db, queues=[queue], score_batch_size=16, public_url="https://rr.example")
    enqueue(settings, ingest(fresh_db, 30)[:1])
    run_worker(settings, burst=True)
    events = [c["event"] for c in receiver.calls]
    assert sorted(events) == ["budget_reached", "items_waiting"]
    waiting = next(c for c in receiver.calls if c["event"] == "items_waiting")
    assert waiting["queue"] == "support" and waiting["added"] == 6
    assert "<https://rr.example/ui/queues/support|open the queue>" in waiting["text"]

    # more traffic the same day: the queue is full and the budget spent, so nobody is called again
    enqueue(settings, ingest(fresh_db, 10, app="more")[:1])
    run_worker(settings, burst=True)
    assert len(receiver.calls) == 2


def test_a_hanging_webhook_is_cut_off_and_retried_without_holding_up_selection(
    fresh_db: Database, settings_for
) -> None:  # type: ignore[no-untyped-def]
    hanging = Receiver(delay=5.0)
    try:
        queue = QueueConfig(name="support", budget_per_day=4, audit_share=0.0, webhook_url=hanging.url)
        settings = settings_for(fresh_db, queues=[queue], score_batch_size=16, webhook_timeout_seconds=0.5)
        enqueue(settings, ingest(fresh_db, 20)[:1])
        started = time.monotonic()
        run_worker(settings, burst=True)
        assert time.monotonic() - started < 60
        with transaction(fresh_db.engine) as session:
            assert session.query(Pick).count() == 4  # selection was stored whatever the receiver did
        # each call gave up at the timeout and waits in RQ's schedule for its retry
        work = queueing.work_queue(Redis.from_url(settings.redis_url), settings)
        assert len(ScheduledJobRegistry(queue=work)) == 2
    finally:
        hanging.close()
        use_runtime(None)
