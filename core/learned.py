"""The learned scorer: signals (+ the embedding, reduced) -> a calibrated failure probability.

Pure: it trains on arrays and predicts on arrays; storing and loading versions is the jobs' part.

It has to help from a queue's first ten reviews and keep getting better, on traffic whose
signals may point either way. So it is a logistic regression fitted by maximum a posteriori with a
Gaussian prior whose *mean is the cold-start ranking*: on standardised features, the signals that
cold start ranks by (``core.scoring.RANKED``) start with a small positive weight, everything else
(the other signals, the embedding's principal components) at zero. With few labels the model stays
close to cold start; as reviews come in, the data move the weights, and can flip a sign the queue's
traffic disagrees with. The embedding's principal components are held together as firmly as one
signal (``Featurizer.prior_precision``). The prior's strength is chosen by cross-validated
log-likelihood once there are enough labels; a model is used once it is cross-validated, unless
cold start ranks the reviews clearly better (``core.comparison.replaces_baseline``). Features are
scaled by the traffic's spread, not the reviews' (``Featurizer.fit``).

Reviews are weighted by 1 / their pick's inclusion probability (truncated), so outputs that routing
made likely to be reviewed don't bias the model toward what routing already believes. Calibration
is Platt scaling on out-of-fold scores below ``ISOTONIC_FROM`` labels and isotonic regression from
there on; with too few labels for folds, the MAP model's own probabilities stand.
"""

from __future__ import annotations

import io
import math
import sys
import types
from collections.abc import Iterator, Mapping, Sequence
from contextlib import contextmanager
from dataclasses import dataclass, field
from typing import Any

import joblib
import numpy as np
from scipy.optimize import minimize
from scipy.special import expit
from sklearn.isotonic import IsotonicRegression
from sklearn.model_selection import StratifiedKFold

from core.comparison import paired_win_share
from core.features import CONTENT, SIMILAR_FAILED, Featurizer, NeighbourVotes
from core.metrics import auroc, brier, ece, reliability

ISOTONIC_FROM = 1000
#: Inverse-probability weights are capped (truncated) at this many times a certainty pick's weight:
#: a 1-in-200 audit pick weighted 200 would let a handful of audit reviews drown every other label.
MAX_REVIEW_WEIGHT = 10.0
#: Prior precisions tried by cross-validation (larger: closer to cold start); the default below that.
#: None is weak: with review-sized samples, cross-validation picked weak priors (1, 3) on a few dozen
#: labels and the model then ranked unseen traffic far worse than cold start (AUROC 0.50 against 0.70).
PRIOR_STRENGTHS = (10.0, 30.0, 100.0, 300.0)
DEFAULT_STRENGTH = 10.0
#: Labels of each verdict needed before the prior's strength and the calibration are cross-validated.
CV_FROM = 10
MIN_EACH = 3
#: Below this Platt slope the out-of-fold scores carry no skill, and calibrating would flatten them.
MIN_PLATT_SLOPE = 0.05


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


def fit_map(
    x: np.ndarray,
    y: np.ndarray,
    w: np.ndarray,
    prior_mean: np.ndarray,
    strength: float | np.ndarray,
    *,
    nonnegative: bool = False,
) -> tuple[np.ndarray, float]:
    """Weighted logistic regression, MAP under ``coef ~ N(prior_mean, 1/strength)``; free intercept.
    ``strength`` is one precision for every coefficient or one per coefficient.

    Minimises ``sum_i w_i (log(1 + e^z_i) - y_i z_i) + strength/2 |coef - prior_mean|^2``, with every
    coefficient kept >= 0 when ``nonnegative``.
    """

    def loss(theta: np.ndarray) -> tuple[float, np.ndarray]:
        b, coef = theta[0], theta[1:]
        z = x @ coef + b
        p = expit(z)
        diff = coef - prior_mean
        value = float(np.sum(w * (np.logaddexp(0.0, z) - y * z)) + 0.5 * diff @ (strength * diff))
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
        # Where each signal's own column is: its sign says whether the output is high or low on it.
        own = {g: j for j, (g, column) in enumerate(self.featurizer.columns) if g == column}
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
                    **({"direction": "high" if x[i, own[g]] >= 0 else "low"} if g in own else {}),
                    # Absent for this output (no log-probs, no numbers to check): its imputed value
                    # and missing-indicator moved the score, but there is no evidence to name.
                    **({"missing": True} if g in row and row[g] is None else {}),
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
        with _former_home():
            model = joblib.load(io.BytesIO(blob))
        if not isinstance(model, LearnedModel):
            raise TypeError("stored blob is not a LearnedModel")
        return model


#: Where the learned scorer's classes lived before the pure core became a package of its own: models
#: stored then name it, and must still load.
FORMER_HOME = "workers.learned"


@contextmanager
def _former_home() -> Iterator[None]:
    """While loading, let the former module name resolve to the classes' present homes."""
    if FORMER_HOME in sys.modules:
        yield
        return
    alias = types.ModuleType(FORMER_HOME)
    for cls in (LearnedModel, Featurizer, NeighbourVotes):
        setattr(alias, cls.__name__, cls)
    sys.modules[FORMER_HOME] = alias
    try:
        yield
    finally:
        del sys.modules[FORMER_HOME]


TIE_BREAK = 1e-6  # times the model's own sigmoid, added to isotonic steps (``calibrate``)


