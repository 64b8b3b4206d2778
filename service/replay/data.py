"""Reading a labelled history for `review-router replay`: JSONL or CSV rows -> outputs to post, each
with whether a human judged it a failure.

Columns are found by their usual names or named explicitly (``Columns``). A row gives its input as
chat ``messages`` (a list, or JSON text of one) or as prompt text, its output as a chat-completion
object (``completion``: its log-probs become signals) or as response text, optional extra
``samples``, and a label. Labels are failures when their text is one of ``fail_values``; a column
named like ``correct`` counts the other way round. A row whose label is empty (null, "", "none",
"nan") was never judged: it is left out and counted, never guessed either way.
"""

from __future__ import annotations

import csv
import gzip
import io
import json
from collections.abc import Iterator, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

PROMPT_NAMES = ("prompt", "question", "user_query", "input", "query", "instruction")
RESPONSE_NAMES = ("response", "chatgpt_response", "answer", "output", "completion_text")
LABEL_NAMES = (
    "failed",
    "failure",
    "is_failure",
    "label",
    "hallucination",
    "verdict",
    "correct",
    "is_correct",
)
ID_NAMES = ("external_id", "id", "ID", "uid")
#: Label columns whose true value means the output is right.
POSITIVE_NAMES = ("correct", "is_correct")
#: Label cells that mean "nobody judged this row".
UNLABELLED = ("", "none", "null", "nan", "n/a")
FAIL_VALUES = ("yes", "true", "1", "fail", "failed", "failure", "wrong", "incorrect", "hallucination", "bad")


class ReplayDataError(ValueError):
    """The file cannot be read as a labelled history."""


@dataclass(frozen=True)
class Columns:
    """Which column holds what; None means "find it by its usual names"."""

    messages: str | None = None
    prompt: str | None = None
    response: str | None = None
    completion: str | None = None
    samples: str | None = None
    label: str | None = None
    id: str | None = None  # "" numbers the rows instead
    model: str | None = None
    fail_values: tuple[str, ...] = FAIL_VALUES
    label_means_correct: bool | None = None


@dataclass(frozen=True)
class Labelled:
    """One output as posted, and the human verdict on it."""

    external_id: str
    payload: dict[str, Any] = field(repr=False)
    failed: bool


def read_rows(path: Path) -> Iterator[dict[str, Any]]:
    """Rows of a JSONL or CSV file (either may be gzipped)."""
    opener = gzip.open if path.suffix == ".gz" else open
    stem = path.name.removesuffix(".gz")
    with opener(path, "rt", encoding="utf-8", newline="") as handle:
        text: io.TextIOBase = handle  # type: ignore[assignment]
        if stem.endswith(".csv"):
            yield from csv.DictReader(text)
            return
        for number, line in enumerate(text, 1):
            if line.strip():
                try:
                    row = json.loads(line)
                except json.JSONDecodeError as exc:
                    raise ReplayDataError(f"{path}:{number}: not JSON ({exc.msg})") from exc
                if not isinstance(row, dict):
                    raise ReplayDataError(f"{path}:{number}: a row must be a JSON object")
                yield row


def _first(
    row: dict[str, Any], named: str | None, names: Sequence[str], *, empty_ok: bool = False
) -> str | None:
    """The column named, else the first usual name the row has (with a value, unless ``empty_ok``)."""
    if named is not None:
        return named if named in row else None
    return next((n for n in names if n in row and (empty_ok or row[n] not in (None, ""))), None)


def _messages(value: Any) -> list[dict[str, Any]] | None:
    if isinstance(value, str):
        try:
            value = json.loads(value)
        except json.JSONDecodeError:
            return None
    return value if isinstance(value, list) and value else None


@dataclass(frozen=True)
class Loaded:
    """The labelled rows of a file, and how many rows had an empty label and were left out."""

    items: list[Labelled]
    unlabelled: int = 0


def _failed(value: Any, columns: Columns, column: str) -> bool | None:
    if value is None or (not isinstance(value, bool) and str(value).strip().casefold() in UNLABELLED):
        return None
    positive = columns.label_means_correct
    if positive is None:
        positive = column in POSITIVE_NAMES
    if isinstance(value, bool):
        truth = value
    else:
        truth = str(value).strip().casefold() in {v.casefold() for v in columns.fail_values}
        if positive:
            truth = str(value).strip().casefold() in {"true", "1", "yes", "pass", "correct", "right"}
    return not truth if positive else truth


def labelled(row: dict[str, Any], index: int, columns: Columns, *, app: str) -> Labelled | None:
    """One row as an output payload plus its label, None if its label is empty;
    ``ReplayDataError`` names what is missing."""
    label_col = _first(row, columns.label, LABEL_NAMES, empty_ok=True)
    if label_col is None:
        raise ReplayDataError(
            f"row {index}: no label column (tried {columns.label or ', '.join(LABEL_NAMES)})"
        )
    failed = _failed(row[label_col], columns, label_col)
    if failed is None:
        return None
    id_col = None if columns.id == "" else _first(row, columns.id, ID_NAMES)
    external_id = str(row[id_col]) if id_col else f"row-{index}"
    payload: dict[str, Any] = {"external_id": external_id, "app": app}
    messages = _messages(row.get(columns.messages or "messages"))
    if messages is not None:
        payload["messages"] = messages
    else:
        prompt_col = _first(row, columns.prompt, PROMPT_NAMES)
        if prompt_col is None:
            raise ReplayDataError(f"row {index}: no messages or prompt column")
        payload["messages"] = [{"role": "user", "content": str(row[prompt_col])}]
    completion = row.get(columns.completion or "completion")
    if isinstance(completion, dict) and completion.get("choices"):
        payload["completion"] = completion
    else:
        response_col = _first(row, columns.response, RESPONSE_NAMES)
        if response_col is None:
            raise ReplayDataError(f"row {index}: no completion or response column")
        payload["response"] = str(row[response_col])
    samples = row.get(columns.samples or "samples")
    if isinstance(samples, list) and samples:
        payload["samples"] = [str(s) for s in samples]
    model = row.get(columns.model or "model")
    if isinstance(model, str) and model:
        payload["model"] = model
    return Labelled(external_id, payload, failed)


def load(path: Path, columns: Columns, *, app: str, limit: int | None = None, skip: int = 0) -> Loaded:
    """The file's labelled rows as outputs (the first ``limit`` after the first ``skip`` rows), rows
    with an empty label counted apart; external ids must be unique."""
    out: list[Labelled] = []
    seen: set[str] = set()
    unlabelled = 0
    for index, row in enumerate(read_rows(path)):
        if index < skip:
            continue
        if limit is not None and len(out) >= limit:
            break
        item = labelled(row, index, columns, app=app)
        if item is None:
            unlabelled += 1
            continue
        if item.external_id in seen:
            raise ReplayDataError(f"row {index}: external id {item.external_id!r} repeats an earlier row")
        seen.add(item.external_id)
        out.append(item)
    if not out:
        raise ReplayDataError(f"{path}: no labelled rows" if unlabelled else f"{path}: no rows")
    return Loaded(out, unlabelled)
