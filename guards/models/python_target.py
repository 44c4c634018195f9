"""The `python` target: a function in the team's own code, called in-process.

    [target]
    type = "python"
    function = "support_app:answer"   # module:function, importable, or a module file beside thresholds.toml

The function takes the chat messages (a list of {role, content}) and, if it has an `identity` parameter, the
asking identity's text ("a minor"; None for the baseline), for apps that keep a user profile. It may be sync
(run in a worker thread) or async, and returns the answer's text, or a small result: an `Answer`, or a dict
with "text" and optionally "prompt_tokens", "completion_tokens" and "blocked" (a content filter's block).

Exceptions are errors (retried by the model door like a 500), a return of anything else is an error, and a
call past the run's timeout is a Timeout: never a refusal, never a pass.
"""

from __future__ import annotations

import asyncio
import inspect
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from pathlib import Path
from types import SimpleNamespace
from typing import Any

from guards.models.direct import APIConnectionError, APIError, Timeout
from guards.models.transports import ASKER
from guards.tasks.custom import load_function


@dataclass(frozen=True)
class Answer:
    """What a python target may return instead of bare text."""

    text: str
    prompt_tokens: int = 0
    completion_tokens: int = 0
    blocked: bool = False  # the app's own content filter stopped the answer (counted as a refusal, `blocked`)


def as_response(value: Any, model: str) -> SimpleNamespace:
    """An OpenAI-shaped response from the function's return value; APIError if it is not an answer."""
    if isinstance(value, Mapping):
        text: Any = value.get("text")  # checked below
        value = Answer(text=text, prompt_tokens=int(value.get("prompt_tokens", 0) or 0),
                       completion_tokens=int(value.get("completion_tokens", 0) or 0),
                       blocked=bool(value.get("blocked", False)))
    elif isinstance(value, str):
        value = Answer(text=value)
    if not isinstance(value, Answer) or not isinstance(value.text, str):
        raise APIError(f"the function returned {type(value).__name__}, not text, an Answer or a dict with 'text'")
    finish = "content_filter" if value.blocked else "stop"
    message = SimpleNamespace(role="assistant", content=value.text)
    usage = SimpleNamespace(prompt_tokens=value.prompt_tokens, completion_tokens=value.completion_tokens)
    return SimpleNamespace(choices=[SimpleNamespace(index=0, message=message, finish_reason=finish)],
                           usage=usage, model=model)


class PythonTarget:
    """Calls `module:function` for each request."""

    def __init__(self, model: str, api_base: str | None, *, timeout_s: float, target: Mapping[str, Any]) -> None:
        self.model, self.timeout_s = model, timeout_s
        base = target.get("_base")
        self.function: Callable[..., Any] = load_function(str(target["function"]), Path(base) if base else None,
                                                          "target.function")
        try:
            params = inspect.signature(self.function).parameters
        except (TypeError, ValueError):
            params = {}  # type: ignore[assignment]
        self.takes_identity = "identity" in params or any(p.kind is p.VAR_KEYWORD for p in params.values())

    async def complete(self, messages: list[dict[str, Any]], params: Mapping[str, Any]) -> Any:
        kwargs = {"identity": ASKER.get()} if self.takes_identity else {}
        copy = [dict(m) for m in messages]  # the app may not edit the request the cache is keyed by
        try:
            if inspect.iscoroutinefunction(self.function):
                value = await asyncio.wait_for(self.function(copy, **kwargs), self.timeout_s)
            else:
                value = await asyncio.wait_for(asyncio.to_thread(self.function, copy, **kwargs), self.timeout_s)
        except TimeoutError:
            raise Timeout(f"no answer within {self.timeout_s:g} s") from None
        except ConnectionError as exc:
            raise APIConnectionError(f"{type(exc).__name__}: {exc}") from None
        except Exception as exc:  # noqa: BLE001 - any failure of the app is an error the door records
            raise APIError(f"{type(exc).__name__}: {exc}") from None
        return as_response(value, self.model)

    async def aclose(self) -> None:
        return None
