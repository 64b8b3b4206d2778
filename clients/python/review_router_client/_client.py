"""`Client` and `AsyncClient`: post outputs from the request path; a background sender does the HTTP."""

from __future__ import annotations

import asyncio
import atexit
import logging
import weakref
from typing import Any

import httpx
from pydantic import ValidationError

from review_router_client._models import Output, as_dict
from review_router_client._sender import BackgroundSender, SenderStats

log = logging.getLogger("review_router_client")

__all__ = ["AsyncClient", "Client"]


class Client:
    """A review-router instance at ``url``, posting with an ingest API key (``review-router keys
    create NAME``). Posting only appends to a bounded buffer: it never waits on the network and never
    raises; a daemon thread sends the buffer in batches, retrying through outages, and flushes at
    interpreter exit.

    ``app`` is the default app name of what this client posts (each post may name another).
    """

    def __init__(
        self,
        url: str,
        api_key: str,
        *,
        app: str = "default",
        max_buffer: int = 10_000,
        batch_size: int = 100,
        flush_interval: float = 1.0,
        timeout: float = 10.0,
        flush_at_exit: float = 5.0,
        backoff_max: float = 30.0,
        transport: httpx.BaseTransport | None = None,
    ) -> None:
        self.url = url.rstrip("/")
        self.app = app
        self._http = httpx.Client(
            base_url=self.url,
            headers={"Authorization": f"Bearer {api_key}", "User-Agent": "review-router-client/0.1"},
            timeout=timeout,
            transport=transport,
        )
        self._sender = BackgroundSender(
            self._post_batch,
            max_buffer=max_buffer,
            batch_size=batch_size,
            flush_interval=flush_interval,
            backoff_max=backoff_max,
        )
        self._closed = False
        # A weak reference: registering the client itself would keep it alive until exit.
        ref = weakref.ref(self)
        self._at_exit = lambda: (c := ref()) is not None and c.close(timeout=flush_at_exit)
        atexit.register(self._at_exit)

    def _post_batch(self, bodies: list[dict[str, Any]]) -> httpx.Response:
        return self._http.post("/v1/outputs/batch", json={"outputs": bodies})

    def post_output(
        self,
        *,
        response: str | None = None,
        prompt: str | None = None,
        messages: list[Any] | None = None,
        completion: Any = None,
        app: str | None = None,
        model: str | None = None,
        external_id: str | None = None,
        samples: list[str] | None = None,
        metadata: dict[str, Any] | None = None,
    ) -> str | None:
        """Queue one output for the router; its ``external_id`` (given or made), or None when the
        output is malformed (logged, not raised)."""
        fields: dict[str, Any] = {
            "app": app or self.app,
            "model": model,
            "messages": as_dict(messages) if messages is not None else None,
            "prompt": prompt,
            "response": response,
            "completion": as_dict(completion) if completion is not None else None,
            "samples": samples or [],
            "metadata": metadata or {},
        }
        if external_id is not None:
            fields["external_id"] = external_id
        try:
            output = Output(**fields)
        except ValidationError as exc:
            self._sender.stats.rejected += 1
            log.error("review-router output not queued: %s", exc.errors(include_url=False))
            return None
        self._sender.put(output.body())
        return output.external_id

    def post_completion(self, messages: list[Any], completion: Any, **fields: Any) -> str | None:
        """Queue a chat completion as the OpenAI SDK returned it (object or dict), log-probs and all,
        with the messages that asked for it."""
        model = fields.pop("model", None) or getattr(completion, "model", None)
        if model is None and isinstance(completion, dict):
            model = completion.get("model")
        return self.post_output(messages=messages, completion=completion, model=model, **fields)

    @property
    def stats(self) -> SenderStats:
        """Counts of what was accepted, duplicate, rejected, dropped and retried."""
        return self._sender.stats

    @property
    def pending(self) -> int:
        return self._sender.pending

    def flush(self, timeout: float | None = None) -> bool:
        """Block until everything posted so far has been answered by the server (or ``timeout``)."""
        return self._sender.flush(timeout)

    def close(self, timeout: float | None = 5.0) -> None:
        """Flush within ``timeout``, then stop the sender and close the connection."""
        if self._closed:
            return
        self._closed = True
        atexit.unregister(self._at_exit)
        self._sender.close(timeout)
        self._http.close()

    def __enter__(self) -> Client:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()


class AsyncClient:
    """The same client for asyncio applications: posting is a coroutine that only appends to the
    buffer; the sending happens on the sender thread, off the event loop."""

    def __init__(self, url: str, api_key: str, **options: Any) -> None:
        self._client = Client(url, api_key, **options)

    async def post_output(self, **fields: Any) -> str | None:
        return self._client.post_output(**fields)

    async def post_completion(self, messages: list[Any], completion: Any, **fields: Any) -> str | None:
        return self._client.post_completion(messages, completion, **fields)

    def queue_completion(self, messages: list[Any], completion: Any, **fields: Any) -> str | None:
        """``post_completion`` without awaiting (for code that cannot await, like a stream's end)."""
        return self._client.post_completion(messages, completion, **fields)

    @property
    def stats(self) -> SenderStats:
        return self._client.stats

    @property
    def pending(self) -> int:
        return self._client.pending

    async def flush(self, timeout: float | None = None) -> bool:
        return await asyncio.to_thread(self._client.flush, timeout)

    async def aclose(self, timeout: float | None = 5.0) -> None:
        await asyncio.to_thread(self._client.close, timeout)

    async def __aenter__(self) -> AsyncClient:
        return self

    async def __aexit__(self, *exc: object) -> None:
        await self.aclose()
