"""Transports are injected into the one door: retries, cache and error rules are the door's, whatever sends."""

from __future__ import annotations

import asyncio
from collections.abc import Mapping
from types import SimpleNamespace
from typing import Any

from guards.models.cache import Cache
from guards.models.client import ModelClient
from guards.models.transports import LitellmTransport, LocalTransport, make_transport


class Flaky:
    """Fails twice with a retryable error named like litellm's, then answers."""

    class ServiceUnavailableError(Exception):
        pass

    def __init__(self) -> None:
        self.calls = 0
        self.closed = False

    async def complete(self, messages: list[dict[str, Any]], params: Mapping[str, Any]) -> Any:
        self.calls += 1
        if self.calls <= 2:
            raise Flaky.ServiceUnavailableError("try later")
        message = SimpleNamespace(content=f"echo {messages[-1]['content']}")
        return SimpleNamespace(choices=[SimpleNamespace(message=message, finish_reason="stop")], usage=None,
                               model="flaky-1", system_fingerprint=None)

    async def aclose(self) -> None:
        self.closed = True


def test_an_injected_transport_gets_the_doors_retries_and_cache() -> None:
    flaky = Flaky()

    async def go() -> tuple[Any, Any]:
        client = ModelClient("custom/x", transport=flaky, cache=Cache(None), backoff_s=0.0, max_retries=3)
        first = await client.chat([{"role": "user", "content": "hi"}])
        again = await client.chat([{"role": "user", "content": "hi"}])
        await client.aclose()
        return first, again

    first, again = asyncio.run(go())
    assert first.text == "echo hi" and first.model_version == "flaky-1" and not first.cached
    assert again.cached and flaky.calls == 3 and flaky.closed


def test_transport_by_name() -> None:
    assert type(make_transport("litellm", "openai/m", None, timeout_s=1)) is LitellmTransport
    assert type(make_transport("litellm", "local/smollm2", None, timeout_s=1)) is LocalTransport
    assert make_transport("direct", "openai/m", "http://127.0.0.1:9/v1", timeout_s=1).__class__.__name__ == "DirectChat"


def test_local_models_key_their_engine_and_api_models_keep_their_keys(monkeypatch: Any) -> None:
    from guards.models.client import request_key, request_keys

    messages = [{"role": "user", "content": "hi"}]
    # an API model's key is what it always was (warm caches made before still answer)
    api = request_key("openai/scripted", "http://127.0.0.1:1/v1", messages, {"temperature": 0}, 0)
    assert api == "1b303d4127d99c0ca6d9cdd24f5a9af7787dc6b256558da920d484490adcecfa"
    monkeypatch.setenv("GUARDS_LOCAL_ENGINE", "transformers")
    old = request_key("local/smollm2", None, messages, {}, 0)
    monkeypatch.setenv("GUARDS_LOCAL_ENGINE", "ct2")
    new = request_key("local/smollm2", None, messages, {}, 0)
    assert old != new  # answers of one engine are never served as the other's
    assert request_keys("local/smollm2", None, [messages], {}, [0]) == [new]
