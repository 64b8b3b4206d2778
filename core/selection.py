"""Pure selection: a window of scored outputs and a budget of reviewer slots -> picks with readable reasons.

No RQ, no database, no FastAPI. scikit-learn's PCA and ``hdbscan`` are imported inside the function that
clusters, so importing this module stays cheap.

``select_window`` spends ``slots`` on one window of candidates in this order:

1. **Junk** never takes a slot and is returned by reason: ``empty`` (blank response), ``non-text`` (at
   least a fifth control or replacement characters, or one long base64/hex-looking token), ``same response
   to many prompts`` (one normalised response given to ``junk_repeat_prompts`` or more distinct prompts)
   and ``exact repeat`` (same normalised prompt and response as another item: the highest-scoring one
   stays, the rest are junk). Pass the real ``prompt`` and ``response``: a blank response is junk.
2. **Deterministic picks** fill ``k = slots - a - e`` slots (``a`` and ``e`` below). The
   ``candidate_multiple*k`` highest-scoring non-junk candidates are cut first, so clustering never
   sees the whole window. Among them, near-duplicates (cosine >= ``near_duplicate``) collapse into the
   highest-scoring one, which lists the others in ``duplicates``. The distinct ones are reduced with
   PCA to ``pca_components`` and clustered with HDBSCAN. Picks then go by score, best first, except
   that one cluster may take at most ``ceil(cluster_share * k)`` of them, so one failure mode cannot
   fill the queue; HDBSCAN noise is no cluster and competes on its score alone (no reserved share:
   measured, reserved noise slots failed at the base rate). Slots the caps leave empty go to the best
   candidates left. A pick is ``uncertain`` when it is among the ``k`` highest-scoring distinct
   candidates, else ``diverse`` (it moved up because a better-scoring cluster was full). Cluster
   numbers are renumbered by best score (0 holds the highest). HDBSCAN's GLOSH outlier scores mark
   the top 5% as ``outliers``. Without vectors on every cut candidate, or with fewer than
   ``2*min_cluster_size`` distinct ones, picks are plain top-k by score (``uncertain``). Unscored
   candidates get no deterministic pick.
   **Exploration** (``e = round(explore_share x slots)``, 0 by default) then takes the candidates
   least like anything reviewed (highest ``exploration``, the reviewed-novelty signal) among those
   left, stratum ``explore``: labels where the model knows least. It is reported apart from the
   audit, and it is deterministic (inclusion probability 1).
3. **Random audit**: ``a = round(audit_share x slots)``, at least 1 when ``slots >= 2`` and
   ``audit_share > 0``, plus any slots the deterministic picks left unused. It is drawn uniformly without
   replacement from the N_rest non-junk candidates that are not deterministic picks (near-duplicates and
   unscored candidates included); each audit pick has ``inclusion_probability = a / N_rest``.
   **Routing is blind to the audit**: the audit members of earlier runs that routing has not chosen
   (``drawn``: waiting, or reviewed already) compete for the deterministic picks like any candidate.
   Without that, an audit member drawn early stays "unrouted" while its unaudited twins are routed
   later, and the audit goes on describing a rest that routing has since emptied of failures.

Deterministic picks depend only on the candidates, never on ``rng``, and have inclusion probability 1, so
the design is a certainty stratum plus a simple random sample of the rest. That is what makes the
Horvitz-Thompson estimate ``sum(y_i / inclusion_probability_i over the picks) / N`` unbiased for the
failure rate of the N non-junk candidates of this window (junk is counted exactly, apart). It holds per
call: an item left out of one window and offered again in the next has been in two draws.

Clustering uses ``hdbscan`` (0.8.44), not ``fast-hdbscan`` (0.3.4). On 20k clustered 16-d points (PCA of
384-d embeddings) on 2 busy cores, hdbscan fit and GLOSH took 2.2 s, fast-hdbscan 3.6-4.5 s warm, plus
0.8 s to import and about 40 s of numba compiling on first use in a fresh environment. Their labels agree
(adjusted Rand 0.995; they differ on a few noise points, so 175 of 180 picks match); on 720 points, what
a 200-slot selection clusters, labels, picks and outliers are identical and hdbscan takes 0.03 s against
0.1 s. hdbscan also has GLOSH ``outlier_scores_``; fast-hdbscan has none, and would need them computed
from its condensed tree.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np

from core.candidates import (
    JUNK_REASONS,
    MEMBERS_KEPT,
    OUTLIER_SHARE,
    Candidate,
    PickDecision,
    Selection,
    SelectionParams,
)
from core.junk import find_junk
from core.reasons import reason_for


def _plural(n: int, word: str) -> str:
    return f"{n} {word}" if n == 1 else f"{n} {word}s"


def select(candidates: Sequence[Candidate], *, slots: int) -> list[PickDecision]:
    """Most likely failures first; candidates without any score are not worth a reviewer's time yet."""
    if slots <= 0:
        return []
    return [
        PickDecision(output_id=c.output_id, stratum="uncertain", reason=reason_for(c), score=c.score)
        for c in _by_score(candidates)[:slots]
    ]


