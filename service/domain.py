"""Pydantic models shared by the API and the workers, and the pure normalisation of an ingested output.

No I/O here. ``OutputIn`` is what an application posts; ``NormalizedOutput`` is what the rest of
the product works with, whichever shape (text, chat completion, legacy completion) it came in.
"""

from __future__ import annotations

import hashlib
import json
import math
from datetime import datetime
from enum import StrEnum
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field, field_validator, model_validator

from core.reviews import ReviewKind
from service.hygiene import CleanInput

MAX_SAMPLES = 50
MAX_TEXT_CHARS = 200_000


class OutputStatus(StrEnum):
    received = "received"
    scored = "scored"
    queued = "queued"
    reviewed = "reviewed"
    junk = "junk"
    error = "error"  # scoring failed on this output alone; ``error`` says why


#: The statuses of a queue's traffic as its failure-rate estimates count it: scored, and not junk.
ESTIMATED = (OutputStatus.scored.value, OutputStatus.queued.value, OutputStatus.reviewed.value)


class Verdict(StrEnum):
    passed = "pass"
    failed = "fail"


class ChatMessage(BaseModel):
    """One OpenAI chat message; content is text or a list of content parts."""

    model_config = ConfigDict(extra="allow")

    role: Literal["system", "developer", "user", "assistant", "tool", "function"]
    content: str | list[dict[str, Any]] | None = None

    def text(self) -> str:
        """The message's text, with content parts joined and non-text parts left out."""
        if self.content is None:
            return ""
        if isinstance(self.content, str):
            return self.content
        return "\n".join(str(p.get("text", "")) for p in self.content if p.get("type") == "text")


class TopLogprob(BaseModel):
    token: str
    logprob: float


class TokenLogprob(BaseModel):
    """A generated token with its log-probability and the alternatives the model considered."""

    token: str
    logprob: float
    top_logprobs: list[TopLogprob] = Field(default_factory=list)

    @field_validator("logprob")
    @classmethod
    def _finite_or_floor(cls, v: float) -> float:
        if math.isnan(v) or v > 1e-6:
            raise ValueError("logprob must be a number <= 0")
        return max(v, -1e4)


class CompletionChoice(BaseModel):
    model_config = ConfigDict(extra="allow")

    index: int = 0
    message: ChatMessage | None = None
    text: str | None = None
    logprobs: dict[str, Any] | None = None
    finish_reason: str | None = None

    def content(self) -> str:
        if self.message is not None:
            return self.message.text()
        return self.text or ""


class Completion(BaseModel):
    """The chat-completion object exactly as the OpenAI SDK returns it (legacy completions too)."""

    model_config = ConfigDict(extra="allow")

    model: str | None = None
    choices: list[CompletionChoice] = Field(min_length=1)


class OutputIn(CleanInput):
    """One LLM output posted by an application."""

    model_config = ConfigDict(extra="forbid")

    external_id: str | None = Field(
        default=None, min_length=1, max_length=200, description="Caller's id; a repeat is idempotent."
    )
    app: str = Field(default="default", min_length=1, max_length=100, pattern=r"^[A-Za-z0-9._:/-]+$")
    model: str | None = Field(default=None, max_length=200)
    messages: list[ChatMessage] | None = Field(default=None, min_length=1, max_length=500)
    prompt: str | None = Field(default=None, max_length=MAX_TEXT_CHARS)
    response: str | None = Field(default=None, max_length=MAX_TEXT_CHARS)
    completion: Completion | None = None
    samples: list[str] = Field(default_factory=list, max_length=MAX_SAMPLES)
    metadata: dict[str, Any] = Field(default_factory=dict)

    @model_validator(mode="after")
    def _one_input_one_output(self) -> OutputIn:
        if (self.messages is None) == (self.prompt is None):
            raise ValueError("give exactly one of `messages` (chat format) or `prompt` (text)")
        if (self.response is None) == (self.completion is None):
            raise ValueError("give exactly one of `response` (text) or `completion` (OpenAI object)")
        if self.completion is not None:
            for choice in self.completion.choices:
                token_logprobs(choice.logprobs)  # raises ValueError with the reason
        return self

    def payload_hash(self) -> str:
        """A stable digest of what was posted, to tell an idempotent repeat from a conflicting one."""
        canonical = json.dumps(self.model_dump(mode="json"), sort_keys=True, separators=(",", ":"))
        return hashlib.sha256(canonical.encode()).hexdigest()


class NormalizedOutput(BaseModel):
    """An output reduced to what scoring needs: texts, token log-probs and samples."""

    app: str
    model: str | None
    external_id: str | None
    prompt: str
    messages: list[dict[str, Any]] | None
    response: str
    finish_reason: str | None
    token_logprobs: list[TokenLogprob] | None
    samples: list[str]
    metadata: dict[str, Any]