def calibrate(method: str, calibrator: Any, z: np.ndarray) -> np.ndarray:
    """Calibrated p_fail from log-odds ``z``. Isotonic steps put 60% of one replay's unreviewed
    traffic on one value (0.099), in no order for routing: a millionth of the model's own sigmoid
    breaks such ties in the model's order and moves no probability visibly."""
    if method == "platt":
        a, b = calibrator
        return np.asarray(expit(a * z + b))
    if method == "isotonic":
        return np.clip(np.asarray(calibrator.predict(z)) + TIE_BREAK * expit(z), 0.0, 1.0)
    return np.asarray(expit(z))


def _platt(z: np.ndarray, y: np.ndarray, w: np.ndarray) -> tuple[float, float]:
    """Platt scaling ``sigmoid(a z + b)`` fitted on out-of-fold log-odds, ``a >= 0``: calibration may
    flatten a ranking that shows no out-of-fold skill, never turn it upside down (a tiny ridge keeps
    it finite)."""
    coef, intercept = fit_map(z[:, None], y, w, np.array([1.0]), 1e-2, nonnegative=True)
    return float(coef[0]), intercept


def _out_of_fold(
    x: np.ndarray,
    y: np.ndarray,
    w: np.ndarray,
    prior: np.ndarray,
    precision: np.ndarray,
    strengths: Sequence[float],
    seed: int,
) -> dict[float, np.ndarray]:
    folds = min(5, int(y.sum()), int(len(y) - y.sum()))
    out = {s: np.zeros(len(y)) for s in strengths}
    for train_idx, test_idx in StratifiedKFold(folds, shuffle=True, random_state=seed).split(x, y):
        for s in strengths:
            coef, b = fit_map(x[train_idx], y[train_idx], w[train_idx], prior, s * precision)
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
    pool_rows: Sequence[Mapping[str, float | None]] | None = None,
    baseline: Sequence[float] | None = None,
    version: str = "learned",
    seed: int = 0,
) -> LearnedModel:
    """Fit the featurizer, the prior-shrunk logistic regression and its calibration on reviews.

    ``baseline``: the score each reviewed output gets without a model (cold start). Once there are
    enough labels to cross-validate, its AUROC on the reviews is recorded beside the model's
    out-of-fold one (both weighted back to traffic), for ``core.comparison.replaces_baseline``.
    ``pool_rows``: the signals of recent traffic, with ``pool_embeddings`` row for row, to scale the
    features by."""
    y = np.asarray(failed, dtype=float)
    n_fail, n_pass = int(y.sum()), int(len(y) - y.sum())
    if min(n_fail, n_pass) < MIN_EACH:
        raise NotEnoughLabels(
            f"need at least {MIN_EACH} passes and {MIN_EACH} failures, have {n_pass} and {n_fail}"
        )
    w = np.ones(len(y)) if weights is None else np.asarray(weights, dtype=float)
    featurizer, x = Featurizer.fit(rows, embeddings, pool_embeddings, y, pool_rows)
    prior, precision = featurizer.prior_mean(), featurizer.prior_precision()
    strength, calibration, calibrator = DEFAULT_STRENGTH, "none", None
    metrics: dict[str, Any] = {}
    if min(n_fail, n_pass) >= CV_FROM:
        oof = _out_of_fold(x, y, w, prior, precision, PRIOR_STRENGTHS, seed)
        # The strongest prior wins ties: with no evidence either way, stay close to cold start.
        strength = max(
            reversed(PRIOR_STRENGTHS), key=lambda s: _log_likelihood(y, _platt_applied(oof[s], y, w), w)
        )
        z = oof[strength]
        metrics["cv_auroc"] = round(auroc(y.astype(bool), z, w), 4)
        if baseline is not None:
            base = np.asarray(baseline, dtype=float)
            metrics["baseline_auroc"] = round(auroc(y.astype(bool), base, w), 4)
            metrics["baseline_better_share"] = round(paired_win_share(y.astype(bool), base, z, w, seed), 3)
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
        metrics["held_out"] = held_out_calibration(z, y, w, calibration, seed)
    coef, intercept = fit_map(x, y, w, prior, strength * precision)
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


def held_out_calibration(
    z: np.ndarray, y: np.ndarray, w: np.ndarray, calibration: str, seed: int = 0, folds: int = 5
) -> dict[str, Any]:
    """How calibrated p_fail is on reviews it was not fitted on: the out-of-fold log-odds ``z``,
    calibrated fold by fold by a calibrator fitted on the other folds (cross-fitting, so the figures
    are not flattered by calibrating on the same labels), scored by Brier, ECE (10 bins) and the
    reliability diagram's points."""
    p = np.asarray(expit(z), dtype=float)
    if calibration != "none":
        for fit, held in StratifiedKFold(folds, shuffle=True, random_state=seed + 1).split(z, y):
            if calibration == "isotonic":
                iso = IsotonicRegression(out_of_bounds="clip", y_min=1e-3, y_max=1 - 1e-3)
                p[held] = iso.fit(z[fit], y[fit], sample_weight=w[fit]).predict(z[held])
            else:
                p[held] = calibrate("platt", _platt(z[fit], y[fit], w[fit]), z[held])
    failed = y.astype(bool)
    return {
        "reviews": len(y),
        "brier": round(brier(failed, p), 4),
        "ece": round(ece(failed, p), 4),
        "reliability": [{k: round(v, 4) for k, v in pt.items()} for pt in reliability(failed, p)],
    }


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
