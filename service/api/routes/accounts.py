"""Signing in, accounts (admin) and applications' API keys (admin)."""

from __future__ import annotations

from fastapi import APIRouter, Response, status

from service import auth
from service.deps import AdminDep, SessionDep, SettingsDep, UserDep
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
from service.usecases import accounts
from service.views import key_view, user_view

router = APIRouter(tags=["accounts"])


@router.post("/sessions", status_code=status.HTTP_201_CREATED, response_model=SessionOut)
def sign_in(login: LoginIn, session: SessionDep, settings: SettingsDep) -> SessionOut:
    """Sign in with a username and password; the token works as a bearer token until it expires."""
    with session.begin():
        signed = accounts.sign_in(session, settings, username=login.username, password=login.password)
        if signed is not None:
            token, row, user = signed
            return SessionOut(token=token, expires_at=row.expires_at, user=user_view(user))
    raise accounts.refused_sign_in()


@router.delete("/sessions/current", status_code=status.HTTP_204_NO_CONTENT)
def sign_out(principal: UserDep, session: SessionDep) -> Response:
    """End the session this request was made with."""
    with session.begin():
        accounts.sign_out(session, principal)
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
    return accounts.people(session)


@router.post("/users", status_code=status.HTTP_201_CREATED, response_model=UserView)
def add_user(user_in: UserIn, _: AdminDep, session: SessionDep) -> UserView:
    """Create an account with a role: admin, reviewer or viewer."""
    with session.begin():
        user = accounts.add_user(
            session, username=user_in.username, password=user_in.password, role=user_in.role
        )
        return user_view(user)


@router.patch("/users/{user_id}", response_model=UserView)
def change_user(user_id: str, patch: UserPatch, _: AdminDep, session: SessionDep) -> UserView:
    """Change a role, deactivate (signs the user out everywhere) or set a new password."""
    with session.begin():
        user = accounts.change_user(
            session, user_id=user_id, role=patch.role, active=patch.active, password=patch.password
        )
        return user_view(user)


@router.get("/api-keys", response_model=list[ApiKeyView])
def list_keys(_: AdminDep, session: SessionDep) -> list[ApiKeyView]:
    return accounts.keys(session)


@router.post("/api-keys", status_code=status.HTTP_201_CREATED, response_model=ApiKeyCreated)
def create_key(key_in: ApiKeyIn, principal: AdminDep, session: SessionDep) -> ApiKeyCreated:
    """A new ingest key for an application. The key is in this answer only; store it now."""
    with session.begin():
        key, row = accounts.create_key(
            session, principal, name=key_in.name, rate_per_minute=key_in.rate_per_minute
        )
        return ApiKeyCreated(key=key, **key_view(row).model_dump())


@router.delete("/api-keys/{key_id}", response_model=ApiKeyView)
def revoke_key(key_id: str, _: AdminDep, session: SessionDep) -> ApiKeyView:
    """Revoke a key: requests with it are refused from now on."""
    with session.begin():
        return key_view(accounts.revoke_key(session, key_id=key_id))
