"""Spending the review budget well: junk out, likely failures first with no failure mode taking more than
its share, one-offs competing on their score, exploration apart, a fair audit."""

from __future__ import annotations

import dataclasses
import re
from collections import Counter

import numpy as np
import pytest

from core.candidates import Candidate, PickDecision, Selection, SelectionParams
from core.selection import select_window

DIM = 64
LATENT = 10
NO_AUDIT = SelectionParams(audit_share=0.0, candidate_multiple=10)
# Sentence embeddings vary along far fewer directions than they have dimensions; so do these, which keeps
# a one-off as isolated after PCA as it is in the full space.
BASIS = np.linalg.qr(np.random.default_rng(0).normal(size=(DIM, LATENT)))[0].T


def _embed(z: np.ndarray) -> np.ndarray:
    v = z @ BASIS
    return v / np.linalg.norm(v)


def _direction(rng: np.random.Generator) -> np.ndarray:
    return rng.normal(size=LATENT)


def _around(centre: np.ndarray, rng: np.random.Generator, spread: float = 0.4) -> np.ndarray:
    # A spread of 0.4 keeps members of a cluster at cosine ~0.85: one topic, no near-duplicates.
    return centre + rng.normal(size=LATENT) * spread * np.linalg.norm(centre) / np.sqrt(LATENT)


def _near(vector: np.ndarray, rng: np.random.Generator) -> np.ndarray:
    v = vector + rng.normal(size=DIM) * 0.002
    return v / np.linalg.norm(v)


def _cluster(
    prefix: str, scores: list[float], rng: np.random.Generator, centre: np.ndarray | None = None
) -> list[Candidate]:
    centre = _direction(rng) if centre is None else centre
    return [
        Candidate(
            f"{prefix}{i}",
            s,
            vector=_embed(_around(centre, rng)),
            prompt=f"{prefix} question {i}",
            response=f"{prefix} answer {i}",
        )
        for i, s in enumerate(scores)
    ]


def _select(
    window: list[Candidate], slots: int, params: SelectionParams = NO_AUDIT, seed: int = 0
) -> Selection:
    return select_window(window, slots=slots, params=params, rng=np.random.default_rng(seed))


def _ids(picks: list[PickDecision]) -> set[str]:
    return {p.output_id for p in picks}


def test_one_failure_mode_cannot_fill_the_queue() -> None:
    rng = np.random.default_rng(1)
    loud = _cluster("a", list(np.linspace(0.99, 0.90, 30)), rng)
    quiet = _cluster("b", list(np.linspace(0.40, 0.10, 30)), rng)
    # A third cluster, so the caps (half the batch each) cannot fill the batch on their own.
    third = _cluster("c", list(np.linspace(0.60, 0.50, 30)), rng)
    selection = _select(
        loud + quiet + third, slots=10, params=SelectionParams(audit_share=0.0, cluster_share=0.5)
    )
    picked = [p.output_id[0] for p in selection.picks]
    assert selection.clusters >= 2
    assert Counter(picked) == {"a": 5, "c": 5}  # "a" capped at half; "c" outscores "b"
    assert [p.output_id for p in selection.picks if p.output_id[0] == "a"] == [f"a{i}" for i in range(5)]
    strata = {p.output_id: p.stratum for p in selection.picks}
    assert strata["a0"] == "uncertain" and strata["c0"] == "diverse"  # c moved up past a's capped rest


def test_when_the_caps_leave_slots_empty_the_best_left_fill_them() -> None:
    rng = np.random.default_rng(1)
    only = _cluster("a", list(np.linspace(0.99, 0.50, 30)), rng) + _cluster("b", [0.1] * 12, rng)
    selection = _select(only, slots=10, params=SelectionParams(audit_share=0.0, cluster_share=0.25))
    picked = [p.output_id for p in selection.picks]
    assert len(picked) == 10
    assert picked[:3] == ["a0", "a1", "a2"] and sum(p.startswith("b") for p in picked) == 3


def test_noise_points_compete_on_their_score_and_get_no_reserved_share() -> None:
    rng = np.random.default_rng(2)
    window = _cluster("a", [0.9] * 20, rng) + _cluster("b", [0.8] * 20, rng) + _cluster("c", [0.7] * 20, rng)
    loners = [
        Candidate(f"x{i}", score, vector=_embed(_direction(rng)), prompt=f"q{i}", response=f"r{i}")
        for i, score in enumerate([0.95, 0.2, 0.2])
    ]
    selection = _select(window + loners, slots=12, params=SelectionParams(audit_share=0.0, cluster_share=0.5))
    picked = {p.output_id: p for p in selection.picks}
    assert "x0" in picked and {"x1", "x2"}.isdisjoint(picked)
    assert picked["x0"].cluster == -1 and picked["x0"].stratum == "uncertain"
    # Noise is no group a reviewer could look at: its reason names no cluster and lists no members.
    assert "cluster" not in picked["x0"].reason and picked["x0"].members == ()
    assert selection.noise >= 1 and selection.clusters == 3


