"""Pure selection: a queue's scored candidates and its budget -> picks, each with a readable reason.

No RQ, no database. For now the stratum is ``uncertain`` (highest score first); diversity across
clusters, the novel and audit strata and inclusion probabilities plug in at ``select``.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

from workers.scoring import SIGNALS


@dataclass(frozen=True)
class Candidate:
    output_id: str
    score: float | None
    drivers: Sequence[Mapping[str, Any]] = field(default_factory=tuple)


@dataclass(frozen=True)
class PickDecision:
    output_id: str
    stratum: str
    reason: str
    score: float | None


def open_slots(*, budget_per_day: int, picked_today: int, backlog_limit: int, waiting: int) -> int:
    """How many items may be added now: what is left of today's budget, within the backlog limit."""
    return max(0, min(budget_per_day - picked_today, backlog_limit - waiting))


def _ordinal(pct: float) -> str:
    n = min(99, max(1, round(pct * 100)))
    suffix = "th" if 10 <= n % 100 <= 20 else {1: "st", 2: "nd", 3: "rd"}.get(n % 10, "th")
    return f"{n}{suffix}"


FLAG_REASONS = {
    "empty": "the response is empty",
    "truncated": "the response was cut off at the token limit",
    "repeats_failure": "it nearly repeats an output reviewers failed",
}


def _driver_text(d: Mapping[str, Any]) -> str:
    name = str(d["signal"])
    described = "what it is about (its embedding)" if name == "content" else SIGNALS.get(name, name)
    if "contribution" in d:
        return f"{described} (+{float(d['contribution']):.2f} log-odds)"
    return f"{described} in the {_ordinal(float(d['percentile']))} percentile of recent traffic"


def _pushes_up(d: Mapping[str, Any]) -> bool:
    if "contribution" in d:
        return float(d["contribution"]) > 0
    return "percentile" in d and float(d["percentile"]) >= 0.5


def reason_for(candidate: Candidate, *, max_drivers: int = 2) -> str:
    """A human-readable reason: the score, any flag, and the signals that pushed the score up most."""
    learned = any("contribution" in d for d in candidate.drivers)
    label = "p_fail" if learned else "score"
    parts = [f"{label} {candidate.score:.2f}" if candidate.score is not None else "no score"]
    parts += [FLAG_REASONS.get(str(d["flag"]), str(d["flag"])) for d in candidate.drivers if "flag" in d]
    ranked = [d for d in candidate.drivers if "signal" in d and _pushes_up(d)]
    parts += [_driver_text(d) for d in ranked[:max_drivers]]
    return "; ".join(parts)


def select(candidates: Sequence[Candidate], *, slots: int) -> list[PickDecision]:
    """Most likely failures first; candidates without any score are not worth a reviewer's time yet."""
    if slots <= 0:
        return []
    ranked = sorted(
        (c for c in candidates if c.score is not None),
        key=lambda c: (-(c.score or 0.0), c.output_id),
    )
    return [
        PickDecision(output_id=c.output_id, stratum="uncertain", reason=reason_for(c), score=c.score)
        for c in ranked[:slots]
    ]
