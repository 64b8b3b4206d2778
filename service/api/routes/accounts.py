"""Signing in, accounts (admin) and applications' API keys (admin)."""

from __future__ import annotations

from datetime import timedelta

from fastapi import APIRouter, Response, status

from service import auth
from service.api.deps import AdminDep, SessionDep, SettingsDep, UserDep
from service.domain_accounts import (
    ApiKeyCreated,
    ApiKeyIn,
    ApiKeyView,
    LoginIn,
    SessionOut,
    UserIn,
    UserPatch,
    UserView,
)
from service.errors import Unauthenticated, ValidationFailed
from service.storage import accounts
from service.storage.tables import ApiKey, User, utcnow

router = APIRouter(tags=["accounts"])


def user_view(user: User) -> UserView:
    return UserView(
        id=user.id,
        username=user.username,
        role=auth.Role(user.role),
        active=user.active,
        created_at=user.created_at,
    )


def key_view(key: ApiKey) -> ApiKeyView:
    return ApiKeyView(
        id=key.id,
        name=key.name,
        prefix=key.prefix,
        created_at=key.created_at,
        revoked_at=key.revoked_at,
        last_used_at=key.last_used_at,
        rate_per_minute=key.rate_per_minute,
    )


def checked_password(password: str) -> str:
    problem = auth.password_problem(password)
    if problem is not None:
        raise ValidationFailed(problem, details={"field": "password"})
    return auth.hash_password(password)


@router.post("/sessions", status_code=status.HTTP_201_CREATED, response_model=SessionOut)
def sign_in(login: LoginIn, session: SessionDep, settings: SettingsDep) -> SessionOut:
    """Sign in with a username and password; the token works as a bearer token until it expires."""
    with session.begin():
        signed = accounts.sign_in(
            session,
            username=login.username,
            password=login.password,
            now=utcnow(),
            lifetime=timedelta(hours=settings.session_hours),
        )
        if signed is not None:
            token, row, user = signed
            return SessionOut(token=token, expires_at=row.expires_at, user=user_view(user))
    raise Unauthenticated("wrong username or password")


@router.delete("/sessions/current", status_code=status.HTTP_204_NO_CONTENT)
def sign_out(principal: UserDep, session: SessionDep) -> Response:
    """End the session this request was made with."""
    if principal.session_id is not None:
        with session.begin():
            accounts.close_session(session, session_id=principal.session_id)
    return Response(status_code=status.HTTP_204_NO_CONTENT)


@router.get("/me")
def me(principal: UserDep) -> dict[str, object]:
    """Who this request is made as, and what it may do."""
    allowed = sorted(p.value for p in auth.Permission if principal.can(p))
    return {
        "kind": principal.kind,
        "id": principal.id,
        "name": principal.name,
        "role": principal.role,
        "permissions": allowed,
    }


@router.get("/users", response_model=list[UserView])
def list_users(_: AdminDep, session: SessionDep) -> list[UserView]:
    return [user_view(u) for u in accounts.list_users(session)]


@router.post("/users", status_code=status.HTTP_201_CREATED, response_model=UserView)
def add_user(user_in: UserIn, _: AdminDep, session: SessionDep) -> UserView:
    """Create an account with a role: admin, reviewer or viewer."""
    password_hash = checked_password(user_in.password)
    with session.begin():
        user = accounts.add_user(
            session,
            username=user_in.username,
            password_hash=password_hash,
            role=user_in.role.value,
            now=utcnow(),
        )
        return user_view(user)


@router.patch("/users/{user_id}", response_model=UserView)
def change_user(user_id: str, patch: UserPatch, _: AdminDep, session: SessionDep) -> UserView:
    """Change a role, deactivate (signs the user out everywhere) or set a new password."""
    password_hash = checked_password(patch.password) if patch.password is not None else None
    with session.begin():
        user = accounts.update_user(
            session,
            user=accounts.get_user(session, user_id=user_id),
            role=patch.role.value if patch.role is not None else None,
            active=patch.active,
            password_hash=password_hash,
        )
        return user_view(user)


@router.get("/api-keys", response_model=list[ApiKeyView])
def list_keys(_: AdminDep, session: SessionDep) -> list[ApiKeyView]:
    return [key_view(k) for k in accounts.list_api_keys(session)]


@router.post("/api-keys", status_code=status.HTTP_201_CREATED, response_model=ApiKeyCreated)
def create_key(key_in: ApiKeyIn, principal: AdminDep, session: SessionDep) -> ApiKeyCreated:
    """A new ingest key for an application. The key is in this answer only; store it now."""
    with session.begin():
        key, row = accounts.create_api_key(
            session,
            name=key_in.name,
            created_by=principal.user_id,
            now=utcnow(),
            rate_per_minute=key_in.rate_per_minute,
        )
        return ApiKeyCreated(key=key, **key_view(row).model_dump())


@router.delete("/api-keys/{key_id}", response_model=ApiKeyView)
def revoke_key(key_id: str, _: AdminDep, session: SessionDep) -> ApiKeyView:
    """Revoke a key: requests with it are refused from now on."""
    with session.begin():
        return key_view(accounts.revoke_api_key(session, key_id=key_id, now=utcnow()))
