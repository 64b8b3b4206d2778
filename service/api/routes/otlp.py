"""OpenTelemetry ingest: `POST /v1/otlp/v1/traces` is an OTLP/HTTP trace endpoint. Point an
exporter at `{RR_URL}/v1/otlp` with the ingest key as `Authorization: Bearer`; its LLM spans become
outputs, the rest are counted and ignored."""

from __future__ import annotations

import json
import zlib
from typing import Any

from fastapi import APIRouter, Request, Response
from fastapi.concurrency import run_in_threadpool
from sqlalchemy.orm import Session

from service import otlp, telemetry
from service.auth import Principal
from service.deps import IngestDep, SessionDep, SettingsDep, within_ingest_rate
from service.errors import BadRequest, PayloadTooLarge
from service.followups import after_commit_ingest
from service.settings import Settings
from service.usecases.ingest import Ingested, ingest_many

router = APIRouter(prefix="/otlp", tags=["opentelemetry"])


@router.post(
    "/v1/traces",
    openapi_extra={
        "requestBody": {
            "content": {
                "application/x-protobuf": {"schema": {"type": "string", "format": "binary"}},
                "application/json": {"schema": {"type": "object"}},
            },
            "required": True,
        }
    },
)
async def export_traces(
    request: Request, principal: IngestDep, session: SessionDep, settings: SettingsDep
) -> Response:
    """Take an OTLP trace export (protobuf or JSON, gzip or not); answers OTLP's export response in
    the request's encoding, with the spans refused as ``partialSuccess.rejectedSpans``."""
    content_type = request.headers.get("content-type", "application/json").split(";")[0].strip().lower()
    body = _decompressed(
        await request.body(), request.headers.get("content-encoding", ""), settings.max_body_bytes
    )
    export = otlp.outputs_of(otlp.decode(body, content_type))
    # Redis, the database and the enqueue block: run them off the event loop, as sync routes are.
    done = await run_in_threadpool(_store, request, principal, session, settings, export.outputs)
    telemetry.spans(llm=len(export.outputs), ignored=export.ignored)
    summary = done.summary()
    errors = [r.error["message"] for r in summary.results if r.error]
    return _answer(
        content_type,
        rejected=summary.errors,
        message="; ".join(sorted(set(errors)))[:1000],
        counts={
            "accepted": summary.accepted,
            "duplicates": summary.duplicates,
            "rejected": summary.errors,
            "ignored": export.ignored,
        },
    )


def _store(
    request: Request,
    principal: Principal,
    session: Session,
    settings: Settings,
    outputs: list[dict[str, Any]],
) -> Ingested:
    within_ingest_rate(request, principal, settings, len(outputs))
    with session.begin():
        done = ingest_many(session, outputs)
    after_commit_ingest(request, done.apps, done.new_ids)
    return done


def _decompressed(body: bytes, encoding: str, limit: int) -> bytes:
    encoding = encoding.strip().lower()
    if encoding in ("", "identity"):
        return body
    if encoding not in ("gzip", "deflate"):
        raise BadRequest(f"unsupported Content-Encoding {encoding!r}; send gzip, deflate or none")
    try:
        decoder = zlib.decompressobj(wbits=31 if encoding == "gzip" else 15)
        out = decoder.decompress(body, limit + 1)
    except zlib.error as exc:
        raise BadRequest(f"the body is not valid {encoding}", details={"reason": str(exc)}) from exc
    if len(out) > limit:
        raise PayloadTooLarge(
            f"the decompressed body is over {limit} bytes", details={"max_body_bytes": limit}
        )
    return out


def _answer(content_type: str, *, rejected: int, message: str, counts: dict[str, Any]) -> Response:
    if content_type == otlp.PROTOBUF:
        from opentelemetry.proto.collector.trace.v1.trace_service_pb2 import ExportTraceServiceResponse

        answer = ExportTraceServiceResponse()
        if rejected:
            answer.partial_success.rejected_spans = rejected
            answer.partial_success.error_message = message
        return Response(answer.SerializeToString(), media_type=otlp.PROTOBUF)
    body: dict[str, Any] = {"reviewRouter": counts}
    if rejected:
        body["partialSuccess"] = {"rejectedSpans": rejected, "errorMessage": message}
    return Response(json.dumps(body).encode(), media_type="application/json")