def _by_score(candidates: Sequence[Candidate]) -> list[Candidate]:
    return sorted(
        (c for c in candidates if c.score is not None), key=lambda c: (-(c.score or 0.0), c.output_id)
    )


# --- deterministic picks ---------------------------------------------------------------------


@dataclass
class _Pool:
    """The distinct highest-scoring candidates (best first) and, if they were clustered, their clusters."""

    reps: list[Candidate]
    duplicates: list[tuple[str, ...]]
    labels: np.ndarray | None = None  # renumbered by best score; -1 noise
    outlier: np.ndarray | None = None

    def cluster_of(self) -> dict[str, int]:
        """Output id -> cluster, for the distinct candidates that were clustered."""
        if self.labels is None:
            return {}
        return {c.output_id: label for c, label in zip(self.reps, self.labels.tolist(), strict=True)}

    def similar(self, label: int) -> int:
        assert self.labels is not None
        members = np.flatnonzero(self.labels == label)
        return int(sum(1 + len(self.duplicates[i]) for i in members)) - 1

    def members(self, i: int) -> tuple[str, ...]:
        """The other distinct outputs of row i's cluster, best first (at most ``MEMBERS_KEPT``)."""
        if self.labels is None or self.labels[i] < 0:
            return ()
        same = np.flatnonzero(self.labels == self.labels[i])
        return tuple(self.reps[j].output_id for j in same.tolist() if j != i)[:MEMBERS_KEPT]


def _unit_vectors(pool: Sequence[Candidate]) -> np.ndarray:
    v = np.stack([np.asarray(c.vector, dtype=np.float32).ravel() for c in pool])
    norms = np.linalg.norm(v, axis=1, keepdims=True)
    return np.asarray(v / np.where(norms > 0, norms, 1.0), dtype=np.float32)


def collapse_near_duplicates(vectors: np.ndarray, threshold: float) -> list[list[int]]:
    """Greedy groups of rows with cosine >= threshold; rows come best first, so a group's head is its best."""
    sims = vectors @ vectors.T
    taken = np.zeros(len(vectors), dtype=bool)
    groups = []
    for i in range(len(vectors)):
        if taken[i]:
            continue
        near = np.flatnonzero((sims[i, i + 1 :] >= threshold) & ~taken[i + 1 :]) + i + 1
        taken[near] = True
        groups.append([i, *near.tolist()])
    return groups


def cluster_points(points: np.ndarray, min_cluster_size: int) -> tuple[np.ndarray, np.ndarray]:
    """HDBSCAN labels (-1 noise) and GLOSH outlier scores of reduced points."""
    import hdbscan

    # One process: joblib's workers cost more to start than they save at a few thousand points.
    model = hdbscan.HDBSCAN(min_cluster_size=min_cluster_size, core_dist_n_jobs=1)
    model.fit(np.ascontiguousarray(points, dtype=np.float64))
    return np.asarray(model.labels_), np.nan_to_num(np.asarray(model.outlier_scores_))


