"""The learned scorer: signals (+ the embedding, reduced) -> a calibrated failure probability.

Pure: it trains on arrays and predicts on arrays; storing and loading versions is the jobs' part.

It has to help from a queue's first twenty reviews and keep getting better, on traffic whose
signals may point either way. So it is a logistic regression fitted by maximum a posteriori with a
Gaussian prior whose *mean is the cold-start ranking*: on standardised features, the signals that
cold start ranks by (``workers.scoring.RANKED``) start with a small positive weight, everything else
(the other signals, the embedding's principal components) at zero. With few labels the model stays
close to cold start; as reviews come in, the data move the weights, and can flip a sign the queue's
traffic disagrees with. The prior's strength is chosen by cross-validated log-likelihood once there
are enough labels.

Reviews are weighted by 1 / their pick's inclusion probability (truncated), so outputs that routing
made likely to be reviewed don't bias the model toward what routing already believes. Calibration
is Platt scaling on out-of-fold scores below ``ISOTONIC_FROM`` labels and isotonic regression from
there on; with too few labels for folds, the MAP model's own probabilities stand.
"""

from __future__ import annotations

import io
import math
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

import joblib
import numpy as np
from scipy.optimize import minimize
from scipy.special import expit
from sklearn.decomposition import PCA
from sklearn.isotonic import IsotonicRegression
from sklearn.model_selection import StratifiedKFold

from workers.metrics import auroc
from workers.scoring import RANKED, SIGNALS

ISOTONIC_FROM = 1000
#: Inverse-probability weights are capped (truncated) at this many times a certainty pick's weight:
#: a 1-in-200 audit pick weighted 200 would let a handful of audit reviews drown every other label.
MAX_REVIEW_WEIGHT = 10.0
EMBEDDING_COMPONENTS = 16
CONTENT = "content"  # the name under which the embedding's contribution is reported
#: Prior mean of a cold-start signal's weight, in log-odds per standard deviation.
PRIOR_WEIGHT = 0.3
#: Prior precisions tried by cross-validation (larger: closer to cold start); the default below that.
PRIOR_STRENGTHS = (1.0, 3.0, 10.0, 30.0, 100.0)
DEFAULT_STRENGTH = 10.0
#: Labels of each verdict needed before the prior's strength and the calibration are cross-validated.
CV_FROM = 10
MIN_EACH = 3
#: Below this Platt slope the out-of-fold scores carry no skill, and calibrating would flatten them.
MIN_PLATT_SLOPE = 0.05
#: The verdicts of an output's nearest reviewed neighbours (cosine of the embeddings) form one more
#: feature, ``similar_failed``: failure modes are local in embedding space (one kind of request, one
#: kind of mistake), which a linear model on a few principal components cannot see.
NEIGHBOURS = 10
NEIGHBOUR_SMOOTHING = 2.0  # pseudo-reviews at the queue's base rate, so 1 of 1 is not "certain"
NEIGHBOUR_MEMORY = 4000  # most recent reviewed vectors a model keeps (float16) for this feature
SIMILAR_FAILED = "similar_failed"


def review_weights(inclusion_probabilities: Sequence[float | None]) -> list[float]:
    """Training weights 1/pi, truncated at ``MAX_REVIEW_WEIGHT`` and normalised to mean 1.

    Weighting by 1/pi keeps routed picks from biasing the model toward what routing already
    believes; truncation trades a little of that bias back for far less variance.
    """
    raw = [min(1.0 / max(p or 1.0, 1e-9), MAX_REVIEW_WEIGHT) for p in inclusion_probabilities]
    mean = sum(raw) / len(raw) if raw else 1.0
    return [w / mean for w in raw]


