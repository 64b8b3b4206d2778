"""The README and the Docker files stay true to the code."""

from __future__ import annotations

import re
from pathlib import Path

import yaml

from service.settings import Settings

ROOT = Path(__file__).resolve().parents[3]


def env_name(field: str) -> str:
    return {"database_url": "DATABASE_URL", "redis_url": "REDIS_URL"}.get(field, f"RR_{field.upper()}")


def test_readme_documents_every_setting_with_its_default() -> None:
    readme = (ROOT / "README.md").read_text()
    rows = dict(re.findall(r"^\| `([A-Z_]+)` \| `([^`]*)` \|", readme, flags=re.M))
    assert set(rows) == {env_name(f) for f in Settings.model_fields}
    for name, field in Settings.model_fields.items():
        if field.default_factory is None:
            assert rows[env_name(name)].strip('"') == str(field.default), name


def test_readme_gives_the_two_commands_and_ci_runs_the_test_one() -> None:
    readme = (ROOT / "README.md").read_text()
    assert "./run demo" in readme and "./run test" in readme
    assert "./run test" in (ROOT / ".ci" / "run").read_text()


def test_docker_files_copy_what_exists_and_compose_parses() -> None:
    dockerfile = (ROOT / "docker" / "Dockerfile").read_text()
    for src in re.findall(r"^COPY (\S+)", dockerfile, flags=re.M):
        assert (ROOT / src).exists(), src
    compose = yaml.safe_load((ROOT / "docker" / "compose.yaml").read_text())
    assert {"postgres", "redis", "api", "worker"} <= set(compose["services"])
    assert compose["services"]["worker"]["command"] == ["worker"]
