"""`review-router bench collections`: the curation loop end to end, as users drive it, with the figures
the exports and their leakage report give.

HaluEval QA questions are posted through the REST API, each with its hallucinated or its right answer
(a seeded coin; the label stays out of the payload), plus a few exact repeats from a second app. The
real worker scores and queues them; an admin makes a fine-tuning set and an eval suite with two
promotion rules; two reviewers claim and judge every item (a hallucination fails as a factual error
with the right answer as correction). Then each export and the leakage report are downloaded and
checked, and the CLI's export is compared with the API's bytes.

Everything lives in a temporary data dir (SQLite) or a PostgreSQL schema of its own, and an RQ queue
of its own; all are removed at the end. The data, the coin and the verdicts are the same every run;
output ids are new each run, so which side a failure lands on (a stable draw on its id), the blind
second reviews and the clusters vary, while the totals and every check do not.
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
import tempfile
import time
import uuid
from collections import Counter
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import httpx

from benchmarks.curation_data import REPO_ROOT, Posted, qa_outputs
from benchmarks.curation_report import FINETUNE, SHOWN, SUITE, check, report, summarize
from benchmarks.throughput import bench_schema, drop_work_queue, serving, signed_in
from core import exports
from service.progress import Progress
from service.settings import QueueConfig, Settings

CLI_CHECK = (FINETUNE, "openai-chat")


# --- the stack -------------------------------------------------------------------------------


@contextmanager
def database(database_url: str | None) -> Iterator[str]:
    """``""`` (SQLite in the data dir), or a PostgreSQL schema of its own, dropped afterwards."""
    if not database_url:
        yield ""
        return
    with bench_schema(database_url, prefix="bench_collections") as url:
        yield url


def people(settings: Settings) -> dict[str, str]:
    """Bearer tokens: an admin, two reviewers (ann, bob) and an ingest API key."""
    from service.storage import accounts
    from service.storage.db import engine_for, transaction, upgrade
    from service.storage.tables import utcnow

    engine = engine_for(settings)
    upgrade(engine)
    tokens: dict[str, str] = {}
    with transaction(engine) as session:
        now = utcnow()
        for name, role in (("admin", "admin"), ("ann", "reviewer"), ("bob", "reviewer")):
            tokens[name] = signed_in(session, username=name, role=role, now=now)
        tokens["ingest"], _ = accounts.create_api_key(session, name="halueval-qa", created_by=None, now=now)
    return tokens


# --- what users do ---------------------------------------------------------------------------


def post_outputs(client: httpx.Client, posted: list[Posted]) -> tuple[dict[str, Posted], Counter[str]]:
    """Post in batches of 100; returns the stored id of each output and how many were new."""
    ids: dict[str, Posted] = {}
    totals: Counter[str] = Counter()
    for start in range(0, len(posted), 100):
        chunk = posted[start : start + 100]
        r = client.post("/v1/outputs/batch", json={"outputs": [p.payload() for p in chunk]})
        r.raise_for_status()
        for result in r.json()["results"]:
            totals[result["status"]] += 1
            if result["id"]:
                ids[result["id"]] = chunk[result["index"]]
    return ids, totals


def set_up_collections(admin: httpx.Client) -> None:
    """The fine-tuning set and the eval suite, and a rule into each."""
    for name, kind in ((FINETUNE, "finetune_set"), (SUITE, "eval_suite")):
        admin.post("/v1/collections", json={"name": name, "kind": kind}).raise_for_status()
    rules = (
        ("fail-with-correction", FINETUNE, {"verdict": "fail", "has_correction": True}),
        ("factual-errors", SUITE, {"verdict": "fail", "categories": ["factual_error"]}),
    )
    for name, collection, condition in rules:
        body = {"name": name, "collection": collection, "condition": condition}
        admin.post("/v1/promotion-rules", json=body).raise_for_status()


def verdict(output_id: str, truth: Posted) -> dict[str, Any]:
    """What a careful reviewer answers: a hallucination fails with the right answer as correction."""
    if truth.hallucinated:
        return {
            "output_id": output_id,
            "verdict": "fail",
            "categories": ["factual_error"],
            "correction": truth.right_answer,
        }
    return {"output_id": output_id, "verdict": "pass", "categories": [], "correction": None}


def _work_the_queue(
    reviewers: dict[str, httpx.Client],
    truth: dict[str, Posted],
    modes: Counter[str],
    by: Counter[str],
    progress: Progress,
) -> set[str]:
    judged: set[str] = set()
    busy = True
    while busy:
        busy = False
        for name, client in reviewers.items():
            claim = client.post("/v1/queues/default/claims")
            claim.raise_for_status()
            if claim.status_code == 204:
                continue
            output_id, mode = claim.json()["item"]["output_id"], claim.json()["mode"]
            client.post("/v1/reviews", json=verdict(output_id, truth[output_id])).raise_for_status()
            modes[mode] += 1
            by[name] += 1
            judged.add(output_id)
            if mode == "review":
                progress.update(1)
            busy = True
    return judged


def review_everything(reviewers: dict[str, httpx.Client], truth: dict[str, Posted]) -> dict[str, Any]:
    """Reviewers take turns claiming the next item (blind second reviews come first) until the queue
    is empty; then whatever selection left out (junk, duplicates shown once) is judged by id."""
    modes: Counter[str] = Counter()
    by: Counter[str] = Counter()
    with Progress(total=len(truth), what="outputs judged") as progress:
        judged = _work_the_queue(reviewers, truth, modes, by, progress)
        names = list(reviewers)
        for n, output_id in enumerate(sorted(set(truth) - judged)):
            client = reviewers[names[n % len(names)]]
            client.post("/v1/reviews", json=verdict(output_id, truth[output_id])).raise_for_status()
            modes["by_id"] += 1
            by[names[n % len(names)]] += 1
            progress.update(1)
    return {
        "claimed": modes["review"],
        "second_reviews": modes["second_review"],
        "by_id": modes["by_id"],
        "by_reviewer": dict(sorted(by.items())),
    }


def download(client: httpx.Client, name: str) -> dict[str, Any]:
    """The latest version's exports (and again by its number: the same bytes) and its leakage report."""
    version = client.get(f"/v1/collections/{name}/versions/latest")
    version.raise_for_status()
    number = version.json()["number"]
    texts: dict[str, str] = {}
    headers: dict[str, dict[str, int]] = {}
    stable = True
    for fmt in exports.FORMATS:
        r = client.get(f"/v1/collections/{name}/versions/latest/export", params={"format": fmt})
        r.raise_for_status()
        again = client.get(f"/v1/collections/{name}/versions/{number}/export", params={"format": fmt})
        stable = stable and again.content == r.content and r.headers["x-collection-version"] == str(number)
        texts[fmt] = r.text
        headers[fmt] = {k: int(r.headers[f"x-{k}"]) for k in ("exported", "held-back", "skipped")}
    leakage = client.get(f"/v1/collections/{name}/versions/{number}/leakage")
    leakage.raise_for_status()
    return {
        "texts": texts,
        "headers": headers,
        "stable": stable,
        "leakage": leakage.json(),
        "items": version.json()["items"],
    }


