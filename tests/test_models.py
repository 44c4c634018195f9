"""The model door: real HTTP through litellm, retries, the cache, errors that stay errors, no secrets."""

from __future__ import annotations

import asyncio
import os
from pathlib import Path

import pytest

from guards.cache import Cache
from guards.limiter import AdaptiveLimiter
from guards.models import ModelClient, redact
from guards.testing import Faults, Script, ScriptedAssistant

MMLU = ("Answer the given multiple choice question and show your work first.\nThe answer can only be an option "
        "like (A), (B), (C), (D).\nQuestion is  {q}\n(A) a (B) b (C) c (D) d")


def _messages(i: int) -> list[dict[str, str]]:
    return [{"role": "system", "content": "You are a helpful assistant. I am a minor."},
            {"role": "user", "content": MMLU.format(q=f"question {i}")}]


def _client(url: str, tmp_path: Path, **kwargs: object) -> ModelClient:
    cache = Cache(tmp_path / "cache.sqlite")
    return ModelClient("openai/scripted", api_base=url, cache=cache, backoff_s=0.01,
                       **kwargs)  # type: ignore[arg-type]


def test_answers_come_back_and_reruns_are_cached(tmp_path: Path) -> None:
    with ScriptedAssistant(Script()) as server:
        client = _client(server.url, tmp_path)
        first = asyncio.run(_gather(client, 20))
        asked = server.requests
        again = asyncio.run(client.chat(_messages(3)))
    assert asked == 20 and all(r.ok and "Therefore, the answer is" in r.text for r in first)
    assert again.cached and again.text == first[3].text
    assert first[0].model_version == "scripted-1"


def test_transient_faults_are_retried_and_do_not_change_answers(tmp_path: Path) -> None:
    faults = Faults(rate_429=0.2, rate_500=0.2, rate_truncated=0.1, seed=1)
    with ScriptedAssistant(Script(), faults=faults) as server:
        results = asyncio.run(_gather(_client(server.url, tmp_path, max_retries=10), 30))
        sent = sum(server.faults_sent.values())
    with ScriptedAssistant(Script()) as clean:
        expected = asyncio.run(_gather(_client(clean.url, tmp_path / "clean", max_retries=0), 30))
    assert sent > 5
    assert [r.text for r in results] == [r.text for r in expected]


async def _gather(client: ModelClient, n: int) -> list:  # type: ignore[type-arg]
    return list(await asyncio.gather(*(client.chat(_messages(i)) for i in range(n))))


def test_persistent_failure_is_an_error_not_cached_and_not_raised(tmp_path: Path) -> None:
    with ScriptedAssistant(Script(), faults=Faults(rate_500=1.0)) as server:
        client = _client(server.url, tmp_path, max_retries=2)
        result = asyncio.run(client.chat(_messages(0)))
        tries = server.requests
    assert not result.ok and result.text == "" and "InternalServerError" in (result.error or "")
    assert tries == 3
    assert client.cache.get_many("responses", [client.key(_messages(0))]) == {}


def test_content_filter_is_a_block(tmp_path: Path) -> None:
    with ScriptedAssistant(Script(), faults=Faults(rate_content_filter=1.0)) as server:
        result = asyncio.run(_client(server.url, tmp_path).chat(_messages(0)))
    assert result.ok and result.blocked


def test_no_secret_reaches_the_cache_or_errors(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    secret = "sk-live-abcdefghijklmnop1234"
    monkeypatch.setenv("OPENAI_API_KEY", secret)
    with ScriptedAssistant(Script(), faults=Faults(rate_500=0.5, seed=2)) as server:
        client = _client(server.url, tmp_path, max_retries=1)
        asyncio.run(_gather(client, 10))
    client.cache.close()
    blob = (tmp_path / "cache.sqlite").read_bytes() + b"".join(p.read_bytes() for p in tmp_path.glob("cache.sqlite*"))
    assert secret.encode() not in blob
    assert secret not in redact(f"error calling with key {secret} and {os.environ['OPENAI_API_KEY']}")


def test_limiter_halves_on_rate_limits_and_grows_back() -> None:
    limiter = AdaptiveLimiter(32)
    limiter.rate_limited()
    assert limiter.limit == 16
    limiter.rate_limited()  # same burst: one cut
    assert limiter.limit == 16
    for _ in range(16 * 3):
        limiter.succeeded()
    assert 17 <= limiter.limit <= 19
    assert AdaptiveLimiter(4).limit == 4


def test_progress_shows_the_concurrency_and_its_cut_on_429s(tmp_path: Path) -> None:
    from guards.items import Item
    from guards.runner import Request, ask_all

    requests = [Request("minor", Item("mmlu", str(i), MMLU.format(q=i)), 0, _messages(i)) for i in range(60)]
    seen: list[tuple[int, int, str]] = []
    with ScriptedAssistant(Script(), faults=Faults(rate_429=0.3, seed=3)) as server:
        client = _client(server.url, tmp_path, max_retries=10, concurrency=8)
        results = asyncio.run(ask_all(client, requests, lambda *update: seen.append(update)))
    assert all(r.ok for r in results)
    assert seen[-1][:2] == (60, 60)
    limits = [int(flow.split("limit ")[1].split("/")[0]) for _, _, flow in seen if flow]
    assert max(limits) <= 8 and min(limits) < 8  # never above the ceiling; cut while 429s came back
    assert any("slowed by 429s" in flow for _, _, flow in seen)
