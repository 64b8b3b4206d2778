"""`review-router bench ui`: fill PostgreSQL with a month of reviewed traffic, then time what a
reviewer waits on (the queue list and queue page, claiming the next item by API and by page, the item
page, a verdict post) by the server's own clock (the ``Server-Timing`` header), with the client's
round trip for reference.

Everything happens in a PostgreSQL schema of its own, dropped at the end unless ``keep``.
"""

from __future__ import annotations

import json
import os
import re
import tempfile
import time
from collections.abc import Callable, Sequence
from dataclasses import asdict, dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import httpx
import numpy as np
from sqlalchemy import Engine, text

from benchmarks.throughput import bench_schema, drop_work_queue, serving, signed_in
from benchmarks.ui_fill import fill
from service.cli.replay import commit
from service.progress import Progress
from service.settings import QueueConfig, Settings

TARGET_P95_MS = 50.0
HEAD_LINE = "bench ui on {rows} outputs (PostgreSQL {postgres}, {cpu_threads} CPUs, load {load_average_1min})"
FILL_LINE = (
    "  fill {seconds:.1f} s: {outputs} outputs ({reviewed} reviewed, {waiting} waiting, {scored} scored, "
    "{junk} junk), {picks} picks, {reviews} reviews, {selections} selections, {reviewers} reviewers"
)
_DUR = re.compile(r"app;dur=([0-9.]+)")


@dataclass(frozen=True)
class PageTiming:
    """Percentiles of one page's server time (Server-Timing) and client round trip, in ms."""

    page: str
    n: int
    server_p50: float
    server_p95: float
    client_p50: float
    client_p95: float
    statuses: dict[str, int]


# --- isolation -------------------------------------------------------------------------------


# --- timing ----------------------------------------------------------------------------------


Call = Callable[[], httpx.Response]


def measure(
    page: str, calls: Sequence[Call], *, warmup: int, after: Callable[[httpx.Response], None] | None = None
) -> PageTiming:
    """Send each request (``after`` runs untimed on each answer); the first ``warmup`` are not counted."""
    server: list[float] = []
    client: list[float] = []
    statuses: dict[str, int] = {}
    with Progress(total=len(calls), what=f"requests ({page})") as progress:
        for n, call in enumerate(calls):
            _time_one(page, n, call, warmup=warmup, after=after, into=(server, client, statuses))
            progress.update(1)
    return _timing(page, server, client, statuses)


def _time_one(
    page: str,
    n: int,
    call: Call,
    *,
    warmup: int,
    after: Callable[[httpx.Response], None] | None,
    into: tuple[list[float], list[float], dict[str, int]],
) -> None:
    server, client, statuses = into
    t0 = time.perf_counter()
    try:
        response = call()
    except httpx.TransportError as exc:  # the server dropped the connection, e.g. after a 500
        statuses[type(exc).__name__] = statuses.get(type(exc).__name__, 0) + 1
        print(f"  {page}: {exc!r}")
        return
    elapsed = (time.perf_counter() - t0) * 1000
    statuses[str(response.status_code)] = statuses.get(str(response.status_code), 0) + 1
    if after is not None:
        after(response)
    if response.status_code >= 400:
        # Counted in the statuses, left out of the times: an error page is no measure of the page.
        print(f"  {page}: {response.status_code} on {response.request.url.path}: {response.text[:200]}")
        return
    if n < warmup:
        return
    found = _DUR.search(response.headers.get("server-timing", ""))
    if found is None:
        raise RuntimeError(f"{page}: the answer has no Server-Timing header")
    server.append(float(found.group(1)))
    client.append(elapsed)


def _timing(page: str, server: list[float], client: list[float], statuses: dict[str, int]) -> PageTiming:
    def pct(values: list[float], q: int) -> float:
        return round(float(np.percentile(values, q)), 2) if values else 0.0

    return PageTiming(
        page, len(server), pct(server, 50), pct(server, 95), pct(client, 50), pct(client, 95), statuses
    )


