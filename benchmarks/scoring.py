"""`review-router bench scoring`: how well each signal, the cold-start score and the learned scorer
rank the failures of labelled outputs first, with bootstrap 95% intervals.

Offline: records are normalised as the API would, then embedded and scored with the worker's own pure
functions (no database, no Redis). Each dataset is its own recent traffic, so percentile ranks and
novelty are taken against the rest of the dataset, and nobody has reviewed anything yet.
"""

from __future__ import annotations

import gzip
import json
import math
import time
from collections.abc import Callable, Iterator, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from core import learned
from core.metrics import auprc, auroc, bootstrap_ci, prr
from core.scoring import (
    RANKED,
    Context,
    ScoringInput,
    ScoringParams,
    coldstart,
    compute_signals,
    flags_of,
    reference_distributions,
)
from service.cli.replay import commit
from service.domain import OutputIn, normalize
from service.progress import Progress
from service.settings import Settings
from workers import pipeline
from workers.clients import Embedder, get_embedder

GENERAL = "halueval_general"
EMBED_CHUNK = 256
METRICS: dict[str, Callable[[np.ndarray, np.ndarray], float]] = {"auroc": auroc, "auprc": auprc, "prr": prr}
AUROC_TARGET = 0.80
WIDTH = 26
Interval = dict[str, float | None]


@dataclass(frozen=True)
class Labelled:
    """One output as scoring sees it, and whether it is a failure."""

    item: ScoringInput
    failed: bool


# --- loading ---------------------------------------------------------------------------------


def read_jsonl(path: Path) -> Iterator[dict[str, Any]]:
    """The records of a .jsonl or .jsonl.gz file; a line still being written (or torn) is skipped."""
    opener: Callable[..., Any] = gzip.open if path.suffix == ".gz" else open
    with opener(path, "rt", encoding="utf-8") as f:
        try:
            for line in f:
                if not line.endswith("\n"):
                    return
                try:
                    yield json.loads(line)
                except json.JSONDecodeError:
                    continue
        except EOFError:  # a gzip file cut short
            return


def _scoring_input(output_id: str, output: OutputIn) -> ScoringInput:
    """What the worker would score after the API stored this output (same normalisation and tokens)."""
    n = normalize(output)
    lps = None if n.token_logprobs is None else [t.model_dump() for t in n.token_logprobs]
    return ScoringInput(
        output_id=output_id,
        prompt=n.prompt,
        response=n.response,
        tokens=pipeline.tokens_of(lps),
        finish_reason=n.finish_reason,
        samples=tuple(n.samples),
    )


def load_generated(paths: Sequence[Path]) -> dict[str, list[Labelled]]:
    """Generated benchmark records by dataset, first copy of each id kept; failed = not correct."""
    seen: set[str] = set()
    out: dict[str, list[Labelled]] = {}
    for path in paths:
        for record in read_jsonl(path):
            if record["id"] in seen or record.get("correct") is None:
                continue
            seen.add(record["id"])
            output = OutputIn.model_validate(
                {
                    "external_id": record["id"],
                    "messages": record["messages"],
                    "completion": record["completion"],
                    "samples": record.get("samples") or [],
                }
            )
            out.setdefault(record["dataset"], []).append(
                Labelled(_scoring_input(record["id"], output), failed=not record["correct"])
            )
    return out


def load_general(path: Path, count: int) -> list[Labelled]:
    """The first ``count`` HaluEval general rows (ChatGPT answers: no log-probs, no samples)."""
    out: list[Labelled] = []
    for row in read_jsonl(path):
        if len(out) >= count:
            break
        output_id = f"halueval-general-{row['ID']}"
        output = OutputIn.model_validate(
            {
                "external_id": output_id,
                "messages": [{"role": "user", "content": row["user_query"]}],
                "response": row["chatgpt_response"],
            }
        )
        out.append(Labelled(_scoring_input(output_id, output), failed=row["hallucination"] == "yes"))
    return out


# --- scoring ---------------------------------------------------------------------------------


def score_dataset(
    items: Sequence[ScoringInput], embedder: Embedder, params: ScoringParams, *, max_chars: int
) -> tuple[list[dict[str, float | None]], np.ndarray, list[float | None]]:
    """Signals, output vectors and cold-start scores, the whole dataset counting as recent traffic."""
    vectors, answers = [], []
    with Progress(total=len(items), what="outputs embedded") as progress:
        for start in range(0, len(items), EMBED_CHUNK):
            chunk = items[start : start + EMBED_CHUNK]
            v, a = pipeline.embed_batch(embedder, chunk, max_chars=max_chars)
            vectors.append(v)
            answers += a
            progress.update(len(chunk))
    stacked = np.vstack(vectors)
    signals = compute_signals(items, stacked, answers, Context.empty(stacked.shape[1]), params)
    reference = reference_distributions(signals)
    cold = [coldstart(s, reference, flags_of(s, params)).score for s in signals]
    return signals, stacked, cold


