"""Repository functions for people, their sessions and applications' API keys.

The session comes first, keyword-only arguments after, and nothing commits.
"""

from __future__ import annotations

from datetime import datetime, timedelta

from sqlalchemy import delete, func, select, update
from sqlalchemy.orm import Session

from service import auth
from service.errors import Conflict, NotFound, TooManyRequests, ValidationFailed
from service.storage.tables import ApiKey, SignInFailure, User, WebSession, new_id


def add_user(session: Session, *, username: str, password_hash: str, role: str, now: datetime) -> User:
    """Create an account; the username must be new."""
    if find_user(session, username=username) is not None:
        raise Conflict(f"a user named {username!r} already exists", details={"username": username})
    user = User(
        id=new_id(), username=username, password_hash=password_hash, role=role, active=True, created_at=now
    )
    session.add(user)
    session.flush()
    return user


def usernames(session: Session, *, user_ids: set[str]) -> dict[str, str]:
    """Id -> username of these accounts."""
    if not user_ids:
        return {}
    return {i: n for i, n in session.execute(select(User.id, User.username).where(User.id.in_(user_ids)))}


def find_user(session: Session, *, username: str) -> User | None:
    return session.scalars(select(User).where(User.username == username)).one_or_none()


def get_user(session: Session, *, user_id: str) -> User:
    user = session.get(User, user_id)
    if user is None:
        raise NotFound(f"no user with id {user_id!r}", details={"id": user_id})
    return user


def list_users(session: Session) -> list[User]:
    return list(session.scalars(select(User).order_by(User.username)))


def count_admins(session: Session) -> int:
    return (
        session.scalar(
            select(func.count()).select_from(User).where(User.role == auth.Role.admin.value, User.active)
        )
        or 0
    )


def update_user(
    session: Session,
    *,
    user: User,
    role: str | None = None,
    active: bool | None = None,
    password_hash: str | None = None,
) -> User:
    """Change a role, (de)activate, or set a new password; the last active admin stays an admin."""
    demotes = (role is not None and role != auth.Role.admin) or active is False
    if user.role == auth.Role.admin and user.active and demotes and count_admins(session) <= 1:
        raise Conflict("this is the last active admin; make another admin first")
    if role is not None:
        user.role = role
    if active is not None:
        user.active = active
    if password_hash is not None:
        user.password_hash = password_hash
    if active is False or password_hash is not None:
        session.execute(delete(WebSession).where(WebSession.user_id == user.id))
    session.flush()
    return user


def open_session(
    session: Session, *, user: User, now: datetime, lifetime: timedelta
) -> tuple[str, WebSession]:
    """Start a signed-in session; returns the token (held by the client only) and the row."""
    token = auth.new_token(auth.SESSION_PREFIX)
    row = WebSession(
        id=auth.token_digest(token),
        user_id=user.id,
        csrf_token=auth.new_token(""),
        created_at=now,
        expires_at=now + lifetime,
    )
    session.add(row)
    session.flush()
    return token, row


def session_principal(
    session: Session, *, token: str, now: datetime, via_cookie: bool
) -> auth.Principal | None:
    """The person behind a live session token, or None if it is unknown, expired or deactivated."""
    row = session.execute(
        select(WebSession, User)
        .join(User, User.id == WebSession.user_id)
        .where(WebSession.id == auth.token_digest(token))
    ).one_or_none()
    if row is None:
        return None
    web_session, user = row
    if web_session.expires_at <= now or not user.active:
        return None
    return auth.Principal(
        kind="user",
        id=user.id,
        name=user.username,
        role=user.role,
        session_id=web_session.id,
        csrf_token=web_session.csrf_token,
        via_cookie=via_cookie,
    )


# Verified against when the username is unknown, so a wrong name costs as long as a wrong password.
_DUMMY_HASH: list[str] = []


#: Wrong passwords in a row before an account pauses sign-ins; each further one doubles the pause.
LOCK_AFTER = 5
FIRST_LOCK = timedelta(seconds=30)
LONGEST_LOCK = timedelta(minutes=15)


