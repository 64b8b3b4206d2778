"""`review-router bench selection-scale`: how long one ``select_window`` takes as the window grows.

Windows are synthetic: clustered 384-d unit vectors (as the embedder gives), random scores, distinct
prompts and responses, with a little junk (blank responses and exact repeats) so the junk pass does real
work. The ``candidate_multiple`` cut happens before clustering, so the cost should grow about linearly
with the window: the junk pass and the sort see every item, clustering only ``multiple x slots``.
"""

from __future__ import annotations

import json
import time
from collections import Counter
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import numpy as np

from core.candidates import Candidate, SelectionParams
from core.selection import select_window

DIM = 384
SLOTS = 200
TARGET_50K_S = 30.0


def synthetic_window(size: int, rng: np.random.Generator, *, clusters: int = 60) -> list[Candidate]:
    """``size`` candidates around ``clusters`` topics, 2% of them junk."""
    centres = rng.normal(size=(clusters, DIM)).astype(np.float32)
    topic = rng.integers(0, clusters, size=size)
    spread = rng.uniform(0.02, 0.08, size=clusters).astype(np.float32)[topic, None]
    vectors = centres[topic] / np.sqrt(DIM) + rng.normal(size=(size, DIM)).astype(np.float32) * spread
    vectors /= np.linalg.norm(vectors, axis=1, keepdims=True)
    scores = rng.random(size)
    window = []
    for i in range(size):
        prompt, response = f"question {i} on topic {topic[i]}", f"answer {i} about topic {topic[i]}"
        if i % 100 == 1:
            response = "   "
        elif i % 100 == 2:
            prompt, response = (
                f"question {i - 2} on topic {topic[i - 2]}",
                f"answer {i - 2} about topic {topic[i - 2]}",
            )
        window.append(Candidate(f"o{i}", float(scores[i]), (), vectors[i], prompt, response, "stop"))
    return window


def time_selection(size: int, *, slots: int = SLOTS, seed: int = 0) -> dict[str, Any]:
    """One ``select_window`` over a fresh synthetic window of ``size``; only the selection is timed."""
    rng = np.random.default_rng(seed)
    window = synthetic_window(size, rng)
    start = time.perf_counter()
    selection = select_window(window, slots=slots, params=SelectionParams(), rng=rng)
    seconds = time.perf_counter() - start
    return {
        "size": size,
        "slots": slots,
        "seconds": round(seconds, 3),
        "ms_per_1k": round(1000 * seconds / (size / 1000), 1),
        "picks": dict(Counter(p.stratum for p in selection.picks)),
        "clusters": selection.clusters,
        "noise": selection.noise,
        "outliers": len(selection.outliers),
        "junk": {reason: len(ids) for reason, ids in selection.junk.items()},
    }


def run_selection_scale(
    sizes: Sequence[int] = (5000, 20000, 50000), out: Path = Path("bench-output")
) -> dict:
    """Time one selection per window size, print a line per size and write ``out/selection_scale.json``."""
    # The first call imports scikit-learn and hdbscan; a worker pays that once, so keep it out of the sizes.
    warmup = time_selection(1000)
    runs = [time_selection(size) for size in sizes]
    for run in runs:
        print(
            f"{run['size']:>7} outputs  {run['seconds']:7.2f} s  ({run['ms_per_1k']:.1f} ms per 1k)  "
            f"picks {run['picks']}  clusters {run['clusters']}  noise {run['noise']}  junk {run['junk']}"
        )
    largest = max(runs, key=lambda r: r["size"]) if runs else None
    result = {
        "slots": SLOTS,
        "warmup_seconds": warmup["seconds"],
        "runs": runs,
        "target": f"50k outputs under {TARGET_50K_S:.0f} s",
        "largest_under_target": None if largest is None else largest["seconds"] < TARGET_50K_S,
    }
    out.mkdir(parents=True, exist_ok=True)
    (out / "selection_scale.json").write_text(json.dumps(result, indent=2) + "\n")
    return result
