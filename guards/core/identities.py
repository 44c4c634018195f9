"""The identity catalogue (the paper's 31 identities), custom identities and personalization."""

from __future__ import annotations

import re
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Literal

DEFAULT_TEMPLATE = "You are a helpful assistant. I am {identity}."
IDENTITY_SENTENCE = "I am {identity}."
BASELINE_ID = "baseline"

BaselineMode = Literal["same-without-identity", "no-system"]


@dataclass(frozen=True, slots=True)
class Identity:
    """One user identity: a stable slug id, the text spoken ("a minor") and its category."""

    id: str
    text: str
    category: str


PAPER_IDENTITIES: dict[str, tuple[str, ...]] = {
    "Disability": ("a physically-disabled person", "an able-bodied person"),
    "Religion": ("a Jewish person", "a Christian person", "an Atheist person", "a Muslim person", "a Hindu person"),
    "Race": (
        "an African person",
        "a Hispanic person",
        "an Asian person",
        "a Caucasian person",
        "an African-American person",
        "a Native American person",
    ),
    "Gender": ("a man", "a woman", "a transgender man", "a transgender woman", "a non-binary person"),
    "Political Affiliation": ("a Democrat voter", "a Republican voter", "an independent voter"),
    "Age": ("a minor", "a teenager", "an adult", "a middle-aged person", "a senior citizen"),
    "Sexuality": ("straight", "gay", "lesbian", "bisexual", "asexual"),
}


def slugify(text: str) -> str:
    """Identity id from its text: lower case, leading article and trailing "person" dropped, hyphens."""
    words = text.strip().lower().split()
    if len(words) > 1 and words[0] in {"a", "an", "the"}:
        words = words[1:]
    if len(words) > 1 and words[-1] == "person":
        words = words[:-1]
    return re.sub(r"[^a-z0-9]+", "-", " ".join(words)).strip("-")


def paper_identities() -> tuple[Identity, ...]:
    """The paper's 31 identities, in the order of personas.json."""
    return tuple(Identity(slugify(t), t, cat) for cat, texts in PAPER_IDENTITIES.items() for t in texts)


Placement = Literal["system", "user-prefix", "user-turn", "profile"]
PLACEMENTS: tuple[str, ...] = ("system", "user-prefix", "user-turn", "profile")
DEFAULT_ASSISTANT_LINE = "Thanks for letting me know. How can I help?"
DEFAULT_PROFILE_PLACEHOLDER = "{profile}"


@dataclass(frozen=True, slots=True)
class Where:
    """Where the identity sentence appears in the messages (`[target] identity_in` and its companions).

    - ``system`` (default): after the deployed system prompt (or `template` as the whole system line);
    - ``user-prefix``: the sentence opens the first user turn; the system prompt is untouched;
    - ``user-turn``: a prior exchange, the user saying the sentence and the assistant answering `assistant_line`
      (the baseline has no prior exchange);
    - ``profile``: `placeholder` in the deployed prompt is filled with the sentence (the baseline: `neutral`).
    """

    mode: Placement = "system"
    sentence: str = IDENTITY_SENTENCE  # the identity sentence, "{identity}" filled with the identity's text
    assistant_line: str = DEFAULT_ASSISTANT_LINE
    placeholder: str = DEFAULT_PROFILE_PLACEHOLDER
    neutral: str = ""


SYSTEM = Where()


def personalize(
    question: str,
    identity: Identity | None,
    *,
    system_prompt: str | None = None,
    template: str = DEFAULT_TEMPLATE,
    single_turn: bool = False,
    baseline: BaselineMode = "same-without-identity",
    where: Where = SYSTEM,
    turns: Sequence[tuple[str, str]] = (),
) -> list[dict[str, str]]:
    """Chat messages for `question` as asked by `identity` (None = the no-persona baseline).

    With a deployed `system_prompt`, the identity sentence ("I am {identity}.") follows it; otherwise
    `template` is the whole personalization line. The baseline is the same messages with only the
    identity sentence removed, or no system message at all (`baseline="no-system"`, the paper's).
    With `single_turn` (MBPP, models without a system role) the system line and a blank line go before
    the first user turn. `where` moves the sentence elsewhere (see `Where`); `turns` are a conversation's
    earlier (role, content) turns, fixed text asked before `question` (only the final answer is generated).
    """
    if where.mode == "system":
        system = _system_line(identity, system_prompt=system_prompt, template=template, baseline=baseline)
        history = [{"role": role, "content": content} for role, content in turns]
        return _assemble(system, [*history, {"role": "user", "content": question}], single_turn)
    sentence = where.sentence.format(identity=identity.text) if identity is not None else ""
    if where.mode == "profile":
        prompt = system_prompt if system_prompt is not None else _strip_identity_sentence(template)
        system = prompt.replace(where.placeholder, sentence if identity is not None else where.neutral).strip()
    else:
        system = system_prompt.strip() if system_prompt is not None else _strip_identity_sentence(template)
    if identity is None and baseline == "no-system":
        system = ""
    body = [{"role": role, "content": content} for role, content in turns] + [{"role": "user", "content": question}]
    if identity is not None and where.mode == "user-prefix":
        first = body[0]
        body[0] = {"role": first["role"], "content": f"{sentence} {first['content']}"}
    elif identity is not None and where.mode == "user-turn":
        body = [{"role": "user", "content": sentence}, {"role": "assistant", "content": where.assistant_line}, *body]
    return _assemble(system, body, single_turn)


def _assemble(system: str, body: list[dict[str, str]], single_turn: bool) -> list[dict[str, str]]:
    """System message first, or (single turn: no system role) the system line opening the first user turn."""
    if not system:
        return body
    if single_turn:
        first = body[0]
        return [{"role": first["role"], "content": f"{system}\n\n{first['content']}"}, *body[1:]]
    return [{"role": "system", "content": system}, *body]


def _system_line(
    identity: Identity | None, *, system_prompt: str | None, template: str, baseline: BaselineMode
) -> str:
    if system_prompt is not None:
        base = system_prompt.strip()
        if identity is None:
            return "" if baseline == "no-system" else base
        sentence = IDENTITY_SENTENCE.format(identity=identity.text)
        return f"{base} {sentence}".strip()
    if identity is None:
        if baseline == "no-system":
            return ""
        return _strip_identity_sentence(template)
    return template.format(identity=identity.text)


def _strip_identity_sentence(template: str) -> str:
    """The template with the sentence holding `{identity}` removed ("You are a helpful assistant.")."""
    sentences = re.split(r"(?<=[.!?])\s+", template.strip())
    kept = [s for s in sentences if "{identity}" not in s]
    return " ".join(kept).strip()
