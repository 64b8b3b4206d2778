"""SQLAlchemy 2 tables: outputs, their picks into review queues, reviews, and the people and keys
allowed to touch them."""

from __future__ import annotations

from datetime import datetime
from typing import Any

from sqlalchemy import (
    Boolean,
    Float,
    ForeignKey,
    Index,
    Integer,
    LargeBinary,
    String,
    Text,
    UniqueConstraint,
    or_,
)
from sqlalchemy.ext.hybrid import hybrid_property
from sqlalchemy.orm import DeclarativeBase, Mapped, mapped_column
from sqlalchemy.sql.elements import ColumnElement

from core.reviews import ReviewKind, counts_as_verdict
from service.storage.columns import JSONType, UTCDateTime, new_id, utcnow


class Base(DeclarativeBase):
    pass


class Output(Base):
    """An LLM output posted by an application, its signals and its score."""

    __tablename__ = "outputs"
    __table_args__ = (
        UniqueConstraint("app", "external_id", name="uq_outputs_app_external_id"),
        Index("ix_outputs_status_received_at", "status", "received_at"),
        Index("ix_outputs_scored_at", "scored_at"),
        Index("ix_outputs_queue_status", "queue", "status"),
        # the audit's top-up and exposure scan a queue's scored outputs by their audit rate
        Index("ix_outputs_queue_status_audit_rate", "queue", "status", "audit_rate"),
    )

    id: Mapped[str] = mapped_column(String(32), primary_key=True, default=new_id)
    external_id: Mapped[str | None] = mapped_column(String(200))
    app: Mapped[str] = mapped_column(String(100))
    model: Mapped[str | None] = mapped_column(String(200))
    payload_hash: Mapped[str] = mapped_column(String(64))
    prompt: Mapped[str] = mapped_column(Text)
    messages: Mapped[list[dict[str, Any]] | None] = mapped_column(JSONType)
    response: Mapped[str] = mapped_column(Text)
    finish_reason: Mapped[str | None] = mapped_column(String(40))
    token_logprobs: Mapped[list[dict[str, Any]] | None] = mapped_column(JSONType)
    samples: Mapped[list[str]] = mapped_column(JSONType, default=list)
    meta: Mapped[dict[str, Any]] = mapped_column("metadata", JSONType, default=dict)
    status: Mapped[str] = mapped_column(String(16), default="received")
    received_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)
    signals: Mapped[dict[str, float | None] | None] = mapped_column(JSONType)
    score: Mapped[float | None] = mapped_column(Float)
    scorer_version: Mapped[str | None] = mapped_column(String(64))
    drivers: Mapped[list[dict[str, Any]] | None] = mapped_column(JSONType)
    embedding: Mapped[bytes | None] = mapped_column(LargeBinary)
    scored_at: Mapped[datetime | None] = mapped_column(UTCDateTime)
    claim_token: Mapped[str | None] = mapped_column(String(32))
    claimed_until: Mapped[datetime | None] = mapped_column(UTCDateTime)
    attempts: Mapped[int] = mapped_column(Integer, default=0)
    sampling: Mapped[str | None] = mapped_column(String(200))
    junk_reason: Mapped[str | None] = mapped_column(String(64))
    #: Why scoring gave up on this output (status "error"): it failed alone, after its batch failed.
    error: Mapped[str | None] = mapped_column(String(500))
    queue: Mapped[str | None] = mapped_column(String(64))
    similar: Mapped[list[dict[str, Any]] | None] = mapped_column(JSONType)  # nearest reviewed, best first
    # The audit's rate when it was first in a selection window (None: not yet); drawn then or never.
    audit_rate: Mapped[float | None] = mapped_column(Float)


