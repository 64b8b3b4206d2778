"""Export formats on plain data: exact fields per line, round trips, determinism, skipped items."""

from __future__ import annotations

import csv
import dataclasses
import io
import json

import pytest

from core import exports
from core.exports import ExportItem

CHAT = [
    {"role": "system", "content": "Answer briefly."},
    {"role": "user", "content": 'Größte Stadt, "bitte"?\nDanke'},
]


def item(entry: str, **overrides: object) -> ExportItem:
    values: dict[str, object] = dict(
        entry_id=entry,
        input=CHAT,
        bad_output="München",
        ideal="Berlin",
        categories=["factual_error"],
        provenance={
            "output_id": f"o-{entry}",
            "review_id": f"r-{entry}",
            "reviewer": "ann",
            "verdict": "fail",
            "app": "helpdesk",
            "model": "m-1",
            "queue": "default",
            "cluster": 2,
            "selection_id": "s1",
            "received_at": "2024-05-01T10:00:00+00:00",
            "reviewed_at": "2024-05-01T11:00:00+00:00",
            "promoted_at": "2024-05-02T09:00:00+00:00",
            "promoted_by": None,
            "rule": "fixes",
        },
        merged_output_ids=[],
    )
    values.update(overrides)
    return ExportItem(**values)  # type: ignore[arg-type]


ITEMS = [
    item("e1"),
    item("e2", ideal=None, merged_output_ids=["o-x", "o-y"]),
    item("e3", bad_output=None, ideal="Fine as it was", categories=[]),
    item("e4", input=[{"role": "user", "content": "Same"}], bad_output="Same answer", ideal="Same answer"),
]


def test_openai_chat_lines_end_with_the_corrected_assistant_turn() -> None:
    result = exports.export("openai-chat", ITEMS)
    records = [json.loads(line) for line in result.text.splitlines()]
    assert all(set(r) == exports.CHAT_FIELDS for r in records)
    assert records[0]["messages"] == [*CHAT, {"role": "assistant", "content": "Berlin"}]
    assert result.exported == ["e1", "e3", "e4"]
    assert [s["entry_id"] for s in result.skipped] == ["e2"] and "no correction" in result.skipped[0][
        "reason"
    ]


def test_openai_dpo_lines_have_exactly_input_preferred_and_non_preferred() -> None:
    result = exports.export("openai-dpo", ITEMS)
    [line] = result.text.splitlines()
    record = json.loads(line)
    assert set(record) == exports.DPO_FIELDS
    assert record == {
        "input": {"messages": CHAT},
        "preferred_output": [{"role": "assistant", "content": "Berlin"}],
        "non_preferred_output": [{"role": "assistant", "content": "München"}],
    }
    assert {s["entry_id"]: s["reason"] for s in result.skipped}.keys() == {"e2", "e3", "e4"}


def test_eval_lines_carry_input_ideal_categories_and_source_ids() -> None:
    result = exports.export("eval-jsonl", ITEMS)
    records = [json.loads(line) for line in result.text.splitlines()]
    assert len(records) == 4 and all(set(r) == exports.EVAL_FIELDS for r in records)
    assert records[0]["input"] == CHAT and records[0]["ideal"] == "Berlin"
    assert records[1]["ideal"] is None and records[1]["metadata"]["merged_output_ids"] == ["o-x", "o-y"]
    assert records[0]["metadata"]["output_id"] == "o-e1" and records[0]["metadata"]["review_id"] == "r-e1"
    assert set(records[0]["metadata"]) == set(exports.PROVENANCE_COLUMNS) | {"merged_output_ids"}


def test_csv_has_one_header_and_every_column_for_every_item() -> None:
    result = exports.export("csv", ITEMS)
    rows = list(csv.reader(io.StringIO(result.text)))
    assert tuple(rows[0]) == exports.CSV_COLUMNS
    assert len(rows) == 5 and all(len(r) == len(exports.CSV_COLUMNS) for r in rows)


def test_csv_cells_a_spreadsheet_would_run_as_formulas_are_written_as_text_and_read_back_exactly() -> None:
    risky = [
        item("f1", bad_output='=HYPERLINK("http://evil.example","click")', ideal="+1 555 0100"),
        item("f2", bad_output="@SUM(A1:A9)", ideal="-5 degrees"),
        item("f3", bad_output="\tindented", ideal="'quoted already"),
    ]
    result = exports.export("csv", risky)
    rows = list(csv.DictReader(io.StringIO(result.text)))
    cells = [c for r in rows for c in (r["bad_output"], r["ideal"])]
    assert all(c.startswith("'") for c in cells)  # nothing starts with = + - @ tab or CR
    back = exports.parse("csv", result.text)
    assert [(b["bad_output"], b["ideal"]) for b in back] == [(i.bad_output, i.ideal) for i in risky]


@pytest.mark.parametrize("fmt", exports.FORMATS)
def test_each_format_round_trips_what_it_carries(fmt: str) -> None:
    result = exports.export(fmt, ITEMS)
    back = exports.parse(fmt, result.text)
    by_id = {i.entry_id: i for i in ITEMS}
    assert len(back) == len(result.exported)
    for entry_id, record in zip(result.exported, back, strict=True):
        source = by_id[entry_id]
        assert record["input"] == source.input and record["ideal"] == source.ideal
        if "bad_output" in record:
            assert record["bad_output"] == source.bad_output
        if "categories" in record:
            assert record["categories"] == source.categories
            assert (record["id"], record["output_id"]) == (entry_id, source.output_id)
            assert record["merged_output_ids"] == source.merged_output_ids


@pytest.mark.parametrize("fmt", exports.FORMATS)
def test_the_same_items_export_to_the_same_bytes_and_held_back_ones_are_left_out(fmt: str) -> None:
    once = exports.export(fmt, ITEMS).text
    copies = [dataclasses.replace(i, provenance=dict(i.provenance)) for i in ITEMS]
    assert exports.export(fmt, copies).text == once
    assert once.endswith("\n") and "\r" not in once
    held = exports.export(fmt, ITEMS, held_back={"e1"})
    assert "e1" not in held.exported and held.text != once


def test_json_lines_use_sorted_keys_and_keep_non_ascii_text() -> None:
    text = exports.export("eval-jsonl", ITEMS[:1]).text
    record = json.loads(text)
    assert text.strip() == json.dumps(record, ensure_ascii=False, sort_keys=True, separators=(",", ":"))
    assert "Größte" in text


def test_an_unknown_format_is_refused() -> None:
    with pytest.raises(ValueError):
        exports.export("parquet", ITEMS)
    with pytest.raises(ValueError):
        exports.parse("parquet", "")


def test_the_report_counts_exported_held_back_and_skipped() -> None:
    result = exports.export("openai-dpo", ITEMS, held_back={"e3"})
    held = [{"entry_id": "e3", "output_id": "o-e3", "kept_in": "eval suite", "reason": "r", "matches": []}]
    report = exports.report(
        collection="tune",
        kind="finetune_set",
        version=3,
        fmt="openai-dpo",
        held_back=held,
        merged=[],
        checked_against={"suite": 2},
        result=result,
    )
    assert (report["exported"], len(report["held_back"]), len(report["skipped"])) == (1, 1, 2)
    assert report["checked_against"] == {"suite": 2}