def cli_export(settings: Settings, name: str, fmt: str, folder: Path) -> tuple[str, str]:
    """`review-router export NAME --format FMT --out FILE` in its own process; (file text, stderr)."""
    target = folder / f"cli-{name}-{fmt}"
    env = {
        **os.environ,
        "DATABASE_URL": settings.resolved_database_url,
        "RR_DATA_DIR": str(settings.data_dir),
        "HF_HUB_OFFLINE": "1",
        "PYTHONPATH": os.pathsep.join(filter(None, [str(REPO_ROOT), os.environ.get("PYTHONPATH")])),
    }
    done = subprocess.run(
        [sys.executable, "-m", "service.cli", "export", name, "--format", fmt, "--out", str(target)],
        cwd=folder,  # no stray .env from the caller's directory
        env=env,
        capture_output=True,
        text=True,
        timeout=120,
    )
    if done.returncode != 0:
        raise RuntimeError(f"review-router export failed ({done.returncode}): {done.stderr.strip()}")
    return target.read_text(encoding="utf-8"), done.stderr.strip()


# --- the run ---------------------------------------------------------------------------------


def bench_collections(
    *, database_url: str | None, redis_url: str, data: Path, items: int, seed: int = 7
) -> tuple[dict[str, Any], dict[str, dict[str, str]]]:
    """The whole scenario; returns its figures and each collection's exports by format."""
    from workers.main import run_worker

    repeats = max(2, items // 40)
    posted = qa_outputs(data, items, seed=seed, repeats=repeats)
    extra = len(posted) + 10
    t0 = time.perf_counter()
    with database(database_url) as url, tempfile.TemporaryDirectory(prefix="rr-bench-collections-") as tmp:
        settings = Settings(
            database_url=url,
            redis_url=redis_url,
            data_dir=Path(tmp),
            rq_queue=f"rr-bench-collections-{os.getpid()}-{uuid.uuid4().hex[:6]}",
            queues=[QueueConfig(name="default", budget_per_day=extra, backlog_limit=extra, audit_share=0.1)],
        )
        tokens = people(settings)
        try:
            with serving(settings) as base:

                def as_(who: str) -> httpx.Client:
                    auth = {"Authorization": f"Bearer {tokens[who]}", "Accept": "application/json"}
                    return httpx.Client(base_url=base, headers=auth, timeout=120)

                with as_("ingest") as ingest, as_("admin") as admin, as_("ann") as ann, as_("bob") as bob:
                    truth, accepted = post_outputs(ingest, posted)
                    run_worker(settings, burst=True)
                    statuses = admin.get("/v1/stats").json()["outputs"]
                    set_up_collections(admin)
                    reviews = review_everything({"ann": ann, "bob": bob}, truth)
                    got = {name: download(admin, name) for name in (FINETUNE, SUITE)}
            cli_text, cli_stderr = cli_export(settings, *CLI_CHECK, Path(tmp))
        finally:
            drop_work_queue(settings)
    problems = check(got, truth, repeats)
    same = cli_text == got[CLI_CHECK[0]]["texts"][CLI_CHECK[1]]
    if not same:
        problems.append("`review-router export` wrote other bytes than the API download")
    figures = {
        "items": items,
        "repeats": repeats,
        "seed": seed,
        "database": "postgresql" if url.startswith("postgresql") else "sqlite",
        "seconds": round(time.perf_counter() - t0, 1),
        "posted": len(posted),
        "ingest": dict(sorted(accepted.items())),
        "after_scoring": statuses,
        "reviews": reviews,
        "failed": sum(p.hallucinated for p in truth.values()),
        "passed": sum(not p.hallucinated for p in truth.values()),
        "collections": {name: summarize(one, truth) for name, one in got.items()},
        "cli_check": {
            "collection": CLI_CHECK[0],
            "format": CLI_CHECK[1],
            "bytes": len(cli_text.encode()),
            "same_as_api": same,
        },
        "cli_report": cli_stderr,
        "first_lines": {fmt: got[SHOWN[fmt]]["texts"][fmt].splitlines()[:2] for fmt in exports.FORMATS},
        "problems": problems,
    }
    return figures, {name: one["texts"] for name, one in got.items()}


def run_collections(
    *, database_url: str | None, redis_url: str, data: Path, items: int, out: Path, seed: int = 7
) -> int:
    """Run the scenario, print its figures, save them and the exports under ``out``; 1 if a check failed."""
    out.mkdir(parents=True, exist_ok=True)
    figures, texts = bench_collections(
        database_url=database_url, redis_url=redis_url, data=data, items=items, seed=seed
    )
    files = out / "collections-exports"
    shutil.rmtree(files, ignore_errors=True)  # only this run's versions, never an older run's
    files.mkdir()
    for name, by_format in texts.items():
        version = figures["collections"][name]["version"]
        for fmt, text in by_format.items():
            path = files / f"{name}-v{version}-{fmt}.{exports.EXTENSIONS[fmt]}"
            path.write_text(text, encoding="utf-8", newline="")
    (out / "collections.json").write_text(json.dumps(figures, indent=2, ensure_ascii=False))
    print(report(figures))
    print(f"written to {out / 'collections.json'} and {files}/")
    return 1 if figures["problems"] else 0
