"""Dynamic batching and batch-invariant decoding for in-process transformers models.

`Batcher` gathers requests that arrive close together for one worker thread and lets it pull
more between decode steps. `DecodeSession` is a running batch with a shared, left-padded KV
cache: prompts are prefilled one by one and merged in, each row keeps its own positions,
sampling parameters and seed, and rows leave as they finish (continuous batching);
`decode_batch` runs one fixed batch to the end. `make_batch_invariant` makes a row's logits
bitwise independent of the other rows in its batch, so greedy and seeded outputs do not depend
on how requests happened to be batched.

torch is imported inside functions only: importing this module is cheap.
"""

from __future__ import annotations

import functools
import queue
import threading
import time
from collections import deque
from collections.abc import Callable, Sequence
from concurrent.futures import Future
from dataclasses import dataclass, field
from typing import Any

INVARIANT_ATTENTION = "guards_batch_invariant"


@dataclass(frozen=True, slots=True)
class GenParams:
    """Generation parameters of one request; temperature 0 is greedy."""

    max_tokens: int = 512
    temperature: float = 0.0
    top_k: int | None = None
    top_p: float | None = None
    stop: tuple[str, ...] = ()
    seed: int | None = None


@dataclass(frozen=True, slots=True)
class Generation:
    """One finished generation: text (cut at the first stop string), why it ended, token counts."""

    text: str
    finish_reason: str  # "stop" (end of turn or a stop string) or "length" (max_tokens)
    prompt_tokens: int
    completion_tokens: int


def cut_at_stop(text: str, stops: Sequence[str]) -> tuple[str, bool]:
    """Cut `text` before the earliest occurrence of any stop string; say whether one occurred."""
    hits = [i for i in (text.find(s) for s in stops if s) if i >= 0]
    return (text[: min(hits)], True) if hits else (text, False)


def choose_tokens(logits: Any, params: Sequence[GenParams], generators: Sequence[Any]) -> Any:
    """Pick the next token per row: argmax at temperature 0, else sampling with the row's generator."""
    import torch

    logits = logits.float().cpu()  # per-row generators live on the CPU
    picked = logits.argmax(dim=-1)
    for row, (p, gen) in enumerate(zip(params, generators, strict=True)):
        if p.temperature <= 0:
            continue
        scores = logits[row].float() / p.temperature
        if p.top_k is not None and 0 < p.top_k < scores.numel():
            kth = torch.topk(scores, p.top_k).values[-1]
            scores = scores.masked_fill(scores < kth, float("-inf"))
        if p.top_p is not None and 0 < p.top_p < 1:
            sorted_scores, order = torch.sort(scores, descending=True)
            cum = sorted_scores.softmax(-1).cumsum(-1)
            drop = cum - sorted_scores.softmax(-1) >= p.top_p  # keep the smallest set reaching top_p
            scores = scores.scatter(0, order[drop], float("-inf"))
        probs = scores.softmax(-1)
        picked[row] = torch.multinomial(probs, 1, generator=gen)[0]
    return picked


def decode_batch(
    model: Any,
    prompts: Sequence[Sequence[int]],
    params: Sequence[GenParams],
    *,
    eos_ids: frozenset[int],
    pad_id: int,
    detokenize: Callable[[list[int]], str],
) -> list[Generation]:
    """Generate for a batch of tokenized prompts together (left padding, KV cache, per-row params)."""
    session = DecodeSession(model, eos_ids=eos_ids, pad_id=pad_id, detokenize=detokenize)
    results: dict[int, Generation] = dict(session.add(prompts, params, list(range(len(prompts)))))
    while session.size:
        results.update(session.step())
    return [results[i] for i in range(len(prompts))]


@dataclass(slots=True)
class _Row:
    handle: Any
    prompt_len: int
    params: GenParams
    generator: Any
    tokens: list[int] = field(default_factory=list)


