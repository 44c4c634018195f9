"""Preference pairs for DPO from a finished run: where an identity's answer was wrong or unsafe and the
baseline's right or safe on the same item (and epoch), the baseline's answer is `chosen`.

Lines are in TRL DPOTrainer's conversational format (`prompt` as chat messages, `chosen` and `rejected`
as one assistant message each) plus metadata (identity, task, item, epoch, variant), validated against
`guards/schemas/pairs.schema.json`. Prompt variants, as in the paper's DPO experiments:

- `identity`: the messages the identity sent (the system prompt with its "I am {identity}." sentence);
- `empty`: an empty system message and the bare question;
- `random`: the same personalization with an identity drawn at random (seeded) from the configured ones.

Response texts come from the response cache, found by the request key each answer was cached under;
a text whose hash no longer matches the run's outcome (the cache was refreshed since) is left out.
"""

from __future__ import annotations

import hashlib
import json
import random
from collections.abc import Iterator, Mapping, Sequence
from pathlib import Path
from typing import Any

from guards.config.settings import ConfigError, Settings
from guards.core.identities import Identity
from guards.core.items import Item
from guards.core.outcomes import BASELINE, Cell, Outcomes, outcomes_path
from guards.core.schemas import first_error, load_schema, where
from guards.models.cache import Cache
from guards.run.matrix import Request, build_requests, messages_for
from guards.tasks import get_task

VARIANTS = ("identity", "empty", "random")
GOOD = 0.5  # value >= GOOD: right / safe; below: wrong / unsafe


def schema() -> dict[str, Any]:
    return load_schema("pairs")


def validate_pair(pair: Mapping[str, Any]) -> None:
    """Raise ValueError naming the first place where `pair` does not match the schema."""
    err = first_error(pair, "pairs")
    if err is not None:
        raise ValueError(f"pair does not match pairs.schema.json at {where(err)}: {err.message}")


def contrasts(outcomes: Outcomes) -> Iterator[tuple[Cell, Cell]]:
    """(identity cell, baseline cell) where the identity scored < 0.5 and the baseline >= 0.5, in run order."""
    index = outcomes.index()
    for cell in outcomes.cells:
        if cell.identity == BASELINE or cell.value is None or cell.value >= GOOD or not cell.response_key:
            continue
        base = index.get((BASELINE, cell.task, cell.item, cell.epoch))
        if base is not None and base.value is not None and base.value >= GOOD and base.response_key:
            yield cell, base


def text_hash(text: str) -> str:
    return hashlib.sha256(text.encode()).hexdigest()[:16]


def prompt_for(settings: Settings, request: Request, variant: str, rng: random.Random,
               identities: Sequence[Identity]) -> list[dict[str, str]]:
    """The `prompt` messages of a pair in one of the VARIANTS."""
    if variant == "identity":
        return [dict(m) for m in request.messages]
    if variant == "empty":
        return [{"role": "system", "content": ""}, {"role": "user", "content": request.item.prompt}]
    if variant == "random":
        return messages_for(settings, request.item, rng.choice(list(identities)))  # placed as the run placed it
    raise ValueError(f"unknown variant {variant!r}; use one of {VARIANTS}")


def build_pairs(settings: Settings, outcomes: Outcomes, items: Mapping[str, Sequence[Item]],
                texts: Mapping[str, str], *, variant: str = "identity", seed: int = 0
                ) -> tuple[list[dict[str, Any]], dict[str, int]]:
    """The pairs of a run (pure: `texts` maps request keys to response texts) and counts of what was left out."""
    if variant not in VARIANTS:
        raise ValueError(f"unknown variant {variant!r}; use one of {VARIANTS}")
    asked = {c.identity for c in outcomes.cells} - {BASELINE}
    people = [i for i in settings.identities if i.id in asked]
    unknown = asked - {i.id for i in people}
    if unknown:
        raise ConfigError(f"the run has identities the configuration does not: {sorted(unknown)}")
    requests = build_requests(settings, {t: list(v) for t, v in items.items()}, identities=people)
    by_cell = {(r.identity, r.item.task, r.item.id, r.epoch): r for r in requests}
    rng = random.Random(seed)
    pairs, counts = [], {"contrasts": 0, "missing": 0, "stale": 0}
    for cell, base in contrasts(outcomes):
        counts["contrasts"] += 1
        req = by_cell.get((cell.identity, cell.task, cell.item, cell.epoch))
        base_req = by_cell.get((BASELINE, cell.task, cell.item, cell.epoch))
        if req is None or base_req is None:
            counts["missing"] += 1
            continue
        rejected, chosen = texts.get(req.key), texts.get(base_req.key)
        if rejected is None or chosen is None:
            counts["missing"] += 1
            continue
        if text_hash(rejected) != cell.response_key or text_hash(chosen) != base.response_key:
            counts["stale"] += 1
            continue
        pair = {
            "prompt": prompt_for(settings, req, variant, rng, settings.identities),
            "chosen": [{"role": "assistant", "content": chosen}],
            "rejected": [{"role": "assistant", "content": rejected}],
            "identity": cell.identity, "task": cell.task, "axis": get_task(cell.task).axis, "item": cell.item,
            "epoch": cell.epoch, "variant": variant,
        }
        validate_pair(pair)
        pairs.append(pair)
    counts["pairs"] = len(pairs)
    return pairs, counts


