"""Rate limits on the calendar feeds, per token and per client address.

Calendar apps poll every 15 minutes to a day; a client that asks for the same feed dozens
of times in ten minutes, or one address that fires thousands of requests, is misbehaving
or guessing tokens. The limits are token buckets kept in the memory of each worker process:
no database or Redis on the way (feeds keep working while Redis is down, and a 304 stays
cheap), O(1) per request, and a bounded number of keys (the least recently seen are
forgotten first, which is the same as a full bucket for them). Being per process, a
deployment with W workers lets a client through up to W times the configured figure.

The route calls `refuse(token)`; a WSGI fast path without a Flask request can call
`FeedLimits.retry_after` and build its answer from `TOO_MANY_BODY` and `headers`.
"""

from __future__ import annotations

import hashlib
import math
import threading
import time
from collections import OrderedDict
from collections.abc import Callable, Hashable

from flask import Flask, Response, current_app, request

#: `app.extensions` key of the app's `FeedLimits` (absent: no limits).
EXTENSION_KEY = "bastion.feed_limits"
#: Keys remembered per limiter; beyond it the least recently seen are forgotten.
MAX_KEYS = 65536
TOO_MANY_BODY = "Too many requests for this calendar feed; try again later.\n请求过于频繁，请稍后再试。\n"


class TokenBucket:
    """At most `limit` requests in a burst per key, refilled at `limit` per `window` s.

    `clock` returns seconds (monotonic); tests give their own.
    """

    def __init__(self, limit: int, window: float, *, max_keys: int = MAX_KEYS,
                 clock: Callable[[], float] = time.monotonic) -> None:
        if limit < 1 or window <= 0:
            raise ValueError(f"a token bucket needs limit ≥ 1 and window > 0, got "
                             f"{limit} per {window} s")
        self.limit = float(limit)
        self.rate = limit / window  # requests given back per second
        self.max_keys = max_keys
        self.clock = clock
        self._buckets: OrderedDict[Hashable, list[float]] = OrderedDict()
        self._lock = threading.Lock()

    def take(self, key: Hashable) -> float:
        """Count one request of `key`: 0 if allowed, else the seconds until it would be."""
        now = self.clock()
        with self._lock:
            bucket = self._buckets.get(key)
            if bucket is None:
                bucket = self._buckets[key] = [self.limit, now]
                if len(self._buckets) > self.max_keys:
                    self._buckets.popitem(last=False)
            else:
                self._buckets.move_to_end(key)
                bucket[0] = min(self.limit, bucket[0] + (now - bucket[1]) * self.rate)
                bucket[1] = now
            if bucket[0] >= 1.0:
                bucket[0] -= 1.0
                return 0.0
            return (1.0 - bucket[0]) / self.rate

    def __len__(self) -> int:
        return len(self._buckets)


class FeedLimits:
    """The feeds' two limits: per token (its SHA-256 prefix) and per client address.

    A limit of 0 is off. A request refused by its address is not counted against its
    token, so an address that sprays random tokens fills no token buckets.
    """

    def __init__(self, per_token: int, per_ip: int, window: float, *,
                 clock: Callable[[], float] = time.monotonic) -> None:
        self.per_token = TokenBucket(per_token, window, clock=clock) if per_token else None
        self.per_ip = TokenBucket(per_ip, window, clock=clock) if per_ip else None

    def retry_after(self, token: str, ip: str | None) -> int | None:
        """None if this request may go on, else the whole seconds to wait (≥ 1)."""
        if self.per_ip is not None:
            wait = self.per_ip.take(ip or "")
            if wait:
                return max(1, math.ceil(wait))
        if self.per_token is not None:
            wait = self.per_token.take(hashlib.sha256(token.encode()).digest()[:16])
            if wait:
                return max(1, math.ceil(wait))
        return None


def headers(retry_after: int) -> list[tuple[str, str]]:
    """The headers of a 429 answer."""
    return [("Content-Type", "text/plain; charset=utf-8"), ("Retry-After", str(retry_after)),
            ("Cache-Control", "no-store")]


#: Set in the WSGI environ by the feeds' fast path once it has counted a request, so
#: that Flask, when the fast path hands the request on, does not count it twice.
COUNTED = "bastion.feed_limit_counted"


def retry_after(app: Flask, token: str, ip: str | None) -> int | None:
    """Count one request of `token` from `ip` against `app`'s limits; seconds to wait if
    it is over one, else None."""
    limits: FeedLimits | None = app.extensions.get(EXTENSION_KEY)
    return None if limits is None else limits.retry_after(token, ip)


def refuse(token: str) -> Response | None:
    """429 (Retry-After, plain text) if this feed request is over a limit, else None."""
    if request.environ.get(COUNTED):
        return None
    wait = retry_after(current_app, token, request.remote_addr)
    if wait is None:
        return None
    return Response(TOO_MANY_BODY, status=429, headers=headers(wait))


def init_app(app: Flask) -> None:
    """Give the app its limits from `FEED_LIMIT_PER_TOKEN`, `…_PER_IP` and `…_WINDOW`."""
    per_token = app.config.get("FEED_LIMIT_PER_TOKEN", 0)
    per_ip = app.config.get("FEED_LIMIT_PER_IP", 0)
    window = app.config.get("FEED_LIMIT_WINDOW", 600)
    if per_token or per_ip:
        app.extensions[EXTENSION_KEY] = FeedLimits(per_token, per_ip, window)
