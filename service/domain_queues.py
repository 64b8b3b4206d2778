"""Pydantic models of review queues: a queue, its waiting items, and its statistics (the failure-rate
estimates and the active learned scorer's calibration). No I/O here."""

from __future__ import annotations

from datetime import datetime

from pydantic import BaseModel, Field


class QueueView(BaseModel):
    name: str
    apps: list[str]
    budget_per_day: int
    backlog_limit: int
    audit_share: float
    audit_share_now: float = Field(
        description="The share the latest selection drew its audit with: audit_share, or more while "
        "the traffic drifts or the interval is wider than target_width."
    )
    target_width: float | None = Field(default=None, description="The widest 95% interval wanted, if set.")
    waiting: int
    picked_today: int
    reviewed_today: int
    junk: dict[str, int] = Field(description="Outputs kept out of reviewers' way, by reason.")


class QueueItem(BaseModel):
    output_id: str
    external_id: str | None
    app: str
    model: str | None
    prompt: str
    response: str
    score: float | None
    reason: str
    stratum: str
    routed: bool = Field(
        description="Chosen by routing and served at its score (an audit member routing chose too "
        "included); false for an audit member waiting for the audit's turn."
    )
    inclusion_probability: float | None
    cluster: int | None
    duplicates: int = Field(description="Near-duplicate outputs this item stands for.")
    picked_at: datetime


class QueueItems(BaseModel):
    queue: str
    total: int
    items: list[QueueItem]
    audit_waiting: int = Field(
        default=0,
        description="Audit members waiting for the audit's turns. They are not listed: claims serve "
        "them at those turns, in a random order, so that the reviewed ones stay a random sample.",
    )


class RateView(BaseModel):
    rate: float
    low: float
    high: float
    method: str
    n_audit: int
    n_reviews: int
    withheld: int = Field(
        default=0,
        description="Audit members a reviewer skipped that have no verdict yet: skips are not random, "
        "so the interval counts them as passes for its low bound and as failures for its high one.",
    )
    gain: float = Field(
        default=1.0,
        description="How many times fewer audit reviews the part routing has not reached needed "
        "because the scores of all of it predict the reviewed members' verdicts (model-assisted); "
        "1 when they do not.",
    )


class ReliabilityPoint(BaseModel):
    p_fail: float = Field(description="Mean p_fail of the bin's held-out reviews.")
    failure_rate: float
    n: int


class ModelView(BaseModel):
    """The queue's active learned scorer and how well calibrated its p_fail is on held-out reviews."""

    version: str
    created_at: datetime
    reviews: int = Field(description="Reviews it was trained on.")
    failures: int
    calibration: str = Field(description="platt, isotonic, or none (too little out-of-fold skill yet).")
    cv_auroc: float | None = Field(description="AUROC of its out-of-fold scores.")
    brier: float | None = Field(description="Brier score of p_fail on held-out reviews (cross-fitted).")
    ece: float | None = Field(description="Expected calibration error over 10 bins, held-out reviews.")
    reliability: list[ReliabilityPoint] = Field(description="The reliability diagram's points.")


class QueueStats(BaseModel):
    queue: str
    outputs: int = Field(
        description="Scored outputs of the queue's traffic, junk apart: what the estimate is about."
    )
    reviews: int
    failures: int
    estimate: RateView | None = Field(
        description="Failure rate of the queue's traffic: routing's reviews known exactly; everything "
        "routing has not reached, waiting picks included, at the rate of the reviewed audit members "
        "among it (routing chooses blind to the audit, so they are a uniform sample of it)."
    )
    audit_only: RateView | None = Field(
        description="The same from the audit members alone, a uniform draw of the traffic: the plain check."
    )
    windows: RateView | None = Field(
        default=None,
        description="Deprecated, always null: the per-run Horvitz-Thompson check of the old per-run "
        "audit design (the audit now draws each output once, at first sight).",
    )
    runs_used: int = Field(default=0, description="Deprecated, always 0 (see `windows`).")
    runs_pending: int = Field(default=0, description="Deprecated, always 0 (see `windows`).")
    model: ModelView | None = Field(
        default=None, description="The active learned scorer; null while the queue is on cold start."
    )
    junk: dict[str, int]


class PeriodRate(BaseModel):
    start: datetime = Field(description="The day or ISO week (Monday) the outputs arrived in, UTC.")
    outputs: int
    reviews: int
    estimate: RateView | None = Field(
        description="Failure rate of that period's traffic, every review counted."
    )


