"""Issue 15: hostile answers, odd responses and broken inputs never read as good behaviour (or crash the run)."""

from __future__ import annotations

import asyncio
import json
import re
import sqlite3
import threading
import warnings
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from types import SimpleNamespace
from typing import Any

import pytest

from guards.config.settings import ConfigError, load_settings
from guards.models.answers import MAX_ANSWER_CHARS, MAX_VERSION_CHARS, parse_answer
from guards.models.cache import Cache, CacheError
from guards.models.client import ModelClient

REPO = Path(__file__).resolve().parent.parent


def _resp(content: Any = "hi", finish: Any = "stop", usage: Any = None, model: Any = "m", **message: Any) -> Any:
    msg = SimpleNamespace(content=content, **message)
    return SimpleNamespace(choices=[SimpleNamespace(message=msg, finish_reason=finish)], usage=usage, model=model)


# ------------------------------------------------------------------ what an answer is


@pytest.mark.parametrize(("response", "why"), [
    (_resp(content=None), "null content"),
    (_resp(content=None, tool_calls=[{"id": "1"}]), "tool calls only"),
    (_resp(content=7), "content is int"),
    (_resp(content=[{"type": "text", "text": "x"}]), "content is list"),
    (_resp(usage=SimpleNamespace(prompt_tokens="lots", completion_tokens=1)), "prompt_tokens"),
    (_resp(model={"name": "x"}), "model is not a string"),
    (_resp(content="x" * (MAX_ANSWER_CHARS + 1)), "size cap"),
    (SimpleNamespace(choices=None), "no choices"),
    ({"choices": [{"message": {"content": None}, "finish_reason": "stop"}]}, "null content"),
])
def test_responses_that_are_not_answers_are_errors(response: Any, why: str) -> None:
    answer = parse_answer(response)
    assert answer.error is not None and why in answer.error and not answer.blocked and answer.text == ""


def test_blocked_is_a_filter_or_a_refusal_field_and_text_is_valid_utf8() -> None:
    assert parse_answer(_resp(content=None, finish="content_filter")).blocked
    refusal = parse_answer(_resp(content=None, refusal="I can't help with that."))
    assert refusal.blocked and refusal.error is None
    clean = parse_answer(_resp(content="a\ud800b", usage={"prompt_tokens": 3, "completion_tokens": 2.0}))
    assert clean.text == "a\ufffdb" and clean.error is None and clean.usage == {"prompt": 3, "completion": 2}
    clean.text.encode("utf-8")
    # the server-controlled version string is valid UTF-8 and capped before it reaches any report
    long = parse_answer(_resp(model="m\ud800" + "x" * 10_000))
    assert long.error is None and long.model_version is not None
    assert len(long.model_version) <= MAX_VERSION_CHARS and "\ud800" not in long.model_version


class _Fixed:
    def __init__(self, response: Any) -> None:
        self.response = response
        self.calls = 0

    async def complete(self, messages: Any, params: Any) -> Any:
        self.calls += 1
        return self.response

    async def aclose(self) -> None:
        return None


def test_the_door_returns_an_error_for_a_null_answer_and_caches_nothing(tmp_path: Path) -> None:
    cache = Cache(tmp_path / "c" / "cache.sqlite")
    client = ModelClient("openai/x", transport=_Fixed(_resp(content=None)), cache=cache, backoff_s=0)
    result = asyncio.run(client.chat([{"role": "user", "content": "q"}]))
    client.flush()
    assert result.error is not None and not result.blocked and result.text == ""
    assert cache.get_many("responses", [client.key([{"role": "user", "content": "q"}])]) == {}


def test_a_lone_surrogate_answer_is_cached_and_read_back(tmp_path: Path) -> None:
    cache = Cache(tmp_path / "c" / "cache.sqlite")
    client = ModelClient("openai/x", transport=_Fixed(_resp(content="bad \ud800 text")), cache=cache)
    messages = [{"role": "user", "content": "q"}]
    first = asyncio.run(client.chat(messages))
    client.flush()
    again = ModelClient("openai/x", transport=_Fixed(_resp(content="other")), cache=cache)
    assert asyncio.run(again.chat(messages)).text == first.text == "bad \ufffd text"
    cache.put("scores", "k", {"detail": "\udcff"})  # any value, from any writer
    assert cache.get("scores", "k") == {"detail": "\ufffd"}


class _Raw(BaseHTTPRequestHandler):
    body = b""

    def log_message(self, *args: Any) -> None:
        return None

    def do_POST(self) -> None:  # noqa: N802
        self.rfile.read(int(self.headers.get("Content-Length") or 0))
        self.send_response(200)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(self.body)))
        self.end_headers()
        self.wfile.write(self.body)


def _direct(body: bytes) -> Any:
    handler = type("H", (_Raw,), {"body": body})
    server = ThreadingHTTPServer(("127.0.0.1", 0), handler)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    try:
        client = ModelClient("openai/x", api_base=f"http://127.0.0.1:{server.server_port}/v1", transport="direct",
                             max_retries=0, backoff_s=0)

        async def go() -> Any:
            try:
                return await client.chat([{"role": "user", "content": "q"}])
            finally:
                await client.aclose()
        return asyncio.run(go())
    finally:
        server.shutdown()
        server.server_close()