class DecodeSession:
    """A running batch on one model: rows join (prefilled, then merged) and leave between decode steps.

    All rows share one KV cache, left-padded to a common width; each row keeps its own positions,
    sampling parameters and random generator, so its output does not depend on its companions
    (given batch-invariant kernels, see `make_batch_invariant`).
    """

    def __init__(
        self, model: Any, *, eos_ids: frozenset[int], pad_id: int, detokenize: Callable[[list[int]], str]
    ) -> None:
        self.model, self.eos_ids, self.pad_id, self.detokenize = model, eos_ids, pad_id, detokenize
        self.rows: list[_Row] = []
        self.cache: Any = None
        self.mask: Any = None  # (rows, width) 1 = real token
        self.last: Any = None  # (rows,) position of each row's last token
        self.logits: Any = None  # (rows, vocab) logits for each row's next token

    @property
    def size(self) -> int:
        return len(self.rows)

    def add(
        self, prompts: Sequence[Sequence[int]], params: Sequence[GenParams], handles: Sequence[Any]
    ) -> list[tuple[Any, Generation]]:
        """Prefill new rows (each alone: no padding waste) and merge them into the running batch.

        Returns the rows that are finished at once (max_tokens <= 0).
        """
        import torch
        from transformers import DynamicCache

        done = [
            (h, Generation("", "length", len(p), 0))
            for h, p, q in zip(handles, prompts, params, strict=True)
            if q.max_tokens <= 0
        ]
        device = self.model.device
        caches, masks, lasts, logits = [], [], [], []
        for h, p, q in zip(handles, prompts, params, strict=True):
            if q.max_tokens <= 0:
                continue
            ids = torch.tensor([list(p)], dtype=torch.long, device=device)
            cache = DynamicCache(config=self.model.config)
            with torch.inference_mode():
                logits.append(
                    _forward(self.model, ids, torch.ones_like(ids), torch.arange(len(p), device=device)[None], cache)
                )
            caches.append(cache)
            masks.append(torch.ones_like(ids))
            lasts.append(torch.tensor([len(p) - 1], device=device))
            self.rows.append(_Row(h, len(p), q, _generator(q.seed) if q.temperature > 0 else None))
        if caches:
            if self.cache is not None:
                caches.insert(0, self.cache)
                masks.insert(0, self.mask)
                lasts.insert(0, self.last)
                logits.insert(0, self.logits)
            total = max(m.shape[1] for m in masks)
            self.cache = _merge_caches(caches, total)
            self.mask = torch.cat([_left_pad(m, total) for m in masks])
            self.last, self.logits = torch.cat(lasts), torch.cat(logits)
        return done

    def step(self) -> list[tuple[Any, Generation]]:
        """Pick one token per row; return the rows that finished; run the model for the others."""
        import torch

        done: list[tuple[Any, Generation]] = []
        if not self.rows:
            return done
        picked = choose_tokens(self.logits, [r.params for r in self.rows], [r.generator for r in self.rows])
        keep: list[int] = []
        for i, (row, token) in enumerate(zip(self.rows, picked.tolist(), strict=True)):
            row.tokens.append(token)
            reason = self._finished(row)
            if reason:
                done.append((row.handle, self._result(row, reason)))
            else:
                keep.append(i)
        if len(keep) < len(self.rows):
            self._select(keep)
        if self.rows:
            device = self.model.device
            nxt = picked[torch.tensor(keep)][:, None].to(device)
            self.mask = torch.cat([self.mask, self.mask.new_ones((len(keep), 1))], dim=-1)
            self.last = self.last + 1
            with torch.inference_mode():
                self.logits = _forward(self.model, nxt, self.mask, self.last[:, None], self.cache)
        return done

    def _finished(self, row: _Row) -> str | None:
        if row.tokens[-1] in self.eos_ids:
            return "stop"
        if row.params.stop and cut_at_stop(self.detokenize(row.tokens), row.params.stop)[1]:
            return "stop"
        return "length" if len(row.tokens) >= row.params.max_tokens else None

    def _result(self, row: _Row, reason: str) -> Generation:
        body = [t for t in row.tokens if t not in self.eos_ids]
        text, _ = cut_at_stop(self.detokenize(body), row.params.stop)
        return Generation(text, reason, row.prompt_len, len(row.tokens))

    def _select(self, keep: list[int]) -> None:
        """Keep only rows `keep`; drop cache columns that became padding for every row."""
        import torch

        self.rows = [self.rows[i] for i in keep]
        if not keep:
            self.cache = self.mask = self.last = self.logits = None
            return
        idx = torch.tensor(keep, device=self.mask.device)
        self.cache.batch_select_indices(idx)
        self.mask, self.last, self.logits = self.mask[idx], self.last[idx], self.logits[idx]
        first = int(self.mask.any(dim=0).nonzero()[0])
        if first > 0:
            self.mask = self.mask[:, first:]
            for layer in self.cache.layers:
                layer.keys, layer.values = layer.keys[:, :, first:], layer.values[:, :, first:]


def _left_pad(x: Any, width: int) -> Any:
    """Left-pad the sequence axis to `width`: the last axis of a mask, axis -2 of (batch, heads, seq, dim)."""
    import torch.nn.functional as F

    if x.dim() == 4:
        pad = width - x.shape[-2]
        return F.pad(x, (0, 0, pad, 0)) if pad else x
    pad = width - x.shape[-1]
    return F.pad(x, (pad, 0)) if pad else x


