"""Promotion rules and promoted content, on plain data."""

from __future__ import annotations

import pytest
from pydantic import ValidationError

from core.promotion import (
    ReviewFacts,
    Rule,
    RuleCondition,
    entry_content,
    favoured_kind,
    input_hash,
    matches,
    matching_rules,
)


def facts(**overrides: object) -> ReviewFacts:
    values: dict[str, object] = dict(
        kind="primary",
        verdict="fail",
        categories=["factual_error"],
        correction="Canberra",
        queue="support",
        app="helpdesk",
        model="m-1",
    )
    values.update(overrides)
    return ReviewFacts(**values)  # type: ignore[arg-type]


def test_failed_verdict_with_correction_matches_the_corrections_rule() -> None:
    rule = RuleCondition(verdict="fail", has_correction=True)
    assert matches(rule, facts())
    assert not matches(rule, facts(correction=None))
    assert not matches(rule, facts(correction="   "))
    assert not matches(rule, facts(verdict="pass"))


def test_category_rule_takes_any_listed_category() -> None:
    rule = RuleCondition(verdict="fail", categories=["refusal", "unsafe"])
    assert matches(rule, facts(categories=["unsafe", "other"]))
    assert not matches(rule, facts(categories=["factual_error"]))


def test_queue_app_and_model_lists_restrict_and_empty_lists_accept_all() -> None:
    assert matches(RuleCondition(), facts())
    assert matches(RuleCondition(queues=["support"], apps=["helpdesk"], models=["m-1"]), facts())
    assert not matches(RuleCondition(queues=["billing"]), facts())
    assert not matches(RuleCondition(apps=["other"]), facts())
    assert not matches(RuleCondition(models=["m-2"]), facts())


def test_a_blind_second_verdict_never_promotes() -> None:
    assert not matches(RuleCondition(), facts(kind="qc"))
    assert matches(RuleCondition(), facts(kind="adjudication"))


def test_matching_rules_are_active_ones_in_name_order() -> None:
    rules = [
        Rule("b-fixes", "corrections", RuleCondition(has_correction=True)),
        Rule("a-all", "suite", RuleCondition()),
        Rule("off", "suite", RuleCondition(), active=False),
        Rule("passes", "suite", RuleCondition(verdict="pass")),
    ]
    assert [r.name for r in matching_rules(rules, facts())] == ["a-all", "b-fixes"]


def test_a_condition_refuses_unknown_keys() -> None:
    with pytest.raises(ValidationError):
        RuleCondition.model_validate({"verdict": "fail", "colour": "red"})


def test_a_failure_keeps_its_bad_output_and_a_pass_is_its_own_ideal() -> None:
    fail = entry_content(
        prompt="Capital of Australia?",
        messages=None,
        response="Sydney",
        verdict="fail",
        correction="Canberra",
        categories=["hallucination", "factual_error", "hallucination"],
        provenance={},
    )
    assert fail.input == [{"role": "user", "content": "Capital of Australia?"}]
    assert (fail.bad_output, fail.ideal, fail.categories) == (
        "Sydney",
        "Canberra",
        ["factual_error", "hallucination"],
    )
    chat = [{"role": "system", "content": "Be brief."}, {"role": "user", "content": "Hi"}]
    passed = entry_content(
        prompt="ignored",
        messages=chat,
        response="Hello!",
        verdict="pass",
        correction=None,
        categories=[],
        provenance={},
    )
    assert (passed.input, passed.bad_output, passed.ideal) == (chat, None, "Hello!")
    unfixed = entry_content(
        prompt="q", messages=None, response="r", verdict="fail", correction=" ", categories=[], provenance={}
    )
    assert unfixed.ideal is None


def test_input_hash_ignores_case_and_spacing_but_not_roles_or_words() -> None:
    a = input_hash([{"role": "user", "content": "Reset my  Password"}])
    assert a == input_hash([{"role": "user", "content": "reset my password "}])
    assert a != input_hash([{"role": "system", "content": "reset my password"}])
    assert a != input_hash([{"role": "user", "content": "reset your password"}])
    parts = [{"role": "user", "content": [{"type": "text", "text": "Reset my password"}]}]
    assert input_hash(parts) == a


def test_favoured_kind_is_a_stable_draw_with_the_share() -> None:
    ids = [f"{i:032x}" for i in range(2000)]
    assert [favoured_kind(i, 0.5) for i in ids] == [favoured_kind(i, 0.5) for i in ids]
    evals = sum(favoured_kind(i, 0.3) == "eval_suite" for i in ids)
    assert 500 < evals < 700
    assert all(favoured_kind(i, 1.0) == "eval_suite" for i in ids[:50])
    assert all(favoured_kind(i, 0.0) == "finetune_set" for i in ids[:50])
