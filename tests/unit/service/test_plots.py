"""The dashboard's learning curve is drawn from the report's points, kept-back versions included."""

from __future__ import annotations

import base64

from review_ui import plots
from service.domain_queues import LearningPoint


def svg_of(uri: str) -> str:
    prefix = "data:image/svg+xml;base64,"
    assert uri.startswith(prefix)
    return base64.b64decode(uri.removeprefix(prefix)).decode()


def test_the_learning_curve_marks_kept_back_versions_apart() -> None:
    points = [
        LearningPoint(labels=20, cv_auroc=None, used=True),
        LearningPoint(labels=30, cv_auroc=0.61, used=True),
        LearningPoint(labels=40, cv_auroc=0.55, used=False),
        LearningPoint(labels=50, cv_auroc=0.66, used=True),
    ]
    both = svg_of(plots.learning_curve(points))
    assert "<svg" in both and "kept back" in both and "reviews trained on" in both
    only_used = svg_of(plots.learning_curve([p for p in points if p.used]))
    assert "kept back" not in only_used and "used" in only_used
