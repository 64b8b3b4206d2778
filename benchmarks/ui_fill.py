"""The traffic `review-router bench ui` times the pages against: a month of HaluEval outputs with
signals, drivers, embeddings and neighbours, most of them picked and reviewed (some twice, blind),
a few hundred waiting in queue "default". Stored by PostgreSQL COPY, then ANALYZEd.
"""

from __future__ import annotations

import json
import time
import uuid
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import numpy as np
from sqlalchemy import Engine, text

from core.candidates import Candidate
from core.reasons import reason_for
from core.reviews import QCState, ReviewKind
from service.demo import halueval_outputs
from service.domain import OutputIn, normalize
from service.settings import Settings

DIMENSION = 384
REVIEWERS = 8
DAYS = 30
QUEUE = "default"

OUTPUT_COLUMNS = (
    "id", "external_id", "app", "model", "payload_hash", "prompt", "messages", "response",
    "finish_reason", "token_logprobs", "samples", "metadata", "status", "received_at", "signals",
    "score", "scorer_version", "drivers", "embedding", "scored_at", "claim_token", "claimed_until",
    "attempts", "sampling", "junk_reason", "queue", "similar",
)  # fmt: skip
PICK_COLUMNS = (
    "id", "output_id", "queue", "stratum", "reason", "score", "picked_at", "reviewed_at",
    "inclusion_probability", "selection_id", "cluster", "duplicates", "claimed_by", "claimed_until",
    "qc_state",
)  # fmt: skip
REVIEW_COLUMNS = (
    "id", "output_id", "queue", "verdict", "categories", "correction", "note", "reviewer",
    "created_at", "kind", "reviewer_id",
)  # fmt: skip
SELECTION_COLUMNS = ("id", "queue", "created_at", "window_size", "junk", "clusters", "noise")


@dataclass(frozen=True)
class FillCounts:
    """What the fill stored, and how long it took (inserts and ANALYZE)."""

    outputs: int
    reviewed: int
    waiting: int
    scored: int
    junk: int
    picks: int
    reviews: int
    selections: int
    reviewers: int
    seconds: float


def copy_rows(engine: Engine, table: str, columns: Sequence[str], rows: Iterable[Sequence[Any]]) -> int:
    """COPY rows into a table over the engine's psycopg connection; returns how many."""
    n = 0
    quoted = ", ".join(f'"{c}"' for c in columns)  # "similar" is a reserved word
    statement = f"COPY {table} ({quoted}) FROM STDIN"
    raw = engine.raw_connection()
    try:
        with raw.cursor() as cur, cur.copy(statement) as copy:  # type: ignore[attr-defined]
            for row in rows:
                copy.write_row(row)
                n += 1
        raw.commit()
    finally:
        raw.close()
    return n


def _signals(rng: np.random.Generator, score: float) -> dict[str, float | None]:
    def between(low: float, high: float) -> float:
        return round(float(rng.uniform(low, high)), 4)

    return {
        "mean_nll": between(0.2, 2.5),
        "sequence_nll": between(5, 400),
        "max_surprisal": between(2, 14),
        "mean_entropy": between(0.1, 3),
        "sample_dispersion": None,
        "semantic_entropy": None,
        "majority_disagreement": None,
        "novelty": round(0.3 * score + between(0, 0.4), 4),
        "failure_similarity": between(0.2, 0.95),
        "reviewed_novelty": between(0.1, 0.7),
        "empty": 0.0,
        "truncated": 1.0 if rng.random() < 0.02 else 0.0,
        "refusal": 1.0 if rng.random() < 0.03 else 0.0,
    }


def _drivers(
    rng: np.random.Generator, signals: dict[str, float | None], *, learned: bool
) -> list[dict[str, Any]]:
    """Flags first, then the top signals: percentile ranks (cold start) or log-odds (learned)."""
    flags: list[dict[str, Any]] = [{"flag": f} for f in ("truncated", "refusal") if signals[f] == 1.0]
    top = [
        str(n) for n in rng.permutation(["mean_nll", "max_surprisal", "novelty", "failure_similarity"])[:3]
    ]
    key, low, high = ("contribution", 0.05, 1.5) if learned else ("percentile", 0.4, 1.0)
    weights = sorted(rng.uniform(low, high, len(top)), reverse=True)
    return flags + [
        {"signal": n, "value": signals[n], key: round(float(w), 3)} for n, w in zip(top, weights, strict=True)
    ]


