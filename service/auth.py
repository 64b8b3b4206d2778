"""Who may do what: roles, permissions, password hashing and tokens (no I/O here).

People sign in with a username and password and get a session token (cookie for the pages, bearer
for the API). Applications post outputs with API keys. Passwords are hashed with Argon2id
(argon2-cffi); tokens and keys are random and stored only as their SHA-256, which is enough for
secrets with 256 bits of entropy and keeps every request's lookup a single indexed read.
"""

from __future__ import annotations

import hashlib
import hmac
import secrets
from dataclasses import dataclass
from enum import StrEnum

from argon2 import PasswordHasher
from argon2.exceptions import InvalidHashError, VerificationError

SESSION_PREFIX = "rrs_"
API_KEY_PREFIX = "rrk_"


class Role(StrEnum):
    admin = "admin"
    reviewer = "reviewer"
    viewer = "viewer"


class Permission(StrEnum):
    ingest = "ingest"  # post outputs
    read = "read"  # queues, outputs, reviews, statistics
    review = "review"  # claim items, record, skip and undo verdicts
    adjudicate = "adjudicate"  # resolve double-review disagreements
    administer = "administer"  # accounts and API keys


ROLE_PERMISSIONS: dict[str, frozenset[Permission]] = {
    Role.viewer: frozenset({Permission.read}),
    Role.reviewer: frozenset({Permission.read, Permission.review}),
    Role.admin: frozenset(Permission),
    # An application's key posts outputs and nothing else: it cannot read reviews or act as a person.
    "app": frozenset({Permission.ingest}),
}


@dataclass(frozen=True)
class Principal:
    """Whoever is making the request: a signed-in person or an application's API key."""

    kind: str  # "user" or "api_key"
    id: str
    name: str
    role: str
    session_id: str | None = None
    csrf_token: str | None = None
    via_cookie: bool = False
    #: An API key's own ingest limit (outputs per minute); None: the instance's default.
    rate_per_minute: int | None = None

    def can(self, permission: Permission) -> bool:
        return permission in ROLE_PERMISSIONS.get(self.role, frozenset())

    @property
    def user_id(self) -> str | None:
        return self.id if self.kind == "user" else None


_hasher = PasswordHasher()


def hash_password(password: str) -> str:
    """An Argon2id hash with a fresh salt, in the self-describing PHC string format."""
    return _hasher.hash(password)


def verify_password(password_hash: str, password: str) -> bool:
    """Whether the password matches; a malformed hash never matches."""
    try:
        return _hasher.verify(password_hash, password)
    except (VerificationError, InvalidHashError):
        return False


def needs_rehash(password_hash: str) -> bool:
    return _hasher.check_needs_rehash(password_hash)


def new_token(prefix: str) -> str:
    """A random secret with a readable prefix saying what it is."""
    return prefix + secrets.token_urlsafe(32)


def token_digest(token: str) -> str:
    return hashlib.sha256(token.encode()).hexdigest()


def same_secret(a: str, b: str) -> bool:
    return hmac.compare_digest(a.encode(), b.encode())


MIN_PASSWORD_LENGTH = 8


def password_problem(password: str) -> str | None:
    """Why a new password is refused, or None."""
    if len(password) < MIN_PASSWORD_LENGTH:
        return f"a password needs at least {MIN_PASSWORD_LENGTH} characters"
    if len(password) > 1024:
        return "a password is at most 1024 characters"
    return None
