"""Pure selection: budgets, order and readable reasons."""

from __future__ import annotations

import pytest

from core.budget import open_slots
from core.candidates import Candidate
from core.reasons import reason_for
from core.selection import audit_size, select


@pytest.mark.parametrize(
    "budget, picked, backlog, waiting, expected",
    [(50, 0, 200, 0, 50), (50, 45, 200, 0, 5), (50, 0, 10, 8, 2), (50, 60, 200, 0, 0), (5, 0, 3, 9, 0)],
)
def test_open_slots_respect_daily_budget_and_backlog(
    budget: int, picked: int, backlog: int, waiting: int, expected: int
) -> None:
    assert (
        open_slots(budget_per_day=budget, picked_today=picked, backlog_limit=backlog, waiting=waiting)
        == expected
    )


def test_highest_scores_are_picked_and_unscored_left_out() -> None:
    candidates = [Candidate("a", 0.2), Candidate("b", 0.9), Candidate("c", None), Candidate("d", 0.5)]
    picks = select(candidates, slots=2)
    assert [p.output_id for p in picks] == ["b", "d"]
    assert all(p.stratum == "uncertain" for p in picks)
    assert select(candidates, slots=0) == []
    assert [p.output_id for p in select(candidates, slots=10)] == ["b", "d", "a"]


def test_reason_names_the_score_and_the_unusual_signals() -> None:
    c = Candidate(
        "a",
        0.81,
        drivers=[
            {"signal": "max_surprisal", "value": 9.2, "percentile": 0.97},
            {"signal": "novelty", "value": 0.4, "percentile": 0.92},
            {"signal": "mean_nll", "value": 0.1, "percentile": 0.2},
        ],
    )
    reason = reason_for(c)
    assert reason.startswith("score 0.81")
    assert "highest surprisal" in reason and "97th percentile" in reason
    assert "92nd percentile" in reason
    assert "mean negative log-likelihood" not in reason


def test_reason_puts_flags_first() -> None:
    c = Candidate(
        "a", 0.9, drivers=[{"flag": "truncated"}, {"signal": "novelty", "value": 0.3, "percentile": 0.6}]
    )
    assert reason_for(c) == (
        "score 0.90; the response was cut off at the token limit; "
        "cosine distance to the nearest recent outputs in the 60th percentile of recent traffic"
    )


def test_reason_of_a_learned_score_names_contributions() -> None:
    c = Candidate(
        "a",
        0.73,
        drivers=[
            {"signal": "majority_disagreement", "value": 1.0, "contribution": 1.2},
            {"signal": "content", "value": 0.0, "contribution": 0.4},
        ],
    )
    assert reason_for(c) == (
        "p_fail 0.73; response differs from the samples' majority meaning (+1.20 log-odds); "
        "what it is about (its embedding) (+0.40 log-odds)"
    )


def test_reason_says_why_it_was_picked_before_the_evidence() -> None:
    c = Candidate(
        "a", 0.62, drivers=[{"signal": "novelty", "value": 0.3, "percentile": 0.9}], finish_reason="length"
    )
    assert reason_for(c, context=["cluster 2 of 5, 7 similar outputs"]) == (
        "score 0.62; cluster 2 of 5, 7 similar outputs; the response was cut off at the token limit; "
        "cosine distance to the nearest recent outputs in the 90th percentile of recent traffic"
    )


@pytest.mark.parametrize(
    "slots, share, expected",
    [(0, 0.1, 0), (1, 0.1, 0), (2, 0.1, 1), (10, 0.1, 1), (200, 0.1, 20), (50, 0.0, 0)],
)
def test_audit_takes_its_share_of_the_slots_and_at_least_one(slots: int, share: float, expected: int) -> None:
    assert audit_size(slots, share) == expected


def test_a_refusal_is_named_in_the_reason() -> None:
    c = Candidate(
        "a", 0.5, drivers=[{"flag": "refusal"}, {"signal": "novelty", "value": 0.3, "percentile": 0.7}]
    )
    assert "the response refuses or disclaims" in reason_for(c)
