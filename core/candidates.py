"""What selection works on and what it decides: a window's candidates, the picks with their
inclusion probabilities, the parameters that spend a queue's slots, and a selection's result."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

import numpy as np

#: ``novel`` (a reserved share for HDBSCAN noise) is no longer picked; it stays readable on old picks.
STRATA = ("uncertain", "diverse", "explore", "novel", "audit")
JUNK_REASONS = ("empty", "non-text", "exact repeat", "same response to many prompts")
OUTLIER_SHARE = 0.05
#: Cluster members a pick keeps (for the item page): enough to see what the cluster is about.
MEMBERS_KEPT = 20


@dataclass(frozen=True)
class Candidate:
    """One output of the window as selection sees it."""

    output_id: str
    score: float | None
    drivers: Sequence[Mapping[str, Any]] = field(default_factory=tuple)
    vector: np.ndarray | None = None  # L2-normalised embedding
    prompt: str = ""
    response: str = ""
    finish_reason: str | None = None
    exploration: float | None = None  # how unlike anything reviewed (the reviewed-novelty signal)
    fresh: bool = True  # in a selection window for the first time: the audit draws it or never will


@dataclass(frozen=True)
class PickDecision:
    """One output for a reviewer, why, and the probability that this selection would pick it."""

    output_id: str
    stratum: str  # one of STRATA
    reason: str
    score: float | None
    inclusion_probability: float = 1.0
    cluster: int | None = None  # by best score in this selection, -1 noise, None when not clustered
    duplicates: tuple[str, ...] = ()  # near-duplicates this pick stands for
    #: Other outputs of its cluster in this selection, best score first (at most ``MEMBERS_KEPT``):
    #: what the reason's "one of N similar outputs" refers to, listed on the item page.
    members: tuple[str, ...] = ()
    #: An audit member routing chose as well (blind to the audit): stratum ``audit``, served at its score.
    routed: bool = False


@dataclass(frozen=True)
class SelectionParams:
    """How a window's slots are spent; see the module docstring."""

    audit_share: float = 0.10
    explore_share: float = 0.0
    cluster_share: float = 0.25
    candidate_multiple: int = 4
    pca_components: int = 16
    min_cluster_size: int = 5
    near_duplicate: float = 0.97
    junk_repeat_prompts: int = 5


@dataclass
class Selection:
    """The picks (deterministic first, then the audit), the junk by reason, and what clustering found."""

    picks: list[PickDecision]
    junk: dict[str, list[str]]  # every reason of JUNK_REASONS -> output ids
    clusters: int
    noise: int
    outliers: list[str]
