"""The scoring benchmark reads generated records (torn lines, repeats), scores them with the worker's
functions and reports every score with intervals; a signal that separates the classes ranks near 1."""

from __future__ import annotations

import gzip
import hashlib
import json
from pathlib import Path
from typing import Any

import numpy as np

from benchmarks.scoring import load_generated, run_scoring
from service.settings import Settings


class HashEmbedder:
    """Deterministic stand-in for the encoder: a unit vector seeded by each text's hash."""

    dimension = 16

    def encode(self, texts: list[str]) -> np.ndarray:
        rows = []
        for text in texts:
            seed = int.from_bytes(hashlib.sha256(text.encode()).digest()[:8], "little")
            v = np.random.default_rng(seed).normal(size=self.dimension)
            rows.append(v / np.linalg.norm(v))
        return np.asarray(rows, dtype=np.float32).reshape(len(texts), self.dimension)


def _token(logprob: float) -> dict[str, Any]:
    tops = [logprob, logprob - 1.0, logprob - 2.0]
    return {"token": "x", "logprob": logprob, "top_logprobs": [{"token": "x", "logprob": t} for t in tops]}


def generated_record(i: int, *, correct: bool) -> dict[str, Any]:
    # wrong answers are generated with low token probabilities: mean_nll separates the classes
    rng = np.random.default_rng(i)
    logprobs = rng.uniform(-4.0, -2.0, 6) if not correct else rng.uniform(-0.4, -0.01, 6)
    response = f"answer {i}"
    return {
        "dataset": "halueval_qa",
        "id": f"halueval_qa-{i}",
        "messages": [{"role": "system", "content": "Be short."}, {"role": "user", "content": f"Q{i}?"}],
        "completion": {
            "model": "tiny",
            "choices": [
                {
                    "index": 0,
                    "message": {"role": "assistant", "content": response},
                    "logprobs": {"content": [_token(float(lp)) for lp in logprobs]},
                    "finish_reason": "stop",
                }
            ],
        },
        "response": response,
        "finish_reason": "stop",
        "samples": [f"answer {i} take {k}" for k in range(5)],
        "correct": correct,
    }


def write_benchmark(path: Path, n: int) -> None:
    lines = [json.dumps(generated_record(i, correct=i % 3 != 0)) + "\n" for i in range(n)]
    lines.append(lines[0])  # the same question twice (e.g. in two part files)
    path.write_text("".join(lines) + '{"dataset": "halueval_qa", "id": "torn')


def write_general(path: Path, n: int) -> None:
    with gzip.open(path, "wt", encoding="utf-8") as f:
        for i in range(n):
            row = {"ID": i, "user_query": f"tell me {i}", "chatgpt_response": f"reply {i}"}
            f.write(json.dumps({**row, "hallucination": "yes" if i % 4 == 0 else "no"}) + "\n")


def test_torn_lines_and_repeated_ids_are_skipped(tmp_path: Path) -> None:
    write_benchmark(tmp_path / "qa.jsonl", 12)
    loaded = load_generated([tmp_path / "qa.jsonl"])
    assert list(loaded) == ["halueval_qa"]
    assert len(loaded["halueval_qa"]) == 12
    first = loaded["halueval_qa"][0]
    assert first.failed and first.item.tokens is not None and len(first.item.samples) == 5
    assert first.item.prompt.startswith("system: Be short.")


def test_scoring_bench_reports_every_score_and_finds_the_separating_signal(tmp_path: Path) -> None:
    write_benchmark(tmp_path / "qa.jsonl", 60)
    write_general(tmp_path / "general.jsonl.gz", 80)
    code = run_scoring(
        Settings(),
        benchmark=[tmp_path / "qa.jsonl", tmp_path / "missing.jsonl"],
        general=tmp_path / "general.jsonl.gz",
        general_count=60,
        out=tmp_path / "out",
        rounds=20,
        folds=3,
        embedder=HashEmbedder(),
    )
    assert code == 0
    report = json.loads((tmp_path / "out" / "scoring.json").read_text())
    qa, general = report["datasets"]["halueval_qa"], report["datasets"]["halueval_general"]
    assert (qa["n"], qa["failed"], general["n"], general["failed"]) == (60, 20, 60, 15)

    rows = {r["score"]: r for r in qa["scores"]}
    expected = {"mean_nll", "sequence_nll", "max_surprisal", "mean_entropy", "sample_dispersion"}
    assert expected | {"novelty", "msp", "coldstart", "learned"} <= set(rows)
    assert "failure_similarity" in qa["skipped"]  # nothing reviewed yet
    assert {"learned", "learned (embedding only)", "novelty", "coldstart"} <= {
        r["score"] for r in general["scores"]
    }
    for row in [*qa["scores"], *general["scores"]]:
        for metric in ("auroc", "auprc"):
            assert 0.0 <= row[metric]["value"] <= 1.0
            assert row[metric]["lo"] <= row[metric]["value"] <= row[metric]["hi"]
    assert rows["mean_nll"]["auroc"]["value"] > 0.9
    assert rows["mean_nll"]["auroc"]["lo"] > 0.8
    assert "learned_minus_msp_prr" in qa["comparison"]
