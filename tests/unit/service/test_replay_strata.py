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


def test_the_estimate_is_judged_against_the_outputs_it_is_about_not_the_junk() -> None:
    """A queue's estimate counts scored traffic, not junk; judged against the whole pool, a queue
    whose junk is mostly right answers ("I have no comment.") would read as a miss."""
    from service.replay.report import table
    from service.replay.run import Claimed, ReplayRun, report

    pool = {f"o{i}": i < 4 for i in range(10)}  # 4 failures in 10
    run = ReplayRun(pool=pool, left_out={"o7", "o8", "o9"})  # three right answers went to junk
    run.claimed = [Claimed("o0", "uncertain", 1.0, 0.9, True)]
    run.estimate = {"estimate": {"rate": 0.55, "low": 0.5, "high": 0.6}}
    figures = report(run)
    assert figures["base_rate"] == 0.4  # lift is still against the whole pool
    assert figures["estimate"]["truth"] == 4 / 7
    assert (figures["estimate"]["outputs"], figures["estimate"]["left_out"]) == (7, 3)
    printed = table("t", figures)
    assert "truth 57.1% of the 7 outputs it is about (3 junk left out)" in printed
    assert "55.0% [50.0, 60.0] (10.0)" in printed and "(10.0) *" not in printed  # it covers 4/7
