"""Self-consistency drawn by the worker from a real local LLM through its OpenAI-compatible API."""

from __future__ import annotations

import pytest
from redis import Redis

from service import queueing
from service.domain import OutputIn
from service.storage import repository as repo
from service.storage.db import transaction
from service.storage.tables import Output
from tests.conftest import Database
from workers import sampling
from workers.llm import LLMUnavailable, OpenAISampler
from workers.main import run_worker
from workers.runtime import Runtime, use_runtime

QUESTION = [{"role": "user", "content": "What is the capital of France? Answer in a few words."}]


@pytest.fixture(autouse=True)
def _reset_runtime():  # type: ignore[no-untyped-def]
    yield
    use_runtime(None)


def test_sampler_returns_greedy_logprobs_and_k_samples(llm_url: str) -> None:
    with OpenAISampler(base_url=llm_url, model="smollm2", max_tokens=16, concurrency=2) as sampler:
        greedy = sampler.greedy(QUESTION)
        samples = sampler.samples(QUESTION, 3, 0.9, seed=1)
    assert greedy.text.strip() and greedy.token_logprobs
    first = greedy.token_logprobs[0]
    assert first["logprob"] <= 0 and len(first["top_logprobs"]) == 5
    assert len(samples) == 3 and all(isinstance(s, str) for s in samples)
    # what the sampler returns is what an application posts: the product accepts it as is
    OutputIn(messages=QUESTION, completion=greedy.raw, samples=samples)  # type: ignore[arg-type]


def test_an_unreachable_endpoint_is_our_error_not_the_sdks() -> None:
    with (
        OpenAISampler(base_url="http://127.0.0.1:9/v1", model="m", timeout=2, max_retries=0) as sampler,
        pytest.raises(LLMUnavailable),
    ):
        sampler.samples(QUESTION, 1, 0.8)


def test_worker_samples_outputs_near_the_boundary_and_rescores_them(
    llm_url: str,
    fresh_db: Database,
    settings_for,  # type: ignore[no-untyped-def]
) -> None:
    settings = settings_for(
        fresh_db,
        llm_base_url=llm_url,
        llm_model="smollm2",
        llm_samples=3,
        llm_max_tokens=24,
        sample_band_low=0.0,
        sample_band_high=1.0,
    )
    with transaction(fresh_db.engine) as session:
        with_samples, _ = repo.ingest_output(
            session,
            output_in=OutputIn(messages=QUESTION, response="Paris.", samples=["Paris", "It is Paris."]),
        )  # type: ignore[arg-type]
        without, _ = repo.ingest_output(
            session, output_in=OutputIn(messages=QUESTION, response="Lyon is the capital of France.")
        )  # type: ignore[arg-type]
    queueing.enqueue_scoring(
        queueing.work_queue(Redis.from_url(settings.redis_url), settings),
        settings,
        [with_samples.id, without.id],
    )
    run_worker(settings, burst=True)
    with transaction(fresh_db.engine) as session:
        caller = session.get(Output, with_samples.id)
        drawn = session.get(Output, without.id)
    assert caller is not None and caller.sampling == "caller: 2 samples"
    assert drawn is not None and drawn.sampling == "drawn: 3 samples at temperature 0.8"
    assert len(drawn.samples) == 3 and drawn.signals and drawn.signals["sample_dispersion"] is not None
    assert drawn.signals["semantic_entropy"] is not None


def test_sampling_retries_while_the_endpoint_is_down(fresh_db: Database, settings_for) -> None:  # type: ignore[no-untyped-def]
    settings = settings_for(
        fresh_db, llm_base_url="http://127.0.0.1:9/v1", llm_timeout_seconds=2, llm_max_retries=0
    )
    with transaction(fresh_db.engine) as session:
        row, _ = repo.ingest_output(session, output_in=OutputIn(prompt="q", response="a"))
        repo.set_sampling(session, output_ids=[row.id], sampling=sampling.PENDING)
    use_runtime(Runtime(settings=settings, engine=fresh_db.engine))
    with pytest.raises(LLMUnavailable):
        sampling.sample_outputs([row.id])
    with transaction(fresh_db.engine) as session:
        assert session.get(Output, row.id).sampling == sampling.PENDING  # type: ignore[union-attr]


def test_without_an_endpoint_nothing_is_sampled_and_the_record_says_so() -> None:
    from service.settings import Settings

    assert sampling.decide(score=0.9, recent_scores=[0.1], caller_samples=0, settings=Settings()) == (
        "off: no sampling endpoint configured"
    )
    on = Settings(llm_base_url="http://x/v1", sample_band_low=0.5, sample_band_high=0.9)
    assert (
        sampling.decide(score=0.6, recent_scores=[0.1, 0.2, 0.7, 0.9], caller_samples=0, settings=on)
        == "pending"
    )
    assert sampling.decide(
        score=0.1, recent_scores=[0.1, 0.2, 0.7, 0.9], caller_samples=0, settings=on
    ).startswith("skipped")
