"""Reading a labelled history: columns found by name or named, labels either way round, clear errors."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from service.replay.data import Columns, ReplayDataError, load


def write(path: Path, rows: list[dict]) -> Path:
    path.write_text("\n".join(json.dumps(r) for r in rows) + "\n")
    return path


def test_halueval_style_rows_become_chat_outputs_with_their_labels(tmp_path: Path) -> None:
    path = write(
        tmp_path / "h.jsonl",
        [
            {"ID": "1", "user_query": "Name a prime.", "chatgpt_response": "7", "hallucination": "no"},
            {"ID": "2", "user_query": "Name a prime.", "chatgpt_response": "9", "hallucination": "yes"},
        ],
    )
    items = load(path, Columns(), app="qa").items
    assert [i.failed for i in items] == [False, True]
    assert items[1].payload == {
        "external_id": "2",
        "app": "qa",
        "messages": [{"role": "user", "content": "Name a prime."}],
        "response": "9",
    }


def test_a_correct_column_counts_the_other_way_and_completions_keep_their_logprobs(tmp_path: Path) -> None:
    completion = {"choices": [{"message": {"role": "assistant", "content": "Paris"}, "logprobs": None}]}
    path = write(
        tmp_path / "g.jsonl",
        [
            {
                "id": "a",
                "messages": [{"role": "user", "content": "Capital of France?"}],
                "completion": completion,
                "samples": ["Paris", "Lyon"],
                "correct": True,
            },
            {
                "id": "b",
                "messages": [{"role": "user", "content": "Capital of Peru?"}],
                "response": "Quito",
                "correct": False,
            },
        ],
    )
    items = load(path, Columns(), app="g").items
    assert [i.failed for i in items] == [False, True]
    assert items[0].payload["completion"] == completion and items[0].payload["samples"] == ["Paris", "Lyon"]
    assert items[1].payload["response"] == "Quito"


def test_csv_with_named_columns_and_custom_fail_values(tmp_path: Path) -> None:
    path = tmp_path / "h.csv"
    path.write_text("q,a,grade\nWho?,Me,BAD\nWhat?,It,ok\n")
    items = load(path, Columns(prompt="q", response="a", label="grade", fail_values=("bad",)), app="c").items
    assert [(i.external_id, i.failed) for i in items] == [("row-0", True), ("row-1", False)]


def test_rows_without_a_label_or_with_repeated_ids_are_refused_by_row(tmp_path: Path) -> None:
    no_label = write(tmp_path / "n.jsonl", [{"prompt": "p", "response": "r"}])
    with pytest.raises(ReplayDataError, match="row 0: no label column"):
        load(no_label, Columns(), app="x")
    twice = write(tmp_path / "t.jsonl", [{"id": 1, "prompt": "p", "response": "r", "label": "fail"}] * 2)
    with pytest.raises(ReplayDataError, match="row 1: external id '1' repeats"):
        load(twice, Columns(), app="x")
    broken = tmp_path / "b.jsonl"
    broken.write_text('{"prompt": "p"\n')
    with pytest.raises(ReplayDataError, match=r"b\.jsonl:1: not JSON"):
        load(broken, Columns(), app="x")


def test_rows_with_an_empty_label_are_left_out_and_counted_never_guessed(tmp_path: Path) -> None:
    rows = [
        {"id": "a", "prompt": "p", "response": "r", "correct": None},
        {"id": "b", "prompt": "p", "response": "r", "correct": False},
        {"id": "c", "prompt": "p", "response": "r", "correct": ""},
        {"id": "d", "prompt": "p", "response": "r", "correct": True},
    ]
    loaded = load(write(tmp_path / "u.jsonl", rows), Columns(), app="u")
    assert [(i.external_id, i.failed) for i in loaded.items] == [("b", True), ("d", False)]
    assert loaded.unlabelled == 2
    only_blank = write(tmp_path / "z.jsonl", [{"prompt": "p", "response": "r", "label": "null"}])
    with pytest.raises(ReplayDataError, match="no labelled rows"):
        load(only_blank, Columns(), app="x")


def test_skip_and_limit_take_a_slice_of_the_file(tmp_path: Path) -> None:
    rows = [{"id": f"r{i}", "question": f"q{i}", "answer": f"a{i}", "verdict": "yes"} for i in range(10)]
    path = write(tmp_path / "s.jsonl", rows)
    sliced = load(path, Columns(label="verdict"), app="s", skip=4, limit=3).items
    assert [i.external_id for i in sliced] == ["r4", "r5", "r6"]
    assert [i.external_id for i in load(path, Columns(label="verdict"), app="s", skip=8).items] == [
        "r8",
        "r9",
    ]


def test_replay_posts_in_batches_bounded_by_count_and_size() -> None:
    from service.replay import run as replay
    from service.replay.data import Labelled

    small = [Labelled(f"s{i}", {"response": "x"}, False) for i in range(450)]
    assert [len(b) for b in replay.batches(small)] == [200, 200, 50]
    big = [Labelled(f"b{i}", {"response": "x" * 290_000}, True) for i in range(7)]
    assert [len(b) for b in replay.batches(big)] == [3, 3, 1]
