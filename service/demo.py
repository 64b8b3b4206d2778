"""The demo: the whole system on embedded defaults, fed real HaluEval responses through the REST API."""

from __future__ import annotations

import gzip
import json
import logging
import secrets
import threading
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx

from service.settings import Settings

log = logging.getLogger("review_router.demo")
POST_BATCH = 100
DEMO_ADMIN = "admin"
DEMO_KEY_NAME = "demo-loader"


def halueval_outputs(path: Path, count: int) -> Iterator[dict[str, Any]]:
    """HaluEval general rows as review-router outputs (the human label stays out of the payload)."""
    with gzip.open(path, "rt", encoding="utf-8") as fh:
        for n, line in enumerate(fh):
            if n >= count:
                return
            row = json.loads(line)
            yield {
                "external_id": f"halueval-general-{row['ID']}",
                "app": "halueval-demo",
                "model": "gpt-3.5-turbo",
                "messages": [{"role": "user", "content": row["user_query"]}],
                "response": row["chatgpt_response"],
                "metadata": {"source": "HaluEval general (MIT)"},
            }


def post_all(client: httpx.Client, outputs: list[dict[str, Any]]) -> dict[str, int]:
    """Post outputs in batches; returns how many were new, repeats and errors."""
    totals = {"accepted": 0, "duplicates": 0, "errors": 0}
    for start in range(0, len(outputs), POST_BATCH):
        r = client.post("/v1/outputs/batch", json={"outputs": outputs[start : start + POST_BATCH]})
        r.raise_for_status()
        body = r.json()
        for key in totals:
            totals[key] += body[key]
    return totals


def wait_until_scored(client: httpx.Client, *, timeout: float) -> dict[str, int]:
    """Poll the stats until nothing is left unscored and the queues have settled."""
    deadline = time.monotonic() + timeout
    last: dict[str, int] = {}
    while time.monotonic() < deadline:
        counts = client.get("/v1/stats").json()["outputs"]
        if counts["received"] == 0 and counts == last:
            return counts
        last = counts
        time.sleep(1.0)
    return last


def demo_credentials(settings: Settings) -> tuple[str, str, str]:
    """The demo's admin (a new random password each run, printed) and a fresh ingest key.

    Keys from earlier demo runs are revoked, so only the one in use is live.
    """
    from service import auth
    from service.storage import accounts
    from service.storage.db import engine_for, transaction
    from service.storage.tables import utcnow

    password = secrets.token_urlsafe(9)
    with transaction(engine_for(settings)) as session:
        now = utcnow()
        admin = accounts.find_user(session, username=DEMO_ADMIN)
        if admin is None:
            accounts.add_user(
                session,
                username=DEMO_ADMIN,
                password_hash=auth.hash_password(password),
                role="admin",
                now=now,
            )
        else:
            accounts.update_user(
                session, user=admin, role="admin", active=True, password_hash=auth.hash_password(password)
            )
        for old in accounts.list_api_keys(session):
            if old.name == DEMO_KEY_NAME and old.revoked_at is None:
                accounts.revoke_api_key(session, key_id=old.id, now=now)
        key, _ = accounts.create_api_key(session, name=DEMO_KEY_NAME, created_by=None, now=now)
    return DEMO_ADMIN, password, key


def _load(
    settings: Settings, base_url: str, data: Path, count: int, started: threading.Event, key: str
) -> None:
    if not started.wait(60):
        log.error("the server did not start")
        return
    outputs = list(halueval_outputs(data, count))
    headers = {"Authorization": f"Bearer {key}"}
    with httpx.Client(base_url=base_url, timeout=60, headers=headers) as client:
        t0 = time.perf_counter()
        posted = post_all(client, outputs)
        ingest_s = time.perf_counter() - t0
        counts = wait_until_scored(client, timeout=600)
    scored = counts.get("scored", 0) + counts.get("queued", 0) + counts.get("reviewed", 0)
    queued = counts.get("queued", 0)
    first = settings.queues[0].name
    print(
        f"\nposted {len(outputs)} HaluEval responses in {ingest_s:.1f}s ({posted['accepted']} new, "
        f"{posted['duplicates']} already stored, {posted['errors']} rejected); "
        f"scored {scored}; queued {queued} for review\n"
        f"review queue: {base_url}/ui/queues/{first}    API docs: {base_url}/docs    (Ctrl-C to stop)\n",
        flush=True,
    )


def run_demo(settings: Settings, *, data: Path, count: int, host: str, port: int) -> int:
    """Start everything, post ``count`` real responses, print the queue URL; run until Ctrl-C."""
    import uvicorn

    from service.app import create_app
    from service.stack import embedded_stack

    if not data.exists():
        raise SystemExit(f"demo data not found: {data}")
    base_url = settings.public_url or f"http://{host}:{port}"
    with embedded_stack(settings) as running:
        username, password, key = demo_credentials(running)
        print(
            f"sign in at {base_url}/ui/login as {username} / {password}   "
            f"(demo ingest key: {key[:10]}…; make your own with `review-router keys create NAME`)",
            flush=True,
        )
        server = uvicorn.Server(
            uvicorn.Config(create_app(running, sweeper=True), host=host, port=port, log_level="warning")
        )
        started = threading.Event()
        loader = threading.Thread(
            target=_load, args=(running, base_url, data, count, started, key), daemon=True, name="demo-loader"
        )
        loader.start()
        watcher = threading.Thread(target=_signal_when_started, args=(server, started), daemon=True)
        watcher.start()
        server.run()
    return 0


def _signal_when_started(server: Any, started: threading.Event) -> None:
    while not server.started and not server.should_exit:
        time.sleep(0.05)
    if server.started:
        started.set()