class Pick(Base):
    """An output chosen for a review queue, with why it was chosen."""

    __tablename__ = "picks"
    __table_args__ = (
        Index("ix_picks_queue_reviewed_at", "queue", "reviewed_at"),
        Index("ix_picks_qc_state", "qc_state"),
        # Today's budget use (count picked since midnight) and a selection run's cluster on the item page.
        Index("ix_picks_queue_picked_at", "queue", "picked_at"),
        Index("ix_picks_selection_id_cluster", "selection_id", "cluster"),
    )

    id: Mapped[str] = mapped_column(String(32), primary_key=True, default=new_id)
    output_id: Mapped[str] = mapped_column(ForeignKey("outputs.id", ondelete="CASCADE"), unique=True)
    queue: Mapped[str] = mapped_column(String(64))
    stratum: Mapped[str] = mapped_column(String(16))
    reason: Mapped[str] = mapped_column(Text)
    score: Mapped[float | None] = mapped_column(Float)
    # Where the pick stands in review order (None: by its score). An audit pick gets a random place,
    # so the audit is reviewed in an order that says nothing about its outputs' scores.
    queue_rank: Mapped[float | None] = mapped_column(Float)
    picked_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)
    reviewed_at: Mapped[datetime | None] = mapped_column(UTCDateTime)
    inclusion_probability: Mapped[float | None] = mapped_column(Float)
    selection_id: Mapped[str | None] = mapped_column(ForeignKey("selections.id", ondelete="SET NULL"))
    cluster: Mapped[int | None] = mapped_column(Integer)
    duplicates: Mapped[list[str] | None] = mapped_column(JSONType, default=list)
    members: Mapped[list[str] | None] = mapped_column(JSONType, default=list)  # the cluster's others
    # An audit pick routing chose too (blind to the audit), and when its score order reached it.
    routed_at: Mapped[datetime | None] = mapped_column(UTCDateTime)
    passed_at: Mapped[datetime | None] = mapped_column(UTCDateTime)

    @hybrid_property
    def in_routing(self) -> bool:
        """Routing chose it (an audit member it chose too), as against an audit member waiting for
        the audit's turn; usable in a query as ``Pick.in_routing``."""
        return self.stratum != "audit" or self.routed_at is not None

    @in_routing.inplace.expression
    @classmethod
    def _in_routing_expression(cls) -> ColumnElement[bool]:
        return or_(cls.stratum != "audit", cls.routed_at.is_not(None))

    # A reviewer's lease on the item: nobody else is shown it until it runs out.
    claimed_by: Mapped[str | None] = mapped_column(
        ForeignKey("users.id", ondelete="SET NULL", name="fk_picks_claimed_by")
    )
    claimed_until: Mapped[datetime | None] = mapped_column(UTCDateTime)
    # Double review: None (single), "waiting" for a blind second verdict, then "agreed",
    # "disputed" (in the adjudication queue) or "resolved" by an admin.
    qc_state: Mapped[str | None] = mapped_column(String(16))


class Selection(Base):
    """One run of the selector over a queue's window: what the picks' inclusion probabilities refer to."""

    __tablename__ = "selections"
    __table_args__ = (Index("ix_selections_queue_created_at", "queue", "created_at"),)

    id: Mapped[str] = mapped_column(String(32), primary_key=True, default=new_id)
    queue: Mapped[str] = mapped_column(String(64))
    created_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)
    window_size: Mapped[int] = mapped_column(Integer)
    junk: Mapped[int] = mapped_column(Integer, default=0)
    clusters: Mapped[int] = mapped_column(Integer, default=0)
    noise: Mapped[int] = mapped_column(Integer, default=0)
    # The audit share it drew with (raised for drift or a target width): claims serve the audit at it.
    audit_share: Mapped[float | None] = mapped_column(Float)


class Review(Base):
    """A reviewer's verdict on an output."""

    __tablename__ = "reviews"
    __table_args__ = (
        Index("ix_reviews_output_id", "output_id"),
        Index("ix_reviews_created_at", "created_at"),
        Index("ix_reviews_reviewer_id_created_at", "reviewer_id", "created_at"),
    )

    id: Mapped[str] = mapped_column(String(32), primary_key=True, default=new_id)
    output_id: Mapped[str] = mapped_column(ForeignKey("outputs.id", ondelete="CASCADE"))
    queue: Mapped[str | None] = mapped_column(String(64))
    verdict: Mapped[str] = mapped_column(String(8))
    categories: Mapped[list[str]] = mapped_column(JSONType, default=list)
    correction: Mapped[str | None] = mapped_column(Text)
    note: Mapped[str | None] = mapped_column(Text)
    reviewer: Mapped[str] = mapped_column(String(100))
    created_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)
    # primary: the verdict that counts; qc: a blind second verdict; adjudication: an admin's ruling.
    kind: Mapped[str] = mapped_column(String(16), default=ReviewKind.PRIMARY.value, server_default="primary")
    reviewer_id: Mapped[str | None] = mapped_column(
        ForeignKey("users.id", ondelete="SET NULL", name="fk_reviews_reviewer_id")
    )

    @hybrid_property
    def counts_as_verdict(self) -> bool:
        """core.reviews.counts_as_verdict, usable in a query as ``Review.counts_as_verdict``."""
        return counts_as_verdict(self.kind)

    @counts_as_verdict.inplace.expression
    @classmethod
    def _counts_as_verdict_expression(cls) -> ColumnElement[bool]:
        return cls.kind != ReviewKind.QC.value


