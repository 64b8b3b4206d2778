"""OpenTelemetry ingest: `POST /v1/otlp/v1/traces` is an OTLP/HTTP trace endpoint. Point an
exporter at `{RR_URL}/v1/otlp` with the ingest key as `Authorization: Bearer`; its LLM spans become
outputs, the rest are counted and ignored."""

from __future__ import annotations

import gzip
import json
import zlib
from typing import Any

from fastapi import APIRouter, Request, Response
from fastapi.concurrency import run_in_threadpool
from sqlalchemy.orm import Session

from service import otlp, telemetry
from service.deps import IngestDep, SessionDep, SettingsDep, within_ingest_rate
from service.errors import BadRequest, PayloadTooLarge
from service.followups import after_commit_score
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
    within_ingest_rate(request, principal, settings, len(export.outputs))
    done = await run_in_threadpool(_store, session, export.outputs)
    for app, count in done.apps.items():
        telemetry.ingested(app, count)
    telemetry.spans(llm=len(export.outputs), ignored=export.ignored)
    if done.new_ids:
        after_commit_score(request, done.new_ids)
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


def _store(session: Session, outputs: list[dict[str, Any]]) -> Ingested:
    with session.begin():
        return ingest_many(session, outputs)


def _decompressed(body: bytes, encoding: str, limit: int) -> bytes:
    encoding = encoding.strip().lower()
    if encoding in ("", "identity"):
        return body
    if encoding not in ("gzip", "deflate"):
        raise BadRequest(f"unsupported Content-Encoding {encoding!r}; send gzip, deflate or none")
    try:
        decoder = zlib.decompressobj(wbits=31 if encoding == "gzip" else 15)
        out = decoder.decompress(body, limit + 1)
    except (zlib.error, gzip.BadGzipFile) as exc:
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
