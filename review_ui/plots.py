"""The dashboard's plots, drawn server-side by matplotlib as SVG and handed to the page as data URIs
(the pages' CSP allows images from ``data:`` and no inline script or style). They are drawn from
numbers only: no text a user or a model wrote reaches them."""

from __future__ import annotations

import base64
import io
from collections.abc import Sequence
from typing import Any

from service.domain_queues import LearningPoint, PeriodRate, ReliabilityPoint, Throughput

SIZE = (5.6, 2.6)
INK, BAND, AUDIT = "#1f4e79", "#9dc3e6", "#c55a11"


def _svg(draw: Any) -> str:
    import matplotlib

    matplotlib.use("Agg")
    from matplotlib import pyplot as plt

    fig, ax = plt.subplots(figsize=SIZE, dpi=100)
    try:
        draw(ax)
        ax.spines[["top", "right"]].set_visible(False)
        fig.tight_layout()
        buffer = io.BytesIO()
        fig.savefig(buffer, format="svg", metadata={"Date": None})
    finally:
        plt.close(fig)
    return "data:image/svg+xml;base64," + base64.b64encode(buffer.getvalue()).decode()


def failure_rate(over_time: Sequence[PeriodRate], period: str) -> str:
    """The failure rate per period with its 95% interval as a band."""
    rows = [(p.start, p.estimate) for p in over_time if p.estimate is not None]

    def draw(ax: Any) -> None:
        if not rows:
            ax.text(0.5, 0.5, "no reviews yet", ha="center", va="center", transform=ax.transAxes)
            return
        x = list(range(len(rows)))
        ax.fill_between(
            x,
            [e.low for _, e in rows],
            [e.high for _, e in rows],
            color=BAND,
            alpha=0.6,
            label="95% interval",
        )
        ax.plot(x, [e.rate for _, e in rows], marker="o", color=INK, label="estimate")
        ax.set_xticks(x, [start.strftime("%m-%d") for start, _ in rows])
        ax.set_xlim(-0.5, len(rows) - 0.5)
        ax.set_ylim(0, max(0.05, max(e.high for _, e in rows) * 1.1))
        ax.yaxis.set_major_formatter(lambda v, _: f"{v:.0%}")
        ax.set_ylabel(f"failure rate per {period}")
        ax.legend(loc="upper left", frameon=False, fontsize=8)
        ax.tick_params(axis="x", labelsize=8, rotation=30)

    return _svg(draw)


def reliability(points: Sequence[ReliabilityPoint]) -> str:
    """The reliability diagram: mean p_fail against the failure rate, per bin (dot size: reviews)."""

    def draw(ax: Any) -> None:
        ax.plot([0, 1], [0, 1], linestyle="--", color="#888888", linewidth=1, label="calibrated")
        if points:
            ax.scatter(
                [p.p_fail for p in points],
                [p.failure_rate for p in points],
                s=[10 + 4 * p.n for p in points],
                color=INK,
                alpha=0.8,
                label="held-out reviews",
            )
        ax.set_xlim(0, 1)
        ax.set_ylim(0, 1)
        ax.set_xlabel("p_fail")
        ax.set_ylabel("failure rate")
        ax.legend(loc="upper left", frameon=False, fontsize=8)

    return _svg(draw)


def throughput(days: Sequence[Throughput]) -> str:
    """Verdicts per day."""

    def draw(ax: Any) -> None:
        ax.bar([d.day[5:] for d in days], [d.reviews for d in days], color=INK)
        ax.set_ylabel("reviews per day")
        ax.tick_params(axis="x", labelsize=7, rotation=45)

    return _svg(draw)


def learning_curve(points: Sequence[LearningPoint]) -> str:
    """Cross-validated AUROC of each scorer version against the labels it was trained on (hollow:
    kept back, cold start scored the queue)."""

    def draw(ax: Any) -> None:
        scored = [p for p in points if p.cv_auroc is not None]
        ax.plot([p.labels for p in scored], [p.cv_auroc for p in scored], color=INK, linewidth=1)
        used = [p for p in scored if p.used]
        kept = [p for p in scored if not p.used]
        ax.scatter([p.labels for p in used], [p.cv_auroc for p in used], color=INK, s=18, label="used")
        if kept:
            ax.scatter(
                [p.labels for p in kept],
                [p.cv_auroc for p in kept],
                facecolors="none",
                edgecolors=INK,
                s=18,
                label="kept back",
            )
        ax.axhline(0.5, linestyle="--", color="#888888", linewidth=1)
        ax.set_ylim(0.3, 1.0)
        ax.set_xlabel("reviews trained on")
        ax.set_ylabel("cross-validated AUROC")
        ax.legend(loc="lower right", frameon=False, fontsize=8)

    return _svg(draw)