class NotEnoughLabels(ValueError):
    """Training needs both verdicts, each a few times."""


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
        """Per vector: ``(sum of the k nearest verdicts + a * base) / (k + a)``; with
        ``leave_one_out`` row i of ``vectors`` is row i of the memory and is not its own neighbour."""
        memory = self.vectors.astype(np.float32)
        k = min(NEIGHBOURS, len(memory) - (1 if leave_one_out else 0))
        if k <= 0:
            return np.full(len(vectors), self.base_rate)
        out = np.empty(len(vectors))
        for start in range(0, len(vectors), 2048):
            sims = np.asarray(vectors[start : start + 2048], dtype=np.float32) @ memory.T
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
    """Signals to a standardised matrix: value (median-imputed) plus a missing indicator per signal,
    then the embedding's principal components."""

    names: list[str]
    medians: dict[str, float]
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
    ) -> tuple[Featurizer, np.ndarray]:
        """Fit on the reviewed rows and return the featurizer with their standardised features. The
        PCA is fitted on ``pool_embeddings`` (unlabelled recent traffic) when given, so the directions
        come from the traffic rather than from a few reviews; with the verdicts (``failed``), the
        reviewed neighbours' votes are fitted too (leave-one-out for the rows themselves)."""
        names, medians, sometimes_missing = [], {}, []
        for name in SIGNALS:
            values = [float(v) for r in rows if (v := r.get(name)) is not None and math.isfinite(v)]
            if len(set(values)) < 2 and len(values) == len(rows):
                continue  # constant where present everywhere: nothing to learn
            if not values:
                continue
            names.append(name)
            medians[name] = float(np.median(values))
            if len(values) < len(rows):
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
        featurizer = cls(names, medians, sometimes_missing, pca, votes)
        raw = featurizer.raw(rows, embeddings, training=True)
        featurizer.mean = raw.mean(axis=0)
        spread = raw.std(axis=0)
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

    def raw(
        self,
        rows: Sequence[Mapping[str, float | None]],
        embeddings: np.ndarray | None,
        *,
        training: bool = False,
    ) -> np.ndarray:
        """Unscaled features; ``training``: the rows are the reviews the votes were built from."""
        values = np.array(
            [[_value(r.get(n), self.medians[n]) for n in self.names] for r in rows], dtype=np.float64
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

    def standardise(self, raw: np.ndarray) -> np.ndarray:
        assert self.mean is not None and self.scale is not None
        return np.asarray((raw - self.mean) / self.scale)

    def transform(
        self, rows: Sequence[Mapping[str, float | None]], embeddings: np.ndarray | None
    ) -> np.ndarray:
        return self.standardise(self.raw(rows, embeddings))


def _value(v: float | None, median: float) -> float:
    if v is None or not math.isfinite(v):
        return median
    return float(v)


def fit_map(
    x: np.ndarray,
    y: np.ndarray,
    w: np.ndarray,
    prior_mean: np.ndarray,
    strength: float,
    *,
    nonnegative: bool = False,
) -> tuple[np.ndarray, float]:
    """Weighted logistic regression, MAP under ``coef ~ N(prior_mean, 1/strength)``; free intercept.

    Minimises ``sum_i w_i (log(1 + e^z_i) - y_i z_i) + strength/2 |coef - prior_mean|^2``, with every
    coefficient kept >= 0 when ``nonnegative``.
    """

    def loss(theta: np.ndarray) -> tuple[float, np.ndarray]:
        b, coef = theta[0], theta[1:]
        z = x @ coef + b
        p = expit(z)
        diff = coef - prior_mean
        value = float(np.sum(w * (np.logaddexp(0.0, z) - y * z)) + 0.5 * strength * diff @ diff)
        r = w * (p - y)
        return value, np.concatenate([[r.sum()], x.T @ r + strength * diff])

    base = float(np.clip(np.average(y, weights=w), 1e-3, 1 - 1e-3))
    start = np.concatenate([[math.log(base / (1 - base))], prior_mean])
    bounds = [(None, None)] + [(0.0, None) if nonnegative else (None, None)] * len(prior_mean)
    result = minimize(loss, start, jac=True, method="L-BFGS-B", bounds=bounds, options={"maxiter": 500})
    return np.asarray(result.x[1:]), float(result.x[0])


@dataclass
class LearnedModel:
    """A trained, calibrated scorer and what it needs to explain itself."""

    version: str
    featurizer: Featurizer
    coef: np.ndarray
    intercept: float
    calibration: str  # "platt", "isotonic" or "none"
    calibrator: Any
    n_labels: int
    n_failures: int
    strength: float
    metrics: dict[str, Any] = field(default_factory=dict)

    def decision(
        self, rows: Sequence[Mapping[str, float | None]], embeddings: np.ndarray | None
    ) -> np.ndarray:
        """Log-odds before calibration."""
        return np.asarray(self.featurizer.transform(rows, embeddings) @ self.coef + self.intercept)

    def predict(
        self, rows: Sequence[Mapping[str, float | None]], embeddings: np.ndarray | None
    ) -> np.ndarray:
        """Calibrated probability that each output is a failure."""
        return calibrate(self.calibration, self.calibrator, self.decision(rows, embeddings))

    def score(
        self, rows: Sequence[Mapping[str, float | None]], embeddings: np.ndarray | None, *, top: int = 3
    ) -> tuple[np.ndarray, list[list[dict[str, float | str]]]]:
        """``predict`` and ``explain`` together, from one pass over the features (PCA and the
        neighbours' votes are the costly part)."""
        raw = self.featurizer.raw(rows, embeddings)
        x = self.featurizer.standardise(raw)
        p = calibrate(self.calibration, self.calibrator, x @ self.coef + self.intercept)
        return p, self._drivers(rows, raw, x, top)

    def weights(self) -> dict[str, float]:
        """Learned weight per signal (log-odds per standard deviation), the embedding's as its norm."""
        out: dict[str, float] = {}
        content = 0.0
        for (group, column), c in zip(self.featurizer.columns, self.coef.tolist(), strict=True):
            if group == CONTENT:
                content += c * c
            elif group == column:
                out[group] = round(c, 4)
        if self.featurizer.pca is not None:
            out[CONTENT] = round(math.sqrt(content), 4)
        return out

    def explain(
        self, rows: Sequence[Mapping[str, float | None]], embeddings: np.ndarray | None, *, top: int = 3
    ) -> list[list[dict[str, float | str]]]:
        """Per output, the signals that pushed its score up most (log-odds contributions)."""
        raw = self.featurizer.raw(rows, embeddings)
        return self._drivers(rows, raw, self.featurizer.standardise(raw), top)

    def _drivers(
        self, rows: Sequence[Mapping[str, float | None]], raw: np.ndarray, x: np.ndarray, top: int
    ) -> list[list[dict[str, float | str]]]:
        contributions = x * self.coef
        groups = [g for g, _ in self.featurizer.columns]
        votes = raw[:, -1] if self.featurizer.votes is not None else None
        out = []
        for i, row in enumerate(rows):
            values = dict(row)
            if votes is not None:
                values[SIMILAR_FAILED] = float(votes[i])
            by_group: dict[str, float] = {}
            for g, c in zip(groups, contributions[i], strict=True):
                by_group[g] = by_group.get(g, 0.0) + float(c)
            ranked = sorted((kv for kv in by_group.items() if kv[1] > 0), key=lambda kv: -kv[1])[:top]
            drivers: list[dict[str, float | str]] = [
                {
                    "signal": g,
                    "value": round(float(values.get(g) or 0.0), 4) if g != CONTENT else 0.0,
                    "contribution": round(c, 3),
                }
                for g, c in ranked
            ]
            out.append(drivers)
        return out

    def dumps(self) -> bytes:
        buffer = io.BytesIO()
        joblib.dump(self, buffer)
        return buffer.getvalue()

    @staticmethod
    def loads(blob: bytes) -> LearnedModel:
        model = joblib.load(io.BytesIO(blob))
        if not isinstance(model, LearnedModel):
            raise TypeError("stored blob is not a LearnedModel")
        return model


def calibrate(method: str, calibrator: Any, z: np.ndarray) -> np.ndarray:
    if method == "platt":
        a, b = calibrator
        return np.asarray(expit(a * z + b))
    if method == "isotonic":
        return np.asarray(calibrator.predict(z))
    return np.asarray(expit(z))


def _platt(z: np.ndarray, y: np.ndarray, w: np.ndarray) -> tuple[float, float]:
    """Platt scaling ``sigmoid(a z + b)`` fitted on out-of-fold log-odds, ``a >= 0``: calibration may
    flatten a ranking that shows no out-of-fold skill, never turn it upside down (a tiny ridge keeps
    it finite)."""
    coef, intercept = fit_map(z[:, None], y, w, np.array([1.0]), 1e-2, nonnegative=True)
    return float(coef[0]), intercept


def _out_of_fold(
    x: np.ndarray, y: np.ndarray, w: np.ndarray, prior: np.ndarray, strengths: Sequence[float], seed: int
) -> dict[float, np.ndarray]:
    folds = min(5, int(y.sum()), int(len(y) - y.sum()))
    out = {s: np.zeros(len(y)) for s in strengths}
    for train_idx, test_idx in StratifiedKFold(folds, shuffle=True, random_state=seed).split(x, y):
        for s in strengths:
            coef, b = fit_map(x[train_idx], y[train_idx], w[train_idx], prior, s)
            out[s][test_idx] = x[test_idx] @ coef + b
    return out


def _log_likelihood(y: np.ndarray, z: np.ndarray, w: np.ndarray) -> float:
    return float(-np.sum(w * (np.logaddexp(0.0, z) - y * z)))


def train(
    rows: Sequence[Mapping[str, float | None]],
    embeddings: np.ndarray | None,
    failed: Sequence[bool],
    weights: Sequence[float] | None = None,
    *,
    pool_embeddings: np.ndarray | None = None,
    version: str = "learned",
    seed: int = 0,
) -> LearnedModel:
    """Fit the featurizer, the prior-shrunk logistic regression and its calibration on reviews."""
    y = np.asarray(failed, dtype=float)
    n_fail, n_pass = int(y.sum()), int(len(y) - y.sum())
    if min(n_fail, n_pass) < MIN_EACH:
        raise NotEnoughLabels(
            f"need at least {MIN_EACH} passes and {MIN_EACH} failures, have {n_pass} and {n_fail}"
        )
    w = np.ones(len(y)) if weights is None else np.asarray(weights, dtype=float)
    featurizer, x = Featurizer.fit(rows, embeddings, pool_embeddings, y)
    prior = featurizer.prior_mean()
    strength, calibration, calibrator = DEFAULT_STRENGTH, "none", None
    metrics: dict[str, Any] = {}
    if min(n_fail, n_pass) >= CV_FROM:
        oof = _out_of_fold(x, y, w, prior, PRIOR_STRENGTHS, seed)
        # The strongest prior wins ties: with no evidence either way, stay close to cold start.
        strength = max(
            reversed(PRIOR_STRENGTHS), key=lambda s: _log_likelihood(y, _platt_applied(oof[s], y, w), w)
        )
        z = oof[strength]
        metrics["cv_auroc"] = round(auroc(y.astype(bool), z), 4)
        platt = _platt(z, y, w)
        if platt[0] < MIN_PLATT_SLOPE:
            pass  # no out-of-fold skill yet: the MAP model's own probabilities keep its ranking
        elif len(y) >= ISOTONIC_FROM:
            calibration = "isotonic"
            calibrator = IsotonicRegression(out_of_bounds="clip", y_min=1e-3, y_max=1 - 1e-3).fit(
                z, y, sample_weight=w
            )
        else:
            calibration, calibrator = "platt", platt
    coef, intercept = fit_map(x, y, w, prior, strength)
    return LearnedModel(
        version=version,
        featurizer=featurizer,
        coef=coef,
        intercept=intercept,
        calibration=calibration,
        calibrator=calibrator,
        n_labels=len(y),
        n_failures=n_fail,
        strength=strength,
        metrics={**metrics, "prior_strength": strength},
    )


def _platt_applied(z: np.ndarray, y: np.ndarray, w: np.ndarray) -> np.ndarray:
    """Out-of-fold log-odds after Platt scaling: compares strengths by ranking *and* calibration."""
    a, b = _platt(z, y, w)
    return a * z + b


def cross_validated(
    rows: Sequence[Mapping[str, float | None]],
    embeddings: np.ndarray | None,
    failed: Sequence[bool],
    *,
    folds: int = 5,
    seed: int = 0,
    pool_embeddings: np.ndarray | None = None,
) -> np.ndarray:
    """Out-of-fold failure probabilities: each output scored by a model that never saw its label."""
    y = np.asarray(failed, dtype=int)
    out = np.zeros(len(y), dtype=float)
    for train_idx, test_idx in StratifiedKFold(folds, shuffle=True, random_state=seed).split(
        np.zeros(len(y)), y
    ):
        model = train(
            [rows[i] for i in train_idx],
            embeddings[train_idx] if embeddings is not None else None,
            y[train_idx],
            pool_embeddings=pool_embeddings,
            seed=seed,
        )
        out[test_idx] = model.predict(
            [rows[i] for i in test_idx], embeddings[test_idx] if embeddings is not None else None
        )
    return out