class Traffic:
    """The generated outputs: texts cycled from HaluEval, statuses, times, scores and embeddings."""

    def __init__(self, data: Path, *, rows: int, waiting: int, now: datetime, seed: int) -> None:
        self.rng = rng = np.random.default_rng(seed)
        self.rows = rows
        base = [OutputIn.model_validate(o) for o in halueval_outputs(data, rows)]
        self.texts = [(o, normalize(o), o.payload_hash()) for o in base]
        junk, scored = rows // 100, rows * 3 // 100
        reviewed = rows - waiting - junk - scored
        if reviewed < rows // 2:
            raise ValueError(f"{rows} rows are too few for {waiting} waiting items")
        older = ["reviewed"] * reviewed + ["scored"] * scored + ["junk"] * junk
        self.status = np.concatenate([rng.permutation(older), ["queued"] * waiting])
        # Received over the last DAYS days, oldest first, so the waiting items are the newest.
        self.received = [
            now - timedelta(seconds=float(a)) for a in sorted(rng.uniform(600, DAYS * 86400, rows))[::-1]
        ]
        self.scores = rng.beta(2, 5, rows)
        self.vectors = rng.standard_normal((rows, DIMENSION), dtype=np.float32)
        self.vectors /= np.linalg.norm(self.vectors, axis=1, keepdims=True)
        self.ids = [uuid.uuid4().hex for _ in range(rows)]
        self.reviewed_ix = np.flatnonzero(self.status == "reviewed")

    def count(self, status: str) -> int:
        return int((self.status == status).sum())

    def similar(self, i: int) -> list[dict[str, Any]]:
        """Five earlier reviewed outputs as its nearest neighbours, best first."""
        earlier = self.reviewed_ix[: np.searchsorted(self.reviewed_ix, i)]
        if not len(earlier):
            return []
        chosen = earlier[self.rng.integers(0, len(earlier), 5)]
        similarity = sorted(self.rng.uniform(0.5, 0.95, 5), reverse=True)
        return [
            {"id": self.ids[j], "similarity": round(float(s), 4)}
            for j, s in zip(chosen, similarity, strict=True)
        ]

    def output_row(self, i: int, drivers: list[dict[str, Any]], signals: dict[str, Any]) -> tuple[Any, ...]:
        o, norm, digest = self.texts[i % len(self.texts)]
        samples = (
            [self.texts[int(j)][1].response for j in self.rng.integers(0, len(self.texts), 5)]
            if self.rng.random() < 0.2
            else []
        )
        status, at, learned = str(self.status[i]), self.received[i], i > self.rows // 2
        return (
            self.ids[i], f"{o.external_id}-{i}", norm.app, norm.model, digest, norm.prompt,
            json.dumps(norm.messages), norm.response, "stop", None, json.dumps(samples),
            json.dumps(norm.metadata), status, at, json.dumps(signals), float(self.scores[i]),
            "learned-bench" if learned else "coldstart-v2", json.dumps(drivers), self.vectors[i].tobytes(),
            self.scored_at(i), None, None, 1,
            "caller: 5 samples" if samples else "off: no sampling endpoint configured",
            "exact repeat" if status == "junk" else None, QUEUE, json.dumps(self.similar(i)),
        )  # fmt: skip

    def scored_at(self, i: int) -> datetime:
        return self.received[i] + timedelta(seconds=1 + i % 50)

    def pick_row(
        self, i: int, drivers: list[dict[str, Any]], selections: list[tuple[str, datetime]]
    ) -> list[Any]:
        audit = self.rng.random() < 0.1
        stratum = "audit" if audit else str(self.rng.choice(["uncertain", "diverse", "novel"]))
        score = float(self.scores[i])
        context = ["drawn at random for the audit"] if audit else []
        reason = reason_for(Candidate(self.ids[i], score, drivers=drivers), context=context)
        day = min(DAYS, (self.received[i] - selections[0][1]).days + 1)
        cluster = None if audit else int(self.rng.integers(-1, 12))
        return [
            uuid.uuid4().hex, self.ids[i], QUEUE, stratum, reason, score,
            self.scored_at(i) + timedelta(minutes=5), None, 0.05 if audit else 1.0, selections[day][0],
            cluster, "[]", None, None, None,
        ]  # fmt: skip


def _verdict(rng: np.random.Generator, score: float, taxonomy: Sequence[str]) -> tuple[str, str, str | None]:
    """A verdict likelier to fail the higher the score, with categories and sometimes a correction."""
    if rng.random() >= 0.1 + 0.5 * score:
        return "pass", "[]", None
    categories = [str(c) for c in rng.choice(list(taxonomy), int(rng.integers(1, 3)), replace=False)]
    correction = "A corrected answer would say so plainly." if rng.random() < 0.5 else None
    return "fail", json.dumps(categories), correction


