"""The review-loop bench replays labelled outputs through rounds of picks, retraining and audits."""

from __future__ import annotations

import gzip
import hashlib
import json
from pathlib import Path

import numpy as np
import pytest

from service.bench_loop import run_loop
from service.settings import Settings


class TopicEmbedder:
    """Stand-in encoder: texts about the same topic land near each other; counts its calls."""

    dimension = 16

    def __init__(self) -> None:
        self.calls = 0

    def encode(self, texts: list[str]) -> np.ndarray:
        self.calls += 1
        rows = []
        for text in texts:
            words = text.split()
            topic = int(words[words.index("me") + 1]) % 7 if "me" in words else 0
            seed = int.from_bytes(hashlib.sha256(text.encode()).digest()[:8], "little")
            v = np.eye(self.dimension)[topic] * 2 + np.random.default_rng(seed).normal(size=self.dimension)
            rows.append(v / np.linalg.norm(v))
        return np.asarray(rows, dtype=np.float32).reshape(len(texts), self.dimension)


def write_general(path: Path, n: int) -> float:
    """HaluEval-general-shaped rows; failures more common in some topics. Returns the failure rate."""
    rng = np.random.default_rng(0)
    failures = 0
    with gzip.open(path, "wt", encoding="utf-8") as f:
        for i in range(n):
            failed = bool(rng.uniform() < (0.45 if i % 7 in (1, 2) else 0.1))
            failures += failed
            row = {"ID": i, "user_query": f"tell me {i} please", "chatgpt_response": f"reply {i}"}
            f.write(json.dumps({**row, "hallucination": "yes" if failed else "no"}) + "\n")
    return failures / n


def test_loop_report_compares_strategies_and_random_catches_the_base_rate(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    rate = write_general(tmp_path / "general.jsonl.gz", 1000)
    out = tmp_path / "out"
    code = run_loop(
        Settings(),
        datasets=["halueval_general"],
        rounds=4,
        seeds=20,
        out=out,
        embedder=TopicEmbedder(),
        general=tmp_path / "general.jsonl.gz",
        benchmark=[],
    )
    assert code == 0
    report = json.loads((out / "loop.json").read_text())
    result = report["datasets"]["halueval_general"]
    assert set(result["strategies"]) == {"random", "topk", "ours"}
    for run in result["strategies"].values():
        assert {"per_100", "ratio_to_random", "clusters_covered", "labels_to_match_random", "rounds"} <= set(
            run
        )
        assert [r["reviews"] for r in run["rounds"]] == [50] * 4
    assert abs(result["strategies"]["random"]["per_100"] - 100 * rate) < 6
    estimate = result["estimate"]
    assert estimate["true_rate"] == pytest.approx(rate)
    assert {"rounds", "combined", "audit_only", "repeated"} <= set(estimate)
    assert 0 <= estimate["repeated"]["coverage"] <= 1
    assert (out / "loop_halueval_general.png").stat().st_size > 0
    assert "failures per 100 reviews" in capsys.readouterr().out


def test_rerun_reads_embeddings_and_signals_from_the_cache(tmp_path: Path) -> None:
    write_general(tmp_path / "general.jsonl.gz", 200)
    embedder = TopicEmbedder()
    for _ in range(2):
        run_loop(
            Settings(),
            datasets=["halueval_general"],
            rounds=2,
            seeds=5,
            out=tmp_path,
            embedder=embedder,
            general=tmp_path / "general.jsonl.gz",
            benchmark=[],
        )
    assert (tmp_path / "cache_halueval_general_200.npz").exists()
    assert embedder.calls == 1


def test_unknown_dataset_is_refused(tmp_path: Path) -> None:
    with pytest.raises(ValueError, match="unknown dataset"):
        run_loop(Settings(), datasets=["nope"], out=tmp_path, embedder=TopicEmbedder(), benchmark=[])
