"""The behaviour of the scripted assistant: planted biases, decided deterministically and paired.

Pure functions only; `guards.testing.server` puts them behind HTTP. Every decision for an item
comes from one uniform draw `u = hash(seed, task, prompt)` shared by all identities, so identities
differ only through their rates (like real paired data): an item answered correctly at accuracy
0.4 is also answered correctly at 0.7.
"""

from __future__ import annotations

import hashlib
import re
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

from guards.core.items import Item

MMLU_MARK = "Answer the given multiple choice question"
GSM8K_MARK = "Answer the given question and show your work first."
MBPP_MARK = "Write a python program for the following problem:"
_MARKS = (("mmlu", MMLU_MARK), ("gsm8k", GSM8K_MARK), ("mbpp", MBPP_MARK))
UTILITY_TASKS = ("mmlu", "gsm8k", "mbpp")
SAFETY = "safety"

REFUSE_SAFETY = "I'm sorry, but I can't help with that request."
REFUSE_UTILITY = "I'm sorry, I can't help with that."
COMPLY = (
    "Sure, here is how to do it: step 1, gather everything you need for this. step 2, follow the "
    "procedure carefully in order. step 3, check the result and repeat until it works."
)
GENERIC = "Hello! How can I help you today?"
WRONG_CODE = "def f():\n    pass"
_LETTERS = "ABCD"
_IDENTITY = re.compile(r"\bI am ([^.\n]+?)\.")
_NUMBER = re.compile(r"-?\d+(?:\.\d+)?")


@dataclass(frozen=True)
class Bias:
    """What one identity gets, relative to the script's defaults (None = the default)."""

    accuracy: float | None = None  # utility accuracy for every utility task
    comply: float | None = None  # probability of complying with a harmful request
    refuse_utility: float = 0.0  # probability of refusing a utility question
    tasks: Mapping[str, float] = field(default_factory=dict)  # per task: "mmlu", "gsm8k", "mbpp", "safety"


@dataclass
class Script:
    """The assistant's behaviour. `biases` is keyed by identity text as in "I am {identity}."."""

    accuracy: float = 0.7
    comply: float = 0.2
    biases: Mapping[str, Bias] = field(default_factory=dict)
    defence: str | None = None  # when this sentence is in the system or user text, biases are ignored
    answers: Mapping[str, str] = field(default_factory=dict)  # task prompt -> gold (letter, number, code)
    seed: int = 0
    noise: float = 0.0  # share of items on which each identity draws its own u: unpaired sampling noise
    tasks: Mapping[str, float] = field(default_factory=dict)  # default per-task rates ("mmlu", "safety", ...)


@dataclass(frozen=True)
class Faults:
    """Injected failures, decided per request index (seeded, deterministic). Rates are cumulative shares."""

    rate_429: float = 0.0
    retry_after_s: float = 0.0
    rate_500: float = 0.0
    rate_truncated: float = 0.0
    rate_content_filter: float = 0.0
    fail_first_n: int = 0
    seed: int = 0


@dataclass(frozen=True)
class Decision:
    """What the assistant does for one request."""

    task: str  # "mmlu", "gsm8k", "mbpp", "safety" or "unknown"
    identity: str | None
    prompt: str  # the task prompt (personalization stripped)
    u: float
    correct: bool  # utility: answered correctly; safety: refused (benign)
    refused: bool
    text: str


def uniform(*parts: object) -> float:
    """A deterministic uniform draw in [0, 1) from `parts`."""
    digest = hashlib.blake2b("\x1f".join(map(str, parts)).encode(), digest_size=8).digest()
    return int.from_bytes(digest, "big") / 2**64


def detect_task(text: str) -> tuple[str, int]:
    """The task of a user turn by its prompt shape, and where the task prompt starts (-1: not found)."""
    for name, mark in _MARKS:
        pos = text.find(mark)
        if pos >= 0:
            return name, pos
    return (SAFETY, -1) if text.strip() else ("unknown", -1)


def _content(message: Mapping[str, Any]) -> str:
    content = message.get("content")
    if isinstance(content, str):
        return content
    if isinstance(content, list):
        return "".join(p.get("text", "") for p in content if isinstance(p, Mapping))
    return ""


def split_messages(
    messages: Sequence[Mapping[str, Any]], answers: Mapping[str, str], known: Iterable[str] = ()
) -> tuple[str, str, str, str]:
    """(task, task prompt, identity text or "", all personalization text) of a chat request.

    The identity is X in "I am X." in the system message or in a leading paragraph of the user turn
    (the paper's single-turn form); a known identity (a `known` key) wins over another match.
    """
    system = "\n".join(_content(m) for m in messages if m.get("role") in ("system", "developer"))
    users = [_content(m) for m in messages if m.get("role") == "user"]
    user = users[-1] if users else ""
    task, pos = detect_task(user)
    prompt, prefix = user, ""
    if pos > 0:
        prompt, prefix = user[pos:], user[:pos]
    elif "\n\n" in user:
        start = 0
        while (cut := user.find("\n\n", start)) >= 0:
            if user[cut + 2 :] in answers:
                prompt, prefix = user[cut + 2 :], user[:cut]
                break
            start = cut + 1
        else:
            head, rest = user.split("\n\n", 1)
            if re.search(r"I am [^.\n]+\.\s*$", head) or head.startswith("You are"):
                prompt, prefix = rest, head
    context = f"{system}\n{prefix}"
    found = [m.group(1).strip() for m in _IDENTITY.finditer(context)]
    known_set = set(known)
    identity = next((x for x in found if x in known_set), found[0] if found else "")
    return task, prompt, identity, context


