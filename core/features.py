"""What the learned scorer sees: each signal (a missing value filled with the traffic's mean, with a
missing indicator where it is sometimes absent), the embedding's principal components, and the
verdicts of an output's nearest reviewed neighbours, standardised; and the cold-start ranking as the
prior mean of their weights."""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np
from sklearn.decomposition import PCA

from core.scoring import RANKED, SIGNALS

EMBEDDING_COMPONENTS = 16
CONTENT = "content"  # the name under which the embedding's contribution is reported
#: Prior mean of a cold-start signal's weight, in log-odds per standard deviation.
PRIOR_WEIGHT = 0.3
#: The verdicts of an output's nearest reviewed neighbours (cosine of the embeddings) form one more
#: feature, ``similar_failed``: failure modes are local in embedding space (one kind of request, one
#: kind of mistake), which a linear model on a few principal components cannot see.
NEIGHBOURS = 10
NEIGHBOUR_SMOOTHING = 2.0  # pseudo-reviews at the queue's base rate, so 1 of 1 is not "certain"
NEIGHBOUR_MEMORY = 4000  # most recent reviewed vectors a model keeps (float16) for this feature
SIMILAR_FAILED = "similar_failed"
#: A reviewed vector at least this alike is the output itself (or an exact copy): never its own
#: neighbour, so an output rescored after its review is not scored by its own verdict.
SELF_COSINE = 0.9999


@dataclass
class NeighbourVotes:
    """Reviewed outputs' vectors and verdicts; ``vote`` is the smoothed failure share of the nearest."""

    vectors: np.ndarray  # float16, L2-normalised rows
    failed: np.ndarray  # float per row
    base_rate: float

    @classmethod
    def of(cls, vectors: np.ndarray, failed: np.ndarray) -> NeighbourVotes:
        keep = slice(0, NEIGHBOUR_MEMORY)  # training rows come newest first
        v = np.asarray(vectors[keep], dtype=np.float32)
        v = v / np.maximum(np.linalg.norm(v, axis=1, keepdims=True), 1e-12)
        return cls(v.astype(np.float16), np.asarray(failed[keep], dtype=float), float(np.mean(failed)))

    def vote(self, vectors: np.ndarray, *, leave_one_out: bool = False) -> np.ndarray:
        """Per vector: ``(sum of the k nearest verdicts + a * base) / (k + a)``, copies of the vector
        itself left out; with ``leave_one_out`` row i of ``vectors`` is row i of the memory and is
        not its own neighbour."""
        memory = self.vectors.astype(np.float32)
        k = min(NEIGHBOURS, len(memory) - (1 if leave_one_out else 0))
        if k <= 0:
            return np.full(len(vectors), self.base_rate)
        out = np.empty(len(vectors))
        for start in range(0, len(vectors), 2048):
            sims = np.asarray(vectors[start : start + 2048], dtype=np.float32) @ memory.T
            sims[sims >= SELF_COSINE] = -np.inf
            if leave_one_out:
                rows = np.arange(len(sims))
                sims[rows, start + rows] = -np.inf
            nearest = np.argpartition(-sims, k - 1, axis=1)[:, :k]
            hits = self.failed[nearest].sum(axis=1)
            out[start : start + len(sims)] = (hits + NEIGHBOUR_SMOOTHING * self.base_rate) / (
                k + NEIGHBOUR_SMOOTHING
            )
        return out