def test_exploration_takes_what_is_least_like_anything_reviewed_and_says_so() -> None:
    window = [
        Candidate(f"o{i}", i / 40, prompt=f"q{i}", response=f"r{i}", exploration=(i % 7) / 7)
        for i in range(40)
    ]
    params = SelectionParams(audit_share=0.0, explore_share=0.2)
    selection = _select(window, slots=10, params=params)
    explored = [p for p in selection.picks if p.stratum == "explore"]
    assert len(explored) == 2 and all(p.inclusion_probability == 1.0 for p in explored)
    top = [p.output_id for p in selection.picks if p.stratum == "uncertain"]
    assert top == [f"o{i}" for i in range(39, 31, -1)]
    # Highest exploration (6/7) among the rest: o6, o13, o20, o27 -> the two smallest ids.
    assert [p.output_id for p in explored] == ["o13", "o20"]
    assert all("unlike anything reviewed" in p.reason for p in explored)


def test_near_duplicates_are_shown_once_and_counted() -> None:
    rng = np.random.default_rng(3)
    window = _cluster("a", list(np.linspace(0.9, 0.5, 20)), rng) + _cluster("b", [0.3] * 20, rng)
    best = window[0].vector
    assert best is not None
    copies = [
        Candidate(f"dup{i}", 0.85, vector=_near(best, rng), prompt=f"again {i}", response=f"same {i}")
        for i in range(3)
    ]
    selection = _select(window + copies, slots=8)
    shown = next(p for p in selection.picks if p.output_id == "a0")
    assert set(shown.duplicates) == {"dup0", "dup1", "dup2"}
    assert "3 near-duplicates shown once" in shown.reason
    assert not _ids(selection.picks) & {"dup0", "dup1", "dup2"}
    assert re.search(r"one of 23 similar outputs in this batch \(cluster 1 of 2\)", shown.reason)
    # The members it counts are kept with the pick, best first, for the item page to list.
    members = [int(m.removeprefix("a")) for m in shown.members]
    assert shown.cluster == 0 and all(m.startswith("a") for m in shown.members)
    assert members == sorted(members) and 0 not in members and len(members) >= 15


def test_junk_never_takes_a_reviewer_slot() -> None:
    rng = np.random.default_rng(4)
    good = _cluster("a", [0.5] * 12, rng)
    v = good[0].vector

    def junk(output_id: str, prompt: str, response: str) -> Candidate:
        return Candidate(output_id, 0.99, vector=v, prompt=prompt, response=response)

    blob = "aGVsbG8gd29ybGQ" * 12
    window = [
        *good,
        junk("empty", "q", ""),
        junk("blank", "q", " \n\t "),
        junk("blob", "q", blob),
        junk("binary", "q", "\x00\x01\x02\ufffd\ufffd\x7fabc"),
        junk("first", "Same  prompt", "Same answer"),
        junk("again", "same prompt", "same   ANSWER "),
        *(junk(f"canned{i}", f"prompt {i}", "As an AI I cannot help.") for i in range(5)),
    ]
    selection = _select(window, slots=30, params=SelectionParams())
    shown = _ids(selection.picks) | {d for p in selection.picks for d in p.duplicates}
    assert shown == {c.output_id for c in good} | {"first"}  # one good output is first's near-duplicate
    assert selection.junk == {
        "empty": ["empty", "blank"],
        "non-text": ["blob", "binary"],
        "exact repeat": ["again"],
        "same response to many prompts": [f"canned{i}" for i in range(5)],
    }


def test_the_audit_draws_every_fresh_output_alike_before_routing_looks() -> None:
    window = [Candidate(f"o{i}", i / 30, prompt=f"q{i}", response=f"r{i}") for i in range(30)]
    params = SelectionParams(audit_share=0.3)
    runs, counts = 3000, Counter[str]()
    deterministic = None
    for seed in range(runs):
        picks = _select(window, slots=10, params=params, seed=seed).picks
        routed = [p.output_id for p in picks if p.stratum != "audit" or p.routed]
        assert deterministic in (None, routed), "routing must not depend on the rng or on the audit"
        deterministic = routed
        audit = [p for p in picks if p.stratum == "audit"]
        assert all(p.inclusion_probability == pytest.approx(0.3) for p in audit)
        assert all(p.routed == (p.output_id in routed) for p in audit)
        counts.update(p.output_id for p in audit)
    assert deterministic == [f"o{i}" for i in range(29, 19, -1)]  # the 10 slots are routing's
    # every output, routed or not, is a member 30% of the time: 3000 draws, standard error 0.008
    assert set(counts) == {c.output_id for c in window}
    assert all(abs(counts[c.output_id] / runs - 0.3) < 0.04 for c in window)


