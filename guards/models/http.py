"""The `http` target: the team's own HTTP API, called with a JSON body built from a TOML table.

    [target]
    type = "http"
    url = "http://127.0.0.1:8080/chat"
    method = "POST"                                        # POST (default), PUT, PATCH or GET (body as query)
    headers = {Authorization = "Bearer ${SUPPORT_TOKEN}"}  # ${VAR}: read from the environment at send time
    body = {conversation = "{messages}", user_profile = {about = "{identity}"}, channel = "web"}
    answer_path = "reply.text"                             # dot path into the JSON response ("" = the whole body)
    usage_path = "usage"                                   # optional: {prompt_tokens, completion_tokens}

A string value that is exactly a placeholder becomes a JSON value: "{messages}" the chat messages (a list of
{role, content}), "{system}" the system message's text (or null), "{user}" the last user turn's text,
"{identity}" the asking identity's text ("a minor"; null for the baseline). "{system}", "{user}" and
"{identity}" inside a longer string are replaced as text within that string. The body is built as data and
serialized once, so no value can break out of its JSON string. Header values are filled from the environment
when the session opens and are never logged, cached or reported.

Status codes, timeouts and connection failures raise the same exceptions as the direct transport (named like
litellm's), so the model door retries, backs off on 429 / Retry-After and records errors exactly as it does for
a model. An answer that is missing, null or not text at `answer_path` is an error, never a refusal or a pass.
"""

from __future__ import annotations

import asyncio
import json
import os
from collections.abc import Mapping
from types import SimpleNamespace
from typing import Any

import aiohttp

from guards.config.targets import DEFAULT_ANSWER_PATH, DEFAULT_BODY, fill_headers, parse_path, read_path
from guards.models.direct import APIConnectionError, APIError, Timeout, error_for
from guards.models.transports import ASKER

MAX_BODY_BYTES = 8 * 1024 * 1024  # a larger response is an error, not something to parse


def fill(template: Any, values: Mapping[str, Any]) -> Any:
    """The body: each placeholder string replaced by its JSON value (whole value) or text (inside a string)."""
    if isinstance(template, Mapping):
        return {k: fill(v, values) for k, v in template.items()}
    if isinstance(template, list):
        return [fill(v, values) for v in template]
    if isinstance(template, str):
        if template in values:
            return values[template]
        for name in ("{system}", "{user}", "{identity}"):
            if name in template:
                template = template.replace(name, str(values.get(name) or ""))
        return template
    return template


def placeholders(messages: list[dict[str, Any]], identity: str | None) -> dict[str, Any]:
    """The values the placeholders stand for, for one request."""
    system = next((m["content"] for m in messages if m.get("role") == "system"), None)
    user = next((m["content"] for m in reversed(messages) if m.get("role") == "user"), "")
    return {"{messages}": messages, "{system}": system, "{user}": user, "{identity}": identity}


def openai_shaped(answer: str, usage: Any, model: str) -> SimpleNamespace:
    """The response object the model door reads (choices[0].message.content, finish_reason, usage, model)."""
    tokens = SimpleNamespace(prompt_tokens=0, completion_tokens=0)
    if isinstance(usage, Mapping):
        tokens = SimpleNamespace(
            prompt_tokens=int(usage.get("prompt_tokens", usage.get("input_tokens", 0)) or 0),
            completion_tokens=int(usage.get("completion_tokens", usage.get("output_tokens", 0)) or 0))
    message = SimpleNamespace(role="assistant", content=answer)
    return SimpleNamespace(choices=[SimpleNamespace(index=0, message=message, finish_reason="stop")],
                           usage=tokens, model=model)


def extract(text: str, answer_path: tuple[str | int, ...], usage_path: tuple[str | int, ...] | None
            ) -> tuple[str, Any]:
    """(answer, usage) from a response body; APIError saying what is wrong with it."""
    if not answer_path:
        return text, None
    try:
        data = json.loads(text)
    except ValueError as exc:
        raise APIError(f"malformed response body ({len(text)} bytes): {exc}") from None
    try:
        answer = read_path(data, answer_path)
    except KeyError as exc:
        raise APIError(f"answer_path: {exc.args[0]}") from None
    if not isinstance(answer, str):
        kind = "null" if answer is None else type(answer).__name__
        raise APIError(f"answer_path: the answer is {kind}, not text")
    usage = None
    if usage_path is not None:
        try:
            usage = read_path(data, usage_path)
        except KeyError:
            usage = None  # usage is optional: its absence only leaves the token counts at zero
    return answer, usage


class HttpTarget:
    """Sends each request to the team's HTTP API (one keep-alive aiohttp session per event loop)."""

    def __init__(self, model: str, api_base: str | None, *, timeout_s: float, target: Mapping[str, Any]) -> None:
        self.model = model
        self.url = str(target["url"])
        self.method = str(target.get("method", "POST")).upper()
        self.body = target.get("body", DEFAULT_BODY)
        self.answer_path = parse_path(str(target.get("answer_path", DEFAULT_ANSWER_PATH)))
        self.usage_path = parse_path(str(target["usage_path"]), "usage_path") if "usage_path" in target else None
        self._header_templates = dict(target.get("headers", {}))
        self.timeout_s = timeout_s
        self._session: aiohttp.ClientSession | None = None
        self._loop: asyncio.AbstractEventLoop | None = None

    def _open(self) -> aiohttp.ClientSession:
        loop = asyncio.get_running_loop()
        if self._session is None or self._loop is not loop or self._session.closed:
            headers = {"Content-Type": "application/json",
                       **fill_headers(self._header_templates, os.environ)}  # held by the session only
            self._session = aiohttp.ClientSession(connector=aiohttp.TCPConnector(limit=0), headers=headers,
                                                  timeout=aiohttp.ClientTimeout(total=self.timeout_s))
            self._loop = loop
        return self._session

    def _secrets(self) -> list[str]:
        filled = fill_headers(self._header_templates, os.environ)
        return [v for k, v in filled.items() if v and v != self._header_templates.get(k)]

    def _hide(self, text: str) -> str:
        for secret in self._secrets():
            text = text.replace(secret, "***")
        return text

    async def complete(self, messages: list[dict[str, Any]], params: Mapping[str, Any]) -> Any:
        """One request; raises the door's exception classes on any failure."""
        body = fill(self.body, placeholders(messages, ASKER.get()))
        if self.method == "GET":
            query = {k: v if isinstance(v, str) else json.dumps(v) for k, v in body.items()}
            request: dict[str, Any] = {"params": query}
        else:
            request = {"data": json.dumps(body)}
        try:
            async with self._open().request(self.method, self.url, **request) as resp:
                raw = await resp.content.read(MAX_BODY_BYTES + 1)
                text = raw.decode("utf-8", errors="replace")
                if len(raw) > MAX_BODY_BYTES:
                    raise APIError(f"response body over {MAX_BODY_BYTES} bytes")
                if resp.status >= 300:
                    raise error_for(resp.status, self._hide(text), resp.headers)
        except TimeoutError:
            raise Timeout(f"no answer within {self.timeout_s:g} s") from None
        except aiohttp.ClientError as exc:
            raise APIConnectionError(self._hide(f"{type(exc).__name__}: {exc}")) from None
        answer, usage = extract(text, self.answer_path, self.usage_path)
        return openai_shaped(answer, usage, self.model)

    async def aclose(self) -> None:
        if self._session is not None and not self._session.closed:
            await self._session.close()
            await asyncio.sleep(0)
        self._session = None
