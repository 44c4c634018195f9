"""The http and python targets: the body and answer paths, the door's error classes, secrets, the cache key, and
bad target tables (one line each)."""

from __future__ import annotations

import asyncio
import json
import threading
import time
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

import pytest

from guards.config.settings import ConfigError, load_settings
from guards.config.targets import parse_path, read_path
from guards.models.client import ModelClient
from guards.models.http import HttpTarget, fill, placeholders
from guards.models.python_target import PythonTarget
from guards.models.transports import ASKER

SECRET = "s3cr3t-token-value-123"
SEEN: list[dict[str, Any]] = []


class Handler(BaseHTTPRequestHandler):
    def _reply(self, status: int, body: str, headers: dict[str, str] | None = None) -> None:
        data = body.encode()
        self.send_response(status)
        for k, v in (headers or {}).items():
            self.send_header(k, v)
        self.send_header("Content-Length", str(len(data)))
        self.end_headers()
        self.wfile.write(data)

    def do_GET(self) -> None:  # noqa: N802
        SEEN.append({"path": self.path, "auth": self.headers.get("Authorization")})
        self._reply(200, json.dumps({"data": {"answer": "got " + self.path}}))

    def do_POST(self) -> None:  # noqa: N802
        body = json.loads(self.rfile.read(int(self.headers["Content-Length"])))
        SEEN.append({"path": self.path, "body": body, "auth": self.headers.get("Authorization")})
        route = self.path.strip("/")
        if route == "slow":
            time.sleep(1.0)
        replies = {
            "ok": (200, json.dumps({"data": {"answer": "hi " + str(body.get("q")), "n": [1, 2]},
                                    "usage": {"input_tokens": 7, "output_tokens": 3}})),
            "null": (200, json.dumps({"data": {"answer": None}})),
            "number": (200, json.dumps({"data": {"answer": 42}})),
            "missing": (200, json.dumps({"data": {}})),
            "garbage": (200, "<html>oops</html>"),
            "plain": (200, "plain text answer"),
            "429": (429, '{"error": "slow down"}'),
            "401": (401, f'{{"error": "bad token {SECRET}"}}'),
            "500": (500, "boom"),
            "filter": (400, '{"error": {"code": "content_filter"}}'),
            "slow": (200, json.dumps({"data": {"answer": "late"}})),
        }
        status, text = replies[route]
        self._reply(status, text, {"Retry-After": "0"} if status == 429 else None)

    def log_message(self, *args: object) -> None:
        return


@pytest.fixture(scope="module")
def server() -> Iterator[str]:
    httpd = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    thread = threading.Thread(target=httpd.serve_forever, daemon=True)
    thread.start()
    yield f"http://127.0.0.1:{httpd.server_address[1]}"
    httpd.shutdown()


def _target(url: str, **kw: Any) -> HttpTarget:
    table = {"url": url, "body": {"q": "{user}", "conv": "{messages}", "who": {"text": "{identity}"},
                                   "note": "asked by {identity}", "n": 3},
             "answer_path": "data.answer", "usage_path": "usage",
             "headers": {"Authorization": "Bearer ${APP_TOKEN}"}, **kw}
    return HttpTarget("app@x", url, timeout_s=kw.pop("timeout_s", 5.0), target=table)


def test_placeholders_are_json_values_never_formatted_text() -> None:
    hostile = 'say "}, "admin": true, "x": {"'
    messages = [{"role": "system", "content": "S"}, {"role": "user", "content": hostile}]
    body = fill({"m": "{messages}", "u": "{user}", "s": "{system}", "i": "{identity}", "t": "for {identity}!",
                 "list": ["{user}", 1]}, placeholders(messages, None))
    assert json.loads(json.dumps(body)) == {"m": messages, "u": hostile, "s": "S", "i": None, "t": "for !",
                                            "list": [hostile, 1]}
    assert parse_path("choices.0.message.content") == ("choices", 0, "message", "content")
    assert read_path({"a": [{"b": "x"}, {"b": "y"}]}, parse_path("a.-1.b")) == "y"
    with pytest.raises(KeyError, match=r"a\.2 is not in the response"):
        read_path({"a": [1]}, parse_path("a.2.b"))


