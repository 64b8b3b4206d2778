"""The reason a reviewer reads on each pick: its score, why it was picked, its flags and the
signals that drove it, in words."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

from core.candidates import Candidate
from core.scoring import DESCRIPTIONS


def _ordinal(pct: float) -> str:
    n = min(99, max(1, round(pct * 100)))
    suffix = "th" if 10 <= n % 100 <= 20 else {1: "st", 2: "nd", 3: "rd"}.get(n % 10, "th")
    return f"{n}{suffix}"


FLAG_REASONS = {
    "empty": "the response is empty",
    "truncated": "the response was cut off at the token limit",
    "repeats_failure": "it nearly repeats an output reviewers failed",
    "refusal": "the response refuses or disclaims",
}


def _driver_text(d: Mapping[str, Any]) -> str:
    name = str(d["signal"])
    described = "what it is about (its embedding)" if name == "content" else DESCRIPTIONS.get(name, name)
    if "contribution" in d:
        return f"{described} (+{float(d['contribution']):.2f} log-odds)"
    return f"{described} in the {_ordinal(float(d['percentile']))} percentile of recent traffic"


def _pushes_up(d: Mapping[str, Any]) -> bool:
    if "contribution" in d:
        return float(d["contribution"]) > 0
    return "percentile" in d and float(d["percentile"]) >= 0.5


def _score_text(candidate: Candidate) -> str:
    learned = any("contribution" in d for d in candidate.drivers)
    label = "p_fail" if learned else "score"
    return f"{label} {candidate.score:.2f}" if candidate.score is not None else "no score"


def _evidence(candidate: Candidate, max_drivers: int) -> list[str]:
    flags = [str(d["flag"]) for d in candidate.drivers if "flag" in d]
    if candidate.finish_reason == "length" and "truncated" not in flags:
        flags.append("truncated")
    ranked = [d for d in candidate.drivers if "signal" in d and _pushes_up(d)]
    return [FLAG_REASONS.get(f, f) for f in flags] + [_driver_text(d) for d in ranked[:max_drivers]]


def reason_for(candidate: Candidate, *, max_drivers: int = 2, context: Sequence[str] = ()) -> str:
    """A human-readable reason: the score, why it was picked (context), flags and the top signals."""
    return "; ".join([_score_text(candidate), *context, *_evidence(candidate, max_drivers)])
