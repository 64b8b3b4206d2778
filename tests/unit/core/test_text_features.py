"""Text signals: known answers on small, hand-checked examples."""

from __future__ import annotations

import math

import pytest

from core.scoring import CONTEXT, RANKED, SIGNALS
from core.text_features import TEXT_SIGNALS, content_words, factual_request, text_features


def test_a_long_specific_answer_measures_as_written() -> None:
    f = text_features(
        "When was the Eiffel Tower built?",
        "The Eiffel Tower was built in 1889 by Gustave Eiffel for the World Fair in Paris.",
    )
    assert f["length"] == pytest.approx(math.log1p(16))
    # 1889, Gustave, Eiffel (after "by"), World, Fair, Paris; the sentence-initial "The" is not a name,
    # and "Eiffel" right after "The" is a name.
    assert f["numbers"] == pytest.approx(math.log1p(1))
    assert f["specificity"] == pytest.approx(8 / (16 + 10))
    # "Eiffel" and "Tower" are in the prompt; 1889, Gustave, World, Fair, Paris are not.
    assert f["unsupported"] == pytest.approx(5 / 8)
    assert f["factual_request"] == 1.0
    assert f["disclaimer"] == 0.0


def test_specificity_of_a_short_answer_is_shrunk_toward_zero() -> None:
    # One name in a two-word answer is not a dense run of claims: less specific than a sentence
    # naming three things.
    short = text_features("Which magazine came first?", "Arthur's Magazine")["specificity"]
    sentence = text_features(
        "Who built it?", "It was designed by Maurice Koechlin and built by Gustave Eiffel in 1889."
    )["specificity"]
    assert short == pytest.approx(1 / (2 + 10))
    assert sentence == pytest.approx(5 / (13 + 10)) and sentence > short


def test_an_answer_the_context_supports_has_nothing_unsupported() -> None:
    prompt = "Passage: Marie Curie won the Nobel Prize in 1903 and 1911.\nQuestion: When did Curie win?"
    f = text_features(prompt, "She won in 1903 and again in 1911.")
    assert f["unsupported"] == 0.0
    assert text_features(prompt, "She won in 1921.")["unsupported"] == 1.0


def test_off_topic_is_the_share_of_the_prompts_content_words_left_unanswered() -> None:
    prompt = "Explain photosynthesis in green plants"
    assert content_words(prompt) == {"photosynthesis", "green", "plants"}
    assert text_features(prompt, "Photosynthesis turns light into sugar in plants.")[
        "off_topic"
    ] == pytest.approx(1 / 3)
    assert text_features(prompt, "I like trains.")["off_topic"] == 1.0


def test_disclaimers_hedges_structure_and_repetition_are_counted() -> None:
    f = text_features(
        "Create a chart of world population",
        "As an AI language model, I cannot create charts. However:\n| 2000 | 6.1 |\n| 2010 | 6.9 |",
    )
    assert f["disclaimer"] == pytest.approx(math.log1p(2))  # "as an ai" and "i cannot"
    assert f["structure"] == pytest.approx(math.log1p(2))
    assert f["factual_request"] == 0.0  # "create": a writing task
    hedged = text_features("q", "It may be about 5 km, possibly more.")
    assert hedged["hedging"] == pytest.approx(100 * 3 / 8)  # may, about, possibly of 8 words
    looped = text_features("q", "the cat sat the cat sat the cat sat")
    assert looped["repetition"] == pytest.approx(1 - 3 / 7)


def test_an_empty_response_has_no_text_signals_but_the_request_kind() -> None:
    f = text_features("Who wrote Hamlet?", "   ")
    assert {k for k, v in f.items() if v is not None} == {"factual_request"}
    assert factual_request("") is None


def test_every_text_signal_is_scored_and_only_stable_ones_rank_cold_start() -> None:
    assert set(TEXT_SIGNALS) <= set(SIGNALS)
    assert {"disclaimer", "specificity", "unsupported"} <= set(RANKED)
    assert {"length", "hedging", "off_topic"} <= set(CONTEXT)  # their sign differs by app: learned
