"""Per-key ingest rate limits: outputs per minute, counted in Redis so every API process shares them.

A fixed one-minute window per key (``rr:rate:<key id>:<minute>``): a request for ``n`` outputs adds
``n`` and is refused whole (429, ``Retry-After`` = seconds to the next window) if that would pass the
key's limit; a refused request takes its count back. A key's own ``rate_per_minute`` wins over
``RR_INGEST_RATE_PER_MINUTE``; 0 or unset means no limit. If Redis cannot be reached the limit is not
enforced (logged): ingest must not stop because the limiter's store is down.
"""

from __future__ import annotations

import logging
import time

from redis import Redis
from redis.exceptions import RedisError

from service.auth import Principal
from service.errors import TooManyRequests

log = logging.getLogger(__name__)
WINDOW_SECONDS = 60


def limit_of(principal: Principal, default: int) -> int:
    """Outputs per minute this caller may post; 0: no limit (people signed in are not limited)."""
    if principal.kind != "api_key":
        return 0
    return principal.rate_per_minute if principal.rate_per_minute is not None else default


def take(redis: Redis, principal: Principal, outputs: int, *, default: int, now: float | None = None) -> None:
    """Count ``outputs`` against the caller's limit, or raise TooManyRequests (nothing counted)."""
    limit = limit_of(principal, default)
    if limit <= 0 or outputs <= 0:
        return
    now = time.time() if now is None else now
    window = int(now // WINDOW_SECONDS)
    key = f"rr:rate:{principal.id}:{window}"
    try:
        pipe = redis.pipeline()
        pipe.incrby(key, outputs)
        pipe.expire(key, WINDOW_SECONDS * 2)
        used = int(pipe.execute()[0])
        if used <= limit:
            return
        redis.decrby(key, outputs)
    except RedisError as exc:
        log.warning("ingest rate limit not enforced, Redis unavailable: %s", exc)
        return
    wait = max(1, int((window + 1) * WINDOW_SECONDS - now) + 1)
    raise TooManyRequests(
        f"this key may post {limit} outputs a minute: try again in {wait} s",
        details={"retry_after": wait, "limit_per_minute": limit, "requested": outputs},
    )
