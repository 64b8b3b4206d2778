"""Shared fixtures: real PostgreSQL (a schema per test session, rolled back per test), real SQLite,
real Redis (its own database number, flushed per test) and the real encoder.

Environment: RR_TEST_POSTGRES_URL (default postgresql://postgres@127.0.0.1:5432/test) and
RR_TEST_REDIS_URL (default redis://127.0.0.1:6379/15).
"""

from __future__ import annotations

import contextlib
import functools
import os
import uuid
from collections.abc import Callable, Iterator
from datetime import timedelta
from pathlib import Path

import pytest
from fastapi import FastAPI
from redis import Redis
from sqlalchemy import Engine, text
from sqlalchemy.orm import Session, sessionmaker

from service import auth
from service.settings import Settings
from service.storage import accounts, reviewing
from service.storage.db import make_engine, upgrade
from service.storage.reviewing import VerdictIn
from service.storage.tables import Review, User, utcnow

os.environ.setdefault("HF_HUB_OFFLINE", "1")

POSTGRES_URL = os.environ.get("RR_TEST_POSTGRES_URL", "postgresql://postgres@127.0.0.1:5432/test")
REDIS_URL = os.environ.get("RR_TEST_REDIS_URL", "redis://127.0.0.1:6379/15")
BACKENDS = ["sqlite", "postgres"]


def _pg_url() -> str:
    return Settings(database_url=POSTGRES_URL).resolved_database_url


class Database:
    """A migrated database: a SQLite file or a PostgreSQL schema, with its URL and engine."""

    def __init__(self, backend: str, url: str, engine: Engine, cleanup: object = None) -> None:
        self.backend = backend
        self.url = url
        self.engine = engine
        self._cleanup = cleanup

    def close(self) -> None:
        self.engine.dispose()
        if callable(self._cleanup):
            self._cleanup()


def create_database(backend: str, tmp_dir: Path) -> Database:
    """A brand-new, migrated database of this backend."""
    if backend == "sqlite":
        url = f"sqlite:///{tmp_dir / f'rr-{uuid.uuid4().hex[:8]}.db'}"
        engine = make_engine(url)
        upgrade(engine)
        return Database(backend, url, engine)
    schema = f"rr_test_{uuid.uuid4().hex[:12]}"
    admin = make_engine(_pg_url())
    with admin.begin() as conn:
        conn.execute(text(f'CREATE SCHEMA "{schema}"'))
    url = f"{_pg_url()}?options=-csearch_path%3D{schema}"
    engine = make_engine(url)
    upgrade(engine)

    def drop() -> None:
        with admin.begin() as conn:
            conn.execute(text(f'DROP SCHEMA "{schema}" CASCADE'))
        admin.dispose()

    return Database(backend, url, engine, drop)


@pytest.fixture(scope="session")
def shared_databases(tmp_path_factory: pytest.TempPathFactory) -> Iterator[dict[str, Database]]:
    """One migrated database per backend for the whole test session."""
    tmp = tmp_path_factory.mktemp("db")
    dbs = {b: create_database(b, tmp) for b in BACKENDS}
    yield dbs
    for db in dbs.values():
        db.close()


@pytest.fixture(params=BACKENDS)
def backend(request: pytest.FixtureRequest) -> str:
    return str(request.param)


@pytest.fixture
def db(shared_databases: dict[str, Database], backend: str) -> Database:
    return shared_databases[backend]


@pytest.fixture
def session(db: Database) -> Iterator[Session]:
    """A session inside a transaction that is rolled back after the test; commits become savepoints."""
    with db.engine.connect() as conn:
        outer = conn.begin()
        s = Session(bind=conn, join_transaction_mode="create_savepoint", expire_on_commit=False)
        try:
            yield s
        finally:
            s.close()
            outer.rollback()


@pytest.fixture
def fresh_db(backend: str, tmp_path: Path) -> Iterator[Database]:
    """A database of its own, for tests whose work must be committed (workers, end to end)."""
    database = create_database(backend, tmp_path)
    yield database
    database.close()


@pytest.fixture
def redis_url() -> Iterator[str]:
    """The test Redis database, flushed before and after each test."""
    conn = Redis.from_url(REDIS_URL)
    conn.flushdb()
    yield REDIS_URL
    conn.flushdb()
    conn.close()