def test_only_fresh_outputs_are_drawn_and_members_take_no_routing_slot() -> None:
    window = [Candidate(f"o{i}", None if i % 2 else 0.5, prompt=f"q{i}", response=f"r{i}") for i in range(20)]
    seen = [dataclasses.replace(c, fresh=False) for c in window]
    selection = _select(seen, slots=6, params=SelectionParams(audit_share=0.5))
    assert Counter(p.stratum for p in selection.picks) == {"uncertain": 6}  # seen before: no draw
    unscored = [Candidate(f"u{i}", None, prompt=f"q{i}", response=f"r{i}") for i in range(20)]
    audit = _select(unscored, slots=4, params=SelectionParams(audit_share=0.5)).picks
    assert audit and all(p.stratum == "audit" and not p.routed for p in audit)
    assert _select(window, slots=1, params=NO_AUDIT).picks[0].stratum == "uncertain"
    assert _select(window, slots=0, params=NO_AUDIT).picks == []


def test_every_pick_has_a_readable_reason() -> None:
    rng = np.random.default_rng(5)
    drivers = [
        {"signal": "majority_disagreement", "value": 1.0, "contribution": 1.1},
        {"signal": "mean_nll", "value": 0.2, "contribution": -0.3},
    ]
    window = [
        Candidate(c.output_id, c.score, drivers, c.vector, c.prompt, c.response, "length")
        for c in _cluster("a", list(np.linspace(0.95, 0.6, 25)), rng)
        + _cluster("b", list(np.linspace(0.7, 0.2, 25)), rng)
        + [Candidate("x", 0.4, vector=_embed(_direction(rng)), prompt="odd", response="one-off")]
    ]
    params = SelectionParams(audit_share=0.25, candidate_multiple=6, cluster_share=0.5)
    selection = _select(window, slots=12, params=params)
    assert {p.stratum for p in selection.picks} == {"uncertain", "diverse", "audit"}
    patterns = {
        "uncertain": r"similar outputs in this batch \(cluster (\d) of 2\)|^p_fail \d\.\d\d; (?!.*cluster)",
        "diverse": r"similar outputs in this batch \(cluster (\d) of 2\)",
        "audit": r"random audit \(1 in \d+\)",
        "routed audit": r"in this batch \(cluster (\d) of 2\).*; drawn by the random audit too$",
    }
    for pick in selection.picks:
        assert re.match(r"p_fail \d\.\d\d; ", pick.reason), pick.reason
        found = re.search(patterns["routed audit" if pick.routed else pick.stratum], pick.reason)
        assert found, pick.reason
        if pick.stratum in ("uncertain", "diverse") and found.group(1) is not None:
            assert pick.cluster is not None and int(found.group(1)) == pick.cluster + 1
            assert pick.members and pick.output_id not in pick.members
        assert "it differs from what most samples say" in pick.reason
        assert "cut off at the token limit" in pick.reason
        assert "mean negative log-likelihood" not in pick.reason
    for output_id in selection.outliers:
        pick = next((p for p in selection.picks if p.output_id == output_id and p.stratum != "audit"), None)
        assert pick is None or "outlier" in pick.reason


def test_without_vectors_the_highest_scores_are_picked() -> None:
    window = [Candidate(f"o{i}", i / 40, prompt=f"q{i}", response=f"r{i}") for i in range(40)]
    selection = _select(window, slots=10, params=NO_AUDIT)
    fixed = selection.picks
    assert [p.output_id for p in fixed] == [f"o{i}" for i in range(39, 29, -1)]
    assert all(
        p.stratum == "uncertain" and p.cluster is None and p.inclusion_probability == 1.0 for p in fixed
    )
    assert "among the 10 highest scores" in fixed[0].reason
    assert (selection.clusters, selection.noise, selection.outliers) == (0, 0, [])


def test_a_handful_of_candidates_is_not_clustered() -> None:
    rng = np.random.default_rng(6)
    window = _cluster("a", [0.9, 0.8, 0.7, 0.6], rng)
    selection = _select(window, slots=3)
    assert [p.output_id for p in selection.picks] == ["a0", "a1", "a2"]
    assert selection.clusters == 0 and all(p.stratum == "uncertain" for p in selection.picks)