def _verdict_form(n: int, taxonomy: Sequence[str]) -> dict[str, Any]:
    """Every third verdict a fail with two categories and a correction; every fifth with a note."""
    form: dict[str, Any] = {"verdict": "pass", "correction": "", "note": "" if n % 5 else "seen in the bench"}
    if n % 3 == 0:
        form["verdict"] = "fail"
        form["categories"] = [taxonomy[n % len(taxonomy)], taxonomy[(n + 1) % len(taxonomy)]]
        form["correction"] = "A corrected answer."
    return form


#: A reviewer's usual narrowing: words in the text and a score floor.
FILTER = "q=the&min_score=0.3"


def time_pages(
    base: str, token: str, settings: Settings, *, items: Sequence[str], requests: int, warmup: int
) -> list[PageTiming]:
    """The queue list and queue page; claiming the next item (API and page, each released again);
    then each of ``items`` opened and judged (which answers 303); then the item list, a claim and
    the queue page with a filter (text search and a score floor)."""
    total = warmup + requests
    opened = items[:total]
    api = {"Accept": "application/json"}
    headers = {"Authorization": f"Bearer {token}", "Accept": "text/html"}
    with httpx.Client(base_url=base, headers=headers, timeout=60, follow_redirects=False) as client:

        def release(output_id: str) -> None:
            client.delete(f"/v1/outputs/{output_id}/claim", headers=api).raise_for_status()

        def release_claimed(r: httpx.Response) -> None:
            if r.status_code == 200:
                release(r.json()["item"]["output_id"])

        def release_opened(r: httpx.Response) -> None:
            location = r.headers.get("location", "")
            if location.startswith("/ui/outputs/"):
                release(location.split("/")[3].split("?")[0])

        def get(path: str) -> Call:
            return lambda: client.get(path)

        def post(path: str, **kwargs: Any) -> Call:
            return lambda: client.post(path, **kwargs)

        taxonomy = settings.failure_categories
        return [
            measure("queue list", [get("/ui/")] * total, warmup=warmup),
            measure("queue page", [get("/ui/queues/default")] * total, warmup=warmup),
            measure(
                "API claim",
                [post("/v1/queues/default/claims", headers=api)] * total,
                warmup=warmup,
                after=release_claimed,
            ),
            measure(
                "next item", [get("/ui/queues/default/next")] * total, warmup=warmup, after=release_opened
            ),
            measure("item page", [get(f"/ui/outputs/{oid}") for oid in opened], warmup=warmup),
            measure(
                "verdict post",
                [
                    post(f"/ui/outputs/{oid}/review", data=_verdict_form(n, taxonomy))
                    for n, oid in enumerate(opened)
                ],
                warmup=warmup,
            ),
            # Last: a filter set on the queue page stays on (a cookie) for the next-item walk.
            measure(
                "API items, filtered", [get(f"/v1/queues/default/items?{FILTER}")] * total, warmup=warmup
            ),
            measure(
                "API claim, filtered",
                [post(f"/v1/queues/default/claims?{FILTER}", headers=api)] * total,
                warmup=warmup,
                after=release_claimed,
            ),
            measure("queue page, filtered", [get(f"/ui/queues/default?{FILTER}")] * total, warmup=warmup),
        ]


# --- the run ---------------------------------------------------------------------------------


def _reviewer_session(engine: Engine) -> tuple[str, list[str]]:
    """An admin signed in by bearer token, and the waiting items, most likely failures first."""
    from sqlalchemy import select

    from service.storage.db import transaction
    from service.storage.tables import Pick

    with transaction(engine) as session:
        token = signed_in(session, username="bench-admin", role="admin", now=datetime.now(UTC))
        waiting = select(Pick.output_id).where(Pick.queue == "default", Pick.reviewed_at.is_(None))
        items = list(session.scalars(waiting.order_by(Pick.score.desc(), Pick.picked_at)))
    return token, items


