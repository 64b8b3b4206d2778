"""Dependency aliases for the routes: a session, the settings, the work queue and who is asking.

``ReaderDep``, ``ReviewerDep``, ``AdjudicatorDep``, ``AdminDep`` and ``IngestDep`` each resolve the
caller (bearer token, API key or session cookie) and refuse with 401/403 in the error envelope
unless the caller holds that permission. Unsafe requests authenticated by the session cookie must
carry the session's CSRF token (form field ``csrf_token`` or header ``X-CSRF-Token``).
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from typing import Annotated

from fastapi import Depends, Query, Request
from fastapi.security import HTTPAuthorizationCredentials, HTTPBearer
from rq import Queue
from sqlalchemy.orm import Session

from service import queueing, ratelimit
from service.auth import API_KEY_PREFIX, Permission, Principal, same_secret
from service.errors import CsrfFailed, Forbidden, Unauthenticated, ValidationFailed
from service.settings import Settings
from service.storage import accounts
from service.storage.filters import ItemFilter
from service.storage.tables import utcnow

SESSION_COOKIE = "rr_session"
CSRF_HEADER = "x-csrf-token"
SAFE_METHODS = frozenset({"GET", "HEAD", "OPTIONS"})


def _session(request: Request) -> Iterator[Session]:
    with request.app.state.sessions() as session:
        yield session


def _settings(request: Request) -> Settings:
    settings: Settings = request.app.state.settings
    return settings


def work_queue(request: Request) -> Queue:
    """The RQ queue, connecting on first use (not at start-up, so the API runs while Redis is down)."""
    state = request.app.state
    if state.work_queue is None:
        settings: Settings = state.settings
        state.work_queue = queueing.work_queue(queueing.redis_connection(settings), settings)
    queue: Queue = state.work_queue
    return queue


def within_ingest_rate(request: Request, principal: Principal, settings: Settings, outputs: int) -> None:
    """Count these outputs against the key's per-minute limit (429 with Retry-After past it)."""
    if ratelimit.limit_of(principal, settings.ingest_rate_per_minute) > 0:
        ratelimit.take(
            work_queue(request).connection, principal, outputs, default=settings.ingest_rate_per_minute
        )


def item_filter(
    app: Annotated[str | None, Query(max_length=100, description="Only this app's items.")] = None,
    model: Annotated[str | None, Query(max_length=200, description="Only this model's items.")] = None,
    stratum: Annotated[str | None, Query(max_length=32, description="uncertain, audit, explore, ...")] = None,
    min_score: Annotated[str | None, Query(max_length=20, description="Lowest score, 0 to 1.")] = None,
    max_score: Annotated[str | None, Query(max_length=20, description="Highest score, 0 to 1.")] = None,
    metadata: Annotated[
        list[str], Query(max_length=10, description="KEY=VALUE: the posted metadata must hold it.")
    ] = [],  # noqa: B006 (FastAPI copies defaults)
    q: Annotated[
        str | None, Query(max_length=200, description="Words in the prompt or response, or an external_id.")
    ] = None,
) -> ItemFilter:
    """A queue's filter from the query string (the API's item list and claims, and the pages)."""
    pairs = []
    for item in metadata:
        if not item.strip():
            continue  # the filter form's empty box
        key, sep, value = item.partition("=")
        if not sep or not key.strip():
            raise ValidationFailed(
                "metadata filters are KEY=VALUE", details=[{"field": "query.metadata", "message": item}]
            )
        pairs.append((key.strip(), value))
    return ItemFilter(
        app=app or None,
        model=model or None,
        stratum=stratum or None,
        min_score=_score(min_score, "min_score"),
        max_score=_score(max_score, "max_score"),
        metadata=tuple(pairs),
        text=(q or "").strip() or None,
    )


