"""The background sender: a bounded buffer that a daemon thread drains to `POST /v1/outputs/batch`.

It never raises into the application. Connection errors, 429 and 5xx are retried with exponential
backoff and full jitter (at least the server's ``Retry-After``), for as long as the buffer holds; the
outputs keep their ``external_id``, so a retry of a batch the server already stored adds nothing. A
full buffer drops its oldest output and counts it, with a warning. A 413 splits the batch; any other
4xx cannot succeed by retrying and is logged and dropped (counted as rejected).
"""

from __future__ import annotations

import logging
import random
import threading
import time
from collections import deque
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

import httpx

log = logging.getLogger("review_router_client")

RETRY_STATUSES = frozenset({408, 425, 429, 500, 502, 503, 504})


@dataclass
class SenderStats:
    """What the sender did with what it was given."""

    accepted: int = 0  # stored by the server (new)
    duplicates: int = 0  # already stored (a retry, or a repeat of an external_id)
    rejected: int = 0  # refused by the server as invalid; retrying cannot help
    dropped: int = 0  # pushed out of a full buffer, or left at close
    retries: int = 0  # batches sent again after a connection error, 429 or 5xx
    last_error: str | None = None
    reasons: list[str] = field(default_factory=list)  # the latest rejection reasons (at most 20)


