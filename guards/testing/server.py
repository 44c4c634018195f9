"""`ScriptedAssistant`: the scripted behaviour served over HTTP on 127.0.0.1, in OpenAI's, vLLM's or
Ollama's dialect, with latency and fault injection. For tests and benchmarks."""

from __future__ import annotations

import json
import threading
import time
from collections import Counter, deque
from collections.abc import Mapping
from datetime import UTC, datetime
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any, Literal

from guards.testing.assistant import Faults, Script, decide, fault_for

Dialect = Literal["openai", "vllm", "ollama"]
FINGERPRINT = "scripted-1"
_OPENAI_CHAT = ("/v1/chat/completions", "/chat/completions")


class _Server(ThreadingHTTPServer):
    daemon_threads = True
    request_queue_size = 1024  # the default 5 resets bursts of new connections


class ScriptedAssistant:
    """A scripted chat assistant on 127.0.0.1:<free port>, served from a daemon thread.

    Use as a context manager. `url` is the api_base for litellm: `openai/<model>` and
    `hosted_vllm/<model>` take `.../v1`; with `dialect="ollama"`, `ollama_chat/<model>` takes the root.
    """

    def __init__(
        self,
        script: Script | None = None,
        *,
        latency_s: float = 0.0,
        faults: Faults | None = None,
        dialect: Dialect = "openai",
        model: str = "scripted",
        record: int = 0,
        api_key: str | None = None,
    ) -> None:
        if dialect not in ("openai", "vllm", "ollama"):
            raise ValueError(f"unknown dialect {dialect!r}")
        self.script = script or Script()
        self.latency_s = latency_s
        self.faults = faults
        self.dialect: Dialect = dialect
        self.model = model
        self.counts: Counter[str] = Counter()  # requests per path (all methods)
        self.faults_sent: Counter[str] = Counter()
        self.log: deque[dict[str, Any]] = deque(maxlen=record or None)  # last `record` chat request bodies
        self._record = record
        self.api_key = api_key  # when set, requests must carry "Authorization: Bearer <api_key>" (else 401)
        self._lock = threading.Lock()
        self._chats = 0
        self.first_at: float | None = None  # time.perf_counter() of the first and the latest chat request
        self.last_at: float | None = None
        self._server = _Server(("127.0.0.1", 0), _Handler)
        self._server.assistant = self  # type: ignore[attr-defined]
        self.port: int = self._server.server_address[1]
        self.root = f"http://127.0.0.1:{self.port}"
        self.url = self.root if dialect == "ollama" else f"{self.root}/v1"
        self._thread = threading.Thread(target=self._server.serve_forever, kwargs={"poll_interval": 0.05}, daemon=True)
        self._thread.start()
        self._stopped = False

    @property
    def requests(self) -> int:
        """Chat requests received so far (faults included)."""
        return self._chats

    def set_script(self, script: Script) -> None:
        """Swap the behaviour mid-run (drift tests); requests in flight finish with either script."""
        self.script = script

    def stop(self) -> None:
        """Stop serving and close the port (idempotent)."""
        if not self._stopped:
            self._stopped = True
            self._server.shutdown()
            self._server.server_close()

    def __enter__(self) -> ScriptedAssistant:
        return self

    def __exit__(self, *exc: object) -> None:
        self.stop()

    def _hit(self, path: str) -> None:
        with self._lock:
            self.counts[path] += 1

    def _next_chat(self, body: dict[str, Any]) -> tuple[int, str | None]:
        with self._lock:
            index = self._chats
            self._chats += 1
            self.last_at = time.perf_counter()
            if self.first_at is None:
                self.first_at = self.last_at
            if self._record:
                self.log.append(body)
            fault = fault_for(self.faults, index)
            if fault is not None:
                self.faults_sent[fault] += 1
            return index, fault


def _usage(messages: list[Any], text: str) -> tuple[int, int]:
    prompt = sum(len(str(m.get("content", ""))) for m in messages if isinstance(m, Mapping)) // 4 + 1
    return prompt, len(text) // 4 + 1