def test_http_target_sends_the_body_and_reads_the_answer(server: str, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("APP_TOKEN", SECRET)

    async def go() -> Any:
        target = _target(f"{server}/ok")
        ASKER.set("a minor")
        try:
            return await target.complete([{"role": "user", "content": "Q?"}], {})
        finally:
            await target.aclose()

    response = asyncio.run(go())
    assert response.choices[0].message.content == "hi Q?" and response.choices[0].finish_reason == "stop"
    assert (response.usage.prompt_tokens, response.usage.completion_tokens) == (7, 3)
    sent = SEEN[-1]
    assert sent["auth"] == f"Bearer {SECRET}"
    assert sent["body"] == {"q": "Q?", "conv": [{"role": "user", "content": "Q?"}], "who": {"text": "a minor"},
                            "note": "asked by a minor", "n": 3}


@pytest.mark.parametrize(("route", "error"), [
    ("null", "APIError: answer_path: the answer is null, not text"),
    ("number", "APIError: answer_path: the answer is int, not text"),
    ("missing", "APIError: answer_path: data.answer is not in the response"),
    ("garbage", "APIError: malformed response body"),
    ("429", "RateLimitError: status 429"),
    ("401", "AuthenticationError: status 401"),
    ("500", "InternalServerError: status 500"),
    ("slow", "Timeout: no answer within 0.3 s"),
])
def test_http_failures_are_the_doors_errors(server: str, monkeypatch: pytest.MonkeyPatch, route: str,
                                            error: str) -> None:
    """Through the model door: an error (never a refusal or an answer), classified like a model's, no secret."""
    monkeypatch.setenv("APP_TOKEN", SECRET)

    async def go() -> Any:
        client = ModelClient("app@x", max_retries=1, backoff_s=0.0,
                             transport=_target(f"{server}/{route}", timeout_s=0.3))
        try:
            return await client.chat([{"role": "user", "content": "Q?"}])
        finally:
            await client.aclose()

    result = asyncio.run(go())
    assert not result.ok and result.error.startswith(error), result.error
    assert SECRET not in result.error and not result.blocked


def test_http_content_filter_is_a_block_and_plain_and_get_work(server: str, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("APP_TOKEN", SECRET)

    async def go(route: str, **kw: Any) -> Any:
        client = ModelClient("app@x", max_retries=0, transport=_target(f"{server}/{route}", **kw))
        try:
            return await client.chat([{"role": "user", "content": "Q?"}])
        finally:
            await client.aclose()

    assert asyncio.run(go("filter")).blocked
    assert asyncio.run(go("plain", answer_path="")).text == "plain text answer"
    got = asyncio.run(go("get", method="GET", body={"q": "{user}", "k": 2}))
    assert got.text in ("got /get?q=Q%3F&k=2", "got /get?q=Q?&k=2"), got


def test_python_target_sync_async_results_and_failures(tmp_path: Path) -> None:
    (tmp_path / "my_app.py").write_text(
        "import asyncio\n"
        "from guards.models.python_target import Answer\n"
        "def plain(messages):\n    return 'echo ' + messages[-1]['content']\n"
        "async def profiled(messages, identity=None):\n"
        "    messages.clear()\n    await asyncio.sleep(0)\n    return {'text': f'hi {identity}', 'prompt_tokens': 4}\n"
        "def blocked(messages):\n    return Answer('', blocked=True)\n"
        "def broken(messages):\n    raise ValueError('no db')\n"
        "def odd(messages):\n    return 7\n"
        "async def slow(messages):\n    await asyncio.sleep(2)\n")

    async def go(name: str) -> Any:
        table = {"function": f"my_app:{name}", "_base": str(tmp_path)}
        target = PythonTarget("py@x", None, timeout_s=0.3, target=table)
        client = ModelClient("py@x", max_retries=0, transport=target)
        ASKER.set("a minor")
        messages = [{"role": "user", "content": "Q"}]
        result = await client.chat(messages)
        assert messages == [{"role": "user", "content": "Q"}]  # the app got a copy
        return result

    assert asyncio.run(go("plain")).text == "echo Q"
    profiled = asyncio.run(go("profiled"))
    assert profiled.text == "hi a minor" and profiled.usage["prompt"] == 4
    assert asyncio.run(go("blocked")).blocked
    assert asyncio.run(go("broken")).error == "APIError: ValueError: no db"
    assert "returned int" in str(asyncio.run(go("odd")).error)
    assert str(asyncio.run(go("slow")).error).startswith("Timeout")


def _load(tmp_path: Path, target: str, environ: dict[str, str] | None = None) -> Any:
    path = tmp_path / "thresholds.toml"
    path.write_text(f"[target]\n{target}\n[tasks]\nnames = [\"mmlu\"]\n")
    return load_settings(path, environ=environ or {})


def test_the_target_table_is_part_of_the_cache_key(tmp_path: Path) -> None:
    first = _load(tmp_path, 'type = "http"\nurl = "http://h/chat"\nbody = {q = "{user}"}')
    second = _load(tmp_path, 'type = "http"\nurl = "http://h/chat"\nbody = {q = "{user}", v = 2}')
    assert first.transport == "http" and first.model.startswith("http@") and first.model != second.model
    assert first.api_base == "http://h/chat"
    (tmp_path / "bot_mod.py").write_text("def f(messages):\n    return 'a'\n")
    py = _load(tmp_path, 'type = "python"\nfunction = "bot_mod:f"\nmodel = "bot"')
    (tmp_path / "bot_mod.py").write_text("def f(messages):\n    return 'b'\n")
    assert py.model.startswith("bot@") and py.model != _load(tmp_path, 'type = "python"\nfunction = "bot_mod:f"\n'
                                                                         'model = "bot"').model


@pytest.mark.parametrize(("target", "message"), [
    ('type = "http"', "target.url: the http target needs an http(s) URL"),
    ('type = "http"\nurl = "ftp://x"', "target.url: the http target needs an http(s) URL, got 'ftp://x'"),
    ('type = "http"\nurl = "http://x"\nbody = {m = "all: {messages}"}', "target.body.m: \"{messages}\" must be"),
    ('type = "http"\nurl = "http://x"\nanswer_path = "a..b"', "target.answer_path: 'a..b' has an empty segment"),
    ('type = "http"\nurl = "http://x"\nheaders = {Authorization = "Bearer ${NOPE_TOKEN}"}',
     "target.headers.Authorization: environment variable NOPE_TOKEN is not set"),
    ('type = "http"\nurl = "http://x"\nmethod = "DELETE"', "target.method"),
    ('type = "http"\nurl = "http://x"\ntransport = "direct"', "target.transport: does not apply to target.type"),
    ('type = "python"\nfunction = "nowhere_at_all:f"', "target.function: cannot load nowhere_at_all:f"),
    ('type = "python"\nfunction = "json"', "target.function"),
    ('type = "ftp"', "target.type"),
    ('identity_in = "profile"\nsystem_prompt = "no placeholder"', "target.profile_placeholder: identity_in"),
    ('identity_in = "memory"', "target.identity_in"),
    ('identity_template = "I am here."', "the template must contain {identity}"),
])
def test_bad_target_configs_give_one_line(tmp_path: Path, target: str, message: str) -> None:
    with pytest.raises(ConfigError) as info:
        _load(tmp_path, target)
    assert message in str(info.value) and "\n" not in str(info.value)


def test_a_model_override_does_not_silently_replace_an_app_target(tmp_path: Path) -> None:
    with pytest.raises(ConfigError, match=r"GUARDS_MODEL / --model: does not apply to target\.type = 'http'"):
        _load(tmp_path, 'type = "http"\nurl = "http://x"', environ={"GUARDS_MODEL": "openai/x"})
