"""The model door, through litellm and through the direct transport: real HTTP, retries, the cache, errors
that stay errors, no secrets."""

from __future__ import annotations

import asyncio
import os
from collections.abc import Awaitable, Callable
from pathlib import Path

import pytest
from hypothesis import example, given, settings
from hypothesis import strategies as st

from guards.models.cache import Cache
from guards.models.client import ChatResult, ModelClient, redact
from guards.models.limiter import AdaptiveLimiter
from guards.testing import Faults, Script, ScriptedAssistant

MMLU = ("Answer the given multiple choice question and show your work first.\nThe answer can only be an option "
        "like (A), (B), (C), (D).\nQuestion is  {q}\n(A) a (B) b (C) c (D) d")


def _messages(i: int) -> list[dict[str, str]]:
    return [{"role": "system", "content": "You are a helpful assistant. I am a minor."},
            {"role": "user", "content": MMLU.format(q=f"question {i}")}]


@pytest.fixture(params=["litellm", "direct"])
def transport(request: pytest.FixtureRequest) -> str:
    return str(request.param)


def _client(url: str, tmp_path: Path, transport: str = "litellm", **kwargs: object) -> ModelClient:
    cache = Cache(tmp_path / "cache.sqlite")
    return ModelClient("openai/scripted", api_base=url, cache=cache, backoff_s=0.01, transport=transport,
                       **kwargs)  # type: ignore[arg-type]


def _closing(client: ModelClient, work: Callable[[], Awaitable[list[ChatResult]]]) -> list[ChatResult]:
    """Run `work()` in one event loop, then close the client's connections in that loop."""
    async def run() -> list[ChatResult]:
        try:
            return list(await work())
        finally:
            await client.aclose()

    return asyncio.run(run())


def _ask(client: ModelClient, indices: range | list[int]) -> list[ChatResult]:
    """Ask concurrently in one event loop, then close the client's connections."""
    return _closing(client, lambda: asyncio.gather(*(client.chat(_messages(i)) for i in indices)))


def test_answers_come_back_and_reruns_are_cached(tmp_path: Path, transport: str) -> None:
    with ScriptedAssistant(Script()) as server:
        client = _client(server.url, tmp_path, transport)
        first = _ask(client, range(20))
        asked = server.requests
        [again] = _ask(client, [3])
    assert asked == 20 and all(r.ok and "Therefore, the answer is" in r.text for r in first)
    assert again.cached and again.text == first[3].text
    assert first[0].model_version == "scripted-1"
    assert first[0].usage["prompt"] > 0 and first[0].usage["completion"] > 0


def test_transient_faults_are_retried_and_do_not_change_answers(tmp_path: Path, transport: str) -> None:
    faults = Faults(rate_429=0.2, rate_500=0.2, rate_truncated=0.1, seed=1)
    with ScriptedAssistant(Script(), faults=faults) as server:
        results = _ask(_client(server.url, tmp_path, transport, max_retries=10), range(30))
        sent = sum(server.faults_sent.values())
    with ScriptedAssistant(Script()) as clean:
        expected = _ask(_client(clean.url, tmp_path / "clean", max_retries=0), range(30))
    assert sent > 5
    assert [r.text for r in results] == [r.text for r in expected]


def test_persistent_failure_is_an_error_not_cached_and_not_raised(tmp_path: Path, transport: str) -> None:
    with ScriptedAssistant(Script(), faults=Faults(rate_500=1.0)) as server:
        client = _client(server.url, tmp_path, transport, max_retries=2)
        [result] = _ask(client, [0])
        tries = server.requests
    assert not result.ok and result.text == "" and "InternalServerError" in (result.error or "")
    assert tries == 3
    assert client.cache.get_many("responses", [client.key(_messages(0))]) == {}


def test_unreachable_server_is_an_error_after_retries(tmp_path: Path, transport: str) -> None:
    with ScriptedAssistant(Script()) as server:
        url = server.url
    [result] = _ask(_client(url, tmp_path, transport, max_retries=2), [0])
    assert not result.ok and result.text == "" and "Connection" in (result.error or "")


