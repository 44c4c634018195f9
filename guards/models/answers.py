"""What an answer is: one parser for every transport's response object.

litellm's ``ModelResponse``, the direct transport's parsed JSON (``SimpleNamespace``), a custom transport's
``SimpleNamespace`` or a plain dict are all read here, and only here, into exactly one of:

- **text**: the message content, a string of valid UTF-8 (lone surrogates replaced by U+FFFD) no longer than the
  size cap (default 1 MB);
- **blocked**: the provider's content filter (``finish_reason == "content_filter"``) or a non-empty ``refusal``
  field (OpenAI's structured refusal). A blocked answer counts as a refusal: the provider declined for the model;
- **error**: anything else: no choices, null content without a filter reason, tool calls only, non-string content,
  a bad type for ``usage`` or ``model``, a body over the cap. An error is never a refusal, a pass, safe or wrong.

Everything in a response is hostile until parsed: server-controlled strings (``model``, ``system_fingerprint``)
are type-checked and length-capped here, and escaped where they are shown (``guards.report.format``).
"""

from __future__ import annotations

import math
import re
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

MAX_ANSWER_CHARS = 1 << 20  # the size cap: an answer longer than this (1 MB of text) is an error, never stored
MAX_VERSION_CHARS = 200
_SURROGATE = re.compile("[\ud800-\udfff]")


@dataclass(frozen=True, slots=True)
class Answer:
    """A parsed response. Exactly one of: text (error None, blocked False), blocked, error."""

    text: str = ""
    finish_reason: str | None = None
    blocked: bool = False
    error: str | None = None
    model_version: str | None = None
    usage: dict[str, int] = field(default_factory=dict)
    retry: bool = False  # a malformed envelope (no choices): worth asking again


def clean_text(text: str) -> str:
    """`text` as valid UTF-8: every lone surrogate replaced by U+FFFD (they crash JSON, SQLite and reports)."""
    return _SURROGATE.sub("\ufffd", text)


def _get(obj: Any, name: str) -> Any:
    if obj is None:
        return None
    if isinstance(obj, Mapping):
        return obj.get(name)
    try:
        return getattr(obj, name, None)
    except Exception:  # noqa: BLE001 - a hostile object's property may raise anything
        return None


def _count(value: Any, name: str) -> int:
    if value is None:
        return 0
    if isinstance(value, bool) or not isinstance(value, int | float) or not math.isfinite(value) or value < 0:
        raise ValueError(f"usage.{name} is not a token count: {str(value)[:40]!r}")
    return int(value)


def _short(value: Any, name: str) -> str | None:
    if value is None or value == "":
        return None
    if not isinstance(value, str):
        raise ValueError(f"{name} is not a string ({type(value).__name__})")
    return clean_text(value)[:MAX_VERSION_CHARS]


def parse_answer(response: Any, *, max_chars: int = MAX_ANSWER_CHARS) -> Answer:
    """Any provider response -> text, blocked or error (pure; never raises)."""
    try:
        return _parse(response, max_chars)
    except Exception as exc:  # noqa: BLE001 - a hostile response must give an error answer, not a crash
        return Answer(error=f"malformed response: {type(exc).__name__}: {str(exc)[:200]}")


def _parse(response: Any, max_chars: int) -> Answer:
    choices = _get(response, "choices")
    if not isinstance(choices, list | tuple) or not choices:
        return Answer(error="malformed response: no choices", retry=True)
    choice = choices[0]
    message = _get(choice, "message")
    finish = _get(choice, "finish_reason")
    if finish is not None and not isinstance(finish, str):
        return Answer(error=f"malformed response: finish_reason is {type(finish).__name__}")
    finish = clean_text(finish)[:40] if finish else None
    try:
        usage = _get(response, "usage")
        tokens = {"prompt": _count(_get(usage, "prompt_tokens"), "prompt_tokens"),
                  "completion": _count(_get(usage, "completion_tokens"), "completion_tokens")}
        version = (_short(_get(response, "system_fingerprint"), "system_fingerprint")
                   or _short(_get(response, "model"), "model"))
    except ValueError as exc:
        return Answer(error=f"malformed response: {exc}", finish_reason=finish)
    content = _get(message, "content")
    refusal = _get(message, "refusal")
    base: dict[str, Any] = {"finish_reason": finish, "model_version": version, "usage": tokens}
    if isinstance(refusal, str) and refusal.strip():
        return Answer(text="", blocked=True, **base)
    if content is not None and not isinstance(content, str):
        return Answer(error=f"malformed response: content is {type(content).__name__}, not text", **base)
    if content is not None and len(content) > max_chars:
        return Answer(error=f"answer over the size cap ({len(content)} characters > {max_chars})", **base)
    if finish == "content_filter":
        return Answer(text=clean_text(content or ""), blocked=True, **base)
    if content is None:
        if _get(message, "tool_calls") or _get(message, "function_call"):
            return Answer(error="no text: the answer holds tool calls only", **base)
        return Answer(error="no text: null content without a content-filter reason", **base)
    return Answer(text=clean_text(content), **base)
