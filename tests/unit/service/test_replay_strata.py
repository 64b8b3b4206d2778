"""A replay's strata: an audit member routing chose too is counted apart from those it had not."""

from __future__ import annotations

from core import lift
from service.replay.run import claim_stratum


def test_an_audit_member_routing_chose_is_counted_apart_from_the_audit_row() -> None:
    claims = [
        {"stratum": "audit", "routed": True},  # routing chose it for its score: likely a failure
        {"stratum": "audit", "routed": False},  # routing has not chosen it
        {"stratum": "uncertain", "routed": True},
    ]
    strata = lift.by_stratum([claim_stratum(c) for c in claims], [True, False, True])
    assert strata["audit"] == {"picks": 1, "failures": 0, "yield": 0.0}
    assert strata["audit+routed"]["failures"] == 1 and strata["uncertain"]["picks"] == 1


def test_a_claim_without_the_routed_field_keeps_its_stratum() -> None:
    assert claim_stratum({"stratum": "audit"}) == "audit"
    assert claim_stratum({"stratum": "diverse", "routed": True}) == "diverse"
