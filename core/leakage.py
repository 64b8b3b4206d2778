"""Duplicates and leakage, pure: merging repeats inside a collection, and keeping a failure out of
either a fine-tuning set or the eval suites that measure it.

Two items are *near-duplicates* when their inputs are the same (case and spacing ignored), their
embeddings' cosine reaches the threshold, or (when asked) a selection run put them in the same
cluster. Near-duplicates on opposite sides (an eval suite and a fine-tuning set) form groups; each
group is assigned to one side: the side where it was already published (kept in an earlier
version) keeps it; when neither or both sides had it, a stable draw on the group decides, like a
train/test split. Members on the other side are held back from that version's exports, with the
reason.
"""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np

from core.promotion import favoured_kind

KIND_WORDS = {"eval_suite": "eval suite", "finetune_set": "fine-tuning set"}
_BLOCK = 2048
_SHOWN_MATCHES = 5


@dataclass(frozen=True)
class Member:
    """An item of a collection, as duplicate merging sees it."""

    entry_id: str
    input_hash: str
    has_ideal: bool
    reviewed_at: str  # ISO 8601, so later verdicts sort later


def merge_duplicates(members: Sequence[Member]) -> list[tuple[str, list[str]]]:
    """One item per input: ``(kept entry id, merged entry ids)`` in first-seen order. The kept one
    has an ideal answer if any does, then the latest verdict."""
    groups: dict[str, list[Member]] = {}
    for m in members:
        groups.setdefault(m.input_hash, []).append(m)
    merged = []
    for group in groups.values():
        best = max(group, key=lambda m: (m.has_ideal, m.reviewed_at, m.entry_id))
        merged.append((best.entry_id, sorted(m.entry_id for m in group if m is not best)))
    return merged


@dataclass(frozen=True)
class Candidate:
    """An item on one side of the leakage check."""

    entry_id: str
    output_id: str
    collection: str
    kind: str  # "eval_suite" or "finetune_set"
    input_hash: str
    embedding: np.ndarray | None  # unit-norm float32, or None when the output was never embedded
    cluster: str | None  # "selection id:cluster", None for noise or unclustered picks
    anchored: bool  # already kept in a published version of its collection
    assess: bool  # in a version being made now: may be held back


@dataclass(frozen=True)
class Match:
    a: int
    b: int
    cosine: float | None
    same_cluster: bool
    same_input: bool


def _find(parent: list[int], i: int) -> int:
    while parent[i] != i:
        parent[i] = parent[parent[i]]
        i = parent[i]
    return i


def _cosine_pairs(
    left: list[int], right: list[int], candidates: Sequence[Candidate], threshold: float
) -> dict[tuple[int, int], float]:
    lefts = [i for i in left if candidates[i].embedding is not None]
    rights = [j for j in right if candidates[j].embedding is not None]
    found: dict[tuple[int, int], float] = {}
    if not lefts or not rights:
        return found
    dims = {candidates[i].embedding.shape[0] for i in lefts + rights}  # type: ignore[union-attr]
    if len(dims) != 1:  # embeddings of different encoders are not comparable
        return found
    b = np.stack([candidates[j].embedding for j in rights]).astype(np.float32)  # type: ignore[misc]
    for start in range(0, len(lefts), _BLOCK):
        block = lefts[start : start + _BLOCK]
        a = np.stack([candidates[i].embedding for i in block]).astype(np.float32)  # type: ignore[misc]
        sims = a @ b.T
        for r, c in zip(*np.nonzero(sims >= threshold), strict=True):
            found[(block[int(r)], rights[int(c)])] = round(float(sims[r, c]), 4)
    return found


def _keyed_pairs(left: list[int], right: list[int], key: Any) -> set[tuple[int, int]]:
    index: dict[str, list[int]] = defaultdict(list)
    for j in right:
        if (k := key(j)) is not None:
            index[k].append(j)
    return {(i, j) for i in left if (k := key(i)) is not None for j in index.get(k, ())}


def near_duplicates(candidates: Sequence[Candidate], *, cosine: float, same_cluster: bool) -> list[Match]:
    """Pairs across the two sides (eval suite item, fine-tuning item) that are near-duplicates."""
    evals = [i for i, c in enumerate(candidates) if c.kind == "eval_suite"]
    tunes = [i for i, c in enumerate(candidates) if c.kind == "finetune_set"]
    sims = _cosine_pairs(evals, tunes, candidates, cosine)
    same_input = _keyed_pairs(evals, tunes, lambda i: candidates[i].input_hash)
    clustered = _keyed_pairs(evals, tunes, lambda i: candidates[i].cluster) if same_cluster else set()
    pairs = sorted(set(sims) | same_input | clustered)
    return [Match(a, b, sims.get((a, b)), (a, b) in clustered, (a, b) in same_input) for a, b in pairs]


def _describe(match: Match) -> str:
    parts = []
    if match.same_input:
        parts.append("same input")
    if match.cosine is not None:
        parts.append(f"cosine {match.cosine:.2f}")
    if match.same_cluster:
        parts.append("same cluster")
    return ", ".join(parts)


def hold_back(
    candidates: Sequence[Candidate], *, cosine: float, same_cluster: bool, eval_share: float
) -> dict[str, dict[str, Any]]:
    """What each version being made must hold back: entry id -> a JSON-ready account of why."""
    matches = near_duplicates(candidates, cosine=cosine, same_cluster=same_cluster)
    parent = list(range(len(candidates)))
    for m in matches:
        parent[_find(parent, m.a)] = _find(parent, m.b)
    groups: dict[int, list[int]] = defaultdict(list)
    for m in matches:
        groups[_find(parent, m.a)].extend((m.a, m.b))
    neighbours: dict[int, list[Match]] = defaultdict(list)
    for m in matches:
        neighbours[m.a].append(m)
        neighbours[m.b].append(m)
    held: dict[str, dict[str, Any]] = {}
    for members in groups.values():
        group = sorted(set(members))
        anchored = {candidates[i].kind for i in group if candidates[i].anchored}
        if len(anchored) == 1:
            side, why = anchored.pop(), "that side already kept it in a published version"
        else:
            first = min(candidates[i].output_id for i in group)
            side, why = favoured_kind(first, eval_share), "a stable draw assigned the group to that side"
        for i in group:
            c = candidates[i]
            if c.kind == side or not c.assess:
                continue
            found = sorted(neighbours[i], key=lambda m: (-(m.cosine or 0.0), m.a, m.b))[:_SHOWN_MATCHES]
            others = [candidates[m.b if m.a == i else m.a] for m in found]
            held[c.entry_id] = {
                "entry_id": c.entry_id,
                "output_id": c.output_id,
                "kept_in": KIND_WORDS[side],
                "reason": f"near-duplicate of {len(neighbours[i])} item(s) kept in the {KIND_WORDS[side]} "
                f"side; {why}",
                "matches": [
                    {
                        "collection": o.collection,
                        "output_id": o.output_id,
                        "cosine": m.cosine,
                        "same_cluster": m.same_cluster,
                        "same_input": m.same_input,
                        "why": _describe(m),
                    }
                    for o, m in zip(others, found, strict=True)
                ],
            }
    return held


def unit_vector(raw: bytes | None) -> np.ndarray | None:
    """A stored float32 embedding as a unit vector (None stays None)."""
    if not raw:
        return None
    vector = np.frombuffer(raw, dtype=np.float32)
    norm = float(np.linalg.norm(vector))
    return vector / norm if norm > 0 else None
