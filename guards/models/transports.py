"""How a request leaves the process: the Transport protocol and the shipped transports, chosen by name.

The model door (``ModelClient``) owns caching, retries, Retry-After, the limiter, the budget and error rules;
a transport only sends one chat request and returns the provider's response object (``choices[0].message``,
``finish_reason``, ``usage``, ``model``), or raises an exception named like litellm's (``RateLimitError``,
``Timeout``, ``APIConnectionError``, ...), which the door classifies by name. A new transport is one class here
(or in its own module) plus one line in ``TRANSPORTS``.
"""

from __future__ import annotations

import importlib
from collections.abc import Mapping
from contextvars import ContextVar
from typing import Any, Protocol

# The identity text of the request being sent (None for the baseline). The runner sets it around each request;
# transports that hand the identity to the application itself (`http`'s "{identity}", `python`'s `identity`
# argument) read it. It never changes a cache key: the messages already carry the identity.
ASKER: ContextVar[str | None] = ContextVar("guards_asker", default=None)


class Transport(Protocol):
    async def complete(self, messages: list[dict[str, Any]], params: Mapping[str, Any]) -> Any:
        """One chat completion (no retries: the door retries)."""
        ...

    async def aclose(self) -> None:
        """Release connections."""
        ...


class LitellmTransport:
    """`litellm.acompletion`: any provider litellm knows (imported at the first request: about 3 s)."""

    def __init__(self, model: str, api_base: str | None, *, timeout_s: float) -> None:
        self.model, self.api_base, self.timeout_s = model, api_base, timeout_s

    async def complete(self, messages: list[dict[str, Any]], params: Mapping[str, Any]) -> Any:
        import litellm  # noqa: PLC0415 - ~3 s import, paid once, only when a request is needed

        litellm.suppress_debug_info = True
        return await litellm.acompletion(model=self.model, messages=messages, api_base=self.api_base,
                                         timeout=self.timeout_s, num_retries=0, **params)

    async def aclose(self) -> None:
        return None


class LocalTransport(LitellmTransport):
    """In-process models (`local/...`): a litellm custom provider, registered at the first request."""

    async def complete(self, messages: list[dict[str, Any]], params: Mapping[str, Any]) -> Any:
        from guards.models.local import register  # noqa: PLC0415 - loads nothing heavy until a request

        register()
        return await super().complete(messages, params)


class RouterTransport:
    """A litellm Router over `[[target.deployments]]`: load balancing and fail-over between replicas or keys."""

    def __init__(self, router: Any, model: str) -> None:
        self.router, self.model = router, model

    async def complete(self, messages: list[dict[str, Any]], params: Mapping[str, Any]) -> Any:
        return await self.router.acompletion(model=self.model, messages=messages, **params)

    async def aclose(self) -> None:
        return None


# name -> "module:Class"; each is built with (model, api_base, timeout_s=...), plus target= for the app targets
TRANSPORTS = {
    "litellm": "guards.models.transports:LitellmTransport",
    "direct": "guards.models.direct:DirectChat",
    "http": "guards.models.http:HttpTarget",
    "python": "guards.models.python_target:PythonTarget",
}
TAKES_TARGET = ("http", "python")  # built from the `[target]` table (URL, body, function, ...)


def make_transport(name: str, model: str, api_base: str | None, *, timeout_s: float, router: Any = None,
                   target: Mapping[str, Any] | None = None) -> Transport:
    """The transport for a target: a Router when deployments are given, in-process for `local/` models, the
    `[target]` table for the http and python targets."""
    if router is not None:
        return RouterTransport(router, model)
    if name == "litellm" and model.startswith("local/"):
        return LocalTransport(model, api_base, timeout_s=timeout_s)
    module, _, cls = TRANSPORTS[name].partition(":")
    extra = {"target": dict(target or {})} if name in TAKES_TARGET else {}
    transport: Transport = getattr(importlib.import_module(module), cls)(model, api_base, timeout_s=timeout_s,
                                                                         **extra)
    return transport
