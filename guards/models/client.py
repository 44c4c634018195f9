"""The one door to models: async chat over an injected transport (litellm by default; see
``guards.models.transports``) with concurrency, retries, a cache, a budget, and no secrets."""

from __future__ import annotations

import asyncio
import functools
import hashlib
import os
import random
import re
import time
from collections import Counter
from dataclasses import asdict, dataclass, field
from typing import Any

from guards.models.answers import parse_answer
from guards.models.cache import Cache, CachePolicy, canonical, stable_key
from guards.models.limiter import AdaptiveLimiter
from guards.models.transports import Transport, make_transport

os.environ.setdefault("LITELLM_LOCAL_MODEL_COST_MAP", "True")

FLUSH_EVERY = 32
_SECRET_NAME = re.compile(r"(KEY|TOKEN|SECRET|PASSWORD)", re.IGNORECASE)
# failures that say the endpoint is down or hanging (not a bad request): the circuit breaker counts these
_UNREACHABLE = ("APIConnectionError", "Timeout", "TimeoutError", "ConnectError", "ConnectTimeout", "ReadTimeout",
                "ClientConnectorError", "ServerDisconnectedError", "ConnectionRefusedError", "ConnectionError")
# litellm reports a refused connection as "InternalServerError: ... Connection error."
_DOWN_TEXT = re.compile(r"connection (error|refused|reset|aborted)|timed out|timeout", re.IGNORECASE)
BREAKER_AFTER = 16  # consecutive unreachable attempts (any success resets) that end the run
_NO_RETRY = ("ResponseTooLargeError",
             "AuthenticationError", "NotFoundError", "PermissionDeniedError", "ContextWindowExceededError",
             "UnsupportedParamsError", "BadRequestError", "UnprocessableEntityError")


@dataclass(frozen=True, slots=True)
class ChatResult:
    """One answer, or the error that stopped it. An error is never a refusal, a pass or a zero."""

    text: str = ""
    finish_reason: str | None = None
    error: str | None = None
    blocked: bool = False
    model_version: str | None = None
    usage: dict[str, int] = field(default_factory=dict)
    cached: bool = False

    @property
    def ok(self) -> bool:
        return self.error is None


def redact(text: str) -> str:
    """`text` with the value of every secret-looking environment variable replaced by `***`."""
    for name, value in os.environ.items():
        if value and len(value) >= 8 and _SECRET_NAME.search(name):
            text = text.replace(value, "***")
    return re.sub(r"\b(sk-[A-Za-z0-9_\-]{6})[A-Za-z0-9_\-]+", r"\1***", text)


def key_model(model: str) -> str:
    """The model as request keys name it: in-process models carry their engine and its version, so switching
    engine (or upgrading it) never serves the old engine's cached answers; other model strings are as given."""
    if not model.startswith("local/"):
        return model
    return _local_key_model(model, os.environ.get("GUARDS_LOCAL_ENGINE", ""))


@functools.lru_cache(maxsize=32)
def _local_key_model(model: str, engine_choice: str) -> str:
    """`engine_choice` (GUARDS_LOCAL_ENGINE) is read by engine_label itself; it is an argument so the memo is
    keyed by it too."""
    from guards.models.local import engine_label  # noqa: PLC0415 - loads no model

    return f"{model}@{engine_label(model)}"


def request_key(model: str, api_base: str | None, messages: list[dict[str, str]], params: dict[str, Any],
                sample: int) -> str:
    """The cache key: everything that changes an answer, and nothing secret."""
    return stable_key("chat/1", key_model(model), api_base or "", messages, params, sample)


def request_keys(model: str, api_base: str | None, messages: list[list[dict[str, str]]], params: dict[str, Any],
                 samples: list[int]) -> list[str]:
    """`request_key` of many requests, byte for byte, with the parts they share encoded once (warm reruns)."""
    head = canonical(["chat/1", key_model(model), api_base or ""])[:-1] + ","
    tails = {s: "," + canonical([params, s])[1:] for s in set(samples)}
    return [hashlib.sha256(f"{head}{canonical(m)}{tails[s]}".encode()).hexdigest()
            for m, s in zip(messages, samples, strict=True)]


