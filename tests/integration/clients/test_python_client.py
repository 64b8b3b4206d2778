"""The Python client library against a real review-router API (uvicorn, a real database): batching in
the background, a 30-second outage that loses nothing, a full buffer, and every completion of a real
OpenAI SDK (talking to the local SmolLM2 server) recorded by `wrap_openai`."""

from __future__ import annotations

import asyncio
import logging
import threading
import time
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor

import openai
import pytest
from review_router_client import AsyncClient, Client, wrap_openai
from sqlalchemy import select

from service.storage.db import engine_for, session_factory
from service.storage.tables import Output
from tests.conftest import Database, credentials_in
from tests.servers import LiveService


@pytest.fixture
def backend() -> str:
    """PostgreSQL, as production runs it (the client does not care which database is behind)."""
    return "postgres"


@pytest.fixture
def service(fresh_db: Database, settings_for) -> Iterator[tuple[LiveService, str]]:  # type: ignore[no-untyped-def]
    live = LiveService(settings_for(fresh_db))
    live.start()
    key = credentials_in(session_factory(engine_for(live.settings)), "app")["Authorization"].split()[1]
    yield live, key
    live.stop()


def _stored(live: LiveService, app: str) -> list[Output]:
    with session_factory(engine_for(live.settings))() as session:
        return list(session.scalars(select(Output).where(Output.app == app).order_by(Output.received_at)))


COMPLETION = {
    "id": "chatcmpl-1",
    "object": "chat.completion",
    "model": "smollm2",
    "choices": [
        {
            "index": 0,
            "message": {"role": "assistant", "content": "Paris."},
            "finish_reason": "stop",
            "logprobs": {"content": [{"token": "Paris", "logprob": -0.1}, {"token": ".", "logprob": -0.5}]},
        }
    ],
}


def test_outputs_posted_from_the_request_path_arrive_in_batches(service) -> None:  # type: ignore[no-untyped-def]
    live, key = service
    with Client(live.url, key, app="helpdesk", batch_size=10, flush_interval=0.05) as router:
        ids = [router.post_output(prompt=f"question {i}", response=f"answer {i}") for i in range(25)]
        chat = router.post_completion([{"role": "user", "content": "Capital of France?"}], COMPLETION)
        assert router.post_output(prompt="q", response="a", external_id="ticket-7") == "ticket-7"
        assert router.flush(timeout=30)
        assert (router.stats.accepted, router.stats.rejected, router.stats.dropped) == (27, 0, 0)
        # the same external id again is a duplicate, never a second output
        router.post_output(prompt="q", response="a", external_id="ticket-7")
        assert router.flush(timeout=30) and router.stats.duplicates == 1
    stored = {o.external_id: o for o in _stored(live, "helpdesk")}
    assert set(stored) == {*ids, chat, "ticket-7"}
    assert stored[chat].model == "smollm2" and stored[chat].response == "Paris."
    assert [t["logprob"] for t in stored[chat].token_logprobs or []] == [-0.1, -0.5]


def test_a_malformed_output_is_logged_and_counted_never_raised(
    service, caplog: pytest.LogCaptureFixture
) -> None:  # type: ignore[no-untyped-def]
    live, key = service
    with Client(live.url, key, app="helpdesk") as router, caplog.at_level(logging.ERROR):
        assert router.post_output(response="an answer to nothing") is None
        assert router.post_output(prompt="q", response="a", app="not an app name!") is None
        assert router.stats.rejected == 2 and router.pending == 0
    assert "exactly one of `messages`" in caplog.text


def test_a_30_second_outage_loses_nothing_the_buffer_holds(service) -> None:  # type: ignore[no-untyped-def]
    live, key = service
    router = Client(live.url, key, app="outage", batch_size=20, flush_interval=0.05, backoff_max=2.0)
    for i in range(10):
        router.post_output(prompt=f"before {i}", response="ok")
    assert router.flush(timeout=30) and router.stats.accepted == 10

    live.stop()
    outage_started = time.monotonic()
    posted_during = 0
    while time.monotonic() - outage_started < 30:
        started = time.perf_counter()
        router.post_output(prompt=f"during {posted_during}", response="ok")
        assert time.perf_counter() - started < 0.05, "posting waited on the network"
        posted_during += 1
        time.sleep(0.15)
    assert router.stats.retries > 0 and router.pending > 0
    live.start()
    assert router.flush(timeout=60), f"still pending after the outage: {router.pending}"
    router.close()
    stored = _stored(live, "outage")
    assert len(stored) == 10 + posted_during == len({o.external_id for o in stored})
    assert router.stats.dropped == 0 and router.stats.accepted + router.stats.duplicates == 10 + posted_during