class BackgroundSender:
    """Batches posted outputs on a daemon thread. ``send`` is given a list of JSON bodies and
    returns the HTTP response of one batch request."""

    def __init__(
        self,
        send: Callable[[list[dict[str, Any]]], httpx.Response],
        *,
        max_buffer: int = 10_000,
        batch_size: int = 100,
        flush_interval: float = 1.0,
        backoff_initial: float = 0.5,
        backoff_max: float = 30.0,
    ) -> None:
        if max_buffer < 1 or batch_size < 1:
            raise ValueError("max_buffer and batch_size must be at least 1")
        self._send = send
        self.max_buffer = max_buffer
        self.batch_size = batch_size
        self.flush_interval = flush_interval
        self.backoff_initial = backoff_initial
        self.backoff_max = backoff_max
        self.stats = SenderStats()
        self._buffer: deque[dict[str, Any]] = deque()
        self._in_flight = 0
        self._lock = threading.Condition()
        self._closed = False
        self._flush_requested = False
        self._thread = threading.Thread(target=self._run, name="review-router-sender", daemon=True)
        self._thread.start()

    # -- the application's side: never blocks on the network, never raises ----------------------
    def put(self, body: dict[str, Any]) -> None:
        with self._lock:
            if self._closed:
                self.stats.dropped += 1
                log.warning("review-router client is closed; output %s dropped", body.get("external_id"))
                return
            if len(self._buffer) >= self.max_buffer:
                self._buffer.popleft()
                self.stats.dropped += 1
                if self.stats.dropped == 1 or self.stats.dropped % 1000 == 0:
                    log.warning(
                        "review-router buffer full (%d outputs): dropped the oldest, %d dropped so far",
                        self.max_buffer,
                        self.stats.dropped,
                    )
            self._buffer.append(body)
            if len(self._buffer) >= self.batch_size:
                self._lock.notify_all()

    @property
    def pending(self) -> int:
        """Outputs not yet answered by the server: buffered or in flight."""
        with self._lock:
            return len(self._buffer) + self._in_flight

    def flush(self, timeout: float | None = None) -> bool:
        """Send everything buffered now; True once the server has answered for all of it."""
        deadline = None if timeout is None else time.monotonic() + timeout
        with self._lock:
            self._flush_requested = True
            self._lock.notify_all()
            while self._buffer or self._in_flight:
                left = None if deadline is None else deadline - time.monotonic()
                if left is not None and left <= 0:
                    return False
                self._lock.wait(left if left is not None else 0.5)
            return True

    def close(self, timeout: float | None = 5.0) -> None:
        """Flush (within ``timeout``), then stop; what is still buffered is counted as dropped."""
        self.flush(timeout)
        with self._lock:
            self._closed = True
            left = len(self._buffer)
            if left:
                self.stats.dropped += left
                self._buffer.clear()
                log.warning("review-router client closed with %d outputs unsent; they are dropped", left)
            self._lock.notify_all()
        self._thread.join(timeout=1.0)

    # -- the sender thread -------------------------------------------------------------------------
    def _take(self) -> list[dict[str, Any]] | None:
        """The next batch: a full one at once, else what is buffered after ``flush_interval`` (or
        on ``flush``); None once closed and empty."""
        with self._lock:
            while True:
                ready = len(self._buffer) >= self.batch_size or self._flush_requested or self._closed
                if self._buffer and ready:
                    break
                if self._closed:
                    return None
                had = bool(self._buffer)
                self._lock.wait(self.flush_interval)
                if had and self._buffer:
                    break  # it waited a whole interval: send what there is
            batch = [self._buffer.popleft() for _ in range(min(self.batch_size, len(self._buffer)))]
            self._in_flight = len(batch)
            return batch

    def _done(self, count: int) -> None:
        with self._lock:
            self._in_flight -= count
            if not self._buffer and not self._in_flight:
                self._flush_requested = False
            self._lock.notify_all()

    def _run(self) -> None:
        while True:
            batch = self._take()
            if batch is None:
                return
            try:
                self._deliver(batch)
            except Exception:  # never let the thread die: the application keeps posting
                log.exception("review-router sender failed on a batch of %d; dropped", len(batch))
                self.stats.dropped += len(batch)
            finally:
                self._done(len(batch))

    def _deliver(self, batch: list[dict[str, Any]]) -> None:
        attempt = 0
        while True:
            wait = self._attempt(batch)
            if wait is None:
                return
            attempt += 1
            self.stats.retries += 1
            with self._lock:
                if self._closed:
                    self.stats.dropped += len(batch)
                    return
                self._lock.wait(max(wait, self._backoff(attempt)))

    def _backoff(self, attempt: int) -> float:
        return random.uniform(0, min(self.backoff_max, self.backoff_initial * 2 ** min(attempt, 16)))

    def _attempt(self, batch: list[dict[str, Any]]) -> float | None:
        """Post once. None when this batch is settled; else the least seconds to wait before again."""
        try:
            response = self._send(batch)
        except httpx.HTTPError as exc:
            self.stats.last_error = f"{type(exc).__name__}: {exc}"
            log.warning("review-router unreachable (%s); %d outputs kept for a retry", exc, len(batch))
            return 0.0
        if response.status_code in RETRY_STATUSES:
            self.stats.last_error = f"HTTP {response.status_code}"
            log.warning(
                "review-router answered %d; %d outputs kept for a retry", response.status_code, len(batch)
            )
            return _retry_after(response)
        if response.status_code == 413 and len(batch) > 1:
            half = len(batch) // 2
            for part in (batch[:half], batch[half:]):
                self._deliver(part)
            return None
        if response.is_success:
            self._count(response.json())
            return None
        self.stats.rejected += len(batch)
        self.stats.last_error = f"HTTP {response.status_code}: {response.text[:300]}"
        log.error("review-router refused a batch of %d: %s", len(batch), self.stats.last_error)
        return None

    def _count(self, result: dict[str, Any]) -> None:
        self.stats.accepted += int(result.get("accepted", 0))
        self.stats.duplicates += int(result.get("duplicates", 0))
        for item in result.get("results", []):
            if item.get("status") == "error":
                self.stats.rejected += 1
                reason = str((item.get("error") or {}).get("message", "invalid output"))
                self.stats.reasons = [*self.stats.reasons[-19:], reason]
                log.error("review-router refused an output: %s", reason)


def _retry_after(response: httpx.Response) -> float:
    try:
        return max(0.0, float(response.headers.get("Retry-After", "0")))
    except ValueError:
        return 0.0
