"""Signing in and out, and the admin page for accounts and API keys."""

from __future__ import annotations

import secrets

from fastapi import APIRouter, Form, Request
from fastapi.responses import HTMLResponse, Response
from pydantic import ValidationError

from review_ui.pages import local_path, render, see_other
from service import auth
from service.deps import SESSION_COOKIE, AdminDep, PrincipalDep, SessionDep, SettingsDep
from service.domain_accounts import UserIn
from service.errors import CsrfFailed, ServiceError, ValidationFailed, invalid
from service.usecases import accounts

router = APIRouter(prefix="/ui", include_in_schema=False)
LOGIN_CSRF_COOKIE = "rr_login_csrf"


#: Where signing in leads when no page asked for it: what the reviews bought, with a link to each queue.
LANDING = "/ui/dashboard"


@router.get("/login", response_class=HTMLResponse)
def login_page(request: Request, next: str = LANDING, error: str = "") -> HTMLResponse:
    # No session yet: the login form is protected by a double-submit token (cookie == form field).
    token = secrets.token_urlsafe(24)
    response = render(
        request, "login.html", {"next": local_path(next, LANDING), "login_csrf": token, "error": error}
    )
    response.set_cookie(LOGIN_CSRF_COOKIE, token, httponly=True, samesite="strict", path="/ui/login")
    return response


@router.post("/login")
def login(
    request: Request,
    session: SessionDep,
    settings: SettingsDep,
    username: str = Form(""),
    password: str = Form(""),
    login_csrf: str = Form(""),
    next: str = Form(LANDING),
) -> Response:
    cookie = request.cookies.get(LOGIN_CSRF_COOKIE, "")
    if not cookie or not login_csrf or not auth.same_secret(cookie, login_csrf):
        raise CsrfFailed("the sign-in form expired: reload the page and try again")
    try:
        with session.begin():
            signed = accounts.sign_in(session, settings, username=username.strip(), password=password)
        if signed is None:
            raise accounts.refused_sign_in()
    except ServiceError as exc:
        return render(
            request,
            "login.html",
            {
                "next": local_path(next, LANDING),
                "login_csrf": login_csrf,
                "error": exc.message,
                "username": username,
            },
            status_code=exc.status_code,
        )
    token = signed[0]
    response = see_other(local_path(next, LANDING))
    response.set_cookie(
        SESSION_COOKIE,
        token,
        max_age=int(settings.session_hours * 3600),
        httponly=True,
        samesite="lax",
        secure=settings.secure_cookies,
        path="/",
    )
    response.delete_cookie(LOGIN_CSRF_COOKIE, path="/ui/login")
    return response


@router.post("/logout")
def logout(principal: PrincipalDep, session: SessionDep) -> Response:
    with session.begin():
        accounts.sign_out(session, principal)
    response = see_other("/ui/login")
    response.delete_cookie(SESSION_COOKIE, path="/")
    return response


@router.get("/admin", response_class=HTMLResponse)
def admin_page(request: Request, _: AdminDep, session: SessionDep) -> HTMLResponse:
    return render(
        request,
        "admin.html",
        {
            "users": accounts.people(session),
            "keys": accounts.keys(session),
            "roles": [r.value for r in auth.Role],
        },
    )


@router.post("/admin/users")
def add_user(
    request: Request,
    _: AdminDep,
    session: SessionDep,
    username: str = Form(...),
    password: str = Form(...),
    role: str = Form("reviewer"),
) -> Response:
    try:
        user_in = UserIn(username=username.strip(), password=password, role=role)  # type: ignore[arg-type]
    except ValidationError as exc:
        raise invalid("the new account is not valid", exc) from exc
    with session.begin():
        accounts.add_user(session, username=user_in.username, password=user_in.password, role=user_in.role)
    return see_other("/ui/admin")


@router.post("/admin/users/{user_id}")
def change_user(
    user_id: str,
    _: AdminDep,
    session: SessionDep,
    role: str = Form(""),
    active: str = Form(""),
) -> Response:
    with session.begin():
        accounts.change_user(
            session, user_id=user_id, role=_role(role), active={"yes": True, "no": False}.get(active)
        )
    return see_other("/ui/admin")


def _role(value: str) -> auth.Role | None:
    if not value:
        return None
    if value not in auth.Role.__members__:
        raise ValidationFailed(f"unknown role {value!r}", details={"allowed": list(auth.Role.__members__)})
    return auth.Role(value)


@router.post("/admin/keys", response_class=HTMLResponse)
def create_key(
    request: Request, principal: AdminDep, session: SessionDep, name: str = Form(...)
) -> HTMLResponse:
    """The new key is shown on this page once; reloading does not show it again."""
    with session.begin():
        key, _ = accounts.create_key(session, principal, name=name)
    return render(
        request,
        "admin.html",
        {
            "users": accounts.people(session),
            "keys": accounts.keys(session),
            "roles": [r.value for r in auth.Role],
            "new_key": key,
            "new_key_name": name,
        },
    )


@router.post("/admin/keys/{key_id}/revoke")
def revoke_key(key_id: str, _: AdminDep, session: SessionDep) -> Response:
    with session.begin():
        accounts.revoke_key(session, key_id=key_id)
    return see_other("/ui/admin")