def _median_filled(values: Sequence[float | None]) -> np.ndarray | None:
    present = [v for v in values if v is not None]
    if not present:
        return None
    median = float(np.median(present))
    return np.array([median if v is None else v for v in values], dtype=float)


def candidate_scores(
    signals: Sequence[Mapping[str, float | None]],
    vectors: np.ndarray,
    cold: Sequence[float | None],
    failed: np.ndarray,
    *,
    folds: int,
    embedding_only: bool,
) -> tuple[dict[str, np.ndarray], dict[str, str]]:
    """Every score to evaluate, and why any was left out."""
    scores: dict[str, np.ndarray] = {}
    skipped: dict[str, str] = {}
    for name in RANKED:
        filled = _median_filled([s.get(name) for s in signals])
        if filled is None:
            skipped[name] = "missing for every output"
        else:
            scores[name] = filled
    if "sequence_nll" in scores:
        scores["msp"] = scores["sequence_nll"]
    filled_cold = _median_filled(cold)
    if filled_cold is not None:
        scores["coldstart"] = filled_cold
    variants = {"learned": list(signals)}
    if embedding_only:
        variants["learned (embedding only)"] = [{} for _ in signals]
    for name, rows in variants.items():
        try:
            scores[name] = learned.cross_validated(rows, vectors, failed.tolist(), folds=folds)
        except ValueError as exc:  # too few labels of one kind for these folds
            skipped[name] = str(exc)
    return scores, skipped


# --- evaluation ------------------------------------------------------------------------------


def _finite(x: float) -> float | None:
    return x if math.isfinite(x) else None


def interval(
    metric: Callable[[np.ndarray, np.ndarray], float], failed: np.ndarray, score: np.ndarray, rounds: int
) -> Interval:
    """The metric and its bootstrap 95% interval (the same resamples for every score: seed 0)."""
    try:
        value, lo, hi = bootstrap_ci(metric, failed, score, rounds=rounds, seed=0)
    except IndexError:  # no resample had both classes
        value, lo, hi = metric(failed, score), math.nan, math.nan
    return {"value": _finite(value), "lo": _finite(lo), "hi": _finite(hi)}


def paired_difference(
    metric: Callable[[np.ndarray, np.ndarray], float],
    failed: np.ndarray,
    a: np.ndarray,
    b: np.ndarray,
    rounds: int,
) -> Interval:
    """metric(a) - metric(b) with a paired bootstrap interval (both scored on each resample)."""

    def difference(y: np.ndarray, both: np.ndarray) -> float:
        return metric(y, both[:, 0]) - metric(y, both[:, 1])

    return interval(difference, failed, np.column_stack([a, b]), rounds)


def comparison(scores: Mapping[str, np.ndarray], failed: np.ndarray, rounds: int) -> dict[str, Any]:
    """What the issue asks: learned - MSP in PRR, and whether a combined score clears 0.80 AUROC."""
    out: dict[str, Any] = {}
    if "learned" in scores and "msp" in scores:
        out["learned_minus_msp_prr"] = paired_difference(
            prr, failed, scores["learned"], scores["msp"], rounds
        )
    for name in ("learned", "coldstart"):
        if name in scores:
            ci = interval(auroc, failed, scores[name], rounds)
            out[f"{name}_auroc_above_{AUROC_TARGET:.2f}"] = {
                **ci,
                "point_above": ci["value"] is not None and ci["value"] > AUROC_TARGET,
                "interval_above": ci["lo"] is not None and ci["lo"] > AUROC_TARGET,
            }
    return out


def evaluate(
    labelled: Sequence[Labelled],
    embedder: Embedder,
    params: ScoringParams,
    *,
    max_chars: int,
    rounds: int,
    folds: int,
    general: bool,
) -> dict[str, Any]:
    """Score one dataset and measure every score on it."""
    failed = np.array([x.failed for x in labelled], dtype=bool)
    result: dict[str, Any] = {"n": len(failed), "failed": int(failed.sum())}
    result["failure_rate"] = float(failed.mean()) if len(failed) else None
    if failed.all() or not failed.any():
        result["skipped"] = {"all": "needs both failures and non-failures"}
        return result
    signals, vectors, cold = score_dataset([x.item for x in labelled], embedder, params, max_chars=max_chars)
    scores, skipped = candidate_scores(signals, vectors, cold, failed, folds=folds, embedding_only=general)
    result["scores"] = [
        {"score": name, **{m: interval(fn, failed, s, rounds) for m, fn in METRICS.items()}}
        for name, s in scores.items()
    ]
    result["skipped"] = skipped
    if not general:
        result["comparison"] = comparison(scores, failed, rounds)
    return result


