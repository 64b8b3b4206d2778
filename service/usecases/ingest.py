"""Storing what applications post, one output or many: what the batch endpoint, OTLP ingest and file
import share. Each item is validated and stored on its own, so one bad item never costs the others;
the caller owns the transaction and enqueues scoring for the new ids after it commits."""

from __future__ import annotations

from collections import Counter
from collections.abc import Iterable
from dataclasses import dataclass, field
from typing import Any

from pydantic import ValidationError
from sqlalchemy.orm import Session

from service.domain import BatchItemResult, BatchResult, OutputIn
from service.errors import ServiceError, validation_details
from service.storage import repository as repo


@dataclass
class Ingested:
    """Per-item results, the ids of the outputs that are new, and how many each app sent."""

    results: list[BatchItemResult] = field(default_factory=list)
    new_ids: list[str] = field(default_factory=list)
    apps: Counter[str] = field(default_factory=Counter)

    def summary(self) -> BatchResult:
        counts = Counter(r.status for r in self.results)
        return BatchResult(
            accepted=counts["accepted"],
            duplicates=counts["duplicate"],
            errors=counts["error"],
            results=self.results,
        )


def ingest_many(session: Session, raws: Iterable[dict[str, Any]]) -> Ingested:
    """Validate and store each raw output in turn; a bad one gets its error and the rest go on."""
    done = Ingested()
    for index, raw in enumerate(raws):
        done.results.append(_ingest_one(session, index, raw, done))
    return done


def _ingest_one(session: Session, index: int, raw: dict[str, Any], done: Ingested) -> BatchItemResult:
    try:
        output_in = OutputIn.model_validate(raw)
        row, duplicate = repo.ingest_output(session, output_in=output_in)
    except ValidationError as exc:
        error = {
            "code": "validation_failed",
            "message": "invalid output",
            "details": validation_details(exc.errors()),
        }
        return BatchItemResult(index=index, status="error", error=error)
    except ServiceError as exc:
        return BatchItemResult(index=index, status="error", error=exc.envelope()["error"])
    if not duplicate:
        done.new_ids.append(row.id)
        done.apps[row.app] += 1
    return BatchItemResult(index=index, status="duplicate" if duplicate else "accepted", id=row.id)