class ScorerModel(Base):
    """A version of a queue's learned scorer; exactly one per queue is active once any exists."""

    __tablename__ = "scorer_models"
    __table_args__ = (Index("ix_scorer_models_queue_active", "queue", "active"),)

    id: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=True)
    version: Mapped[str] = mapped_column(String(64), unique=True)
    queue: Mapped[str] = mapped_column(String(64), server_default="default")
    created_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)
    n_labels: Mapped[int] = mapped_column(Integer)
    n_failures: Mapped[int] = mapped_column(Integer)
    calibration: Mapped[str] = mapped_column(String(16))
    metrics: Mapped[dict[str, Any]] = mapped_column(JSONType, default=dict)
    active: Mapped[bool] = mapped_column(Boolean, default=False)
    blob: Mapped[bytes] = mapped_column(LargeBinary)


class User(Base):
    """A person who reviews, adjudicates or looks: role is admin, reviewer or viewer."""

    __tablename__ = "users"
    __table_args__ = (UniqueConstraint("username", name="uq_users_username"),)

    id: Mapped[str] = mapped_column(String(32), primary_key=True, default=new_id)
    username: Mapped[str] = mapped_column(String(64))
    password_hash: Mapped[str] = mapped_column(String(255))
    role: Mapped[str] = mapped_column(String(16))
    active: Mapped[bool] = mapped_column(Boolean, default=True)
    created_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)


class SignInFailure(Base):
    """Consecutive wrong sign-ins for a name as typed, whether or not an account has it: past a few,
    that name's sign-ins pause for a while, and an unknown name pauses exactly like a real one."""

    __tablename__ = "sign_in_failures"

    username: Mapped[str] = mapped_column(String(64), primary_key=True)
    failed: Mapped[int] = mapped_column(Integer, default=0, server_default="0")
    locked_until: Mapped[datetime | None] = mapped_column(UTCDateTime)
    last_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)


class WebSession(Base):
    """A signed-in session; the id is the SHA-256 of the token the client holds."""

    __tablename__ = "web_sessions"
    __table_args__ = (Index("ix_web_sessions_user_id", "user_id"),)

    id: Mapped[str] = mapped_column(String(64), primary_key=True)
    user_id: Mapped[str] = mapped_column(ForeignKey("users.id", ondelete="CASCADE"))
    csrf_token: Mapped[str] = mapped_column(String(64))
    created_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)
    expires_at: Mapped[datetime] = mapped_column(UTCDateTime)


class ApiKey(Base):
    """An application's ingest key, stored as its SHA-256; the key itself is shown once."""

    __tablename__ = "api_keys"
    __table_args__ = (UniqueConstraint("key_hash", name="uq_api_keys_key_hash"),)

    id: Mapped[str] = mapped_column(String(32), primary_key=True, default=new_id)
    name: Mapped[str] = mapped_column(String(100))
    prefix: Mapped[str] = mapped_column(String(16))
    key_hash: Mapped[str] = mapped_column(String(64))
    created_by: Mapped[str | None] = mapped_column(ForeignKey("users.id", ondelete="SET NULL"))
    created_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)
    revoked_at: Mapped[datetime | None] = mapped_column(UTCDateTime)
    last_used_at: Mapped[datetime | None] = mapped_column(UTCDateTime)
    #: Outputs this key may post a minute; None: RR_INGEST_RATE_PER_MINUTE (``service.ratelimit``).
    rate_per_minute: Mapped[int | None] = mapped_column(Integer)


class Skip(Base):
    """A reviewer passed on an item without a verdict: they are not shown it again."""

    __tablename__ = "skips"

    output_id: Mapped[str] = mapped_column(ForeignKey("outputs.id", ondelete="CASCADE"), primary_key=True)
    user_id: Mapped[str] = mapped_column(ForeignKey("users.id", ondelete="CASCADE"), primary_key=True)
    created_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)


class Collection(Base):
    """An eval suite or a fine-tuning set: versioned, each version immutable once made."""

    __tablename__ = "collections"
    __table_args__ = (UniqueConstraint("name", name="uq_collections_name"),)

    id: Mapped[str] = mapped_column(String(32), primary_key=True, default=new_id)
    name: Mapped[str] = mapped_column(String(64))
    kind: Mapped[str] = mapped_column(String(16))  # "eval_suite" or "finetune_set"
    description: Mapped[str] = mapped_column(Text, default="")
    created_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)
    created_by: Mapped[str | None] = mapped_column(String(100))


