"""Several deployments of one model (replicas, or several API keys) behind a litellm Router."""

from __future__ import annotations

import os
from typing import Any

from guards.config.settings import ConfigError, Settings


def model_list(settings: Settings) -> list[dict[str, Any]]:
    """litellm Router deployments; API keys are read from the named environment variables, never stored."""
    deployments = []
    for number, d in enumerate(settings.deployments):
        params: dict[str, Any] = {"model": d["model"], **d.get("params", {})}
        if d.get("api_base"):
            params["api_base"] = d["api_base"]
        if d.get("api_key_env"):
            key = os.environ.get(d["api_key_env"])
            if not key:
                raise ConfigError(f"target.deployments[{number}].api_key_env: ${d['api_key_env']} is not set")
            params["api_key"] = key
        deployments.append({"model_name": settings.model, "litellm_params": params})
    return deployments


def build_router(settings: Settings) -> Any:
    """A Router that balances load over the deployments and fails over when one errors (429, 5xx, down)."""
    from litellm import Router

    return Router(
        model_list=model_list(settings),
        routing_strategy="simple-shuffle",
        num_retries=max(1, len(settings.deployments) - 1),  # try the other deployments before our own retries
        retry_after=0,
        allowed_fails=1,
        cooldown_time=30,
        timeout=settings.timeout_s,
    )
