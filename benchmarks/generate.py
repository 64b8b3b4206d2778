"""Generate the labelled QA benchmark by asking a local LLM HaluEval QA and TruthfulQA questions.

    python -m benchmarks.generate --base-url http://127.0.0.1:8765/v1 \
        --out benchmarks/qa_smollm2.jsonl --samples 5 --temperature 0.8

One JSON line per question, appended and flushed as it is done; a rerun skips the ids already in
`--out`, so the script can be stopped and resumed. When every question is done the file is gzipped
next to it (`<out>.gz`). See benchmarks/README.md.
"""

from __future__ import annotations

import argparse
import csv
import gzip
import io
import itertools
import json
import os
import sys
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

from benchmarks.labels import (
    F1_THRESHOLD,
    Embed,
    contains_answer,
    label_halueval,
    split_references,
    token_f1,
    truthfulqa_similarities,
)
from workers.llm import LLMRejected, LLMUnavailable, OpenAISampler

REPO_ROOT = Path(__file__).resolve().parent.parent
HALUEVAL_PATH = REPO_ROOT / "data" / "halueval" / "qa_one_turn.jsonl.gz"
TRUTHFULQA_PATH = REPO_ROOT / "data" / "truthfulqa" / "TruthfulQA.csv.gz"
DEFAULT_MODEL = "smollm2-135m-instruct-q4_1"
EMBEDDER_NAME = "all-MiniLM-L6-v2"

HALUEVAL_SYSTEM = "Answer the question using the passage. Give a short answer."
TRUTHFULQA_SYSTEM = "Answer the question. Give a short answer."

Question = dict[str, Any]


def halueval_questions(path: Path = HALUEVAL_PATH) -> list[Question]:
    """HaluEval QA items as benchmark questions (messages include the knowledge passage)."""
    questions = []
    with gzip.open(path, "rt", encoding="utf-8") as f:
        for index, line in enumerate(f):
            row = json.loads(line)
            user = f"Passage: {row['knowledge']}\n\nQuestion: {row['question']}"
            questions.append(
                {
                    "dataset": "halueval_qa",
                    "id": f"halueval_qa-{index}",
                    "messages": [
                        {"role": "system", "content": HALUEVAL_SYSTEM},
                        {"role": "user", "content": user},
                    ],
                    "reference": {
                        "question": row["question"],
                        "knowledge": row["knowledge"],
                        "right_answer": row["right_answer"],
                        "hallucinated_answer": row["hallucinated_answer"],
                    },
                }
            )
    return questions


def truthfulqa_questions(path: Path = TRUTHFULQA_PATH) -> list[Question]:
    """TruthfulQA items as benchmark questions (no passage; references split on `;`)."""
    questions = []
    with gzip.open(path, "rb") as raw:
        reader = csv.DictReader(io.TextIOWrapper(raw, encoding="utf-8-sig", newline=""))
        for index, row in enumerate(reader):
            questions.append(
                {
                    "dataset": "truthfulqa",
                    "id": f"truthfulqa-{index}",
                    "messages": [
                        {"role": "system", "content": TRUTHFULQA_SYSTEM},
                        {"role": "user", "content": row["Question"]},
                    ],
                    "reference": {
                        "question": row["Question"],
                        "type": row["Type"],
                        "category": row["Category"],
                        "best_answer": row["Best Answer"],
                        "correct_answers": split_references(row["Correct Answers"]),
                        "incorrect_answers": split_references(row["Incorrect Answers"]),
                    },
                }
            )
    return questions


def interleave(*sources: list[Question]) -> list[Question]:
    """Round-robin over the datasets, so a partial run still covers all of them."""
    mixed = itertools.chain.from_iterable(itertools.zip_longest(*sources))
    return [q for q in mixed if q is not None]


def label(question: Question, response: str, embed: Callable[[], Embed]) -> dict[str, Any]:
    """The `correct` label, how it was decided, and the numbers behind it."""
    ref = question["reference"]
    if question["dataset"] == "halueval_qa":
        contains = contains_answer(response, ref["right_answer"])
        f1 = token_f1(response, ref["right_answer"])
        return {
            "correct": label_halueval(response, ref["right_answer"]),
            "label_method": f"halueval_contains_or_token_f1>={F1_THRESHOLD}",
            "label_details": {"contains_right_answer": contains, "token_f1": round(f1, 4)},
        }
    best_correct, best_incorrect = truthfulqa_similarities(
        response, ref["correct_answers"], ref["incorrect_answers"], embed()
    )
    return {
        "correct": best_correct > best_incorrect,  # label_truthfulqa's rule, without embedding twice
        "label_method": f"truthfulqa_max_cosine_correct>incorrect:{EMBEDDER_NAME}",
        "label_details": {
            "max_cosine_correct": round(best_correct, 4),
            "max_cosine_incorrect": round(best_incorrect, 4),
        },
    }


def done_ids(out: Path) -> set[str]:
    """Ids already in the output; a torn last line (killed mid-write) is cut off so it is redone."""
    if not out.exists():
        return set()
    ids: set[str] = set()
    good_bytes = 0
    with out.open("rb") as f:
        for line in f:
            if not line.endswith(b"\n"):
                break
            try:
                ids.add(json.loads(line)["id"])
            except (ValueError, KeyError):
                break
            good_bytes += len(line)
    if good_bytes != out.stat().st_size:
        with out.open("r+b") as f:
            f.truncate(good_bytes)
    return ids


def _lazy_embedder() -> Callable[[], Embed]:
    embed: list[Embed] = []

    def get() -> Embed:
        if not embed:
            os.environ.setdefault("HF_HUB_OFFLINE", "1")
            from workers.clients import get_embedder

            embed.append(get_embedder().encode)
        return embed[0]

    return get


