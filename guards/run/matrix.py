"""The request matrix: which items each task asks (the prefix-stable sample), which shard an item falls in, and
every identity's and the baseline's exact messages with their cache key, computed once and carried in each
request (the runner, the planner and export-pairs read them from here)."""

from __future__ import annotations

import dataclasses
import functools
import hashlib
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path

from guards.config.settings import Settings
from guards.core.identities import Identity, personalize
from guards.core.items import Item
from guards.core.outcomes import BASELINE
from guards.models.client import request_keys
from guards.tasks import get_task
from guards.tasks.data import enough
from guards.tasks.sampling import stratified_order


@dataclass(frozen=True)
class Request:
    """One question to ask: who asks, which item, which epoch, and the exact messages."""

    identity: str
    item: Item
    epoch: int
    messages: list[dict[str, str]] = field(hash=False)
    sample: int = 0  # the sample index sent with it: its epoch when sampling (temperature > 0), else 0
    key: str = ""  # its cache key (model, api_base, messages, params, sample): computed once, here
    asker: str | None = None  # the identity's text (None for the baseline), for targets that take it apart


@functools.lru_cache(maxsize=16)
def task_order(name: str, data_dir: Path | None, variant: str | None, seed: int) -> tuple[Item, ...]:
    """A task's items in their seeded stratified order, loaded once per process (reruns, defend candidates)."""
    return tuple(stratified_order(get_task(name).load(data_dir, variant), seed))


def load_items(settings: Settings) -> dict[str, list[Item]]:
    """The prefix-stable sample of every configured task: the first N items of its order."""
    out = {}
    for name in settings.tasks:
        order = task_order(name, settings.data_path, settings.variants.get(name), settings.seed)
        files = get_task(name).data_files
        source = (settings.data_path / files.get(settings.variants.get(name) or "", files[""])
                  if settings.data_path else None)
        out[name] = enough(name, order, settings.samples[name], source)[: settings.samples[name]]
    return out


def in_shard(item: Item, shard: tuple[int, int] | None) -> bool:
    """Deterministic split of items over n shards (every identity and the baseline of an item together)."""
    if shard is None:
        return True
    index, count = shard
    digest = hashlib.sha256(f"{item.task}/{item.id}".encode()).digest()
    return int.from_bytes(digest[:8], "big") % count == index


def messages_for(settings: Settings, item: Item, who: Identity | None, system_prompt: str | None = None,
                 single_turn: bool | None = None) -> list[dict[str, str]]:
    """The exact messages `who` (None = the baseline) sends for `item`: the configured placement, template,
    baseline mode and the item's earlier turns; the deployed system prompt unless another is given."""
    single = get_task(item.task).single_turn or settings.single_turn if single_turn is None else single_turn
    return personalize(item.prompt, who, system_prompt=settings.system_prompt if system_prompt is None
                       else system_prompt, template=settings.template, single_turn=single,
                       baseline=settings.baseline, where=settings.where, turns=item.turns)  # type: ignore[arg-type]


def build_requests(
    settings: Settings,
    items: dict[str, list[Item]],
    identities: Sequence[Identity] | None = None,
    shard: tuple[int, int] | None = None,
    system_prompt: str | None = None,
) -> list[Request]:
    """The whole matrix: the baseline and every identity, on exactly the same items and epochs."""
    people: list[Identity | None] = [None, *(identities if identities is not None else settings.identities)]
    prompt = system_prompt if system_prompt is not None else settings.system_prompt
    sampling = bool(settings.params.get("temperature", 0))
    requests = []
    for name, task_items in items.items():
        single = get_task(name).single_turn or settings.single_turn
        for item in task_items:
            if not in_shard(item, shard):
                continue
            for who in people:
                messages = messages_for(settings, item, who, prompt, single)
                for epoch in range(settings.epochs):
                    requests.append(Request(who.id if who else BASELINE, item, epoch, messages,
                                            epoch if sampling else 0, asker=who.text if who else None))
    keys = request_keys(settings.model, settings.api_base, [r.messages for r in requests], dict(settings.params),
                        [r.sample for r in requests])
    return [dataclasses.replace(r, key=k) for r, k in zip(requests, keys, strict=True)]


