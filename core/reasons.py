"""The reason a reviewer reads on each pick, in the product's words: its score, why it was picked,
its flags, and the evidence that moved the score, each named with its value.

A reason is a few short phrases joined by semicolons, for example "p_fail 0.71; one of 6 similar
outputs in this batch (cluster 2 of 4); a long answer (212 words); 40% of its numbers and names are
not in the prompt". Evidence comes from the output's drivers (``core.scoring.coldstart`` and
``core.learned.LearnedModel.score``), so it names what actually moved the score: for cold start the
signals ranked highest against recent traffic, with their percentile; for a learned model the
signals that added most to the log-odds, in the direction they pushed (a model may learn that
*short* answers fail). Percentiles are written by ``percentile_text``, which the item page uses too,
so the reason and the page never disagree.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Mapping, Sequence
from typing import Any

from core.candidates import Candidate
from core.scoring import DESCRIPTIONS


def ordinal(n: int) -> str:
    """1st, 2nd, 3rd, 4th, 11th, 12th, 13th, 21st..."""
    suffix = "th" if 10 <= n % 100 <= 20 else {1: "st", 2: "nd", 3: "rd"}.get(n % 10, "th")
    return f"{n}{suffix}"


def percentile_text(share: float) -> str:
    """A percentile rank (0..1) as people say it: "97th". Never "0th" or "100th": a rank against
    recent traffic is never below all of it or above all of it."""
    return ordinal(min(99, max(1, round(float(share) * 100))))


FLAG_REASONS = {
    "empty": "the response is empty",
    "truncated": "the response was cut off at the token limit",
    "repeats_failure": "it nearly repeats an output reviewers failed",
    "refusal": "the response refuses or disclaims",
}


def _count(v: float) -> int:
    """Signals stored as log(1 + count) back to the count."""
    return max(0, round(math.expm1(v)))


def _plural(n: int, word: str) -> str:
    return f"{n} {word}" + ("" if n == 1 else "s")


#: Per signal: the phrase when the output is high on it, and when it is low (a learned model may
#: find that the low side fails on a queue). Each names its evidence from the signal's value.
Phrase = Callable[[float], str]
PHRASES: dict[str, tuple[Phrase, Phrase]] = {
    "length": (
        lambda v: f"a long answer ({_plural(_count(v), 'word')})",
        lambda v: f"a short answer ({_plural(_count(v), 'word')})",
    ),
    "specificity": (
        lambda v: f"dense with numbers and names ({v:.0%} of its words, shrunk when short)",
        lambda v: "few numbers or names",
    ),
    "numbers": (
        lambda v: f"states {_plural(_count(v), 'number')}",
        lambda v: f"states few numbers ({_count(v)})",
    ),
    "hedging": (
        lambda v: f"hedges ({v:.1f} hedging phrases per 100 words)",
        lambda v: "states everything without hedging",
    ),
    "structure": (
        lambda v: f"a list or table ({_plural(_count(v), 'item')})",
        lambda v: "plain prose, no list or table",
    ),
    "off_topic": (
        lambda v: f"takes up little of what was asked ({v:.0%} of the prompt's words left out)",
        lambda v: "stays close to what was asked",
    ),
    "unsupported": (
        lambda v: f"{v:.0%} of its numbers and names are not in the prompt",
        lambda v: "its numbers and names come from the prompt",
    ),
    "repetition": (
        lambda v: f"repeats itself ({v:.0%} of its word trigrams)",
        lambda v: "does not repeat itself",
    ),
    "disclaimer": (
        lambda v: 'disclaims ("as an AI", "I cannot") and may answer anyway',
        lambda v: "answers without a disclaimer",
    ),
    "factual_request": (
        lambda v: "the prompt asks for facts",
        lambda v: "the prompt asks for writing or ideas",
    ),
    "novelty": (
        lambda v: f"unlike recent traffic (cosine distance {v:.2f} to its nearest outputs)",
        lambda v: f"much like recent traffic (cosine distance {v:.2f} to its nearest outputs)",
    ),
    "reviewed_novelty": (
        lambda v: f"unlike anything reviewed (cosine distance {v:.2f} to the nearest)",
        lambda v: f"close to outputs already reviewed (cosine distance {v:.2f})",
    ),
    "failure_similarity": (
        lambda v: f"resembles an output reviewers failed (cosine {v:.2f})",
        lambda v: f"unlike any reviewed failure (cosine {v:.2f} at most)",
    ),
    "similar_failed": (
        lambda v: f"its most similar reviewed outputs mostly failed ({v:.0%}, smoothed)",
        lambda v: f"its most similar reviewed outputs mostly passed ({v:.0%} failed, smoothed)",
    ),
    "mean_nll": (
        lambda v: f"the model was unsure of its own words (mean NLL {v:.2f})",
        lambda v: f"the model was sure of its words (mean NLL {v:.2f})",
    ),
    "sequence_nll": (
        lambda v: f"the whole answer was improbable to the model (NLL {v:.1f})",
        lambda v: f"the whole answer was probable to the model (NLL {v:.1f})",
    ),
    "max_surprisal": (
        lambda v: f"has a very surprising token (surprisal {v:.1f})",
        lambda v: f"no surprising token (surprisal {v:.1f} at most)",
    ),
    "mean_entropy": (
        lambda v: f"the model hesitated between next tokens (entropy {v:.2f})",
        lambda v: f"the model did not hesitate (entropy {v:.2f})",
    ),
    "sample_dispersion": (
        lambda v: f"other samples disagree with it (dispersion {v:.2f})",
        lambda v: f"other samples agree with it (dispersion {v:.2f})",
    ),
    "semantic_entropy": (
        lambda v: f"the samples mean different things (entropy {v:.2f})",
        lambda v: "the samples mean the same thing",
    ),
    "majority_disagreement": (
        lambda v: "it differs from what most samples say",
        lambda v: "it says what most samples say",
    ),
    "empty": (lambda v: FLAG_REASONS["empty"], lambda v: "the response is not empty"),
    "truncated": (lambda v: FLAG_REASONS["truncated"], lambda v: "the response ended by itself"),
    "refusal": (lambda v: FLAG_REASONS["refusal"], lambda v: "the response does not refuse"),
}


def evidence_text(driver: Mapping[str, Any]) -> str:
    """One driver as a phrase naming its evidence: "a long answer (212 words, 97th percentile)"."""
    name = str(driver["signal"])
    if name == "content":
        return "what it is about resembles outputs that failed"
    if driver.get("missing"):
        return f"{DESCRIPTIONS.get(name, name)}: not measured for this output"
    value = float(driver.get("value") or 0.0)
    high = driver.get("direction", "high") != "low"
    phrases = PHRASES.get(name)
    if phrases is None:
        text = DESCRIPTIONS.get(name, name) + ("" if high else " (low)")
    else:
        text = phrases[0 if high else 1](value)
    if "percentile" in driver:
        rank = f"{percentile_text(float(driver['percentile']))} percentile"
        text = f"{text[:-1]}, {rank})" if text.endswith(")") else f"{text} ({rank})"
    return text


def _pushes_up(d: Mapping[str, Any]) -> bool:
    if d.get("missing"):
        return False  # a reason names evidence, and a signal this output lacks has none
    if "contribution" in d:
        return float(d["contribution"]) > 0
    return "percentile" in d and float(d["percentile"]) >= 0.5


def _score_text(candidate: Candidate) -> str:
    if candidate.score is None:
        return "no score"
    learned = any("contribution" in d for d in candidate.drivers)
    return f"p_fail {candidate.score:.2f}" if learned else f"cold-start rank {candidate.score:.2f}"


def _evidence(candidate: Candidate, max_drivers: int) -> list[str]:
    flags = [str(d["flag"]) for d in candidate.drivers if "flag" in d]
    if candidate.finish_reason == "length" and "truncated" not in flags:
        flags.append("truncated")
    shown = set(flags)
    ranked = [d for d in candidate.drivers if "signal" in d and _pushes_up(d) and d["signal"] not in shown]
    return [FLAG_REASONS.get(f, f) for f in flags] + [evidence_text(d) for d in ranked[:max_drivers]]


def neighbour_evidence(similar: Sequence[tuple[float, str]]) -> str | None:
    """What the most similar reviewed outputs say, when any of them failed: "2 of its 3 most similar
    reviewed outputs failed (cosine 0.71 to 0.64)". ``similar``: (cosine, verdict), already above the
    similarity floor."""
    if not similar:
        return None
    failed = sum(verdict == "fail" for _, verdict in similar)
    if not failed:
        return None
    top, low = max(c for c, _ in similar), min(c for c, _ in similar)
    span = f"cosine {top:.2f}" if len(similar) == 1 else f"cosine {top:.2f} to {low:.2f}"
    if len(similar) == 1:
        return f"its most similar reviewed output failed ({span})"
    return f"{failed} of its {len(similar)} most similar reviewed outputs failed ({span})"


def reason_for(candidate: Candidate, *, max_drivers: int = 2, context: Sequence[str] = ()) -> str:
    """A human-readable reason: the score, why it was picked (context), flags and the evidence."""
    return "; ".join([_score_text(candidate), *context, *_evidence(candidate, max_drivers)])
