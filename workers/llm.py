"""The LLM the product samples from: a `Sampler` protocol and its OpenAI-compatible implementation.

Errors from the `openai` SDK are translated at one boundary (`_translated_errors`) into one tree:

    LLMError              anything else that went wrong (malformed or empty response, ...)
    ├── LLMUnavailable    the server could not answer: connection refused, timeout, 429, 5xx
    └── LLMRejected       the server refused this request (other 4xx: bad model name, bad params)

Retrying `LLMUnavailable` later may help; retrying `LLMRejected` won't.
"""

from __future__ import annotations

import contextlib
import threading
from collections.abc import Iterator, Mapping, Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, Protocol

if TYPE_CHECKING:
    from openai import OpenAI

Message = Mapping[str, str]
TOP_LOGPROBS = 5


class LLMError(Exception):
    """Root of the errors raised by LLM samplers."""

    def __init__(self, message: str, *, status_code: int | None = None) -> None:
        super().__init__(message)
        self.status_code = status_code


class LLMUnavailable(LLMError):
    """The LLM server could not be reached or could not answer in time."""


class LLMRejected(LLMError):
    """The LLM server refused the request (a 4xx other than 429)."""


@dataclass(frozen=True)
class Generation:
    """One answer with its token log-probs (OpenAI chat shape) and the raw completion."""

    text: str
    finish_reason: str | None
    token_logprobs: list[dict[str, Any]]
    raw: dict[str, Any]


class Sampler(Protocol):
    """Something that answers chat messages: once greedily with log-probs, k times by sampling."""

    def greedy(self, messages: Sequence[Message]) -> Generation: ...

    def samples(
        self, messages: Sequence[Message], k: int, temperature: float, *, seed: int | None = None
    ) -> list[str]: ...


@contextlib.contextmanager
def _translated_errors() -> Iterator[None]:
    import openai

    try:
        yield
    except openai.APIConnectionError as exc:  # includes APITimeoutError
        raise LLMUnavailable(f"LLM server unavailable: {exc}") from exc
    except openai.APIStatusError as exc:
        status = exc.status_code
        if status == 429 or status >= 500:
            raise LLMUnavailable(f"LLM server error {status}: {exc.message}", status_code=status) from exc
        message = f"LLM server rejected the request ({status}): {exc.message}"
        raise LLMRejected(message, status_code=status) from exc
    except openai.OpenAIError as exc:
        raise LLMError(f"LLM call failed: {exc}") from exc


def _chat_token_logprobs(logprobs: Mapping[str, Any] | None) -> list[dict[str, Any]]:
    """The chat-shape token log-probs, keeping only token, logprob and top_logprobs."""
    if not logprobs or not logprobs.get("content"):
        return []
    return [
        {
            "token": entry["token"],
            "logprob": entry["logprob"],
            "top_logprobs": [
                {"token": top["token"], "logprob": top["logprob"]} for top in entry.get("top_logprobs") or []
            ],
        }
        for entry in logprobs["content"]
    ]


class OpenAISampler:
    """A `Sampler` for any OpenAI-compatible chat completions server (OpenAI, llama.cpp, vLLM...).

    The client is created lazily, so constructing a sampler never connects. At most `concurrency`
    requests are in flight at once, across all threads using this sampler.
    """

    def __init__(
        self,
        *,
        base_url: str,
        model: str,
        api_key: str = "not-needed",
        timeout: float = 60.0,
        max_retries: int = 2,
        max_tokens: int = 256,
        concurrency: int = 4,
    ) -> None:
        if concurrency < 1:
            raise ValueError("concurrency must be at least 1")
        self.base_url = base_url
        self.model = model
        self.max_tokens = max_tokens
        self._api_key = api_key
        self._timeout = timeout
        self._max_retries = max_retries
        self._slots = threading.BoundedSemaphore(concurrency)
        self._pool = ThreadPoolExecutor(max_workers=concurrency, thread_name_prefix="llm-sampler")
        self._client: OpenAI | None = None
        self._client_lock = threading.Lock()

    def _get_client(self) -> OpenAI:
        with self._client_lock:
            if self._client is None:
                from openai import OpenAI

                self._client = OpenAI(
                    base_url=self.base_url,
                    api_key=self._api_key,
                    timeout=self._timeout,
                    max_retries=self._max_retries,
                )
            return self._client

    def _complete(self, messages: Sequence[Message], **params: Any) -> dict[str, Any]:
        client = self._get_client()
        with self._slots, _translated_errors():
            completion = client.chat.completions.create(
                model=self.model,
                messages=[dict(m) for m in messages],  # type: ignore[misc]
                max_tokens=self.max_tokens,
                **params,
            )
        raw = completion.model_dump()
        if not raw.get("choices"):
            raise LLMError("LLM server answered without any choice")
        return raw

    def greedy(self, messages: Sequence[Message]) -> Generation:
        """The temperature-0 answer with the top-5 log-probs of every generated token."""
        raw = self._complete(messages, temperature=0, logprobs=True, top_logprobs=TOP_LOGPROBS)
        choice = raw["choices"][0]
        return Generation(
            text=choice["message"].get("content") or "",
            finish_reason=choice.get("finish_reason"),
            token_logprobs=_chat_token_logprobs(choice.get("logprobs")),
            raw=raw,
        )

    def _sample(self, messages: Sequence[Message], temperature: float, seed: int | None) -> str:
        params: dict[str, Any] = {"temperature": temperature}
        if seed is not None:
            params["seed"] = seed
        raw = self._complete(messages, **params)
        return raw["choices"][0]["message"].get("content") or ""

    def samples(
        self, messages: Sequence[Message], k: int, temperature: float, *, seed: int | None = None
    ) -> list[str]:
        """k answers sampled at `temperature`, one request each (servers often ignore `n`).

        With a `seed`, request i uses `seed + i`, so a rerun gives the same samples.
        """
        seeds = [None if seed is None else seed + i for i in range(k)]
        futures = [self._pool.submit(self._sample, messages, temperature, s) for s in seeds]
        return [future.result() for future in futures]

    def close(self) -> None:
        """Stop the worker threads and close the HTTP client."""
        self._pool.shutdown(wait=True, cancel_futures=True)
        with self._client_lock:
            if self._client is not None:
                self._client.close()
                self._client = None

    def __enter__(self) -> OpenAISampler:
        return self

    def __exit__(self, *exc_info: object) -> None:
        self.close()
