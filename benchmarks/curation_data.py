"""The data `review-router bench collections` posts: HaluEval QA questions, each answered right or
hallucinated by a seeded coin, with the label the service never sees."""

from __future__ import annotations

import gzip
import json
import random
from dataclasses import dataclass
from pathlib import Path
from typing import Any

REPO_ROOT = Path(__file__).resolve().parents[1]
QA_DATA = REPO_ROOT / "data" / "halueval" / "qa_one_turn.jsonl.gz"
SYSTEM = "Answer the question in one sentence."
APP, MIRROR_APP = "halueval-qa", "halueval-qa-mirror"


@dataclass(frozen=True)
class Posted:
    """One output as posted, with the label the service never sees."""

    external_id: str
    app: str
    question: str
    response: str
    hallucinated: bool
    right_answer: str

    def payload(self) -> dict[str, Any]:
        messages = [{"role": "system", "content": SYSTEM}, {"role": "user", "content": self.question}]
        return {
            "external_id": self.external_id,
            "app": self.app,
            "model": "halueval-qa",
            "messages": messages,
            "response": self.response,
            "metadata": {"source": "HaluEval QA (MIT)"},
        }


def qa_outputs(path: Path, items: int, *, seed: int, repeats: int) -> list[Posted]:
    """The first ``items`` QA rows, each answered right or hallucinated by a seeded coin, then
    ``repeats`` hallucinated ones again, word for word, from a second app."""
    coin = random.Random(seed)
    posted: list[Posted] = []
    with gzip.open(path, "rt", encoding="utf-8") as fh:
        for n, line in enumerate(fh):
            if n >= items:
                break
            row = json.loads(line)
            bad = coin.random() < 0.5
            answer = row["hallucinated_answer"] if bad else row["right_answer"]
            posted.append(Posted(f"halueval-qa-{n}", APP, row["question"], answer, bad, row["right_answer"]))
    twins = [p for p in posted if p.hallucinated][:repeats]
    posted += [
        Posted(f"mirror-{p.external_id}", MIRROR_APP, p.question, p.response, True, p.right_answer)
        for p in twins
    ]
    return posted
