"""Pydantic models of eval suites, fine-tuning sets, their versions and promotion rules (no I/O)."""

from __future__ import annotations

from datetime import datetime
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field

from core.promotion import RuleCondition
from service.hygiene import CleanInput

NAME_PATTERN = r"^[a-z0-9][a-z0-9_-]{0,62}$"
CollectionKind = Literal["eval_suite", "finetune_set"]
ExportFormat = Literal["openai-chat", "openai-dpo", "eval-jsonl", "csv"]


class CollectionIn(CleanInput):
    model_config = ConfigDict(extra="forbid")

    name: str = Field(pattern=NAME_PATTERN, description="Lowercase letters, digits, - and _.")
    kind: CollectionKind
    description: str = Field(default="", max_length=2000)


class VersionView(BaseModel):
    number: int
    created_at: datetime
    created_by: str | None
    note: str | None
    items: int
    held_back: int = Field(description="Items every export of this version holds back (leakage).")
    checked_against: dict[str, int] = Field(description="Other-side collections and versions checked.")


class CollectionView(BaseModel):
    name: str
    kind: CollectionKind
    description: str
    created_at: datetime
    created_by: str | None
    latest: VersionView | None


class CollectionDetail(CollectionView):
    versions: list[VersionView]


class ItemView(BaseModel):
    entry_id: str
    input: list[dict[str, Any]]
    bad_output: str | None
    ideal: str | None
    categories: list[str]
    provenance: dict[str, Any]
    merged_output_ids: list[str]
    held_back: bool


class VersionDetail(VersionView):
    collection: str
    entries: list[ItemView] = Field(description="The version's items in export order.")


class PromoteIn(CleanInput):
    model_config = ConfigDict(extra="forbid")

    output_ids: list[str] = Field(min_length=1, max_length=1000)
    note: str | None = Field(default=None, max_length=2000)


class BulkPromoteIn(CleanInput):
    """Promote every verdict that meets all the filters that are set."""

    model_config = ConfigDict(extra="forbid")

    queue: str | None = None
    verdict: Literal["pass", "fail"] | None = None
    category: str | None = None
    app: str | None = None
    reviewed_from: datetime | None = None
    reviewed_to: datetime | None = Field(default=None, description="Exclusive.")
    limit: int = Field(default=1000, ge=1, le=10_000)


class PromotionResult(BaseModel):
    matched: int
    version: VersionView | None = Field(description="The new version; null when nothing changed.")


class RuleIn(CleanInput):
    model_config = ConfigDict(extra="forbid")

    name: str = Field(pattern=NAME_PATTERN)
    collection: str
    condition: RuleCondition


class RulePatch(CleanInput):
    model_config = ConfigDict(extra="forbid")

    active: bool


class RuleView(BaseModel):
    name: str
    collection: str
    condition: RuleCondition
    active: bool
    created_at: datetime
    created_by: str | None


class RerunIn(CleanInput):
    model_config = ConfigDict(extra="forbid")

    rules: list[str] | None = Field(default=None, description="Only these rules; all active ones if null.")


class RerunResult(BaseModel):
    versions: dict[str, int] = Field(description="Collections that gained a version, and its number.")
