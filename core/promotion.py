"""Promotion, pure: which rules a verdict matches, and the frozen content a promoted item carries.

A rule names a collection and a condition. Every part of the condition that is set must hold:
``verdict`` equals, ``has_correction`` equals whether the reviewer wrote a corrected answer,
``categories`` shares at least one category with the review, and ``queues``, ``apps`` and
``models`` list accepted values (empty accepts any). A blind second verdict (kind ``qc``) never
promotes: it measures agreement, it is not the item's verdict.
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Sequence
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field

from core.reviews import counts_as_verdict

COLLECTION_KINDS = ("eval_suite", "finetune_set")


class RuleCondition(BaseModel):
    """What a verdict must look like for a rule to promote it."""

    model_config = ConfigDict(extra="forbid")

    verdict: Literal["pass", "fail"] | None = Field(default=None, description="Only this verdict.")
    has_correction: bool | None = Field(default=None, description="Whether a corrected answer is given.")
    categories: list[str] = Field(default_factory=list, description="Any of these failure categories.")
    queues: list[str] = Field(default_factory=list, description="Only reviews in these queues.")
    apps: list[str] = Field(default_factory=list, description="Only outputs of these apps.")
    models: list[str] = Field(default_factory=list, description="Only outputs of these models.")


@dataclass(frozen=True)
class ReviewFacts:
    """What a rule looks at: the verdict and the output it judged."""

    kind: str
    verdict: str
    categories: Sequence[str]
    correction: str | None
    queue: str | None
    app: str
    model: str | None


@dataclass(frozen=True)
class Rule:
    name: str
    collection: str
    condition: RuleCondition
    active: bool = True


def matches(condition: RuleCondition, facts: ReviewFacts) -> bool:
    """Whether a verdict meets every part of the condition that is set."""
    if not counts_as_verdict(facts.kind):
        return False
    if condition.verdict is not None and facts.verdict != condition.verdict:
        return False
    has_correction = bool(facts.correction and facts.correction.strip())
    if condition.has_correction is not None and has_correction != condition.has_correction:
        return False
    if condition.categories and not set(condition.categories) & set(facts.categories):
        return False
    if condition.queues and facts.queue not in condition.queues:
        return False
    if condition.apps and facts.app not in condition.apps:
        return False
    return not condition.models or facts.model in condition.models


def matching_rules(rules: Sequence[Rule], facts: ReviewFacts) -> list[Rule]:
    """The active rules this verdict meets, by name (so the outcome never depends on storage order)."""
    return sorted((r for r in rules if r.active and matches(r.condition, facts)), key=lambda r: r.name)


def favoured_kind(output_id: str, eval_share: float) -> str:
    """Which side keeps a failure promoted to an eval suite and a fine-tuning set at the same moment:
    a stable draw from the output id, like a train/test split by item."""
    draw = int(hashlib.sha256(f"leakage:{output_id}".encode()).hexdigest()[:8], 16) / 0xFFFFFFFF
    return "eval_suite" if draw < eval_share else "finetune_set"


@dataclass(frozen=True)
class EntryContent:
    """The frozen content of a promoted item; a version refers to it and never changes it."""

    input: list[dict[str, Any]]
    bad_output: str | None
    ideal: str | None
    categories: list[str]
    provenance: dict[str, Any] = field(default_factory=dict)


def input_messages(prompt: str, messages: list[dict[str, Any]] | None) -> list[dict[str, Any]]:
    """The conversation the model answered: the posted chat messages, or the prompt as one user turn."""
    if messages:
        return [dict(m) for m in messages]
    return [{"role": "user", "content": prompt}]


def entry_content(
    *,
    prompt: str,
    messages: list[dict[str, Any]] | None,
    response: str,
    verdict: str,
    correction: str | None,
    categories: Sequence[str],
    provenance: dict[str, Any],
) -> EntryContent:
    """A failure keeps its bad output and, when the reviewer wrote one, the ideal answer; a pass is
    its own ideal answer."""
    correction = correction if correction and correction.strip() else None
    if verdict == "fail":
        bad, ideal = response, correction
    else:
        bad, ideal = None, correction or response
    return EntryContent(
        input=input_messages(prompt, messages),
        bad_output=bad,
        ideal=ideal,
        categories=sorted(set(categories)),
        provenance=provenance,
    )


def _text(content: Any) -> str:
    if isinstance(content, str):
        return content
    if isinstance(content, list):
        return " ".join(str(p.get("text", "")) for p in content if isinstance(p, dict))
    return "" if content is None else str(content)


def input_hash(messages: list[dict[str, Any]]) -> str:
    """The duplicate key of an item: its input with case and spacing ignored."""
    canonical = [
        [str(m.get("role", "")), " ".join(_text(m.get("content")).split()).casefold()] for m in messages
    ]
    return hashlib.sha256(json.dumps(canonical, ensure_ascii=False).encode()).hexdigest()


def iso(moment: datetime | None) -> str | None:
    """A timestamp as provenance keeps it (ISO 8601, UTC, seconds)."""
    return moment.isoformat(timespec="seconds") if moment is not None else None
