"""`review-router replay FILE`: the product judging itself on a labelled history.

It posts every row to a running instance through the REST API with an ingest key, waits for the
worker to score them, then plays reviewers through the queue's claims and verdicts, answering with
the file's labels, exactly as people would work the queue (the instance's own settings decide what
is picked, learned and re-ranked). It records what each claim brought, snapshots every output's
score as reviews accumulate, and reports (``core.lift``):

- lift over random at 5/10/20/30% of the pool reviewed, and the same for each single signal sorted
  alone (both directions);
- AUROC of the scores on the outputs still unreviewed, over time;
- picks and failure yield per stratum (uncertain, diverse, explore, audit, and audit+routed for an
  audit member routing chose too);
- the queue's own failure-rate estimate against the truth.

Use a queue of its own (route the replay's ``app`` to it) so other traffic never mixes in; items
that are not the replay's are skipped.
"""

from __future__ import annotations

import json
import time
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass, field
from typing import Any

import httpx
import numpy as np

from core import lift
from service.domain import ESTIMATED
from service.progress import Progress
from service.replay.data import Labelled

BATCH = 200
BATCH_BYTES = 900_000  # well under the default RR_MAX_BODY_BYTES (2 MB); completions with log-probs are big
PAGE = 2000


class ReplayError(RuntimeError):
    """The instance refused or never finished something the replay needs."""


@dataclass(frozen=True)
class ReplayOptions:
    url: str
    api_key: str
    reviewers: Sequence[tuple[str, str]]  # (username, password)
    queue: str = "default"
    app: str = "replay"
    shares: Sequence[float] = lift.SHARES
    reviews: int | None = None  # default: the largest share of the pool
    settle: bool = True  # wait for the worker after each verdict, as a person's pace would allow
    checkpoints: int = 12  # AUROC snapshots over the replay
    timeout: float = 1800.0  # for scoring the pool


@dataclass
class Claimed:
    output_id: str
    stratum: str
    inclusion_probability: float | None
    score: float | None
    failed: bool


@dataclass
class ReplayRun:
    """What happened, in order; ``report`` turns it into figures."""

    pool: dict[str, bool]  # output id -> failed
    claimed: list[Claimed] = field(default_factory=list)
    auroc: list[tuple[int, float | None]] = field(default_factory=list)  # (reviews so far, AUROC)
    signals: dict[str, dict[str, float | None]] = field(default_factory=dict)
    estimate: dict[str, Any] | None = None
    #: (reviews so far, the queue's stats then) at each reported share of the pool
    estimates: list[tuple[int, dict[str, Any]]] = field(default_factory=list)
    timings: dict[str, float] = field(default_factory=dict)
    rejected: int = 0
    second_reviews: int = 0
    #: Outputs the queue's estimate leaves out (junk, or not scored): its truth is the rest's.
    left_out: set[str] = field(default_factory=set)
    skipped_foreign: int = 0


class _Api:
    """The REST calls the replay makes, with the ingest key and one token per reviewer."""

    def __init__(self, opts: ReplayOptions) -> None:
        self.opts = opts
        self.http = httpx.Client(base_url=opts.url.rstrip("/"), timeout=120)
        self.key = {"Authorization": f"Bearer {opts.api_key}"}
        self.tokens = [self._sign_in(u, p) for u, p in opts.reviewers]
        if not self.tokens:
            raise ReplayError("a replay needs at least one reviewer account")

    def close(self) -> None:
        self.http.close()

    def _check(self, response: httpx.Response, what: str) -> httpx.Response:
        if response.status_code >= 400:
            try:
                error = response.json().get("error", {})
                message = f"{error.get('code')}: {error.get('message')}"
            except ValueError:
                message = response.text[:200]
            raise ReplayError(f"{what} failed with {response.status_code} ({message})")
        return response

    def _sign_in(self, username: str, password: str) -> dict[str, str]:
        response = self.http.post("/v1/sessions", json={"username": username, "password": password})
        token = self._check(response, f"signing in as {username}").json()["token"]
        return {"Authorization": f"Bearer {token}"}

    def post_batch(self, outputs: list[dict[str, Any]]) -> list[dict[str, Any]]:
        response = self.http.post("/v1/outputs/batch", json={"outputs": outputs}, headers=self.key)
        results: list[dict[str, Any]] = self._check(response, "posting outputs").json()["results"]
        return results

    def work(self) -> dict[str, Any] | None:
        response = self._check(self.http.get("/v1/stats", headers=self.key), "reading /v1/stats")
        work: dict[str, Any] | None = response.json().get("work")
        return work

    def _page(self, after: str, limit: int, **filters: str) -> dict[str, Any]:
        params: dict[str, str | int] = {"app": self.opts.app, "after": after, "limit": limit, **filters}
        response = self.http.get("/v1/outputs", params=params, headers=self.tokens[0])
        page: dict[str, Any] = self._check(response, "listing outputs").json()
        return page

    def outputs(self, *, signals: bool = False) -> list[dict[str, Any]]:
        """Every output of the replay's app, page by page."""
        items: list[dict[str, Any]] = []
        page = self._page("", PAGE, **({"signals": "true"} if signals else {}))
        items += page["items"]
        while page["next"] is not None:
            page = self._page(page["next"], PAGE, **({"signals": "true"} if signals else {}))
            items += page["items"]
        return items

    def any_with_status(self, status: str) -> bool:
        return bool(self._page("", 1, status=status)["items"])

    def claim(self, reviewer: int) -> dict[str, Any] | None:
        response = self.http.post(f"/v1/queues/{self.opts.queue}/claims", headers=self.tokens[reviewer])
        if response.status_code == 204:
            return None
        claim: dict[str, Any] = self._check(response, "claiming").json()
        return claim

    def verdict(self, reviewer: int, output_id: str, failed: bool) -> None:
        body = {"output_id": output_id, "verdict": "fail" if failed else "pass", "note": "replay"}
        self._check(
            self.http.post("/v1/reviews", json=body, headers=self.tokens[reviewer]), "recording a verdict"
        )

    def skip(self, reviewer: int, output_id: str) -> None:
        self._check(
            self.http.post(f"/v1/outputs/{output_id}/skip", headers=self.tokens[reviewer]), "skipping"
        )

    def queue_stats(self) -> dict[str, Any]:
        response = self.http.get(f"/v1/queues/{self.opts.queue}/stats", headers=self.tokens[0])
        stats: dict[str, Any] = self._check(response, "reading the queue's stats").json()
        return stats


