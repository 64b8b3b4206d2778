"""Every API operation, as every kind of caller, against the one table the README shows."""

from __future__ import annotations

import re
from collections.abc import Iterator
from pathlib import Path

import pytest
from fastapi import FastAPI
from fastapi.testclient import TestClient

from tests.conftest import Database, credentials, rolled_back_app

README = Path(__file__).resolve().parents[3] / "README.md"
ROW = re.compile(r"^\| `(GET|POST|PUT|PATCH|DELETE) (/\S*)` \| (\w+) \|$")
CALLERS = ("none", "app", "viewer", "reviewer", "admin")
ALLOWED = {
    "anyone": set(CALLERS),
    "authenticated": {"app", "viewer", "reviewer", "admin"},
    "ingest": {"app", "admin"},
    "person": {"viewer", "reviewer", "admin"},
    "read": {"viewer", "reviewer", "admin"},
    "review": {"reviewer", "admin"},
    "adjudicate": {"admin"},
    "administer": {"admin"},
}


def readme_table() -> dict[tuple[str, str], str]:
    rows = [ROW.match(line) for line in README.read_text(encoding="utf-8").splitlines()]
    return {(m[1], m[2]): m[3] for m in rows if m}


@pytest.fixture
def app(db: Database, settings_for) -> Iterator[FastAPI]:  # type: ignore[no-untyped-def]
    with rolled_back_app(db, settings_for(db)) as application:
        yield application


def test_every_operation_is_in_the_readmes_table_and_each_caller_gets_what_it_says(app: FastAPI) -> None:
    table = readme_table()
    assert set(ALLOWED) >= set(table.values())
    operations = {(method.upper(), path) for path, ops in app.openapi()["paths"].items() for method in ops}
    assert operations == set(table), (
        f"not in the README: {sorted(operations - set(table))}; gone: {sorted(set(table) - operations)}"
    )
    client = TestClient(app, raise_server_exceptions=False)
    wrong = []
    for (method, path), who in sorted(table.items()):
        url = re.sub(r"\{[^}]+\}", "x", path)
        for caller in CALLERS:
            # a fresh account per call: signing out (one of the operations) must not spoil the rest
            headers = {} if caller == "none" else credentials(app, caller)
            body = {} if method in {"POST", "PUT", "PATCH"} else None
            status = client.request(method, url, headers=headers, json=body).status_code
            if caller in ALLOWED[who]:
                ok = status not in {401, 403}
            else:
                ok = status == (401 if caller == "none" else 403)
            if not ok:
                wrong.append(f"{method} {path} as {caller}: {status} (table: {who})")
    assert wrong == [], "\n".join(wrong)