def test_a_full_buffer_drops_the_oldest_and_counts_them(service, caplog: pytest.LogCaptureFixture) -> None:  # type: ignore[no-untyped-def]
    live, key = service
    live.stop()
    with caplog.at_level(logging.WARNING):
        router = Client(
            live.url, key, app="full", max_buffer=5, batch_size=5, flush_interval=0.05, backoff_max=0.5
        )
        # The first batch goes out (and waits on the refused connection); five more fill the buffer.
        for i in range(13):
            router.post_output(prompt=f"q{i}", response="a", external_id=f"o{i}")
            time.sleep(0.02)
    assert router.stats.dropped >= 3 and "dropped the oldest" in caplog.text
    live.start()
    assert router.flush(timeout=60)
    router.close()
    stored = {o.external_id for o in _stored(live, "full")}
    assert {f"o{i}" for i in range(8, 13)} <= stored  # the newest are kept
    assert len(stored) == 13 - router.stats.dropped


def test_wrap_openai_records_every_completion_streamed_or_not(service, llm_url: str) -> None:  # type: ignore[no-untyped-def]
    live, key = service
    router = Client(live.url, key, app="trivia", flush_interval=0.05)
    llm = wrap_openai(openai.OpenAI(base_url=llm_url, api_key="local"), router)
    assert wrap_openai(llm, router) is llm  # wrapping twice records once
    question = [{"role": "user", "content": "What is the capital of France?"}]
    plain = llm.chat.completions.create(
        model="smollm2", messages=question, max_tokens=8, logprobs=True, top_logprobs=1
    )
    assert isinstance(plain, openai.types.chat.ChatCompletion)  # the caller's object, unchanged
    chunks = list(
        llm.chat.completions.create(
            model="smollm2", messages=question, max_tokens=8, logprobs=True, top_logprobs=1, stream=True
        )
    )
    streamed = "".join(c.choices[0].delta.content or "" for c in chunks if c.choices)
    # A failing call still raises to the caller, and records nothing.
    down = wrap_openai(openai.OpenAI(base_url="http://127.0.0.1:9/v1", api_key="x", max_retries=0), router)
    with pytest.raises(openai.APIConnectionError):
        down.chat.completions.create(model="smollm2", messages=question, max_tokens=8)
    assert router.flush(timeout=30)
    router.close()
    llm.close()
    down.close()
    stored = _stored(live, "trivia")
    assert [o.response for o in stored] == [plain.choices[0].message.content, streamed]
    assert all(o.messages == question and o.meta["source"] == "openai-sdk" for o in stored)
    assert all(o.token_logprobs for o in stored), "log-probs were posted with each completion"


def test_wrap_openai_records_async_completions_through_the_async_client(service, llm_url: str) -> None:  # type: ignore[no-untyped-def]
    live, key = service

    async def app() -> tuple[str, str]:
        async with (
            AsyncClient(live.url, key, app="async-trivia", flush_interval=0.05) as router,
            openai.AsyncOpenAI(base_url=llm_url, api_key="local") as raw,
        ):
            llm = wrap_openai(raw, router)
            question = [{"role": "user", "content": "Name a primary colour."}]
            plain = await llm.chat.completions.create(model="smollm2", messages=question, max_tokens=6)
            stream = await llm.chat.completions.create(
                model="smollm2", messages=question, max_tokens=6, stream=True
            )
            text = "".join([c.choices[0].delta.content or "" async for c in stream if c.choices])
            assert await router.flush(timeout=30)
            return plain.choices[0].message.content or "", text

    # an application's own event loop, on a thread of its own (pytest's thread may hold one already)
    with ThreadPoolExecutor(1) as loop_thread:
        plain, streamed = loop_thread.submit(lambda: asyncio.run(app())).result()
    assert [o.response for o in _stored(live, "async-trivia")] == [plain, streamed]
    assert not [t for t in threading.enumerate() if t.name == "review-router-sender" and t.is_alive()]