def token_logprobs(logprobs: dict[str, Any] | None) -> list[TokenLogprob] | None:
    """Token log-probs from a choice's ``logprobs``, chat shape or legacy completions shape."""
    if not logprobs:
        return None
    if logprobs.get("content") is not None:
        return [TokenLogprob.model_validate(t) for t in logprobs["content"]]
    tokens = logprobs.get("tokens")
    if tokens is None:
        return None
    values = logprobs.get("token_logprobs") or []
    tops = logprobs.get("top_logprobs") or [None] * len(tokens)
    if len(values) != len(tokens) or len(tops) != len(tokens):
        raise ValueError("legacy logprobs: tokens, token_logprobs and top_logprobs differ in length")
    out = []
    for tok, lp, top in zip(tokens, values, tops, strict=True):
        if lp is None:  # the first token of an echoed prompt has no log-prob
            continue
        alternatives = [TopLogprob(token=k, logprob=v) for k, v in (top or {}).items()]
        out.append(TokenLogprob(token=tok, logprob=lp, top_logprobs=alternatives))
    return out


def prompt_text(messages: list[ChatMessage]) -> str:
    """A readable flat rendering of a conversation, one ``role: text`` paragraph per message."""
    return "\n\n".join(f"{m.role}: {m.text()}" for m in messages)


def normalize(output: OutputIn) -> NormalizedOutput:
    """Reduce a posted output to texts, token log-probs and samples (extra choices count as samples)."""
    response = output.response or ""
    finish_reason = None
    lps = None
    samples = list(output.samples)
    model = output.model
    if output.completion is not None:
        choices = sorted(output.completion.choices, key=lambda c: c.index)
        first, rest = choices[0], choices[1:]
        response = first.content()
        finish_reason = first.finish_reason
        lps = token_logprobs(first.logprobs)
        samples += [c.content() for c in rest]
        model = model or output.completion.model
    return NormalizedOutput(
        app=output.app,
        model=model,
        external_id=output.external_id,
        prompt=output.prompt if output.prompt is not None else prompt_text(output.messages or []),
        messages=[m.model_dump(exclude_none=True) for m in output.messages] if output.messages else None,
        response=response,
        finish_reason=finish_reason,
        token_logprobs=lps,
        samples=samples,
        metadata=output.metadata,
    )


class OutputAccepted(BaseModel):
    id: str
    external_id: str | None
    status: OutputStatus
    duplicate: bool = Field(description="True when this external_id was already stored; nothing was added.")


class BatchIn(BaseModel):
    model_config = ConfigDict(extra="forbid")

    outputs: list[dict[str, Any]] = Field(min_length=1)


class BatchItemResult(BaseModel):
    index: int
    status: Literal["accepted", "duplicate", "error"]
    id: str | None = None
    error: dict[str, Any] | None = None


class BatchResult(BaseModel):
    accepted: int
    duplicates: int
    errors: int
    results: list[BatchItemResult]


class PickView(BaseModel):
    queue: str
    reason: str
    stratum: str
    score: float | None
    inclusion_probability: float | None
    cluster: int | None
    duplicates: list[str]
    members: list[str] = Field(
        default_factory=list,
        description="Other outputs of its cluster in its selection run, best score first (at most 20).",
    )
    picked_at: datetime
    reviewed: bool


class ReviewIn(CleanInput):
    """A reviewer's verdict on one output; the reviewer is whoever is signed in."""

    model_config = ConfigDict(extra="forbid")

    output_id: str = Field(min_length=1, max_length=64)
    verdict: Verdict
    categories: list[str] = Field(
        default_factory=list, max_length=20, description="Failure categories from the configured taxonomy."
    )
    correction: str | None = Field(default=None, max_length=MAX_TEXT_CHARS)
    note: str | None = Field(default=None, max_length=10_000)

    @field_validator("categories")
    @classmethod
    def _clean_categories(cls, categories: list[str]) -> list[str]:
        return sorted({c.strip().lower() for c in categories if c.strip()})

    @field_validator("correction", "note")
    @classmethod
    def _blank_is_none(cls, value: str | None) -> str | None:
        return value if value is not None and value.strip() else None


class ReviewView(BaseModel):
    id: str
    output_id: str
    verdict: Verdict
    categories: list[str]
    correction: str | None
    note: str | None
    reviewer: str
    kind: ReviewKind = Field(
        description=(
            "primary: the verdict; qc: a blind second verdict; adjudication: an admin's ruling; "
            "revision: the verdict changed later by its reviewer or an admin (the latest one counts)."
        )
    )
    queue: str | None
    created_at: datetime


class OutputView(BaseModel):
    id: str
    external_id: str | None
    app: str
    model: str | None
    status: OutputStatus
    received_at: datetime
    scored_at: datetime | None
    prompt: str
    messages: list[dict[str, Any]] | None
    response: str
    finish_reason: str | None
    samples: list[str]
    sampling: str | None = Field(description="How samples were obtained: caller, drawn, skipped, off.")
    error: str | None = Field(default=None, description='Why scoring gave up on it (status "error").')
    metadata: dict[str, Any]
    signals: dict[str, float | None]
    score: float | None
    scorer_version: str | None
    drivers: list[dict[str, Any]]
    pick: PickView | None
    reviews: list[ReviewView]
    reviews_hidden: bool = Field(
        default=False, description="True when you may give this item its blind second verdict."
    )


class OutputSummary(BaseModel):
    """One output in a listing: where it stands and how it scored (signals on request)."""

    id: str
    external_id: str | None
    app: str
    queue: str | None
    status: OutputStatus
    score: float | None
    scorer_version: str | None
    signals: dict[str, float | None] | None = None


class OutputPage(BaseModel):
    items: list[OutputSummary]
    next: str | None = Field(description="Pass as `after` for the next page; null on the last page.")