class _Handler(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"
    disable_nagle_algorithm = True
    server_version = "scripted-assistant/1"
    sys_version = ""

    def log_message(self, format: str, *args: Any) -> None:  # noqa: A002 - silence the access log
        pass

    @property
    def assistant(self) -> ScriptedAssistant:
        return self.server.assistant  # type: ignore[attr-defined]

    # -- transport ------------------------------------------------------------------------------
    def _send(self, status: int, body: bytes, ctype: str = "application/json", headers: Mapping[str, str] = {}) -> None:
        lines = [f"HTTP/1.1 {status} {self.responses.get(status, ('',))[0]}", f"Content-Type: {ctype}"]
        lines += [f"Content-Length: {len(body)}", *(f"{k}: {v}" for k, v in headers.items())]
        self.wfile.write(("\r\n".join(lines) + "\r\n\r\n").encode() + body)

    def _json(self, status: int, obj: Any, headers: Mapping[str, str] = {}) -> None:
        self._send(status, json.dumps(obj).encode(), headers=headers)

    def _error(self, status: int, message: str, kind: str = "invalid_request_error", **headers: str) -> None:
        if self.assistant.dialect == "ollama" and self.path.startswith("/api/"):
            self._json(status, {"error": message}, headers)
        else:
            self._json(status, {"error": {"message": message, "type": kind, "code": status}}, headers)

    def _body(self) -> dict[str, Any] | None:
        length = int(self.headers.get("Content-Length") or 0)
        raw = self.rfile.read(length) if length else b""
        try:
            body = json.loads(raw or b"{}")
        except ValueError:
            body = None
        if not isinstance(body, dict):
            self._error(400, "request body is not a JSON object")
            return None
        return body

    # -- routes ---------------------------------------------------------------------------------
    def do_GET(self) -> None:  # noqa: N802 - http.server's naming
        a = self.assistant
        path = self.path.split("?", 1)[0]
        a._hit(path)
        if path in ("/v1/models", "/models"):
            owner = "vllm" if a.dialect == "vllm" else "scripted"
            card = {"id": a.model, "object": "model", "created": 0, "owned_by": owner}
            if a.dialect == "vllm":
                card |= {"root": a.model, "parent": None, "max_model_len": 4096, "permission": []}
            self._json(200, {"object": "list", "data": [card]})
        elif path == "/health" and a.dialect == "vllm":
            self._send(200, b"", "text/plain")
        elif path == "/version" and a.dialect == "vllm":
            self._json(200, {"version": "0.0.0-scripted"})
        elif path == "/api/tags" and a.dialect == "ollama":
            self._json(200, {"models": [_ollama_card(a.model)]})
        elif path == "/api/version" and a.dialect == "ollama":
            self._json(200, {"version": "0.0.0-scripted"})
        elif path == "/" and a.dialect == "ollama":
            self._send(200, b"Ollama is running", "text/plain")
        else:
            self._error(404, f"no route GET {path}", "not_found_error")

    def do_POST(self) -> None:  # noqa: N802
        a = self.assistant
        path = self.path.split("?", 1)[0]
        a._hit(path)
        body = self._body()
        if body is None:
            return
        if a.api_key is not None and self.headers.get("Authorization") != f"Bearer {a.api_key}":
            self._error(401, "Incorrect API key provided", "authentication_error")
            return
        if path in _OPENAI_CHAT:
            self._chat(body, ollama=False, path=path)
        elif a.dialect == "ollama" and path in ("/api/chat", "/api/generate"):
            if path == "/api/generate":
                body = {**body, "messages": _generate_messages(body)}
            self._chat(body, ollama=path, path=path)
        elif a.dialect == "ollama" and path == "/api/show":
            card = _ollama_card(a.model)
            self._json(
                200,
                {
                    "modelfile": "",
                    "parameters": "",
                    "template": "{{ .Prompt }}",
                    "details": card["details"],
                    "model_info": {"scripted.context_length": 4096},
                    "capabilities": ["completion"],
                },
            )
        else:
            self._error(404, f"no route POST {path}", "not_found_error")

    def _chat(self, body: dict[str, Any], *, ollama: str | Literal[False], path: str) -> None:
        a = self.assistant
        messages = body.get("messages")
        if not isinstance(messages, list) or not messages:
            self._error(400, "'messages' must be a non-empty list")
            return
        stream = body.get("stream", bool(ollama))  # Ollama streams unless told not to
        if stream and not ollama:
            self._error(400, "streaming is not supported by the scripted assistant; send stream=false")
            return
        index, fault = a._next_chat(body)
        if a.latency_s > 0:
            time.sleep(a.latency_s)
        if fault == "429":
            retry = a.faults.retry_after_s if a.faults else 0.0
            self._error(429, "Rate limit reached (injected)", "rate_limit_error", **{"Retry-After": f"{retry:g}"})
            return
        if fault == "500":
            self._error(500, "Internal server error (injected)", "server_error")
            return
        options = body.get("options") if ollama else body
        seed = options.get("seed") if isinstance(options, Mapping) else None
        decision = decide(a.script, messages, seed)
        text, finish = decision.text, "stop"
        if fault == "content_filter":
            text, finish = "", "content_filter"
        if ollama:
            payload = _ollama_response(a.model, body, text, finish, generate=ollama == "/api/generate")
            if stream:
                self._send(
                    200, _ollama_stream(payload, text, generate=ollama == "/api/generate"), "application/x-ndjson"
                )
                return
            raw = json.dumps(payload).encode()
        else:
            raw = json.dumps(_openai_response(body.get("model") or a.model, index, messages, text, finish)).encode()
        if fault == "truncated":
            raw = raw[: max(1, len(raw) // 2)]
        self._send(200, raw)


def _openai_response(model: str, index: int, messages: list[Any], text: str, finish: str) -> dict[str, Any]:
    prompt_tokens, completion_tokens = _usage(messages, text)
    return {
        "id": f"chatcmpl-scripted-{index}",
        "object": "chat.completion",
        "created": int(time.time()),
        "model": model,
        "system_fingerprint": FINGERPRINT,
        "choices": [
            {"index": 0, "message": {"role": "assistant", "content": text}, "finish_reason": finish, "logprobs": None}
        ],
        "usage": {
            "prompt_tokens": prompt_tokens,
            "completion_tokens": completion_tokens,
            "total_tokens": prompt_tokens + completion_tokens,
        },
    }


def _ollama_card(model: str) -> dict[str, Any]:
    name = model if ":" in model else f"{model}:latest"
    return {
        "name": name,
        "model": name,
        "modified_at": "2025-01-01T00:00:00Z",
        "size": 1,
        "digest": "0" * 64,
        "details": {
            "format": "gguf",
            "family": "scripted",
            "families": ["scripted"],
            "parameter_size": "0B",
            "quantization_level": "F32",
        },
    }


def _generate_messages(body: Mapping[str, Any]) -> list[dict[str, str]]:
    messages = [{"role": "system", "content": str(body["system"])}] if body.get("system") else []
    return [*messages, {"role": "user", "content": str(body.get("prompt", ""))}]


def _ollama_response(model: str, body: Mapping[str, Any], text: str, finish: str, *, generate: bool) -> dict[str, Any]:
    prompt_tokens, completion_tokens = _usage(body.get("messages") or [], text)
    out: dict[str, Any] = {
        "model": body.get("model") or model,
        "created_at": datetime.now(UTC).isoformat().replace("+00:00", "Z"),
    }
    if generate:
        out["response"] = text
    else:
        out["message"] = {"role": "assistant", "content": text}
    return out | {
        "done": True,
        "done_reason": finish,
        "total_duration": 1,
        "load_duration": 0,
        "prompt_eval_count": prompt_tokens,
        "eval_count": completion_tokens,
    }


def _ollama_stream(final: dict[str, Any], text: str, *, generate: bool) -> bytes:
    """NDJSON: one chunk per word, then the `done` record with an empty message."""
    chunks = []
    words = text.split(" ")
    for i, word in enumerate(words):
        piece = word if i == 0 else f" {word}"
        content = {"response": piece} if generate else {"message": {"role": "assistant", "content": piece}}
        chunks.append({"model": final["model"], "created_at": final["created_at"], **content, "done": False})
    last = dict(final)
    if generate:
        last["response"] = ""
    else:
        last["message"] = {"role": "assistant", "content": ""}
    chunks.append(last)
    return b"".join(json.dumps(c).encode() + b"\n" for c in chunks)