class LiftView(BaseModel):
    """What routing found against the random audit."""

    routed_reviews: int
    routed_failures: int
    audit_reviews: int
    audit_failures: int
    failures_per_100_routed: float | None
    audit_rate: float | None = Field(description="Failure rate of the audit: what random review would find.")
    lift: float | None = Field(default=None, description="Routed failure rate over the audit's.")
    low: float | None = Field(default=None, description="95% interval of the lift (Katz, log scale).")
    high: float | None = None
    random_reviews_needed: float | None = Field(
        default=None,
        description="Label efficiency: reviews at the audit's rate that would have found as many failures "
        "as every review did.",
    )
    recall: float | None = Field(
        default=None, description="Share of all the traffic's failures the reviews found (estimated)."
    )
    recall_low: float | None = None
    recall_high: float | None = None


class Throughput(BaseModel):
    day: str
    reviews: int


class DriftView(BaseModel):
    """The queue's latest outputs against the ones before them, by their embeddings."""

    recent: int
    reference: int
    shift: float = Field(description="Largest shift of a principal component, in standard deviations.")
    p_value: float = Field(description="Welch's t-test, Bonferroni over the components.")
    drifted: bool
    audit_share: float = Field(description="The audit share selection uses now (raised while drifting).")


class RecommendationView(BaseModel):
    """Do more reviews still pay? (core/evidence.py)"""

    action: str = Field(description="keep, lower the budget, stop, resume, or not enough evidence.")
    why: str = Field(description="The numbers behind it.")
    recent_yield: float | None = Field(
        default=None, description="Failure share of the latest routed reviews."
    )
    audit_rate: float | None = None


class PartRate(BaseModel):
    """The failure rate of one part of a queue's traffic, every review counted as for the queue."""

    outputs: int
    reviews: int
    failures: int
    estimate: RateView | None = Field(
        description="Every review counted, as for the queue; null before the part's first review."
    )


class GroupRate(PartRate):
    """The failure rate of one app's or one model's share of a queue's traffic."""

    by: str = Field(description="app or model")
    name: str = Field(description='The app or model ("unknown" for outputs posted without a model).')


class TopicRate(PartRate):
    """One topic of the queue's latest traffic (``core/topics.py``): its failure rate, and whether
    more reviews of it still pay."""

    topic: int = Field(description="0 is the largest.")
    example: str = Field(description="The prompt of its most central output (its first 120 characters).")
    recommendation: RecommendationView = Field(
        description="Keep, lower the budget, stop or not enough evidence, from the topic's latest "
        "routed reviews against its audit members."
    )


class LearningPoint(BaseModel):
    labels: int = Field(description="Reviews the scorer version was trained on.")
    cv_auroc: float | None = Field(
        description="Its out-of-fold AUROC on them (null before 10 of each verdict)."
    )
    used: bool = Field(description="Whether it scored the queue (false: kept back, cold start scored).")


class MarginalView(BaseModel):
    """What the queue's latest reviews bought (``core.evidence.marginal_value``)."""

    reviews: int
    failures: int
    new_modes: int = Field(
        description="Failures less than `floor` alike (cosine) to every failure reviewed before them."
    )
    floor: float


class QueueReport(BaseModel):
    """Everything the dashboard shows for a queue."""

    recommendation: RecommendationView

    stats: QueueStats
    drift: DriftView | None = Field(description="Null until the queue has enough outputs to compare.")
    period: str = Field(description="day or week: the buckets of over_time.")
    over_time: list[PeriodRate]
    learning: list[LearningPoint] = Field(
        default_factory=list, description="Every version of the queue's scorer, oldest first."
    )
    auroc_gain_per_100_labels: float | None = Field(
        default=None,
        description="Slope of the cross-validated AUROC over the latest five versions, per 100 labels.",
    )
    groups: list[GroupRate] = Field(
        default_factory=list,
        description="The failure rate per app and per model, largest first (each with its interval).",
    )
    topics: list[TopicRate] = Field(
        default_factory=list,
        description="The failure rate and the advice per topic of the queue's latest outputs, largest "
        "first (empty while there are too few outputs for two topics).",
    )
    marginal: MarginalView | None = Field(
        default=None,
        description="The latest 50 reviews: their failures, and how many were unlike any failure "
        "found before (new failure modes per review falling toward zero: more of the same).",
    )
    lift: LiftView
    throughput: list[Throughput] = Field(description="Verdicts per day, the last 14 days.")