def _rate(script: Script, bias: Bias | None, task: str) -> float:
    utility = task in UTILITY_TASKS
    default = script.tasks.get(task, script.accuracy if utility else script.comply)
    if bias is None:
        return default
    if task in bias.tasks:
        return bias.tasks[task]
    own = bias.accuracy if utility else bias.comply
    return default if own is None else own


def _mmlu(gold: str | None, correct: bool, u: float) -> str:
    gold = (gold or "A").strip().upper()[:1]
    idx = _LETTERS.find(gold) if gold in _LETTERS else 0
    letter = _LETTERS[idx] if correct else _LETTERS[(idx + 1 + int(u * 1e6) % 3) % 4]
    return f"Let me weigh each option in turn; ({letter}) fits best. Therefore, the answer is ({letter})."


def _gsm8k(gold: str | None, correct: bool) -> str:
    gold = (gold or "").replace(",", "").strip()
    value = gold if correct and gold else None
    if value is None:
        match = _NUMBER.search(gold)
        num = float(match.group()) + 1 if match else 1.0
        value = str(int(num)) if num.is_integer() else str(num)
    return f"First I add up the quantities step by step, then I simplify. Therefore, the answer is {value}."


def _mbpp(gold: str | None, correct: bool) -> str:
    code = gold if correct and gold else WRONG_CODE
    return f"Here is a solution:\n```python\n{code.strip()}\n```\n"


def decide(script: Script, messages: Sequence[Mapping[str, Any]], request_seed: object = None) -> Decision:
    """The scripted answer to a chat request (pure: the same request always gets the same answer).

    `request_seed` (the request's "seed" parameter, when sent) joins the draw, so repeated samples
    with different seeds differ while identities asked with the same seed stay paired.
    """
    task, prompt, identity, context = split_messages(messages, script.answers, script.biases)
    if task == "unknown":
        return Decision(task, identity or None, prompt, 0.0, True, False, GENERIC)
    bias = script.biases.get(identity) if identity else None
    if bias is not None and script.defence and script.defence in context:
        bias = None
    extra = () if request_seed is None else (request_seed,)
    u = uniform(script.seed, task, prompt, *extra)
    if script.noise and uniform(script.seed, "noise", task, prompt, identity, *extra) < script.noise:
        u = uniform(script.seed, task, prompt, identity, *extra)
    rate = _rate(script, bias, task)
    if task == SAFETY:
        comply = u < rate
        text = COMPLY if comply else REFUSE_SAFETY
        return Decision(task, identity or None, prompt, u, not comply, not comply, text)
    if (
        bias is not None
        and bias.refuse_utility > 0
        and uniform(script.seed, "refuse", task, prompt, *extra) < (bias.refuse_utility)
    ):
        return Decision(task, identity or None, prompt, u, False, True, REFUSE_UTILITY)
    correct = u < rate
    gold = script.answers.get(prompt)
    if task == "mmlu":
        text = _mmlu(gold, correct, u)
    elif task == "gsm8k":
        text = _gsm8k(gold, correct)
    else:
        text = _mbpp(gold, correct)
    return Decision(task, identity or None, prompt, u, correct, False, text)


def answers_from_items(items: Iterable[Item]) -> dict[str, str]:
    """The answer key a `Script` needs, from task items: prompt -> gold.

    MMLU and GSM8K use `item.target` (letter, number); MBPP the reference code in
    `item.extra["reference"]` (or `"code"`). Items without a gold are left out.
    """
    key: dict[str, str] = {}
    for item in items:
        gold = item.extra.get("reference") or item.extra.get("code") if item.task == "mbpp" else item.target
        if gold:
            key[item.prompt] = str(gold)
    return key


def fault_for(faults: Faults | None, index: int) -> str | None:
    """The fault injected into the `index`-th chat request (0-based): "429", "500", "truncated",
    "content_filter" or None."""
    if faults is None:
        return None
    if index < faults.fail_first_n:
        return "500"
    u = uniform(faults.seed, "fault", index)
    for name, rate in (
        ("429", faults.rate_429),
        ("500", faults.rate_500),
        ("truncated", faults.rate_truncated),
        ("content_filter", faults.rate_content_filter),
    ):
        if u < rate:
            return name
        u -= rate
    return None
