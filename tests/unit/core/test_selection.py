"""Pure selection: budgets, order and readable reasons."""

from __future__ import annotations

import numpy as np
import pytest

from core import budget, selection
from core.budget import open_slots
from core.candidates import Candidate, SelectionParams
from core.reasons import evidence_text, neighbour_evidence, ordinal, percentile_text, reason_for
from core.scoring import SIGNALS
from core.selection import select


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


def test_reason_names_the_score_and_the_evidence_of_the_unusual_signals() -> None:
    c = Candidate(
        "a",
        0.81,
        drivers=[
            {"signal": "max_surprisal", "value": 9.2, "percentile": 0.97},
            {"signal": "novelty", "value": 0.4, "percentile": 0.92},
            {"signal": "mean_nll", "value": 0.1, "percentile": 0.2},
        ],
    )
    assert reason_for(c) == (
        "cold-start rank 0.81; has a very surprising token (surprisal 9.2, 97th percentile); "
        "unlike recent traffic (cosine distance 0.40 to its nearest outputs, 92nd percentile)"
    )


def test_reason_puts_flags_first_and_does_not_repeat_them() -> None:
    c = Candidate(
        "a",
        0.9,
        drivers=[
            {"flag": "truncated"},
            {"signal": "truncated", "value": 1.0, "percentile": 0.99},
            {"signal": "length", "value": 5.36, "percentile": 0.6},
        ],
    )
    assert reason_for(c) == (
        "cold-start rank 0.90; the response was cut off at the token limit; "
        "a long answer (212 words, 60th percentile)"
    )


def test_reason_of_a_learned_score_says_which_way_each_signal_pushed() -> None:
    c = Candidate(
        "a",
        0.73,
        drivers=[
            {"signal": "length", "value": 1.1, "contribution": 1.2, "direction": "low"},
            {"signal": "unsupported", "value": 0.4, "contribution": 0.5, "direction": "high"},
            {"signal": "content", "value": 0.0, "contribution": 0.4},
        ],
    )
    assert reason_for(c, max_drivers=3) == (
        "p_fail 0.73; a short answer (2 words); 40% of its numbers and names are not in the prompt; "
        "what it is about resembles outputs that failed"
    )


def test_percentiles_read_the_same_everywhere_and_never_0th_or_100th() -> None:
    assert [percentile_text(p) for p in (0.0, 0.004, 0.5, 0.994, 0.996, 1.0)] == [
        "1st",
        "1st",
        "50th",
        "99th",
        "99th",
        "99th",
    ]
    assert [ordinal(n) for n in (1, 2, 3, 4, 11, 12, 13, 21, 22, 23, 111)] == [
        "1st",
        "2nd",
        "3rd",
        "4th",
        "11th",
        "12th",
        "13th",
        "21st",
        "22nd",
        "23rd",
        "111th",
    ]
    # A phrase without evidence of its own takes the percentile in its own brackets.
    assert evidence_text({"signal": "disclaimer", "value": 0.7, "percentile": 0.995}) == (
        'disclaims ("as an AI", "I cannot") and may answer anyway (99th percentile)'
    )


def test_every_signal_has_words_for_both_directions() -> None:
    for name in SIGNALS:
        high = evidence_text({"signal": name, "value": 0.5, "contribution": 0.3, "direction": "high"})
        low = evidence_text({"signal": name, "value": 0.5, "contribution": 0.3, "direction": "low"})
        assert high and low and high != low, name


def test_reason_says_why_it_was_picked_before_the_evidence() -> None:
    c = Candidate(
        "a", 0.62, drivers=[{"signal": "novelty", "value": 0.3, "percentile": 0.9}], finish_reason="length"
    )
    assert reason_for(c, context=["one of 8 similar outputs in this batch (cluster 2 of 5)"]) == (
        "cold-start rank 0.62; one of 8 similar outputs in this batch (cluster 2 of 5); "
        "the response was cut off at the token limit; "
        "unlike recent traffic (cosine distance 0.30 to its nearest outputs, 90th percentile)"
    )


@pytest.mark.parametrize(
    "slots, share, expected",
    [(0, 0.1, 0), (1, 0.1, 0), (2, 0.1, 1), (10, 0.1, 1), (200, 0.1, 20), (50, 0.0, 0)],
)
def test_the_audit_takes_its_share_of_the_budget_and_at_least_one(
    slots: int, share: float, expected: int
) -> None:
    assert budget.routing_budget(slots, share) == slots - expected


