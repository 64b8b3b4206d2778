"""Fuzzing the API from its own OpenAPI schema (schemathesis) and ingest with any JSON (Hypothesis),
on SQLite and PostgreSQL: no server error, and every answer conforms to the schema.

Bounded: a few dozen examples per operation, so the suite stays fast; `RR_FUZZ_EXAMPLES` raises it.
Derandomised, so CI is repeatable; `RR_FUZZ_RANDOM=1` explores new examples on each run.
"""

from __future__ import annotations

import json
import os
from typing import Any

import schemathesis
from fastapi import FastAPI
from fastapi.testclient import TestClient
from hypothesis import HealthCheck, example, given, settings
from hypothesis import strategies as st
from schemathesis.specs.openapi.checks import positive_data_acceptance

from tests.conftest import Database, credentials, rolled_back_app

EXAMPLES = int(os.environ.get("RR_FUZZ_EXAMPLES", "25"))
DERANDOMIZE = not os.environ.get("RR_FUZZ_RANDOM")
FUZZ = settings(
    max_examples=EXAMPLES,
    deadline=None,
    database=None,
    derandomize=DERANDOMIZE,
    suppress_health_check=list(HealthCheck),
)
# The schema cannot say "no NUL character in any string", so a schema-valid request may still be
# refused with a 4xx (by design: service.hygiene); every other check runs.
EXCLUDED = [positive_data_acceptance]


def _fuzz(app: FastAPI, headers: dict[str, str]) -> list[str]:
    schema = schemathesis.openapi.from_asgi("/openapi.json", app)
    failures: list[str] = []
    operations = [result.ok() for result in schema.get_all_operations()]
    assert len(operations) > 30
    for operation in operations:
        _runner(operation, headers, failures)()
    return failures


def _runner(operation: Any, headers: dict[str, str], failures: list[str]) -> Any:
    name = f"{operation.method.upper()} {operation.path}"

    @given(case=operation.as_strategy())
    @FUZZ
    def run(case: Any) -> None:
        try:
            case.call_and_validate(headers=headers, excluded_checks=EXCLUDED)
        except Exception as exc:  # collected, so one run reports every operation that fails
            failures.append(f"{name}: {exc}"[:600])

    return run


def test_every_operation_as_an_admin_answers_in_its_schema_without_server_errors(
    db: Database,
    settings_for,  # type: ignore[no-untyped-def]
) -> None:
    with rolled_back_app(db, settings_for(db)) as app:
        failures = _fuzz(app, credentials(app, "admin"))
    assert failures == [], "\n".join(failures[:10])


def test_every_operation_with_an_api_key_answers_in_its_schema_without_server_errors(
    db: Database,
    settings_for,  # type: ignore[no-untyped-def]
) -> None:
    with rolled_back_app(db, settings_for(db)) as app:
        failures = _fuzz(app, credentials(app, "app"))
    assert failures == [], "\n".join(failures[:10])


# Any character, and often the ones JSON can carry but storage cannot (NUL, lone surrogates), since
# applications can send them.
TEXT = st.text(st.characters() | st.sampled_from(["\x00", "\ud800", "\udfff"]))
JSON = st.recursive(
    st.none() | st.booleans() | st.integers() | st.floats(allow_nan=False) | TEXT,
    lambda inner: st.lists(inner, max_size=4) | st.dictionaries(st.text(max_size=8), inner, max_size=4),
    max_leaves=12,
)
FIELDS = [
    "external_id",
    "app",
    "model",
    "messages",
    "prompt",
    "response",
    "completion",
    "samples",
    "metadata",
]
ALMOST_OUTPUTS = st.dictionaries(
    st.sampled_from(FIELDS) | st.text(max_size=6), JSON, max_size=6
) | st.fixed_dictionaries(
    {"prompt": st.text(), "response": st.text()},
    optional={
        "metadata": st.dictionaries(st.text(), JSON, max_size=3),
        "samples": st.lists(st.text(), max_size=3),
    },
)


def test_any_json_posted_as_an_output_is_refused_with_a_4xx_or_stored_and_readable(
    db: Database,
    settings_for,  # type: ignore[no-untyped-def]
) -> None:
    with rolled_back_app(db, settings_for(db)) as app:
        key = credentials(app, "app")
        reader = credentials(app, "admin")
        client = TestClient(app, raise_server_exceptions=False)

        @given(body=ALMOST_OUTPUTS | JSON)
        @example(body={"prompt": "p", "response": "a NUL \x00 here"})
        @example(body={"prompt": "p", "response": "r", "metadata": {"k\ud800": "v"}})
        @example(body={"messages": [{"role": "user", "content": "\udfff"}], "response": "r"})
        @settings(
            max_examples=EXAMPLES * 4,
            deadline=None,
            database=None,
            derandomize=DERANDOMIZE,
            suppress_health_check=list(HealthCheck),
        )
        def post(body: Any) -> None:
            sent = client.post(
                "/v1/outputs",
                content=json.dumps(body),  # escapes lone surrogates as applications' JSON does
                headers={**key, "Content-Type": "application/json"},
            )
            assert sent.status_code in {200, 202, 400, 409, 422}, (sent.status_code, sent.text[:300])
            assert "error" in sent.json() or sent.status_code in {200, 202}
            if sent.status_code in {200, 202}:
                stored = client.get(f"/v1/outputs/{sent.json()['id']}", headers=reader)
                assert stored.status_code == 200
                if isinstance(body, dict) and isinstance(body.get("response"), str):
                    assert stored.json()["response"] == body["response"]

        post()
