"""Accounts and keys, shared by the REST API and the admin pages: signing in and out, adding and
changing people, and issuing and revoking applications' keys.

Like every use case, none of these commits: the route owns the transaction. Only an admin reaches the
account functions (the route dependencies check it first).
"""

from __future__ import annotations

from datetime import timedelta

from sqlalchemy.orm import Session

from service import auth
from service.auth import Principal
from service.domain_accounts import ApiKeyView, UserView
from service.errors import Unauthenticated, ValidationFailed
from service.settings import Settings
from service.storage import accounts
from service.storage.tables import ApiKey, User, WebSession, utcnow
from service.views import key_view, user_view


def checked_password(password: str) -> str:
    """The hash of a new password that meets the rules (422 naming the rule otherwise)."""
    problem = auth.password_problem(password)
    if problem is not None:
        raise ValidationFailed(problem, details={"field": "password"})
    return auth.hash_password(password)


def sign_in(
    session: Session, settings: Settings, *, username: str, password: str
) -> tuple[str, WebSession, User] | None:
    """A new session (its token, row and person) for a right username and password, else None.

    A wrong try is counted toward the name's lock-out, so the caller commits first and only then
    refuses with ``refused_sign_in()``."""
    return accounts.sign_in(
        session,
        username=username,
        password=password,
        now=utcnow(),
        lifetime=timedelta(hours=settings.session_hours),
    )


def refused_sign_in() -> Unauthenticated:
    """The one answer to every wrong username or password."""
    return Unauthenticated("wrong username or password")


def sign_out(session: Session, principal: Principal) -> None:
    """End the session this request was made with (nothing for a bearer of an API key)."""
    if principal.session_id is not None:
        accounts.close_session(session, session_id=principal.session_id)


def people(session: Session) -> list[UserView]:
    return [user_view(u) for u in accounts.list_users(session)]


def keys(session: Session) -> list[ApiKeyView]:
    return [key_view(k) for k in accounts.list_api_keys(session)]


def add_user(session: Session, *, username: str, password: str, role: auth.Role) -> User:
    """A new account with a role; the password must meet the rules."""
    return accounts.add_user(
        session, username=username, password_hash=checked_password(password), role=role.value, now=utcnow()
    )


def change_user(
    session: Session,
    *,
    user_id: str,
    role: auth.Role | None = None,
    active: bool | None = None,
    password: str | None = None,
) -> User:
    """Change a role, deactivate (signs the person out everywhere) or set a new password."""
    password_hash = checked_password(password) if password is not None else None
    return accounts.update_user(
        session,
        user=accounts.get_user(session, user_id=user_id),
        role=role.value if role is not None else None,
        active=active,
        password_hash=password_hash,
    )


def create_key(
    session: Session, principal: Principal, *, name: str, rate_per_minute: int | None = None
) -> tuple[str, ApiKey]:
    """A new ingest key for an application: the key itself (shown once) and its stored row."""
    return accounts.create_api_key(
        session, name=name, created_by=principal.user_id, now=utcnow(), rate_per_minute=rate_per_minute
    )


def revoke_key(session: Session, *, key_id: str) -> ApiKey:
    """Revoke a key: requests with it are refused from now on."""
    return accounts.revoke_api_key(session, key_id=key_id, now=utcnow())
