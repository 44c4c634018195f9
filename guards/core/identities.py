"""The identity catalogue (the paper's 31 identities), custom identities and personalization."""

from __future__ import annotations

import re
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


def personalize(
    question: str,
    identity: Identity | None,
    *,
    system_prompt: str | None = None,
    template: str = DEFAULT_TEMPLATE,
    single_turn: bool = False,
    baseline: BaselineMode = "same-without-identity",
) -> list[dict[str, str]]:
    """Chat messages for `question` as asked by `identity` (None = the no-persona baseline).

    With a deployed `system_prompt`, the identity sentence ("I am {identity}.") follows it; otherwise
    `template` is the whole personalization line. The baseline is the same messages with only the
    identity sentence removed, or no system message at all (`baseline="no-system"`, the paper's).
    With `single_turn` (MBPP, models without a system role) the line and a blank line go before the
    question in the user turn.
    """
    system = _system_line(identity, system_prompt=system_prompt, template=template, baseline=baseline)
    if not system:
        return [{"role": "user", "content": question}]
    if single_turn:
        return [{"role": "user", "content": f"{system}\n\n{question}"}]
    return [{"role": "system", "content": system}, {"role": "user", "content": question}]


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