def _answer(sampler: OpenAISampler, question: Question, args: argparse.Namespace) -> dict[str, Any]:
    greedy = sampler.greedy(question["messages"])
    samples = sampler.samples(question["messages"], args.samples, args.temperature, seed=args.seed)
    return {
        "completion": greedy.raw,
        "response": greedy.text,
        "finish_reason": greedy.finish_reason,
        "samples": samples,
    }


def _answer_with_patience(
    sampler: OpenAISampler, question: Question, args: argparse.Namespace
) -> dict[str, Any]:
    for attempt in itertools.count(1):
        try:
            return _answer(sampler, question, args)
        except LLMUnavailable as exc:
            if attempt >= args.patience:
                raise
            wait = min(60, 5 * attempt)
            print(f"  {question['id']}: {exc}; retrying in {wait}s", file=sys.stderr, flush=True)
            time.sleep(wait)
    raise AssertionError("unreachable")


def run(args: argparse.Namespace) -> int:
    """Answer and label every question not yet in `args.out`; gzip the file when all are done."""
    questions = interleave(halueval_questions(), truthfulqa_questions())
    if args.limit:
        questions = questions[: args.limit]
    out = Path(args.out)
    out.parent.mkdir(parents=True, exist_ok=True)
    finished = done_ids(out)
    for other in args.skip_done_in:
        finished |= done_ids(Path(other))
    shard, shards = (int(x) for x in args.shard.split("/"))
    todo = [q for i, q in enumerate(questions) if q["id"] not in finished and i % shards == shard]
    if args.only_ids:
        wanted = set(Path(args.only_ids).read_text().split())
        todo = [q for q in todo if q["id"] in wanted]
    print(
        f"{len(questions)} questions, {len(questions) - len(todo)} already in {out}, {len(todo)} to do",
        flush=True,
    )
    embed = _lazy_embedder()
    started = time.monotonic()
    with (
        OpenAISampler(
            base_url=args.base_url,
            model=args.model,
            api_key=args.api_key,
            timeout=args.timeout,
            max_tokens=args.max_tokens,
            concurrency=args.concurrency,
        ) as sampler,
        out.open("a", encoding="utf-8") as f,
    ):
        for n, question in enumerate(todo, start=1):
            try:
                answer = _answer_with_patience(sampler, question, args)
            except LLMRejected as exc:
                print(f"  {question['id']}: rejected, skipped: {exc}", file=sys.stderr, flush=True)
                continue
            record = {
                "dataset": question["dataset"],
                "id": question["id"],
                "model": answer["completion"].get("model") or args.model,
                "messages": question["messages"],
                **answer,
                **question["reference"],
                **label(question, answer["response"], embed),
                "generation": {
                    "temperature": args.temperature,
                    "samples": args.samples,
                    "seed": args.seed,
                    "max_tokens": args.max_tokens,
                },
            }
            f.write(json.dumps(record, ensure_ascii=False) + "\n")
            f.flush()
            elapsed = time.monotonic() - started
            rate = elapsed / n
            print(
                f"[{len(finished) + n}/{len(questions)}] {question['id']} correct={record['correct']} "
                f"{rate:.2f}s/question, eta {(len(todo) - n) * rate / 60:.1f} min",
                flush=True,
            )
    return merge([out, *(Path(o) for o in args.skip_done_in)], questions, out.with_name(out.name + ".gz"))


def merge(parts: list[Path], questions: list[Question], gz: Path) -> int:
    """Once every question is answered in some part file, write them in question order to ``gz``."""
    records: dict[str, str] = {}
    for part in parts:
        if part.exists():
            with part.open(encoding="utf-8") as f:
                for line in f:
                    if line.endswith("\n"):
                        records.setdefault(json.loads(line)["id"], line)
    missing = [q["id"] for q in questions if q["id"] not in records]
    if missing:
        print(f"incomplete ({len(missing)} questions left): rerun to resume", flush=True)
        return 1
    with gzip.GzipFile(gz, "wb", mtime=0) as dst:
        for q in questions:
            dst.write(records[q["id"]].encode("utf-8"))
    print(f"complete: {gz}", flush=True)
    return 0


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    """Command-line options; defaults match the committed benchmark."""
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--base-url", default="http://127.0.0.1:8765/v1", help="OpenAI-compatible server")
    p.add_argument("--model", default=DEFAULT_MODEL)
    p.add_argument("--api-key", default="not-needed")
    p.add_argument("--out", default="benchmarks/qa_smollm2.jsonl")
    p.add_argument("--samples", type=int, default=5, help="sampled answers per question")
    p.add_argument("--temperature", type=float, default=0.8, help="temperature of the samples")
    p.add_argument("--seed", type=int, default=0, help="sample i of each question uses seed + i")
    p.add_argument("--max-tokens", type=int, default=48)
    p.add_argument("--concurrency", type=int, default=1, help="parallel requests to the server")
    p.add_argument("--timeout", type=float, default=120.0, help="seconds per request")
    p.add_argument("--patience", type=int, default=10, help="tries per question while unavailable")
    p.add_argument("--limit", type=int, default=0, help="only the first N questions (0: all)")
    p.add_argument("--shard", default="0/1", help="K/N: answer only questions whose index %% N == K")
    p.add_argument("--only-ids", default="", help="a file of question ids (whitespace separated) to answer")
    p.add_argument(
        "--skip-done-in", action="append", default=[], help="another part file: skip its questions, merge it"
    )
    return p.parse_args(argv)


def main(argv: list[str] | None = None) -> None:
    """Entry point for `python -m benchmarks.generate`."""
    sys.exit(run(parse_args(argv)))


if __name__ == "__main__":
    main()
