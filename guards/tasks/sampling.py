"""Deterministic, stratified, prefix-stable item order: N items are the first N, so raising N reuses the cache."""

from __future__ import annotations

import random
from collections import defaultdict
from collections.abc import Sequence

from guards.core.items import Item


def stratified_order(items: Sequence[Item], seed: int = 0) -> list[Item]:
    """A seeded permutation in which every prefix is (close to) proportionally stratified.

    Each item gets the key (rank within its shuffled stratum + jitter) / stratum size; sorting by it
    interleaves strata in proportion to their sizes. The order depends only on the items and the seed.
    """
    strata: dict[str, list[Item]] = defaultdict(list)
    for item in sorted(items, key=lambda i: (i.stratum, i.id)):
        strata[item.stratum].append(item)
    keyed: list[tuple[float, str, Item]] = []
    for name, members in strata.items():
        rng = random.Random(f"{seed}/{members[0].task}/{name}")
        rng.shuffle(members)
        size = len(members)
        keyed.extend(((rank + rng.random()) / size, item.id, item) for rank, item in enumerate(members))
    keyed.sort(key=lambda k: (k[0], k[1]))
    return [item for _, _, item in keyed]


def sample(items: Sequence[Item], n: int, seed: int = 0) -> list[Item]:
    """The first `n` items of the stratified order (all of them when n exceeds the task)."""
    return stratified_order(items, seed)[:n]
