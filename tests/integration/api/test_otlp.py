"""OpenTelemetry ingest: the real OpenTelemetry SDK and OTLP/HTTP exporter send the spans that
OpenInference's OpenAI instrumentation made from a real call to the local SmolLM2 server; GenAI and
OpenLLMetry spans arrive as OTLP/JSON. LLM spans become outputs, other spans are counted and ignored,
and a malformed export gets the error envelope."""

from __future__ import annotations

import gzip
import json
from collections.abc import Iterator

import httpx
import openai
import pytest
from openinference.instrumentation.openai import OpenAIInstrumentor
from opentelemetry.exporter.otlp.proto.http.trace_exporter import OTLPSpanExporter
from opentelemetry.sdk.resources import Resource
from opentelemetry.sdk.trace import TracerProvider
from opentelemetry.sdk.trace.export import SimpleSpanProcessor
from sqlalchemy import select

from service.storage.db import engine_for, session_factory
from service.storage.tables import Output
from tests.conftest import Database, credentials_in
from tests.servers import LiveService


@pytest.fixture
def backend() -> str:
    return "postgres"


@pytest.fixture
def service(fresh_db: Database, settings_for) -> Iterator[tuple[LiveService, dict[str, str]]]:  # type: ignore[no-untyped-def]
    live = LiveService(settings_for(fresh_db))
    live.start()
    yield live, credentials_in(session_factory(engine_for(live.settings)), "app")
    live.stop()


def _stored(live: LiveService, app: str) -> list[Output]:
    with session_factory(engine_for(live.settings))() as session:
        return list(session.scalars(select(Output).where(Output.app == app)))


def test_spans_from_the_openai_instrumentation_become_outputs(service, llm_url: str) -> None:  # type: ignore[no-untyped-def]
    live, key = service
    exporter = OTLPSpanExporter(endpoint=f"{live.url}/v1/otlp/v1/traces", headers=key)
    provider = TracerProvider(resource=Resource.create({"service.name": "trivia-bot"}))
    provider.add_span_processor(SimpleSpanProcessor(exporter))
    instrumentor = OpenAIInstrumentor()
    instrumentor.instrument(tracer_provider=provider)
    try:
        with openai.OpenAI(base_url=llm_url, api_key="local") as llm:
            question = [{"role": "user", "content": "What is the capital of France?"}]
            with provider.get_tracer("app").start_as_current_span("handle-request"):  # not an LLM span
                answer = llm.chat.completions.create(
                    model="smollm2", messages=question, max_tokens=8, logprobs=True, top_logprobs=1
                )
    finally:
        instrumentor.uninstrument()
        provider.shutdown()
    (stored,) = _stored(live, "trivia-bot")
    assert stored.response == answer.choices[0].message.content
    assert stored.messages is not None and stored.messages[-1]["content"] == question[0]["content"]
    trace_id, span_id = (stored.external_id or "").split(":")
    assert len(trace_id) == 32 and len(span_id) == 16
    assert stored.meta["source"] == "otlp" and stored.token_logprobs, "log-probs came with the span"


GENAI_SPAN = {
    "traceId": "5b8efff798038103d269b633813fc60c",
    "spanId": "eee19b7ec3c1b174",
    "name": "chat gpt-4o-mini",
    "attributes": [
        {"key": "gen_ai.operation.name", "value": {"stringValue": "chat"}},
        {"key": "gen_ai.request.model", "value": {"stringValue": "gpt-4o-mini"}},
        {
            "key": "gen_ai.input.messages",
            "value": {
                "stringValue": json.dumps(
                    [{"role": "user", "parts": [{"type": "text", "content": "Who wrote Hamlet?"}]}]
                )
            },
        },
        {
            "key": "gen_ai.output.messages",
            "value": {
                "stringValue": json.dumps(
                    [{"role": "assistant", "parts": [{"type": "text", "content": "Shakespeare."}]}]
                )
            },
        },
    ],
}
OPENLLMETRY_SPAN = {
    "traceId": "5b8efff798038103d269b633813fc60c",
    "spanId": "aaa19b7ec3c1b175",
    "name": "openai.chat",
    "attributes": [
        {"key": "gen_ai.system", "value": {"stringValue": "openai"}},
        {"key": "gen_ai.response.model", "value": {"stringValue": "gpt-4o"}},
        {"key": "gen_ai.prompt.0.role", "value": {"stringValue": "system"}},
        {"key": "gen_ai.prompt.0.content", "value": {"stringValue": "Be brief."}},
        {"key": "gen_ai.prompt.1.role", "value": {"stringValue": "user"}},
        {"key": "gen_ai.prompt.1.content", "value": {"stringValue": "Boiling point of water?"}},
        {"key": "gen_ai.completion.0.role", "value": {"stringValue": "assistant"}},
        {"key": "gen_ai.completion.0.content", "value": {"stringValue": "100 °C at sea level."}},
    ],
}
DB_SPAN = {"traceId": "5b8efff798038103d269b633813fc60c", "spanId": "bbb19b7ec3c1b176", "name": "SELECT"}


