"""Relabel the generated benchmark with the strict rules (`benchmarks.labels.strict_*`).

    python -m benchmarks.relabel                      # rewrite benchmarks/qa_smollm2.jsonl.gz
    python -m benchmarks.relabel --spotcheck 100      # print a seeded random draw of labelled items

Every record is kept. ``correct`` becomes the strict label, or null where the rules cannot decide
(the replay and `bench scoring` leave those out); the first label stays in ``label_v1``. Rerunning is
idempotent: the rules read only the answer and the references.
"""

from __future__ import annotations

import argparse
import gzip
import json
import random
from collections import Counter
from pathlib import Path
from typing import Any

from benchmarks.labels import STRICT_METHOD, contains_answer, strict_halueval, strict_truthfulqa, token_f1

PATH = Path(__file__).resolve().parent / "qa_smollm2.jsonl.gz"


def strict_label(record: dict[str, Any]) -> tuple[bool | None, dict[str, Any]]:
    """The record's strict label and the numbers behind it."""
    answer = record["response"]
    if record["dataset"] == "halueval_qa":
        right, finish = record["right_answer"], record.get("finish_reason")
        label = strict_halueval(answer, right, record["question"], finish)
        return label, {
            "contains_right_answer": contains_answer(answer, record["right_answer"]),
            "token_f1": round(token_f1(answer, record["right_answer"]), 4),
            "finish_reason": record.get("finish_reason"),
        }
    correct, incorrect = record["correct_answers"], record["incorrect_answers"]
    label = strict_truthfulqa(answer, correct, incorrect, record["question"])
    return label, {
        "max_f1_correct": round(max(token_f1(answer, r) for r in correct), 4),
        "max_f1_incorrect": round(max((token_f1(answer, r) for r in incorrect), default=0.0), 4),
    }


def relabel(record: dict[str, Any]) -> dict[str, Any]:
    out = dict(record)
    if "label_v1" not in out:
        out["label_v1"] = {k: record[k] for k in ("correct", "label_method", "label_details")}
    out["correct"], out["label_details"] = strict_label(record)
    out["label_method"] = f"{STRICT_METHOD}:{record['dataset']}"
    return out


def read(path: Path) -> list[dict[str, Any]]:
    with gzip.open(path, "rt", encoding="utf-8") as f:
        return [json.loads(line) for line in f]


def write(path: Path, records: list[dict[str, Any]]) -> None:
    # mtime=0: the same records give the same bytes, so a rerun leaves git clean
    with open(path, "wb") as raw, gzip.GzipFile(fileobj=raw, mode="wb", mtime=0) as gz:
        for record in records:
            gz.write((json.dumps(record, ensure_ascii=False) + "\n").encode("utf-8"))


def spotcheck(records: list[dict[str, Any]], count: int, seed: int) -> None:
    """A seeded random draw of labelled records, printed for a person to judge."""
    labelled = [r for r in records if r["correct"] is not None]
    for r in random.Random(seed).sample(labelled, count):
        refs = (
            f"right: {r['right_answer']}"
            if r["dataset"] == "halueval_qa"
            else f"correct: {r['correct_answers'][:3]} | incorrect: {r['incorrect_answers'][:3]}"
        )
        print(f"## {r['id']} label={'right' if r['correct'] else 'wrong'}")
        print(f"Q: {r['question']}\n{refs}\nA: {r['response']}\n")


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m benchmarks.relabel", description=__doc__.split("\n")[0])
    parser.add_argument("--path", type=Path, default=PATH)
    parser.add_argument("--spotcheck", type=int, default=0, help="print N random labelled records instead")
    parser.add_argument("--seed", type=int, default=2026)
    args = parser.parse_args(argv)
    records = [relabel(r) for r in read(args.path)]
    if args.spotcheck:
        spotcheck(records, args.spotcheck, args.seed)
        return 0
    write(args.path, records)
    counts = Counter((r["dataset"], r["correct"]) for r in records)
    for (dataset, label), n in sorted(counts.items(), key=str):
        print(f"{dataset:12} {('undecided' if label is None else 'right' if label else 'wrong'):9} {n}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