def _wait(condition: Callable[[], bool], *, timeout: float, what: str, poll: float = 0.05) -> None:
    deadline = time.monotonic() + timeout
    while not condition():
        if time.monotonic() > deadline:
            raise ReplayError(f"timed out after {timeout:.0f} s waiting for {what}")
        time.sleep(poll)


def _idle(api: _Api) -> bool:
    work = api.work()
    return work is None or (work["queued"] == 0 and work["running"] == 0)


def batches(items: Sequence[Labelled]) -> Iterator[list[Labelled]]:
    """Consecutive batches of at most ``BATCH`` outputs and about ``BATCH_BYTES`` of JSON."""
    chunk: list[Labelled] = []
    size = 0
    for item in items:
        length = len(json.dumps(item.payload))
        if chunk and (len(chunk) >= BATCH or size + length > BATCH_BYTES):
            yield chunk
            chunk, size = [], 0
        chunk.append(item)
        size += length
    if chunk:
        yield chunk


def ingest(api: _Api, items: Sequence[Labelled], run: ReplayRun, say: Callable[[str], None]) -> None:
    """Post the pool in batches; remember each accepted output's id and label."""
    t0 = time.perf_counter()
    with Progress(total=len(items), what="outputs posted") as progress:
        for chunk in batches(items):
            for result in api.post_batch([i.payload for i in chunk]):
                if result["status"] == "error":
                    run.rejected += 1
                    continue
                run.pool[result["id"]] = chunk[result["index"]].failed
            progress.update(len(chunk))
    run.timings["ingest_s"] = time.perf_counter() - t0
    say(f"posted {len(items)} outputs in {run.timings['ingest_s']:.1f} s ({run.rejected} rejected)")


def scores(api: _Api) -> dict[str, float | None]:
    return {o["id"]: o["score"] for o in api.outputs()}


