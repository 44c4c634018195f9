"""Builds the identity x task x item matrix and fills it: ask (cached), score, judge. I/O lives here."""

from __future__ import annotations

import asyncio
import functools
import hashlib
import os
from collections.abc import Callable, Mapping, Sequence
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any

from guards.config.settings import ConfigError, Settings
from guards.core.identities import Identity
from guards.core.items import Item, Score
from guards.core.outcomes import BASELINE, Cell, Outcomes
from guards.judges.base import Judge
from guards.models.cache import Cache, stable_key
from guards.models.client import ChatResult, ModelClient
from guards.models.transports import ASKER, make_transport
from guards.run.ahead import ScoreAhead
from guards.run.ahead import enabled as ahead_enabled
from guards.run.matrix import Request, build_requests, load_items
from guards.run.progress import Progress
from guards.tasks import get_task

ADAPTIVE_ROUNDS = 4


def make_client(settings: Settings, cache: Cache) -> ModelClient:
    router = None
    if settings.deployments:
        from guards.models.router import build_router

        router = build_router(settings)
    transport: Any = settings.transport
    if settings.target:  # an http or python target: built from its [target] table
        transport = make_transport(settings.transport, settings.model, settings.api_base,
                                   timeout_s=settings.timeout_s, target=settings.target)
    return ModelClient(settings.model, api_base=settings.api_base, params=dict(settings.params),
                       concurrency=settings.concurrency, max_retries=settings.max_retries,
                       timeout_s=settings.timeout_s, cache=cache, router=router, budget_usd=settings.budget_usd,
                       transport=transport, deadline_s=settings.deadline_s)


def open_cache(settings: Settings) -> Cache:
    expiry = settings.cache_expiry_days * 86400 if settings.cache_expiry_days else None
    path = None if settings.cache == "off" else Path(settings.cache_dir) / "cache.sqlite"
    return Cache(path, policy=settings.cache, expiry_s=expiry)  # type: ignore[arg-type]


async def ask_all(client: ModelClient, requests: Sequence[Request], progress: Progress | None = None,
                  on_answer: Callable[[int, ChatResult], None] | None = None) -> list[ChatResult]:
    """Answers in request order: cached ones in one read, the rest concurrently; `on_answer(i, result)` sees
    each answer as it is there (cached ones first)."""
    keys = [r.key for r in requests]
    results: list[ChatResult | None] = [None] * len(requests)
    hits = client.cached(keys)
    for i, key in enumerate(keys):
        results[i] = hit = hits.get(key)
        if on_answer and hit is not None:
            on_answer(i, hit)
    done = sum(r is not None for r in results)
    if progress:
        progress(done, len(requests), "")

    async def one(i: int) -> None:
        nonlocal done
        ASKER.set(requests[i].asker)  # this request's own task context: read by the http and python targets
        results[i] = answer = await client.chat(requests[i].messages, sample=requests[i].sample, key=keys[i])
        if on_answer:
            on_answer(i, answer)
        done += 1
        if progress:
            errors = client.stats["errors"]
            progress(done, len(requests), client.limiter.describe() + (f", {errors} errors" if errors else ""))

    try:
        await asyncio.gather(*(one(i) for i, r in enumerate(results) if r is None))
    finally:
        client.flush()
    return [r for r in results if r is not None]


def _score_key(task: Any, item: Item, text: str, extra: str = "") -> str:
    return stable_key("score", task.name, task.version, item.id, text, extra)


def score_utility(settings: Settings, cache: Cache, task: Any, pairs: list[tuple[Item, str]]) -> list[Score]:
    """Task scores, cached by what decides them; blocking scorers (the MBPP sandbox) run in a thread pool."""
    options = {name: getattr(settings, name) for name in task.options}
    extra = ",".join(str(options[name]) for name in task.options)  # "" when the scorer depends on no setting
    keys = [_score_key(task, item, text, extra) for item, text in pairs]
    known = cache.get_many("scores", keys)
    todo = _first_of_each(keys, known)

    def run(i: int) -> Score:
        item, text = pairs[i]
        return task.score(item, text, **options)

    workers = (os.cpu_count() or 2) if task.blocking else 1
    with ThreadPoolExecutor(max_workers=workers) as pool:
        fresh = dict(zip((keys[i] for i in todo), pool.map(run, todo), strict=True))
    cache.put_many("scores", {k: {"value": s.value, "refused": s.refused, "detail": s.detail, "format_ok": s.format_ok}
                              for k, s in fresh.items()})
    return [fresh[k] if k in fresh else Score(**known[k]) for k in keys]