def _merge_caches(caches: list[Any], total: int) -> Any:
    """Stack the rows of several caches into the first, each left-padded to `total` positions."""
    import torch
    from transformers.cache_utils import DynamicLayer

    if len(caches) == 1:
        return caches[0]
    for i, layer in enumerate(caches[0].layers):
        parts = [c.layers[i] for c in caches]
        if any(type(part) is not DynamicLayer for part in parts):
            raise TypeError("continuous batching needs a plain DynamicCache")
        layer.keys = torch.cat([_left_pad(part.keys, total) for part in parts])
        layer.values = torch.cat([_left_pad(part.values, total) for part in parts])
    return caches[0]


def _forward(model: Any, ids: Any, mask: Any, positions: Any, cache: Any) -> Any:
    out = model(
        input_ids=ids,
        attention_mask=mask,
        position_ids=positions,
        past_key_values=cache,
        use_cache=True,
        logits_to_keep=1,
    )
    return out.logits[:, -1, :].float()


def _generator(seed: int | None) -> Any:
    import torch

    gen = torch.Generator()
    if seed is None:
        gen.seed()
    else:
        gen.manual_seed(int(seed) % (2**63))
    return gen


# --- batch invariance -------------------------------------------------------------------------


def make_batch_invariant(model: Any, rows: int = 16) -> None:
    """Make each row's logits bitwise independent of its batch companions (CPU float32).

    Two things make batched logits differ from unbatched ones by float noise (~1e-5), enough to
    flip a near-tie under greedy decoding: BLAS picks different kernels (and thread splits) for
    different numbers of rows M (MKL's small-M paths), and padded attention sums over a
    different number of keys. Fix: in decode steps (one new token per sequence) every nn.Linear
    runs as fixed-shape GEMMs of exactly `rows` rows, zero-padded, so a row's result depends
    neither on its position nor on its companions; attention runs per sequence on its unpadded
    keys, with the same shapes as an unbatched call. Prompts need no blocking: DecodeSession.add
    prefills each prompt alone, so its shapes never depend on the batch.
    """
    import torch
    from transformers import AttentionInterface
    from transformers.masking_utils import AttentionMaskInterface, sdpa_mask

    AttentionInterface.register(INVARIANT_ATTENTION, _invariant_attention)
    AttentionMaskInterface.register(INVARIANT_ATTENTION, sdpa_mask)
    model.set_attn_implementation(INVARIANT_ATTENTION)
    for module in model.modules():
        if isinstance(module, torch.nn.Linear):
            module.forward = _BlockedLinear(module, rows)  # type: ignore[method-assign,assignment]


@dataclass(slots=True)
class _BlockedLinear:
    """nn.Linear whose decode inputs (batch, 1, in) run as GEMMs of exactly `rows` rows each."""

    module: Any
    rows: int

    def __call__(self, x: Any) -> Any:
        import torch
        import torch.nn.functional as F

        if x.dim() >= 3 and x.shape[-2] > 1:  # a prompt, prefilled alone: its shape is its own
            return F.linear(x, self.module.weight, self.module.bias)
        flat = x.reshape(-1, x.shape[-1])
        m = flat.shape[0]
        pad = (-m) % self.rows
        if pad:
            flat = torch.cat([flat, flat.new_zeros((pad, flat.shape[1]))])
        weight_t = self.module.weight.t()
        out = flat.new_empty((flat.shape[0], weight_t.shape[1]))
        for start in range(0, flat.shape[0], self.rows):
            torch.mm(flat[start : start + self.rows], weight_t, out=out[start : start + self.rows])
        if self.module.bias is not None:
            out += self.module.bias
        return out[:m].reshape(*x.shape[:-1], out.shape[-1])


def _invariant_attention(
    module: Any, query: Any, key: Any, value: Any, attention_mask: Any, **kwargs: Any
) -> tuple[Any, None]:
    """SDPA per sequence on its unpadded span (left padding read from the 4-D mask)."""
    import torch
    from transformers.integrations.sdpa_attention import sdpa_attention_forward

    n, _, q_len, _ = query.shape
    kv_len = key.shape[2]
    if attention_mask is None:
        pads = [0] * n
    else:
        last = attention_mask[:, 0, -1, :]
        valid = last if last.dtype == torch.bool else last == 0  # additive float masks: 0 = attend
        pads = (kv_len - valid.sum(-1)).tolist()
    if n == 1 and pads[0] == 0 and (attention_mask is None or q_len in (1, kv_len)):
        return sdpa_attention_forward(module, query, key, value, None, **kwargs)
    out = query.new_zeros((n, q_len, query.shape[1], value.shape[-1]))
    for b, pad in enumerate(pads):
        qp = max(0, pad - (kv_len - q_len))
        sub_mask = None
        if q_len - qp not in (1, kv_len - pad) and attention_mask is not None:
            sub_mask = attention_mask[b : b + 1, :, qp:, pad:]
        o, _ = sdpa_attention_forward(
            module, query[b : b + 1, :, qp:], key[b : b + 1, :, pad:], value[b : b + 1, :, pad:], sub_mask, **kwargs
        )
        out[b, qp:] = o[0]
    return out, None