def test_a_refusal_is_named_in_the_reason() -> None:
    c = Candidate(
        "a", 0.5, drivers=[{"flag": "refusal"}, {"signal": "novelty", "value": 0.3, "percentile": 0.7}]
    )
    assert "the response refuses or disclaims" in reason_for(c)


def test_a_reason_names_no_evidence_for_a_signal_the_output_lacks() -> None:
    c = Candidate(
        "a",
        0.4,
        drivers=[
            {
                "signal": "unsupported",
                "value": 0.0,
                "contribution": 0.3,
                "direction": "high",
                "missing": True,
            },
            {"signal": "numbers", "value": 0.0, "contribution": 0.2, "direction": "low"},
        ],
    )
    assert reason_for(c) == "p_fail 0.40; states few numbers (0)"
    missing = {"signal": "unsupported", "value": 0.0, "contribution": 0.3, "missing": True}
    assert evidence_text(missing) == (
        "numbers and names in the response that appear nowhere in the prompt: not measured for this output"
    )


def test_what_the_most_similar_reviewed_outputs_say_when_one_failed() -> None:
    assert neighbour_evidence([]) is None
    assert neighbour_evidence([(0.8, "pass"), (0.7, "pass")]) is None  # nothing failed: nothing to say
    assert neighbour_evidence([(0.93, "fail")]) == "its most similar reviewed output failed (cosine 0.93)"
    assert neighbour_evidence([(0.71, "fail"), (0.66, "pass"), (0.64, "fail")]) == (
        "2 of its 3 most similar reviewed outputs failed (cosine 0.71 to 0.64)"
    )


def test_a_target_width_raises_the_audit_share_as_far_as_the_missing_reviews_need() -> None:
    assert budget.audit_share_for(0.1, reviews=50, needed=0, cap=0.5) == 0.1
    assert budget.audit_share_for(0.1, reviews=50, needed=10, cap=0.5) == pytest.approx(0.2)
    assert budget.audit_share_for(0.1, reviews=50, needed=400, cap=0.5) == 0.5
    assert budget.audit_share_for(0.1, reviews=50, needed=2, cap=0.5) == 0.1  # never below the base
    assert budget.audit_share_for(0.3, reviews=0, needed=40, cap=0.5) == 0.3


def test_a_top_up_brings_every_output_to_the_new_share_whatever_its_first_rate() -> None:
    rng = np.random.default_rng(3)
    n = 40_000
    for first in (0.0, 0.1, 0.3):
        member = rng.uniform(size=n) < first
        joins = np.array(selection.top_up_audit([1.0 if m else first for m in member], 0.4, rng))
        assert not joins[member].any()  # members do not join twice
        assert (member | joins).mean() == pytest.approx(0.4, abs=0.01)
    assert not any(selection.top_up_audit([0.5, 0.6], 0.4, rng))  # never lowered
    assert selection.top_up_audit([], 0.4, rng) == []


@pytest.mark.parametrize("share", [0.1, 0.37, 0.5, 0.05, 1.0])
def test_the_audits_turns_are_its_share_of_the_reviews_at_every_point(share: float) -> None:
    turns = [budget.audit_turn(k, share) for k in range(200)]
    for upto in range(1, 201):
        assert abs(sum(turns[:upto]) - share * upto) < 1.0
    if share == 0.1:  # every tenth review, as before
        assert [k for k, t in enumerate(turns) if t][:3] == [9, 19, 29]
    assert not any(budget.audit_turn(k, 0.0) for k in range(50))


def test_routing_chooses_audit_members_like_candidates_blind_to_the_audit() -> None:
    def output(name: str, score: float) -> Candidate:
        return Candidate(
            name, score=score, prompt=f"question {name}", response=f"the answer {name}", fresh=False
        )

    seen = [output(f"c{i}", i / 100) for i in range(60)]
    drawn = [output("m-high", 0.99), output("m-low", 0.0)]
    result = selection.select_window(
        seen, slots=10, params=SelectionParams(audit_share=0.2), rng=np.random.default_rng(0), drawn=drawn
    )
    routed = [p.output_id for p in result.picks if p.stratum != "audit" or p.routed]
    assert routed == ["m-high", *(f"c{i}" for i in range(59, 50, -1))]  # the 10 slots are routing's
    (member,) = [p for p in result.picks if p.stratum == "audit"]
    assert member.output_id == "m-high" and member.routed and member.reason.endswith("random audit too")