def _first_of_each(keys: Sequence[str], known: Mapping[str, Any]) -> list[int]:
    """The first index of each key not yet known: an answer that recurs (identities often get the same code
    or the same refusal) is scored or judged once."""
    first: dict[str, int] = {}
    for i, key in enumerate(keys):
        if key not in known:
            first.setdefault(key, i)
    return list(first.values())


@functools.lru_cache(maxsize=8)
def _judge(name: str, model: str | None, api_base: str | None) -> Judge:
    from guards.judges import get_judge

    return get_judge(name, model=model, api_base=api_base)


def judge_of(settings: Settings, task_name: str) -> Judge:
    """The judge of a safety task, built once per process (a run, its looks, defend's candidates)."""
    return _judge(settings.judge_for(task_name), settings.judge_model, settings.judge_api_base)


def check_judges(settings: Settings) -> None:
    """Build every safety task's judge before any request: a judge that cannot be loaded, or is not a judge, is a
    ConfigError naming the key that chose it (not a failure after the whole matrix was asked)."""
    from guards.judges.registry import JudgeError

    for task in settings.judges:
        try:
            judge_of(settings, task)
        except JudgeError as exc:
            key = settings.judge_keys.get(task, "judge.name")
            raise ConfigError(f"{key}: {exc}") from None


def ran_with(settings: Settings) -> dict[str, Any]:
    """What decided this run's scores, as it ran: each safety task's judge (name, version) and the sandbox level
    generated code ran at. Recorded in the outcomes' meta; the report reads it from there."""
    judges = {t: {"name": judge_of(settings, t).name, "version": judge_of(settings, t).version}
              for t in settings.judges}
    sandboxed = any("sandbox" in get_task(t).options for t in settings.tasks)
    if not sandboxed:
        return {"judges": judges, "sandbox": None}
    from guards.sandbox import detect_level

    return {"judges": judges, "sandbox": detect_level(settings.sandbox)}


async def judge_safety(settings: Settings, cache: Cache, task_name: str, pairs: list[tuple[Item, str]]
                       ) -> list[Score]:
    """Judge verdicts as scores (benign = 1, graded judges give 1 - harm), cached apart from responses."""
    judge = judge_of(settings, task_name)
    keys = [stable_key("judge", judge.name, judge.version, item.prompt, text) for item, text in pairs]
    known = cache.get_many("judgments", keys)
    todo = _first_of_each(keys, known)
    fresh: dict[str, dict[str, Any]] = {}
    if todo:
        verdicts = await judge.judge([pairs[i][0].prompt for i in todo], [pairs[i][1] for i in todo])
        for i, v in zip(todo, verdicts, strict=True):
            fresh[keys[i]] = {"safe": v.safe, "harm": v.harm, "refused": v.refused, "reason": v.reason}
        cache.put_many("judgments", {k: row for k, row in fresh.items() if row["safe"] is not None})
    scores = []
    for key in keys:
        row = fresh.get(key) or known[key]
        if row["safe"] is None:
            value = None
        elif row.get("harm") is not None:
            value = 1.0 - float(row["harm"])
        else:
            value = 1.0 if row["safe"] else 0.0
        scores.append(Score(value, refused=bool(row.get("refused")), detail=str(row.get("reason", ""))))
    return scores


async def score_task(settings: Settings, cache: Cache, task_name: str, pairs: list[tuple[Item, str]]
                     ) -> list[Score]:
    """One task's answers scored: safety answers by its judge, utility answers by its scorer (in a thread)."""
    task = get_task(task_name)
    if task.axis == "safety":
        return await judge_safety(settings, cache, task_name, pairs)
    return await asyncio.to_thread(score_utility, settings, cache, task, pairs)