class ModelClient:
    """Chats with one litellm model string. Safe to share across tasks of one event loop."""

    def __init__(
        self,
        model: str,
        *,
        api_base: str | None = None,
        params: dict[str, Any] | None = None,
        concurrency: int = 32,
        max_retries: int = 4,
        timeout_s: float = 120.0,
        cache: Cache | None = None,
        cache_policy: CachePolicy = "use",
        backoff_s: float = 0.5,
        router: Any | None = None,
        budget_usd: float | None = None,
        transport: str | Transport = "litellm",
        breaker_after: int = BREAKER_AFTER,
        deadline_s: float | None = None,
    ) -> None:
        self.model = model
        self.api_base = api_base
        self.params = dict(params or {})
        self.limiter = AdaptiveLimiter(concurrency)
        self.max_retries = max_retries
        self.timeout_s = timeout_s
        self.cache = cache or Cache(None)
        if cache_policy != "use" and self.cache.policy == "use":
            self.cache.policy = cache_policy
        self.backoff_s = backoff_s
        self.stats = {"requests": 0, "retries": 0, "errors": 0, "cached": 0}
        self._pending: dict[str, dict[str, Any]] = {}  # answers not yet written: flushed in batches
        self.budget_usd = budget_usd
        self.spent_usd = 0.0
        if model.startswith("local/"):
            self.timeout_s = max(timeout_s, 3600.0)  # queued behind a batch on a CPU: slow, not failed
        # circuit breaker and run deadline: once `broken` is set no request is sent (each answer is an error)
        self.breaker_after = breaker_after
        self.deadline = None if deadline_s is None else time.monotonic() + deadline_s
        self.deadline_s = deadline_s
        self.broken: str | None = None
        self.answered = 0  # requests that got an answer from the endpoint (not the cache)
        self._down_in_a_row = 0
        self.error_counts: Counter[str] = Counter()  # distinct final errors -> how many requests ended with each
        self.transport: Transport = (transport if not isinstance(transport, str) else
                                     make_transport(transport, model, api_base, timeout_s=self.timeout_s,
                                                    router=router))

    def key(self, messages: list[dict[str, str]], sample: int = 0, **params: Any) -> str:
        return request_key(self.model, self.api_base, messages, {**self.params, **params}, sample)

    def keys(self, messages: list[list[dict[str, str]]], samples: list[int]) -> list[str]:
        """`key` of many requests at once (the client's own params)."""
        return request_keys(self.model, self.api_base, messages, self.params, samples)

    def cached(self, keys: list[str]) -> dict[str, ChatResult]:
        """Cached answers for those keys present (one read for the whole batch)."""
        return {k: ChatResult(**{**v, "cached": True}) for k, v in self.cache.get_many("responses", keys).items()}

    async def chat(self, messages: list[dict[str, str]], *, sample: int = 0, key: str | None = None,
                   **params: Any) -> ChatResult:
        """Ask once (from the cache when allowed); retry transient failures; never raise.

        `key`: the request's key from `keys`, when the caller has already read the cache for a whole batch;
        then there is no cache read here (and no `params` beyond the client's).
        """
        merged = {**self.params, **params}
        hit = None
        if key is None:
            key = request_key(self.model, self.api_base, messages, merged, sample)
            hit = self._pending.get(key)
            if hit is None and self.cache.reads:
                hit = self.cache.get("responses", key)
        if hit is not None:
            self.stats["cached"] += 1
            return ChatResult(**{**hit, "cached": True})
        result = await self._ask(messages, merged)
        if result.ok:
            self._pending[key] = {k: v for k, v in asdict(result).items() if k != "cached"}
            if len(self._pending) >= FLUSH_EVERY:
                self.flush()
        return result

    def flush(self) -> None:
        """Write buffered answers in one transaction (a crash loses at most FLUSH_EVERY answers)."""
        if self._pending:
            rows, self._pending = self._pending, {}
            self.cache.put_many("responses", rows)

    async def _ask(self, messages: list[dict[str, str]], params: dict[str, Any]) -> ChatResult:
        result = await self._attempts(messages, params)
        if result.error is not None:
            self.error_counts[result.error[:200]] += 1
        return result

    def _stop_reason(self) -> str | None:
        """Why no further request may be sent: the breaker tripped or the run deadline passed."""
        if self.broken is None and self.deadline is not None and time.monotonic() >= self.deadline:
            self.broken = f"run deadline_s {self.deadline_s:g} s passed"
        return self.broken

    def _unreachable(self, kind: str, message: str) -> None:
        """Count a connection failure or timeout; `breaker_after` in a row trips the breaker."""
        if kind not in _UNREACHABLE and not _DOWN_TEXT.search(message):
            self._down_in_a_row = 0
            return
        self._down_in_a_row += 1
        if self.broken is None and self._down_in_a_row >= self.breaker_after:
            state = "before any answer" if self.answered == 0 else f"after {self.answered} answers"
            self.broken = (f"endpoint unreachable ({self._down_in_a_row} connection failures or timeouts in a row "
                           f"{state}): {message}")

    async def _attempts(self, messages: list[dict[str, str]], params: dict[str, Any]) -> ChatResult:
        if self.budget_usd is not None and self.spent_usd >= self.budget_usd:
            self.stats["errors"] += 1
            return ChatResult(error=f"budget_usd {self.budget_usd:.2f} spent: not sent (answers so far are cached)")
        last = "no attempt"
        for attempt in range(self.max_retries + 1):
            wait = 0.0
            async with self.limiter:
                stop = self._stop_reason()
                if stop is not None:
                    self.stats["errors"] += 1
                    # the reason is recorded once (record.aborted); repeating it per item floods the summary
                    return ChatResult(error="not sent: the run stopped asking (record.aborted says why)")
                self.stats["requests"] += 1
                try:
                    left = None if self.deadline is None else max(0.0, self.deadline - time.monotonic())
                    response = await asyncio.wait_for(self.transport.complete(messages, params), left)
                except Exception as exc:  # noqa: BLE001 - every provider error is classified below
                    kind = type(exc).__name__
                    last = redact(f"{kind}: {exc}")[:500]
                    self._unreachable(kind, last)
                    if self._stop_reason() is not None:
                        break
                    if kind == "ContentPolicyViolationError":
                        return ChatResult(text="", finish_reason="content_filter", blocked=True)
                    if kind in _NO_RETRY or "Missing credentials" in last:  # litellm's 500 for an unset key
                        break
                    if kind == "RateLimitError":
                        self.limiter.rate_limited()
                    wait = _retry_after(exc) or self.backoff_s * (2**attempt) * random.uniform(0.5, 1.0)
                else:
                    self.limiter.succeeded()
                    self._down_in_a_row = 0
                    self.answered += 1
                    parsed = _parse(response)
                    if parsed is not None:
                        self._charge(parsed)
                        if parsed.error is not None:
                            self.stats["errors"] += 1
                        return parsed
                    last = "malformed response: no choices"
                    wait = self.backoff_s * (2**attempt)
            if attempt < self.max_retries:
                self.stats["retries"] += 1
                await asyncio.sleep(min(wait, 60.0))
        self.stats["errors"] += 1
        return ChatResult(error=last)

    def _charge(self, result: ChatResult) -> None:
        """Add a response's price (litellm's table) to the running total that `budget_usd` caps."""
        if self.budget_usd is None:
            return
        from guards.models.pricing import price

        cost = price(self.model, result.usage.get("prompt", 0), result.usage.get("completion", 0))
        self.spent_usd += cost or 0.0

    async def aclose(self) -> None:
        """Close the transport's connections."""
        await self.transport.aclose()


def _parse(response: Any) -> ChatResult | None:
    """The one reading of a response (`guards.models.answers`): text, blocked or an error answer; None for a
    malformed envelope worth asking again."""
    answer = parse_answer(response)
    if answer.retry:
        return None
    return ChatResult(text=answer.text, finish_reason=answer.finish_reason, error=answer.error,
                      blocked=answer.blocked, model_version=answer.model_version, usage=answer.usage)


def _retry_after(exc: Exception) -> float | None:
    """Seconds the provider asked us to wait (Retry-After header), if any."""
    for headers in (getattr(exc, "headers", None), getattr(getattr(exc, "response", None), "headers", None)):
        if headers:
            value = headers.get("retry-after") or headers.get("Retry-After")
            try:
                return float(value) if value is not None else None
            except ValueError:
                return None
    return None
