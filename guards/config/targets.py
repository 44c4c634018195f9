"""The application targets of `[target]`: `type = "http"` (the team's own HTTP API) and `type = "python"`
(a `module:function` in the team's code), validated at start-up; the model string they are recorded and cached
under carries a digest of their configuration, so changing the URL, body, answer path or function asks again.

Answer paths (`answer_path`, `usage_path`) are dot-separated keys into the JSON response; a segment that is an
integer indexes a list (negative counts from the end): ``choices.0.message.content``, ``data.answer``,
``messages.-1.text``. An empty `answer_path` takes the whole response body as the answer (a plain-text API).
"""

from __future__ import annotations

import hashlib
import json
import re
from collections.abc import Mapping
from pathlib import Path
from typing import Any

TARGET_TYPES = ("model", "http", "python")
PLACEHOLDERS = ("{messages}", "{system}", "{user}", "{identity}")
TEXT_PLACEHOLDERS = ("{system}", "{user}", "{identity}")  # may also sit inside a longer string (text, not JSON)
METHODS = ("POST", "PUT", "PATCH", "GET")
DEFAULT_BODY: Mapping[str, Any] = {"messages": "{messages}"}
DEFAULT_ANSWER_PATH = "choices.0.message.content"
ENV_REF = re.compile(r"\$\{([A-Za-z_][A-Za-z0-9_]*)\}")


class TargetError(ValueError):
    """A `[target]` table that cannot work: one line naming the key."""


def parse_path(path: str, key: str = "answer_path") -> tuple[str | int, ...]:
    """``choices.0.message.content`` -> ("choices", 0, "message", "content"); "" -> () (the whole body)."""
    if path == "":
        return ()
    segments = path.split(".")
    if any(s == "" for s in segments):
        raise TargetError(f"target.{key}: {path!r} has an empty segment (write keys separated by single dots)")
    return tuple(int(s) if re.fullmatch(r"-?\d+", s) else s for s in segments)


def read_path(data: Any, path: tuple[str | int, ...]) -> Any:
    """The value at `path`; KeyError naming the first segment that is not there."""
    for depth, segment in enumerate(path):
        in_list = isinstance(segment, int) and isinstance(data, list) and -len(data) <= segment < len(data)
        if in_list or (isinstance(segment, str) and isinstance(data, dict) and segment in data):
            data = data[segment]
        else:
            shown = ".".join(str(s) for s in path[: depth + 1])
            raise KeyError(f"{shown} is not in the response")
    return data


def check_body(body: Any, key: str = "target.body") -> None:
    """Placeholders are whole string values ("{messages}" only so); nothing else is a template."""
    if isinstance(body, Mapping):
        for name, value in body.items():
            check_body(value, f"{key}.{name}")
    elif isinstance(body, list):
        for i, value in enumerate(body):
            check_body(value, f"{key}[{i}]")
    elif isinstance(body, str) and "{messages}" in body and body != "{messages}":
        raise TargetError(f"{key}: \"{{messages}}\" must be the whole value (it becomes a JSON list, not text)")


def header_env(headers: Mapping[str, Any]) -> dict[str, list[str]]:
    """Header name -> the environment variables its value reads (``"Bearer ${SUPPORT_TOKEN}"``)."""
    out = {}
    for name, value in headers.items():
        if not isinstance(value, str):
            raise TargetError(f"target.headers.{name}: expected a string such as \"Bearer ${{TOKEN_VAR}}\"")
        out[name] = ENV_REF.findall(value)
    return out


def fill_headers(headers: Mapping[str, str], environ: Mapping[str, str]) -> dict[str, str]:
    """Header values with each ${VAR} replaced by the environment's value (done at send time, never stored)."""
    return {name: ENV_REF.sub(lambda m: environ.get(m.group(1), ""), value) for name, value in headers.items()}


def digest(target: Mapping[str, Any], extra: str = "") -> str:
    """sha256 of the target's configuration as written (header templates, never their secret values)."""
    shown = {k: v for k, v in target.items() if k not in ("system_prompt", "system_prompt_file")}
    return hashlib.sha256((json.dumps(shown, sort_keys=True, default=str) + extra).encode()).hexdigest()[:12]


def check_target(target: Mapping[str, Any], environ: Mapping[str, str], config_path: Path | None
                 ) -> tuple[str, str | None]:
    """(model string, api_base) that an http or python target is recorded and cached under; raises TargetError."""
    kind = target.get("type", "model")
    label = target.get("model")
    if kind == "http":
        url = str(target.get("url", ""))
        if not re.match(r"https?://[^/\s]+", url):
            raise TargetError(f"target.url: the http target needs an http(s) URL, got {url!r}")
        method = str(target.get("method", "POST")).upper()
        if method not in METHODS:
            raise TargetError(f"target.method: {method!r} is not one of {', '.join(METHODS)}")
        check_body(target.get("body", DEFAULT_BODY))
        parse_path(str(target.get("answer_path", DEFAULT_ANSWER_PATH)))
        if "usage_path" in target:
            parse_path(str(target["usage_path"]), "usage_path")
        for name, names in header_env(target.get("headers", {})).items():
            missing = [n for n in names if not environ.get(n)]
            if missing:
                raise TargetError(f"target.headers.{name}: environment variable {missing[0]} is not set")
        return f"{label or 'http'}@{digest(target)}", url
    if kind == "python":
        from guards.tasks.custom import CustomTaskError, load_function, source_digest

        name = str(target.get("function", ""))
        try:
            function = load_function(name, config_path.parent if config_path else None, "target.function")
        except CustomTaskError as exc:
            raise TargetError(str(exc)) from None
        return f"{label or 'python'}@{digest(target, source_digest(function))}", None
    raise TargetError(f"target.type: {kind!r} is not one of {', '.join(TARGET_TYPES)}")