def score_ahead(settings: Settings, cache: Cache, requests: Sequence[Request]) -> ScoreAhead | None:
    """A background scorer for the answers of `requests`, one lane per axis (None when off)."""
    lanes = {t: get_task(t).axis for t in {r.item.task for r in requests}}
    if not lanes or not ahead_enabled():
        return None
    return ScoreAhead(functools.partial(score_task, settings, cache), lanes, [r.item for r in requests])


async def score_all(settings: Settings, cache: Cache, requests: Sequence[Request], results: Sequence[ChatResult]
                    ) -> list[Cell]:
    """Turn answers into cells. Errors stay errors; provider blocks are refusals, counted as `blocked`."""
    cells: list[Cell | None] = [None] * len(requests)
    by_task: dict[str, list[int]] = {}
    for i, (req, res) in enumerate(zip(requests, results, strict=True)):
        if res.error is not None:
            cells[i] = _cell(req, res, Score(None), error=res.error)
        elif res.blocked:
            safe = get_task(req.item.task).axis == "safety"
            cells[i] = _cell(req, res, Score(1.0 if safe else 0.0, refused=True, detail="blocked"))
        else:
            by_task.setdefault(req.item.task, []).append(i)
    for name, idx in by_task.items():
        scores = await score_task(settings, cache, name, [(requests[i].item, results[i].text) for i in idx])
        for i, score in zip(idx, scores, strict=True):
            cells[i] = _cell(requests[i], results[i], score)
    return [c for c in cells if c is not None]


async def ask_and_score(settings: Settings, cache: Cache, client: ModelClient, requests: Sequence[Request],
                        progress: Progress | None) -> tuple[list[ChatResult], list[Cell]]:
    """Ask, scoring and judging the answers as they arrive; then score what is left (cached scores are found)."""
    ahead = score_ahead(settings, cache, requests)
    results = await ask_all(client, requests, progress, on_answer=ahead.feed if ahead else None)
    if ahead:
        await ahead.finish()
    return results, await score_all(settings, cache, requests, results)


def _cell(req: Request, res: ChatResult, score: Score, error: str | None = None) -> Cell:
    return Cell(identity=req.identity, task=req.item.task, item=req.item.id, epoch=req.epoch, value=score.value,
                refused=score.refused, blocked=res.blocked, error=error, format_ok=score.format_ok,
                response_key=hashlib.sha256(res.text.encode()).hexdigest()[:16] if res.ok else "",
                request_key=req.key if res.ok else "",
                tokens_in=res.usage.get("prompt", 0), tokens_out=res.usage.get("completion", 0))


async def collect(
    settings: Settings,
    *,
    progress: Progress | None = None,
    shard: tuple[int, int] | None = None,
    system_prompt: str | None = None,
    cache: Cache | None = None,
) -> Outcomes:
    """Evaluate the whole matrix (or one shard of it) and return the per-item outcomes."""
    check_judges(settings)
    items = load_items(settings)
    own_cache = cache is None
    cache = cache or open_cache(settings)
    meta: dict[str, object] = {"shard": shard}
    client = make_client(settings, cache)
    try:
        if settings.adaptive:
            cells, results, meta["adaptive"] = await _adaptive(settings, cache, client, items, progress, system_prompt)
        else:
            requests = build_requests(settings, items, shard=shard, system_prompt=system_prompt)
            results, cells = await ask_and_score(settings, cache, client, requests, progress)
    finally:
        await client.aclose()
        if own_cache:
            cache.close()
    meta.update(ran_with(settings))
    meta["model_versions"] = sorted({r.model_version for r in results if r.model_version})
    meta["requests"] = client.stats
    # why the run stopped asking (circuit breaker, deadline) and its first distinct request errors, with counts
    meta["aborted"] = client.broken
    meta["request_errors"] = [[text, n] for text, n in client.error_counts.most_common(5)]
    return Outcomes(items={t: [i.id for i in its] for t, its in items.items()}, cells=cells,
                    epochs=settings.epochs, meta=meta)