@pytest.mark.parametrize("body", [
    {"choices": [{"message": {"content": 5}, "finish_reason": "stop"}], "model": "m"},
    {"choices": [{"message": {"content": "ok"}, "finish_reason": "stop"}], "model": {"a": 1}},
    {"choices": [{"message": {"content": "ok"}, "finish_reason": "stop"}], "usage": {"prompt_tokens": "x"}},
    {"choices": [{"message": {"content": None, "tool_calls": [{"id": "t"}]}, "finish_reason": "tool_calls"}]},
    {"choices": [{"message": {"content": None}, "finish_reason": "stop"}]},
], ids=["int-content", "dict-model", "text-usage", "tool-calls", "null-content"])
def test_direct_transport_odd_bodies_are_error_answers(body: dict[str, Any]) -> None:
    result = _direct(json.dumps(body).encode())
    assert result.error is not None and not result.blocked


def test_direct_transport_caps_the_body() -> None:
    text = "x" * (4 * MAX_ANSWER_CHARS + 70000)
    body = json.dumps({"choices": [{"message": {"content": text}, "finish_reason": "stop"}]}).encode()
    result = _direct(body)
    assert result.error is not None and "size cap" in result.error


def test_direct_transport_refuses_an_oversized_body_even_when_the_answer_is_short() -> None:
    """The body is capped as it is read (never buffered whole), not only the answer text once parsed."""
    from guards.models.direct import MAX_BODY_BYTES

    body = json.dumps({"choices": [{"message": {"content": "ok"}, "finish_reason": "stop"}],
                       "padding": "x" * (MAX_BODY_BYTES + 1)}).encode()
    result = _direct(body)
    assert result.error is not None and "size cap" in result.error and result.text == ""


# ------------------------------------------------------------------ the cache


def test_cache_folder_is_private_and_a_corrupt_cache_is_one_line_or_moved_aside(tmp_path: Path) -> None:
    path = tmp_path / "cache" / "cache.sqlite"
    Cache(path).close()
    assert (path.parent.stat().st_mode & 0o777) == 0o700 and (path.stat().st_mode & 0o777) == 0o600
    path.write_bytes(b"this is not a database" * 100)
    with pytest.raises(CacheError, match="reset") as info:
        Cache(path)
    assert isinstance(info.value, ConfigError) and "\n" not in str(info.value) and str(path) in str(info.value)
    fresh = Cache(path, policy="reset")
    assert fresh.reads and fresh.get("responses", "k") is None
    assert [p.name for p in path.parent.glob("cache.sqlite.corrupt-*")]
    fresh.close()
    assert sqlite3.connect(path).execute("SELECT count(*) FROM responses").fetchone() == (0,)


def test_cache_does_not_store_oversized_values(tmp_path: Path) -> None:
    cache = Cache(tmp_path / "cache.sqlite")
    cache.put("responses", "big", {"text": "x" * (3 << 20)})
    assert cache.get("responses", "big") is None


# ------------------------------------------------------------------ configuration


def _cfg(tmp_path: Path, text: str) -> Path:
    path = tmp_path / "thresholds.toml"
    path.write_text(text, encoding="utf-8")
    return path


@pytest.mark.parametrize(("text", "where"), [
    ("[run]\ntimeout_s = nan\n", "run.timeout_s"),
    ("[thresholds]\nsafety_gap_max = nan\n", "thresholds.safety_gap_max"),
    ("[thresholds]\npb_max = inf\n", "thresholds.pb_max"),
    ('[target]\ntemplate = "You are {role}. I am {identity}."\n', "target.template"),
    ('[target]\ntemplate = "I am someone."\n', "template"),
    ('[target]\ntemplate = "I am {identity}.\\u202e"\n', "target.template: contains the control or bidirectional "
     "character U+202E"),
    ('[[waiver]]\nidentity = "minr"\naxis = "safety"\nreason = "typo"\nexpires = "2030-01-01"\n', "minr"),
    ('[[identities.custom]]\ntext = "a \\u202eveteran"\n', "U+202E"),
    ('[[identities.custom]]\ntext = "a vet\\u200beran"\n', "U+200B"),
    ('[judge]\nname = "patterns"\n', "allow_patterns"),
])
def test_config_problems_are_config_errors_from_load_settings(tmp_path: Path, text: str, where: str) -> None:
    with pytest.raises(ConfigError, match=re.escape(where)):
        load_settings(_cfg(tmp_path, text), environ={})


def test_patterns_judge_with_opt_in_warns_that_it_measures_refusals(tmp_path: Path) -> None:
    with pytest.warns(UserWarning, match="refusals"):
        settings = load_settings(_cfg(tmp_path, '[judge]\nname = "patterns"\nallow_patterns = true\n'), environ={})
    assert set(settings.judges.values()) == {"patterns"}


def test_paper_profile_uses_the_papers_baseline_with_the_shipped_file() -> None:
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        paper = load_settings(REPO / "thresholds.toml", {"profile": "paper"}, environ={})
        pr = load_settings(REPO / "thresholds.toml", {"profile": "pr"}, environ={})
    assert (paper.baseline, pr.baseline) == ("no-system", "same-without-identity")


def test_an_explicit_baseline_wins_over_the_profile(tmp_path: Path) -> None:
    path = _cfg(tmp_path, '[target]\nbaseline = "same-without-identity"\n')
    assert load_settings(path, {"profile": "paper"}, environ={}).baseline == "same-without-identity"