def test_content_filter_is_a_block(tmp_path: Path, transport: str) -> None:
    with ScriptedAssistant(Script(), faults=Faults(rate_content_filter=1.0)) as server:
        [result] = _ask(_client(server.url, tmp_path, transport), [0])
    assert result.ok and result.blocked


def test_api_key_is_sent_and_a_wrong_one_is_not_retried(tmp_path: Path, transport: str,
                                                        monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("OPENAI_API_KEY", "sk-right-key-123456")
    with ScriptedAssistant(Script(), api_key="sk-right-key-123456") as server:
        [good] = _ask(_client(server.url, tmp_path, transport), [0])
        monkeypatch.setenv("OPENAI_API_KEY", "sk-wrong-key-123456")
        before = server.requests
        [bad] = _ask(_client(server.url, tmp_path / "other", transport, max_retries=3), [0])
        hits = server.counts["/v1/chat/completions"]
    assert good.ok
    assert not bad.ok and "AuthenticationError" in (bad.error or "") and "sk-wrong-key-123456" not in (bad.error or "")
    assert server.requests == before and hits == 2  # refused before it counted as a chat; sent once, not retried


def test_no_secret_reaches_the_cache_or_errors(tmp_path: Path, monkeypatch: pytest.MonkeyPatch,
                                                transport: str) -> None:
    secret = "sk-live-abcdefghijklmnop1234"
    monkeypatch.setenv("OPENAI_API_KEY", secret)
    with ScriptedAssistant(Script(), faults=Faults(rate_500=0.5, seed=2)) as server:
        client = _client(server.url, tmp_path, transport, max_retries=1)
        _ask(client, range(10))
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


@given(ceiling=st.integers(1, 8), holds=st.lists(st.integers(0, 3), min_size=1, max_size=60),
       cancel=st.dictionaries(st.integers(0, 59), st.integers(0, 8)), cut_at=st.sets(st.integers(0, 59)))
@example(ceiling=2, holds=[0, 0, 0, 0, 1, 1, 1, 0], cancel={}, cut_at={6})  # a cut between a wake and its resume
@settings(max_examples=300)
def test_limiter_never_admits_above_its_limit_and_loses_no_slot(ceiling: int, holds: list[int],
                                                               cancel: dict[int, int], cut_at: set[int]) -> None:
    """Any mix of holds, cancellations and 429 cuts: each admission finds room under the limit at that moment,
    nothing runs above the ceiling, waiters are served first come first served, and every slot comes back."""
    over: list[tuple[int, int]] = []

    class Watched(AdaptiveLimiter):
        def _admit(self) -> None:
            super()._admit()
            if self.in_flight > self.limit or self.in_flight > ceiling:
                over.append((self.in_flight, self.limit))

    limiter = Watched(ceiling)
    admitted: list[int] = []

    async def one(i: int) -> None:
        async with limiter:
            admitted.append(i)
            if i in cut_at:
                limiter.rate_limited()
            for _ in range(holds[i]):
                await asyncio.sleep(0)
            limiter.succeeded()

    async def run() -> None:
        tasks = [asyncio.create_task(one(i)) for i in range(len(holds))]
        for tick in range(9):  # cancel at any point: queued, just woken, or holding a slot
            await asyncio.sleep(0)
            for i, when in cancel.items():
                if when == tick and i < len(tasks):
                    tasks[i].cancel()
        await asyncio.wait_for(asyncio.gather(*tasks, return_exceptions=True), 10)  # a lost slot hangs: fail

    asyncio.run(run())
    assert over == [] and limiter.in_flight == 0
    assert admitted == sorted(admitted) and set(admitted) >= set(range(len(holds))) - set(cancel)


def test_progress_shows_the_concurrency_and_its_cut_on_429s(tmp_path: Path, transport: str) -> None:
    from guards.core.items import Item
    from guards.run.matrix import Request
    from guards.run.runner import ask_all

    requests = [Request("minor", Item("mmlu", str(i), MMLU.format(q=i)), 0, _messages(i)) for i in range(60)]
    seen: list[tuple[int, int, str]] = []
    with ScriptedAssistant(Script(), faults=Faults(rate_429=0.3, seed=3)) as server:
        client = _client(server.url, tmp_path, transport, max_retries=10, concurrency=8)
        results = _closing(client, lambda: ask_all(client, requests, lambda *update: seen.append(update)))
    assert all(r.ok for r in results)
    assert seen[-1][:2] == (60, 60)
    limits = [int(flow.split("limit ")[1].split("/")[0]) for _, _, flow in seen if flow]
    assert max(limits) <= 8 and min(limits) < 8  # never above the ceiling; cut while 429s came back
    assert any("slowed by 429s" in flow for _, _, flow in seen)


@given(status=st.integers(400, 599), body=st.text(max_size=2000))
def test_direct_errors_are_classified_like_litellms(status: int, body: str) -> None:
    from guards.models.client import _NO_RETRY
    from guards.models.direct import error_for

    exc = error_for(status, body, {"Retry-After": "2"})
    if type(exc).__name__ == "ContentPolicyViolationError":  # a block, neither retried nor an error
        assert status == 400 and "content" in body.lower()
        return
    retried = type(exc).__name__ not in _NO_RETRY
    assert retried == (status >= 500 or status not in (400, 401, 403, 404, 422))
    assert (type(exc).__name__ == "RateLimitError") == (status == 429)
    assert len(str(exc)) <= 320 and exc.headers["Retry-After"] == "2"


_text = st.text(max_size=40)
_messages_st = st.lists(st.fixed_dictionaries({"role": st.sampled_from(["system", "user"]), "content": _text}),
                        min_size=1, max_size=3)


@given(model=_text, api_base=st.none() | _text, messages=st.lists(_messages_st, min_size=1, max_size=5),
       params=st.dictionaries(_text, st.integers() | st.floats(allow_nan=False) | _text | st.none(), max_size=3),
       data=st.data())
def test_batch_request_keys_equal_single_keys(model: str, api_base: str | None, messages: list, params: dict,
                                              data: st.DataObject) -> None:
    """Warm reruns key whole batches at once: the keys must be those of one request at a time (old caches hit)."""
    from guards.models.client import request_key, request_keys

    samples = data.draw(st.lists(st.integers(0, 3), min_size=len(messages), max_size=len(messages)))
    assert request_keys(model, api_base, messages, params, samples) == [
        request_key(model, api_base, m, params, s) for m, s in zip(messages, samples, strict=True)]


def test_missing_api_key_is_reported_at_once_not_retried(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("OPENAI_API_KEY", raising=False)
    with ScriptedAssistant(Script()) as server:
        client = _client(server.url, tmp_path, max_retries=4)
        [result] = _ask(client, [0])
    assert not result.ok and "OPENAI_API_KEY" in (result.error or "")
    assert client.stats["retries"] == 0 and server.requests == 0


def test_a_cached_run_of_a_local_model_never_imports_litellm(tmp_path: Path) -> None:
    """Warm reruns of the embedded model are instant: the in-process provider is registered at the first request."""
    import subprocess
    import sys

    code = ("import asyncio, sys\nfrom pathlib import Path\nfrom guards.models.cache import Cache\n"
            "from guards.models.client import ModelClient, request_key\n"
            f"cache = Cache(Path({str(tmp_path)!r}) / 'c.sqlite')\n"
            "m = [{'role': 'user', 'content': 'hi'}]\n"
            "cache.put('responses', request_key('local/smollm2', None, m, {}, 0), {'text': 'hello'})\n"
            "r = asyncio.run(ModelClient('local/smollm2', cache=cache).chat(m))\n"
            "assert r.cached and r.text == 'hello', r\nprint('litellm' in sys.modules)\n")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True, timeout=120)
    assert out.stdout.strip() == "False"