# --- report ----------------------------------------------------------------------------------


def _cell(ci: Interval) -> str:
    if ci["value"] is None:
        return "n/a"
    if ci["lo"] is None or ci["hi"] is None:
        return f"{ci['value']:6.3f}"
    return f"{ci['value']:6.3f} [{ci['lo']:6.3f}, {ci['hi']:6.3f}]"


def table(name: str, result: Mapping[str, Any]) -> str:
    """One dataset's results as a fixed-width table, then what was skipped and the comparisons."""
    rate = result["failure_rate"]
    lines = [f"{name}: n={result['n']}, failed={result['failed']} ({(rate or 0) * 100:.1f}%)"]
    if "scores" in result:
        header = "".join(f"{h:<{WIDTH}}" for h in ("AUROC [95% CI]", "AUPRC [95% CI]", "PRR [95% CI]"))
        lines.append(f"  {'score':<{WIDTH}} {header}".rstrip())
        for row in result["scores"]:
            cells = "".join(f"{_cell(row[m]):<{WIDTH}}" for m in METRICS)
            lines.append(f"  {row['score']:<{WIDTH}}{cells}".rstrip())
    reasons: dict[str, list[str]] = {}
    for score, why in result.get("skipped", {}).items():
        reasons.setdefault(why, []).append(score)
    lines += [f"  skipped ({why}): {', '.join(scores)}" for why, scores in reasons.items()]
    comparison = result.get("comparison", {})
    if "learned_minus_msp_prr" in comparison:
        lines.append(f"  PRR learned - msp (paired bootstrap): {_cell(comparison['learned_minus_msp_prr'])}")
    for score in ("learned", "coldstart"):
        if (ci := comparison.get(f"{score}_auroc_above_{AUROC_TARGET:.2f}")) is not None:
            lines.append(
                f"  AUROC {score} {_cell(ci)}: above {AUROC_TARGET:.2f}: {_yes(ci['point_above'])}"
                f" (whole interval above: {_yes(ci['interval_above'])})"
            )
    return "\n".join(lines)


def _yes(flag: bool) -> str:
    return "yes" if flag else "no"


def run_scoring(
    settings: Settings,
    *,
    benchmark: list[Path],
    general: Path,
    general_count: int,
    out: Path,
    rounds: int,
    folds: int,
    embedder: Embedder | None = None,
) -> int:
    """Run the scoring benchmark on the generated datasets and HaluEval general; print and save JSON."""
    started = time.perf_counter()
    embedder = embedder or get_embedder(settings.embedding_model_path, settings.embedding_batch_size)
    params = pipeline.scoring_params(settings)
    datasets: dict[str, tuple[list[Labelled], bool]] = {
        name: (rows, False)
        for name, rows in sorted(load_generated([p for p in benchmark if p.exists()]).items())
    }
    if general_count > 0 and general.exists():
        datasets[GENERAL] = (load_general(general, general_count), True)
    print(f"scoring benchmark: {rounds} bootstrap rounds, {folds} folds for the learned scorer")
    print("records: " + ", ".join(f"{name} {len(rows)}" for name, (rows, _) in datasets.items()))
    results = {}
    for name, (rows, is_general) in datasets.items():
        results[name] = evaluate(
            rows,
            embedder,
            params,
            max_chars=settings.embedding_max_chars,
            rounds=rounds,
            folds=folds,
            general=is_general,
        )
        print()
        print(table(name, results[name]), flush=True)
    seconds = time.perf_counter() - started
    report = {
        "commit": commit(),
        "benchmark": [str(p) for p in benchmark if p.exists()],
        "general": str(general),
        "general_count": general_count,
        "rounds": rounds,
        "folds": folds,
        "seconds": round(seconds, 1),
        "datasets": results,
    }
    out.mkdir(parents=True, exist_ok=True)
    (out / "scoring.json").write_text(json.dumps(report, indent=2))
    print(f"\n{seconds:.0f} s; written to {out / 'scoring.json'}")
    return 0