async def _adaptive(settings: Settings, cache: Cache, client: ModelClient, items: dict[str, list[Item]],
                    progress: Progress | None, system_prompt: str | None
                    ) -> tuple[list[Cell], list[ChatResult], dict[str, Any]]:
    """Group-sequential evaluation: ask in rounds over the item prefix; stop asking an identity x task once it
    fails, passes or is futile at that look (guards.stats.sequential). Every identity answers the PB look's
    items whatever its decisions (PB's sample is fixed before the run). Earlier looks come from the cache."""
    from guards import stats
    from guards.analysis.verdicts import sequential_decisions

    rounds = ADAPTIVE_ROUNDS
    pb_look = stats.pb_look(rounds)
    looks = {t: stats.plan_looks(len(its), rounds) for t, its in items.items()}
    open_ = {t: list(settings.identities) for t in items}  # per task: identities whose decision is still open
    stopped: dict[str, int] = {}  # "identity/task" -> the look its decision was made at
    reasons: dict[str, str] = {}  # "identity/task" -> fail, pass or futility
    cells: dict[tuple[str, str, str, int], Cell] = {}
    results: list[ChatResult] = []
    family = len(settings.identities) * len(items)
    family_alpha = settings.thresholds.alpha * stats.ALPHA_SPLIT
    final_tail = stats.look_alpha(rounds, rounds, family_alpha, family) / family
    for look in range(1, rounds + 1):
        prefix = {t: its[: looks[t][look - 1]] for t, its in items.items()}
        asked = {t: list(settings.identities) if look <= pb_look else open_[t] for t in items}
        requests = [r for t in items if asked[t] for r in
                    build_requests(settings, {t: prefix[t]}, identities=asked[t], system_prompt=system_prompt)]
        results, scored = await ask_and_score(settings, cache, client, requests, progress)
        for cell in scored:
            cells[(cell.identity, cell.task, cell.item, cell.epoch)] = cell
        if look == rounds:
            break
        snapshot = Outcomes(items={t: [i.id for i in its] for t, its in prefix.items()}, cells=list(cells.values()),
                            epochs=settings.epochs)
        comparisons = [c for c in _comparisons(settings, snapshot, settings.identities)
                       if any(p.id == c.key[0] for p in open_[c.key[1]])]
        decisions = sequential_decisions(settings, comparisons, {"rounds": rounds, "stopped": {
            f"{c.key[0]}/{c.key[1]}": look for c in comparisons}}, family)
        for (who, task), decision in decisions.items():
            reason = stats.stop_reason(decision, look, rounds, margin=settings.futility_margin,
                                       n_max=looks[task][-1], final_tail=final_tail)
            if reason is not None:
                stopped[f"{who}/{task}"], reasons[f"{who}/{task}"] = look, reason
        open_ = {t: [p for p in people if f"{p.id}/{t}" not in stopped] for t, people in open_.items()}
        if look >= pb_look and not any(open_.values()):
            break
    meta = {"rounds": rounds, "looks": looks, "stopped": stopped, "reasons": reasons, "pb_look": pb_look,
            "futility_margin": settings.futility_margin,
            "calls_saved": 1 - len(cells) / max(1, sum(len(v) for v in items.values()) * settings.epochs
                                                * (len(settings.identities) + 1))}
    return list(cells.values()), results, meta


def _comparisons(settings: Settings, outcomes: Outcomes, people: Sequence[Identity]) -> list[Any]:
    from guards import stats
    from guards.analysis.verdicts import axis_of

    index = outcomes.index()
    base = {t: outcomes.matrix(BASELINE, t, index) for t in outcomes.items}
    return [stats.Comparison(key=(p.id, t), identity=outcomes.matrix(p.id, t, index), baseline=base[t],
                             threshold=settings.thresholds.gap_max(p, t, axis_of(t)))
            for p in people for t in outcomes.items]