def run_items(settings: Settings, outcomes: Outcomes) -> dict[str, list[Item]]:
    """The items a run asked, in its order, loaded from the data again."""
    out = {}
    for task, ids in outcomes.items.items():
        loaded = {i.id: i for i in get_task(task).load(settings.data_path, settings.variants.get(task))}
        absent = [i for i in ids if i not in loaded]
        if absent:
            raise ConfigError(f"{task}: {len(absent)} item(s) of the run are not in the data (first: {absent[0]!r}); "
                              "is GUARDS_DATA_DIR the run's data?")
        out[task] = [loaded[i] for i in ids]
    return out


def check_run(settings: Settings, report: Mapping[str, Any]) -> None:
    """The configuration must be the run's: same model, system prompt, template and parameters."""
    rec = report.get("record", {})
    prompt = settings.system_prompt
    mine = {
        "model": settings.model, "template": settings.template, "params": dict(settings.params),
        "system_prompt_sha256": hashlib.sha256(prompt.encode()).hexdigest() if prompt is not None else None,
    }
    differ = [k for k, v in mine.items() if k in rec and rec[k] != v]
    if differ:
        raise ConfigError(f"the configuration differs from the run's in {', '.join(differ)}: pass the run's "
                          "thresholds.toml (--config) so the answers can be found in the cache")


def response_texts(settings: Settings, keys: Sequence[str]) -> dict[str, str]:
    """Response texts from the settings' cache (read whatever the cache policy and expiry say)."""
    path = Path(settings.cache_dir) / "cache.sqlite"
    if not path.exists():
        raise ConfigError(f"no response cache at {path}: export-pairs needs the cache the run wrote "
                          "(--cache-dir / GUARDS_CACHE_DIR)")
    store = Cache(path, policy="use")
    try:
        rows = store.get_many("responses", keys)
    finally:
        store.close()
    return {k: str(v.get("text", "")) for k, v in rows.items() if isinstance(v, Mapping)}


def export_pairs(settings: Settings, report_path: Path, out: Path, *, variant: str = "identity", seed: int = 0
                 ) -> dict[str, int]:
    """Read a finished run (report, outcomes beside it, response cache) and write its pairs as JSONL."""
    from guards.report.build import load_report

    report = load_report(report_path)
    check_run(settings, report)
    source = outcomes_path(report_path)
    if not source.exists():
        raise ConfigError(f"no outcomes beside the report ({source}): export-pairs needs the per-item outcomes")
    outcomes = Outcomes.read(source)
    items = run_items(settings, outcomes)
    people = [i for i in settings.identities if any(c.identity == i.id for c in outcomes.cells)]
    keys = [r.key for r in build_requests(settings, items, identities=people)]
    pairs, counts = build_pairs(settings, outcomes, items, response_texts(settings, keys), variant=variant,
                                seed=seed)
    out.parent.mkdir(parents=True, exist_ok=True)
    with out.open("w", encoding="utf-8") as handle:
        for pair in pairs:
            handle.write(json.dumps(pair, ensure_ascii=False) + "\n")
    for pair in pairs:
        counts[f"task:{pair['task']}"] = counts.get(f"task:{pair['task']}", 0) + 1
    return counts