# --- dynamic batching -------------------------------------------------------------------------


@dataclass(slots=True)
class Request:
    """A queued request: the model it needs, what to generate, and the future that gets the result."""

    key: str
    payload: Any
    future: Future[Any] = field(default_factory=Future)
    arrived: float = field(default_factory=time.monotonic)


class Batcher:
    """`lanes` worker threads serving requests in batches of the same model, at most `max_batch` rows in
    flight in all (a lane's batch holds up to max_batch / lanes rows, rounded up).

    The first request of a batch waits at most `wait_s` for companions; requests that queued
    while the lanes were busy go at once. A lane forms its next batch only when it is free, so queued
    requests go to whichever lane frees first. `run_batch(key, requests, pull)` serves them and may
    call `pull(n)` between decode steps to take up to n more queued requests for the same key
    (continuous batching); it must resolve every future it was given or pulled. With several lanes
    `run_batch` runs concurrently in each (an engine with one replica per lane, e.g. CTranslate2's
    inter_threads); one lane (the default) serialises it.
    """

    def __init__(self, run_batch: RunBatch, *, max_batch: int = 16, wait_s: float = 0.03, lanes: int = 1) -> None:
        self.run_batch, self.max_batch, self.wait_s = run_batch, max(1, max_batch), max(0.0, wait_s)
        self.lanes = max(1, min(lanes, self.max_batch))
        self.lane_batch = -(-self.max_batch // self.lanes)
        self._queue: queue.SimpleQueue[Request] = queue.SimpleQueue()
        self._held: deque[Request] = deque()
        self._lock = threading.Lock()
        self._forming = threading.Lock()  # one lane at a time takes requests from the queue
        self._threads: list[threading.Thread] = []

    def submit(self, key: str, payload: Any) -> Future[Any]:
        """Queue one request; the worker threads start on first use."""
        req = Request(key, payload)
        self._queue.put(req)
        with self._lock:
            self._threads = [t for t in self._threads if t.is_alive()]
            while len(self._threads) < self.lanes:
                name = f"guards-local-batcher-{len(self._threads)}"
                self._threads.append(threading.Thread(target=self._loop, name=name, daemon=True))
                self._threads[-1].start()
        return req.future

    def _loop(self) -> None:
        while True:
            with self._forming:
                batch = _running(self._next_batch())
            if not batch:
                continue
            try:
                self.run_batch(batch[0].key, batch, functools.partial(self._pull, batch[0].key))
            except BaseException as exc:  # resolve every future, whatever went wrong
                for r in batch:
                    if not r.future.done():
                        r.future.set_exception(exc)

    def _next_batch(self) -> list[Request]:
        first = self._held.popleft() if self._held else self._queue.get()
        batch, others = [first], deque[Request]()
        while self._held and len(batch) < self.lane_batch:
            r = self._held.popleft()
            (batch if r.key == first.key else others).append(r)
        deadline = first.arrived + self.wait_s
        while len(batch) < self.lane_batch:
            try:
                r = self._queue.get(timeout=max(0.0, deadline - time.monotonic()))
            except queue.Empty:
                break
            (batch if r.key == first.key else others).append(r)
        self._held.extendleft(reversed(others))
        return batch

    def _pull(self, key: str, n: int) -> list[Request]:
        """Up to n queued requests for `key`, without waiting; none while another model is waiting, or while
        another lane is forming its batch (that lane takes them)."""
        if not self._forming.acquire(blocking=False):
            return []
        try:
            return self._take(key, n)
        finally:
            self._forming.release()

    def _take(self, key: str, n: int) -> list[Request]:
        while True:
            try:
                self._held.append(self._queue.get_nowait())
            except queue.Empty:
                break
        if n <= 0 or any(r.key != key for r in self._held):
            return []
        taken = [self._held.popleft() for _ in range(min(n, len(self._held)))]
        return _running(taken)


RunBatch = Callable[[str, list[Request], Callable[[int], list[Request]]], None]


def _running(requests: list[Request]) -> list[Request]:
    """Drop cancelled requests; mark the others running."""
    return [r for r in requests if r.future.set_running_or_notify_cancel()]


_SENTINEL = "guards-system-sentinel-4f1c"


def supports_system(tokenizer: Any) -> bool:
    """Whether the tokenizer's chat template renders a system turn (else the system text joins the user turn);
    both in-process engines, transformers and CTranslate2, ask it of the same tokenizer."""
    if not getattr(tokenizer, "chat_template", None):
        return False
    probe = [{"role": "system", "content": _SENTINEL}, {"role": "user", "content": "hi"}]
    try:
        return _SENTINEL in tokenizer.apply_chat_template(probe, tokenize=False, add_generation_prompt=True)
    except Exception:
        return False
