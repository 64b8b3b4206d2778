"""Exports, pure: a collection version's items in the formats people load elsewhere.

- ``openai-chat``: OpenAI chat fine-tuning JSONL, one ``{"messages": [...]}`` per line whose last
  message is the assistant turn with the ideal (corrected) answer.
- ``openai-dpo``: OpenAI preference (DPO) fine-tuning JSONL: ``input`` (``{"messages": [...]}``),
  ``preferred_output`` (the correction) and ``non_preferred_output`` (the reviewed output), each a
  list holding one assistant message.
- ``eval-jsonl``: one regression case per line: ``id``, ``input`` (chat messages), ``ideal`` (null
  when the reviewer gave none), ``bad_output``, ``categories`` and ``metadata`` (source ids and
  provenance). OpenAI evals reads ``input``/``ideal``; Inspect reads it with ``target="ideal"``.
- ``csv``: the same columns for spreadsheets; ``input``, ``categories`` and ``merged_output_ids``
  hold JSON.

Output is deterministic (stable order, sorted keys, ``\\n`` line ends), so a version exports to the
same bytes every time. Items a format cannot express are skipped and reported, never invented.
"""

from __future__ import annotations

import csv
import io
import json
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any

FORMATS = ("openai-chat", "openai-dpo", "eval-jsonl", "csv")
MEDIA_TYPES = {
    "openai-chat": "application/jsonl",
    "openai-dpo": "application/jsonl",
    "eval-jsonl": "application/jsonl",
    "csv": "text/csv",
}
EXTENSIONS = {"openai-chat": "jsonl", "openai-dpo": "jsonl", "eval-jsonl": "jsonl", "csv": "csv"}
CHAT_FIELDS = frozenset({"messages"})
DPO_FIELDS = frozenset({"input", "preferred_output", "non_preferred_output"})
EVAL_FIELDS = frozenset({"id", "input", "ideal", "bad_output", "categories", "metadata"})
PROVENANCE_COLUMNS = (
    "output_id",
    "review_id",
    "verdict",
    "reviewer",
    "app",
    "model",
    "queue",
    "cluster",
    "selection_id",
    "received_at",
    "reviewed_at",
    "promoted_at",
    "promoted_by",
    "rule",
)
CSV_COLUMNS = ("id", "input", "ideal", "bad_output", "categories", *PROVENANCE_COLUMNS, "merged_output_ids")


@dataclass(frozen=True)
class ExportItem:
    """One item of a version: its frozen content, provenance and the duplicates merged into it."""

    entry_id: str
    input: list[dict[str, Any]]
    bad_output: str | None
    ideal: str | None
    categories: list[str]
    provenance: dict[str, Any]
    merged_output_ids: list[str] = field(default_factory=list)

    @property
    def output_id(self) -> str:
        return str(self.provenance.get("output_id", ""))


@dataclass(frozen=True)
class Export:
    text: str
    exported: list[str]  # entry ids, in file order
    skipped: list[dict[str, str]]  # items this format cannot express, with the reason


def dumps(value: Any) -> str:
    """One JSON line: sorted keys, no ASCII escaping, compact."""
    return json.dumps(value, ensure_ascii=False, sort_keys=True, separators=(",", ":"))


def _assistant(text: str) -> dict[str, str]:
    return {"role": "assistant", "content": text}


def _why_not(fmt: str, item: ExportItem) -> str | None:
    if fmt in ("openai-chat", "openai-dpo") and not item.ideal:
        return "no ideal answer: the reviewer gave no correction"
    if fmt == "openai-dpo" and not item.bad_output:
        return "no rejected answer: a passed output has no worse alternative"
    if fmt == "openai-dpo" and item.bad_output == item.ideal:
        return "the correction equals the reviewed output"
    return None


def _metadata(item: ExportItem) -> dict[str, Any]:
    meta = {k: item.provenance.get(k) for k in PROVENANCE_COLUMNS}
    meta["merged_output_ids"] = list(item.merged_output_ids)
    return meta


def line(fmt: str, item: ExportItem) -> dict[str, Any]:
    """The record of one item in a JSONL format."""
    if fmt == "openai-chat":
        return {"messages": [*item.input, _assistant(item.ideal or "")]}
    if fmt == "openai-dpo":
        return {
            "input": {"messages": item.input},
            "preferred_output": [_assistant(item.ideal or "")],
            "non_preferred_output": [_assistant(item.bad_output or "")],
        }
    if fmt == "eval-jsonl":
        return {
            "id": item.entry_id,
            "input": item.input,
            "ideal": item.ideal,
            "bad_output": item.bad_output,
            "categories": list(item.categories),
            "metadata": _metadata(item),
        }
    raise ValueError(f"unknown JSONL format {fmt!r}")