def bench_ui(
    *,
    database_url: str,
    redis_url: str,
    data: Path,
    rows: int,
    requests: int,
    warmup: int = 20,
    keep: bool = False,
) -> dict[str, Any]:
    """Fill a schema of its own with ``rows`` outputs, then time each page ``requests`` times."""
    from service.storage.db import engine_for, upgrade

    waiting = max(warmup + requests + 50, rows // 200)
    with (
        bench_schema(database_url, prefix="bench_ui", keep=keep) as url,
        tempfile.TemporaryDirectory(prefix="rr-bench-ui-") as tmp,
    ):
        settings = Settings(
            database_url=url,
            redis_url=redis_url,
            data_dir=Path(tmp),
            rq_queue=f"rr-bench-ui-{os.getpid()}",
            queues=[QueueConfig(name="default", budget_per_day=waiting, backlog_limit=waiting)],
        )
        engine = engine_for(settings)
        try:
            upgrade(engine)
            counts = fill(engine, settings, data=data, rows=rows, waiting=waiting)
            token, items = _reviewer_session(engine)
            with serving(settings) as base:
                pages = time_pages(base, token, settings, items=items, requests=requests, warmup=warmup)
            # Other work on the machine shows up in the p95: say how busy it was while timing.
            load = round(os.getloadavg()[0], 2)
            with engine.connect() as conn:
                version = str(conn.execute(text("SHOW server_version")).scalar())
                recorded = conn.execute(
                    text("SELECT count(*) FROM reviews WHERE reviewer = 'bench-admin'")
                ).scalar()
        finally:
            drop_work_queue(settings)
            engine.dispose()
    return {
        "commit": commit(),
        "rows": rows,
        "requests_per_page": requests,
        "warmup": warmup,
        "postgres": version,
        "cpu_threads": os.cpu_count(),
        "load_average_1min": load,
        "target_p95_ms": TARGET_P95_MS,
        "fill": asdict(counts),
        "verdicts_recorded": recorded,
        "pages": [asdict(p) for p in pages],
    }


def failed_requests(figures: dict[str, Any]) -> int:
    """How many timed or warm-up requests were answered 4xx or 5xx, or not at all."""
    return sum(
        n
        for p in figures["pages"]
        for code, n in p["statuses"].items()
        if not code.isdigit() or int(code) >= 400
    )


def report(figures: dict[str, Any]) -> str:
    """The figures as the table the command prints."""
    lines = [
        HEAD_LINE.format(**figures),
        FILL_LINE.format(**figures["fill"]),
        f"  {'page':<22}{'n':>5}{'p50 ms':>9}{'p95 ms':>9}   client p50/p95 ms   statuses",
    ]
    for p in figures["pages"]:
        codes = " ".join(f"{code}x{n}" for code, n in sorted(p["statuses"].items()))
        lines.append(
            f"  {p['page']:<22}{p['n']:>5}{p['server_p50']:>9.1f}{p['server_p95']:>9.1f}"
            f"   {p['client_p50']:>7.1f} / {p['client_p95']:<7.1f}   {codes}"
        )
    lines.append(f"  verdicts recorded by the bench: {figures['verdicts_recorded']}")
    slow = [p["page"] for p in figures["pages"] if p["server_p95"] > figures["target_p95_ms"]]
    target = f"p95 under {figures['target_p95_ms']:.0f} ms"
    lines.append(f"  {target}: {'met by every page' if not slow else 'missed by ' + ', '.join(slow)}")
    return "\n".join(lines)


def run_ui(
    *,
    database_url: str,
    redis_url: str,
    data: Path,
    rows: int,
    requests: int,
    out: Path,
    warmup: int = 20,
    keep: bool = False,
) -> int:
    """Run the UI benchmark, print its table and save the figures as JSON; 1 if any request failed."""
    figures = bench_ui(
        database_url=database_url,
        redis_url=redis_url,
        data=data,
        rows=rows,
        requests=requests,
        warmup=warmup,
        keep=keep,
    )
    out.mkdir(parents=True, exist_ok=True)
    (out / "ui.json").write_text(json.dumps(figures, indent=2))
    print(report(figures))
    print(f"written to {out / 'ui.json'}")
    return 1 if failed_requests(figures) else 0