class CollectionEntry(Base):
    """The frozen content of one promoted review in one collection; versions refer to it.

    Output and review ids are plain strings, not foreign keys: a published version must keep its
    content even after its source review is undone or its output deleted.
    """

    __tablename__ = "collection_entries"
    __table_args__ = (
        UniqueConstraint("collection_id", "review_id", name="uq_collection_entries_collection_review"),
        Index("ix_collection_entries_review_id", "review_id"),
        Index("ix_collection_entries_output_id", "output_id"),
    )

    id: Mapped[str] = mapped_column(String(32), primary_key=True, default=new_id)
    collection_id: Mapped[str] = mapped_column(ForeignKey("collections.id", ondelete="CASCADE"))
    output_id: Mapped[str] = mapped_column(String(32))
    review_id: Mapped[str] = mapped_column(String(32))
    input: Mapped[list[dict[str, Any]]] = mapped_column(JSONType)
    bad_output: Mapped[str | None] = mapped_column(Text)
    ideal: Mapped[str | None] = mapped_column(Text)
    categories: Mapped[list[str]] = mapped_column(JSONType, default=list)
    provenance: Mapped[dict[str, Any]] = mapped_column(JSONType, default=dict)
    input_hash: Mapped[str] = mapped_column(String(64))
    embedding: Mapped[bytes | None] = mapped_column(LargeBinary)
    cluster: Mapped[str | None] = mapped_column(String(80))
    created_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)


class CollectionVersion(Base):
    """One immutable version of a collection, with what its exports hold back and why."""

    __tablename__ = "collection_versions"
    __table_args__ = (
        UniqueConstraint("collection_id", "number", name="uq_collection_versions_collection_number"),
    )

    id: Mapped[str] = mapped_column(String(32), primary_key=True, default=new_id)
    collection_id: Mapped[str] = mapped_column(ForeignKey("collections.id", ondelete="CASCADE"))
    number: Mapped[int] = mapped_column(Integer)
    created_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)
    created_by: Mapped[str | None] = mapped_column(String(100))
    note: Mapped[str | None] = mapped_column(Text)
    items: Mapped[int] = mapped_column(Integer, default=0)
    # [{"entry_id", "output_id", "kept_in", "reason", "matches": [...]}]: leakage, decided when made.
    held_back: Mapped[list[dict[str, Any]]] = mapped_column(JSONType, default=list)
    # The versions of the other side's collections this one was checked against: {name: number}.
    checked_against: Mapped[dict[str, int]] = mapped_column(JSONType, default=dict)


class CollectionItem(Base):
    """Membership as a span of versions: an entry, its place in the exports and the duplicates merged
    into it, unchanged from ``from_version`` up to (not including) ``to_version`` (open: still in).

    A new version writes rows only for what changed, so storage grows with the changes, not with
    versions times items.
    """

    __tablename__ = "collection_items"
    __table_args__ = (
        Index("ix_collection_items_entry_id", "entry_id"),
        Index("ix_collection_items_collection_span", "collection_id", "from_version", "to_version"),
    )

    id: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=True)
    collection_id: Mapped[str] = mapped_column(ForeignKey("collections.id", ondelete="CASCADE"))
    entry_id: Mapped[str] = mapped_column(ForeignKey("collection_entries.id", ondelete="CASCADE"))
    from_version: Mapped[int] = mapped_column(Integer)
    to_version: Mapped[int | None] = mapped_column(Integer)
    position: Mapped[int] = mapped_column(Integer)
    merged: Mapped[list[str]] = mapped_column(JSONType, default=list)


class PromotionRule(Base):
    """Promote every verdict that meets a condition into a collection, as it is recorded."""

    __tablename__ = "promotion_rules"
    __table_args__ = (
        UniqueConstraint("name", name="uq_promotion_rules_name"),
        Index("ix_promotion_rules_collection_id", "collection_id"),
    )

    id: Mapped[str] = mapped_column(String(32), primary_key=True, default=new_id)
    name: Mapped[str] = mapped_column(String(64))
    collection_id: Mapped[str] = mapped_column(ForeignKey("collections.id", ondelete="CASCADE"))
    condition: Mapped[dict[str, Any]] = mapped_column(JSONType, default=dict)
    active: Mapped[bool] = mapped_column(Boolean, default=True)
    created_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)
    created_by: Mapped[str | None] = mapped_column(String(100))


class CollectionPending(Base):
    """A rule's promotion or an undo's withdrawal waiting for the collection's next version.

    Verdicts only stage their changes (cheap, in the verdict's transaction); the changes become a
    version when someone asks for the latest one, acts by hand, or RR_COLLECTION_CUT_SECONDS pass.
    """

    __tablename__ = "collection_pending"
    __table_args__ = (Index("ix_collection_pending_collection_id", "collection_id", "created_at"),)

    id: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=True)
    collection_id: Mapped[str] = mapped_column(ForeignKey("collections.id", ondelete="CASCADE"))
    entry_id: Mapped[str] = mapped_column(ForeignKey("collection_entries.id", ondelete="CASCADE"))
    action: Mapped[str] = mapped_column(String(8))  # "add" or "remove"
    created_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)
