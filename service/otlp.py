"""OpenTelemetry traces in, outputs out: OTLP/HTTP export requests (protobuf or JSON) become the
outputs their LLM spans describe.

An LLM span is recognised by the conventions the instrumentations write:
- GenAI semantic conventions: ``gen_ai.input.messages`` / ``gen_ai.output.messages`` (JSON), or the
  older message events (``gen_ai.user.message``, ``gen_ai.choice``, ...), or OpenLLMetry's indexed
  ``gen_ai.prompt.N.*`` / ``gen_ai.completion.N.*`` attributes;
- OpenInference: ``llm.input_messages.N.message.*`` and ``llm.output_messages.N.message.*``, and
  ``output.value`` when it holds the provider's JSON response (token log-probs come from there).

The trace and span ids become the ``external_id`` (so a re-sent export adds nothing) and the
resource's ``service.name`` becomes the ``app``. Other spans are counted and ignored.
"""

from __future__ import annotations

import base64
import json
from collections.abc import Iterator
from dataclasses import dataclass, field
from typing import Any

from service.errors import BadRequest

PROTOBUF = "application/x-protobuf"


@dataclass
class Span:
    """One span, reduced to what matters here; attribute values as plain Python values."""

    trace_id: str
    span_id: str
    name: str
    app: str
    attributes: dict[str, Any]
    events: list[tuple[str, dict[str, Any]]] = field(default_factory=list)


@dataclass
class Export:
    """What one export request held: the outputs of its LLM spans and the count of the rest."""

    outputs: list[dict[str, Any]]
    ignored: int


def decode(body: bytes, content_type: str) -> Iterator[Span]:
    """The spans of an OTLP/HTTP trace export, in protobuf or JSON (422 when it is neither)."""
    if content_type.startswith(PROTOBUF):
        return _spans(_protobuf_as_json(body), hex_ids=False)
    try:
        data = json.loads(body)
    except (ValueError, UnicodeDecodeError) as exc:
        raise BadRequest("the OTLP body is not valid JSON", details={"reason": str(exc)}) from exc
    if not isinstance(data, dict):
        raise BadRequest("an OTLP export is a JSON object with resourceSpans")
    return _spans(data, hex_ids=True)


def _protobuf_as_json(body: bytes) -> dict[str, Any]:
    from google.protobuf.json_format import MessageToDict
    from google.protobuf.message import DecodeError
    from opentelemetry.proto.collector.trace.v1.trace_service_pb2 import ExportTraceServiceRequest

    request = ExportTraceServiceRequest()
    try:
        request.ParseFromString(body)
    except DecodeError as exc:
        raise BadRequest(
            "the OTLP body is not an ExportTraceServiceRequest", details={"reason": str(exc)}
        ) from exc
    return MessageToDict(request)


def _id(value: Any, hex_ids: bool) -> str:
    # OTLP/JSON writes ids as hex; protobuf's JSON mapping writes bytes as base64.
    text = str(value or "")
    return text.lower() if hex_ids else base64.b64decode(text).hex()


def _spans(data: dict[str, Any], *, hex_ids: bool) -> Iterator[Span]:
    try:
        for resource_spans in data.get("resourceSpans") or []:
            resource = attributes((resource_spans.get("resource") or {}).get("attributes"))
            app = str(resource.get("service.name") or "otel")
            for scope in resource_spans.get("scopeSpans") or []:
                for span in scope.get("spans") or []:
                    yield Span(
                        trace_id=_id(span.get("traceId"), hex_ids),
                        span_id=_id(span.get("spanId"), hex_ids),
                        name=str(span.get("name") or ""),
                        app=app,
                        attributes=attributes(span.get("attributes")),
                        events=[
                            (str(e.get("name")), attributes(e.get("attributes")))
                            for e in span.get("events") or []
                        ],
                    )
    except (AttributeError, TypeError, ValueError) as exc:
        raise BadRequest("the OTLP export is malformed", details={"reason": str(exc)}) from exc


def attributes(items: Any) -> dict[str, Any]:
    """OTLP key-value attributes as a dict of plain values."""
    return {str(item["key"]): _value(item.get("value") or {}) for item in items or []}


def _value(value: dict[str, Any]) -> Any:
    if "stringValue" in value:
        return value["stringValue"]
    if "intValue" in value:
        return int(value["intValue"])
    if "doubleValue" in value:
        return float(value["doubleValue"])
    if "boolValue" in value:
        return bool(value["boolValue"])
    if "arrayValue" in value:
        return [_value(v) for v in (value["arrayValue"] or {}).get("values") or []]
    if "kvlistValue" in value:
        return attributes((value["kvlistValue"] or {}).get("values"))
    if "bytesValue" in value:
        return value["bytesValue"]
    return None