@pytest.fixture
def settings_for(redis_url: str, tmp_path: Path):  # type: ignore[no-untyped-def]
    """Build Settings for a database, on the test Redis, with overrides."""

    def build(database: Database, **overrides: object) -> Settings:
        values: dict[str, object] = {
            "database_url": database.url,
            "redis_url": redis_url,
            "data_dir": tmp_path / "data",
            "rq_queue": f"rr-test-{uuid.uuid4().hex[:6]}",
        }
        values.update(overrides)
        return Settings(**values)  # type: ignore[arg-type]

    return build


@pytest.fixture(scope="session")
def llm_url() -> Iterator[str]:
    """A real local LLM (SmolLM2-135M through llama-cpp-python's OpenAI-compatible server)."""
    import socket
    import subprocess
    import sys
    import time

    import httpx

    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    server = subprocess.Popen(
        [
            sys.executable,
            "-m",
            "benchmarks.serve_llm",
            "--host",
            "127.0.0.1",
            "--port",
            str(port),
            "--n_ctx",
            "2048",
            "--logits_all",
            "true",
            "--n_threads",
            "1",
            "--n_threads_batch",
            "1",
        ],
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    url = f"http://127.0.0.1:{port}/v1"
    deadline = time.monotonic() + 120
    while time.monotonic() < deadline:
        try:
            if httpx.get(f"{url}/models", timeout=2).status_code == 200:
                break
        except httpx.HTTPError:
            pass
        assert server.poll() is None, "the LLM server exited"
        time.sleep(0.5)
    else:
        server.kill()
        raise RuntimeError("the LLM server did not start")
    yield url
    server.terminate()
    server.wait(20)


PASSWORD = "correct horse battery staple"


@functools.cache
def password_hash() -> str:
    """One Argon2 hash of PASSWORD for every test account (hashing is slow on purpose)."""
    return auth.hash_password(PASSWORD)


def add_account(session: Session, username: str, role: str) -> User:
    """An account whose password is PASSWORD (the caller commits)."""
    return accounts.add_user(
        session, username=username, password_hash=password_hash(), role=role, now=utcnow()
    )


def credentials(app: FastAPI, role: str, username: str | None = None) -> dict[str, str]:
    """Headers that act as a new account with this role ("app" gives an ingest API key)."""
    return credentials_in(app.state.sessions, role, username)


def credentials_in(sessions: Callable[[], Session], role: str, username: str | None = None) -> dict[str, str]:
    """Like ``credentials``, for a session factory (e.g. a running server's database)."""
    with sessions() as session, session.begin():
        if role == "app":
            key, _ = accounts.create_api_key(
                session, name=username or "test-app", created_by=None, now=utcnow()
            )
            return {"Authorization": f"Bearer {key}"}
        user = add_account(session, username or f"{role}-{uuid.uuid4().hex[:6]}", role)
        token, _ = accounts.open_session(session, user=user, now=utcnow(), lifetime=timedelta(hours=1))
    return {"Authorization": f"Bearer {token}"}


def review(session: Session, output_id: str, verdict: str, **fields: object) -> Review:
    """Record a first verdict the way the workbench does, as a reviewer without an account."""
    return reviewing.record_verdict(
        session,
        output_id=output_id,
        user_id=None,
        reviewer=str(fields.pop("reviewer", "ann")),
        verdict=VerdictIn(
            verdict=verdict,
            categories=list(fields.pop("categories", [])),  # type: ignore[call-overload]
            correction=fields.pop("correction", None),  # type: ignore[arg-type]
            note=fields.pop("note", None),  # type: ignore[arg-type]
        ),
        now=fields.pop("now", None) or utcnow(),  # type: ignore[arg-type]
        qc_share=float(fields.pop("qc_share", 0.0)),  # type: ignore[arg-type]
    )


@contextlib.contextmanager
def rolled_back_app(database: Database, settings: Settings) -> Iterator[FastAPI]:
    """The app on one connection whose work is rolled back when the block ends."""
    from service.app import create_app

    app = create_app(settings)
    with database.engine.connect() as conn:
        outer = conn.begin()
        app.state.sessions = sessionmaker(
            bind=conn, join_transaction_mode="create_savepoint", expire_on_commit=False
        )
        try:
            yield app
        finally:
            outer.rollback()
