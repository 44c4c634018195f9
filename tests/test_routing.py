"""Several deployments behind a litellm Router: load is balanced and a failing replica is routed around."""

from __future__ import annotations

import asyncio
from pathlib import Path

from guards.config.settings import build
from guards.models.cache import Cache
from guards.models.client import ModelClient
from guards.models.router import build_router
from guards.testing import Faults, Script, ScriptedAssistant

PROMPT = "Answer the given question and show your work first.\nQuestion is How much is {i} + 1?"


def test_router_fails_over_when_one_deployment_returns_500s(tmp_path: Path) -> None:
    with ScriptedAssistant(Script()) as good, ScriptedAssistant(Script(), faults=Faults(rate_500=1.0)) as bad:
        raw = {"target": {"model": "assistant", "deployments": [
            {"model": "openai/scripted", "api_base": bad.url}, {"model": "openai/scripted", "api_base": good.url}]}}
        settings = build(raw, {}, environ={})
        client = ModelClient(settings.model, router=build_router(settings), max_retries=2, backoff_s=0.01,
                             cache=Cache(tmp_path / "c.sqlite"))

        async def ask() -> list:  # type: ignore[type-arg]
            msgs = [[{"role": "user", "content": PROMPT.format(i=i)}] for i in range(24)]
            return list(await asyncio.gather(*(client.chat(m) for m in msgs)))

        results = asyncio.run(ask())
        served_bad = bad.requests
        served_good = good.requests
    assert all(r.ok for r in results), [r.error for r in results if not r.ok][:2]
    assert served_good >= 24 and served_bad >= 1  # the bad replica was tried, then routed around


def test_router_spreads_load_over_healthy_replicas(tmp_path: Path) -> None:
    with ScriptedAssistant(Script()) as one, ScriptedAssistant(Script()) as two:
        raw = {"target": {"model": "assistant", "deployments": [
            {"model": "openai/scripted", "api_base": one.url}, {"model": "openai/scripted", "api_base": two.url}]}}
        settings = build(raw, {}, environ={})
        client = ModelClient(settings.model, router=build_router(settings), cache=Cache(None))

        async def ask() -> None:
            await asyncio.gather(*(client.chat([{"role": "user", "content": PROMPT.format(i=i)}]) for i in range(40)))

        asyncio.run(ask())
        assert one.requests >= 8 and two.requests >= 8
