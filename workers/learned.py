"""The learned scorer: signals (+ the embedding, reduced) -> a calibrated failure probability.

Pure: it trains on arrays and predicts on arrays; storing and loading versions is the jobs' part.
Reviews are weighted by 1 / their pick's inclusion probability, so outputs that routing made
likely to be reviewed don't bias the model toward what routing already believes. Calibration is
Platt scaling below ``ISOTONIC_FROM`` labels and isotonic regression from there on.
"""

from __future__ import annotations

import io
import math
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

import joblib
import numpy as np
from sklearn.calibration import CalibratedClassifierCV
from sklearn.decomposition import PCA
from sklearn.linear_model import LogisticRegression
from sklearn.model_selection import StratifiedKFold
from sklearn.preprocessing import StandardScaler

from workers.scoring import SIGNALS

ISOTONIC_FROM = 1000
#: Inverse-probability weights are capped (truncated) at this many times a certainty pick's weight:
#: a 1-in-200 audit pick weighted 200 would let a handful of audit reviews drown every other label.
MAX_REVIEW_WEIGHT = 10.0
EMBEDDING_COMPONENTS = 32
CONTENT = "content"  # the name under which the embedding's contribution is reported


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
class Featurizer:
    """Signals to a numeric matrix: value (median-imputed) plus a missing indicator per signal."""

    names: list[str]
    medians: dict[str, float]
    sometimes_missing: list[str]
    pca: PCA | None = None

    @classmethod
    def fit(cls, rows: Sequence[Mapping[str, float | None]], embeddings: np.ndarray | None) -> Featurizer:
        names, medians, sometimes_missing = [], {}, []
        for name in SIGNALS:
            values = [float(v) for r in rows if (v := r.get(name)) is not None]
            if not values:
                continue
            names.append(name)
            medians[name] = float(np.median(values))
            if len(values) < len(rows):
                sometimes_missing.append(name)
        pca = None
        if embeddings is not None and len(embeddings) > 2:
            pca = PCA(
                n_components=min(EMBEDDING_COMPONENTS, len(embeddings) - 1, embeddings.shape[1]),
                svd_solver="full",  # deterministic: the same reviews always give the same model
            )
            pca.fit(embeddings)
        return cls(names, medians, sometimes_missing, pca)

    @property
    def columns(self) -> list[tuple[str, str]]:
        """(group, column) per feature column; the group is what explanations report."""
        cols = [(n, n) for n in self.names] + [(n, f"{n}_missing") for n in self.sometimes_missing]
        if self.pca is not None:
            cols += [(CONTENT, f"pc{i}") for i in range(self.pca.n_components_)]
        return cols

    def transform(
        self, rows: Sequence[Mapping[str, float | None]], embeddings: np.ndarray | None
    ) -> np.ndarray:
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
        return np.hstack(blocks)


def _value(v: float | None, median: float) -> float:
    if v is None or not math.isfinite(v):
        return median
    return float(v)


@dataclass
class LearnedModel:
    """A trained, calibrated scorer and what it needs to explain itself."""

    version: str
    featurizer: Featurizer
    scaler: StandardScaler
    linear: LogisticRegression  # on all labels, for explanations
    calibrated: CalibratedClassifierCV
    calibration: str
    n_labels: int
    n_failures: int
    metrics: dict[str, Any] = field(default_factory=dict)

    def predict(
        self, rows: Sequence[Mapping[str, float | None]], embeddings: np.ndarray | None
    ) -> np.ndarray:
        """Calibrated probability that each output is a failure."""
        x = self.scaler.transform(self.featurizer.transform(rows, embeddings))
        return np.asarray(self.calibrated.predict_proba(x)[:, 1])

    def explain(
        self, rows: Sequence[Mapping[str, float | None]], embeddings: np.ndarray | None, *, top: int = 3
    ) -> list[list[dict[str, float | str]]]:
        """Per output, the signals that pushed its score up most (log-odds contributions, linear model)."""
        x = self.scaler.transform(self.featurizer.transform(rows, embeddings))
        contributions = x * self.linear.coef_[0]
        groups = [g for g, _ in self.featurizer.columns]
        out = []
        for i, row in enumerate(rows):
            by_group: dict[str, float] = {}
            for g, c in zip(groups, contributions[i], strict=True):
                by_group[g] = by_group.get(g, 0.0) + float(c)
            ranked = sorted((kv for kv in by_group.items() if kv[1] > 0), key=lambda kv: -kv[1])[:top]
            drivers: list[dict[str, float | str]] = [
                {
                    "signal": g,
                    "value": round(float(row.get(g) or 0.0), 4) if g != CONTENT else 0.0,
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


def train(
    rows: Sequence[Mapping[str, float | None]],
    embeddings: np.ndarray | None,
    failed: Sequence[bool],
    weights: Sequence[float] | None = None,
    *,
    version: str = "learned",
    seed: int = 0,
) -> LearnedModel:
    """Fit the featurizer, a logistic regression and its calibration on reviewed outputs."""
    y = np.asarray(failed, dtype=int)
    n_fail, n_pass = int(y.sum()), int(len(y) - y.sum())
    if min(n_fail, n_pass) < 5:
        raise NotEnoughLabels(f"need at least 5 passes and 5 failures, have {n_pass} and {n_fail}")
    w = np.ones(len(y)) if weights is None else np.asarray(weights, dtype=float)
    featurizer = Featurizer.fit(rows, embeddings)
    scaler = StandardScaler().fit(featurizer.transform(rows, embeddings))
    x = scaler.transform(featurizer.transform(rows, embeddings))
    linear = LogisticRegression(C=0.5, max_iter=2000).fit(x, y, sample_weight=w)
    method = "isotonic" if len(y) >= ISOTONIC_FROM else "sigmoid"
    folds = min(5, n_fail, n_pass)
    calibrated = CalibratedClassifierCV(
        LogisticRegression(C=0.5, max_iter=2000),
        method=method,
        cv=StratifiedKFold(folds, shuffle=True, random_state=seed),
    ).fit(x, y, sample_weight=w)
    return LearnedModel(
        version=version,
        featurizer=featurizer,
        scaler=scaler,
        linear=linear,
        calibrated=calibrated,
        calibration="isotonic" if method == "isotonic" else "platt",
        n_labels=len(y),
        n_failures=n_fail,
    )


def cross_validated(
    rows: Sequence[Mapping[str, float | None]],
    embeddings: np.ndarray | None,
    failed: Sequence[bool],
    *,
    folds: int = 5,
    seed: int = 0,
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
            seed=seed,
        )
        out[test_idx] = model.predict(
            [rows[i] for i in test_idx], embeddings[test_idx] if embeddings is not None else None
        )
    return out
