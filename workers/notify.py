"""The webhook job: one POST of a queue's notification, bounded in time; RQ retries it on failure.
It runs as a job of its own, so a slow or dead receiver never holds up scoring or selection."""

from __future__ import annotations

import logging
from typing import Any

import httpx

from workers.runtime import runtime

log = logging.getLogger(__name__)


def send_webhook(url: str, payload: dict[str, Any]) -> int:
    """POST ``payload`` to ``url``; raises on a refusal or a timeout so that RQ tries again later."""
    timeout = runtime().settings.webhook_timeout_seconds
    try:
        answer = httpx.post(url, json=payload, timeout=timeout)
    except httpx.HTTPError as exc:
        log.warning("webhook %s for queue %s failed: %s", payload.get("event"), payload.get("queue"), exc)
        raise
    if answer.status_code >= 400:
        log.warning("webhook %s answered %d", payload.get("event"), answer.status_code)
        answer.raise_for_status()
    return answer.status_code
