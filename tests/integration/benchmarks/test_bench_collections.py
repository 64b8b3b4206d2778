"""`review-router bench collections` at a small size: real API, worker, encoder and CLI on SQLite and
the test Redis. Its exports are read back here, independently of the bench's own checks."""

from __future__ import annotations

import csv
import io
import json
from pathlib import Path
from typing import Any

import pytest
from redis import Redis

from benchmarks.curation import run_collections
from benchmarks.curation_data import QA_DATA
from benchmarks.curation_report import check
from core import exports

ITEMS = 24
FIELDS = {
    "openai-chat": {"messages"},
    "openai-dpo": {"input", "preferred_output", "non_preferred_output"},
    "eval-jsonl": {"id", "input", "ideal", "bad_output", "categories", "metadata"},
}


def _input(messages: list[dict[str, Any]]) -> str:
    return json.dumps([(m["role"], " ".join(m["content"].lower().split())) for m in messages])


def _read(files: Path, name: str, version: int, fmt: str) -> list[dict[str, Any]]:
    text = (files / f"{name}-v{version}-{fmt}.{exports.EXTENSIONS[fmt]}").read_text(encoding="utf-8")
    if fmt == "csv":
        reader = csv.DictReader(io.StringIO(text))
        rows = list(reader)
        assert tuple(reader.fieldnames or ()) == exports.CSV_COLUMNS
        assert all(None not in row and None not in row.values() for row in rows)
        return rows
    records = [json.loads(line) for line in text.splitlines()]
    assert all(set(r) == FIELDS[fmt] for r in records), fmt
    return records


def test_curated_failures_reach_every_export_once_with_leakage_held_back_and_duplicates_merged(
    redis_url: str, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    code = run_collections(database_url=None, redis_url=redis_url, data=QA_DATA, items=ITEMS, out=tmp_path)
    printed = capsys.readouterr().out
    figures = json.loads((tmp_path / "collections.json").read_text())

    assert code == 0 and figures["problems"] == [], printed
    assert figures["posted"] == ITEMS + figures["repeats"] and figures["repeats"] >= 2
    assert figures["ingest"] == {"accepted": figures["posted"]}
    reviews = figures["reviews"]
    assert reviews["claimed"] + reviews["by_id"] == figures["posted"] == figures["failed"] + figures["passed"]
    assert figures["cli_check"]["same_as_api"] and figures["cli_check"]["bytes"] > 0

    files = tmp_path / "collections-exports"
    got = {
        name: {fmt: _read(files, name, c["version"], fmt) for fmt in exports.FORMATS}
        for name, c in figures["collections"].items()
    }
    for name, c in figures["collections"].items():
        # Every reviewed failure is promoted; repeats are merged into the item they repeat.
        assert c["promoted"] == figures["failed"] and c["merged"] == figures["repeats"]
        assert c["items"] == c["promoted"] - c["merged"]
        for fmt in exports.FORMATS:
            assert len(got[name][fmt]) == c["exported"][fmt]
            assert c["exported"][fmt] + c["held_back"] + c["skipped"][fmt] == c["items"], (name, fmt)
        inputs = [_input(r["input"]) for r in got[name]["eval-jsonl"]]
        assert len(inputs) == len(set(inputs)), "an input exported twice in one collection"

    tuned = {_input(r["messages"][:-1]) for r in got["corrections"]["openai-chat"]}
    evals = {_input(r["input"]) for r in got["qa-regressions"]["eval-jsonl"]}
    assert tuned and evals and not tuned & evals
    # Held back on one side means exported on the other: every failure is exported exactly once.
    assert len(tuned) + len(evals) == figures["collections"]["corrections"]["items"]
    # Each repeat is merged into its twin's item, which is exported on exactly one side.
    merged = [m for name in got for r in got[name]["eval-jsonl"] for m in r["metadata"]["merged_output_ids"]]
    assert len(merged) == figures["repeats"]
    held = [h for c in figures["collections"].values() for h in c["held_back_items"]]
    assert held and all(h["twins"] and h["reason"] for h in held)

    assert all(r["messages"][-1]["role"] == "assistant" for r in got["corrections"]["openai-chat"])
    for dpo in got["corrections"]["openai-dpo"]:
        assert set(dpo["input"]) == {"messages"}
        assert dpo["preferred_output"][0]["content"] != dpo["non_preferred_output"][0]["content"]
    for fmt in exports.FORMATS:
        assert f"  {fmt} (" in printed
    assert "leakage report:" in printed and "checks: all hold" in printed
    assert Redis.from_url(redis_url).keys("*rr-bench-collections-*") == []


def test_the_checks_catch_an_export_line_with_a_field_too_many() -> None:
    line = {"messages": [{"role": "user", "content": "Q?"}, {"role": "assistant", "content": "A."}]}
    text = json.dumps(line) + "\n" + json.dumps({**line, "weight": 1}) + "\n"
    one = {
        "texts": {"openai-chat": text},
        "headers": {"openai-chat": {"exported": 2, "held-back": 0, "skipped": 0}},
        "items": 2,
        "stable": True,
    }
    assert check({"corrections": one}, {}, 0) == [
        "corrections openai-chat: a line does not have exactly the fields ['messages']"
    ]
