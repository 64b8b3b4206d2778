"""What an application posts: one LLM output, in the shape `POST /v1/outputs` takes."""

from __future__ import annotations

import uuid
from typing import Any

from pydantic import BaseModel, ConfigDict, Field, model_validator


class Output(BaseModel):
    """One LLM output. Give ``messages`` (chat) or ``prompt`` (text), and ``response`` (text) or
    ``completion`` (the OpenAI chat-completion object, log-probs included). ``external_id`` makes a
    repeat idempotent; the client fills in a random one when none is given, so its retries never post
    an output twice."""

    model_config = ConfigDict(extra="forbid")

    external_id: str = Field(default_factory=lambda: uuid.uuid4().hex, min_length=1, max_length=200)
    app: str = Field(default="default", min_length=1, max_length=100, pattern=r"^[A-Za-z0-9._:/-]+$")
    model: str | None = None
    messages: list[dict[str, Any]] | None = None
    prompt: str | None = None
    response: str | None = None
    completion: dict[str, Any] | None = None
    samples: list[str] = Field(default_factory=list)
    metadata: dict[str, Any] = Field(default_factory=dict)

    @model_validator(mode="after")
    def _one_input_one_output(self) -> Output:
        if (self.messages is None) == (self.prompt is None):
            raise ValueError("give exactly one of `messages` (chat format) or `prompt` (text)")
        if (self.response is None) == (self.completion is None):
            raise ValueError("give exactly one of `response` (text) or `completion` (OpenAI object)")
        return self

    def body(self) -> dict[str, Any]:
        """The JSON body of this output, without the fields left empty."""
        return self.model_dump(mode="json", exclude_none=True)


def as_dict(value: Any) -> Any:
    """An SDK object (pydantic, as the OpenAI SDK's are) as plain JSON data; other values unchanged."""
    if hasattr(value, "model_dump"):
        return value.model_dump(mode="json", exclude_unset=False)
    if isinstance(value, list | tuple):
        return [as_dict(v) for v in value]
    if isinstance(value, dict):
        return {k: as_dict(v) for k, v in value.items()}
    return value
