"""A lean chat transport for OpenAI-compatible servers (vLLM, SGLang, llama.cpp, Ollama's /v1, a proxy),
addressed with litellm's model strings: `openai/<model>` or `hosted_vllm/<model>` plus `api_base`.

Opt in with `[target] transport = "direct"`. One aiohttp session with keep-alive connections and no SDK
objects per request: on loopback it sends about three times as many requests per second as
`litellm.acompletion` (`benchmarks/throughput.py`). Failures are raised as exceptions named like litellm's,
so the model door retries, reports and never counts them exactly as it does litellm's.
"""

from __future__ import annotations

import asyncio
import json
import os
from collections.abc import Mapping
from types import SimpleNamespace
from typing import Any

import aiohttp  # this module is imported only when a target uses the direct transport

from guards.config.settings import direct_target
from guards.models.answers import MAX_ANSWER_CHARS

# the whole JSON body: the answer's cap plus room for the envelope (JSON escapes can double the text)
MAX_BODY_BYTES = 4 * MAX_ANSWER_CHARS + 65536

_CONTENT_POLICY = ("content_filter", "content_policy", "content management policy")


class ProviderError(Exception):
    """A failed request: the HTTP status (None when no response came back) and the response headers."""

    def __init__(self, message: str, status: int | None = None, headers: Mapping[str, str] | None = None) -> None:
        super().__init__(message)
        self.status = status
        self.headers = dict(headers or {})


# Named like litellm's exceptions: `guards.models.client` classifies errors by class name.
class BadRequestError(ProviderError): ...
class AuthenticationError(ProviderError): ...
class PermissionDeniedError(ProviderError): ...
class NotFoundError(ProviderError): ...
class UnprocessableEntityError(ProviderError): ...
class ContentPolicyViolationError(ProviderError): ...
class RateLimitError(ProviderError): ...
class InternalServerError(ProviderError): ...
class ServiceUnavailableError(ProviderError): ...
class APIConnectionError(ProviderError): ...
class Timeout(ProviderError): ...  # noqa: N818 - litellm's name
class APIError(ProviderError): ...
class ResponseTooLargeError(ProviderError): ...  # not retried: the same request gives the same body


_BY_STATUS: dict[int, type[ProviderError]] = {
    400: BadRequestError, 401: AuthenticationError, 403: PermissionDeniedError, 404: NotFoundError,
    422: UnprocessableEntityError, 429: RateLimitError, 503: ServiceUnavailableError,
}


def error_for(status: int, body: str, headers: Mapping[str, str]) -> ProviderError:
    """The exception for a non-2xx response, classified the way litellm classifies it."""
    kind = _BY_STATUS.get(status, InternalServerError if status >= 500 else APIError)
    if status == 400 and any(marker in body.lower() for marker in _CONTENT_POLICY):
        kind = ContentPolicyViolationError
    return kind(f"status {status}: {body[:300]}", status, headers)


def parse_body(text: str) -> Any:
    """The JSON response as nested attribute objects, read by `guards.models.answers.parse_answer` like litellm's
    (types are checked there: an integer content or a dict model is an error answer, not a crash)."""
    try:
        return json.loads(text, object_hook=lambda d: SimpleNamespace(**{str(k): v for k, v in d.items()}))
    except (ValueError, RecursionError) as exc:
        raise APIError(f"malformed response body ({len(text)} bytes): {str(exc)[:200]}") from None


async def read_capped(resp: aiohttp.ClientResponse, cap: int = MAX_BODY_BYTES) -> str:
    """The body as text, reading at most `cap` bytes: a larger body is an error, never buffered whole."""
    chunks, size = [], 0
    async for chunk in resp.content.iter_chunked(65536):
        size += len(chunk)
        if size > cap:
            raise ResponseTooLargeError(f"response body over the size cap ({cap} bytes)", resp.status)
        chunks.append(chunk)
    return b"".join(chunks).decode("utf-8", "replace")


class DirectChat:
    """POSTs chat completions to `{api_base}/chat/completions` over one keep-alive session per event loop."""

    def __init__(self, model: str, api_base: str | None, *, timeout_s: float) -> None:
        self.name, key_env = direct_target(model, api_base)
        self.url = f"{str(api_base).rstrip('/')}/chat/completions"
        self.timeout_s = timeout_s
        self._key_env = key_env
        self._session: aiohttp.ClientSession | None = None
        self._loop: asyncio.AbstractEventLoop | None = None

    def _headers(self) -> dict[str, str]:
        key = os.environ.get(self._key_env)  # read per session, never stored beyond the session's headers
        return {"Content-Type": "application/json", **({"Authorization": f"Bearer {key}"} if key else {})}

    def _open(self) -> aiohttp.ClientSession:
        loop = asyncio.get_running_loop()
        if self._session is None or self._loop is not loop or self._session.closed:
            connector = aiohttp.TCPConnector(limit=0, ttl_dns_cache=300)  # the door's limiter caps concurrency
            self._session = aiohttp.ClientSession(connector=connector, headers=self._headers(),
                                                  timeout=aiohttp.ClientTimeout(total=self.timeout_s))
            self._loop = loop
        return self._session

    async def complete(self, messages: list[dict[str, str]], params: Mapping[str, Any]) -> Any:
        """One chat completion; raises a ProviderError subclass on any failure."""
        body = json.dumps({**params, "model": self.name, "messages": messages, "stream": False})
        try:
            async with self._open().post(self.url, data=body) as resp:
                text = await read_capped(resp)
                if resp.status >= 300:
                    raise error_for(resp.status, text, resp.headers)
        except TimeoutError:
            raise Timeout(f"no answer within {self.timeout_s:g} s") from None
        except aiohttp.ClientError as exc:
            raise APIConnectionError(f"{type(exc).__name__}: {exc}") from None
        return parse_body(text)

    async def aclose(self) -> None:
        """Close the session (and its connections) of the running loop."""
        if self._session is not None and not self._session.closed:
            await self._session.close()
            await asyncio.sleep(0)  # let the connections' transports close within this loop
        self._session = None
