"""Pydantic models for signing in, accounts and applications' API keys (no I/O here)."""

from __future__ import annotations

from datetime import datetime

from pydantic import BaseModel, ConfigDict, Field

from service.auth import Role
from service.hygiene import CleanInput


class LoginIn(CleanInput):
    model_config = ConfigDict(extra="forbid")

    username: str = Field(min_length=1, max_length=64)
    password: str = Field(min_length=1, max_length=1024)


class UserView(BaseModel):
    model_config = ConfigDict(from_attributes=True)

    id: str
    username: str
    role: Role
    active: bool
    created_at: datetime


class SessionOut(BaseModel):
    """A new session: send ``token`` as ``Authorization: Bearer``; no CSRF token is needed then."""

    token: str
    expires_at: datetime
    user: UserView


class UserIn(CleanInput):
    model_config = ConfigDict(extra="forbid")

    username: str = Field(min_length=1, max_length=64, pattern=r"^[A-Za-z0-9._@-]+$")
    password: str = Field(min_length=1, max_length=1024)
    role: Role = Role.reviewer


class UserPatch(CleanInput):
    model_config = ConfigDict(extra="forbid")

    role: Role | None = None
    active: bool | None = None
    password: str | None = Field(default=None, min_length=1, max_length=1024)


class ApiKeyIn(CleanInput):
    model_config = ConfigDict(extra="forbid")

    name: str = Field(min_length=1, max_length=100, description="Which application uses the key.")
    rate_per_minute: int | None = Field(
        default=None,
        ge=0,
        le=2**31 - 1,
        description="Outputs it may post a minute (0: no limit; null: default).",
    )


class ApiKeyView(BaseModel):
    model_config = ConfigDict(from_attributes=True)

    id: str
    name: str
    prefix: str = Field(description="The key's first characters, to recognise it.")
    created_at: datetime
    revoked_at: datetime | None
    last_used_at: datetime | None
    rate_per_minute: int | None = None


class ApiKeyCreated(ApiKeyView):
    key: str = Field(description="The key itself. It is shown this once; only its hash is stored.")
