"""Settings: documented defaults, conventional URLs, validated queues."""

from __future__ import annotations

from pathlib import Path

import pytest
from pydantic import ValidationError

from service.settings import Settings


def test_embedded_default_is_sqlite_in_data_dir(tmp_path: Path) -> None:
    s = Settings(database_url="", data_dir=tmp_path)
    assert s.resolved_database_url == f"sqlite:///{tmp_path.resolve() / 'review-router.db'}"


@pytest.mark.parametrize("url", ["postgres://u@h/db", "postgresql://u@h/db"])
def test_postgres_urls_use_psycopg3(url: str) -> None:
    assert Settings(database_url=url).resolved_database_url == "postgresql+psycopg://u@h/db"


def test_conventional_env_names_are_read(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("DATABASE_URL", "postgresql://x@y/z")
    monkeypatch.setenv("REDIS_URL", "redis://r:6379/2")
    monkeypatch.setenv("RR_QUEUES", '[{"name": "support", "apps": ["helpdesk"], "budget_per_day": 10}]')
    s = Settings()
    assert s.redis_url == "redis://r:6379/2"
    assert s.resolved_database_url.startswith("postgresql+psycopg://")
    assert s.route(app="helpdesk", model=None, metadata={}).name == "support"  # type: ignore[union-attr]
    assert s.route(app="other", model=None, metadata={}) is None


def test_routing_rules_send_an_output_to_the_first_matching_queue() -> None:
    s = Settings(
        queues=[  # type: ignore[list-item]
            {"name": "vip", "metadata": {"tier": "gold"}},
            {"name": "safety", "tags": ["medical", "legal"]},
            {"name": "gpt4", "apps": ["helpdesk"], "models": ["gpt-4o"]},
            {"name": "rest"},
        ]
    )

    def route(app: str = "helpdesk", model: str | None = "gpt-4o-mini", **metadata: object) -> str | None:
        queue = s.route(app=app, model=model, metadata=metadata)
        return queue.name if queue else None

    assert route(tier="gold", tags=["medical"]) == "vip"
    assert route(tags=["legal"]) == "safety"
    assert route(tags="legal") == "rest"  # tags must be a list
    assert route(model="gpt-4o") == "gpt4"
    assert route(app="shop", model="gpt-4o") == "rest"


def test_queue_names_must_be_unique_and_valid() -> None:
    with pytest.raises(ValidationError, match="unique"):
        Settings(queues=[{"name": "a"}, {"name": "a"}])  # type: ignore[list-item]
    with pytest.raises(ValidationError):
        Settings(queues=[{"name": "Bad Name"}])  # type: ignore[list-item]
