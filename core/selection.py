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
3. **Random audit**: each candidate in a selection window for the first time (``fresh``) is drawn
   into the audit with probability ``audit_share``, independently and before routing looks; a
   member keeps that inclusion probability unless a raised share tops it up (``top_up_audit``, for
   every output routing has not chosen). Members take no routing slot: the audit's share of the
   day's budget is kept out of routing (``budget.routing_budget``), and reviewers meet the members
   in a random order of their own, at the audit's turns (``budget.audit_turn``).
   **Routing is blind to the audit**: the members of earlier windows routing has not chosen
   (``drawn``: waiting, or reviewed already) and this window's new ones compete for the deterministic
   picks like any candidate. A member routing chooses stays a member (stratum ``audit``, ``routed``)
   and is served at its score. Without that, a member drawn early stays "unrouted" while its twins
   are routed later, and the audit goes on describing a rest that routing has since emptied; and
   drawing the audit from what routing left would give long-waiting, low-scoring outputs more
   chances to be drawn than the ones routing took and released.

Deterministic picks depend only on the candidates and the members, never on ``rng`` or on who is a
member. The audit is a Bernoulli draw of the traffic at first sight, so with routing blind to it,
the members routing has not reached are a uniform sample of everything routing has not reached:
``core.estimate.every_review`` counts routing's reviews as known and estimates the rest from them.

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


def draw_audit(fresh: Sequence[Candidate], rate: float, rng: np.random.Generator) -> list[Candidate]:
    """The audit's members among outputs in a window for the first time: each with probability
    ``rate``, independently, before routing looks (so routing's choices say nothing about them)."""
    if rate <= 0 or not fresh:
        return []
    drawn = rng.uniform(size=len(fresh)) < rate
    return [c for c, d in zip(fresh, drawn.tolist(), strict=True) if d]


def top_up_audit(rates: Sequence[float], share: float, rng: np.random.Generator) -> list[bool]:
    """Raise the audit's rate of outputs routing has not chosen from theirs (``rates``) to ``share``:
    each of them that is not a member yet joins with probability ``(share - rate) / (1 - rate)``,
    so that, with the first draw, each is a member with probability ``share``. Which outputs qualify
    (routing has not chosen them) does not depend on their draws, since routing is blind to the
    audit, so members and non-members alike now stand at ``share`` and the sample stays uniform
    within each rate. True where an output joins."""
    if not rates:
        return []
    r = np.clip(np.asarray(rates, dtype=float), 0.0, 1.0)
    joins = np.where(r < 1.0, (share - r) / np.maximum(1.0 - r, 1e-12), 0.0)
    return (rng.uniform(size=len(r)) < np.clip(joins, 0.0, 1.0)).tolist()


def _as_audit(pick: PickDecision, probability: float) -> PickDecision:
    """Routing chose an audit member: routing's pick, still the audit's member."""
    return PickDecision(
        pick.output_id,
        "audit",
        f"{pick.reason}; drawn by the random audit too",
        pick.score,
        probability,
        pick.cluster,
        pick.duplicates,
        pick.members,
        routed=True,
    )


def _audit(members: Sequence[Candidate], rate: float, pool: _Pool) -> list[PickDecision]:
    labels = pool.cluster_of()
    context = [f"random audit (1 in {1 / rate:.0f})"] if rate > 0 else []
    return [
        PickDecision(
            c.output_id,
            "audit",
            reason_for(c, context=context),
            c.score,
            inclusion_probability=rate,
            cluster=labels.get(c.output_id),
        )
        for c in members
    ]


def select_window(
    candidates: Sequence[Candidate],
    *,
    slots: int,
    params: SelectionParams,
    rng: np.random.Generator,
    drawn: Sequence[Candidate] = (),
) -> Selection:
    """Junk out; the audit draws its members among the fresh candidates; then diverse deterministic
    picks among every candidate and every audit member routing has not chosen yet (see the module).

    ``drawn`` are audit members of earlier windows routing has not chosen (waiting, or reviewed
    already). Routing chooses among them, and among this window's new members, exactly as among the
    other candidates, blind to the audit, so the members it leaves stay a uniform sample of all it
    leaves (what ``core.estimate.every_review`` rests on). A member it chooses comes back as an
    ``audit`` pick with ``routed`` set; a new member it leaves, as an ``audit`` pick waiting for the
    audit's turn. ``slots`` are routing's alone (``budget.routing_budget`` keeps the audit's share
    of the day's budget out of them); members take none."""
    junk_of = find_junk(candidates, params)
    junk: dict[str, list[str]] = {reason: [] for reason in JUNK_REASONS}
    for i, reason in sorted(junk_of.items()):
        junk[reason].append(candidates[i].output_id)
    clean = [c for i, c in enumerate(candidates) if i not in junk_of]
    rate = params.audit_share
    new_members = {c.output_id for c in draw_audit([c for c in clean if c.fresh], rate, rng)}
    members = new_members | {d.output_id for d in drawn}
    seen = {c.output_id for c in clean}
    routable = [*clean, *(d for d in drawn if d.output_id not in seen)]
    n_explore = min(max(slots, 0), round(params.explore_share * slots))
    k = max(0, slots - n_explore)
    pool = _pool(_by_score(routable)[: max(1, params.candidate_multiple) * k] if k > 0 else [], params)
    picks = _deterministic(pool, k, params.cluster_share)
    taken = {p.output_id for p in picks}
    picks += _explore([c for c in routable if c.output_id not in taken], n_explore, pool)
    picks = [_as_audit(p, rate) if p.output_id in members else p for p in picks]
    taken = {p.output_id for p in picks}
    picks += _audit([c for c in clean if c.output_id in new_members - taken], rate, pool)
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
