"""`wrap_openai`: every chat completion an OpenAI client makes is posted to the router as well.

The wrapped client behaves exactly as before: same arguments, same return objects (streams are
passed through chunk by chunk, untouched), same exceptions. Recording happens after the call returns
(or after the stream's last chunk) and never raises into the application: a failure to record is
logged and forgotten.
"""

from __future__ import annotations

import functools
import inspect
import logging
from collections.abc import AsyncIterator, Callable, Iterator
from typing import Any

from review_router_client._models import as_dict

log = logging.getLogger("review_router_client")

__all__ = ["wrap_openai"]


def wrap_openai(openai_client: Any, router: Any, *, app: str | None = None) -> Any:
    """Make ``openai_client`` (``openai.OpenAI`` or ``openai.AsyncOpenAI``) post each
    ``chat.completions.create`` result, streamed or not, to ``router`` (a ``Client`` or
    ``AsyncClient``) under ``app`` (default: the router client's own). Returns the same client."""
    completions = openai_client.chat.completions
    original = completions.create
    if getattr(original, "__review_router__", False):
        return openai_client  # already wrapped
    record = functools.partial(_record, router, app)
    # AsyncOpenAI's create may be wrapped in a plain function that returns a coroutine.
    if inspect.iscoroutinefunction(original) or type(completions).__name__.startswith("Async"):

        @functools.wraps(original)
        async def create_async(*args: Any, **kwargs: Any) -> Any:
            result = await original(*args, **kwargs)
            if kwargs.get("stream"):
                return _RecordedAsyncStream(result, functools.partial(record, kwargs))
            record(kwargs, result)
            return result

        wrapper: Callable[..., Any] = create_async
    else:

        @functools.wraps(original)
        def create(*args: Any, **kwargs: Any) -> Any:
            result = original(*args, **kwargs)
            if kwargs.get("stream"):
                return _RecordedStream(result, functools.partial(record, kwargs))
            record(kwargs, result)
            return result

        wrapper = create
    wrapper.__review_router__ = True  # type: ignore[attr-defined]
    completions.create = wrapper
    return openai_client


def _record(router: Any, app: str | None, request: dict[str, Any], completion: Any) -> None:
    try:
        messages = as_dict(list(request.get("messages") or []))
        fields: dict[str, Any] = {"metadata": {"source": "openai-sdk"}}
        if app is not None:
            fields["app"] = app
        if not messages:
            return
        queue = getattr(router, "queue_completion", None) or router.post_completion
        queue(messages, completion, model=request.get("model"), **fields)
    except Exception:  # recording must never break the application's call
        log.exception("review-router could not record a chat completion")


class _Assembler:
    """Builds the chat-completion object a stream's chunks add up to, log-probs included."""

    def __init__(self) -> None:
        self.model: str | None = None
        self.id: str | None = None
        self.choices: dict[int, dict[str, Any]] = {}
        self.finished = False

    def add(self, chunk: Any) -> None:
        try:
            data = as_dict(chunk)
            self.model = data.get("model") or self.model
            self.id = data.get("id") or self.id
            for choice in data.get("choices") or []:
                slot = self.choices.setdefault(
                    int(choice.get("index") or 0), {"text": [], "logprobs": [], "finish_reason": None}
                )
                delta = choice.get("delta") or {}
                if delta.get("content"):
                    slot["text"].append(delta["content"])
                slot["logprobs"].extend((choice.get("logprobs") or {}).get("content") or [])
                if choice.get("finish_reason"):
                    slot["finish_reason"] = choice["finish_reason"]
                    self.finished = True
        except Exception:
            log.exception("review-router could not read a stream chunk")

    def completion(self) -> dict[str, Any]:
        return {
            "id": self.id,
            "object": "chat.completion",
            "model": self.model,
            "choices": [
                {
                    "index": index,
                    "message": {"role": "assistant", "content": "".join(slot["text"])},
                    "finish_reason": slot["finish_reason"],
                    "logprobs": {"content": slot["logprobs"]} if slot["logprobs"] else None,
                }
                for index, slot in sorted(self.choices.items())
            ],
        }


class _StreamBase:
    def __init__(self, stream: Any, record: Callable[[Any], None]) -> None:
        self._stream = stream
        self._record = record
        self._assembler = _Assembler()
        self._recorded = False

    def _finish(self) -> None:
        # Only a stream that reached its end is an output: an abandoned one was never read whole.
        if not self._recorded and self._assembler.finished and self._assembler.choices:
            self._recorded = True
            self._record(self._assembler.completion())

    def __getattr__(self, name: str) -> Any:
        return getattr(self._stream, name)


class _RecordedStream(_StreamBase):
    """An OpenAI ``Stream`` that records the completion once its last chunk has been read."""

    def __iter__(self) -> Iterator[Any]:
        try:
            for chunk in self._stream:
                self._assembler.add(chunk)
                yield chunk
        finally:
            self._finish()

    def __next__(self) -> Any:
        try:
            chunk = next(self._stream)
        except StopIteration:
            self._finish()
            raise
        self._assembler.add(chunk)
        return chunk

    def __enter__(self) -> _RecordedStream:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def close(self) -> None:
        self._finish()
        self._stream.close()


class _RecordedAsyncStream(_StreamBase):
    """An OpenAI ``AsyncStream`` that records the completion once its last chunk has been read."""

    async def __aiter__(self) -> AsyncIterator[Any]:
        try:
            async for chunk in self._stream:
                self._assembler.add(chunk)
                yield chunk
        finally:
            self._finish()

    async def __anext__(self) -> Any:
        try:
            chunk = await self._stream.__anext__()
        except StopAsyncIteration:
            self._finish()
            raise
        self._assembler.add(chunk)
        return chunk

    async def __aenter__(self) -> _RecordedAsyncStream:
        return self

    async def __aexit__(self, *exc: object) -> None:
        await self.close()

    async def close(self) -> None:
        self._finish()
        await self._stream.close()