def review(api: _Api, run: ReplayRun, target: int, say: Callable[[str], None]) -> None:
    """Reviewers take turns claiming and judging until ``target`` verdicts or an empty queue."""
    every = max(1, target // max(1, api.opts.checkpoints))
    shares = {lift.reviews_at(s, len(run.pool)) for s in api.opts.shares}
    marks = shares | set(range(every, target + 1, every))
    t0 = time.perf_counter()
    with Progress(total=target, what="reviews") as progress:
        _review_loop(api, run, target, say, marks, shares, progress)
    run.timings["review_s"] = time.perf_counter() - t0


def _review_loop(
    api: _Api,
    run: ReplayRun,
    target: int,
    say: Callable[[str], None],
    marks: set[int],
    shares: set[int],
    progress: Progress,
) -> None:
    reviewer, empty = 0, 0
    while len(run.claimed) < target:
        claim = api.claim(reviewer)
        if claim is None:
            empty += 1
            if empty > 3:
                say(f"the queue has nothing more for the reviewers after {len(run.claimed)} reviews")
                break
            _wait(lambda: _idle(api), timeout=120, what="the worker to refill the queue", poll=0.2)
            continue
        empty = 0
        item = claim["item"]
        output_id = item["output_id"]
        if output_id not in run.pool:
            api.skip(reviewer, output_id)
            run.skipped_foreign += 1
            continue
        failed = run.pool[output_id]
        api.verdict(reviewer, output_id, failed)
        if claim["mode"] == "second_review":
            run.second_reviews += 1
        else:
            run.claimed.append(
                Claimed(output_id, claim_stratum(item), item["inclusion_probability"], item["score"], failed)
            )
            progress.update(1)
            if len(run.claimed) in marks:
                reviewed = {c.output_id for c in run.claimed}
                area = lift.unreviewed_auroc(scores(api), run.pool, reviewed)
                run.auroc.append((len(run.claimed), area))
                found = sum(c.failed for c in run.claimed)
                say(
                    f"  {len(run.claimed):5d} reviews, {found} failures; AUROC on the unreviewed {_fmt(area)}"
                )
            if len(run.claimed) in shares:
                run.estimates.append((len(run.claimed), api.queue_stats()))
        reviewer = (reviewer + 1) % len(api.tokens)
        if api.opts.settle:
            _wait(lambda: _idle(api), timeout=300, what="the worker after a verdict", poll=0.02)


def _fmt(x: float | None, digits: int = 3) -> str:
    return "-" if x is None else f"{x:.{digits}f}"


def replay(items: Sequence[Labelled], opts: ReplayOptions, say: Callable[[str], None] = print) -> ReplayRun:
    """Post, wait for scoring, review, and collect what happened (figures: ``report``)."""
    api = _Api(opts)
    run = ReplayRun(pool={})
    try:
        t_all = time.perf_counter()
        ingest(api, items, run, say)
        t0 = time.perf_counter()
        _wait(
            lambda: not api.any_with_status("received") and _idle(api),
            timeout=opts.timeout,
            what="the worker to score the pool",
            poll=0.5,
        )
        run.timings["scoring_s"] = time.perf_counter() - t0
        say(f"scored in {run.timings['scoring_s']:.1f} s")
        run.auroc.append((0, lift.unreviewed_auroc(scores(api), run.pool, set())))
        say(f"  cold start: AUROC {_fmt(run.auroc[0][1])}")
        target = opts.reviews or lift.reviews_at(max(opts.shares), len(run.pool))
        review(api, run, min(target, len(run.pool)), say)
        outputs = api.outputs(signals=True)
        run.signals = {o["id"]: o["signals"] or {} for o in outputs}
        run.left_out = {o["id"] for o in outputs if o.get("status") not in ESTIMATED and o["id"] in run.pool}
        run.estimate = api.queue_stats()
        run.timings["total_s"] = time.perf_counter() - t_all
    finally:
        api.close()
    return run


def claim_stratum(item: dict[str, Any]) -> str:
    """The claim's stratum, an audit member routing chose too (``routed``) apart from one it had not:
    routing chose the first for its score, so it fails about as often as routing's picks, and the
    ``audit`` row alone no longer reads as a uniform draw that fails far above the traffic's rate.
    Neither row is the audit's own yield; the queue's estimate (``core.estimate``) is."""
    if item["stratum"] == "audit" and item.get("routed"):
        return "audit+routed"
    return str(item["stratum"])


def report(run: ReplayRun, shares: Sequence[float] = lift.SHARES) -> dict[str, Any]:
    """The replay's figures as JSON-ready data."""
    ids = list(run.pool)
    failed = np.array([run.pool[i] for i in ids], dtype=bool)
    base = float(failed.mean()) if len(failed) else 0.0
    order = [c.failed for c in run.claimed]
    routed = {
        lift.share_label(s): lift.lift_at(order, pool=len(ids), base_rate=base, share=s) for s in shares
    }
    counted = [run.pool[i] for i in ids if i not in run.left_out]
    signal_rows = lift.signal_lifts([run.signals.get(i, {}) for i in ids], failed.tolist(), shares)
    return {
        "pool": len(ids),
        "failures": int(failed.sum()),
        "base_rate": base,
        "reviews": len(run.claimed),
        "failures_found": int(sum(order)),
        "lift": routed,
        "failures_found_curve": np.cumsum(order).astype(int).tolist(),
        "auroc_unreviewed": [{"reviews": n, "auroc": a} for n, a in run.auroc],
        "strata": lift.by_stratum([c.stratum for c in run.claimed], order),
        "signals": [row.__dict__ for row in signal_rows],
        "estimate": {
            "queue_stats": run.estimate,
            # what the estimate is about: the pool less junk (and outputs scoring gave up on)
            "truth": float(np.mean(counted)) if counted else base,
            "outputs": len(counted),
            "left_out": len(ids) - len(counted),
        },
        "estimate_curve": [
            {"reviews": n, **{k: stats.get(k) for k in ("estimate", "audit_only")}}
            for n, stats in run.estimates
        ],
        "second_reviews": run.second_reviews,
        "rejected": run.rejected,
        "skipped_foreign": run.skipped_foreign,
        "timings_s": {k: round(v, 1) for k, v in run.timings.items()},
    }