def renumber_by_best(labels: np.ndarray) -> np.ndarray:
    """Cluster labels renumbered in order of first appearance (rows come best first); noise stays -1."""
    order: dict[int, int] = {}
    for label in labels.tolist():
        if label >= 0 and label not in order:
            order[label] = len(order)
    return np.array([order.get(label, -1) for label in labels.tolist()], dtype=np.int64)


def _pool(cut: Sequence[Candidate], params: SelectionParams) -> _Pool:
    if not cut or any(c.vector is None for c in cut):
        return _Pool(list(cut), [()] * len(cut))
    vectors = _unit_vectors(cut)
    groups = collapse_near_duplicates(vectors, params.near_duplicate)
    pool = _Pool([cut[g[0]] for g in groups], [tuple(cut[j].output_id for j in g[1:]) for g in groups])
    if len(groups) < 2 * params.min_cluster_size:
        return pool
    from sklearn.decomposition import PCA
    from threadpoolctl import threadpool_limits

    heads = vectors[[g[0] for g in groups]]
    n_components = min(params.pca_components, *heads.shape)
    # A few hundred rows: a second BLAS thread only adds spin-waits, which cost seconds on a busy machine.
    # covariance_eigh is exact and deterministic, and cheap when rows outnumber dimensions.
    with threadpool_limits(limits=1, user_api="blas"):
        points = PCA(n_components=n_components, svd_solver="covariance_eigh").fit_transform(heads)
        labels, glosh = cluster_points(points, params.min_cluster_size)
    pool.labels = renumber_by_best(labels)
    pool.outlier = (glosh >= np.quantile(glosh, 1 - OUTLIER_SHARE)) & (glosh > 0)
    return pool


def capped_by_score(labels: np.ndarray, k: int, cap: int) -> list[int]:
    """Row indices (rows best first) taken by score, at most ``cap`` from any one cluster; noise (-1)
    is uncapped. If the caps leave slots empty, the best rows left fill them."""
    taken: dict[int, int] = {}
    picked: list[int] = []
    over: list[int] = []
    for i, label in enumerate(labels.tolist()):
        if len(picked) == k:
            break
        if label >= 0 and taken.get(label, 0) >= cap:
            over.append(i)
            continue
        taken[label] = taken.get(label, 0) + 1
        picked.append(i)
    return picked + over[: k - len(picked)]


def _context(pool: _Pool, i: int, k: int) -> list[str]:
    context = []
    if pool.labels is None:
        context = [f"among the {k} highest scores"]
    elif pool.labels[i] >= 0:
        # HDBSCAN noise says nothing a reviewer can use, so only a cluster is named, with its size.
        label, clusters = int(pool.labels[i]), int(pool.labels.max()) + 1
        others = pool.similar(label)
        context = [f"one of {others + 1} similar outputs in this batch (cluster {label + 1} of {clusters})"]
    if pool.outlier is not None and pool.outlier[i]:
        context.append("an outlier even among its neighbours (GLOSH)")
    if pool.duplicates[i]:
        context.append(f"{_plural(len(pool.duplicates[i]), 'near-duplicate')} shown once")
    return context


def _deterministic(pool: _Pool, k: int, cluster_share: float) -> list[PickDecision]:
    cap = max(1, math.ceil(cluster_share * k))
    order = (
        list(range(min(k, len(pool.reps)))) if pool.labels is None else capped_by_score(pool.labels, k, cap)
    )
    picks = []
    for i in order:
        c = pool.reps[i]
        label = None if pool.labels is None else int(pool.labels[i])
        stratum = "uncertain" if i < k else "diverse"
        reason = reason_for(c, context=_context(pool, i, k))
        picks.append(
            PickDecision(
                c.output_id, stratum, reason, c.score, 1.0, label, pool.duplicates[i], pool.members(i)
            )
        )
    return picks


# --- the window ------------------------------------------------------------------------------


def _explore(rest: Sequence[Candidate], n: int, pool: _Pool) -> list[PickDecision]:
    """The ``n`` candidates least like anything reviewed (highest exploration signal)."""
    ranked = sorted(
        (c for c in rest if c.exploration is not None),
        key=lambda c: (-(c.exploration or 0.0), c.output_id),
    )[: max(n, 0)]
    labels = pool.cluster_of()
    context = ["exploration: unlike anything reviewed so far"]
    return [
        PickDecision(
            c.output_id, "explore", reason_for(c, context=context), c.score, 1.0, labels.get(c.output_id)
        )
        for c in ranked
    ]