def review_rows(
    rng: np.random.Generator,
    settings: Settings,
    picks: list[list[Any]],
    users: list[tuple[str, str]],
    now: datetime,
) -> list[tuple[Any, ...]]:
    """A primary verdict on each pick given (marking it reviewed), a blind second one on a qc_share of
    them (agreed or disputed; the latest 50 still waiting), and an admin's ruling on half the disputes."""
    rows: list[tuple[Any, ...]] = []
    for n, pick in enumerate(picks):
        output_id, score, picked_at = pick[1], pick[5], pick[6]
        at = min(now - timedelta(seconds=1), picked_at + timedelta(hours=float(rng.uniform(0.1, 30))))
        first = int(rng.integers(0, len(users)))
        verdict, categories, correction = _verdict(rng, score, settings.failure_categories)
        note = "checked against the source" if rng.random() < 0.05 else None
        user_id, name = users[first]
        rows.append(
            (
                uuid.uuid4().hex,
                output_id,
                QUEUE,
                verdict,
                categories,
                correction,
                note,
                name,
                at,
                ReviewKind.PRIMARY.value,
                user_id,
            )
        )
        pick[7] = at
        if rng.random() >= settings.qc_share:
            continue
        if n >= len(picks) - 50:
            pick[14] = "waiting"
            continue
        second_id, second = users[(first + 1 + int(rng.integers(0, len(users) - 1))) % len(users)]
        again = verdict if rng.random() < 0.85 else ("pass" if verdict == "fail" else "fail")
        later = at + timedelta(minutes=float(rng.uniform(5, 600)))
        rows.append(
            (
                uuid.uuid4().hex,
                output_id,
                QUEUE,
                again,
                categories,
                None,
                None,
                second,
                later,
                ReviewKind.QC.value,
                second_id,
            )
        )
        pick[14] = (QCState.AGREED if again == verdict else QCState.DISPUTED).value
        if again != verdict and rng.random() < 0.5:
            pick[14] = QCState.RESOLVED.value
            rows.append(
                (
                    uuid.uuid4().hex,
                    output_id,
                    QUEUE,
                    again,
                    categories,
                    None,
                    "ruled",
                    "admin",
                    later,
                    ReviewKind.ADJUDICATION.value,
                    None,
                )
            )
    return rows  # fmt: skip


def _reviewers(engine: Engine, now: datetime) -> list[tuple[str, str]]:
    from service import auth
    from service.storage import accounts
    from service.storage.db import transaction

    password_hash = auth.hash_password(uuid.uuid4().hex)  # one hash: argon2 is slow on purpose
    with transaction(engine) as session:
        users = [
            accounts.add_user(
                session, username=f"reviewer-{i}", password_hash=password_hash, role="reviewer", now=now
            )
            for i in range(REVIEWERS)
        ]
        return [(u.id, u.username) for u in users]


def fill(
    engine: Engine, settings: Settings, *, data: Path, rows: int, waiting: int, seed: int = 7
) -> FillCounts:
    """Store ``rows`` outputs, ``waiting`` of them waiting in queue "default" and most of the rest
    reviewed, with reviewers, selections, picks and reviews; then ANALYZE."""
    started = time.perf_counter()
    now = datetime.now(UTC)
    traffic = Traffic(data, rows=rows, waiting=waiting, now=now, seed=seed)
    rng = traffic.rng
    users = _reviewers(engine, now)
    selections = [(uuid.uuid4().hex, now - timedelta(days=DAYS - d)) for d in range(DAYS + 1)]
    copy_rows(
        engine,
        "selections",
        SELECTION_COLUMNS,
        (
            (sid, QUEUE, at, 20000, int(rng.integers(0, 40)), int(rng.integers(3, 30)), 5)
            for sid, at in selections
        ),
    )
    outputs, picks, reviewed = [], [], []
    for i in range(rows):
        signals = _signals(rng, float(traffic.scores[i]))
        drivers = _drivers(rng, signals, learned=i > rows // 2)
        outputs.append(traffic.output_row(i, drivers, signals))
        if traffic.status[i] in ("reviewed", "queued"):
            picks.append(traffic.pick_row(i, drivers, selections))
            if traffic.status[i] == "reviewed":
                reviewed.append(picks[-1])
    n_outputs = copy_rows(engine, "outputs", OUTPUT_COLUMNS, outputs)
    del outputs
    reviews = review_rows(rng, settings, reviewed, users, now)
    n_picks = copy_rows(engine, "picks", PICK_COLUMNS, picks)
    n_reviews = copy_rows(engine, "reviews", REVIEW_COLUMNS, reviews)
    with engine.begin() as conn:
        conn.execute(text("ANALYZE"))
    return FillCounts(
        outputs=n_outputs,
        reviewed=traffic.count("reviewed"),
        waiting=traffic.count("queued"),
        scored=traffic.count("scored"),
        junk=traffic.count("junk"),
        picks=n_picks,
        reviews=n_reviews,
        selections=len(selections),
        reviewers=len(users),
        seconds=time.perf_counter() - started,
    )