@dataclass
class Featurizer:
    """Signals to a standardised matrix: value (missing filled by ``fills``) plus a missing indicator
    per signal, then the embedding's principal components.

    A missing value is filled with the mean of the values present in the traffic: standardised by
    the traffic, it is then about zero, so a missing signal pushes the score neither way, as in cold
    start, which ranks by the signals an output has; its indicator learns what missing means on this
    queue. Filled from the reviews instead, a signal that routing reviewed only where it was high
    (``unsupported`` on QA traffic, missing for two answers in three) put every answer that lacked
    it at the top of its range, and the queue's first models ranked the traffic upside down."""

    names: list[str]
    fills: dict[str, float]
    sometimes_missing: list[str]
    pca: PCA | None = None
    votes: NeighbourVotes | None = None
    mean: np.ndarray | None = None
    scale: np.ndarray | None = None

    @classmethod
    def fit(
        cls,
        rows: Sequence[Mapping[str, float | None]],
        embeddings: np.ndarray | None,
        pool_embeddings: np.ndarray | None = None,
        failed: np.ndarray | None = None,
        pool_rows: Sequence[Mapping[str, float | None]] | None = None,
    ) -> tuple[Featurizer, np.ndarray]:
        """Fit on the reviewed rows and return the featurizer with their standardised features. The
        signals, their fills and the PCA come from ``pool_rows`` and ``pool_embeddings`` (unlabelled
        recent traffic) when given, so they describe the traffic rather than a few reviews routing
        chose; with the verdicts (``failed``), the reviewed neighbours' votes are fitted too
        (leave-one-out for the rows themselves)."""
        names, fills, sometimes_missing = [], {}, []
        # Which signals the model ranks by is the traffic's to say, not the reviews': routing's first
        # picks all asked for facts, so ``factual_request`` was constant among them, and dropping it
        # dropped the weight the prior gives it, and with it cold start's use of it on the traffic.
        traffic = pool_rows if pool_rows is not None and len(pool_rows) > 2 else rows
        for name in SIGNALS:
            values = _present(traffic, name)
            if not values or (len(set(values)) < 2 and len(values) == len(traffic)):
                continue  # never there, or constant wherever it is: it ranks nothing
            names.append(name)
            fills[name] = float(np.mean(values))
            if len(values) < len(traffic):
                sometimes_missing.append(name)
        pca = None
        basis = pool_embeddings if pool_embeddings is not None and len(pool_embeddings) else embeddings
        if embeddings is not None and basis is not None and len(basis) > 2:
            pca = PCA(
                n_components=min(EMBEDDING_COMPONENTS, len(basis) - 1, basis.shape[1]),
                svd_solver="full",  # deterministic: the same reviews always give the same model
            )
            pca.fit(basis)
        votes = None
        if embeddings is not None and failed is not None and NEIGHBOURS > 0 and len(embeddings) > 1:
            votes = NeighbourVotes.of(embeddings, np.asarray(failed, dtype=float))
        featurizer = cls(names, fills, sometimes_missing, pca, votes)
        raw = featurizer.raw(rows, embeddings, training=True)
        # Scale each feature by the traffic's spread when the traffic is known: the reviews are what
        # routing chose, so a signal nearly constant among them (few disclaimers reviewed yet) would
        # get a tiny scale and, through the prior's weight per standard deviation, a huge weight.
        reference = raw
        needs_vectors = pca is not None or votes is not None
        if pool_rows is not None and len(pool_rows) > 2:
            if not needs_vectors:
                reference = featurizer.raw(pool_rows, None)
            elif pool_embeddings is not None and len(pool_embeddings) == len(pool_rows):
                reference = featurizer.raw(pool_rows, pool_embeddings)
        featurizer.mean = reference.mean(axis=0)
        spread = reference.std(axis=0)
        featurizer.scale = np.where(spread > 1e-9, spread, 1.0)
        return featurizer, featurizer.standardise(raw)

    @property
    def columns(self) -> list[tuple[str, str]]:
        """(group, column) per feature column; the group is what explanations report."""
        cols = [(n, n) for n in self.names] + [(n, f"{n}_missing") for n in self.sometimes_missing]
        if self.pca is not None:
            cols += [(CONTENT, f"pc{i}") for i in range(self.pca.n_components_)]
        if self.votes is not None:
            cols.append((SIMILAR_FAILED, SIMILAR_FAILED))
        return cols

    def prior_mean(self) -> np.ndarray:
        """The cold-start ranking as weights: ``PRIOR_WEIGHT`` on each ranked signal, 0 elsewhere."""
        ranked = {*RANKED, SIMILAR_FAILED}
        return np.array(
            [PRIOR_WEIGHT if group == column and group in ranked else 0.0 for group, column in self.columns]
        )

    def prior_precision(self) -> np.ndarray:
        """Relative prior precision of each weight: 1 for a signal, and for the embedding's principal
        components as many as there are of them, so that together they are held as firmly as one
        signal. Sixteen components each as free as a signal add up to four signals' worth of
        freedom, which a few dozen reviews spend on noise."""
        components = sum(1 for group, _ in self.columns if group == CONTENT)
        return np.array([float(components) if group == CONTENT else 1.0 for group, _ in self.columns])

    def raw(
        self,
        rows: Sequence[Mapping[str, float | None]],
        embeddings: np.ndarray | None,
        *,
        training: bool = False,
    ) -> np.ndarray:
        """Unscaled features; ``training``: the rows are the reviews the votes were built from."""
        values = np.array(
            [[_value(r.get(n), self.fills[n]) for n in self.names] for r in rows], dtype=np.float64
        ).reshape(len(rows), len(self.names))
        missing = np.array(
            [[float(r.get(n) is None) for n in self.sometimes_missing] for r in rows], dtype=np.float64
        ).reshape(len(rows), len(self.sometimes_missing))
        blocks = [values, missing]
        if self.pca is not None:
            if embeddings is None:
                raise ValueError("this model needs embeddings")
            blocks.append(self.pca.transform(embeddings))
        if self.votes is not None:
            if embeddings is None:
                raise ValueError("this model needs embeddings")
            unit = embeddings / np.maximum(np.linalg.norm(embeddings, axis=1, keepdims=True), 1e-12)
            blocks.append(self.votes.vote(unit, leave_one_out=training)[:, None])
        return np.hstack(blocks)

    def __setstate__(self, state: dict[str, Any]) -> None:
        """Models stored before ``fills`` named them ``medians`` (the reviews' medians) still load."""
        if "medians" in state:
            state["fills"] = state.pop("medians")
        self.__dict__.update(state)

    def standardise(self, raw: np.ndarray) -> np.ndarray:
        assert self.mean is not None and self.scale is not None
        return np.asarray((raw - self.mean) / self.scale)

    def transform(
        self, rows: Sequence[Mapping[str, float | None]], embeddings: np.ndarray | None
    ) -> np.ndarray:
        return self.standardise(self.raw(rows, embeddings))


def _present(rows: Sequence[Mapping[str, float | None]], name: str) -> list[float]:
    return [float(v) for r in rows if (v := r.get(name)) is not None and math.isfinite(v)]


def _value(v: float | None, fill: float) -> float:
    if v is None or not math.isfinite(v):
        return fill
    return float(v)