def _score(value: str | None, name: str) -> float | None:
    # A form sends its empty boxes as empty strings: no bound, not an error.
    if value is None or not value.strip():
        return None
    try:
        score = float(value)
    except ValueError:
        score = float("nan")
    if not 0 <= score <= 1:
        raise ValidationFailed(
            f"{name} is a score from 0 to 1", details=[{"field": f"query.{name}", "message": value}]
        )
    return score


SessionDep = Annotated[Session, Depends(_session)]
SettingsDep = Annotated[Settings, Depends(_settings)]
ItemFilterDep = Annotated[ItemFilter, Depends(item_filter)]


# Declared for OpenAPI (the explorer's "Authorize" button); a missing header is not an error here
# because the session cookie may stand in for it.
bearer = HTTPBearer(
    auto_error=False,
    scheme_name="token",
    description="An application's API key (rrk_...) or a session token (rrs_...) from POST /v1/sessions.",
)
BearerDep = Annotated[HTTPAuthorizationCredentials | None, Depends(bearer)]


def _credentials(request: Request, sent: HTTPAuthorizationCredentials | None) -> tuple[str, bool] | None:
    if sent is not None and sent.credentials.strip():
        return sent.credentials.strip(), False
    cookie = request.cookies.get(SESSION_COOKIE)
    return (cookie, True) if cookie else None


def _principal(request: Request, session: SessionDep, sent: BearerDep) -> Principal:
    found = _credentials(request, sent)
    if found is None:
        raise Unauthenticated(
            "sign in, or send 'Authorization: Bearer <session token or API key>'",
            details={"login": "/v1/sessions"},
        )
    token, via_cookie = found
    now = utcnow()
    if token.startswith(API_KEY_PREFIX):
        principal = accounts.key_principal(session, key=token, now=now)
    else:
        principal = accounts.session_principal(session, token=token, now=now, via_cookie=via_cookie)
    # End the lookup's transaction (it may have noted a key's last use) so the route starts its own.
    session.commit()
    if principal is None:
        raise Unauthenticated("the session or API key is unknown, expired or revoked")
    request.state.principal = principal
    return principal


async def _checked_principal(
    request: Request, principal: Annotated[Principal, Depends(_principal)]
) -> Principal:
    if principal.via_cookie and request.method not in SAFE_METHODS:
        sent = request.headers.get(CSRF_HEADER)
        if sent is None and request.headers.get("content-type", "").startswith(
            ("application/x-www-form-urlencoded", "multipart/form-data")
        ):
            value = (await request.form()).get("csrf_token")
            sent = value if isinstance(value, str) else None
        if not sent or principal.csrf_token is None or not same_secret(sent, principal.csrf_token):
            raise CsrfFailed("the form's CSRF token is missing or stale: reload the page and try again")
    return principal


PrincipalDep = Annotated[Principal, Depends(_checked_principal)]


def requires(permission: Permission) -> Callable[[Principal], Principal]:
    """A dependency that lets the request through only if the caller holds this permission."""

    def check(principal: PrincipalDep) -> Principal:
        if not principal.can(permission):
            who = "an API key" if principal.kind == "api_key" else f"role {principal.role!r}"
            raise Forbidden(
                f"{who} may not {permission.value}",
                details={"needs": permission.value, "role": principal.role},
            )
        return principal

    return check


def _signed_in(principal: PrincipalDep) -> Principal:
    """A person's session: an API key is not one (it may only post outputs and read stats)."""
    if principal.kind != "user":
        raise Forbidden(
            "an API key may not use this: it is for signed-in people", details={"needs": "a user"}
        )
    return principal


UserDep = Annotated[Principal, Depends(_signed_in)]
IngestDep = Annotated[Principal, Depends(requires(Permission.ingest))]
ReaderDep = Annotated[Principal, Depends(requires(Permission.read))]
ReviewerDep = Annotated[Principal, Depends(requires(Permission.review))]
AdjudicatorDep = Annotated[Principal, Depends(requires(Permission.adjudicate))]
AdminDep = Annotated[Principal, Depends(requires(Permission.administer))]