def audit_size(slots: int, share: float) -> int:
    """Slots for the random audit: round(share x slots), at least one when there are two slots or more."""
    if slots <= 0 or share <= 0:
        return 0
    a = round(share * slots)
    return min(slots, max(a, 1) if slots >= 2 else a)


def _audit(
    rest: Sequence[Candidate], n_audit: int, pool: _Pool, rng: np.random.Generator
) -> list[PickDecision]:
    if n_audit <= 0:
        return []
    labels = pool.cluster_of()
    context = [f"random audit (1 in {len(rest) / n_audit:.0f})"]
    return [
        PickDecision(
            c.output_id,
            "audit",
            reason_for(c, context=context),
            c.score,
            inclusion_probability=n_audit / len(rest),
            cluster=labels.get(c.output_id),
        )
        for c in (rest[j] for j in sorted(rng.choice(len(rest), size=n_audit, replace=False).tolist()))
    ]


def select_window(
    candidates: Sequence[Candidate],
    *,
    slots: int,
    params: SelectionParams,
    rng: np.random.Generator,
    drawn: Sequence[Candidate] = (),
) -> Selection:
    """Junk out, diverse deterministic picks, then a uniform random audit of the rest (see the module).

    ``drawn`` are audit members routing has not chosen yet (waiting or already reviewed). Routing
    chooses among them exactly as among the candidates, blind to the audit, so the members it leaves
    stay a uniform sample of everything it leaves (what ``core.estimate.every_review`` rests on).
    One it chooses is returned as a pick like any other but takes no new review slot: its unused
    slot goes to the audit, which draws only from the candidates."""
    junk_of = find_junk(candidates, params)
    junk: dict[str, list[str]] = {reason: [] for reason in JUNK_REASONS}
    for i, reason in sorted(junk_of.items()):
        junk[reason].append(candidates[i].output_id)
    if slots <= 0:
        return Selection([], junk, 0, 0, [])
    clean = [c for i, c in enumerate(candidates) if i not in junk_of]
    fresh = {c.output_id for c in clean}
    routable = [*clean, *(d for d in drawn if d.output_id not in fresh)]
    n_audit = audit_size(slots, params.audit_share)
    n_explore = min(slots - n_audit, round(params.explore_share * slots))
    k = slots - n_audit - n_explore
    pool = _pool(_by_score(routable)[: max(1, params.candidate_multiple) * k] if k > 0 else [], params)
    picks = _deterministic(pool, k, params.cluster_share)
    taken = {p.output_id for p in picks}
    picks += _explore([c for c in routable if c.output_id not in taken], n_explore, pool)
    taken = {p.output_id for p in picks}
    rest = [c for c in clean if c.output_id not in taken]
    # Slots the deterministic picks could not use, or used on audit members already in the queue,
    # go to the audit: more of the window seen at random.
    new_picks = sum(p.output_id in fresh for p in picks)
    picks += _audit(rest, min(len(rest), slots - new_picks), pool, rng)
    if pool.labels is None or pool.outlier is None:
        return Selection(picks, junk, 0, 0, [])
    outliers = [c.output_id for c, out in zip(pool.reps, pool.outlier.tolist(), strict=True) if out]
    return Selection(picks, junk, int(pool.labels.max()) + 1, int((pool.labels < 0).sum()), outliers)


def review_ranks(picks: Sequence[PickDecision], rng: np.random.Generator) -> list[float | None]:
    """Each audit pick's place among the audit picks, a uniform random key (routed picks: None, they
    are reviewed by score). Reviewers meet the audit in this random order, every ``1/audit_share``-th
    claim (``reviewing.claim_next``), so the part of it reviewed so far is a random part whatever its
    outputs' scores (in score order the high-scoring audit picks came first, which biased every
    estimate made before the end) and it takes the audit's share of the reviews, no more."""
    return [float(rng.uniform()) if p.stratum == "audit" else None for p in picks]
