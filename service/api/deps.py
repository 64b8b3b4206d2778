"""Dependency aliases for the routes: a session, the settings and the work queue."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Annotated

from fastapi import Depends, Request
from rq import Queue
from sqlalchemy.orm import Session

from service import queueing
from service.settings import Settings


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


SessionDep = Annotated[Session, Depends(_session)]
SettingsDep = Annotated[Settings, Depends(_settings)]
