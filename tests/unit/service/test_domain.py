"""What applications post is understood whichever OpenAI shape it comes in."""

from __future__ import annotations

import math

import pytest
from pydantic import ValidationError

from service.domain import OutputIn, ReviewIn, normalize, token_logprobs


def chat_completion(*contents: str, with_logprobs: bool = True) -> dict:
    choices = []
    for i, content in enumerate(contents):
        choice: dict = {
            "index": i,
            "message": {"role": "assistant", "content": content},
            "finish_reason": "stop" if i == 0 else "length",
        }
        if with_logprobs and i == 0:
            choice["logprobs"] = {
                "content": [
                    {
                        "token": "Par",
                        "logprob": -0.2,
                        "bytes": [80],
                        "top_logprobs": [
                            {"token": "Par", "logprob": -0.2},
                            {"token": "Lon", "logprob": -1.9},
                        ],
                    },
                    {"token": "is", "logprob": -0.01, "top_logprobs": []},
                ]
            }
        choices.append(choice)
    return {"id": "chatcmpl-1", "object": "chat.completion", "model": "gpt-4o-mini", "choices": choices}


def test_chat_completion_gives_response_logprobs_and_extra_choices_as_samples() -> None:
    out = OutputIn.model_validate(
        {
            "messages": [{"role": "user", "content": "Capital of France?"}],
            "completion": chat_completion("Paris", "Lyon", "Paris."),
        }
    )
    n = normalize(out)
    assert n.response == "Paris"
    assert n.samples == ["Lyon", "Paris."]
    assert n.finish_reason == "stop"
    assert n.model == "gpt-4o-mini"
    assert n.token_logprobs is not None and [t.token for t in n.token_logprobs] == ["Par", "is"]
    assert n.token_logprobs[0].top_logprobs[1].logprob == pytest.approx(-1.9)
    assert n.prompt == "user: Capital of France?"


def test_caller_samples_and_extra_choices_both_count() -> None:
    out = OutputIn.model_validate(
        {"prompt": "q", "completion": chat_completion("a", "b"), "samples": ["c"], "model": "mine"}
    )
    n = normalize(out)
    assert n.samples == ["c", "b"]
    assert n.model == "mine"


def test_legacy_completion_logprobs_are_read() -> None:
    legacy = {
        "choices": [
            {
                "index": 0,
                "text": " Paris",
                "finish_reason": "length",
                "logprobs": {
                    "tokens": [" Par", "is"],
                    "token_logprobs": [-0.5, -0.1],
                    "top_logprobs": [{" Par": -0.5, " Lyon": -1.2}, {"is": -0.1}],
                },
            }
        ]
    }
    n = normalize(OutputIn.model_validate({"prompt": "q", "completion": legacy}))
    assert n.response == " Paris"
    assert n.finish_reason == "length"
    assert n.token_logprobs is not None
    assert [round(t.logprob, 2) for t in n.token_logprobs] == [-0.5, -0.1]
    assert len(n.token_logprobs[0].top_logprobs) == 2


def test_content_parts_are_flattened_to_text() -> None:
    out = OutputIn.model_validate(
        {
            "messages": [
                {"role": "system", "content": "Be brief."},
                {"role": "user", "content": [{"type": "text", "text": "Hi"}, {"type": "image_url"}]},
            ],
            "response": "Hello",
        }
    )
    assert normalize(out).prompt == "system: Be brief.\n\nuser: Hi"


@pytest.mark.parametrize(
    "payload, fragment",
    [
        ({"response": "x"}, "exactly one of `messages`"),
        ({"prompt": "p", "messages": [{"role": "user", "content": "q"}], "response": "x"}, "exactly one of"),
        ({"prompt": "p"}, "exactly one of `response`"),
        ({"prompt": "p", "response": "x", "completion": chat_completion("x")}, "exactly one of `response`"),
        ({"prompt": "p", "completion": {"choices": []}}, "at least 1 item"),
        ({"prompt": "p", "response": "x", "colour": "red"}, "Extra inputs"),
        ({"prompt": "p", "response": "x", "app": "has space"}, "pattern"),
        ({"messages": [{"role": "wizard", "content": "q"}], "response": "x"}, "role"),
    ],
)
def test_invalid_outputs_are_rejected_with_the_reason(payload: dict, fragment: str) -> None:
    with pytest.raises(ValidationError) as err:
        OutputIn.model_validate(payload)
    assert fragment in str(err.value)


def test_positive_logprob_is_rejected() -> None:
    bad = chat_completion("x")
    bad["choices"][0]["logprobs"]["content"][0]["logprob"] = 0.5
    with pytest.raises(ValidationError, match="logprob must be a number <= 0"):
        OutputIn.model_validate({"prompt": "p", "completion": bad})


def test_mismatched_legacy_logprobs_are_rejected() -> None:
    with pytest.raises(ValueError, match="differ in length"):
        token_logprobs({"tokens": ["a", "b"], "token_logprobs": [-1.0]})


def test_very_negative_logprob_is_floored_not_infinite() -> None:
    lps = token_logprobs({"content": [{"token": "a", "logprob": -1e9}]})
    assert lps is not None and math.isfinite(lps[0].logprob)


def test_payload_hash_is_stable_and_content_sensitive() -> None:
    a = OutputIn.model_validate({"prompt": "p", "response": "x", "metadata": {"b": 1, "a": 2}})
    b = OutputIn.model_validate({"metadata": {"a": 2, "b": 1}, "response": "x", "prompt": "p"})
    c = OutputIn.model_validate({"prompt": "p", "response": "y"})
    assert a.payload_hash() == b.payload_hash() != c.payload_hash()


def test_review_categories_are_normalised_and_verdict_checked() -> None:
    review = ReviewIn(output_id="o1", verdict="fail", categories=[" Unsafe", "unsafe", ""], note="  ")  # type: ignore[arg-type]
    assert review.categories == ["unsafe"] and review.note is None
    with pytest.raises(ValidationError):
        ReviewIn(output_id="o1", verdict="maybe")  # type: ignore[arg-type]
