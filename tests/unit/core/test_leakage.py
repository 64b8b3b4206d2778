"""Duplicate merging and leakage assignment, on plain data."""

from __future__ import annotations

import numpy as np

from core.leakage import Candidate, Member, hold_back, merge_duplicates, near_duplicates, unit_vector


def unit(seed: int, near: np.ndarray | None = None, noise: float = 0.05) -> np.ndarray:
    v = np.random.default_rng(seed).normal(size=32).astype(np.float32)
    if near is not None:
        v = near + noise * v / np.linalg.norm(v)
    return v / np.linalg.norm(v)


def cand(
    entry: str,
    kind: str,
    vec: np.ndarray | None,
    *,
    anchored: bool = False,
    assess: bool = True,
    cluster: str | None = None,
    input_hash: str | None = None,
    output: str | None = None,
) -> Candidate:
    return Candidate(
        entry_id=entry,
        output_id=output or f"out-{entry}",
        collection="suite" if kind == "eval_suite" else "tune",
        kind=kind,
        input_hash=input_hash or f"h-{entry}",
        embedding=vec,
        cluster=cluster,
        anchored=anchored,
        assess=assess,
    )


POLICY = dict(cosine=0.9, same_cluster=True, eval_share=0.5)


def test_a_near_duplicate_of_a_published_eval_case_is_held_back_from_the_finetune_set() -> None:
    base = unit(1)
    candidates = [
        cand("e1", "eval_suite", base, anchored=True, assess=False),
        cand("f1", "finetune_set", unit(2, near=base)),
        cand("f2", "finetune_set", unit(3)),
    ]
    held = hold_back(candidates, **POLICY)
    assert list(held) == ["f1"]
    assert held["f1"]["kept_in"] == "eval suite" and "already kept it" in held["f1"]["reason"]
    [match] = held["f1"]["matches"]
    assert match["output_id"] == "out-e1" and match["cosine"] >= 0.9 and match["why"].startswith("cosine")


def test_the_side_that_published_first_keeps_the_group_in_both_directions() -> None:
    base = unit(4)
    tune_first = [
        cand("e1", "eval_suite", base),
        cand("f1", "finetune_set", unit(5, near=base), anchored=True, assess=False),
    ]
    assert list(hold_back(tune_first, **POLICY)) == ["e1"]


def test_a_group_new_to_both_sides_goes_to_one_side_by_a_stable_draw() -> None:
    sides = set()
    for i in range(20):
        base = unit(100 + i)
        group = [
            cand(f"e{i}", "eval_suite", base, output=f"o{i}"),
            cand(f"f{i}", "finetune_set", base.copy(), output=f"o{i}"),
        ]
        held = hold_back(group, **POLICY)
        assert len(held) == 1 and held == hold_back(group, **POLICY)
        assert "stable draw" in next(iter(held.values()))["reason"]
        sides.add(next(iter(held)).startswith("f"))
    assert sides == {True, False}
    base = unit(7)
    always_eval = [cand("e", "eval_suite", base), cand("f", "finetune_set", base.copy())]
    assert list(hold_back(always_eval, cosine=0.9, same_cluster=True, eval_share=1.0)) == ["f"]


def test_same_cluster_or_same_input_counts_and_cluster_can_be_switched_off() -> None:
    apart = [
        cand("e", "eval_suite", unit(8), anchored=True, assess=False, cluster="sel:3"),
        cand("f", "finetune_set", unit(9), cluster="sel:3"),
    ]
    assert list(hold_back(apart, **POLICY)) == ["f"]
    assert hold_back(apart, cosine=0.9, same_cluster=False, eval_share=0.5) == {}
    other_run = [apart[0], cand("f", "finetune_set", unit(9), cluster="other:3")]
    assert hold_back(other_run, **POLICY) == {}
    same_text = [
        cand("e", "eval_suite", None, anchored=True, assess=False, input_hash="same"),
        cand("f", "finetune_set", None, input_hash="same"),
    ]
    [match] = near_duplicates(same_text, cosine=0.9, same_cluster=True)
    assert match.same_input and match.cosine is None
    assert list(hold_back(same_text, **POLICY)) == ["f"]


def test_items_on_the_same_side_never_hold_each_other_back() -> None:
    base = unit(10)
    same_side = [cand("f1", "finetune_set", base), cand("f2", "finetune_set", base.copy())]
    assert hold_back(same_side, **POLICY) == {}


def test_published_items_are_never_assessed_again_here() -> None:
    base = unit(11)
    both_published = [
        cand("e", "eval_suite", base, anchored=True, assess=False),
        cand("f", "finetune_set", base.copy(), anchored=True, assess=False),
    ]
    assert hold_back(both_published, **POLICY) == {}


def test_a_chain_of_near_duplicates_is_one_group_assigned_to_one_side() -> None:
    a = unit(12)
    b = unit(13, near=a, noise=0.4)
    c = unit(14, near=b, noise=0.4)
    chain = [
        cand("e1", "eval_suite", a, anchored=True, assess=False),
        cand("f1", "finetune_set", b),
        cand("e2", "eval_suite", c),
    ]
    sims = {(m.a, m.b) for m in near_duplicates(chain, cosine=0.9, same_cluster=True)}
    assert (0, 1) in sims and (2, 1) in sims and float(a @ c) < 0.995
    assert list(hold_back(chain, **POLICY)) == ["f1"]


def test_embeddings_of_different_sizes_are_not_compared() -> None:
    mixed = [
        cand("e", "eval_suite", np.ones(4, dtype=np.float32) / 2, anchored=True, assess=False),
        cand("f", "finetune_set", np.ones(8, dtype=np.float32) / np.sqrt(8)),
    ]
    assert hold_back(mixed, **POLICY) == {}


def test_duplicates_merge_into_the_item_with_an_ideal_then_the_latest_verdict() -> None:
    members = [
        Member("a", "h1", False, "2024-01-01T00:00:00+00:00"),
        Member("b", "h2", True, "2024-01-02T00:00:00+00:00"),
        Member("c", "h1", True, "2024-01-01T00:00:00+00:00"),
        Member("d", "h1", True, "2024-01-03T00:00:00+00:00"),
    ]
    assert merge_duplicates(members) == [("d", ["a", "c"]), ("b", [])]
    assert merge_duplicates([]) == []


def test_stored_embeddings_become_unit_vectors() -> None:
    raw = np.array([3.0, 4.0], dtype=np.float32).tobytes()
    assert np.allclose(unit_vector(raw), [0.6, 0.8])  # type: ignore[arg-type]
    assert unit_vector(None) is None and unit_vector(np.zeros(3, dtype=np.float32).tobytes()) is None