def sign_in(
    session: Session, *, username: str, password: str, now: datetime, lifetime: timedelta
) -> tuple[str, WebSession, User] | None:
    """Check a password and open a session. None for an unknown name or a wrong password (the same
    answer for both; the caller commits, so a wrong try is counted, then refuses with 401).

    After LOCK_AFTER wrong tries in a row *for a name* (an account's or not) sign-ins with that name
    are refused (TooManyRequests) for a pause that doubles with each further failure, up to
    LONGEST_LOCK: an unknown name is answered exactly like a real one, so answers don't reveal
    which names exist.
    """
    failures = session.get(SignInFailure, username)
    if failures is not None and failures.locked_until is not None and failures.locked_until > now:
        wait = int((failures.locked_until - now).total_seconds()) + 1
        raise TooManyRequests(
            f"too many wrong passwords for this name: try again in {wait} s", details={"retry_after": wait}
        )
    user = find_user(session, username=username)
    if user is None or not user.active:
        if not _DUMMY_HASH:
            _DUMMY_HASH.append(auth.hash_password("not a real password"))
        auth.verify_password(_DUMMY_HASH[0], password)
        _count_failure(session, failures, username=username, now=now)
        return None
    if not auth.verify_password(user.password_hash, password):
        _count_failure(session, failures, username=username, now=now)
        return None
    if failures is not None:
        session.delete(failures)
    if auth.needs_rehash(user.password_hash):
        user.password_hash = auth.hash_password(password)
    token, row = open_session(session, user=user, now=now, lifetime=lifetime)
    return token, row, user


def _count_failure(session: Session, failures: SignInFailure | None, *, username: str, now: datetime) -> None:
    if failures is None:
        failures = SignInFailure(username=username, failed=0)
        session.add(failures)
    failures.failed = (failures.failed or 0) + 1
    failures.last_at = now
    if failures.failed >= LOCK_AFTER:
        failures.locked_until = now + min(FIRST_LOCK * 2 ** (failures.failed - LOCK_AFTER), LONGEST_LOCK)


def close_session(session: Session, *, session_id: str) -> None:
    session.execute(delete(WebSession).where(WebSession.id == session_id))


def purge_expired_sessions(session: Session, *, now: datetime) -> int:
    """Forget expired sessions, and wrong sign-ins older than a day (names typed once, long ago)."""
    session.execute(delete(SignInFailure).where(SignInFailure.last_at < now - timedelta(days=1)))
    result = session.execute(delete(WebSession).where(WebSession.expires_at <= now))
    return int(result.rowcount or 0)  # type: ignore[attr-defined]


def create_api_key(
    session: Session, *, name: str, created_by: str | None, now: datetime, rate_per_minute: int | None = None
) -> tuple[str, ApiKey]:
    """A new ingest key; the key itself is returned once and only its digest is stored."""
    if not name.strip():
        raise ValidationFailed("an API key needs a name (which application uses it)")
    key = auth.new_token(auth.API_KEY_PREFIX)
    row = ApiKey(
        id=new_id(),
        name=name.strip(),
        prefix=key[:10],
        key_hash=auth.token_digest(key),
        created_by=created_by,
        created_at=now,
        rate_per_minute=rate_per_minute,
    )
    session.add(row)
    session.flush()
    return key, row


def list_api_keys(session: Session) -> list[ApiKey]:
    return list(session.scalars(select(ApiKey).order_by(ApiKey.created_at.desc())))


def revoke_api_key(session: Session, *, key_id: str, now: datetime) -> ApiKey:
    row = session.get(ApiKey, key_id)
    if row is None:
        raise NotFound(f"no API key with id {key_id!r}", details={"id": key_id})
    if row.revoked_at is None:
        row.revoked_at = now
        session.flush()
    return row


def key_principal(session: Session, *, key: str, now: datetime) -> auth.Principal | None:
    """The application behind a live API key, or None; records when the key was last used."""
    row = session.scalars(select(ApiKey).where(ApiKey.key_hash == auth.token_digest(key))).one_or_none()
    if row is None or row.revoked_at is not None:
        return None
    if row.last_used_at is None or now - row.last_used_at > timedelta(minutes=1):
        session.execute(update(ApiKey).where(ApiKey.id == row.id).values(last_used_at=now))
    return auth.Principal(
        kind="api_key", id=row.id, name=row.name, role="app", rate_per_minute=row.rate_per_minute
    )