def outputs_of(spans: Iterator[Span]) -> Export:
    """The output each LLM span describes; spans of other kinds are counted."""
    outputs, ignored = [], 0
    for span in spans:
        output = _output(span)
        if output is None:
            ignored += 1
        else:
            outputs.append(output)
    return Export(outputs=outputs, ignored=ignored)


def _output(span: Span) -> dict[str, Any] | None:
    a = span.attributes
    messages = _input_messages(span)
    answer = _output_message(span)
    completion = _json_completion(a.get("output.value"))
    if not messages or (answer is None and completion is None):
        return None
    output: dict[str, Any] = {
        "external_id": f"{span.trace_id}:{span.span_id}",
        "app": _app_name(span.app),
        "model": a.get("gen_ai.response.model") or a.get("gen_ai.request.model") or a.get("llm.model_name"),
        "messages": messages,
        "metadata": {
            "source": "otlp",
            "span": span.name,
            "trace_id": span.trace_id,
            "span_id": span.span_id,
            **{k: a[k] for k in ("gen_ai.system", "gen_ai.provider.name", "llm.provider") if k in a},
        },
    }
    if completion is not None:
        output["completion"] = completion
    else:
        output["response"] = answer
    return output


def _app_name(name: str) -> str:
    cleaned = "".join(c if c.isalnum() or c in "._:/-" else "-" for c in name)[:100]
    return cleaned or "otel"


def _input_messages(span: Span) -> list[dict[str, Any]]:
    a = span.attributes
    if isinstance(a.get("gen_ai.input.messages"), str):
        return [_from_parts(m) for m in _json_list(a["gen_ai.input.messages"])]
    indexed = _indexed(a, "gen_ai.prompt.") or _indexed(a, "llm.input_messages.", inner="message.")
    if indexed:
        return indexed
    events = [
        {"role": name.split(".")[1], "content": _text(attrs.get("content"))}
        for name, attrs in span.events
        if name in ("gen_ai.system.message", "gen_ai.user.message", "gen_ai.assistant.message")
    ]
    return events


def _output_message(span: Span) -> str | None:
    a = span.attributes
    if isinstance(a.get("gen_ai.output.messages"), str):
        first = _json_list(a["gen_ai.output.messages"])[:1]
        return _from_parts(first[0])["content"] if first else None
    indexed = _indexed(a, "gen_ai.completion.") or _indexed(a, "llm.output_messages.", inner="message.")
    if indexed:
        return str(indexed[0]["content"])
    for name, attrs in span.events:
        if name == "gen_ai.choice":
            message = attrs.get("message")
            if isinstance(message, dict):
                return _text(message.get("content"))
            if isinstance(message, str):
                return _text(_json_object(message).get("content"))
    return None


def _indexed(a: dict[str, Any], prefix: str, inner: str = "") -> list[dict[str, Any]]:
    """Messages written as ``{prefix}{i}.{inner}role`` / ``content`` attributes, in index order."""
    found: dict[int, dict[str, Any]] = {}
    for key, value in a.items():
        if not key.startswith(prefix):
            continue
        index, _, rest = key[len(prefix) :].partition(".")
        if not index.isdigit() or not rest.startswith(inner):
            continue
        part = rest[len(inner) :]
        if part in ("role", "content"):
            found.setdefault(int(index), {})[part] = value
    return [
        {"role": str(m.get("role") or "user"), "content": _text(m.get("content"))}
        for _, m in sorted(found.items())
        if m.get("content") is not None
    ]


def _from_parts(message: Any) -> dict[str, Any]:
    """A GenAI-convention message (``parts``) or an OpenAI-style one, as an OpenAI chat message."""
    if not isinstance(message, dict):
        return {"role": "user", "content": _text(message)}
    if "parts" in message:
        text = "\n".join(
            str(p.get("content", ""))
            for p in message["parts"] or []
            if isinstance(p, dict) and p.get("type") == "text"
        )
        return {"role": str(message.get("role") or "user"), "content": text}
    return {"role": str(message.get("role") or "user"), "content": _text(message.get("content"))}


def _text(value: Any) -> str:
    if value is None:
        return ""
    if isinstance(value, list):
        return "\n".join(str(p.get("text", "")) if isinstance(p, dict) else str(p) for p in value)
    return str(value)


def _json_list(text: str) -> list[Any]:
    try:
        value = json.loads(text)
    except ValueError:
        return []
    return value if isinstance(value, list) else []


def _json_object(text: Any) -> dict[str, Any]:
    if not isinstance(text, str):
        return {}
    try:
        value = json.loads(text)
    except ValueError:
        return {}
    return value if isinstance(value, dict) else {}


def _json_completion(text: Any) -> dict[str, Any] | None:
    """The provider's chat-completion JSON, when a span carries it whole (OpenInference's
    ``output.value``): it keeps the token log-probs."""
    value = _json_object(text)
    choices = value.get("choices")
    if isinstance(choices, list) and choices and isinstance(choices[0], dict) and "message" in choices[0]:
        return value
    return None