#: A spreadsheet runs a cell that starts with one of these as a formula (OWASP "CSV injection").
FORMULA_STARTS = ("=", "+", "-", "@", "\t", "\r")


def csv_cell(value: str) -> str:
    """A cell a spreadsheet shows as text: a leading ``'`` before a formula start (and before a
    leading ``'`` itself, so ``csv_value`` undoes it exactly)."""
    return "'" + value if value.startswith((*FORMULA_STARTS, "'")) else value


def csv_value(cell: str) -> str:
    """The value ``csv_cell`` wrote."""
    return cell[1:] if cell.startswith("'") else cell


def _csv_row(item: ExportItem) -> list[str]:
    meta = _metadata(item)
    values: list[Any] = [
        item.entry_id,
        dumps(item.input),
        item.ideal,
        item.bad_output,
        dumps(item.categories),
    ]
    values += [meta[k] for k in PROVENANCE_COLUMNS]
    values.append(dumps(item.merged_output_ids))
    return [csv_cell("" if v is None else str(v)) for v in values]


def export(
    fmt: str, items: Sequence[ExportItem], *, held_back: set[str] | frozenset[str] = frozenset()
) -> Export:
    """Render the items (in the given order) that are not held back and that this format can express."""
    if fmt not in FORMATS:
        raise ValueError(f"unknown format {fmt!r}; one of {', '.join(FORMATS)}")
    kept: list[ExportItem] = []
    skipped = []
    for item in items:
        if item.entry_id in held_back:
            continue
        reason = _why_not(fmt, item)
        if reason is None:
            kept.append(item)
        else:
            skipped.append({"entry_id": item.entry_id, "output_id": item.output_id, "reason": reason})
    if fmt == "csv":
        buffer = io.StringIO()
        writer = csv.writer(buffer, lineterminator="\n")
        writer.writerow(CSV_COLUMNS)
        writer.writerows(_csv_row(i) for i in kept)
        text = buffer.getvalue()
    else:
        text = "".join(dumps(line(fmt, i)) + "\n" for i in kept)
    return Export(text=text, exported=[i.entry_id for i in kept], skipped=skipped)


def parse(fmt: str, text: str) -> list[dict[str, Any]]:
    """Read an export back into ``input``, ``ideal`` and (where the format has them) ``bad_output``,
    ``categories`` and ``id``: what a round trip must preserve."""
    if fmt == "csv":
        rows = [{k: csv_value(v) for k, v in r.items()} for r in csv.DictReader(io.StringIO(text))]
        return [
            {
                "id": r["id"],
                "input": json.loads(r["input"]),
                "ideal": r["ideal"] or None,
                "bad_output": r["bad_output"] or None,
                "categories": json.loads(r["categories"]),
                "output_id": r["output_id"],
                "merged_output_ids": json.loads(r["merged_output_ids"]),
            }
            for r in rows
        ]
    records = [json.loads(raw) for raw in text.splitlines() if raw.strip()]
    if fmt == "openai-chat":
        return [{"input": r["messages"][:-1], "ideal": r["messages"][-1]["content"]} for r in records]
    if fmt == "openai-dpo":
        return [
            {
                "input": r["input"]["messages"],
                "ideal": r["preferred_output"][0]["content"],
                "bad_output": r["non_preferred_output"][0]["content"],
            }
            for r in records
        ]
    if fmt == "eval-jsonl":
        return [
            {
                "id": r["id"],
                "input": r["input"],
                "ideal": r["ideal"],
                "bad_output": r["bad_output"],
                "categories": r["categories"],
                "output_id": r["metadata"]["output_id"],
                "merged_output_ids": r["metadata"]["merged_output_ids"],
            }
            for r in records
        ]
    raise ValueError(f"unknown format {fmt!r}")


def report(
    *,
    collection: str,
    kind: str,
    version: int,
    fmt: str | None,
    held_back: Sequence[dict[str, Any]],
    merged: Sequence[dict[str, Any]],
    checked_against: dict[str, int],
    result: Export | None = None,
) -> dict[str, Any]:
    """The leakage report that goes with an export: what was held back or skipped, and why."""
    return {
        "collection": collection,
        "kind": kind,
        "version": version,
        "format": fmt,
        "exported": len(result.exported) if result is not None else None,
        "held_back": list(held_back),
        "skipped": list(result.skipped) if result is not None else [],
        "merged": list(merged),
        "checked_against": dict(sorted(checked_against.items())),
    }
