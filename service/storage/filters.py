"""Narrowing a queue: by app, model, stratum, score range, metadata values and text. One filter
serves the item list, the queue page and claiming the next item, so a reviewer working a filtered
queue is only given what the filter shows.

Text search uses PostgreSQL full-text search (``simple`` configuration: no stemming, any language)
over prompt and response; SQLite falls back to a case-insensitive substring match. Either way an
exact ``external_id`` matches too.
"""

from __future__ import annotations

from dataclasses import dataclass
from urllib.parse import urlencode

from sqlalchemy import ColumnElement, and_, func, or_, select
from sqlalchemy.orm import Session

from service.storage.tables import Output, Pick


@dataclass(frozen=True)
class ItemFilter:
    app: str | None = None
    model: str | None = None
    stratum: str | None = None
    min_score: float | None = None
    max_score: float | None = None
    metadata: tuple[tuple[str, str], ...] = ()
    text: str | None = None

    @property
    def active(self) -> bool:
        return any(v not in (None, ()) for v in self.__dict__.values())

    def query(self) -> str:
        """The filter as a query string (the same names the API and the pages take)."""
        pairs: list[tuple[str, str]] = [
            (name, str(value))
            for name, value in (
                ("app", self.app),
                ("model", self.model),
                ("stratum", self.stratum),
                ("min_score", self.min_score),
                ("max_score", self.max_score),
                ("q", self.text),
            )
            if value is not None
        ]
        pairs += [("metadata", f"{key}={value}") for key, value in self.metadata]
        return urlencode(pairs)


def conditions(session: Session, item_filter: ItemFilter | None) -> list[ColumnElement[bool]]:
    """WHERE conditions on ``Pick`` (the output's own fields through EXISTS, so callers need no join)."""
    if item_filter is None or not item_filter.active:
        return []
    f = item_filter
    on_pick: list[ColumnElement[bool]] = []
    if f.stratum is not None:
        on_pick.append(Pick.stratum == f.stratum)
    if f.min_score is not None:
        on_pick.append(Pick.score >= f.min_score)
    if f.max_score is not None:
        on_pick.append(Pick.score <= f.max_score)
    on_output: list[ColumnElement[bool]] = []
    if f.app is not None:
        on_output.append(Output.app == f.app)
    if f.model is not None:
        on_output.append(Output.model == f.model)
    for key, value in f.metadata:
        on_output.append(Output.meta[key].as_string() == value)
    if f.text:
        on_output.append(or_(Output.external_id == f.text, _text_match(session, f.text)))
    if on_output:
        # Output stays in the subquery's own FROM even where the outer query joins it too.
        matching = select(Output.id).where(Output.id == Pick.output_id, and_(*on_output))
        on_pick.append(matching.correlate_except(Output).exists())
    return on_pick


def _text_match(session: Session, text: str) -> ColumnElement[bool]:
    if session.get_bind().dialect.name == "postgresql":
        document = func.to_tsvector("simple", func.coalesce(Output.prompt, "") + " " + Output.response)
        return document.op("@@")(func.plainto_tsquery("simple", text))
    pattern = "%" + text.replace("\\", "\\\\").replace("%", "\\%").replace("_", "\\_") + "%"
    return or_(Output.prompt.ilike(pattern, escape="\\"), Output.response.ilike(pattern, escape="\\"))