def _export(*spans: dict[str, object], service_name: str = "helpdesk") -> dict[str, object]:
    resource = {"attributes": [{"key": "service.name", "value": {"stringValue": service_name}}]}
    return {"resourceSpans": [{"resource": resource, "scopeSpans": [{"spans": list(spans)}]}]}


def test_genai_and_openllmetry_spans_arrive_as_otlp_json_once(service) -> None:  # type: ignore[no-untyped-def]
    live, key = service
    body = json.dumps(_export(GENAI_SPAN, OPENLLMETRY_SPAN, DB_SPAN)).encode()
    headers = {**key, "Content-Type": "application/json"}
    first = httpx.post(f"{live.url}/v1/otlp/v1/traces", content=body, headers=headers)
    assert first.status_code == 200, first.text
    assert first.json()["reviewRouter"] == {"accepted": 2, "duplicates": 0, "rejected": 0, "ignored": 1}
    # an exporter's retry (gzip this time) adds nothing
    again = httpx.post(
        f"{live.url}/v1/otlp/v1/traces",
        content=gzip.compress(body),
        headers={**headers, "Content-Encoding": "gzip"},
    )
    assert again.json()["reviewRouter"]["duplicates"] == 2
    stored = {o.external_id: o for o in _stored(live, "helpdesk")}
    genai = stored["5b8efff798038103d269b633813fc60c:eee19b7ec3c1b174"]
    assert (genai.response, genai.model) == ("Shakespeare.", "gpt-4o-mini")
    assert genai.messages == [{"role": "user", "content": "Who wrote Hamlet?"}]
    indexed = stored["5b8efff798038103d269b633813fc60c:aaa19b7ec3c1b175"]
    assert [m["role"] for m in indexed.messages or []] == ["system", "user"]
    assert indexed.response == "100 °C at sea level." and indexed.meta["gen_ai.system"] == "openai"


def test_a_malformed_export_gets_the_error_envelope_and_loses_nothing(service) -> None:  # type: ignore[no-untyped-def]
    live, key = service
    url = f"{live.url}/v1/otlp/v1/traces"
    ok = httpx.post(url, json=_export(GENAI_SPAN), headers=key)
    assert ok.status_code == 200
    cases = [
        ({"Content-Type": "application/x-protobuf"}, b"\xff\xff not protobuf", 400),
        ({"Content-Type": "application/json"}, b"{not json", 400),
        ({"Content-Type": "application/json"}, b'{"resourceSpans": [{"scopeSpans": 7}]}', 400),
        ({"Content-Type": "application/json", "Content-Encoding": "gzip"}, b"not gzip", 400),
        ({"Content-Type": "text/plain"}, b"hello", 415),
    ]
    for headers, body, expected in cases:
        refused = httpx.post(url, content=body, headers={**key, **headers})
        assert refused.status_code == expected, (body, refused.text)
        assert set(refused.json()["error"]) >= {"code", "message"}
    assert httpx.post(url, json=_export(GENAI_SPAN)).status_code == 401  # the same keys as ingest
    # a span without an answer is not an output (ignored); one too long is refused alone, as OTLP's
    # partial success, and the good span beside it is stored
    unanswered = {
        **OPENLLMETRY_SPAN,
        "spanId": "ccc19b7ec3c1b177",
        "attributes": OPENLLMETRY_SPAN["attributes"][:6],
    }
    too_long = {
        **OPENLLMETRY_SPAN,
        "spanId": "ddd19b7ec3c1b178",
        "attributes": [
            *OPENLLMETRY_SPAN["attributes"][:7],
            {"key": "gen_ai.completion.0.content", "value": {"stringValue": "x" * 200_001}},
        ],
    }
    answer = httpx.post(url, json=_export(unanswered, too_long, OPENLLMETRY_SPAN), headers=key).json()
    assert answer["reviewRouter"] == {"accepted": 1, "duplicates": 0, "rejected": 1, "ignored": 1}
    assert answer["partialSuccess"]["rejectedSpans"] == 1 and answer["partialSuccess"]["errorMessage"]
    assert len(_stored(live, "helpdesk")) == 2
